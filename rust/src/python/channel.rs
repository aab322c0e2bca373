//! Python classes over the process tree's sockets: the executor's slot channel,
//! the broker's control socket and the broker's end of a slot.
//!
//! Outcomes that are not errors come back as values (`Assign`, `Stop`, `Ready`,
//! ...); `None` means "nothing yet": the timeout passed or a signal handler ran,
//! so the caller re-checks its flags. Every blocking call releases the GIL and
//! runs Python signal handlers when interrupted, so Ctrl-C always works.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use pyo3::exceptions::{PyConnectionError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::channel::{self, ChannelError, FrameStream, Received};
use crate::frame::{self, ExitCause, Message, MAX_PAYLOAD};

use super::perago_error;

/// Longest single wait before Python signal handlers get a chance to run, for callers
/// outside the main thread. The main thread, where Python runs its signal handlers, is
/// woken at once by EINTR and waits without any period.
const SIGNAL_CHECK_PERIOD: Duration = Duration::from_secs(1);

fn on_main_thread() -> bool {
    unsafe { libc::gettid() == libc::getpid() }
}

fn channel_error(error: ChannelError) -> PyErr {
    match error {
        ChannelError::Io(error) => error.into(),
        ChannelError::Protocol(error) => PyConnectionError::new_err(format!("peer sent an invalid frame: {error}")),
    }
}

/// Wait for one message with the GIL released; signals interrupt the wait and run
/// their Python handlers (an exception from a handler propagates).
fn receive(py: Python<'_>, stream: &mut FrameStream, timeout: Option<f64>) -> PyResult<Received> {
    let deadline = super::timeout_of(timeout)?.map(|t| std::time::Instant::now() + t);
    let period = if on_main_thread() { None } else { Some(SIGNAL_CHECK_PERIOD) };
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let step = match (remaining, period) {
            (Some(r), Some(p)) => Some(r.min(p)),
            (r, p) => r.or(p),
        };
        let received = py.detach(|| stream.recv(step)).map_err(channel_error)?;
        match received {
            Received::Interrupted => {
                py.check_signals()?;
                return Ok(Received::Interrupted);
            }
            Received::TimedOut => {
                py.check_signals()?;
                if step == remaining {
                    return Ok(Received::TimedOut);
                }
            }
            other => return Ok(other),
        }
    }
}

fn check_execution_id(execution_id: &str) -> PyResult<()> {
    if frame::is_execution_id(execution_id) {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!("execution_id must be 32 lowercase hex characters, got {execution_id:?}")))
    }
}

fn check_payload(name: &str, bytes: &[u8]) -> PyResult<()> {
    if bytes.len() + frame::EXECUTION_ID_LEN > MAX_PAYLOAD as usize {
        return Err(PyValueError::new_err(format!(
            "{name} is {} bytes; frames carry at most {MAX_PAYLOAD}",
            bytes.len()
        )));
    }
    Ok(())
}

fn send(py: Python<'_>, stream: &FrameStream, message: Message) -> PyResult<()> {
    py.detach(|| stream.send(&message, None)).map_err(PyErr::from)
}

fn config_error(py: Python<'_>, message: String) -> PyErr {
    perago_error(py, "RuntimeConfigError", message)
}

/// A task to run: sent by the broker on the slot socket.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct Assign {
    dispatch_id: u64,
    execution_id: String,
    task: Py<PyBytes>,
}

#[pymethods]
impl Assign {
    fn __repr__(&self) -> String {
        format!("Assign(dispatch_id={}, execution_id={:?})", self.dispatch_id, self.execution_id)
    }
}

/// Stop: finish nothing new and exit. `closed` is true when the broker's end went away.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct Stop {
    closed: bool,
}

#[pymethods]
impl Stop {
    fn __repr__(&self) -> String {
        format!("Stop(closed={})", if self.closed { "True" } else { "False" })
    }
}

