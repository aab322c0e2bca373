//! The broker's dispatcher: every slot socket, the control socket and a wake fd in
//! one epoll, slot leasing, completion matching and executor-exit handling.
//!
//! Plain Rust and single-threaded: the broker's loop thread owns it (the Python face
//! keeps it behind a mutex and releases the GIL while it waits). What Python sees is
//! bytes in (`assign`) and a few small [`Event`]s out; it never touches a socket.
//!
//! Guarantees the broker relies on:
//! - a slot is leased only when its current generation said Ready and holds no lease;
//! - a `Complete` settles a lease only if it arrives on that slot's current generation
//!   socket and both its dispatch id and execution id match the lease (fail closed:
//!   anything else is dropped with an [`Event::Log`]);
//! - on `ExecutorExited` the slot socket is read to its end before the lease is failed,
//!   so a completion written before the death wins (W7);
//! - every lease ends in exactly one `Completed` or `Failed` event (or is abandoned by
//!   the caller at its drain deadline);
//! - fence replies go back only to the slot generation that asked (W9).
//!
//! With the result relay on (`start_relay`, see `relay.rs`), a completion is first sent
//! to Conductor from here: its slot stays reserved for the task update-v2 may hand back,
//! and the broker hears `Relayed` (delivered, with the next task's head) or, when the
//! first try did not deliver, the usual `Completed`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{ChannelError, FrameStream, Received};
use crate::frame::{Decoder, ExitCause, FrameError, Kind, Message, EXECUTION_ID_LEN, HEADER_LEN, MAGIC, VERSION};
use crate::relay::{Outcome, Pending, Relay, RelayTarget};
use crate::sys;
use crate::task_json::{task_head, TaskHead};

const CONTROL_TOKEN: u64 = u64::MAX;
const WAKE_TOKEN: u64 = u64::MAX - 1;
/// Tokens of the broker's own fds (`watch_fd`) count down from here, one per fd number.
/// Slot tokens carry the generation in the high half and never get this far.
const FD_TOKEN_BASE: u64 = u64::MAX - 16;
/// One read of a slot socket takes at most this much (reused; never zeroed per read).
const READ_BUFFER_LEN: usize = 64 * 1024;

