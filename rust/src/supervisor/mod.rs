//! The process-mode supervisor: keeps one broker and N executors alive, restarts
//! what dies with backoff, drains on SIGINT/SIGTERM, and sweeps attempt workspaces.
//!
//! The loop reads top to bottom: wait in one epoll for the next event (a signal
//! via signalfd, a child exit via its pidfd, a child's ready pipe or stderr, a
//! frame from the broker, or the one timerfd armed to the nearest deadline),
//! handle it by kind, repeat. Nothing polls on a period; an idle supervisor sleeps
//! in `epoll_wait`. Signals are only read from the signalfd, never handled in
//! signal context. Attempt-workspace GC passes run on their own thread so a slow
//! deletion never delays reaping or restarts.
//!
//! Warm spare: with a spare command configured the supervisor keeps one extra executor
//! process booted (interpreter up, perago and the task module imported) that owns no
//! slot. When an executor dies, the slot's backoff still applies; then the spare is
//! promoted into the slot (same worker id, next generation) instead of a cold spawn, and
//! a new spare boots once no other child is booting (the first one boots with the
//! executors, so its cost stays in the start-up window). No warm spare (booting, dead) means
//! a cold spawn, never a wait. The price is one more idle interpreter: `-j N` runs N + 2
//! Python processes (broker, N executors, the spare), the spare's memory being about one
//! executor's. A spare never holds an attempt, so GC ignores it.
//!
//! Files: this one has the loop and its state; `events` handles each event kind,
//! `spawn` starts members, `spare` keeps and promotes the warm spare (both sides of its
//! protocol), `drain` stops them, `control` writes to the broker, `child` is one
//! child's spawn and state, `gc_worker` the GC thread.
//!
//! Exit codes (see [`Outcome`]): 0 after a requested drain, [`EXIT_BOOT_FAILURE`]
//! when the broker or an executor cannot start, [`EXIT_BROKER_DIED`] when the
//! broker dies while running, [`EXIT_STOPPED_NOW`] after a second SIGINT.

mod child;
mod control;
mod drain;
mod events;
mod gc_worker;
mod spare;
mod spawn;

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::frame::Decoder;
use crate::gc;
use crate::log;
use crate::sys::{self, Epoll, SignalFd, TimerFd};
use child::{ChildState, Role, Running, StderrTail};
use gc_worker::GcWorker;
pub use spare::await_promotion;
use spare::SpareLink;
pub use spawn::slot_env;

/// Exit code when the broker or an executor cannot start (gunicorn's WORKER_BOOT_ERROR).
pub const EXIT_BOOT_FAILURE: i32 = 3;
/// Exit code when the broker dies while the runtime is running (never 0: W5).
pub const EXIT_BROKER_DIED: i32 = 4;
/// Exit code after "stop now" (a second SIGINT): 128 + SIGINT.
pub const EXIT_STOPPED_NOW: i32 = 130;

/// Everything the loop needs; Python validates and fills it.
#[derive(Clone, Debug)]
pub struct Config {
    pub workspace_root: PathBuf,
    pub worker_id_prefix: String,
    pub process_count: u32,
    pub broker_argv: Vec<OsString>,
    pub executor_argv: Vec<OsString>,
    /// The warm spare's command (`python -m perago.spare <module>`); `None` runs no spare.
    pub spare_argv: Option<Vec<OsString>>,
    /// The environment every child starts from (perago adds its own keys on top).
    pub env: Vec<(OsString, OsString)>,
    pub gc_ttl: Duration,
    pub gc_interval: Duration,
    /// One global deadline for the whole drain; `None` waits for ever.
    pub force_kill_after: Option<Duration>,
    /// Multiplies the 1, 2, 4 ... 30 restart sequence (1 s in production; tests shrink it).
    pub backoff_unit: Duration,
    /// A child that stayed up this long after becoming ready restarts with the backoff reset.
    pub healthy_after: Duration,
    /// Consecutive deaths before ready after which an executor slot stops the runtime.
    pub boot_failure_limit: u32,
}

