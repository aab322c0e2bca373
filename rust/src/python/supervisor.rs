//! `run_supervisor`: the process-mode loop, run with the GIL released under the
//! workspace-root lock, returning how it ended as a `SupervisorOutcome` value; and
//! `wait_for_promotion`, the warm spare's side of its promotion.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::channel;
use crate::lock::{LockError, RootLock};
use crate::supervisor::{self, Config, SupervisorError};

use super::perago_error;

/// How the supervisor ended; `exit_code` is what `perago start` exits with.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct SupervisorOutcome {
    exit_code: i32,
    reason: String,
    message: String,
    stderr_tail: Vec<String>,
}

#[pymethods]
impl SupervisorOutcome {
    fn __repr__(&self) -> String {
        format!("SupervisorOutcome(exit_code={}, reason={:?}, message={:?})", self.exit_code, self.reason, self.message)
    }
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!("{name} must be a non-negative number of seconds, got {value}")))
    }
}

/// Lock `workspace_root`, run the broker and `process_count` executors until a signal,
/// a boot failure or the broker's death drains them, then sweep and unlock.
/// Must be called from the main thread: children are bound to the calling thread's life.
#[pyfunction]
#[pyo3(signature = (
    *, workspace_root, worker_id_prefix, process_count, broker_command, executor_command, env,
    gc_ttl_seconds, gc_interval_seconds, spare_command=None, force_kill_after_seconds=None,
    backoff_unit_seconds=1.0, healthy_after_seconds=60.0, boot_failure_limit=3,
))]
#[allow(clippy::too_many_arguments)]
pub fn run_supervisor(
    py: Python<'_>,
    workspace_root: PathBuf,
    worker_id_prefix: String,
    process_count: u32,
    broker_command: Vec<OsString>,
    executor_command: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    gc_ttl_seconds: f64,
    gc_interval_seconds: f64,
    spare_command: Option<Vec<OsString>>,
    force_kill_after_seconds: Option<f64>,
    backoff_unit_seconds: f64,
    healthy_after_seconds: f64,
    boot_failure_limit: u32,
) -> PyResult<SupervisorOutcome> {
    let config = Config {
        workspace_root: workspace_root.clone(),
        worker_id_prefix,
        process_count,
        broker_argv: broker_command,
        executor_argv: executor_command,
        spare_argv: spare_command,
        env,
        gc_ttl: seconds("gc_ttl_seconds", gc_ttl_seconds)?,
        gc_interval: seconds("gc_interval_seconds", gc_interval_seconds)?,
        force_kill_after: force_kill_after_seconds.map(|s| seconds("force_kill_after_seconds", s)).transpose()?,
        backoff_unit: seconds("backoff_unit_seconds", backoff_unit_seconds)?,
        healthy_after: seconds("healthy_after_seconds", healthy_after_seconds)?,
        boot_failure_limit,
    };
    config.validate().map_err(|message| perago_error(py, "RuntimeConfigError", message))?;
    let result = py.detach(move || {
        let lock = RootLock::acquire(&workspace_root)?;
        let outcome = supervisor::run(config);
        drop(lock);
        Ok::<_, RunError>(outcome?)
    });
    match result {
        Ok(outcome) => Ok(SupervisorOutcome {
            exit_code: outcome.exit_code,
            reason: outcome.reason.to_string(),
            message: outcome.message,
            stderr_tail: outcome.stderr_tail,
        }),
        Err(RunError::Lock(error)) => Err(perago_error(py, "RuntimeConfigError", error.to_string())),
        Err(RunError::Supervisor(SupervisorError::Config(message))) => {
            Err(perago_error(py, "RuntimeConfigError", message))
        }
        Err(RunError::Supervisor(error)) => Err(pyo3::exceptions::PyOSError::new_err(error.to_string())),
    }
}

/// The warm spare's wait (`perago.spare`): say Warm on the socket in `PERAGO_SLOT_FD`
/// and block until the supervisor promotes this process into a slot. Returns the slot's
/// environment (worker id, process title, slot, generation) to apply before adopting the
/// socket as an executor, or `None` when the supervisor is draining. Sets the spare's
/// process title first.
#[pyfunction]
pub fn wait_for_promotion(py: Python<'_>) -> PyResult<Option<HashMap<String, String>>> {
    let fd =
        channel::inherited_fd("PERAGO_SLOT_FD").map_err(|message| perago_error(py, "RuntimeConfigError", message))?;
    if let Ok(title) = std::env::var("PERAGO_PROCESS_TITLE") {
        channel::set_process_title(&title);
    }
    // Children the task module starts while it is imported must not hold the slot socket.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    let promotion = py.detach(|| supervisor::await_promotion(socket))?;
    Ok(promotion.map(|(slot, generation, worker_id)| {
        supervisor::slot_env(slot, generation, &worker_id).into_iter().collect()
    }))
}

enum RunError {
    Lock(LockError),
    Supervisor(SupervisorError),
}

impl From<LockError> for RunError {
    fn from(error: LockError) -> Self {
        RunError::Lock(error)
    }
}

impl From<SupervisorError> for RunError {
    fn from(error: SupervisorError) -> Self {
        RunError::Supervisor(error)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EXIT_BOOT_FAILURE", supervisor::EXIT_BOOT_FAILURE)?;
    m.add("EXIT_BROKER_DIED", supervisor::EXIT_BROKER_DIED)?;
    m.add("EXIT_STOPPED_NOW", supervisor::EXIT_STOPPED_NOW)?;
    m.add_class::<SupervisorOutcome>()?;
    m.add_function(wrap_pyfunction!(run_supervisor, m)?)?;
    m.add_function(wrap_pyfunction!(wait_for_promotion, m)?)?;
    Ok(())
}
