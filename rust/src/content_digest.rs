//! The content digest of workspace files (BLAKE3, 64 hex digits), in one implementation
//! for every place that computes it: downloads received in Rust, the Python fallback
//! loop and the object cache (through `perago._core.ContentDigest`), and whole files.
//!
//! Digests are stored in download manifests and name object-cache blobs, so this must
//! stay plain unkeyed BLAKE3 with the default 32-byte output.

use std::cell::RefCell;
use std::io;
use std::os::fd::BorrowedFd;

use crate::sys;

/// Bytes each thread reads, receives and hashes through: large enough that a 256 KiB
/// object is one read, reused so no object pays for a fresh allocation and its page faults.
pub const THREAD_BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    static THREAD_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Run `work` with this thread's buffer (allocated on first use). Not re-entrant: `work`
/// must not call `with_thread_buffer` again (it panics if it does).
pub fn with_thread_buffer<T>(work: impl FnOnce(&mut [u8]) -> T) -> T {
    THREAD_BUFFER.with_borrow_mut(|buffer| {
        if buffer.is_empty() {
            buffer.resize(THREAD_BUFFER_BYTES, 0);
        }
        work(buffer)
    })
}

/// A running content digest: `update` with the bytes in order, then `hex`.
#[derive(Clone, Default)]
pub struct ContentDigest(blake3::Hasher);

impl ContentDigest {
    pub fn new() -> ContentDigest {
        ContentDigest(blake3::Hasher::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything so far, as 64 lowercase hex digits (the hasher stays usable).
    pub fn hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// Digest of what `fd` holds from its current offset to its end (the offset moves there).
pub fn digest_of_fd(fd: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<String> {
    digest_reads(fd, buffer, |_| Ok(()))
}

/// Read `fd` from its offset to its end through `buffer`, handing each piece to `each`
/// before it is hashed; the digest of everything read.
pub fn digest_reads(
    fd: BorrowedFd<'_>,
    buffer: &mut [u8],
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<String> {
    let mut digest = ContentDigest::new();
    loop {
        let count = sys::read(fd, buffer)?;
        if count == 0 {
            return Ok(digest.hex());
        }
        each(&buffer[..count])?;
        digest.update(&buffer[..count]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsFd;

    /// From the official BLAKE3 test vectors (input byte i is i % 251).
    const VECTOR_INPUT_1024: &str = "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7";

    fn vector_input(length: usize) -> Vec<u8> {
        (0..length).map(|index| (index % 251) as u8).collect()
    }

    #[test]
    fn matches_the_published_test_vectors() {
        assert_eq!(
            ContentDigest::new().hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        let mut digest = ContentDigest::new();
        digest.update(&vector_input(1024));
        assert_eq!(digest.hex(), VECTOR_INPUT_1024);
    }

    #[test]
    fn updates_in_pieces_equal_one_update() {
        let input = vector_input(1024);
        let mut digest = ContentDigest::new();
        for piece in input.chunks(7) {
            digest.update(piece);
        }
        assert_eq!(digest.hex(), VECTOR_INPUT_1024);
    }

    #[test]
    fn a_file_is_digested_from_its_offset_through_a_small_buffer() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"skip").unwrap();
        file.write_all(&vector_input(1024)).unwrap();
        file.seek(SeekFrom::Start(4)).unwrap();
        let mut buffer = [0u8; 100];
        assert_eq!(digest_of_fd(file.as_fd(), &mut buffer).unwrap(), VECTOR_INPUT_1024);
    }
}