impl Config {
    pub fn validate(&self) -> Result<(), String> {
        if self.process_count < 1 {
            return Err("worker process count must be at least 1".into());
        }
        if self.broker_argv.is_empty() {
            return Err("broker command must not be empty".into());
        }
        if self.executor_argv.is_empty() {
            return Err("executor command must not be empty".into());
        }
        if self.worker_id_prefix.is_empty() || !self.worker_id_prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("PERAGO_WORKER_ID_PREFIX must contain only ASCII letters and digits".into());
        }
        if self.spare_argv.as_ref().is_some_and(|argv| argv.is_empty()) {
            return Err("spare command must not be empty".into());
        }
        if self.boot_failure_limit < 1 {
            return Err("boot failure limit must be at least 1".into());
        }
        Ok(())
    }

    pub fn executor_worker_id(&self, slot: u32) -> String {
        format!("{}{slot:04}", self.worker_id_prefix)
    }

    pub fn broker_worker_id(&self) -> String {
        format!("{}Broker", self.worker_id_prefix)
    }

    /// The spare's name in logs and its process title; it takes a slot's worker id when promoted.
    pub fn spare_worker_id(&self) -> String {
        format!("{}Spare", self.worker_id_prefix)
    }
}

/// Why the supervisor stopped; `exit_code` is what the process should exit with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: i32,
    /// `signal`, `boot-failure`, `broker-exited` or `stop-now`.
    pub reason: &'static str,
    pub message: String,
    /// For boot failures: the failing child's last stderr lines.
    pub stderr_tail: Vec<String>,
}

/// The supervisor could not run at all (bad config, a syscall failed at setup).
#[derive(Debug)]
pub enum SupervisorError {
    Config(String),
    Io { context: &'static str, source: io::Error },
}

impl std::fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SupervisorError::Config(message) => f.write_str(message),
            SupervisorError::Io { context, source } => write!(f, "supervisor could not {context}: {source}"),
        }
    }
}

impl std::error::Error for SupervisorError {}

fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> SupervisorError {
    move |source| SupervisorError::Io { context, source }
}

const TOKEN_SIGNAL: u64 = 1;
const TOKEN_TIMER: u64 = 2;
const TOKEN_CONTROL: u64 = 3;
const EVENT_EXIT: u64 = 1 << 32;
const EVENT_READY: u64 = 2 << 32;
const EVENT_STDERR: u64 = 3 << 32;
const EVENT_SPARE_SOCKET: u64 = 4 << 32;

/// One child the supervisor keeps alive: the broker (index 0), an executor slot, or
/// the warm spare (last index, when configured).
struct Member {
    role: Role,
    worker_id: String,
    /// 0 until the first spawn; each spawn increments it (spec §2.5).
    generation: u32,
    restart_count: u64,
    boot_failures: u32,
    state: ChildState,
    tail: StderrTail,
}

impl Member {
    fn running(&self) -> Option<&Running> {
        match &self.state {
            ChildState::Running(running) => Some(running),
            _ => None,
        }
    }
}

/// One queued control frame: its bytes, how many were sent, and the fd riding on it.
struct Outgoing {
    bytes: Vec<u8>,
    sent: usize,
    fd: Option<OwnedFd>,
}

enum Phase {
    Running,
    Draining { force_kill_at: Option<Instant> },
}

/// Run the process tree until it is drained. The caller holds the workspace-root lock
/// and must call this from the thread that will outlive the children (their
/// parent-death signal is tied to it).
pub fn run(config: Config) -> Result<Outcome, SupervisorError> {
    config.validate().map_err(SupervisorError::Config)?;
    Supervisor::new(config)?.run()
}

