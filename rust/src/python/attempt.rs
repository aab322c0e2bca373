//! Attempt workspaces for Python: the executor (and the thread runner) create and
//! remove attempts through these, so the on-disk layout has one definition.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::attempt;
use crate::gc;

/// A created attempt: `dir` is what the runtime manages, `workspace` (`dir/ws`) is what the task sees.
#[pyclass(module = "perago._core", frozen, get_all)]
pub struct AttemptWorkspace {
    dir: PathBuf,
    workspace: PathBuf,
}

#[pymethods]
impl AttemptWorkspace {
    fn __repr__(&self) -> String {
        format!("AttemptWorkspace(dir={:?})", self.dir)
    }
}

/// Create the attempt directory for one dispatch, owned by this process.
/// Raises `FileExistsError` if it already exists.
#[pyfunction]
#[pyo3(signature = (root, *, workflow_instance_id, task_id, execution_id, retry_count, task_def_name, owner_worker_id, owner_token))]
#[allow(clippy::too_many_arguments)]
pub fn create_attempt_workspace(
    py: Python<'_>,
    root: PathBuf,
    workflow_instance_id: &str,
    task_id: &str,
    execution_id: &str,
    retry_count: i64,
    task_def_name: &str,
    owner_worker_id: &str,
    owner_token: &str,
) -> PyResult<AttemptWorkspace> {
    if execution_id.is_empty() || owner_worker_id.is_empty() || owner_token.is_empty() {
        return Err(PyValueError::new_err("execution_id, owner_worker_id and owner_token must not be empty"));
    }
    let meta = attempt::meta_for_this_process(
        workflow_instance_id,
        task_id,
        execution_id,
        retry_count,
        task_def_name,
        owner_worker_id,
        owner_token,
    );
    let created = py.detach(|| attempt::create(&root, &meta))?;
    Ok(AttemptWorkspace { dir: created.dir, workspace: created.workspace })
}

/// Remove an attempt directory created by `create_attempt_workspace` (gone already is fine).
#[pyfunction]
pub fn remove_attempt_workspace(py: Python<'_>, dir: PathBuf) -> PyResult<()> {
    py.detach(|| attempt::remove(&dir)).map_err(PyErr::from)
}

/// One GC pass over `root`; returns the removed attempt directories. `ttl_seconds=0` and no
/// owners is a sweep (thread mode runs one at shutdown, W30).
#[pyfunction]
#[pyo3(signature = (root, *, ttl_seconds=0.0, active_owners=None))]
pub fn collect_attempt_workspaces(
    py: Python<'_>,
    root: PathBuf,
    ttl_seconds: f64,
    active_owners: Option<HashSet<(String, u32)>>,
) -> PyResult<Vec<PathBuf>> {
    if !(ttl_seconds.is_finite() && ttl_seconds >= 0.0) {
        return Err(PyValueError::new_err(format!("ttl_seconds must be a non-negative number, got {ttl_seconds}")));
    }
    let pass = gc::Pass {
        ttl: Duration::from_secs_f64(ttl_seconds),
        active_owners: active_owners.unwrap_or_default(),
        target: None,
    };
    Ok(py.detach(|| gc::run_pass(&root, &pass)).removed)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ATTEMPT_META_FILE_NAME", attempt::META_FILE_NAME)?;
    m.add("ATTEMPT_WORKSPACE_DIR_NAME", attempt::WORKSPACE_DIR_NAME)?;
    m.add_class::<AttemptWorkspace>()?;
    m.add_function(wrap_pyfunction!(create_attempt_workspace, m)?)?;
    m.add_function(wrap_pyfunction!(remove_attempt_workspace, m)?)?;
    m.add_function(wrap_pyfunction!(collect_attempt_workspaces, m)?)?;
    Ok(())
}