/// The executor's end of its slot socket (`PERAGO_SLOT_FD`).
#[pyclass(module = "perago._core")]
pub struct ExecutorChannel {
    stream: FrameStream,
    generation: u64,
    worker_id: String,
}

#[pymethods]
impl ExecutorChannel {
    /// Adopt the slot socket the supervisor handed down; sets the process title.
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Self> {
        let stream = FrameStream::adopt_inherited("PERAGO_SLOT_FD").map_err(|m| config_error(py, m))?;
        let generation = std::env::var("PERAGO_SLOT_GENERATION").ok().and_then(|g| g.parse().ok()).unwrap_or(0);
        let worker_id = std::env::var("PERAGO_WORKER_ID").unwrap_or_default();
        if let Ok(title) = std::env::var("PERAGO_PROCESS_TITLE") {
            channel::set_process_title(&title);
        }
        Ok(ExecutorChannel { stream, generation, worker_id })
    }

    #[getter]
    fn worker_id(&self) -> &str {
        &self.worker_id
    }

    #[getter]
    fn generation(&self) -> u64 {
        self.generation
    }

    /// Tell the broker (Ready frame) and the supervisor (ready pipe) that this executor
    /// can take tasks, and unblock SIGINT/SIGTERM. Call after installing signal handlers.
    fn ready(&self, py: Python<'_>) -> PyResult<()> {
        send(py, &self.stream, Message::Ready { generation: self.generation })?;
        channel::announce_ready().map_err(PyErr::from)
    }

    /// Wait for the next instruction: `Assign`, `Stop`, or `None` when `timeout` passed
    /// or a signal handler ran.
    #[pyo3(signature = (timeout=None))]
    fn recv(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        match receive(py, &mut self.stream, timeout)? {
            Received::Message(Message::Assign { dispatch_id, execution_id, task }, _) => {
                let task = PyBytes::new(py, &task).unbind();
                Ok(Some(Py::new(py, Assign { dispatch_id, execution_id, task })?.into_any()))
            }
            Received::Message(Message::Stop, _) => Ok(Some(Py::new(py, Stop { closed: false })?.into_any())),
            Received::Closed => Ok(Some(Py::new(py, Stop { closed: true })?.into_any())),
            Received::Message(other, _) => Err(PyConnectionError::new_err(format!(
                "executor received an unexpected {} frame on its slot socket",
                other.to_frame().kind.name()
            ))),
            Received::TimedOut | Received::Interrupted => Ok(None),
        }
    }

    /// Send the result of the task assigned with `dispatch_id` (TaskResult JSON bytes).
    fn complete(&self, py: Python<'_>, dispatch_id: u64, execution_id: &str, result: &[u8]) -> PyResult<()> {
        check_execution_id(execution_id)?;
        check_payload("result", result)?;
        send(
            py,
            &self.stream,
            Message::Complete { dispatch_id, execution_id: execution_id.into(), result: result.to_vec() },
        )
    }

    /// Ask the broker to reload the attempt (the attempt fence) and wait for its reply.
    /// Raises `TimeoutError` after `timeout` seconds, `ConnectionError` if the broker is gone.
    #[pyo3(signature = (dispatch_id, request, timeout=None))]
    fn fence(
        &mut self,
        py: Python<'_>,
        dispatch_id: u64,
        request: &[u8],
        timeout: Option<f64>,
    ) -> PyResult<Py<PyBytes>> {
        check_payload("request", request)?;
        send(py, &self.stream, Message::FenceRequest { dispatch_id, request: request.to_vec() })?;
        let deadline = super::timeout_of(timeout)?.map(|t| std::time::Instant::now() + t);
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()).as_secs_f64());
            match receive(py, &mut self.stream, remaining)? {
                Received::Message(Message::FenceReply { dispatch_id: id, reply }, _) if id == dispatch_id => {
                    return Ok(PyBytes::new(py, &reply).unbind())
                }
                Received::Message(other, _) => {
                    return Err(PyConnectionError::new_err(format!(
                        "broker answered the fence request for dispatch {dispatch_id} with {} (id {})",
                        other.to_frame().kind.name(),
                        other.to_frame().id
                    )))
                }
                Received::Closed => {
                    return Err(PyConnectionError::new_err("broker closed the slot socket during a fence request"))
                }
                Received::TimedOut => {
                    return Err(PyTimeoutError::new_err(format!(
                        "broker did not answer the fence request for dispatch {dispatch_id}"
                    )))
                }
                Received::Interrupted => continue,
            }
        }
    }

    fn fileno(&self) -> i32 {
        self.stream.fd().as_raw_fd()
    }
}

