//! The attempt-workspace GC thread (`perago-workspace-gc`): runs the passes the
//! loop asks for, so deleting a large workspace never delays reaping or restarts.
//! The loop builds each pass's parameters itself (the live executors at that
//! moment), so a pass never races the loop's own bookkeeping (W31).

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;

use serde_json::json;

use crate::gc;
use crate::log;

pub enum Job {
    Periodic(gc::Pass),
    Targeted { worker_id: String, pid: u32 },
}

pub struct GcWorker {
    sender: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl GcWorker {
    pub fn start(root: PathBuf) -> GcWorker {
        let (sender, receiver) = channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("perago-workspace-gc".into())
            .spawn(move || {
                for job in receiver {
                    match job {
                        Job::Periodic(pass) => {
                            let removed = gc::run_pass(&root, &pass).removed.len();
                            if removed > 0 {
                                log::info(
                                    "garbage-collected abandoned attempt workspaces",
                                    json!({"removed_count": removed}),
                                );
                            }
                        }
                        Job::Targeted { worker_id, pid } => {
                            let pass = gc::Pass::targeted((worker_id.clone(), pid));
                            let removed = gc::run_pass(&root, &pass).removed.len();
                            if removed > 0 {
                                log::info(
                                    "garbage-collected workspaces for dead executor",
                                    json!({"worker_id": worker_id, "pid": pid, "removed_count": removed}),
                                );
                            }
                        }
                    }
                }
            })
            .ok();
        let sender = thread.as_ref().map(|_| sender);
        GcWorker { sender, thread }
    }

    /// Queue a pass (skipped with a warning if the thread could not be started).
    pub fn submit(&self, job: Job) {
        if let Some(sender) = &self.sender {
            if sender.send(job).is_ok() {
                return;
            }
        }
        log::warning("workspace GC thread unavailable; skipping pass", json!({}));
    }

    /// Finish queued passes and join the thread.
    pub fn stop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
