//! What the loop does with each kind of event: signals, the timer, frames from the
//! broker, a child's ready pipe, its stderr and its exit.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::child::{self, ChildState, Role, Running, StderrTail};
use super::gc_worker;
use super::{Member, Outcome, Phase, Supervisor, EXIT_BOOT_FAILURE, EXIT_BROKER_DIED};
use crate::backoff;
use crate::frame::{ExitCause, Message};
use crate::gc;
use crate::log;
use crate::sys;

impl Supervisor {
    pub(super) fn on_signals(&mut self) {
        for signal in self.signals.read_all() {
            let name = if signal == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
            match self.phase {
                Phase::Running => {
                    log::info("stop requested; draining", json!({"signal": name}));
                    self.set_outcome(Outcome {
                        exit_code: 0,
                        reason: "signal",
                        message: format!("stopped by {name}"),
                        stderr_tail: Vec::new(),
                    });
                    self.begin_drain();
                }
                Phase::Draining { .. } if signal == libc::SIGINT => self.stop_now(),
                Phase::Draining { .. } => {
                    log::info("already draining; send SIGINT again to stop now", json!({"signal": name}))
                }
            }
        }
    }

    pub(super) fn on_timer(&mut self) {
        self.timer.acknowledge();
        let now = Instant::now();
        if let Phase::Draining { force_kill_at: Some(at) } = self.phase {
            if at <= now {
                self.phase = Phase::Draining { force_kill_at: None };
                self.force_kill();
            }
            return;
        }
        if self.next_gc_at <= now {
            self.next_gc_at = now + self.config.gc_interval.max(Duration::from_millis(1));
            let pass = gc::Pass { ttl: self.config.gc_ttl, active_owners: self.live_executor_owners(), target: None };
            self.gc.submit(gc_worker::Job::Periodic(pass));
        }
    }

    pub(super) fn on_control(&mut self) {
        if !self.control_open {
            return;
        }
        self.flush_control();
        let mut buffer = [0u8; 4096];
        loop {
            match sys::recv_with_fds(self.control.as_fd(), &mut buffer, true) {
                Ok((0, _)) => {
                    self.close_control();
                    return;
                }
                Ok((n, _fds)) => self.control_decoder.push(&buffer[..n]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.close_control();
                    return;
                }
            }
        }
        loop {
            match self.control_decoder.next_frame() {
                Ok(Some(frame)) => match Message::from_frame(frame) {
                    Ok(Message::Drained) => log::info("broker drained", json!({"phase": "drain"})),
                    Ok(other) => log::warning(
                        "supervisor ignored an unexpected control frame",
                        json!({"frame": other.to_frame().kind.name()}),
                    ),
                    Err(error) => log::warning(
                        "supervisor received an invalid control frame",
                        json!({"exception": error.to_string()}),
                    ),
                },
                Ok(None) => break,
                Err(error) => {
                    log::error("control socket stream is corrupt; closing it", json!({"exception": error.to_string()}));
                    self.close_control();
                    break;
                }
            }
        }
    }

