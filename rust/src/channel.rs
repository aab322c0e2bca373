//! Blocking frame I/O over one inherited socket: what an executor, the broker and
//! (in tests) a stand-in broker use to talk over the process tree's sockets.
//!
//! Plain Rust; `python` wraps it with the GIL released while blocked.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::frame::{Decoder, FrameError, Kind, Message};
use crate::sys;

const READ_BUFFER_LEN: usize = 64 * 1024;

/// What one `recv` produced.
#[derive(Debug)]
pub enum Received {
    /// A whole message; `SlotSocket` carries the fd that travelled with it.
    Message(Message, Option<OwnedFd>),
    /// The peer closed its end.
    Closed,
    TimedOut,
    /// A signal interrupted the wait; the caller runs handlers and decides.
    Interrupted,
}

#[derive(Debug)]
pub enum ChannelError {
    Io(io::Error),
    Protocol(FrameError),
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::Io(error) => write!(f, "{error}"),
            ChannelError::Protocol(error) => write!(f, "peer sent an invalid frame: {error}"),
        }
    }
}

impl From<io::Error> for ChannelError {
    fn from(error: io::Error) -> Self {
        ChannelError::Io(error)
    }
}

/// A framed unix stream socket.
pub struct FrameStream {
    fd: OwnedFd,
    decoder: Decoder,
    passed_fds: VecDeque<OwnedFd>,
    /// One read's worth of bytes, reused (not zeroed) for every read.
    buffer: Vec<u8>,
}

impl FrameStream {
    pub fn new(fd: OwnedFd) -> FrameStream {
        FrameStream { fd, decoder: Decoder::new(), passed_fds: VecDeque::new(), buffer: vec![0; READ_BUFFER_LEN] }
    }

    /// Adopt an fd number inherited from the supervisor (named by `variable`): check it
    /// is a socket and make it close-on-exec so the process's own children never hold it.
    pub fn adopt_inherited(variable: &str) -> Result<FrameStream, String> {
        let fd = inherited_fd(variable)?;
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(format!(
                "{variable}={fd} is not an open socket; was this process started by the perago supervisor?"
            ));
        }
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(FrameStream::new(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn send(&self, message: &Message, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let bytes = message.encode();
        match fd {
            Some(fd) => sys::send_with_fd(self.fd.as_fd(), &bytes, fd),
            None => sys::write_all(self.fd.as_fd(), &bytes),
        }
    }

    /// Wait for the next message up to `timeout` (`None` = for ever; zero = only what
    /// has already arrived).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Received, ChannelError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(frame) = self.decoder.next_frame().map_err(ChannelError::Protocol)? {
                let carries_fd = frame.kind == Kind::SlotSocket;
                let message = Message::from_frame(frame).map_err(ChannelError::Protocol)?;
                let fd = if carries_fd { self.passed_fds.pop_front() } else { None };
                return Ok(Received::Message(message, fd));
            }
            // Never a blocking read: it sleeps on the socket's wait queue unfiltered, so the
            // peer reading our last frame (which frees write space, an EPOLLOUT wake-up)
            // woke this process for nothing once per task. `poll(POLLIN)` is woken only
            // for input.
            let buffer = &mut self.buffer[..];
            match sys::recv_with_fds(self.fd.as_fd(), buffer, true) {
                Ok((0, _)) => {
                    return if self.decoder.pending() == 0 {
                        Ok(Received::Closed)
                    } else {
                        Err(ChannelError::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed the socket mid-frame",
                        )))
                    }
                }
                Ok((n, fds)) => {
                    self.decoder.push(&self.buffer[..n]);
                    self.passed_fds.extend(fds);
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(Received::Interrupted),
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => return Ok(Received::Closed),
                Err(error) => return Err(error.into()),
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(Received::TimedOut);
            }
            match sys::wait_readable(self.fd.as_fd(), remaining) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(Received::Interrupted),
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// The fd number in environment variable `variable`.
pub fn inherited_fd(variable: &str) -> Result<RawFd, String> {
    let value = std::env::var(variable)
        .map_err(|_| format!("{variable} is not set; was this process started by the perago supervisor?"))?;
    value
        .trim()
        .parse::<RawFd>()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| format!("{variable} must be a file descriptor number, got {value:?}"))
}

/// Tell the supervisor this process is ready: one byte on the inherited ready pipe
/// (`PERAGO_READY_FD`, then closed), and unblock SIGINT/SIGTERM, which the supervisor
/// spawned us with blocked so a signal during boot waits for our handlers (W12).
/// Without a supervisor (variable unset) only the unblocking happens.
pub fn announce_ready() -> io::Result<()> {
    static ANNOUNCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let first = !ANNOUNCED.swap(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(fd) = inherited_fd("PERAGO_READY_FD").ok().filter(|_| first) {
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut stat) } == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFIFO {
            let pipe = unsafe { OwnedFd::from_raw_fd(fd) };
            sys::write_all(pipe.as_fd(), b"R")?;
            drop(pipe);
        }
    }
    sys::mask_signals(&[libc::SIGINT, libc::SIGTERM], false)
}

/// Set the OS-visible process title: `comm` (15 bytes, shown by `top`/`ps -o comm`) and,
/// where it fits, the argv area that `ps` shows (the title is cut to the original
/// command line's length; Python has already copied `sys.argv`).
pub fn set_process_title(title: &str) {
    let comm: Vec<u8> = title.bytes().take(15).chain(std::iter::once(0)).collect();
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) };
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    // Fields after the parenthesised comm; arg_start/arg_end are fields 48 and 49.
    let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) else { return };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(start), Some(end)) = (fields.get(45), fields.get(46)) else { return };
    let (Ok(start), Ok(end)) = (start.parse::<usize>(), end.parse::<usize>()) else { return };
    if end <= start + 1 || end - start > 1 << 16 {
        return;
    }
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    let length = title.len().min(area.len() - 1);
    area.fill(0);
    area[..length].copy_from_slice(&title.as_bytes()[..length]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross_a_socketpair() {
        let (a, b) = sys::socketpair().unwrap();
        let (left, mut right) = (FrameStream::new(a), FrameStream::new(b));
        let (passed, keep) = sys::socketpair().unwrap();
        left.send(&Message::Ready { generation: 3 }, None).unwrap();
        left.send(&Message::SlotSocket { slot: 2, generation: 3, worker_id: "w0002".into() }, Some(passed.as_fd()))
            .unwrap();
        drop(passed);
        match right.recv(Some(Duration::from_secs(5))).unwrap() {
            Received::Message(Message::Ready { generation: 3 }, None) => {}
            other => panic!("{other:?}"),
        }
        let fd = match right.recv(Some(Duration::from_secs(5))).unwrap() {
            Received::Message(Message::SlotSocket { slot: 2, .. }, Some(fd)) => fd,
            other => panic!("{other:?}"),
        };
        FrameStream::new(fd).send(&Message::Stop, None).unwrap();
        assert!(matches!(FrameStream::new(keep).recv(None).unwrap(), Received::Message(Message::Stop, None)));
        assert!(matches!(right.recv(Some(Duration::from_millis(10))).unwrap(), Received::TimedOut));
        drop(left);
        assert!(matches!(right.recv(None).unwrap(), Received::Closed));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let (a, b) = sys::socketpair().unwrap();
        sys::write_all(a.as_fd(), b"this is not a frame at all").unwrap();
        assert!(matches!(FrameStream::new(b).recv(None), Err(ChannelError::Protocol(_))));
    }
}
