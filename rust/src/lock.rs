//! The workspace-root lock: one supervisor per `PERAGO_WORKSPACE_ROOT`.
//!
//! `flock(LOCK_EX | LOCK_NB)` on `<root>/.perago-supervisor.lock`. The kernel
//! drops the lock when its holder dies, however it dies, so a stale lock file
//! never blocks the next start. The holder's pid is written into the file for
//! humans (`{"supervisor_pid": N}`, the same content perago 0.6 wrote) and read
//! back only to name the holder in the error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// File name of the lock inside the workspace root.
pub const LOCK_FILE_NAME: &str = ".perago-supervisor.lock";

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds the lock; `holder_pid` is what it wrote, if readable.
    Busy { root: PathBuf, holder_pid: Option<u32> },
    /// The root or the lock file could not be created or opened.
    Io { path: PathBuf, source: io::Error },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy { root, holder_pid } => {
                let holder = holder_pid.map_or_else(|| "unknown".to_string(), |pid| pid.to_string());
                write!(
                    f,
                    "workspace root {} is already locked by supervisor pid {holder}; \
                     use a different PERAGO_WORKSPACE_ROOT for each supervisor",
                    root.display()
                )
            }
            LockError::Io { path, source } => {
                write!(f, "cannot lock workspace root {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {}

/// A held workspace-root lock. Dropping it releases the lock and removes the file.
#[derive(Debug)]
pub struct RootLock {
    file: File,
    path: PathBuf,
}

impl RootLock {
    /// Take the lock on `root` (created with parents if missing) without blocking.
    pub fn acquire(root: &Path) -> Result<RootLock, LockError> {
        fs::create_dir_all(root).map_err(|source| LockError::Io { path: root.to_path_buf(), source })?;
        let path = root.join(LOCK_FILE_NAME);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .map_err(|source| LockError::Io { path: path.clone(), source })?;
            if !try_flock(&file).map_err(|source| LockError::Io { path: path.clone(), source })? {
                return Err(LockError::Busy { root: root.to_path_buf(), holder_pid: read_holder_pid(&mut file) });
            }
            // A previous holder may have unlinked the file between our open and our flock;
            // then we hold a lock on an orphaned inode and must retry on the live path.
            if same_inode(&file, &path) {
                write_holder_pid(&mut file).map_err(|source| LockError::Io { path: path.clone(), source })?;
                return Ok(RootLock { file, path });
            }
        }
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock: a waiter that opened the old inode
        // notices the mismatch in `acquire` and retries.
        let _ = fs::remove_file(&self.path);
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn try_flock(file: &File) -> io::Result<bool> {
    loop {
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

fn same_inode(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(held), Ok(current)) => held.dev() == current.dev() && held.ino() == current.ino(),
        _ => false,
    }
}

fn write_holder_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{{\"supervisor_pid\": {}}}", std::process::id())?;
    file.flush()
}

fn read_holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let digits: String = text
        .split_once("supervisor_pid")?
        .1
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_in_same_process_is_busy_and_names_pid() {
        let root = tempfile::tempdir().unwrap();
        let held = RootLock::acquire(root.path()).unwrap();
        let content = fs::read_to_string(held.path()).unwrap();
        assert_eq!(content, format!("{{\"supervisor_pid\": {}}}\n", std::process::id()));
        match RootLock::acquire(root.path()) {
            Err(LockError::Busy { holder_pid, .. }) => assert_eq!(holder_pid, Some(std::process::id())),
            other => panic!("expected Busy, got {other:?}"),
        }
    }

    #[test]
    fn release_removes_file_and_frees_root() {
        let root = tempfile::tempdir().unwrap();
        let lock_path = root.path().join(LOCK_FILE_NAME);
        drop(RootLock::acquire(root.path()).unwrap());
        assert!(!lock_path.exists());
        let again = RootLock::acquire(root.path()).unwrap();
        assert!(again.path().exists());
    }

    #[test]
    fn stale_file_without_holder_is_taken() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join(LOCK_FILE_NAME), "{\"supervisor_pid\": 999999}\n").unwrap();
        assert!(RootLock::acquire(root.path()).is_ok());
    }

    #[test]
    fn creates_missing_root() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("a/b/c");
        assert!(RootLock::acquire(&root).is_ok());
    }
}
