//! The relay against a real loopback server, one scripted connection at a time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;

use super::*;

const TOKEN_BASE: u64 = u64::MAX - 16;

/// A server thread: for each accepted connection, `answers` gives what to write after
/// each request it reads (`None`: close the connection instead of answering).
fn server(connections: Vec<Vec<Option<&'static [u8]>>>) -> (u16, thread::JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut requests = Vec::new();
        for answers in connections {
            let (mut stream, _) = listener.accept().unwrap();
            for answer in answers {
                requests.push(read_request(&mut stream));
                match answer {
                    Some(bytes) => stream.write_all(bytes).unwrap(),
                    None => break,
                }
            }
        }
        requests
    });
    (port, handle)
}

fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        request.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let length: usize = text.split("Content-Length: ").nth(1).unwrap().split("\r\n").next().unwrap().parse().unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    request.extend_from_slice(&body);
    request
}

struct Harness {
    epoll: OwnedFd,
    relay: Relay,
}

impl Harness {
    fn new(port: u16, timeout: Duration) -> Harness {
        let epoll = unsafe { OwnedFd::from_raw_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC)) };
        let head = format!("POST /api/tasks/update-v2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: ").into_bytes();
        let target = RelayTarget { host: "127.0.0.1".into(), port, head, timeout };
        let relay = Relay::new(target, epoll.as_raw_fd(), TOKEN_BASE);
        Harness { epoll, relay }
    }

    /// Wait for readiness and feed the relay until it produces an outcome.
    fn outcome(&mut self) -> Outcome {
        loop {
            let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 8];
            let wait = self.relay.next_deadline().map_or(5000, |d| {
                d.saturating_duration_since(Instant::now()).as_millis() as i32 + 1
            });
            let count = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), ready.as_mut_ptr(), 8, wait) };
            for event in &ready[..count.max(0) as usize] {
                let fd = (TOKEN_BASE - event.u64) as i32;
                if let Some(outcome) = self.relay.on_readable(fd, Instant::now()) {
                    return outcome;
                }
            }
            if let Some(outcome) = self.relay.expire(Instant::now()).pop() {
                return outcome;
            }
        }
    }
}

fn pending(task_id: &str) -> Pending {
    Pending::new(1, 1, task_id.into(), format!("{{\"taskId\":\"{task_id}\"}}").into_bytes())
}

const NEXT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"taskId\":\"n\"}";
const EMPTY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn delivers_on_one_keep_alive_connection_with_the_body_as_sent() {
    let (port, server) = server(vec![vec![Some(NEXT), Some(EMPTY)]]);
    let mut harness = Harness::new(port, Duration::from_secs(5));
    harness.relay.send(pending("a"), Instant::now()).unwrap();
    assert_eq!(harness.relay.in_flight(), 1);
    match harness.outcome() {
        Outcome::Delivered { pending, answer } => {
            assert_eq!((pending.task_id.as_str(), answer.as_slice()), ("a", &b"{\"taskId\":\"n\"}"[..]))
        }
        other => panic!("{other:?}"),
    }
    harness.relay.send(pending("b"), Instant::now()).unwrap();
    assert!(matches!(harness.outcome(), Outcome::Delivered { answer, .. } if answer.is_empty()));
    assert_eq!(harness.relay.in_flight(), 0);
    let requests = server.join().unwrap();
    let first = String::from_utf8(requests[0].clone()).unwrap();
    assert!(first.starts_with("POST /api/tasks/update-v2 HTTP/1.1\r\n"), "{first}");
    assert!(first.ends_with("Content-Length: 14\r\n\r\n{\"taskId\":\"a\"}"), "{first}");
}

/// The outcome of one update ("a") on a fresh connection the server answers with
/// `answer` (`None`: closes instead).
fn outcome_of_one(answer: Option<&'static [u8]>) -> Outcome {
    let (port, server) = server(vec![vec![answer]]);
    let mut harness = Harness::new(port, Duration::from_secs(5));
    harness.relay.send(pending("a"), Instant::now()).unwrap();
    let outcome = harness.outcome();
    server.join().unwrap();
    outcome
}

#[test]
fn only_a_200_can_carry_the_next_task() {
    let accepted: &[u8] = b"HTTP/1.1 202 Accepted\r\nContent-Length: 14\r\n\r\n{\"taskId\":\"n\"}";
    assert!(matches!(outcome_of_one(Some(accepted)), Outcome::Delivered { answer, .. } if answer.is_empty()));
}

#[test]
fn a_refusal_hands_the_completion_back_unchanged() {
    let refusal: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";
    assert_eq!(outcome_of_one(Some(refusal)), Outcome::HandedBack { pending: pending("a") });
}

#[test]
fn a_stale_keep_alive_connection_gets_the_request_once_more_on_a_fresh_one() {
    // The server answers once, then closes that connection; the next request must
    // arrive whole on a second connection.
    let (port, server) = server(vec![vec![Some(EMPTY), None], vec![Some(NEXT)]]);
    let mut harness = Harness::new(port, Duration::from_secs(5));
    harness.relay.send(pending("a"), Instant::now()).unwrap();
    assert!(matches!(harness.outcome(), Outcome::Delivered { .. }));
    thread::sleep(Duration::from_millis(50)); // let the server close its end
    harness.relay.send(pending("b"), Instant::now()).ok();
    match harness.outcome() {
        Outcome::Delivered { pending, .. } => assert_eq!(pending.task_id, "b"),
        other => panic!("{other:?}"),
    }
    let requests = server.join().unwrap();
    assert!(String::from_utf8_lossy(requests.last().unwrap()).ends_with("{\"taskId\":\"b\"}"));
}

#[test]
fn a_connection_that_dies_on_a_fresh_request_is_not_replayed() {
    assert_eq!(outcome_of_one(None), Outcome::HandedBack { pending: pending("a") });
}

#[test]
fn no_answer_in_time_hands_back_and_an_unreachable_server_refuses_at_send() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap(); // accepts (backlog), never answers
    let port = listener.local_addr().unwrap().port();
    let mut harness = Harness::new(port, Duration::from_millis(100));
    harness.relay.send(pending("a"), Instant::now()).unwrap();
    assert_eq!(harness.outcome(), Outcome::HandedBack { pending: pending("a") });
    assert_eq!(harness.relay.in_flight(), 0);
    drop(listener);
    let mut harness = Harness::new(port, Duration::from_millis(100));
    assert_eq!(harness.relay.send(pending("b"), Instant::now()), Err(pending("b")));
}

#[test]
fn after_a_failed_connect_the_relay_stands_aside_for_a_while() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let mut harness = Harness::new(port, Duration::from_secs(5));
    let now = Instant::now();
    assert_eq!(harness.relay.send(pending("a"), now), Err(pending("a")));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap(); // the server is back
    listener.set_nonblocking(true).unwrap();
    assert_eq!(harness.relay.send(pending("b"), now + Duration::from_millis(10)), Err(pending("b")));
    assert!(listener.accept().is_err(), "no connection is tried while resting");
    harness.relay.send(pending("c"), now + REST_AFTER_CONNECT_FAILURE).unwrap();
    assert!(listener.accept().is_ok());
}
