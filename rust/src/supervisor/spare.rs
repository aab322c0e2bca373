//! The warm spare executor, both sides of its protocol.
//!
//! Supervisor side: the spare is spawned like an executor but on a socketpair of its
//! own and without a slot identity. It writes `Warm` once perago and the task module
//! are imported; the supervisor reads that (the spare is then "ready as a spare") and
//! stops watching the socket. To promote it into a slot whose backoff has passed, the
//! supervisor writes `Promote` (slot, next generation, worker id) on its end, moves the
//! child's pidfd, stderr and ready pipe under the slot, and sends that same end to the
//! broker as the slot's `SlotSocket` — after the `ExecutorExited` already queued for the
//! slot. The slot counts as ready only when the promoted process writes its ready pipe,
//! as a cold executor does. A spare that dies before it is warm is a boot failure like
//! an executor's; one that dies while warm is replaced after the backoff.
//!
//! Spare side: [`await_promotion`] says `Warm` and blocks for `Promote`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use serde_json::json;

use super::child::{ChildState, Role, Running};
use super::events::{exit_fields, with_identity};
use super::{Phase, Supervisor, EVENT_EXIT, EVENT_READY, EVENT_STDERR};
use crate::backoff;
use crate::frame::{ExitCause, Frame, Header, Message, HEADER_LEN};
use crate::log;
use crate::sys;

/// The supervisor's end of the running spare's socket.
pub(super) struct SpareLink {
    socket: OwnedFd,
    decoder: crate::frame::Decoder,
}

/// What a booting spare's socket had to say.
enum SpareSaid {
    Nothing,
    Warm,
    /// End of file: it died (or closed the socket) before it was warm.
    Closed,
    /// Anything but `Warm`: a broken spare.
    Unexpected(String),
}

impl SpareLink {
    pub(super) fn new(socket: OwnedFd) -> SpareLink {
        SpareLink { socket, decoder: crate::frame::Decoder::new() }
    }

    /// Read what has arrived without blocking.
    fn read(&mut self) -> SpareSaid {
        let mut buffer = [0u8; 256];
        let mut closed = false;
        loop {
            match sys::recv_with_fds(self.socket.as_fd(), &mut buffer, true) {
                Ok((0, _)) => closed = true,
                Ok((n, _)) => {
                    self.decoder.push(&buffer[..n]);
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => closed = true,
            }
            break;
        }
        match self.decoder.next_frame().map(|frame| frame.map(Message::from_frame)) {
            Ok(Some(Ok(Message::Warm))) => SpareSaid::Warm,
            Ok(Some(Ok(other))) => SpareSaid::Unexpected(other.to_frame().kind.name().to_string()),
            Ok(Some(Err(error))) | Err(error) => SpareSaid::Unexpected(error.to_string()),
            Ok(None) if closed => SpareSaid::Closed,
            Ok(None) => SpareSaid::Nothing,
        }
    }
}

impl Supervisor {
    pub(super) fn spare_index(&self) -> Option<usize> {
        self.members.iter().position(|member| member.role == Role::Spare)
    }

    /// The first spare boots with the executors, so its one-off CPU cost falls in the
    /// start-up window and not on the first tasks (2,000 no-op tasks take about a
    /// second; a boot costs a third of that). A replacement spare starts only while no
    /// other child is booting: it would compete with a cold restart for the CPU.
    pub(super) fn spare_may_start(&self) -> bool {
        let first = self.members.iter().any(|member| member.role == Role::Spare && member.generation == 0);
        first
            || !self
                .members
                .iter()
                .filter(|member| member.role != Role::Spare)
                .any(|member| member.running().is_some_and(|running| running.ready_at.is_none()))
    }

    /// The spare's socket is readable: its `Warm`, or end of file when it died booting.
    pub(super) fn on_spare_socket(&mut self, index: usize) {
        let Some(link) = self.spare_link.as_mut() else { return };
        let said = link.read();
        if !matches!(said, SpareSaid::Nothing) {
            // It has said all it will before its promotion; its death comes via the pidfd.
            self.epoll.remove(link.socket.as_fd());
        }
        let member = &mut self.members[index];
        let ChildState::Running(running) = &mut member.state else { return };
        match said {
            SpareSaid::Nothing | SpareSaid::Closed => {}
            SpareSaid::Warm => {
                let now = Instant::now();
                running.ready_at = Some(now);
                let fields = json!({"warm_seconds": now.duration_since(running.started).as_secs_f64()});
                let pid = running.pid;
                member.boot_failures = 0;
                log::info("spare executor warm", with_identity(member, pid, fields));
            }
            SpareSaid::Unexpected(frame) => {
                let pid = running.pid;
                log::warning(
                    "spare executor sent something other than Warm; killing it",
                    with_identity(member, pid, json!({"frame": frame})),
                );
                let _ = sys::kill(pid as i32, libc::SIGKILL);
            }
        }
    }

