//! The frame layer of every socket in the process tree.
//!
//! A frame is a fixed 16-byte header followed by `length` payload bytes:
//!
//! ```text
//! offset 0  2 bytes  magic  b"PG"
//!        2  1 byte   version (1)
//!        3  1 byte   kind (table below)
//!        4  4 bytes  payload length, little-endian, at most MAX_PAYLOAD
//!        8  8 bytes  id, little-endian (meaning depends on the kind)
//! ```
//!
//! Slot socket (one `SOCK_STREAM` socketpair per slot and generation; the broker
//! holds one end, the executor the other; nobody else writes to it):
//!
//! | kind | dir | id | payload |
//! | --- | --- | --- | --- |
//! | `Ready` 1 | executor → broker | slot generation | empty: the executor can take an Assign |
//! | `Assign` 2 | broker → executor | dispatch id | 32-char execution id, then the task JSON as polled |
//! | `Complete` 3 | executor → broker | dispatch id | 32-char execution id, then the TaskResult JSON to send |
//! | `Stop` 4 | broker → executor | 0 | empty: finish nothing new, exit 0 |
//! | `FenceRequest` 5 | executor → broker | dispatch id | opaque request (the task id) |
//! | `FenceReply` 6 | broker → executor | dispatch id | opaque reply (fresh task JSON or an error) |
//! | `Warm` 7 | spare → supervisor | 0 | empty: the warm spare has booted and waits for a slot |
//! | `Promote` 8 | supervisor → spare | slot | slot u32, generation u32, worker id: take this slot |
//!
//! A warm spare executor starts on a socketpair of its own whose other end the
//! supervisor keeps: it says `Warm` once booted, then blocks until `Promote`, which the
//! supervisor writes before sending that same end to the broker as the slot's `SlotSocket`.
//!
//! Control socket (supervisor ↔ broker, one for the supervisor's life):
//!
//! | kind | dir | id | payload |
//! | --- | --- | --- | --- |
//! | `SlotSocket` 16 | supervisor → broker | slot | slot u32, generation u32, worker id; the broker end travels as `SCM_RIGHTS` |
//! | `ExecutorExited` 17 | supervisor → broker | slot | slot u32, generation u32, cause u8 (0 code, 1 signal), value i32, worker id |
//! | `Drain` 18 | supervisor → broker | 0 | empty: stop polling, finish owed updates, send Stop to every executor once idle |
//! | `Drained` 19 | broker → supervisor | 0 | empty: nothing left in flight; the broker exits next |
//!
//! Integers inside payloads are little-endian; strings are UTF-8. An executor learns
//! its slot socket from `PERAGO_SLOT_FD`, the broker its control socket from
//! `PERAGO_CONTROL_FD`. A slot's exit is always told (`ExecutorExited`) before the
//! replacement's `SlotSocket`, so the broker can fail the in-flight task first. Only the
//! broker and that one executor hold a slot socket, so an executor's death is also an
//! end of file on the broker's end: on `ExecutorExited`, read the slot socket to its end
//! before failing the task — a `Complete` already written there is a valid result (W7).
//! Every generation has its own socket, so no reply can reach a later generation (W9).
//!
//! The decoder accepts arbitrary bytes and never panics: anything malformed is a
//! [`FrameError`], after which the stream is unusable and the caller closes it.

use std::fmt;

pub const MAGIC: [u8; 2] = *b"PG";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
/// Largest payload accepted (64 MiB): task inputs and results travel inline.
pub const MAX_PAYLOAD: u32 = 64 << 20;
/// Length of an execution id: UUID4 as 32 lowercase hex characters.
pub const EXECUTION_ID_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Ready = 1,
    Assign = 2,
    Complete = 3,
    Stop = 4,
    FenceRequest = 5,
    FenceReply = 6,
    Warm = 7,
    Promote = 8,
    SlotSocket = 16,
    ExecutorExited = 17,
    Drain = 18,
    Drained = 19,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Ready,
        Kind::Assign,
        Kind::Complete,
        Kind::Stop,
        Kind::FenceRequest,
        Kind::FenceReply,
        Kind::Warm,
        Kind::Promote,
        Kind::SlotSocket,
        Kind::ExecutorExited,
        Kind::Drain,
        Kind::Drained,
    ];

    pub fn from_u8(value: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as u8 == value)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ready => "Ready",
            Kind::Assign => "Assign",
            Kind::Complete => "Complete",
            Kind::Stop => "Stop",
            Kind::FenceRequest => "FenceRequest",
            Kind::FenceReply => "FenceReply",
            Kind::Warm => "Warm",
            Kind::Promote => "Promote",
            Kind::SlotSocket => "SlotSocket",
            Kind::ExecutorExited => "ExecutorExited",
            Kind::Drain => "Drain",
            Kind::Drained => "Drained",
        }
    }
}