    pub(super) fn on_ready_pipe(&mut self, index: usize) {
        let became_ready = {
            let member = &mut self.members[index];
            let ChildState::Running(running) = &mut member.state else { return };
            let Some(pipe) = &running.ready_pipe else { return };
            let mut byte = [0u8; 16];
            match sys::read(pipe.as_fd(), &mut byte) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Ok(n) if n > 0 => {
                    running.ready_at = Some(Instant::now());
                }
                _ => {}
            }
            // Ready or closed: either way the pipe has said all it will.
            let pipe = running.ready_pipe.take().expect("checked above");
            self.epoll.remove(pipe.as_fd());
            running.ready_at.map(|at| (running.pid, at.duration_since(running.started)))
        };
        if let Some((pid, startup)) = became_ready {
            let member = &mut self.members[index];
            member.boot_failures = 0;
            log::info(
                "worker process ready",
                with_identity(member, pid, json!({"startup_seconds": startup.as_secs_f64()})),
            );
        }
    }

    pub(super) fn on_stderr(&mut self, index: usize) {
        let member = &mut self.members[index];
        let ChildState::Running(running) = &mut member.state else { return };
        let ended = forward_stderr(running, &mut member.tail);
        if ended {
            if let Some(fd) = running.stderr.take() {
                self.epoll.remove(fd.as_fd());
            }
        }
    }

    pub(super) fn on_exit(&mut self, index: usize) {
        let (running, cause) = {
            let member = &mut self.members[index];
            let ChildState::Running(running) = &mut member.state else { return };
            let cause = match running.process.try_wait() {
                Ok(Some(status)) => child::exit_cause(status),
                // A readable pidfd means it has exited; nothing to do until waitpid agrees.
                Ok(None) => return,
                // Reaped by someone else (SIGCHLD ignored in this process): status unknown.
                Err(_) => ExitCause::Code(-1),
            };
            let ChildState::Running(running) = std::mem::replace(&mut member.state, ChildState::Stopped) else {
                unreachable!()
            };
            (running, cause)
        };
        self.epoll.remove(running.pidfd.as_fd());
        let mut running = running;
        // A child may write "ready" and die in the same instant; read what it left behind.
        if let Some(pipe) = running.ready_pipe.take() {
            let mut byte = [0u8; 16];
            if matches!(sys::read(pipe.as_fd(), &mut byte), Ok(n) if n > 0) {
                running.ready_at = Some(Instant::now());
            }
            self.epoll.remove(pipe.as_fd());
        }
        // Drain what is already in the stderr pipe (never wait: a grandchild may hold it open).
        forward_stderr(&mut running, &mut self.members[index].tail);
        if let Some(fd) = running.stderr.take() {
            self.epoll.remove(fd.as_fd());
        }
        match self.members[index].role {
            Role::Broker => self.on_broker_exit(index, running, cause),
            Role::Executor { .. } => self.on_executor_exit(index, running, cause),
            Role::Spare => self.on_spare_exit(index, running, cause),
        }
    }

    pub(super) fn on_broker_exit(&mut self, index: usize, running: Running, cause: ExitCause) {
        let member = &self.members[index];
        let fields = with_identity(member, running.pid, exit_fields(cause, &running));
        if matches!(self.phase, Phase::Draining { .. }) {
            log::info("broker process exited", fields);
            return;
        }
        log::error("broker process exited; stopping process runtime", fields);
        let outcome = if running.ready_at.is_none() {
            Outcome {
                exit_code: EXIT_BOOT_FAILURE,
                reason: "boot-failure",
                message: format!("broker {} exited before it was ready ({})", member.worker_id, describe(cause)),
                stderr_tail: member.tail.lines(),
            }
        } else {
            Outcome {
                exit_code: EXIT_BROKER_DIED,
                reason: "broker-exited",
                message: format!("broker {} exited while running ({})", member.worker_id, describe(cause)),
                stderr_tail: member.tail.lines(),
            }
        };
        self.set_outcome(outcome);
        self.begin_drain();
    }

    /// An exit before the child became ready (`what`, `ready`: "executor", "ready" or
    /// "spare executor", "warm") counts as a boot failure, any other resets the count;
    /// `boot_failure_limit` in a row stop the runtime with exit 3 and the child's last
    /// stderr lines. True when it stops.
    pub(super) fn count_boot_failure(
        &mut self,
        index: usize,
        running: &Running,
        cause: ExitCause,
        (what, ready): (&str, &str),
        fields: &mut Value,
    ) -> bool {
        let member = &mut self.members[index];
        if running.ready_at.is_some() {
            member.boot_failures = 0;
            return false;
        }
        member.boot_failures += 1;
        if member.boot_failures < self.config.boot_failure_limit {
            return false;
        }
        let tail = member.tail.lines();
        let message = format!(
            "{what} {} exited before it was {ready} {} times in a row (last: {})",
            member.worker_id,
            member.boot_failures,
            describe(cause)
        );
        fields["consecutive_boot_failures"] = json!(member.boot_failures);
        fields["stderr_tail"] = json!(tail);
        log::error(
            &format!("{what} cannot start; stopping process runtime"),
            with_identity(member, running.pid, fields.take()),
        );
        self.set_outcome(Outcome { exit_code: EXIT_BOOT_FAILURE, reason: "boot-failure", message, stderr_tail: tail });
        self.begin_drain();
        true
    }

    pub(super) fn on_executor_exit(&mut self, index: usize, running: Running, cause: ExitCause) {
        let Role::Executor { slot } = self.members[index].role else { unreachable!() };
        // The broker hears about the exit before anything else happens to the slot.
        let generation = self.members[index].generation;
        let worker_id = self.members[index].worker_id.clone();
        self.send_control(&Message::ExecutorExited { slot, generation, worker_id: worker_id.clone(), cause }, None);
        self.gc.submit(gc_worker::Job::Targeted { worker_id: worker_id.clone(), pid: running.pid });
        let mut fields = exit_fields(cause, &running);
        if matches!(self.phase, Phase::Draining { .. }) {
            log::info("worker process exited", with_identity(&self.members[index], running.pid, fields));
            return;
        }
        if self.count_boot_failure(index, &running, cause, ("executor", "ready"), &mut fields) {
            return;
        }
        let member = &mut self.members[index];
        // Healthy means up that long after it became ready (boot time does not count).
        if running.ready_at.is_some_and(|ready| ready.elapsed() >= self.config.healthy_after) {
            member.restart_count = 0;
        }
        // A ready executor that exits 0 was asked to stop (a signal sent to it alone): not a
        // crash, so it does not climb the backoff (W6). Anything else does.
        let clean = cause == ExitCause::Code(0) && running.ready_at.is_some();
        let delay = self.config.backoff_unit.mul_f64(backoff::restart_backoff_seconds(member.restart_count) as f64);
        if !clean {
            member.restart_count += 1;
        }
        member.state = ChildState::Pending { at: Instant::now() + delay };
        fields["restart_delay_seconds"] = json!(delay.as_secs_f64());
        fields["consecutive_boot_failures"] = json!(member.boot_failures);
        if matches!(cause, ExitCause::Signal(signal) if signal == libc::SIGKILL) {
            fields["hint"] = json!("killed by SIGKILL: out of memory, or killed by hand?");
        }
        if clean {
            log::info("worker process exited cleanly; restarting", with_identity(member, running.pid, fields));
        } else {
            log::error("worker process exited; restarting", with_identity(member, running.pid, fields));
        }
    }
}