/// What happened since the last wait, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A slot's executor can take a task (new generation said Ready).
    SlotReady { slot: u32 },
    /// The leased task's executor sent its TaskResult bytes (to be sent as is).
    Completed { slot: u32, task_id: String, result: Vec<u8> },
    /// The leased task is lost with its executor; `reason` is the FAILED reason text.
    Failed { slot: u32, task_id: String, reason: String },
    /// The executor of `slot`/`generation` asks to reload `task_id` (attempt fence).
    FenceRequested { slot: u32, generation: u32, task_id: String },
    /// The supervisor asks the broker to drain.
    Drain,
    /// The supervisor's end of the control socket went away.
    ControlClosed,
    /// Something was dropped or went wrong; the broker logs it at error level.
    Log { message: String, fields: Vec<(&'static str, String)> },
    /// An fd the broker watches (`watch_fd`, e.g. a Conductor connection) is readable,
    /// closed or in error.
    Readable { fd: i32 },
    /// The relay delivered `task_id`'s result; `next` is the task update-v2 handed back.
    Relayed { task_id: String, next: Option<NextTask> },
}

/// A task update-v2 handed back to the relay.
#[derive(Clone, Debug, PartialEq)]
pub struct NextTask {
    pub head: TaskHead,
    /// The task's JSON when no slot could take it (the broker queues it); `None` once assigned.
    pub unassigned: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Lease {
    dispatch_id: u64,
    execution_id: String,
    task_id: String,
}

struct Slot {
    generation: u32,
    worker_id: String,
    stream: Option<SlotStream>,
    ready: bool,
    lease: Option<Lease>,
    /// Kept out of the free set while the relay delivers this slot's last result.
    reserved: bool,
    /// The dispatch id of a fence request waiting for its reply.
    fence: Option<u64>,
}

/// The broker end of one slot socket: the hot path's reads and writes, without the
/// per-call buffer and extra syscalls of the general `FrameStream`.
struct SlotStream {
    fd: OwnedFd,
    decoder: Decoder,
}

/// What one read of a slot socket found.
enum Filled {
    /// Bytes arrived; `more` when the read filled the buffer (more may be waiting).
    Bytes { more: bool },
    Empty,
    Closed,
}

impl SlotStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn send(&self, message: &Message) -> io::Result<()> {
        sys::write_all(self.fd.as_fd(), &message.encode())
    }

    /// Header, execution id and task in one buffer and one write.
    fn send_assign(&self, dispatch_id: u64, execution_id: &str, task: &[u8]) -> io::Result<()> {
        let length = (EXECUTION_ID_LEN + task.len()) as u32;
        let mut bytes = Vec::with_capacity(HEADER_LEN + length as usize);
        bytes.extend_from_slice(&MAGIC);
        bytes.push(VERSION);
        bytes.push(Kind::Assign as u8);
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(&dispatch_id.to_le_bytes());
        bytes.extend_from_slice(execution_id.as_bytes());
        bytes.extend_from_slice(task);
        sys::write_all(self.fd.as_fd(), &bytes)
    }

    fn fill(&mut self, buffer: &mut [u8]) -> io::Result<Filled> {
        loop {
            let ret = unsafe { libc::recv(self.fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), libc::MSG_DONTWAIT) };
            if ret > 0 {
                self.decoder.push(&buffer[..ret as usize]);
                return Ok(Filled::Bytes { more: ret as usize == buffer.len() });
            }
            if ret == 0 {
                return Ok(Filled::Closed);
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(Filled::Empty),
                io::ErrorKind::ConnectionReset => return Ok(Filled::Closed),
                _ => return Err(error),
            }
        }
    }

    fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        match self.decoder.next_frame()? {
            Some(frame) => Message::from_frame(frame).map(Some),
            None => Ok(None),
        }
    }
}

/// A non-blocking pipe other threads (and signal handlers) write to so the loop's wait
/// returns. A pipe, not an eventfd, so that it can also be Python's
/// `signal.set_wakeup_fd`, which writes single bytes from whichever thread got the signal.
pub struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    fn new() -> io::Result<Waker> {
        let (read, write) = sys::pipe()?;
        sys::set_nonblocking(read.as_fd(), true)?;
        sys::set_nonblocking(write.as_fd(), true)?;
        Ok(Waker { read, write })
    }

    /// Make the dispatcher's current or next wait return. Never blocks (a full pipe
    /// already guarantees a wake-up).
    pub fn wake(&self) {
        unsafe { libc::write(self.write.as_raw_fd(), b"w".as_ptr().cast(), 1) };
    }

    /// The write end's number, for `signal.set_wakeup_fd`.
    pub fn write_fd(&self) -> i32 {
        self.write.as_raw_fd()
    }

    fn drain(&self) {
        let mut bytes = [0u8; 256];
        while unsafe { libc::read(self.read.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) } == bytes.len() as isize {}
    }
}

/// How one wait ended, besides the events it produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakeup {
    /// Another thread called [`Waker::wake`].
    pub woken: bool,
    /// A signal interrupted the wait.
    pub interrupted: bool,
}

pub struct Dispatcher {
    epoll: OwnedFd,
    control: Option<FrameStream>,
    waker: Arc<Waker>,
    slots: HashMap<u32, Slot>,
    free: BTreeSet<u32>,
    next_dispatch: u64,
    events: VecDeque<Event>,
    read_buffer: Vec<u8>,
    random: RandomPool,
    relay: Option<Relay>,
    /// New completions go to the relay (until `stop_relay`).
    relaying: bool,
}

/// Random bytes for execution ids, fetched from the kernel a page at a time.
struct RandomPool {
    bytes: Vec<u8>,
    used: usize,
}

impl RandomPool {
    fn new() -> RandomPool {
        RandomPool { bytes: vec![0; 4096], used: 4096 }
    }

