//! Stopping the process tree: the drain (the broker stops polling, finishes what it
//! owes and stops the executors), the one global force-kill deadline, and "stop now".

use std::time::Instant;

use serde_json::json;

use super::child::ChildState;
use super::{Member, Outcome, Phase, Supervisor, EXIT_STOPPED_NOW};
use crate::frame::Message;
use crate::log;
use crate::sys;

impl Supervisor {
    pub(super) fn set_outcome(&mut self, outcome: Outcome) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
    }

    /// Stop polling, finish in-flight work, stop executors — the broker does the middle
    /// part on `Drain`; the supervisor cancels restarts and starts the one global deadline.
    pub(super) fn begin_drain(&mut self) {
        if matches!(self.phase, Phase::Draining { .. }) {
            return;
        }
        let force_kill_at = self.config.force_kill_after.map(|after| Instant::now() + after);
        self.phase = Phase::Draining { force_kill_at };
        for member in &mut self.members {
            if matches!(member.state, ChildState::Pending { .. }) {
                member.state = ChildState::Stopped;
            }
        }
        log::info(
            "draining process runtime",
            json!({
                "phase": "drain",
                "deadline_seconds": self.config.force_kill_after.map(|d| d.as_secs_f64()),
                "alive": self.members.iter().filter(|m| m.running().is_some()).count(),
            }),
        );
        if self.members[0].running().is_some() {
            self.send_control(&Message::Drain, None);
        }
        self.stop_spare();
    }

    pub(super) fn force_kill(&mut self) {
        let deadline = self.config.force_kill_after.map(|d| d.as_secs_f64());
        for member in &self.members {
            if let Some(running) = member.running() {
                log::error(
                    "force-killing worker process after shutdown drain deadline",
                    json!({
                        "worker_id": member.worker_id,
                        "role": member.role.name(),
                        "pid": running.pid,
                        "task_id": null,
                        "execution_id": null,
                        "phase": "shutdown-force-kill",
                        "deadline_seconds": deadline,
                        "workspace_root": self.config.workspace_root.display().to_string(),
                    }),
                );
            }
        }
        // All at once: one deadline for the whole tree, not one per child (W3).
        for running in self.members.iter().filter_map(Member::running) {
            let _ = sys::kill(running.pid as i32, libc::SIGKILL);
        }
    }

    pub(super) fn stop_now(&mut self) {
        log::error("second SIGINT: stopping now", json!({"phase": "stop-now"}));
        self.outcome = Some(Outcome {
            exit_code: EXIT_STOPPED_NOW,
            reason: "stop-now",
            message: "stopped at once by a second SIGINT".into(),
            stderr_tail: Vec::new(),
        });
        self.phase = Phase::Draining { force_kill_at: None };
        for member in &self.members {
            if let Some(running) = member.running() {
                log::error(
                    "killing worker process",
                    json!({"worker_id": member.worker_id, "pid": running.pid, "phase": "stop-now"}),
                );
                let _ = sys::kill(running.pid as i32, libc::SIGKILL);
            }
        }
    }
}
