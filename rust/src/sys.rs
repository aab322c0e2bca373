//! Thin, safe wrappers over the Linux syscalls the process tree needs and std
//! does not offer: socketpairs, pidfds, signalfd, timerfd, epoll, fd passing
//! with `SCM_RIGHTS`, and the few calls a child makes between fork and exec.
//!
//! Every fd created here is `O_CLOEXEC`; the only way an fd reaches a child is
//! [`clear_cloexec`] called in that child after fork (see `supervisor::spawn`).

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A connected `SOCK_STREAM` unix socketpair, both ends close-on-exec.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pipe `(read end, write end)`, both close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// Make `fd` survive `exec`. Async-signal-safe: meant for a child between fork and exec.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Ask the kernel to SIGKILL this process when the thread that forked it exits.
/// Async-signal-safe: meant for a child between fork and exec.
pub fn set_parent_death_signal() -> io::Result<()> {
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Move `fd` to a number above 2 if it landed on stdin/stdout/stderr (possible when the
/// supervisor was started with those closed), so a child's stdio setup cannot clobber it.
pub fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let moved = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

pub fn getppid() -> i32 {
    unsafe { libc::getppid() }
}

/// Block (or unblock) `signals` for the calling thread. Async-signal-safe.
pub fn mask_signals(signals: &[i32], block: bool) -> io::Result<()> {
    let mut set: libc::sigset_t = unsafe { zeroed() };
    unsafe { libc::sigemptyset(&mut set) };
    for &signal in signals {
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    let how = if block { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK };
    let rc = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// A pidfd: readable once the process has exited. Needs Linux 5.3.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `read(2)` retrying on EINTR. `Ok(0)` is end of file.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match cvt_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Write all of `bytes`, retrying on EINTR. Never raises SIGPIPE (uses `send` on sockets).
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let ret = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        let written = match cvt_size(ret) {
            Ok(n) => n,
            Err(error) if error.raw_os_error() == Some(libc::ENOTSOCK) => return write_file(fd, bytes),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

/// Write all of `bytes` to a file or pipe with `write(2)`, retrying on EINTR.
pub fn write_file(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = match cvt_size(unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) }) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

/// One non-blocking send of as much of `bytes` as the socket takes, with `fd` (if any)
/// attached to the first byte. `Ok(0)` with a non-empty buffer never happens: a full
/// socket is a `WouldBlock` error.
pub fn send_some(socket: BorrowedFd<'_>, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<usize> {
    sendmsg(socket, bytes, fd, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
}

/// Send `bytes` on a unix socket with `fd` attached as `SCM_RIGHTS` ancillary data.
pub fn send_with_fd(socket: BorrowedFd<'_>, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let sent = sendmsg(socket, bytes, Some(fd), libc::MSG_NOSIGNAL)?;
    // The fd travels with the first byte; the rest is ordinary stream data.
    write_all(socket, &bytes[sent..])
}

/// One `sendmsg(2)` of `bytes` with `fd` (if any) as `SCM_RIGHTS`, retried on `EINTR`.
fn sendmsg(socket: BorrowedFd<'_>, bytes: &[u8], fd: Option<BorrowedFd<'_>>, flags: libc::c_int) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
        }
    }
    loop {
        match cvt_size(unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, flags) }) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Receive up to `buf.len()` bytes from a unix socket, plus any fds attached to them
/// (received close-on-exec). `Ok((0, _))` is end of stream. `dont_wait` makes a
/// blocking socket answer `WouldBlock` instead of waiting; a waiting call that a signal
/// interrupts answers `Interrupted`, so the caller can run its signal handlers.
pub fn recv_with_fds(socket: BorrowedFd<'_>, buf: &mut [u8], dont_wait: bool) -> io::Result<(usize, Vec<OwnedFd>)> {
    let flags = libc::MSG_CMSG_CLOEXEC | if dont_wait { libc::MSG_DONTWAIT } else { 0 };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let space = unsafe { libc::CMSG_SPACE((4 * size_of::<RawFd>()) as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let received = loop {
        match cvt_size(unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, flags) }) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted && dont_wait => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let payload = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for index in 0..payload / size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(index));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((received, fds))
}

/// Wait until `fd` is readable or `timeout` passes (`None` = forever).
/// Returns `Ok(true)` if readable (or hung up), `Ok(false)` on timeout;
/// EINTR comes back as an `Interrupted` error so callers can run signal handlers.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    poll_one(fd, libc::POLLIN, timeout)
}

/// Wait until `fd` can take more bytes (or failed) or `timeout` passes; `Ok(false)` on timeout.
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    loop {
        match poll_one(fd, libc::POLLOUT, Some(timeout)) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn poll_one(fd: BorrowedFd<'_>, events: libc::c_short, timeout: Option<Duration>) -> io::Result<bool> {
    let mut pollfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
    let ready = cvt(unsafe { libc::poll(&mut pollfd, 1, timeout_millis(timeout)) })?;
    Ok(ready > 0)
}

/// `timeout` for poll/epoll_wait: whole milliseconds rounded up (never a busy zero for a
/// sub-millisecond wait), `-1` for none.
pub fn timeout_millis(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |t| t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int)
}

/// An epoll instance; each registered fd carries a caller-chosen `u64` token.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Watch `fd` for readability (and hang-up) under `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut event) }).map(drop)
    }

    /// Change what `fd` is watched for: readability, plus writability when `writable`.
    pub fn modify(&self, fd: BorrowedFd<'_>, token: u64, writable: bool) -> io::Result<()> {
        let events = libc::EPOLLIN as u32 | if writable { libc::EPOLLOUT as u32 } else { 0 };
        let mut event = libc::epoll_event { events, u64: token };
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd.as_raw_fd(), &mut event) }).map(drop)
    }

    pub fn remove(&self, fd: BorrowedFd<'_>) {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd.as_raw_fd(), &mut event) };
    }

    /// Block until at least one fd is ready; returns the ready tokens. EINTR yields none.
    pub fn wait(&self, capacity: usize) -> io::Result<Vec<u64>> {
        let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)];
        let ready = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, -1) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted { Ok(Vec::new()) } else { Err(error) };
        }
        Ok(events[..ready as usize].iter().map(|event| event.u64).collect())
    }
}

