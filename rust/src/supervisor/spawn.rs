//! Starting members: the broker first, then executors in slot order, each
//! restart a new generation with a new slot socketpair whose broker end goes to the
//! broker over the control socket — or the warm spare promoted into the slot when one
//! is warm. The spare itself starts last, once nothing else is booting.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use serde_json::json;

use super::child::{self, ChildState, Role, SpawnSpec};
use super::events::with_identity;
use super::{Outcome, Phase, Supervisor, EVENT_EXIT, EVENT_READY, EVENT_SPARE_SOCKET, EVENT_STDERR, EXIT_BOOT_FAILURE};
use crate::frame::Message;
use crate::log;
use crate::sys;

impl Supervisor {
    /// Start every member whose time has come (only while running).
    pub(super) fn spawn_due(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        for index in 0..self.members.len() {
            let due = matches!(self.members[index].state, ChildState::Pending { at } if at <= now);
            let may_start = match self.members[index].role {
                Role::Spare => self.spare_may_start(),
                _ => true,
            };
            if due && may_start {
                let started = match self.members[index].role {
                    Role::Executor { .. } => match self.promote_spare(index) {
                        Ok(true) => Ok(()),
                        Ok(false) => self.spawn_member(index),
                        Err(error) => Err(error),
                    },
                    _ => self.spawn_member(index),
                };
                if let Err(error) = started {
                    let member = &self.members[index];
                    let message = format!("cannot start {} {}: {error}", member.role.name(), member.worker_id);
                    log::error(
                        "worker process could not be spawned; stopping process runtime",
                        json!({"worker_id": member.worker_id, "exception": error.to_string()}),
                    );
                    self.set_outcome(Outcome {
                        exit_code: EXIT_BOOT_FAILURE,
                        reason: "boot-failure",
                        message,
                        stderr_tail: Vec::new(),
                    });
                    self.begin_drain();
                    return;
                }
            }
        }
    }

    pub(super) fn spawn_member(&mut self, index: usize) -> io::Result<()> {
        let prefix = self.config.worker_id_prefix.clone();
        let member = &mut self.members[index];
        member.generation += 1;
        let is_restart = member.generation > 1;
        member.tail.clear();
        let generation = member.generation;
        let mut extra_env = vec![
            ("PERAGO_WORKER_ID_PREFIX".to_string(), prefix),
            ("PERAGO_SUPERVISOR_PID".to_string(), std::process::id().to_string()),
        ];
        if !matches!(member.role, Role::Executor { .. }) {
            // An executor's identity comes from slot_env; the spare has none until promoted.
            let title = format!("perago {} {}", member.role.name(), member.worker_id);
            extra_env.push(("PERAGO_PROCESS_TITLE".to_string(), title));
        }
        if member.role == Role::Broker {
            extra_env.push(("PERAGO_WORKER_ID".to_string(), member.worker_id.clone()));
        }
        let (running, broker_end) = match member.role {
            Role::Broker => {
                let control =
                    self.control_for_broker.take().ok_or_else(|| io::Error::other("the broker is never restarted"))?;
                extra_env.push(("PERAGO_CONTROL_FD".into(), control.as_raw_fd().to_string()));
                extra_env.push(("PERAGO_PROCESS_COUNT".into(), self.config.process_count.to_string()));
                let spec = SpawnSpec {
                    argv: &self.config.broker_argv,
                    env: &self.config.env,
                    extra_env,
                    inherit: vec![control.as_raw_fd()],
                };
                (child::spawn(spec)?, None)
            }
            Role::Executor { slot } => {
                let (broker_end, executor_end) = sys::socketpair()?;
                let executor_end = sys::above_stdio(executor_end)?;
                extra_env.extend(slot_env(slot, generation, &member.worker_id));
                extra_env.push(("PERAGO_SLOT_FD".into(), executor_end.as_raw_fd().to_string()));
                let spec = SpawnSpec {
                    argv: &self.config.executor_argv,
                    env: &self.config.env,
                    extra_env,
                    inherit: vec![executor_end.as_raw_fd()],
                };
                (child::spawn(spec)?, Some((slot, generation, broker_end)))
            }
            Role::Spare => {
                let argv = self.config.spare_argv.as_ref().ok_or_else(|| io::Error::other("no spare command"))?;
                let (supervisor_end, spare_end) = sys::socketpair()?;
                let spare_end = sys::above_stdio(spare_end)?;
                extra_env.push(("PERAGO_SLOT_FD".into(), spare_end.as_raw_fd().to_string()));
                let spec = SpawnSpec {
                    argv,
                    env: &self.config.env,
                    extra_env,
                    inherit: vec![spare_end.as_raw_fd()],
                };
                let running = child::spawn(spec)?;
                self.epoll.add(supervisor_end.as_fd(), EVENT_SPARE_SOCKET | index as u64)?;
                self.spare_link = Some(super::SpareLink::new(supervisor_end));
                (running, None)
            }
        };
        let token = index as u64;
        let role = self.members[index].role;
        self.epoll.add(running.pidfd.as_fd(), EVENT_EXIT | token)?;
        // A spare's ready pipe is watched from its promotion on: ready means "can take a task".
        if let Some(pipe) = running.ready_pipe.as_ref().filter(|_| role != Role::Spare) {
            self.epoll.add(pipe.as_fd(), EVENT_READY | token)?;
        }
        if let Some(stderr) = &running.stderr {
            self.epoll.add(stderr.as_fd(), EVENT_STDERR | token)?;
        }
        let member = &mut self.members[index];
        let pid = running.pid;
        member.state = ChildState::Running(running);
        let message = if role == Role::Spare { "spare executor started" } else { "worker process started" };
        log::info(message, with_identity(member, pid, json!({"generation": generation, "restart": is_restart})));
        if let Some((slot, generation, broker_end)) = broker_end {
            let worker_id = self.members[index].worker_id.clone();
            self.send_control(&Message::SlotSocket { slot, generation, worker_id }, Some(broker_end));
        }
        Ok(())
    }
}

/// The environment that makes an executor process the holder of `slot`: worker id,
/// process title, slot and generation. A cold executor is spawned with it; a promoted
/// spare sets it on itself (`perago.spare`) before it adopts the slot.
pub fn slot_env(slot: u32, generation: u32, worker_id: &str) -> Vec<(String, String)> {
    vec![
        ("PERAGO_WORKER_ID".into(), worker_id.into()),
        ("PERAGO_PROCESS_TITLE".into(), format!("perago {} {worker_id}", Role::Executor { slot }.name())),
        ("PERAGO_SLOT".into(), slot.to_string()),
        ("PERAGO_SLOT_GENERATION".into(), generation.to_string()),
    ]
}