    /// Put the warm spare into executor slot `index` (its backoff has passed). `Ok(false)`
    /// when there is no warm spare: the caller spawns cold instead.
    pub(super) fn promote_spare(&mut self, index: usize) -> io::Result<bool> {
        let Some(spare) = self.spare_index() else { return Ok(false) };
        let warm = self.members[spare].running().is_some_and(|running| running.ready_at.is_some());
        let Role::Executor { slot } = self.members[index].role else { return Ok(false) };
        if !warm || self.spare_link.is_none() {
            return Ok(false);
        }
        let link = self.spare_link.take().expect("checked above");
        let generation = self.members[index].generation + 1;
        let worker_id = self.members[index].worker_id.clone();
        let promote = Message::Promote { slot, generation, worker_id: worker_id.clone() };
        if let Err(error) = sys::write_all(link.socket.as_fd(), &promote.encode()) {
            // It died a moment ago: its exit replaces it; this slot starts cold.
            let member = &self.members[spare];
            if let Some(running) = member.running() {
                log::warning(
                    "could not promote the spare executor; starting the slot cold",
                    with_identity(member, running.pid, json!({"exception": error.to_string()})),
                );
                let _ = sys::kill(running.pid as i32, libc::SIGKILL);
            }
            return Ok(false);
        }
        let now = Instant::now();
        let ChildState::Running(mut running) =
            std::mem::replace(&mut self.members[spare].state, ChildState::Pending { at: now })
        else {
            unreachable!("checked above")
        };
        if let Err(error) = self.watch_for_slot(index, &running) {
            // Never keep a child whose events cannot reach us.
            let _ = sys::kill(running.pid as i32, libc::SIGKILL);
            let _ = running.process.wait();
            return Err(error);
        }
        let warm_for = running.ready_at.map(|at| now.duration_since(at).as_secs_f64());
        // From here it is the slot's executor, booting until it writes its ready pipe.
        running.ready_at = None;
        running.started = now;
        let pid = running.pid;
        let tail = std::mem::take(&mut self.members[spare].tail);
        let member = &mut self.members[index];
        member.generation = generation;
        member.tail = tail;
        member.state = ChildState::Running(running);
        log::info(
            "spare executor promoted",
            with_identity(member, pid, json!({"restart": true, "warm_for_seconds": warm_for})),
        );
        self.send_control(&Message::SlotSocket { slot, generation, worker_id }, Some(link.socket));
        Ok(true)
    }

    /// Move the promoted spare's exit, stderr and ready events to slot `index`'s token.
    fn watch_for_slot(&self, index: usize, running: &Running) -> io::Result<()> {
        let token = index as u64;
        self.epoll.modify(running.pidfd.as_fd(), EVENT_EXIT | token, false)?;
        if let Some(stderr) = &running.stderr {
            self.epoll.modify(stderr.as_fd(), EVENT_STDERR | token, false)?;
        }
        if let Some(pipe) = &running.ready_pipe {
            self.epoll.add(pipe.as_fd(), EVENT_READY | token)?;
        }
        Ok(())
    }

    pub(super) fn on_spare_exit(&mut self, index: usize, running: Running, cause: ExitCause) {
        if let Some(link) = self.spare_link.take() {
            self.epoll.remove(link.socket.as_fd());
        }
        let mut fields = exit_fields(cause, &running);
        let was_warm = running.ready_at.is_some();
        if let Some(object) = fields.as_object_mut() {
            object.remove("was_ready");
            object.insert("was_warm".into(), json!(was_warm));
        }
        if matches!(self.phase, Phase::Draining { .. }) {
            log::info("spare executor exited", with_identity(&self.members[index], running.pid, fields));
            return;
        }
        if self.count_boot_failure(index, &running, cause, ("spare executor", "warm"), &mut fields) {
            return;
        }
        let member = &mut self.members[index];
        if running.ready_at.is_some_and(|warm| warm.elapsed() >= self.config.healthy_after) {
            member.restart_count = 0;
        }
        let delay = self.config.backoff_unit.mul_f64(backoff::restart_backoff_seconds(member.restart_count) as f64);
        member.restart_count += 1;
        member.state = ChildState::Pending { at: Instant::now() + delay };
        fields["restart_delay_seconds"] = json!(delay.as_secs_f64());
        fields["consecutive_boot_failures"] = json!(member.boot_failures);
        log::error("spare executor exited; replacing it", with_identity(member, running.pid, fields));
    }