/// SIGINT/SIGTERM as readable events: the signals are blocked in the calling thread
/// for the life of this value (the previous mask is restored on drop), so no handler
/// runs; the loop reads them like any other fd.
pub struct SignalFd {
    fd: OwnedFd,
    previous: libc::sigset_t,
}

impl SignalFd {
    pub fn new(signals: &[i32]) -> io::Result<SignalFd> {
        let mut set: libc::sigset_t = unsafe { zeroed() };
        unsafe { libc::sigemptyset(&mut set) };
        for &signal in signals {
            unsafe { libc::sigaddset(&mut set, signal) };
        }
        let mut previous: libc::sigset_t = unsafe { zeroed() };
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            let error = io::Error::last_os_error();
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
            return Err(error);
        }
        Ok(SignalFd { fd: unsafe { OwnedFd::from_raw_fd(fd) }, previous })
    }

    /// Every signal delivered since the last call, in arrival order.
    pub fn read_all(&self) -> Vec<i32> {
        let mut signals = Vec::new();
        loop {
            let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
            let size = size_of::<libc::signalfd_siginfo>();
            let ret = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if ret != size as isize {
                return signals;
            }
            signals.push(unsafe { info.assume_init() }.ssi_signo as i32);
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

/// A one-shot monotonic timer: readable when the armed delay has passed.
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    pub fn new() -> io::Result<TimerFd> {
        let fd = cvt(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) })?;
        Ok(TimerFd { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Fire once after `delay`; `None` disarms.
    pub fn arm(&self, delay: Option<Duration>) -> io::Result<()> {
        let value = match delay {
            // A zero it_value disarms, so "now" becomes one nanosecond.
            Some(delay) => libc::timespec {
                tv_sec: delay.as_secs() as libc::time_t,
                tv_nsec: (delay.subsec_nanos().max(u32::from(delay.as_secs() == 0))) as libc::c_long,
            },
            None => libc::timespec { tv_sec: 0, tv_nsec: 0 },
        };
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
        cvt(unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) }).map(drop)
    }

    /// Consume the expiration so the fd stops being readable.
    pub fn acknowledge(&self) {
        let mut count = [0u8; 8];
        unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn fd_travels_over_socketpair() {
        let (left, right) = socketpair().unwrap();
        let (payload_a, payload_b) = socketpair().unwrap();
        send_with_fd(left.as_fd(), b"hello", payload_a.as_fd()).unwrap();
        drop(payload_a);
        let mut buf = [0u8; 16];
        let (n, fds) = recv_with_fds(right.as_fd(), &mut buf, false).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        write_all(fds[0].as_fd(), b"via passed fd").unwrap();
        let n = read(payload_b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"via passed fd");
        let flags = unsafe { libc::fcntl(fds[0].as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "received fds must be close-on-exec");
    }

    #[test]
    fn timer_wakes_epoll() {
        let epoll = Epoll::new().unwrap();
        let timer = TimerFd::new().unwrap();
        epoll.add(timer.fd(), 7).unwrap();
        timer.arm(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(epoll.wait(4).unwrap(), vec![7]);
        timer.acknowledge();
    }

    #[test]
    fn pidfd_reports_exit() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pidfd = pidfd_open(child.id()).unwrap();
        assert!(wait_readable(pidfd.as_fd(), Some(Duration::from_secs(10))).unwrap());
        assert!(child.wait().unwrap().success());
    }
}