/// Why a byte stream is not a valid frame sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    BadMagic([u8; 2]),
    BadVersion(u8),
    UnknownKind(u8),
    TooLarge(u32),
    /// The payload does not have the layout its kind requires.
    BadPayload {
        kind: Kind,
        reason: &'static str,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic(got) => write!(f, "frame magic is {got:02x?}, expected \"PG\""),
            FrameError::BadVersion(got) => write!(f, "frame version {got} is not supported (expected {VERSION})"),
            FrameError::UnknownKind(got) => write!(f, "frame kind {got} is unknown"),
            FrameError::TooLarge(got) => write!(f, "frame payload of {got} bytes exceeds {MAX_PAYLOAD}"),
            FrameError::BadPayload { kind, reason } => write!(f, "{} frame payload is invalid: {reason}", kind.name()),
        }
    }
}

impl std::error::Error for FrameError {}

/// A parsed header: what follows it and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub length: u32,
    pub id: u64,
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        if bytes[0..2] != MAGIC {
            return Err(FrameError::BadMagic([bytes[0], bytes[1]]));
        }
        if bytes[2] != VERSION {
            return Err(FrameError::BadVersion(bytes[2]));
        }
        let kind = Kind::from_u8(bytes[3]).ok_or(FrameError::UnknownKind(bytes[3]))?;
        let length = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if length > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(length));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[8..16]);
        Ok(Header { kind, length, id: u64::from_le_bytes(id) })
    }
}

/// One raw frame: kind, id and payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub id: u64,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: Kind, id: u64, payload: Vec<u8>) -> Frame {
        Frame { kind, id, payload }
    }

    /// Header and payload as one buffer, ready for a single write.
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.payload.len() <= MAX_PAYLOAD as usize, "frame payload exceeds MAX_PAYLOAD");
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.payload.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.push(VERSION);
        bytes.push(self.kind as u8);
        bytes.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&self.id.to_le_bytes());
        bytes.extend_from_slice(&self.payload);
        bytes
    }
}

/// Incremental decoder for a byte stream: feed what `read` returned, take whole frames out.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    failed: Option<FrameError>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. After an error
    /// every later call returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.buffer.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut header_bytes = [0u8; HEADER_LEN];
        header_bytes.copy_from_slice(&self.buffer[..HEADER_LEN]);
        let header = match Header::parse(&header_bytes) {
            Ok(header) => header,
            Err(error) => {
                self.failed = Some(error.clone());
                return Err(error);
            }
        };
        let total = HEADER_LEN + header.length as usize;
        if self.buffer.len() < total {
            return Ok(None);
        }
        let payload = self.buffer[HEADER_LEN..total].to_vec();
        self.buffer.drain(..total);
        Ok(Some(Frame { kind: header.kind, id: header.id, payload }))
    }
}

/// How a child process ended, as carried by `ExecutorExited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCause {
    Code(i32),
    Signal(i32),
}

/// A frame with its payload decoded according to its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Ready { generation: u64 },
    Assign { dispatch_id: u64, execution_id: String, task: Vec<u8> },
    Complete { dispatch_id: u64, execution_id: String, result: Vec<u8> },
    Stop,
    FenceRequest { dispatch_id: u64, request: Vec<u8> },
    FenceReply { dispatch_id: u64, reply: Vec<u8> },
    Warm,
    Promote { slot: u32, generation: u32, worker_id: String },
    SlotSocket { slot: u32, generation: u32, worker_id: String },
    ExecutorExited { slot: u32, generation: u32, worker_id: String, cause: ExitCause },
    Drain,
    Drained,
}