    /// Drain: a warm spare is told to stop by closing its socket (it exits 0); one still
    /// booting holds nothing and is killed rather than waited for.
    pub(super) fn stop_spare(&mut self) {
        if let Some(link) = self.spare_link.take() {
            self.epoll.remove(link.socket.as_fd());
        }
        let Some(index) = self.spare_index() else { return };
        let member = &self.members[index];
        if let Some(running) = member.running().filter(|running| running.ready_at.is_none()) {
            let fields = with_identity(member, running.pid, json!({"phase": "drain"}));
            log::info("killing the spare executor still booting", fields);
            let _ = sys::kill(running.pid as i32, libc::SIGKILL);
        }
    }
}

/// The spare's side: write `Warm` on `socket` (its `PERAGO_SLOT_FD`), then block until
/// the supervisor promotes it. Returns the slot, generation and worker id, or `None`
/// when the supervisor closed the socket (the runtime is draining).
///
/// Reads exactly one frame and nothing past it: whatever the broker writes later on this
/// socket stays there for the executor's channel.
pub fn await_promotion(socket: BorrowedFd<'_>) -> io::Result<Option<(u32, u32, String)>> {
    match sys::write_all(socket, &Message::Warm.encode()) {
        Err(error) if closed(&error) => return Ok(None),
        other => other?,
    }
    let mut header = [0u8; HEADER_LEN];
    if !read_exact(socket, &mut header)? {
        return Ok(None);
    }
    let header = Header::parse(&header).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    let mut payload = vec![0u8; header.length as usize];
    if !read_exact(socket, &mut payload)? && !payload.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "supervisor closed the spare socket mid-frame"));
    }
    match Message::from_frame(Frame::new(header.kind, header.id, payload)) {
        Ok(Message::Promote { slot, generation, worker_id }) => Ok(Some((slot, generation, worker_id))),
        Ok(other) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("spare expected a Promote frame, got {}", other.to_frame().kind.name()),
        )),
        Err(error) => Err(io::Error::new(io::ErrorKind::InvalidData, error)),
    }
}

fn closed(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
}

/// Fill `buffer` from a blocking socket. `Ok(false)` if the peer closed before the first
/// byte; an error if it closed after.
fn read_exact(socket: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match sys::read(socket, &mut buffer[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the socket mid-frame")),
            Ok(n) => filled += n,
            Err(error) if closed(&error) && filled == 0 => return Ok(false),
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn spare_says_warm_then_takes_its_promotion_and_leaves_later_frames_alone() {
        let (supervisor, spare) = sys::socketpair().unwrap();
        let mut bytes = Message::Promote { slot: 3, generation: 2, worker_id: "w0003".into() }.encode();
        bytes.extend(Message::Stop.encode());
        sys::write_all(supervisor.as_fd(), &bytes).unwrap();
        assert_eq!(await_promotion(spare.as_fd()).unwrap(), Some((3, 2, "w0003".to_string())));
        let mut warm = [0u8; HEADER_LEN];
        assert!(read_exact(supervisor.as_fd(), &mut warm).unwrap());
        assert_eq!(Header::parse(&warm).unwrap().kind, crate::frame::Kind::Warm);
        let mut rest = [0u8; HEADER_LEN];
        assert!(read_exact(spare.as_fd(), &mut rest).unwrap());
        assert_eq!(Header::parse(&rest).unwrap().kind, crate::frame::Kind::Stop);
    }

    #[test]
    fn spare_sees_a_closed_socket_as_no_promotion() {
        let (supervisor, spare) = sys::socketpair().unwrap();
        drop(supervisor);
        assert_eq!(await_promotion(spare.as_fd()).unwrap(), None);
        let (supervisor, spare) = sys::socketpair().unwrap();
        sys::write_all(supervisor.as_fd(), &Message::Drain.encode()).unwrap();
        assert!(await_promotion(spare.as_fd()).unwrap_err().to_string().contains("expected a Promote"));
    }
}
