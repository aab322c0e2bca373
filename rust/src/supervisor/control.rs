//! The supervisor's end of the control socket: frames for the broker go through an
//! outbox flushed as the socket takes them, so a broker that is slow to read never
//! blocks the loop; EPOLLOUT says when to continue.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use serde_json::json;

use super::{Outgoing, Supervisor, TOKEN_CONTROL};
use crate::frame::Message;
use crate::log;
use crate::sys;

impl Supervisor {
    /// Queue a frame for the broker (with an fd to pass, for `SlotSocket`) and send what
    /// the socket takes now. Order is preserved, so an exit is always told before the
    /// replacement's socket.
    pub(super) fn send_control(&mut self, message: &Message, fd: Option<OwnedFd>) {
        if !self.control_open {
            return;
        }
        self.control_outbox.push_back(Outgoing { bytes: message.encode(), sent: 0, fd });
        self.flush_control();
    }

    pub(super) fn flush_control(&mut self) {
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

    pub(super) fn close_control(&mut self) {
        if self.control_open {
            self.control_open = false;
            self.control_outbox.clear();
            self.epoll.remove(self.control.as_fd());
        }
    }
}