impl Message {
    pub fn to_frame(&self) -> Frame {
        match self {
            Message::Ready { generation } => Frame::new(Kind::Ready, *generation, Vec::new()),
            Message::Assign { dispatch_id, execution_id, task } => {
                Frame::new(Kind::Assign, *dispatch_id, with_execution_id(execution_id, task))
            }
            Message::Complete { dispatch_id, execution_id, result } => {
                Frame::new(Kind::Complete, *dispatch_id, with_execution_id(execution_id, result))
            }
            Message::Stop => Frame::new(Kind::Stop, 0, Vec::new()),
            Message::FenceRequest { dispatch_id, request } => {
                Frame::new(Kind::FenceRequest, *dispatch_id, request.clone())
            }
            Message::FenceReply { dispatch_id, reply } => Frame::new(Kind::FenceReply, *dispatch_id, reply.clone()),
            Message::Warm => Frame::new(Kind::Warm, 0, Vec::new()),
            Message::Promote { slot, generation, worker_id } => {
                Frame::new(Kind::Promote, u64::from(*slot), slot_identity(*slot, *generation, worker_id))
            }
            Message::SlotSocket { slot, generation, worker_id } => {
                Frame::new(Kind::SlotSocket, u64::from(*slot), slot_identity(*slot, *generation, worker_id))
            }
            Message::ExecutorExited { slot, generation, worker_id, cause } => {
                let (tag, value) = match cause {
                    ExitCause::Code(code) => (0u8, *code),
                    ExitCause::Signal(signal) => (1u8, *signal),
                };
                let mut payload = Vec::with_capacity(13 + worker_id.len());
                payload.extend_from_slice(&slot.to_le_bytes());
                payload.extend_from_slice(&generation.to_le_bytes());
                payload.push(tag);
                payload.extend_from_slice(&value.to_le_bytes());
                payload.extend_from_slice(worker_id.as_bytes());
                Frame::new(Kind::ExecutorExited, u64::from(*slot), payload)
            }
            Message::Drain => Frame::new(Kind::Drain, 0, Vec::new()),
            Message::Drained => Frame::new(Kind::Drained, 0, Vec::new()),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_frame().encode()
    }

    pub fn from_frame(frame: Frame) -> Result<Message, FrameError> {
        let kind = frame.kind;
        let bad = |reason| FrameError::BadPayload { kind, reason };
        let payload = frame.payload;
        Ok(match kind {
            Kind::Ready => Message::Ready { generation: frame.id },
            Kind::Assign => {
                let (execution_id, task) = split_execution_id(&payload).map_err(bad)?;
                Message::Assign { dispatch_id: frame.id, execution_id, task }
            }
            Kind::Complete => {
                let (execution_id, result) = split_execution_id(&payload).map_err(bad)?;
                Message::Complete { dispatch_id: frame.id, execution_id, result }
            }
            Kind::Stop => Message::Stop,
            Kind::FenceRequest => Message::FenceRequest { dispatch_id: frame.id, request: payload },
            Kind::FenceReply => Message::FenceReply { dispatch_id: frame.id, reply: payload },
            Kind::Warm => Message::Warm,
            Kind::Promote => {
                let (slot, generation, worker_id) = split_slot_identity(&payload).map_err(bad)?;
                Message::Promote { slot, generation, worker_id }
            }
            Kind::SlotSocket => {
                let (slot, generation, worker_id) = split_slot_identity(&payload).map_err(bad)?;
                Message::SlotSocket { slot, generation, worker_id }
            }
            Kind::ExecutorExited => {
                if payload.len() < 13 {
                    return Err(bad("shorter than slot, generation and exit cause"));
                }
                let value = le_u32(&payload[9..13]) as i32;
                let cause = match payload[8] {
                    0 => ExitCause::Code(value),
                    1 => ExitCause::Signal(value),
                    _ => return Err(bad("exit cause tag is neither 0 (code) nor 1 (signal)")),
                };
                let worker_id = String::from_utf8(payload[13..].to_vec()).map_err(|_| bad("worker id is not UTF-8"))?;
                Message::ExecutorExited {
                    slot: le_u32(&payload[0..4]),
                    generation: le_u32(&payload[4..8]),
                    worker_id,
                    cause,
                }
            }
            Kind::Drain => Message::Drain,
            Kind::Drained => Message::Drained,
        })
    }
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The payload of `SlotSocket` and `Promote`: slot u32, generation u32, worker id.
fn slot_identity(slot: u32, generation: u32, worker_id: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + worker_id.len());
    payload.extend_from_slice(&slot.to_le_bytes());
    payload.extend_from_slice(&generation.to_le_bytes());
    payload.extend_from_slice(worker_id.as_bytes());
    payload
}

fn split_slot_identity(payload: &[u8]) -> Result<(u32, u32, String), &'static str> {
    if payload.len() < 8 {
        return Err("shorter than slot and generation");
    }
    let worker_id = String::from_utf8(payload[8..].to_vec()).map_err(|_| "worker id is not UTF-8")?;
    Ok((le_u32(&payload[0..4]), le_u32(&payload[4..8]), worker_id))
}

fn with_execution_id(execution_id: &str, body: &[u8]) -> Vec<u8> {
    assert!(is_execution_id(execution_id), "execution id must be 32 lowercase hex characters");
    let mut payload = Vec::with_capacity(EXECUTION_ID_LEN + body.len());
    payload.extend_from_slice(execution_id.as_bytes());
    payload.extend_from_slice(body);
    payload
}

