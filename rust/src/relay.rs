//! The result update of the hot path, sent by the dispatcher itself.
//!
//! Sending each TaskResult from the broker's Python loop cost about 100 µs of interpreter
//! time per task, more than everything else the broker does. The relay makes the first
//! try of a completed task's update without Python: it writes the TaskResult bytes, as
//! the executor produced them, in a `POST {base}/tasks/update-v2` on a keep-alive
//! connection to Conductor, and reads the answer. A 2xx answer delivers the result; the
//! task update-v2 hands back in it goes straight to a slot. Anything else — another
//! status, a transport failure, no answer in time, an answer it cannot read — hands the
//! completion back unchanged, and the broker's Python client applies the whole policy
//! (retries with backoff, the update-v2 fallback, undeliverable logging), as if the relay
//! had not been there. Policy lives in one place; the relay is only a fast first try.
//!
//! Like the Python client: one request per connection at a time, idle connections kept,
//! a reused connection the server closed before any answer byte gets the request once
//! more on a fresh connection, and every request has the client's timeout. Plain HTTP
//! only; the broker leaves https and token-authenticated servers to the Python client.
//! When Conductor cannot be reached the relay stands aside for a while ([`REST_AFTER_CONNECT_FAILURE`])
//! instead of making every completion wait for a connect that the Python client's
//! backoff will retry anyway.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use crate::http1::{Response, ResponseParser};

/// How long completions go straight to the broker after a connect failed.
pub const REST_AFTER_CONNECT_FAILURE: Duration = Duration::from_secs(1);

/// Where and how to send updates: `head` is the request head up to and including
/// `Content-Length: ` (the broker's client builds it, with its Host and auth lines).
#[derive(Clone, Debug)]
pub struct RelayTarget {
    pub host: String,
    pub port: u16,
    pub head: Vec<u8>,
    pub timeout: Duration,
}

/// A completed task whose result is on its way.
#[derive(Debug, PartialEq, Eq)]
pub struct Pending {
    pub slot: u32,
    /// The slot's executor generation that completed the task.
    pub generation: u32,
    pub task_id: String,
    pub result: Vec<u8>,
    resent: bool,
}

impl Pending {
    pub fn new(slot: u32, generation: u32, task_id: String, result: Vec<u8>) -> Pending {
        Pending { slot, generation, task_id, result, resent: false }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Conductor accepted the result; `answer` is a 200's body (maybe the next task), empty
    /// for another 2xx.
    Delivered { pending: Pending, answer: Vec<u8> },
    /// The first try did not deliver the result; the broker's client takes over.
    HandedBack { pending: Pending },
}

struct Connection {
    stream: TcpStream,
    parser: ResponseParser,
    pending: Option<Pending>,
    reused: bool,
    deadline: Instant,
}

pub struct Relay {
    target: RelayTarget,
    epoll: i32,
    token_base: u64,
    connections: HashMap<i32, Connection>,
    idle: Vec<i32>,
    read_buffer: Vec<u8>,
    resting_until: Option<Instant>,
}

impl Relay {
    /// Connections are watched in `epoll` under `token_base - fd` (the dispatcher's token
    /// scheme for fds it does not own a slot for).
    pub fn new(target: RelayTarget, epoll: i32, token_base: u64) -> Relay {
        Relay {
            target,
            epoll,
            token_base,
            connections: HashMap::new(),
            idle: Vec::new(),
            read_buffer: vec![0; 64 * 1024],
            resting_until: None,
        }
    }

    pub fn owns(&self, fd: i32) -> bool {
        self.connections.contains_key(&fd)
    }

    /// Updates sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.connections.values().filter(|c| c.pending.is_some()).count()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.connections.values().filter(|c| c.pending.is_some()).map(|c| c.deadline).min()
    }

    /// Send `pending`'s result; `Err` gives it back when it could not be sent at all.
    pub fn send(&mut self, pending: Pending, now: Instant) -> Result<(), Pending> {
        self.send_on(pending, now, false)
    }

    /// `fresh`: on a new connection (after a stale one: the idle ones may be stale too).
    fn send_on(&mut self, pending: Pending, now: Instant, fresh: bool) -> Result<(), Pending> {
        let reuse = if fresh { None } else { self.idle.pop() };
        let fd = match reuse {
            Some(fd) => fd,
            None if self.resting_until.is_some_and(|until| now < until) => return Err(pending),
            None => match self.open() {
                Ok(fd) => fd,
                Err(_) => {
                    self.resting_until = Some(now + REST_AFTER_CONNECT_FAILURE);
                    return Err(pending);
                }
            },
        };
        let connection = self.connections.get_mut(&fd).expect("idle connections are open");
        match write_request(&mut connection.stream, &self.target, &pending.result) {
            Ok(()) => {
                connection.pending = Some(pending);
                connection.deadline = now + self.target.timeout;
                Ok(())
            }
            Err(_) => {
                let stale = connection.reused;
                self.close(fd);
                self.second_chance(pending, stale, now)
            }
        }
    }

