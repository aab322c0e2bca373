//! Attempt-workspace garbage collection: one pass over the workspace root.
//!
//! A pass lists the root's top level only, looks at each attempt directory's
//! metadata and the directory's own mtime, and never walks a workspace's contents
//! to decide (W24). One bad entry is logged and skipped; it never aborts the pass
//! (W25). An attempt whose metadata is missing or unreadable (an old version, a
//! crash between mkdir and the metadata write) is aged by the directory's mtime
//! and collected like any other (W26). The same pass serves the four uses of spec
//! §6.5: startup sweep, periodic GC, targeted GC of a dead executor, final sweep.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::attempt::{self, MetaState, ATTEMPT_DIR_PREFIX};
use crate::log;

/// An executor that is alive right now: `(worker id, pid)`.
pub type Owner = (String, u32);

/// The parameters of one pass.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    /// Attempts younger than this are kept.
    pub ttl: Duration,
    /// Attempts owned by these live executors are kept.
    pub active_owners: HashSet<Owner>,
    /// Only attempts of this owner are considered (targeted GC of a dead executor).
    pub target: Option<Owner>,
}

impl Pass {
    /// Everything abandoned, regardless of age: startup and final sweeps.
    pub fn sweep() -> Pass {
        Pass::default()
    }

    pub fn targeted(owner: Owner) -> Pass {
        Pass { target: Some(owner), ..Pass::default() }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub removed: Vec<PathBuf>,
    /// Entries that could not be judged or removed (each was logged).
    pub skipped_bad: usize,
}

/// Run one pass over `root`. Never fails: problems are logged per entry.
pub fn run_pass(root: &Path, pass: &Pass) -> Report {
    let mut report = Report::default();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return report,
        Err(error) => {
            log::error(
                "workspace garbage collection failed",
                json!({"workspace_root": root.display().to_string(), "exception": error.to_string()}),
            );
            report.skipped_bad += 1;
            return report;
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(ATTEMPT_DIR_PREFIX))
        .collect();
    names.sort();
    let now = SystemTime::now();
    for name in names {
        let dir = root.join(&name);
        match judge(&dir, pass, now) {
            Verdict::Keep => {}
            Verdict::Bad(reason) => {
                log::warning(
                    "skipping attempt workspace entry",
                    json!({"workspace_dir": dir.display().to_string(), "reason": reason}),
                );
                report.skipped_bad += 1;
            }
            Verdict::Remove { note } => {
                if let Some(note) = note {
                    log::warning(
                        "removing attempt workspace without valid metadata",
                        json!({"workspace_dir": dir.display().to_string(), "reason": note}),
                    );
                }
                match attempt::remove(&dir) {
                    Ok(()) => report.removed.push(dir),
                    Err(error) => {
                        log::error(
                            "failed to remove attempt workspace",
                            json!({"workspace_dir": dir.display().to_string(), "exception": error.to_string()}),
                        );
                        report.skipped_bad += 1;
                    }
                }
            }
        }
    }
    report
}

enum Verdict {
    Keep,
    Remove { note: Option<String> },
    Bad(String),
}

fn judge(dir: &Path, pass: &Pass, now: SystemTime) -> Verdict {
    let metadata = match fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Verdict::Keep,
        Err(error) => return Verdict::Bad(error.to_string()),
    };
    if !metadata.is_dir() {
        return Verdict::Bad("named like an attempt but not a directory (symlinks are never followed)".into());
    }
    let older_than_ttl = |started: Option<SystemTime>| {
        let started = started.or_else(|| metadata.modified().ok()).unwrap_or(now);
        now.duration_since(started).unwrap_or_default() >= pass.ttl
    };
    match attempt::read_meta(dir) {
        MetaState::Valid(record) => {
            let owner = (record.owner_worker_id, record.owner_pid);
            if pass.target.as_ref().is_some_and(|target| *target != owner) || pass.active_owners.contains(&owner) {
                return Verdict::Keep;
            }
            if older_than_ttl(record.started_at) {
                Verdict::Remove { note: None }
            } else {
                Verdict::Keep
            }
        }
        // Without an owner we cannot tell whose it is: a targeted pass leaves it to the others.
        _ if pass.target.is_some() => Verdict::Keep,
        MetaState::Missing if older_than_ttl(None) => Verdict::Remove { note: Some("no metadata".into()) },
        MetaState::Invalid(reason) if older_than_ttl(None) => Verdict::Remove { note: Some(reason) },
        MetaState::Missing | MetaState::Invalid(_) => Verdict::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::{create, meta_for_this_process, AttemptMeta};

    fn make(root: &Path, task: &str, worker: &str, pid: u32) -> PathBuf {
        let mut meta: AttemptMeta =
            meta_for_this_process("wf", task, "0123456789abcdef0123456789abcdef", 0, "t", worker, "tok");
        meta.owner_pid = pid;
        create(root, &meta).unwrap().dir
    }

    #[test]
    fn sweep_removes_attempts_and_ignores_foreign_entries() {
        let root = tempfile::tempdir().unwrap();
        let a = make(root.path(), "a", "w0001", 11);
        fs::write(root.path().join("notes.txt"), "keep me").unwrap();
        fs::create_dir(root.path().join("other-project")).unwrap();
        fs::write(root.path().join(".perago-supervisor.lock"), "{}").unwrap();
        let report = run_pass(root.path(), &Pass::sweep());
        assert_eq!(report.removed, vec![a]);
        assert!(root.path().join("notes.txt").exists());
        assert!(root.path().join("other-project").exists());
        assert!(root.path().join(".perago-supervisor.lock").exists());
    }

    #[test]
    fn bad_entries_are_skipped_and_do_not_stop_the_pass() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("task_id=0-link")).unwrap();
        fs::write(root.path().join("task_id=1-file"), "not a dir").unwrap();
        let corrupt = root.path().join("task_id=2-corrupt");
        fs::create_dir(&corrupt).unwrap();
        fs::write(corrupt.join("meta.json"), "{not json").unwrap();
        let good = make(root.path(), "z", "w0001", 11);
        let report = run_pass(root.path(), &Pass::sweep());
        assert_eq!(report.removed, vec![corrupt, good]);
        assert_eq!(report.skipped_bad, 2);
        assert!(outside.path().join("precious").exists(), "symlinks are never followed");
    }

    #[test]
    fn ttl_and_active_owners_keep_attempts() {
        let root = tempfile::tempdir().unwrap();
        let live = make(root.path(), "live", "w0001", 11);
        let dead = make(root.path(), "dead", "w0002", 12);
        let young = Pass { ttl: Duration::from_secs(3600), ..Pass::default() };
        assert!(run_pass(root.path(), &young).removed.is_empty());
        let pass = Pass { active_owners: HashSet::from([("w0001".to_string(), 11)]), ..Pass::default() };
        assert_eq!(run_pass(root.path(), &pass).removed, vec![dead]);
        assert!(live.exists());
    }

    #[test]
    fn targeted_pass_only_touches_its_owner() {
        let root = tempfile::tempdir().unwrap();
        let mine = make(root.path(), "a", "w0001", 11);
        let same_slot_other_pid = make(root.path(), "b", "w0001", 99);
        let no_meta = root.path().join("task_id=c");
        fs::create_dir(&no_meta).unwrap();
        let report = run_pass(root.path(), &Pass::targeted(("w0001".into(), 11)));
        assert_eq!(report.removed, vec![mine]);
        assert!(same_slot_other_pid.exists() && no_meta.exists());
    }

    #[test]
    fn missing_root_is_nothing_to_do() {
        let base = tempfile::tempdir().unwrap();
        assert_eq!(run_pass(&base.path().join("absent"), &Pass::sweep()), Report::default());
    }
}