fn split_execution_id(payload: &[u8]) -> Result<(String, Vec<u8>), &'static str> {
    if payload.len() < EXECUTION_ID_LEN {
        return Err("shorter than an execution id");
    }
    let (id, body) = payload.split_at(EXECUTION_ID_LEN);
    let id =
        std::str::from_utf8(id).ok().filter(|id| is_execution_id(id)).ok_or("execution id is not 32 lowercase hex")?;
    Ok((id.to_string(), body.to_vec()))
}

/// Whether `value` is an execution id: exactly 32 lowercase hex characters.
pub fn is_execution_id(value: &str) -> bool {
    value.len() == EXECUTION_ID_LEN && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn execution_id() -> impl Strategy<Value = String> {
        "[0-9a-f]{32}"
    }

    fn message() -> impl Strategy<Value = Message> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            any::<u64>().prop_map(|generation| Message::Ready { generation }),
            (any::<u64>(), execution_id(), bytes()).prop_map(|(dispatch_id, execution_id, task)| Message::Assign {
                dispatch_id,
                execution_id,
                task
            }),
            (any::<u64>(), execution_id(), bytes()).prop_map(|(dispatch_id, execution_id, result)| Message::Complete {
                dispatch_id,
                execution_id,
                result
            }),
            Just(Message::Stop),
            (any::<u64>(), bytes()).prop_map(|(dispatch_id, request)| Message::FenceRequest { dispatch_id, request }),
            (any::<u64>(), bytes()).prop_map(|(dispatch_id, reply)| Message::FenceReply { dispatch_id, reply }),
            (any::<u32>(), any::<u32>(), "[A-Za-z0-9]{0,20}")
                .prop_map(|(slot, generation, worker_id)| Message::SlotSocket { slot, generation, worker_id }),
            Just(Message::Warm),
            (any::<u32>(), any::<u32>(), "[A-Za-z0-9]{0,20}")
                .prop_map(|(slot, generation, worker_id)| Message::Promote { slot, generation, worker_id }),
            (any::<u32>(), any::<u32>(), "[A-Za-z0-9]{0,20}", any::<bool>(), any::<i32>()).prop_map(
                |(slot, generation, worker_id, by_signal, value)| Message::ExecutorExited {
                    slot,
                    generation,
                    worker_id,
                    cause: if by_signal { ExitCause::Signal(value) } else { ExitCause::Code(value) },
                }
            ),
            Just(Message::Drain),
            Just(Message::Drained),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let mut decoder = Decoder::new();
            for chunk in &chunks {
                decoder.push(chunk);
                while let Ok(Some(frame)) = decoder.next_frame() {
                    let _ = Message::from_frame(frame);
                }
            }
        }

        #[test]
        fn valid_header_with_arbitrary_payload_never_panics(kind in proptest::sample::select(Kind::ALL.to_vec()),
                                                           id in any::<u64>(),
                                                           payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let frame = Frame::new(kind, id, payload);
            let mut decoder = Decoder::new();
            decoder.push(&frame.encode());
            let decoded = decoder.next_frame().unwrap().unwrap();
            prop_assert_eq!(&decoded, &frame);
            let _ = Message::from_frame(decoded);
        }

        #[test]
        fn messages_round_trip_split_anywhere(messages in proptest::collection::vec(message(), 1..6), split in any::<usize>()) {
            let stream: Vec<u8> = messages.iter().flat_map(Message::encode).collect();
            let cut = split % (stream.len() + 1);
            let mut decoder = Decoder::new();
            let mut decoded = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                decoder.push(part);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    decoded.push(Message::from_frame(frame).unwrap());
                }
            }
            prop_assert_eq!(decoded, messages);
            prop_assert_eq!(decoder.pending(), 0);
        }
    }

    #[test]
    fn rejects_bad_magic_version_kind_and_size() {
        let good = Message::Stop.encode();
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        let mut bad_version = good.clone();
        bad_version[2] = 9;
        let mut bad_kind = good.clone();
        bad_kind[3] = 200;
        let mut too_large = good.clone();
        too_large[4..8].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        for (bytes, expected) in [
            (bad_magic, FrameError::BadMagic([b'X', b'G'])),
            (bad_version, FrameError::BadVersion(9)),
            (bad_kind, FrameError::UnknownKind(200)),
            (too_large, FrameError::TooLarge(MAX_PAYLOAD + 1)),
        ] {
            let mut decoder = Decoder::new();
            decoder.push(&bytes);
            assert_eq!(decoder.next_frame(), Err(expected.clone()));
            assert_eq!(decoder.next_frame(), Err(expected), "errors are sticky");
        }
    }

    #[test]
    fn assign_requires_an_execution_id() {
        let frame = Frame::new(Kind::Assign, 1, b"not-hex-not-32".to_vec());
        assert!(matches!(Message::from_frame(frame), Err(FrameError::BadPayload { kind: Kind::Assign, .. })));
    }
}
