//! perago's Rust core, built as the extension module `perago._core`.
//!
//! Each submodule owns one concept and is plain Rust, tested with `cargo test`;
//! `python` is the only place that knows about PyO3.

pub mod attempt;
pub mod backoff;
pub mod channel;
pub mod clock;
pub mod content_digest;
pub mod dispatcher;
pub mod file_receive;
pub mod frame;
pub mod gc;
pub mod http1;
pub mod lock;
pub mod log;
pub mod md5_digest;
pub mod relay;
pub mod supervisor;
pub mod sys;
pub mod task_json;
mod python;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    python::register(m)
}