    /// A request whose connection failed before any answer byte: sent once more on a fresh
    /// connection when that was a reused one the server had closed, else given back.
    fn second_chance(&mut self, mut pending: Pending, stale: bool, now: Instant) -> Result<(), Pending> {
        if !stale || pending.resent {
            return Err(pending);
        }
        pending.resent = true;
        self.send_on(pending, now, true)
    }

    /// Read what arrived on `fd`; the outcome of its update once the answer is whole.
    pub fn on_readable(&mut self, fd: i32, now: Instant) -> Option<Outcome> {
        let mut buffer = std::mem::take(&mut self.read_buffer);
        let outcome = self.read(fd, &mut buffer, now);
        self.read_buffer = buffer;
        outcome
    }

    fn read(&mut self, fd: i32, buffer: &mut [u8], now: Instant) -> Option<Outcome> {
        loop {
            let connection = self.connections.get_mut(&fd)?;
            let fed = match connection.stream.read(buffer) {
                Ok(0) if connection.pending.is_none() => {
                    self.close(fd);
                    return None;
                }
                Ok(0) if connection.reused && !connection.parser.received => return self.lost(fd, true, now),
                Ok(0) => connection.parser.feed_eof().map(Some),
                Ok(_) if connection.pending.is_none() => {
                    self.close(fd); // bytes nobody asked for: the connection is unusable
                    return None;
                }
                Ok(count) => connection.parser.feed(&buffer[..count]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    let stale = connection.reused && !connection.parser.received;
                    return self.lost(fd, stale, now);
                }
            };
            return match fed {
                Ok(None) => continue,
                Ok(Some(response)) => Some(self.answered(fd, response)),
                Err(_) => self.lost(fd, false, now),
            };
        }
    }

    fn answered(&mut self, fd: i32, response: Response) -> Outcome {
        let connection = self.connections.get_mut(&fd).expect("answered on an open connection");
        let pending = connection.pending.take().expect("an answer belongs to a request");
        if response.reusable {
            connection.parser = ResponseParser::default();
            connection.reused = true;
            self.idle.push(fd);
        } else {
            self.close(fd);
        }
        if (200..300).contains(&response.status) {
            // As the Python client reads update-v2: only a 200 can carry the next task.
            let answer = if response.status == 200 { response.body } else { Vec::new() };
            Outcome::Delivered { pending, answer }
        } else {
            Outcome::HandedBack { pending }
        }
    }

    /// The connection failed; a stale reused one gets its request once more.
    fn lost(&mut self, fd: i32, stale: bool, now: Instant) -> Option<Outcome> {
        let pending = self.close(fd)?;
        self.second_chance(pending, stale, now).err().map(|pending| Outcome::HandedBack { pending })
    }

    /// Requests past their deadline are given back (their connections closed).
    pub fn expire(&mut self, now: Instant) -> Vec<Outcome> {
        let late: Vec<i32> = self
            .connections
            .iter()
            .filter(|(_, c)| c.pending.is_some() && c.deadline <= now)
            .map(|(fd, _)| *fd)
            .collect();
        late.into_iter().filter_map(|fd| self.close(fd)).map(|pending| Outcome::HandedBack { pending }).collect()
    }

    fn open(&mut self) -> io::Result<i32> {
        let address = (self.target.host.as_str(), self.target.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let stream = TcpStream::connect_timeout(&address, self.target.timeout)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let fd = stream.as_raw_fd();
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: self.token_base - fd as u64 };
        if unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let connection =
            Connection { stream, parser: ResponseParser::default(), pending: None, reused: false, deadline: Instant::now() };
        self.connections.insert(fd, connection);
        Ok(fd)
    }

    /// Close `fd`, returning the request it carried.
    fn close(&mut self, fd: i32) -> Option<Pending> {
        let connection = self.connections.remove(&fd)?;
        self.idle.retain(|idle| *idle != fd);
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_DEL, fd, &mut event) };
        connection.pending
    }
}

/// Head, length and body in one buffer; what the socket buffer cannot take at once is
/// written waiting for it (rare: results are small), within the request timeout.
fn write_request(stream: &mut TcpStream, target: &RelayTarget, body: &[u8]) -> io::Result<()> {
    let mut request = Vec::with_capacity(target.head.len() + 24 + body.len());
    request.extend_from_slice(&target.head);
    request.extend_from_slice(body.len().to_string().as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(body);
    let mut written = 0;
    let give_up = Instant::now() + target.timeout;
    while written < request.len() {
        match stream.write(&request[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(count) => written += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                let left = give_up.saturating_duration_since(Instant::now());
                if left.is_zero() || !crate::sys::wait_writable(stream.as_fd(), left)? {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
