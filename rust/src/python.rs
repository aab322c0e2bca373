//! The Python face of the core: thin wrappers that convert arguments, release
//! the GIL around blocking calls and turn Rust errors into `perago.errors` types.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use crate::backoff;
use crate::task_json;
use crate::lock::{self, LockError, RootLock};

mod attempt;
mod channel;
mod dispatcher;
mod file_receive;
mod supervisor;

/// A Python timeout in seconds (`None`: no bound) as a `Duration`; refuses NaN and negatives.
fn timeout_of(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(Some(Duration::from_secs_f64(seconds))),
        Some(seconds) => {
            Err(PyValueError::new_err(format!("timeout must be a non-negative number of seconds, got {seconds}")))
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RESTART_BACKOFF_SECONDS", backoff::RESTART_BACKOFF_SECONDS.to_vec())?;
    m.add("MAX_RESTART_BACKOFF_SECONDS", backoff::MAX_RESTART_BACKOFF_SECONDS)?;
    m.add("LOCK_FILE_NAME", lock::LOCK_FILE_NAME)?;
    m.add_function(wrap_pyfunction!(restart_backoff_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(split_poll_answer, m)?)?;
    m.add_function(wrap_pyfunction!(task_head, m)?)?;
    m.add_class::<WorkspaceRootLock>()?;
    supervisor::register(m)?;
    channel::register(m)?;
    attempt::register(m)?;
    dispatcher::register(m)?;
    file_receive::register(m)?;
    Ok(())
}

/// Raise `perago.errors.<name>(message)`.
pub fn perago_error(py: Python<'_>, name: &str, message: String) -> PyErr {
    match py.import("perago.errors").and_then(|module| module.getattr(name)) {
        Ok(class) => match class.call1((message.clone(),)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(error) => error,
        },
        Err(error) => error,
    }
}

/// Seconds to wait before restarting a child that has been restarted `restart_count` times.
/// Any Python int is accepted: counts past `u64::MAX` saturate, negative ones are refused.
#[pyfunction]
fn restart_backoff_seconds(restart_count: &Bound<'_, PyInt>) -> PyResult<u64> {
    if restart_count.lt(0)? {
        return Err(PyValueError::new_err("restart_count must be >= 0"));
    }
    let count = restart_count.extract::<u64>().unwrap_or(u64::MAX);
    Ok(backoff::restart_backoff_seconds(count))
}

/// One task's (task id, workflow id, responseTimeoutSeconds or None).
type TaskHeadTuple = (String, String, Option<f64>);

fn head_tuple(head: task_json::TaskHead) -> TaskHeadTuple {
    (head.task_id, head.workflow_instance_id, head.response_timeout_seconds)
}

/// Each task of a batch-poll answer as (task id, workflow id, response timeout, its exact
/// JSON bytes); entries without a task id are skipped. `ValueError` when it is not an array.
#[pyfunction]
fn split_poll_answer(py: Python<'_>, raw: &[u8]) -> PyResult<Vec<(String, String, Option<f64>, Py<PyBytes>)>> {
    let tasks = task_json::split_poll_answer(raw).map_err(PyValueError::new_err)?;
    Ok(tasks
        .into_iter()
        .map(|(head, bytes)| {
            let (task_id, workflow_instance_id, timeout) = head_tuple(head);
            (task_id, workflow_instance_id, timeout, PyBytes::new(py, bytes).unbind())
        })
        .collect())
}

/// (task id, workflow id, response timeout) of one task's JSON; `None` when it is not an
/// object with a task id. `ValueError` when it does not parse.
#[pyfunction]
fn task_head(raw: &[u8]) -> PyResult<Option<TaskHeadTuple>> {
    Ok(task_json::task_head(raw).map_err(PyValueError::new_err)?.map(head_tuple))
}

/// The exclusive lock on a workspace root, held for a supervisor's whole life.
#[pyclass(module = "perago._core")]
pub struct WorkspaceRootLock {
    held: Option<RootLock>,
    path: PathBuf,
}

#[pymethods]
impl WorkspaceRootLock {
    /// Take the lock on `root` or raise `RuntimeConfigError` naming the holder's pid.
    #[staticmethod]
    fn acquire(py: Python<'_>, root: PathBuf) -> PyResult<Self> {
        let result = py.detach(|| RootLock::acquire(&root));
        match result {
            Ok(held) => {
                let path = held.path().to_path_buf();
                Ok(WorkspaceRootLock { held: Some(held), path })
            }
            Err(error @ LockError::Busy { .. }) | Err(error @ LockError::Io { .. }) => {
                Err(perago_error(py, "RuntimeConfigError", error.to_string()))
            }
        }
    }

    /// Path of the lock file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether this object still holds the lock.
    #[getter]
    fn held(&self) -> bool {
        self.held.is_some()
    }

    /// Release the lock and remove the file; a second call does nothing.
    fn release(&mut self) {
        self.held = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(&mut self, _exc_type: Py<PyAny>, _exc: Py<PyAny>, _tb: Py<PyAny>) {
        self.release();
    }

    fn __repr__(&self) -> String {
        format!("WorkspaceRootLock(path={:?}, held={})", self.path, self.held.is_some())
    }
}
