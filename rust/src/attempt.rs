//! Attempt workspaces on local disk: one directory per dispatch, with the runtime's
//! state beside — never inside — the directory the task sees.
//!
//! ```text
//! <workspace root>/
//! ├── .perago-supervisor.lock
//! └── task_id=<safe(task_id)>-exec=<safe(execution_id)>/
//!     ├── meta.json     owner, token, start time (runtime state; sorted-key JSON)
//!     └── ws/           the attempt-local workspace handed to the task
//! ```
//!
//! perago 0.6 kept its marker inside the task's directory, where task code could
//! delete or rewrite it and so make the directory uncollectable (W27). Here the task
//! only ever sees `ws/`. GC decides from `meta.json` (or a 0.6 marker) and the
//! directory's own metadata only, never from the contents of `ws/`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::clock;

/// Every attempt directory's name starts with this; GC ignores anything else in the root.
pub const ATTEMPT_DIR_PREFIX: &str = "task_id=";
/// Runtime state of an attempt, beside the task's workspace.
pub const META_FILE_NAME: &str = "meta.json";
/// The directory the task sees.
pub const WORKSPACE_DIR_NAME: &str = "ws";
/// perago 0.6's marker, inside the attempt directory itself; still read so GC collects old attempts.
pub const LEGACY_MARKER_NAME: &str = ".perago-attempt.json";

/// What the runtime records about an attempt when it creates the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptMeta {
    pub workflow_instance_id: String,
    pub task_id: String,
    pub execution_id: String,
    pub retry_count: i64,
    pub task_def_name: String,
    pub owner_worker_id: String,
    pub owner_pid: u32,
    pub owner_token: String,
    pub started_at: String,
}

impl AttemptMeta {
    /// Sorted-key JSON, as perago 0.6 wrote its marker.
    pub fn to_json(&self) -> String {
        let value = json!({
            "execution_id": self.execution_id,
            "owner_pid": self.owner_pid,
            "owner_token": self.owner_token,
            "owner_worker_id": self.owner_worker_id,
            "retry_count": self.retry_count,
            "started_at": self.started_at,
            "task_def_name": self.task_def_name,
            "task_id": self.task_id,
            "workflow_instance_id": self.workflow_instance_id,
        });
        let mut text = value.to_string();
        text.push('\n');
        text
    }
}

/// The fields GC needs, read back from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRecord {
    pub owner_worker_id: String,
    pub owner_pid: u32,
    pub started_at: Option<SystemTime>,
}

/// What reading an attempt directory's metadata found.
#[derive(Debug)]
pub enum MetaState {
    Valid(OwnerRecord),
    Missing,
    Invalid(String),
}

/// A created attempt: the directory GC and cleanup manage, and the `ws/` the task uses.
#[derive(Clone, Debug)]
pub struct AttemptWorkspace {
    pub dir: PathBuf,
    pub workspace: PathBuf,
}

/// perago's path-component sanitiser (spec §1.7): runs of characters outside
/// `[A-Za-z0-9_.=-]` become `_`, leading/trailing `.` and `_` are stripped, empty is `unknown`.
pub fn safe_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '=' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    let trimmed = out.trim_matches(|c| c == '.' || c == '_');
    if trimmed.is_empty() {
        "unknown".to_string()
    } else {
        trimmed.to_string()
    }
}

pub fn attempt_dir_name(task_id: &str, execution_id: &str) -> String {
    format!("{ATTEMPT_DIR_PREFIX}{}-exec={}", safe_component(task_id), safe_component(execution_id))
}

/// Create `<root>/<attempt>/` with its `meta.json` and an empty `ws/`.
/// Fails with `AlreadyExists` if the attempt directory exists (a repeated dispatch id
/// must never share a directory). Nothing is left behind on failure.
pub fn create(root: &Path, meta: &AttemptMeta) -> io::Result<AttemptWorkspace> {
    fs::create_dir_all(root)?;
    let dir = root.join(attempt_dir_name(&meta.task_id, &meta.execution_id));
    fs::DirBuilder::new().mode(0o755).create(&dir)?;
    let result = (|| {
        let temporary = dir.join(".meta.json.tmp");
        let mut file = fs::File::create(&temporary)?;
        file.write_all(meta.to_json().as_bytes())?;
        drop(file);
        fs::rename(&temporary, dir.join(META_FILE_NAME))?;
        let workspace = dir.join(WORKSPACE_DIR_NAME);
        fs::create_dir(&workspace)?;
        Ok(AttemptWorkspace { dir: dir.clone(), workspace })
    })();
    if result.is_err() {
        let _ = remove_tree(&dir);
    }
    result
}

/// Build the metadata of an attempt started now by this process.
pub fn meta_for_this_process(
    workflow_instance_id: &str,
    task_id: &str,
    execution_id: &str,
    retry_count: i64,
    task_def_name: &str,
    owner_worker_id: &str,
    owner_token: &str,
) -> AttemptMeta {
    AttemptMeta {
        workflow_instance_id: workflow_instance_id.into(),
        task_id: task_id.into(),
        execution_id: execution_id.into(),
        retry_count,
        task_def_name: task_def_name.into(),
        owner_worker_id: owner_worker_id.into(),
        owner_pid: std::process::id(),
        owner_token: owner_token.into(),
        started_at: clock::format_utc(SystemTime::now()),
    }
}