/// Read what the child wrote to stderr, forward whole lines, remember the tail.
/// Returns true at end of file (or on a read error).
pub(super) fn forward_stderr(running: &mut Running, tail: &mut StderrTail) -> bool {
    let Some(fd) = &running.stderr else { return true };
    let mut buffer = [0u8; 8192];
    loop {
        match sys::read(fd.as_fd(), &mut buffer) {
            Ok(0) => {
                if let Some(line) = tail.finish() {
                    log::write_stderr_line(&line);
                }
                return true;
            }
            Ok(n) => {
                for line in tail.push(&buffer[..n]) {
                    log::write_stderr_line(&line);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

pub(super) fn describe(cause: ExitCause) -> String {
    match cause {
        ExitCause::Code(code) => format!("exit code {code}"),
        ExitCause::Signal(signal) => format!("killed by signal {signal}"),
    }
}

pub(super) fn exit_fields(cause: ExitCause, running: &Running) -> Value {
    let (code, signal) = match cause {
        ExitCause::Code(code) => (Some(code), None),
        ExitCause::Signal(signal) => (None, Some(signal)),
    };
    json!({
        "exit_code": code,
        "signal": signal,
        "uptime_seconds": running.started.elapsed().as_secs_f64(),
        "was_ready": running.ready_at.is_some(),
    })
}

/// Prefix `fields` with who the record is about.
pub(super) fn with_identity(member: &Member, pid: u32, fields: Value) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("worker_id".into(), json!(member.worker_id));
    object.insert("role".into(), json!(member.role.name()));
    object.insert("pid".into(), json!(pid));
    if let Role::Executor { slot } = member.role {
        object.insert("slot".into(), json!(slot));
    }
    object.insert("generation".into(), json!(member.generation));
    if let Value::Object(extra) = fields {
        object.extend(extra);
    }
    Value::Object(object)
}