    fn take16(&mut self) -> [u8; 16] {
        if self.used + 16 > self.bytes.len() {
            fill_random(&mut self.bytes);
            self.used = 0;
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.bytes[self.used..self.used + 16]);
        self.used += 16;
        out
    }
}

fn fill_random(bytes: &mut [u8]) {
    let mut filled = 0;
    while filled < bytes.len() {
        let ret = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0) };
        if ret > 0 {
            filled += ret as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            panic!("getrandom failed: {}", io::Error::last_os_error());
        }
    }
}

/// 16 random bytes as a UUID4 in 32 lowercase hex characters.
fn execution_id_from(mut bytes: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = Vec::with_capacity(EXECUTION_ID_LEN);
    for byte in bytes {
        text.push(HEX[usize::from(byte >> 4)]);
        text.push(HEX[usize::from(byte & 0x0f)]);
    }
    String::from_utf8(text).expect("hex is ASCII")
}

fn slot_token(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

fn exit_text(cause: ExitCause) -> String {
    match cause {
        ExitCause::Signal(signal) => format!("killed by signal {signal}"),
        ExitCause::Code(code) => format!("exit code {code}"),
    }
}

/// Whether `task` fits in one Assign frame (with its execution id).
pub fn fits_an_assign(task: &[u8]) -> bool {
    task.len() + EXECUTION_ID_LEN <= crate::frame::MAX_PAYLOAD as usize
}

/// `{"fenceError": text}`: the fence reply that makes the executor fail its attempt.
pub fn fence_error(text: &str) -> Vec<u8> {
    serde_json::json!({ "fenceError": text }).to_string().into_bytes()
}

/// A fresh execution id: a random UUID4 as 32 lowercase hex characters.
pub fn new_execution_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    execution_id_from(bytes)
}

