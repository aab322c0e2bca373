//! Moving bytes into workspace files while hashing them: a response body of known length
//! from a socket (the download hot path of workspace transfers), or a cached file.
//!
//! Python reads the response head, then hands over the socket. Here the bytes go socket →
//! one reused buffer → file, and through the content digest (BLAKE3) and, when the listed
//! checksum is an MD5, through MD5 (W-19), with no Python in between: per 256 KiB object
//! that saves the per-piece Python calls and the GIL hand-offs between transfer threads.
//!
//! The socket may be non-blocking (Python sets `O_NONBLOCK` when it has a timeout): every
//! read that finds no data waits with `poll` up to `timeout`, which, as in Python, bounds
//! each wait for more bytes, not the whole body.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use crate::content_digest::{self, ContentDigest};
use crate::md5_digest::Md5;
use crate::sys;

/// Why a body could not be received whole.
#[derive(Debug)]
pub enum ReceiveError {
    /// No byte arrived for a whole `timeout`.
    TimedOut,
    /// The peer ended the stream with `missing` bytes of the body still to come.
    ClosedEarly { missing: u64 },
    /// A signal interrupted the wait; call `receive` again to go on where it stopped.
    Interrupted,
    /// Reading the socket failed (a reset connection, ...).
    Socket(io::Error),
    /// Writing the file failed (a full disk, ...).
    File(io::Error),
}

/// What a completely received body hashed to.
#[derive(Debug, PartialEq, Eq)]
pub struct BodyDigests {
    /// BLAKE3, 64 hex digits (`content_digest`).
    pub content: String,
    /// MD5, 32 hex digits, when it was asked for.
    pub md5: Option<String>,
}

/// One body of `count` bytes on its way into a file; keeps its place across interruptions.
pub struct BodyReceiver {
    remaining: u64,
    content: ContentDigest,
    md5: Option<Md5>,
}

impl BodyReceiver {
    pub fn new(count: u64, with_md5: bool) -> BodyReceiver {
        BodyReceiver { remaining: count, content: ContentDigest::new(), md5: with_md5.then(Md5::new) }
    }

    /// Body bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Write and hash body bytes the caller already read off the socket (Python's buffered
    /// read-ahead past the head). They must not exceed what is `remaining`.
    pub fn accept(&mut self, file: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), ReceiveError> {
        assert!(bytes.len() as u64 <= self.remaining, "more prefix bytes than the body holds");
        sys::write_file(file, bytes).map_err(ReceiveError::File)?;
        self.hash(bytes);
        self.remaining -= bytes.len() as u64;
        Ok(())
    }

    /// Read the rest of the body from `socket` into `file` through `buffer`.
    pub fn receive(
        &mut self,
        socket: BorrowedFd<'_>,
        file: BorrowedFd<'_>,
        timeout: Option<Duration>,
        buffer: &mut [u8],
    ) -> Result<(), ReceiveError> {
        while self.remaining > 0 {
            let want = buffer.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            let piece = &mut buffer[..want];
            let count = read_some(socket, piece, timeout)?;
            if count == 0 {
                return Err(ReceiveError::ClosedEarly { missing: self.remaining });
            }
            sys::write_file(file, &piece[..count]).map_err(ReceiveError::File)?;
            self.hash(&piece[..count]);
            self.remaining -= count as u64;
        }
        Ok(())
    }

    /// The digests of the whole body; call once `remaining` is 0.
    pub fn finish(self) -> BodyDigests {
        debug_assert_eq!(self.remaining, 0, "finish before the whole body arrived");
        BodyDigests { content: self.content.hex(), md5: self.md5.map(|md5| md5.hex()) }
    }

    fn hash(&mut self, bytes: &[u8]) {
        self.content.update(bytes);
        if let Some(md5) = self.md5.as_mut() {
            md5.update(bytes);
        }
    }
}

