//! One supervised child: how it is spawned, the state it is in, and the last lines
//! of its stderr (kept to explain a boot failure).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use crate::frame::ExitCause;
use crate::sys;

/// Lines of a child's stderr kept for the boot-failure report.
pub const STDERR_TAIL_LINES: usize = 20;
const MAX_LINE_BYTES: usize = 4096;

/// Which part of the process tree a child is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Broker,
    Executor { slot: u32 },
    /// The warm spare: booted, owning no slot until promoted into one.
    Spare,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Executor { .. } => "executor",
            Role::Spare => "spare",
        }
    }
}

/// A child that is running: its process, its pidfd and its pipes.
pub struct Running {
    pub process: std::process::Child,
    pub pid: u32,
    pub pidfd: OwnedFd,
    /// Read end of the ready pipe until the child writes to it or closes it.
    pub ready_pipe: Option<OwnedFd>,
    /// Read end of the child's stderr until end of file.
    pub stderr: Option<OwnedFd>,
    pub started: Instant,
    pub ready_at: Option<Instant>,
}

/// Where a child is in its life.
pub enum ChildState {
    /// Not running; spawn (again) once `at` has passed.
    Pending {
        at: Instant,
    },
    Running(Running),
    /// Will not be started again (the runtime is draining).
    Stopped,
}

/// What to start and what the child inherits.
pub struct SpawnSpec<'a> {
    pub argv: &'a [OsString],
    pub env: &'a [(OsString, OsString)],
    pub extra_env: Vec<(String, String)>,
    /// Fds the child keeps across exec (their numbers are in `extra_env`).
    pub inherit: Vec<RawFd>,
}

/// Start a child. It keeps exactly the fds in `spec.inherit` plus a ready pipe
/// (`PERAGO_READY_FD`); it gets SIGKILL when the spawning thread exits
/// (`PR_SET_PDEATHSIG`), so spawn only from the loop's thread; it starts with
/// SIGINT and SIGTERM blocked until it has installed its own handlers (W12) —
/// `perago._core` channels unblock them in `ready()`.
///
/// `pre_exec` is used because std has no equivalent for the parent-death signal;
/// everything in it is an async-signal-safe syscall and nothing allocates.
pub fn spawn(spec: SpawnSpec<'_>) -> io::Result<Running> {
    let (ready_read, ready_write) = sys::pipe()?;
    let ready_write = sys::above_stdio(ready_write)?;
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .envs(spec.extra_env)
        .env("PERAGO_READY_FD", ready_write.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let parent = std::process::id() as i32;
    let mut inherit = spec.inherit;
    inherit.push(ready_write.as_raw_fd());
    unsafe {
        command.pre_exec(move || {
            sys::set_parent_death_signal()?;
            if sys::getppid() != parent {
                // The supervisor died between fork and prctl: nobody would kill us later.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            for fd in &inherit {
                sys::clear_cloexec(*fd)?;
            }
            sys::mask_signals(&[libc::SIGINT, libc::SIGTERM], true)
        });
    }
    let mut process = command.spawn()?;
    drop(ready_write);
    let pid = process.id();
    let pidfd = sys::pidfd_open(pid)?;
    let stderr: Option<OwnedFd> = process.stderr.take().map(OwnedFd::from);
    if let Some(fd) = &stderr {
        sys::set_nonblocking(fd.as_fd(), true)?;
    }
    sys::set_nonblocking(ready_read.as_fd(), true)?;
    Ok(Running { process, pid, pidfd, ready_pipe: Some(ready_read), stderr, started: Instant::now(), ready_at: None })
}

pub fn exit_cause(status: ExitStatus) -> ExitCause {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCause::Code(code),
        (None, Some(signal)) => ExitCause::Signal(signal),
        (None, None) => ExitCause::Code(-1),
    }
}

/// The last lines a child wrote to stderr; complete lines are also handed back for forwarding.
#[derive(Default)]
pub struct StderrTail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl StderrTail {
    /// Add bytes read from the pipe; returns the complete lines (with newline) to forward.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut complete = Vec::new();
        for &byte in bytes {
            self.partial.push(byte);
            if byte == b'\n' || self.partial.len() >= MAX_LINE_BYTES {
                if byte != b'\n' {
                    self.partial.push(b'\n');
                }
                complete.push(std::mem::take(&mut self.partial));
            }
        }
        for line in &complete {
            self.remember(line);
        }
        complete
    }

    /// End of stream: whatever is left is a last line.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            return None;
        }
        let mut line = std::mem::take(&mut self.partial);
        line.push(b'\n');
        self.remember(&line);
        Some(line)
    }

    fn remember(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line).trim_end_matches('\n').to_string();
        if self.lines.len() == STDERR_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(text);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines_and_forwards_complete_ones() {
        let mut tail = StderrTail::default();
        assert!(tail.push(b"Trace").is_empty());
        assert_eq!(
            tail.push(b"back\nImportError: x\npart"),
            vec![b"Traceback\n".to_vec(), b"ImportError: x\n".to_vec()]
        );
        assert_eq!(tail.finish(), Some(b"part\n".to_vec()));
        assert_eq!(tail.lines(), vec!["Traceback", "ImportError: x", "part"]);
        for i in 0..50 {
            tail.push(format!("{i}\n").as_bytes());
        }
        assert_eq!(tail.lines().len(), STDERR_TAIL_LINES);
        assert_eq!(tail.lines().last().unwrap(), "49");
    }
}