struct Supervisor {
    config: Config,
    epoll: Epoll,
    signals: SignalFd,
    timer: TimerFd,
    /// Our end of the control socketpair; the broker holds the other.
    control: OwnedFd,
    /// The broker's end, kept only until the first broker spawn (the broker is never restarted).
    control_for_broker: Option<OwnedFd>,
    control_decoder: Decoder,
    control_open: bool,
    /// Frames for the broker not yet taken by its socket: the loop never blocks on a
    /// broker that is slow to read; EPOLLOUT tells us when to continue.
    control_outbox: VecDeque<Outgoing>,
    members: Vec<Member>,
    /// The running spare's socket (the slot socket it will be promoted with).
    spare_link: Option<SpareLink>,
    phase: Phase,
    outcome: Option<Outcome>,
    gc: GcWorker,
    next_gc_at: Instant,
}

impl Supervisor {
    fn new(config: Config) -> Result<Supervisor, SupervisorError> {
        // Signals first: a SIGTERM during the startup sweep must wait for the loop, not be lost.
        let signals = SignalFd::new(&[libc::SIGINT, libc::SIGTERM]).map_err(io_error("create a signalfd"))?;
        let removed = gc::run_pass(&config.workspace_root, &gc::Pass::sweep()).removed.len();
        if removed > 0 {
            log::info("swept abandoned attempt workspaces at startup", json!({"removed_count": removed}));
        }
        let epoll = Epoll::new().map_err(io_error("create an epoll instance"))?;
        let timer = TimerFd::new().map_err(io_error("create a timerfd"))?;
        let (control, control_for_broker) = sys::socketpair().map_err(io_error("create the control socketpair"))?;
        let control_for_broker = sys::above_stdio(control_for_broker).map_err(io_error("place the control socket"))?;
        epoll.add(signals.fd(), TOKEN_SIGNAL).map_err(io_error("watch signals"))?;
        epoll.add(timer.fd(), TOKEN_TIMER).map_err(io_error("watch the timer"))?;
        epoll.add(control.as_fd(), TOKEN_CONTROL).map_err(io_error("watch the control socket"))?;
        let now = Instant::now();
        let mut members = vec![Member {
            role: Role::Broker,
            worker_id: config.broker_worker_id(),
            generation: 0,
            restart_count: 0,
            boot_failures: 0,
            state: ChildState::Pending { at: now },
            tail: StderrTail::default(),
        }];
        for slot in 1..=config.process_count {
            members.push(Member {
                role: Role::Executor { slot },
                worker_id: config.executor_worker_id(slot),
                generation: 0,
                restart_count: 0,
                boot_failures: 0,
                state: ChildState::Pending { at: now },
                tail: StderrTail::default(),
            });
        }
        if config.spare_argv.is_some() {
            members.push(Member {
                role: Role::Spare,
                worker_id: config.spare_worker_id(),
                generation: 0,
                restart_count: 0,
                boot_failures: 0,
                state: ChildState::Pending { at: now },
                tail: StderrTail::default(),
            });
        }
        let next_gc_at = now + config.gc_interval.max(Duration::from_millis(1));
        Ok(Supervisor {
            gc: GcWorker::start(config.workspace_root.clone()),
            config,
            epoll,
            signals,
            timer,
            control,
            control_for_broker: Some(control_for_broker),
            control_decoder: Decoder::new(),
            control_open: true,
            control_outbox: VecDeque::new(),
            members,
            spare_link: None,
            phase: Phase::Running,
            outcome: None,
            next_gc_at,
        })
    }