/// One read of whatever the socket holds (at most `buffer.len()`), waiting up to `timeout`
/// when it holds nothing yet. `Ok(0)` is the peer's end of stream.
fn read_some(socket: BorrowedFd<'_>, buffer: &mut [u8], timeout: Option<Duration>) -> Result<usize, ReceiveError> {
    loop {
        let read = unsafe {
            libc::recv(socket.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), libc::MSG_DONTWAIT)
        };
        if read >= 0 {
            return Ok(read as usize);
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => match sys::wait_readable(socket, timeout) {
                Ok(true) => continue,
                Ok(false) => return Err(ReceiveError::TimedOut),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => return Err(ReceiveError::Interrupted),
                Err(error) => return Err(ReceiveError::Socket(error)),
            },
            _ => return Err(ReceiveError::Socket(error)),
        }
    }
}

/// Copy `source` (from its offset to its end) to `target`; the content digest of the bytes
/// copied. The object cache's copy where the filesystem cannot clone a file.
pub fn copy_with_digest(source: BorrowedFd<'_>, target: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<String> {
    content_digest::digest_reads(source, buffer, |piece| sys::write_file(target, piece))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::thread;

    use md5_reference::Digest;

    fn body(length: usize) -> Vec<u8> {
        (0..length).map(|index| (index * 7 % 251) as u8).collect()
    }

    fn expected(bytes: &[u8], with_md5: bool) -> BodyDigests {
        let mut content = ContentDigest::new();
        content.update(bytes);
        BodyDigests { content: content.hex(), md5: with_md5.then(|| format!("{:x}", md5_reference::Md5::digest(bytes))) }
    }

    fn contents(mut file: File) -> Vec<u8> {
        let mut written = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut written).unwrap();
        written
    }

    /// A connected loopback TCP pair: (the client's end, the server's end).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap(); // as a Python socket with a timeout is
        (client, server)
    }

    /// Receive `count` bytes of which `prefix` were read ahead, the rest sent by `serve`.
    fn receive(
        count: u64,
        prefix: &[u8],
        with_md5: bool,
        timeout: Duration,
        buffer_bytes: usize,
        serve: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (Result<BodyDigests, ReceiveError>, Vec<u8>) {
        let (client, server) = tcp_pair();
        let server = thread::spawn(move || serve(server));
        let file = tempfile::tempfile().unwrap();
        let mut receiver = BodyReceiver::new(count, with_md5);
        let mut buffer = vec![0u8; buffer_bytes];
        let outcome = receiver
            .accept(file.as_fd(), prefix)
            .and_then(|()| receiver.receive(client.as_fd(), file.as_fd(), Some(timeout), &mut buffer))
            .map(|()| receiver.finish());
        drop(client);
        server.join().unwrap();
        (outcome, contents(file))
    }

    #[test]
    fn the_exact_bytes_reach_the_file_and_both_digests() {
        let sent = body(3 << 20);
        let (prefix, rest) = sent.split_at(1000);
        let rest = rest.to_vec();
        let (outcome, written) = receive(sent.len() as u64, prefix, true, Duration::from_secs(10), 64 << 10, move |mut server| {
            // in pieces smaller and larger than the buffer, so reads come back short
            for piece in rest.chunks(100_003) {
                std::io::Write::write_all(&mut server, piece).unwrap();
            }
        });
        assert_eq!(outcome.unwrap(), expected(&sent, true));
        assert!(written == sent, "the file holds the body byte for byte");
    }

    #[test]
    fn bytes_after_the_body_stay_on_the_socket() {
        let (client, mut server) = tcp_pair();
        std::io::Write::write_all(&mut server, b"bodyNEXT").unwrap();
        let file = tempfile::tempfile().unwrap();
        let mut receiver = BodyReceiver::new(4, false);
        receiver.receive(client.as_fd(), file.as_fd(), Some(Duration::from_secs(10)), &mut [0u8; 1024]).unwrap();
        assert_eq!(receiver.finish(), expected(b"body", false));
        assert_eq!(contents(file), b"body");
        let mut next = [0u8; 4];
        client.set_nonblocking(false).unwrap();
        (&client).read_exact(&mut next).unwrap();
        assert_eq!(&next, b"NEXT", "the next response is left for the next reader");
    }

    #[test]
    fn a_body_read_ahead_whole_needs_no_socket_read() {
        let sent = body(5000);
        let (outcome, written) = receive(5000, &sent, true, Duration::from_millis(50), 1024, |server| {
            // holds the connection open and silent: any read would time out
            thread::sleep(Duration::from_millis(200));
            drop(server);
        });
        assert_eq!(outcome.unwrap(), expected(&sent, true));
        assert_eq!(written, sent);
    }

    #[test]
    fn an_empty_body_has_the_digests_of_nothing() {
        let (outcome, written) = receive(0, b"", true, Duration::from_millis(50), 1024, drop);
        let digests = outcome.unwrap();
        assert_eq!(digests.content, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
        assert_eq!(digests.md5.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(written.is_empty());
    }

    #[test]
    fn md5_is_left_out_unless_asked_for() {
        let (outcome, _) = receive(3, b"abc", false, Duration::from_millis(50), 1024, drop);
        assert_eq!(outcome.unwrap().md5, None);
    }

    #[test]
    fn a_silent_peer_times_out() {
        let (outcome, written) = receive(10, b"", false, Duration::from_millis(100), 1024, |mut server| {
            std::io::Write::write_all(&mut server, b"abc").unwrap();
            thread::sleep(Duration::from_millis(600));
        });
        assert!(matches!(outcome, Err(ReceiveError::TimedOut)), "{outcome:?}");
        assert_eq!(written, b"abc", "what arrived before the stall was written");
    }

    #[test]
    fn a_peer_closing_early_reports_the_missing_bytes() {
        let (outcome, written) = receive(10, b"ab", false, Duration::from_secs(10), 1024, |mut server| {
            std::io::Write::write_all(&mut server, b"cde").unwrap();
        });
        assert!(matches!(outcome, Err(ReceiveError::ClosedEarly { missing: 5 })), "{outcome:?}");
        assert_eq!(written, b"abcde");
    }

    #[test]
    fn a_reset_connection_is_a_socket_error() {
        let (client, server) = tcp_pair();
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        let size = std::mem::size_of::<libc::linger>() as libc::socklen_t;
        let set = unsafe {
            libc::setsockopt(server.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, (&linger as *const libc::linger).cast(), size)
        };
        assert_eq!(set, 0);
        drop(server); // closing with zero linger sends a reset
        let file = tempfile::tempfile().unwrap();
        let mut receiver = BodyReceiver::new(10, false);
        let outcome = receiver.receive(client.as_fd(), file.as_fd(), Some(Duration::from_secs(10)), &mut [0u8; 64]);
        match outcome {
            Err(ReceiveError::Socket(error)) => assert_eq!(error.raw_os_error(), Some(libc::ECONNRESET)),
            other => panic!("expected a reset, got {other:?}"),
        }
    }

    #[test]
    fn a_copy_holds_the_source_bytes_and_their_digest() {
        let sent = body(3000);
        let mut source = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut source, &sent).unwrap();
        source.seek(SeekFrom::Start(0)).unwrap();
        let target = tempfile::tempfile().unwrap();
        let digest = copy_with_digest(source.as_fd(), target.as_fd(), &mut [0u8; 1000]).unwrap();
        assert_eq!(digest, expected(&sent, false).content);
        assert_eq!(contents(target), sent);
    }

    #[test]
    fn a_file_that_cannot_be_written_is_a_file_error() {
        let read_only = File::open("/dev/null").unwrap();
        let mut receiver = BodyReceiver::new(3, false);
        match receiver.accept(read_only.as_fd(), b"abc") {
            Err(ReceiveError::File(error)) => assert_eq!(error.raw_os_error(), Some(libc::EBADF)),
            other => panic!("expected a write failure, got {other:?}"),
        }
    }
}