/// The broker's end of one slot socket, received in a `SlotSocket` message.
#[pyclass(module = "perago._core")]
pub struct SlotEndpoint {
    stream: Option<FrameStream>,
}

impl SlotEndpoint {
    fn stream(&mut self) -> PyResult<&mut FrameStream> {
        self.stream.as_mut().ok_or_else(|| PyValueError::new_err("slot endpoint is closed"))
    }
}

/// The executor of a slot announced it is ready for this generation.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct Ready {
    generation: u64,
}

/// The executor finished the task it was assigned with `dispatch_id`.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct Complete {
    dispatch_id: u64,
    execution_id: String,
    result: Py<PyBytes>,
}

/// The executor asks for a fresh copy of its attempt (the attempt fence).
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct FenceRequest {
    dispatch_id: u64,
    request: Py<PyBytes>,
}

/// The other end of a socket went away.
#[pyclass(module = "perago._core", frozen)]
pub struct Closed {}

#[pymethods]
impl SlotEndpoint {
    fn send_assign(&mut self, py: Python<'_>, dispatch_id: u64, execution_id: &str, task: &[u8]) -> PyResult<()> {
        check_execution_id(execution_id)?;
        check_payload("task", task)?;
        let message = Message::Assign { dispatch_id, execution_id: execution_id.into(), task: task.to_vec() };
        send(py, self.stream()?, message)
    }

    fn send_stop(&mut self, py: Python<'_>) -> PyResult<()> {
        send(py, self.stream()?, Message::Stop)
    }

    fn send_fence_reply(&mut self, py: Python<'_>, dispatch_id: u64, reply: &[u8]) -> PyResult<()> {
        check_payload("reply", reply)?;
        send(py, self.stream()?, Message::FenceReply { dispatch_id, reply: reply.to_vec() })
    }

    /// `Ready`, `Complete`, `FenceRequest`, `Closed`, or `None` (timeout / signal).
    #[pyo3(signature = (timeout=None))]
    fn recv(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let received = receive(py, self.stream()?, timeout)?;
        Ok(Some(match received {
            Received::Message(Message::Ready { generation }, _) => Py::new(py, Ready { generation })?.into_any(),
            Received::Message(Message::Complete { dispatch_id, execution_id, result }, _) => {
                let result = PyBytes::new(py, &result).unbind();
                Py::new(py, Complete { dispatch_id, execution_id, result })?.into_any()
            }
            Received::Message(Message::FenceRequest { dispatch_id, request }, _) => {
                let request = PyBytes::new(py, &request).unbind();
                Py::new(py, FenceRequest { dispatch_id, request })?.into_any()
            }
            Received::Message(other, _) => {
                return Err(PyConnectionError::new_err(format!(
                    "broker received an unexpected {} frame on a slot socket",
                    other.to_frame().kind.name()
                )))
            }
            Received::Closed => Py::new(py, Closed {})?.into_any(),
            Received::TimedOut | Received::Interrupted => return Ok(None),
        }))
    }

    fn fileno(&mut self) -> PyResult<i32> {
        Ok(self.stream()?.fd().as_raw_fd())
    }

    fn close(&mut self) {
        self.stream = None;
    }
}

