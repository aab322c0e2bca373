//! Workspace file bytes for Python: the content digest (`ContentDigest`, `digest_of_fd`),
//! the object cache's copy (`copy_with_digest`) and the download receive path
//! (`receive_body`). Every call that touches a file or socket releases the GIL.
//!
//! Errors are the exceptions Python's own socket and file calls raise, so callers handle
//! both paths alike: a read timeout is `TimeoutError("timed out")`, a body cut short is
//! `perago.http1.ProtocolError` (a `ConnectionError`), any other failure an `OSError` whose
//! `errno` names it.

use std::borrow::Cow;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use pyo3::exceptions::{PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;

use crate::content_digest::{self, with_thread_buffer, ContentDigest as Digest};
use crate::file_receive::{self, BodyReceiver, ReceiveError};

/// Inputs at least this long are hashed with the GIL released (as hashlib does).
const RELEASE_GIL_BYTES: usize = 2048;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CONTENT_DIGEST_ALGORITHM", "blake3")?;
    m.add_class::<ContentDigest>()?;
    m.add_function(wrap_pyfunction!(digest_of_fd, m)?)?;
    m.add_function(wrap_pyfunction!(copy_with_digest, m)?)?;
    m.add_function(wrap_pyfunction!(receive_body, m)?)?;
    Ok(())
}

/// A running BLAKE3 content digest: `update` with the bytes in order, then `hexdigest()`.
#[pyclass(module = "perago._core")]
#[derive(Default)]
pub struct ContentDigest(Digest);

#[pymethods]
impl ContentDigest {
    #[new]
    fn new() -> Self {
        ContentDigest::default()
    }

    /// Add `data` (bytes or bytearray) to the digest.
    fn update(&mut self, py: Python<'_>, data: Cow<'_, [u8]>) {
        if data.len() >= RELEASE_GIL_BYTES {
            let digest = &mut self.0;
            py.detach(|| digest.update(&data));
        } else {
            self.0.update(&data);
        }
    }

    /// 64 lowercase hex digits; the digest stays usable for more `update`s.
    fn hexdigest(&self) -> String {
        self.0.hex()
    }
}

fn borrow_fd<'a>(fd: RawFd, name: &str) -> PyResult<BorrowedFd<'a>> {
    if fd < 0 {
        return Err(PyValueError::new_err(format!("{name} must be an open file descriptor, got {fd}")));
    }
    // The caller keeps the fd open for the duration of the call (it holds the Python object).
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// `OSError(errno, strerror)`, which Python turns into the matching subclass
/// (`ConnectionResetError`, ...), exactly as its own failing calls do.
fn os_error(py: Python<'_>, error: io::Error) -> PyErr {
    let Some(errno) = error.raw_os_error() else {
        return PyOSError::new_err(error.to_string());
    };
    let strerror = py
        .import("os")
        .and_then(|os| os.call_method1("strerror", (errno,)))
        .and_then(|text| text.extract::<String>())
        .unwrap_or_else(|_| error.to_string());
    PyOSError::new_err((errno, strerror))
}

/// Content digest of what `fd` holds from its offset to its end (the offset moves there).
#[pyfunction]
fn digest_of_fd(py: Python<'_>, fd: RawFd) -> PyResult<String> {
    let fd = borrow_fd(fd, "fd")?;
    py.detach(|| with_thread_buffer(|buffer| content_digest::digest_of_fd(fd, buffer)))
        .map_err(|error| os_error(py, error))
}

/// Copy `source_fd` (from its offset) to `target_fd`; the content digest of the bytes copied.
#[pyfunction]
fn copy_with_digest(py: Python<'_>, source_fd: RawFd, target_fd: RawFd) -> PyResult<String> {
    let source = borrow_fd(source_fd, "source_fd")?;
    let target = borrow_fd(target_fd, "target_fd")?;
    py.detach(|| with_thread_buffer(|buffer| file_receive::copy_with_digest(source, target, buffer)))
        .map_err(|error| os_error(py, error))
}

/// Write the `count` bytes of a response body to `file_fd`: first `prefix` (body bytes
/// already read past the head), then the rest from `socket_fd`, each wait for more bytes
/// bounded by `timeout` seconds (`None`: no bound). Returns (content digest, MD5 hex or
/// None unless `md5`). Bytes after the body are left on the socket.
#[pyfunction]
#[pyo3(signature = (socket_fd, file_fd, prefix, count, *, timeout, md5))]
fn receive_body(
    py: Python<'_>,
    socket_fd: RawFd,
    file_fd: RawFd,
    prefix: &[u8],
    count: u64,
    timeout: Option<f64>,
    md5: bool,
) -> PyResult<(String, Option<String>)> {
    let socket = borrow_fd(socket_fd, "socket_fd")?;
    let file = borrow_fd(file_fd, "file_fd")?;
    let timeout = super::timeout_of(timeout)?;
    if prefix.len() as u64 > count {
        return Err(PyValueError::new_err(format!(
            "prefix holds {} bytes, more than the {count}-byte body",
            prefix.len()
        )));
    }
    let mut receiver = BodyReceiver::new(count, md5);
    let mut prefix = Some(prefix);
    loop {
        // One GIL release for the whole body: re-taking it while other transfer threads
        // run Python can wait for their switch interval.
        let outcome = py.detach(|| {
            if let Some(bytes) = prefix.take() {
                receiver.accept(file, bytes)?;
            }
            with_thread_buffer(|buffer| receiver.receive(socket, file, timeout, buffer))
        });
        match outcome {
            Ok(()) => break,
            Err(ReceiveError::Interrupted) => py.check_signals()?,
            Err(error) => return Err(receive_error(py, error)),
        }
    }
    let digests = receiver.finish();
    Ok((digests.content, digests.md5))
}

fn receive_error(py: Python<'_>, error: ReceiveError) -> PyErr {
    match error {
        ReceiveError::TimedOut => PyTimeoutError::new_err("timed out"),
        ReceiveError::ClosedEarly { missing } => {
            let message = format!("connection closed with {missing} body bytes still expected");
            match py.import("perago.http1").and_then(|module| module.getattr("ProtocolError")?.call1((message,))) {
                Ok(instance) => PyErr::from_value(instance),
                Err(error) => error,
            }
        }
        ReceiveError::Socket(error) | ReceiveError::File(error) => os_error(py, error),
        ReceiveError::Interrupted => unreachable!("interruptions are resumed by receive_body"),
    }
}