impl Dispatcher {
    /// A dispatcher over the broker's end of the control socket (`None` in tests that
    /// attach slot sockets directly).
    pub fn new(control: Option<FrameStream>) -> io::Result<Dispatcher> {
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let waker = Arc::new(Waker::new()?);
        let dispatcher = Dispatcher {
            epoll,
            control,
            waker,
            slots: HashMap::new(),
            free: BTreeSet::new(),
            next_dispatch: 1,
            events: VecDeque::new(),
            read_buffer: vec![0; READ_BUFFER_LEN],
            random: RandomPool::new(),
            relay: None,
            relaying: false,
        };
        dispatcher.watch(dispatcher.waker.read.as_fd(), WAKE_TOKEN)?;
        if let Some(control) = &dispatcher.control {
            dispatcher.watch(control.fd(), CONTROL_TOKEN)?;
        }
        Ok(dispatcher)
    }

    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    fn watch(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        let ret = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut event) };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn unwatch(&self, fd: BorrowedFd<'_>) {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, fd.as_raw_fd(), &mut event) };
    }

    /// Report `Readable { fd }` whenever `fd` (owned by the caller) has data, was closed
    /// or failed, until `unwatch_fd`. Level-triggered: unread data is reported again.
    pub fn watch_fd(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.watch(fd, FD_TOKEN_BASE - fd.as_raw_fd() as u64)
    }

    /// Stop watching `fd`; call before closing it.
    pub fn unwatch_fd(&self, fd: BorrowedFd<'_>) {
        self.unwatch(fd);
    }

    /// Wait up to `timeout` (`None` = until something happens) and handle what is
    /// ready. Returns the events produced (possibly none) and why the wait ended.
    pub fn poll(&mut self, timeout: Option<Duration>) -> io::Result<(Vec<Event>, Wakeup)> {
        let mut wakeup = Wakeup::default();
        if self.events.is_empty() {
            let relay_wait = self.relay.as_ref().and_then(Relay::next_deadline).map(|d| d.saturating_duration_since(Instant::now()));
            let timeout = match (timeout, relay_wait) {
                (Some(t), Some(r)) => Some(t.min(r)),
                (t, r) => t.or(r),
            };
            let millis = sys::timeout_millis(timeout);
            let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 64];
            let count =
                unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), ready.as_mut_ptr(), ready.len() as i32, millis) };
            if count < 0 {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
                wakeup.interrupted = true;
            }
            for event in &ready[..count.max(0) as usize] {
                let token = event.u64;
                match token {
                    WAKE_TOKEN => {
                        self.waker.drain();
                        wakeup.woken = true;
                    }
                    CONTROL_TOKEN => self.read_control(),
                    _ if token > FD_TOKEN_BASE - (i32::MAX as u64) && token <= FD_TOKEN_BASE => {
                        let fd = (FD_TOKEN_BASE - token) as i32;
                        match self.relay.as_mut().filter(|relay| relay.owns(fd)) {
                            Some(relay) => {
                                if let Some(outcome) = relay.on_readable(fd, Instant::now()) {
                                    self.settle(outcome);
                                }
                            }
                            None => self.events.push_back(Event::Readable { fd }),
                        }
                    }
                    _ => self.read_slot(token as u32, (token >> 32) as u32, false),
                }
            }
            if let Some(relay) = self.relay.as_mut() {
                for outcome in relay.expire(Instant::now()) {
                    self.settle(outcome);
                }
            }
        }
        Ok((self.events.drain(..).collect(), wakeup))
    }

    /// Put events back in front of the queue (the caller could not hand them over);
    /// the next `poll` returns them before waiting.
    pub fn requeue(&mut self, events: Vec<Event>) {
        for event in events.into_iter().rev() {
            self.events.push_front(event);
        }
    }

    // -- control socket ----------------------------------------------------------------

    fn read_control(&mut self) {
        loop {
            let Some(control) = self.control.as_mut() else { return };
            match control.recv(Some(Duration::ZERO)) {
                Ok(Received::Message(Message::SlotSocket { slot, generation, worker_id }, Some(fd))) => {
                    self.attach(slot, generation, worker_id, fd);
                }
                Ok(Received::Message(Message::ExecutorExited { slot, generation, cause, .. }, _)) => {
                    self.executor_exited(slot, generation, cause);
                }
                Ok(Received::Message(Message::Drain, _)) => self.events.push_back(Event::Drain),
                Ok(Received::Message(other, _)) => {
                    self.log("dispatcher dropped an unexpected control frame", vec![(
                        "kind",
                        other.to_frame().kind.name().to_string(),
                    )]);
                }
                Ok(Received::TimedOut) | Ok(Received::Interrupted) => return,
                Ok(Received::Closed) => return self.close_control(None),
                Err(error) => return self.close_control(Some(error)),
            }
        }
    }

    fn close_control(&mut self, error: Option<ChannelError>) {
        if let Some(control) = self.control.take() {
            self.unwatch(control.fd());
        }
        if let Some(error) = error {
            self.log("supervisor control socket failed", vec![("error", error.to_string())]);
        }
        self.events.push_back(Event::ControlClosed);
    }

    /// Install the broker end of a slot socket for a new generation, superseding (and
    /// failing the lease of) any older one.
    pub fn attach(&mut self, slot: u32, generation: u32, worker_id: String, fd: OwnedFd) {
        if let Some(previous) = self.slots.get(&slot).map(|s| s.generation) {
            self.read_slot(slot, previous, true);
            self.detach(slot);
            self.fail_lease(slot, "was replaced");
        }
        let stream = SlotStream { fd, decoder: Decoder::new() };
        if let Err(error) = self.watch(stream.fd(), slot_token(slot, generation)) {
            self.log("could not watch a slot socket", vec![("worker_id", worker_id.clone()), ("error", error.to_string())]);
        }
        let entry = Slot { generation, worker_id, stream: Some(stream), ready: false, lease: None, reserved: false, fence: None };
        self.slots.insert(slot, entry);
        self.read_slot(slot, generation, false); // its Ready may have arrived before the socket did
    }

    fn executor_exited(&mut self, slot: u32, generation: u32, cause: ExitCause) {
        if self.slots.get(&slot).is_none_or(|s| s.generation != generation) {
            return;
        }
        self.read_slot(slot, generation, true); // a completion already sent wins over the exit (W7)
        self.detach(slot);
        self.fail_lease(slot, &format!("exited ({})", exit_text(cause)));
    }

    /// Forget the slot's socket: it is no longer leasable; its lease stays until settled.
    fn detach(&mut self, slot: u32) {
        self.free.remove(&slot);
        let Some(entry) = self.slots.get_mut(&slot) else { return };
        entry.ready = false;
        entry.fence = None;
        if let Some(stream) = entry.stream.take() {
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, stream.fd().as_raw_fd(), &mut event) };
        }
    }

    fn fail_lease(&mut self, slot: u32, what: &str) {
        let Some(entry) = self.slots.get_mut(&slot) else { return };
        if let Some(lease) = entry.lease.take() {
            let reason = format!(
                "executor process for worker {} {what} while running task {}",
                entry.worker_id, lease.task_id
            );
            self.events.push_back(Event::Failed { slot, task_id: lease.task_id, reason });
        }
    }

    // -- slot sockets ------------------------------------------------------------------

    /// Handle every frame waiting on the slot's socket. `to_end` reads until the socket
    /// is empty; otherwise a short read ends the pass (epoll reports the rest).
    fn read_slot(&mut self, slot: u32, generation: u32, to_end: bool) {
        let mut buffer = std::mem::take(&mut self.read_buffer);
        let mut socket_empty = false;
        while let Some(entry) = self.slots.get_mut(&slot).filter(|s| s.generation == generation) {
            let Some(stream) = entry.stream.as_mut() else { break };
            let failure = match stream.next_message() {
                Ok(Some(message)) => {
                    self.on_slot_message(slot, message);
                    continue;
                }
                Ok(None) if socket_empty => break,
                Ok(None) => match stream.fill(&mut buffer) {
                    Ok(Filled::Bytes { more }) => {
                        socket_empty = !more && !to_end;
                        continue;
                    }
                    Ok(Filled::Empty) => break,
                    // The executor is gone; its exit event settles the lease with the exit status.
                    Ok(Filled::Closed) if stream.decoder.pending() == 0 => {
                        self.detach(slot);
                        break;
                    }
                    Ok(Filled::Closed) => "peer closed the socket mid-frame".to_string(),
                    Err(error) => error.to_string(),
                },
                Err(error) => ChannelError::Protocol(error).to_string(),
            };
            self.slot_broken(slot, failure);
            break;
        }
        self.read_buffer = buffer;
    }

    /// The slot's socket is unusable: detach it and fail its task at once.
    fn slot_broken(&mut self, slot: u32, error: String) {
        let Some(worker_id) = self.slots.get(&slot).map(|s| s.worker_id.clone()) else { return };
        self.log("executor slot socket failed", vec![("worker_id", worker_id.clone()), ("error", error)]);
        self.detach(slot);
        if let Some(lease) = self.slots.get_mut(&slot).and_then(|s| s.lease.take()) {
            let reason = format!("executor pipe for worker {worker_id} is broken for task {}", lease.task_id);
            self.events.push_back(Event::Failed { slot, task_id: lease.task_id, reason });
        }
    }

    fn on_slot_message(&mut self, slot: u32, message: Message) {
        let Some(entry) = self.slots.get_mut(&slot) else { return };
        match message {
            Message::Ready { generation } if generation == u64::from(entry.generation) => {
                entry.ready = true;
                if entry.lease.is_none() {
                    self.free.insert(slot);
                    self.events.push_back(Event::SlotReady { slot });
                }
            }
            Message::Complete { dispatch_id, execution_id, result } => {
                let matches =
                    entry.lease.as_ref().is_some_and(|l| l.dispatch_id == dispatch_id && l.execution_id == execution_id);
                if !matches {
                    let leased = entry.lease.as_ref().map_or("none".to_string(), |l| l.dispatch_id.to_string());
                    let worker_id = entry.worker_id.clone();
                    return self.log("dropped a completion that matches no lease", vec![
                        ("worker_id", worker_id),
                        ("dispatch_id", dispatch_id.to_string()),
                        ("execution_id", execution_id),
                        ("leased_dispatch_id", leased),
                    ]);
                }
                let lease = entry.lease.take().expect("matched lease");
                entry.fence = None;
                if self.relaying {
                    entry.reserved = true;
                    let pending = Pending::new(slot, entry.generation, lease.task_id, result);
                    let relay = self.relay.as_mut().expect("relaying needs a relay");
                    if let Err(pending) = relay.send(pending, Instant::now()) {
                        self.settle(Outcome::HandedBack { pending });
                    }
                    return;
                }
                if entry.ready && entry.stream.is_some() {
                    self.free.insert(slot);
                }
                self.events.push_back(Event::Completed { slot, task_id: lease.task_id, result });
            }
            Message::FenceRequest { dispatch_id, request } => {
                let matches = entry
                    .lease
                    .as_ref()
                    .is_some_and(|l| l.dispatch_id == dispatch_id && l.task_id.as_bytes() == request.as_slice());
                if matches {
                    entry.fence = Some(dispatch_id);
                    let task_id = String::from_utf8_lossy(&request).into_owned();
                    self.events.push_back(Event::FenceRequested { slot, generation: entry.generation, task_id });
                } else {
                    let worker_id = entry.worker_id.clone();
                    let reply = Message::FenceReply { dispatch_id, reply: fence_error("no such dispatch on this slot") };
                    let sent = entry.stream.as_ref().map(|s| s.send(&reply));
                    self.log("attempt-fence request matches no lease", vec![
                        ("worker_id", worker_id),
                        ("task_id", String::from_utf8_lossy(&request).into_owned()),
                    ]);
                    if let Some(Err(error)) = sent {
                        self.log("could not answer an attempt-fence request", vec![("error", error.to_string())]);
                    }
                }
            }
            other => {
                let worker_id = entry.worker_id.clone();
                self.log("dispatcher dropped an unexpected slot frame", vec![
                    ("worker_id", worker_id),
                    ("kind", other.to_frame().kind.name().to_string()),
                ]);
            }
        }
    }

    // -- result relay ------------------------------------------------------------------

    /// Send later completions to Conductor from here first (see `relay.rs`).
    pub fn start_relay(&mut self, target: RelayTarget) {
        if self.relay.is_none() {
            self.relay = Some(Relay::new(target, self.epoll.as_raw_fd(), FD_TOKEN_BASE));
        }
        self.relaying = true;
    }

    /// Later completions go to the broker as `Completed`; updates in flight still finish.
    pub fn stop_relay(&mut self) {
        self.relaying = false;
    }

    /// Relayed updates not answered yet.
    pub fn relay_in_flight(&self) -> usize {
        self.relay.as_ref().map_or(0, Relay::in_flight)
    }

    /// A relayed update ended: its slot is free again (or takes the handed-back task).
    fn settle(&mut self, outcome: Outcome) {
        let (pending, answer) = match outcome {
            Outcome::Delivered { pending, answer } => (pending, Some(answer)),
            Outcome::HandedBack { pending } => (pending, None),
        };
        let Pending { slot, generation, task_id, result, .. } = pending;
        // Only that generation's reservation: a replacement executor may have its own.
        if let Some(entry) = self.slots.get_mut(&slot).filter(|entry| entry.reserved && entry.generation == generation) {
            entry.reserved = false;
            if entry.ready && entry.stream.is_some() && entry.lease.is_none() {
                self.free.insert(slot);
            }
        }
        let Some(answer) = answer else {
            return self.events.push_back(Event::Completed { slot, task_id, result });
        };
        let next = if answer.windows(8).any(|w| w == b"\"taskId\"") { self.take_next(&answer) } else { None };
        self.events.push_back(Event::Relayed { task_id, next });
    }

    /// The task in an update-v2 answer, assigned to a free slot when there is one.
    fn take_next(&mut self, answer: &[u8]) -> Option<NextTask> {
        match task_head(answer) {
            Ok(Some(head)) => {
                let assigned = fits_an_assign(answer) && self.assign(answer, &head.task_id).is_some();
                Some(NextTask { head, unassigned: (!assigned).then(|| answer.to_vec()) })
            }
            Ok(None) => None,
            Err(_) => {
                self.log("update-v2 answered with a task that is not valid JSON; Conductor will time it out", vec![]);
                None
            }
        }
    }

    fn log(&mut self, message: &str, fields: Vec<(&'static str, String)>) {
        self.events.push_back(Event::Log { message: message.to_string(), fields });
    }

    // -- commands ----------------------------------------------------------------------

    /// Lease the lowest-numbered free slot for `task_id` and send it an Assign frame with
    /// `task` as is and a fresh execution id. `None` when no slot is free. A slot whose
    /// socket refuses the frame is detached and the next free slot tried: the task never
    /// reached that executor, so nothing ran.
    pub fn assign(&mut self, task: &[u8], task_id: &str) -> Option<u32> {
        while let Some(slot) = self.free.pop_first() {
            let dispatch_id = self.next_dispatch;
            self.next_dispatch += 1;
            let execution_id = execution_id_from(self.random.take16());
            let entry = self.slots.get_mut(&slot).expect("free slots exist");
            let Some(stream) = entry.stream.as_ref() else { continue };
            match stream.send_assign(dispatch_id, &execution_id, task) {
                Ok(()) => {
                    entry.lease = Some(Lease { dispatch_id, execution_id, task_id: task_id.to_string() });
                    return Some(slot);
                }
                Err(error) => {
                    let worker_id = entry.worker_id.clone();
                    self.log("executor pipe is broken; the task goes to another slot", vec![
                        ("worker_id", worker_id),
                        ("task_id", task_id.to_string()),
                        ("error", error.to_string()),
                    ]);
                    self.detach(slot);
                }
            }
        }
        None
    }

    /// Answer the fence request of `slot`, but only if that slot is still on
    /// `generation` and still waiting for it; `false` when the answer was discarded.
    pub fn fence_reply(&mut self, slot: u32, generation: u32, reply: &[u8]) -> bool {
        let Some(entry) = self.slots.get_mut(&slot).filter(|s| s.generation == generation) else { return false };
        let (Some(dispatch_id), Some(stream)) = (entry.fence.take(), entry.stream.as_ref()) else { return false };
        match stream.send(&Message::FenceReply { dispatch_id, reply: reply.to_vec() }) {
            Ok(()) => true,
            Err(error) => {
                let worker_id = entry.worker_id.clone();
                self.log("could not answer an attempt-fence request", vec![("worker_id", worker_id), ("error", error.to_string())]);
                false
            }
        }
    }

    /// Send Stop to every executor that still has a socket.
    pub fn stop_executors(&mut self) {
        for entry in self.slots.values() {
            if let Some(stream) = &entry.stream {
                let _ = stream.send(&Message::Stop);
            }
        }
    }

    /// Tell the supervisor the drain is done.
    pub fn drained(&mut self) -> io::Result<()> {
        match &self.control {
            Some(control) => control.send(&Message::Drained, None),
            None => Ok(()),
        }
    }

    /// Drop every lease without an event and return their task ids (the drain deadline
    /// passed; the caller reports them). Those slots stay out of the free set: their
    /// executors are still busy, and a late Complete is dropped as unmatched.
    pub fn abandon_leases(&mut self) -> Vec<String> {
        let mut abandoned: Vec<(u32, String)> = self
            .slots
            .iter_mut()
            .filter_map(|(slot, entry)| entry.lease.take().map(|lease| (*slot, lease.task_id)))
            .collect();
        abandoned.sort();
        abandoned.into_iter().map(|(_, task_id)| task_id).collect()
    }

    /// Slots that can take a task now.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Tasks currently leased to an executor.
    pub fn leases(&self) -> usize {
        self.slots.values().filter(|s| s.lease.is_some()).count()
    }

    /// Slots with a live socket (an executor that is, or will soon be, able to work).
    pub fn attached(&self) -> usize {
        self.slots.values().filter(|s| s.stream.is_some()).count()
    }
}

#[cfg(test)]
mod tests;
