//! `perago._core.Dispatcher`: the broker's Rust dispatcher as one Python class.
//!
//! The class is frozen and shares its state through a mutex that is only ever taken
//! with the GIL released (or uncontended, via `try_lock`), and released before any
//! Python object is built, so no Python code (a `__del__`, a signal handler) can run
//! while a Rust lock is held. `wake()` touches only the eventfd and works from any
//! thread, also while the loop thread is blocked in `next_events`.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::channel::{self, FrameStream};
use crate::dispatcher::{self, Event, Waker};
use crate::frame::MAX_PAYLOAD;
use crate::relay::RelayTarget;

use super::channel::{Closed, Drain};
use super::perago_error;

/// Longest wait off the main thread before Python signal handlers get a chance to run
/// (the main thread is woken by EINTR at once).
const SIGNAL_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// A slot's executor said Ready: one more task can be assigned.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct SlotReady {
    slot: u32,
}

/// The executor of `slot` finished `task_id`; `result` is the TaskResult JSON to send.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct TaskCompleted {
    slot: u32,
    task_id: String,
    result: Py<PyBytes>,
}

/// `task_id` was lost with its executor; report it FAILED with `reason`.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct TaskFailed {
    slot: u32,
    task_id: String,
    reason: String,
}

/// The executor of `slot`/`generation` asks to reload `task_id` (attempt fence);
/// answer with `Dispatcher.fence_reply(slot, generation, reply)`.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct FenceRequested {
    slot: u32,
    generation: u32,
    task_id: String,
}

/// An fd the broker watches (`Dispatcher.watch_fd`) is readable, closed or in error.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct FdReadable {
    fd: i32,
}

/// The relay delivered `task_id`'s result. `next_task_id` (with its workflow id and
/// response timeout) names the task update-v2 handed back, already sent to a slot —
/// unless `next_task` holds its JSON: no slot was free, the broker queues it.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct TaskRelayed {
    task_id: String,
    next_task_id: Option<String>,
    next_workflow_instance_id: Option<String>,
    next_response_timeout: Option<f64>,
    next_task: Option<Py<PyBytes>>,
}

/// Something the dispatcher dropped or could not do; the broker logs it as an error.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct DispatcherLog {
    message: String,
    fields: Py<PyDict>,
}

/// The broker's dispatcher over the control socket and every slot socket.
#[pyclass(module = "perago._core", frozen)]
pub struct Dispatcher {
    core: Mutex<dispatcher::Dispatcher>,
    waker: Arc<Waker>,
}

impl Dispatcher {
    fn with_control(control: Option<FrameStream>) -> PyResult<Self> {
        let core = dispatcher::Dispatcher::new(control)?;
        let waker = core.waker();
        Ok(Dispatcher { core: Mutex::new(core), waker })
    }

    /// Run `f` on the core: at once if the lock is free (the loop thread's usual case),
    /// otherwise with the GIL released while waiting for it.
    fn with_core<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut dispatcher::Dispatcher) -> R + Send) -> R {
        match self.core.try_lock() {
            Ok(mut guard) => f(&mut guard),
            Err(_) => py.detach(|| f(&mut self.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))),
        }
    }
}

fn to_python(py: Python<'_>, event: Event) -> PyResult<Py<PyAny>> {
    Ok(match event {
        Event::SlotReady { slot } => Py::new(py, SlotReady { slot })?.into_any(),
        Event::Completed { slot, task_id, result } => {
            let result = PyBytes::new(py, &result).unbind();
            Py::new(py, TaskCompleted { slot, task_id, result })?.into_any()
        }
        Event::Failed { slot, task_id, reason } => Py::new(py, TaskFailed { slot, task_id, reason })?.into_any(),
        Event::FenceRequested { slot, generation, task_id } => {
            Py::new(py, FenceRequested { slot, generation, task_id })?.into_any()
        }
        Event::Readable { fd } => Py::new(py, FdReadable { fd })?.into_any(),
        Event::Relayed { task_id, next } => {
            let relayed = match next {
                None => TaskRelayed {
                    task_id,
                    next_task_id: None,
                    next_workflow_instance_id: None,
                    next_response_timeout: None,
                    next_task: None,
                },
                Some(next) => TaskRelayed {
                    task_id,
                    next_task_id: Some(next.head.task_id),
                    next_workflow_instance_id: Some(next.head.workflow_instance_id),
                    next_response_timeout: next.head.response_timeout_seconds,
                    next_task: next.unassigned.map(|raw| PyBytes::new(py, &raw).unbind()),
                },
            };
            Py::new(py, relayed)?.into_any()
        }
        Event::Drain => Py::new(py, Drain {})?.into_any(),
        Event::ControlClosed => Py::new(py, Closed {})?.into_any(),
        Event::Log { message, fields } => {
            let dict = PyDict::new(py);
            for (key, value) in fields {
                dict.set_item(key, value)?;
            }
            Py::new(py, DispatcherLog { message, fields: dict.unbind() })?.into_any()
        }
    })
}

