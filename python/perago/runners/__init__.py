"""Ways to run a task worker: `thread` (one process, N task threads); process mode lives in the Rust supervisor."""