/// Remove an attempt directory: the task's `ws/` first, the metadata last, so an
/// interrupted removal still leaves a directory GC can identify. Already gone is fine.
/// Refuses anything that is not a real directory named like an attempt.
pub fn remove(dir: &Path) -> io::Result<()> {
    let named_like_attempt =
        dir.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with(ATTEMPT_DIR_PREFIX));
    if !named_like_attempt {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not an attempt directory (name must start with {ATTEMPT_DIR_PREFIX})", dir.display()),
        ));
    }
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
        Ok(metadata) if !metadata.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory; refusing to remove it", dir.display()),
            ))
        }
        Ok(_) => {}
    }
    remove_tree(&dir.join(WORKSPACE_DIR_NAME))?;
    remove_tree(dir)
}

/// `remove_dir_all` that also copes with directories the task made read-only.
/// Never follows symlinks (std's `remove_dir_all` unlinks them).
fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            make_directories_writable(path);
            fs::remove_dir_all(path).or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
        }
        Err(error) => Err(error),
    }
}

fn make_directories_writable(path: &Path) {
    let Ok(metadata) = fs::symlink_metadata(path) else { return };
    if !metadata.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(metadata.permissions().mode() | 0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            make_directories_writable(&entry.path());
        }
    }
}

/// Read an attempt directory's owner record: `meta.json`, else a perago 0.6 marker.
pub fn read_meta(dir: &Path) -> MetaState {
    for name in [META_FILE_NAME, LEGACY_MARKER_NAME] {
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return MetaState::Invalid(format!("{}: {error}", path.display())),
            Ok(metadata) if !metadata.is_file() => {
                return MetaState::Invalid(format!("{} is not a regular file", path.display()))
            }
            Ok(_) => {}
        }
        let text = match fs::read(&path) {
            Ok(bytes) if bytes.len() <= 1 << 20 => bytes,
            Ok(_) => return MetaState::Invalid(format!("{} is larger than 1 MiB", path.display())),
            Err(error) => return MetaState::Invalid(format!("{}: {error}", path.display())),
        };
        return match parse_owner(&text) {
            Ok(record) => MetaState::Valid(record),
            Err(reason) => MetaState::Invalid(format!("{}: {reason}", path.display())),
        };
    }
    MetaState::Missing
}

fn parse_owner(bytes: &[u8]) -> Result<OwnerRecord, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| format!("not JSON ({error})"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let text = |key: &str| -> Result<String, String> {
        match object.get(key) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            _ => Err(format!("{key} must be a non-empty string")),
        }
    };
    let owner_worker_id = text("owner_worker_id")?;
    let owner_pid = object
        .get("owner_pid")
        .and_then(Value::as_u64)
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or("owner_pid must be a non-negative integer")?;
    let started_at = object.get("started_at").and_then(Value::as_str).and_then(clock::parse_iso);
    Ok(OwnerRecord { owner_worker_id, owner_pid, started_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(task_id: &str, execution_id: &str) -> AttemptMeta {
        meta_for_this_process("wf-1", task_id, execution_id, 0, "features_build", "feat0001", "tok")
    }

    #[test]
    fn safe_component_matches_spec() {
        assert_eq!(safe_component("abc-1.2=x_y"), "abc-1.2=x_y");
        assert_eq!(safe_component("a/b c"), "a_b_c");
        assert_eq!(safe_component("a//..//b"), "a_.._b");
        assert_eq!(safe_component("../"), "unknown");
        assert_eq!(safe_component(""), "unknown");
    }

    #[test]
    fn create_lays_out_meta_beside_ws_and_remove_cleans_all() {
        let root = tempfile::tempdir().unwrap();
        let attempt = create(root.path(), &meta("t/1", "0123456789abcdef0123456789abcdef")).unwrap();
        assert_eq!(attempt.dir, root.path().join("task_id=t_1-exec=0123456789abcdef0123456789abcdef"));
        assert!(attempt.workspace.is_dir());
        assert!(attempt.dir.join(META_FILE_NAME).is_file());
        match read_meta(&attempt.dir) {
            MetaState::Valid(record) => {
                assert_eq!(record.owner_worker_id, "feat0001");
                assert_eq!(record.owner_pid, std::process::id());
                assert!(record.started_at.is_some());
            }
            other => panic!("{other:?}"),
        }
        // Task code deleting everything it can see does not make the attempt unidentifiable.
        fs::write(attempt.workspace.join("out.txt"), "x").unwrap();
        fs::create_dir(attempt.workspace.join("locked")).unwrap();
        fs::write(attempt.workspace.join("locked/f"), "x").unwrap();
        fs::set_permissions(attempt.workspace.join("locked"), fs::Permissions::from_mode(0o500)).unwrap();
        remove(&attempt.dir).unwrap();
        assert!(!attempt.dir.exists());
        remove(&attempt.dir).unwrap();
    }

    #[test]
    fn create_refuses_an_existing_attempt() {
        let root = tempfile::tempdir().unwrap();
        let m = meta("t1", "0123456789abcdef0123456789abcdef");
        create(root.path(), &m).unwrap();
        assert_eq!(create(root.path(), &m).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn remove_refuses_foreign_paths() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("precious")).unwrap();
        assert!(remove(&root.path().join("precious")).is_err());
        assert!(root.path().join("precious").exists());
    }

    #[test]
    fn legacy_marker_is_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("task_id=old-exec=1");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join(LEGACY_MARKER_NAME),
            r#"{"owner_worker_id": "w0001", "owner_pid": 12, "owner_token": "t", "execution_id": "1", "started_at": "2020-01-01T00:00:00"}"#,
        )
        .unwrap();
        assert!(matches!(read_meta(&dir), MetaState::Valid(OwnerRecord { owner_pid: 12, .. })));
        fs::write(dir.join(LEGACY_MARKER_NAME), "{garbage").unwrap();
        assert!(matches!(read_meta(&dir), MetaState::Invalid(_)));
    }
}