#[pymethods]
impl Dispatcher {
    /// A dispatcher over a duplicate of `control_fd`, the broker's end of a control
    /// socket (tests and benches play the supervisor on the other end).
    #[new]
    fn new(control_fd: i32) -> PyResult<Self> {
        let duplicate = unsafe { libc::fcntl(control_fd, libc::F_DUPFD_CLOEXEC, 3) };
        if duplicate < 0 {
            return Err(PyValueError::new_err(format!(
                "control_fd={control_fd} is not an open file descriptor: {}",
                std::io::Error::last_os_error()
            )));
        }
        Self::with_control(Some(FrameStream::new(unsafe { OwnedFd::from_raw_fd(duplicate) })))
    }

    /// Adopt the control socket the supervisor handed down (`PERAGO_CONTROL_FD`);
    /// sets the process title.
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Self> {
        let stream = FrameStream::adopt_inherited("PERAGO_CONTROL_FD")
            .map_err(|message| perago_error(py, "RuntimeConfigError", message))?;
        if let Ok(title) = std::env::var("PERAGO_PROCESS_TITLE") {
            channel::set_process_title(&title);
        }
        Self::with_control(Some(stream))
    }

    /// Tell the supervisor the broker is up, and unblock SIGINT/SIGTERM.
    fn ready(&self) -> PyResult<()> {
        channel::announce_ready().map_err(PyErr::from)
    }

    /// Wait up to `timeout` seconds (`None` = until something happens) and return what
    /// happened: `SlotReady`, `TaskCompleted`, `TaskFailed`, `FenceRequested`, `Drain`,
    /// `Closed` (control socket gone), `DispatcherLog`. An empty list means the wait was
    /// woken (`wake()`), timed out, or a signal handler ran.
    #[pyo3(signature = (timeout=None))]
    fn next_events(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Vec<Py<PyAny>>> {
        let timeout = super::timeout_of(timeout)?;
        // A handler whose signal arrived just before this call runs now (it may wake us).
        py.check_signals()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let period = if unsafe { libc::gettid() == libc::getpid() } { None } else { Some(SIGNAL_CHECK_PERIOD) };
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let step = match (remaining, period) {
                (Some(r), Some(p)) => Some(r.min(p)),
                (r, p) => r.or(p),
            };
            let (events, wakeup) = py.detach(|| {
                let mut core = self.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                core.poll(step)
            })?;
            // Also when woken: a signal that hit another thread wakes us through the
            // wakeup fd, and its Python handler runs here, on the main thread. If the
            // handler raises, the events wait for the next call instead of being lost.
            if let Err(error) = py.check_signals() {
                self.with_core(py, |core| core.requeue(events));
                return Err(error);
            }
            let timed_out = remaining.is_some_and(|r| step == Some(r)) && events.is_empty();
            if !events.is_empty() || wakeup.woken || wakeup.interrupted || timed_out {
                return events.into_iter().map(|event| to_python(py, event)).collect();
            }
        }
    }

    /// Lease a free slot for `task_id` and send it `task` (Conductor's task JSON as
    /// polled) with a fresh execution id. Returns the slot, or `None` if none is free.
    fn assign(&self, py: Python<'_>, task: &[u8], task_id: &str) -> PyResult<Option<u32>> {
        if !dispatcher::fits_an_assign(task) {
            return Err(PyValueError::new_err(format!(
                "task {task_id} is {} bytes; frames carry at most {MAX_PAYLOAD}",
                task.len()
            )));
        }
        Ok(self.with_core(py, |core| core.assign(task, task_id)))
    }