    fn run(mut self) -> Result<Outcome, SupervisorError> {
        log::info(
            "supervisor started",
            json!({
                "workspace_root": self.config.workspace_root.display().to_string(),
                "process_count": self.config.process_count,
                "pid": std::process::id(),
            }),
        );
        // Startup order (spec §1.5): broker first, then executors in slot order.
        self.spawn_due(Instant::now());
        while !self.finished() {
            self.arm_timer();
            let tokens = self.epoll.wait(64).map_err(io_error("wait for events"))?;
            for token in tokens {
                match token {
                    TOKEN_SIGNAL => self.on_signals(),
                    TOKEN_TIMER => self.on_timer(),
                    TOKEN_CONTROL => self.on_control(),
                    _ => {
                        let index = (token & 0xffff_ffff) as usize;
                        match token & !0xffff_ffff {
                            EVENT_READY => self.on_ready_pipe(index),
                            EVENT_STDERR => self.on_stderr(index),
                            EVENT_EXIT => self.on_exit(index),
                            EVENT_SPARE_SOCKET => self.on_spare_socket(index),
                            _ => {}
                        }
                    }
                }
            }
            // An exit, a ready child or the timer may each have made a start due.
            self.spawn_due(Instant::now());
        }
        self.gc.stop();
        let removed = gc::run_pass(&self.config.workspace_root, &gc::Pass::sweep()).removed.len();
        if removed > 0 {
            log::info("swept abandoned attempt workspaces after shutdown", json!({"removed_count": removed}));
        }
        let outcome = self.outcome.take().expect("a drained supervisor has an outcome");
        log::info("supervisor stopped", json!({"reason": outcome.reason, "exit_code": outcome.exit_code}));
        Ok(outcome)
    }

    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. })
            && self.members.iter().all(|member| !matches!(member.state, ChildState::Running(_)))
    }

    fn arm_timer(&self) {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
        match self.phase {
            Phase::Running => {
                consider(self.next_gc_at);
                let spare_may_start = self.spare_may_start();
                for member in &self.members {
                    if let ChildState::Pending { at } = member.state {
                        if member.role != Role::Spare || spare_may_start {
                            consider(at);
                        }
                    }
                }
            }
            Phase::Draining { force_kill_at } => {
                if let Some(at) = force_kill_at {
                    consider(at);
                }
            }
        }
        let delay = next.map(|at| at.saturating_duration_since(Instant::now()));
        let _ = self.timer.arm(delay);
    }

    fn live_executor_owners(&self) -> HashSet<gc::Owner> {
        self.members
            .iter()
            .filter(|member| matches!(member.role, Role::Executor { .. }))
            .filter_map(|member| member.running().map(|running| (member.worker_id.clone(), running.pid)))
            .collect()
    }
}

impl Drop for Supervisor {
    /// Only reached with children still running if the loop failed (an epoll error, a
    /// panic): never leave them behind while the calling Python process lives on.
    fn drop(&mut self) {
        for member in &mut self.members {
            if let ChildState::Running(running) = &mut member.state {
                let _ = sys::kill(running.pid as i32, libc::SIGKILL);
                let _ = running.process.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            workspace_root: PathBuf::from("/tmp/unused"),
            worker_id_prefix: "featuresBuild".into(),
            process_count: 2,
            broker_argv: vec!["python".into()],
            executor_argv: vec!["python".into()],
            spare_argv: Some(vec!["python".into()]),
            env: Vec::new(),
            gc_ttl: Duration::from_secs(86_400),
            gc_interval: Duration::from_secs(3600),
            force_kill_after: None,
            backoff_unit: Duration::from_secs(1),
            healthy_after: Duration::from_secs(60),
            boot_failure_limit: 3,
        }
    }

    #[test]
    fn worker_ids_follow_perago_06() {
        let config = config();
        assert_eq!(config.executor_worker_id(1), "featuresBuild0001");
        assert_eq!(config.executor_worker_id(10_000), "featuresBuild10000");
        assert_eq!(config.broker_worker_id(), "featuresBuildBroker");
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            Config { process_count: 0, ..config() }.validate().unwrap_err(),
            "worker process count must be at least 1"
        );
        assert!(Config { worker_id_prefix: "a-b".into(), ..config() }
            .validate()
            .unwrap_err()
            .contains("PERAGO_WORKER_ID_PREFIX"));
        assert!(Config { executor_argv: Vec::new(), ..config() }.validate().unwrap_err().contains("executor command"));
        assert!(Config { spare_argv: Some(Vec::new()), ..config() }.validate().unwrap_err().contains("spare command"));
        assert!(Config { spare_argv: None, ..config() }.validate().is_ok());
        assert!(config().validate().is_ok());
    }
}