/// A new socket for a slot (first start or restart): supersedes older generations.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct SlotSocket {
    slot: u32,
    generation: u32,
    worker_id: String,
    endpoint: Py<SlotEndpoint>,
}

/// The executor of `slot`/`generation` exited; exactly one of `exit_code`/`signal` is set.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct ExecutorExited {
    slot: u32,
    generation: u32,
    worker_id: String,
    exit_code: Option<i32>,
    signal: Option<i32>,
}

/// The supervisor asks the broker to drain: stop polling, finish, Stop every executor.
#[pyclass(module = "perago._core", frozen)]
pub struct Drain {}

/// The broker's end of the control socket (`PERAGO_CONTROL_FD`).
#[pyclass(module = "perago._core")]
pub struct BrokerControl {
    stream: FrameStream,
}

#[pymethods]
impl BrokerControl {
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Self> {
        let stream = FrameStream::adopt_inherited("PERAGO_CONTROL_FD").map_err(|m| config_error(py, m))?;
        if let Ok(title) = std::env::var("PERAGO_PROCESS_TITLE") {
            channel::set_process_title(&title);
        }
        Ok(BrokerControl { stream })
    }

    /// Tell the supervisor the broker is up, and unblock SIGINT/SIGTERM.
    fn ready(&self) -> PyResult<()> {
        channel::announce_ready().map_err(PyErr::from)
    }

    /// `SlotSocket`, `ExecutorExited`, `Drain`, `Closed`, or `None` (timeout / signal).
    #[pyo3(signature = (timeout=None))]
    fn recv(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        Ok(Some(match receive(py, &mut self.stream, timeout)? {
            Received::Message(Message::SlotSocket { slot, generation, worker_id }, fd) => {
                let fd: OwnedFd =
                    fd.ok_or_else(|| PyConnectionError::new_err("SlotSocket frame arrived without its socket"))?;
                let endpoint = Py::new(py, SlotEndpoint { stream: Some(FrameStream::new(fd)) })?;
                Py::new(py, SlotSocket { slot, generation, worker_id, endpoint })?.into_any()
            }
            Received::Message(Message::ExecutorExited { slot, generation, worker_id, cause }, _) => {
                let (exit_code, signal) = match cause {
                    ExitCause::Code(code) => (Some(code), None),
                    ExitCause::Signal(signal) => (None, Some(signal)),
                };
                Py::new(py, ExecutorExited { slot, generation, worker_id, exit_code, signal })?.into_any()
            }
            Received::Message(Message::Drain, _) => Py::new(py, Drain {})?.into_any(),
            Received::Message(other, _) => {
                return Err(PyConnectionError::new_err(format!(
                    "broker received an unexpected {} frame on the control socket",
                    other.to_frame().kind.name()
                )))
            }
            Received::Closed => Py::new(py, Closed {})?.into_any(),
            Received::TimedOut | Received::Interrupted => return Ok(None),
        }))
    }

    /// Tell the supervisor the drain is done (nothing in flight, executors stopped).
    fn drained(&self, py: Python<'_>) -> PyResult<()> {
        send(py, &self.stream, Message::Drained)
    }

    fn fileno(&self) -> i32 {
        self.stream.fd().as_fd().as_raw_fd()
    }
}

/// Set the OS-visible process title (what `ps` and `top` show).
#[pyfunction]
pub fn set_process_title(title: &str) {
    channel::set_process_title(title);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ExecutorChannel>()?;
    m.add_class::<Assign>()?;
    m.add_class::<Stop>()?;
    m.add_class::<BrokerControl>()?;
    m.add_class::<SlotSocket>()?;
    m.add_class::<SlotEndpoint>()?;
    m.add_class::<ExecutorExited>()?;
    m.add_class::<Drain>()?;
    m.add_class::<Ready>()?;
    m.add_class::<Complete>()?;
    m.add_class::<FenceRequest>()?;
    m.add_class::<Closed>()?;
    m.add_function(wrap_pyfunction!(set_process_title, m)?)?;
    Ok(())
}
