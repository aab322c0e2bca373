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
//! Exit codes (see [`Outcome`]): 0 after a requested drain, [`EXIT_BOOT_FAILURE`]
//! when the broker or an executor cannot start, [`EXIT_BROKER_DIED`] when the
//! broker dies while running, [`EXIT_STOPPED_NOW`] after a second SIGINT.

mod child;
mod gc_worker;

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use child::{ChildState, Role, StderrTail, STDERR_TAIL_LINES};

use crate::backoff;
use crate::frame::{Decoder, ExitCause, Message};
use crate::gc;
use crate::log;
use crate::sys::{self, Epoll, SignalFd, TimerFd};
use child::{Running, SpawnSpec};
use gc_worker::GcWorker;

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

/// One child the supervisor keeps alive: the broker (index 0) or an executor slot.
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
    phase: Phase,
    outcome: Option<Outcome>,
    gc: GcWorker,
    next_gc_at: Instant,
}

impl Supervisor {
    fn new(config: Config) -> Result<Supervisor, SupervisorError> {
        let removed = gc::run_pass(&config.workspace_root, &gc::Pass::sweep()).removed.len();
        if removed > 0 {
            log::info("swept abandoned attempt workspaces at startup", json!({"removed_count": removed}));
        }
        let epoll = Epoll::new().map_err(io_error("create an epoll instance"))?;
        let signals = SignalFd::new(&[libc::SIGINT, libc::SIGTERM]).map_err(io_error("create a signalfd"))?;
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
                            _ => {}
                        }
                    }
                }
            }
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

    // ---- events -------------------------------------------------------------------

    fn on_signals(&mut self) {
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

    fn on_timer(&mut self) {
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
        self.spawn_due(now);
    }

    fn on_control(&mut self) {
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

    fn on_ready_pipe(&mut self, index: usize) {
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

    fn on_stderr(&mut self, index: usize) {
        let member = &mut self.members[index];
        let ChildState::Running(running) = &mut member.state else { return };
        let ended = forward_stderr(running, &mut member.tail);
        if ended {
            if let Some(fd) = running.stderr.take() {
                self.epoll.remove(fd.as_fd());
            }
        }
    }

    fn on_exit(&mut self, index: usize) {
        let (running, cause) = {
            let member = &mut self.members[index];
            let ChildState::Running(running) = &mut member.state else { return };
            let status = match running.process.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => return,
                Err(_) => return,
            };
            let cause = child::exit_cause(status);
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
        }
    }

    fn on_broker_exit(&mut self, index: usize, running: Running, cause: ExitCause) {
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

    fn on_executor_exit(&mut self, index: usize, running: Running, cause: ExitCause) {
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
        let member = &mut self.members[index];
        if running.ready_at.is_none() {
            member.boot_failures += 1;
            if member.boot_failures >= self.config.boot_failure_limit {
                let tail = member.tail.lines();
                let message = format!(
                    "executor {worker_id} exited before it was ready {} times in a row (last: {})",
                    member.boot_failures,
                    describe(cause)
                );
                fields["consecutive_boot_failures"] = json!(member.boot_failures);
                fields["stderr_tail"] = json!(tail);
                log::error(
                    "executor cannot start; stopping process runtime",
                    with_identity(member, running.pid, fields),
                );
                self.set_outcome(Outcome {
                    exit_code: EXIT_BOOT_FAILURE,
                    reason: "boot-failure",
                    message,
                    stderr_tail: tail,
                });
                self.begin_drain();
                return;
            }
        } else {
            member.boot_failures = 0;
        }
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

    // ---- actions ------------------------------------------------------------------

    fn set_outcome(&mut self, outcome: Outcome) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
    }

    /// Stop polling, finish in-flight work, stop executors — the broker does the middle
    /// part on `Drain`; the supervisor cancels restarts and starts the one global deadline.
    fn begin_drain(&mut self) {
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
    }

    fn force_kill(&mut self) {
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

    fn stop_now(&mut self) {
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

    /// Start every member whose time has come (only while running).
    fn spawn_due(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        for index in 0..self.members.len() {
            let due = matches!(self.members[index].state, ChildState::Pending { at } if at <= now);
            if due {
                if let Err(error) = self.spawn_member(index) {
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

    fn spawn_member(&mut self, index: usize) -> io::Result<()> {
        let prefix = self.config.worker_id_prefix.clone();
        let member = &mut self.members[index];
        member.generation += 1;
        let is_restart = member.generation > 1;
        member.tail.clear();
        let generation = member.generation;
        let mut extra_env = vec![
            ("PERAGO_WORKER_ID_PREFIX".to_string(), prefix),
            ("PERAGO_WORKER_ID".to_string(), member.worker_id.clone()),
            ("PERAGO_SUPERVISOR_PID".to_string(), std::process::id().to_string()),
            ("PERAGO_PROCESS_TITLE".to_string(), format!("perago {} {}", member.role.name(), member.worker_id)),
        ];
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
                extra_env.push(("PERAGO_SLOT".into(), slot.to_string()));
                extra_env.push(("PERAGO_SLOT_GENERATION".into(), generation.to_string()));
                extra_env.push(("PERAGO_SLOT_FD".into(), executor_end.as_raw_fd().to_string()));
                let spec = SpawnSpec {
                    argv: &self.config.executor_argv,
                    env: &self.config.env,
                    extra_env,
                    inherit: vec![executor_end.as_raw_fd()],
                };
                (child::spawn(spec)?, Some((slot, generation, broker_end)))
            }
        };
        let token = index as u64;
        self.epoll.add(running.pidfd.as_fd(), EVENT_EXIT | token)?;
        if let Some(pipe) = &running.ready_pipe {
            self.epoll.add(pipe.as_fd(), EVENT_READY | token)?;
        }
        if let Some(stderr) = &running.stderr {
            self.epoll.add(stderr.as_fd(), EVENT_STDERR | token)?;
        }
        let member = &mut self.members[index];
        let pid = running.pid;
        member.state = ChildState::Running(running);
        log::info(
            "worker process started",
            with_identity(member, pid, json!({"generation": generation, "restart": is_restart})),
        );
        if let Some((slot, generation, broker_end)) = broker_end {
            let worker_id = self.members[index].worker_id.clone();
            self.send_control(&Message::SlotSocket { slot, generation, worker_id }, Some(broker_end));
        }
        Ok(())
    }

    /// Queue a frame for the broker (with an fd to pass, for `SlotSocket`) and send what
    /// the socket takes now. Order is preserved, so an exit is always told before the
    /// replacement's socket.
    fn send_control(&mut self, message: &Message, fd: Option<OwnedFd>) {
        if !self.control_open {
            return;
        }
        self.control_outbox.push_back(Outgoing { bytes: message.encode(), sent: 0, fd });
        self.flush_control();
    }

    fn flush_control(&mut self) {
        while let Some(front) = self.control_outbox.front_mut() {
            let fd = if front.sent == 0 { front.fd.as_ref().map(|fd| fd.as_fd()) } else { None };
            match sys::send_some(self.control.as_fd(), &front.bytes[front.sent..], fd) {
                Ok(n) => {
                    front.sent += n;
                    if front.sent == front.bytes.len() {
                        self.control_outbox.pop_front();
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // The broker is gone; its own exit is handled via its pidfd.
                    log::warning(
                        "could not write to the broker's control socket",
                        json!({"exception": error.to_string()}),
                    );
                    self.control_outbox.clear();
                    self.close_control();
                    return;
                }
            }
        }
        let _ = self.epoll.modify(self.control.as_fd(), TOKEN_CONTROL, !self.control_outbox.is_empty());
    }

    fn close_control(&mut self) {
        if self.control_open {
            self.control_open = false;
            self.control_outbox.clear();
            self.epoll.remove(self.control.as_fd());
        }
    }

    fn arm_timer(&self) {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
        match self.phase {
            Phase::Running => {
                consider(self.next_gc_at);
                for member in &self.members {
                    if let ChildState::Pending { at } = member.state {
                        consider(at);
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

/// Read what the child wrote to stderr, forward whole lines, remember the tail.
/// Returns true at end of file (or on a read error).
fn forward_stderr(running: &mut Running, tail: &mut StderrTail) -> bool {
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

fn describe(cause: ExitCause) -> String {
    match cause {
        ExitCause::Code(code) => format!("exit code {code}"),
        ExitCause::Signal(signal) => format!("killed by signal {signal}"),
    }
}

fn exit_fields(cause: ExitCause, running: &Running) -> Value {
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
fn with_identity(member: &Member, pid: u32, fields: Value) -> Value {
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
        assert!(config().validate().is_ok());
    }
}