    /// Answer the fence request of `slot` if it is still on `generation`; `False` when
    /// the reply was discarded (that executor is gone or did not ask).
    fn fence_reply(&self, py: Python<'_>, slot: u32, generation: u32, reply: &[u8]) -> PyResult<bool> {
        if reply.len() > MAX_PAYLOAD as usize {
            return Err(PyValueError::new_err(format!("reply is {} bytes; frames carry at most {MAX_PAYLOAD}", reply.len())));
        }
        Ok(self.with_core(py, |core| core.fence_reply(slot, generation, reply)))
    }

    /// Make a blocked or the next `next_events` return at once. Safe from any thread.
    fn wake(&self) {
        self.waker.wake();
    }

    /// A non-blocking fd for `signal.set_wakeup_fd`, so a signal delivered to any thread
    /// ends the wait and its handler runs in `next_events`.
    #[getter]
    fn wakeup_fd(&self) -> i32 {
        self.waker.write_fd()
    }

    /// Send Stop to every executor that still has a socket.
    fn stop_executors(&self, py: Python<'_>) {
        self.with_core(py, |core| core.stop_executors());
    }

    /// Tell the supervisor the drain is done (nothing in flight, executors stopped).
    fn drained(&self, py: Python<'_>) -> PyResult<()> {
        self.with_core(py, |core| core.drained()).map_err(PyErr::from)
    }

    /// Report `FdReadable(fd)` from `next_events` while `fd` (a socket the caller owns,
    /// e.g. a Conductor connection) has data, was closed or failed, until `unwatch_fd`.
    fn watch_fd(&self, py: Python<'_>, fd: i32) -> PyResult<()> {
        if fd < 0 {
            return Err(PyValueError::new_err(format!("fd must be a file descriptor number, got {fd}")));
        }
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        self.with_core(py, |core| core.watch_fd(fd)).map_err(PyErr::from)
    }

    /// Stop watching `fd`; call before closing it.
    fn unwatch_fd(&self, py: Python<'_>, fd: i32) {
        if fd >= 0 {
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            self.with_core(py, |core| core.unwatch_fd(fd));
        }
    }

    /// From now on, send each completion's TaskResult to Conductor from the dispatcher
    /// first: `POST` with `head` (the request head up to and including `Content-Length: `)
    /// to `host:port` over plain HTTP, `timeout` seconds per request. Delivered results
    /// come back as `TaskRelayed`; the rest as `TaskCompleted`, for the broker to deliver.
    fn start_relay(&self, py: Python<'_>, host: String, port: u16, head: Vec<u8>, timeout: f64) -> PyResult<()> {
        if !timeout.is_finite() || timeout <= 0.0 {
            return Err(PyValueError::new_err(format!("timeout must be a positive number of seconds, got {timeout}")));
        }
        if !head.ends_with(b"Content-Length: ") {
            return Err(PyValueError::new_err("head must end with 'Content-Length: '"));
        }
        let target = RelayTarget { host, port, head, timeout: Duration::from_secs_f64(timeout) };
        self.with_core(py, |core| core.start_relay(target));
        Ok(())
    }

    /// Completions go to the broker again (`TaskCompleted`); relayed updates still finish.
    fn stop_relay(&self, py: Python<'_>) {
        self.with_core(py, |core| core.stop_relay());
    }

    /// Relayed updates not answered yet.
    #[getter]
    fn relay_in_flight(&self, py: Python<'_>) -> usize {
        self.with_core(py, |core| core.relay_in_flight())
    }

    /// Drop every lease and return their task ids, for the caller to report FAILED.
    fn abandon_leases(&self, py: Python<'_>) -> Vec<String> {
        self.with_core(py, |core| core.abandon_leases())
    }

    /// Slots that can take a task now.
    #[getter]
    fn free_slots(&self, py: Python<'_>) -> usize {
        self.with_core(py, |core| core.free_slots())
    }

    /// Tasks currently leased to an executor.
    #[getter]
    fn leases(&self, py: Python<'_>) -> usize {
        self.with_core(py, |core| core.leases())
    }

    /// Slots with a live socket.
    #[getter]
    fn attached(&self, py: Python<'_>) -> usize {
        self.with_core(py, |core| core.attached())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Dispatcher>()?;
    m.add_class::<SlotReady>()?;
    m.add_class::<TaskCompleted>()?;
    m.add_class::<TaskFailed>()?;
    m.add_class::<FenceRequested>()?;
    m.add_class::<DispatcherLog>()?;
    m.add_class::<FdReadable>()?;
    m.add_class::<TaskRelayed>()?;
    Ok(())
}
