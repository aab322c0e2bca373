//! Structured log records of the Rust core: one JSON object per line on stderr.
//!
//! Why stderr and not Python's logger: the supervisor loop runs with the GIL
//! released and must never call into Python (a callback could block on the GIL
//! or on a Python lock and stall the loop that reaps children and honours
//! signals). perago 0.6's supervisor logged to stderr as well (spec §1.7), and a
//! log collector reads JSON lines directly. Each record is one `write(2)` of one
//! line, so records from threads and forwarded child stderr never interleave.

use std::io::Write;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::clock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// Build the record line: time, level, logger, message, then `fields` in order.
pub fn record(level: Level, message: &str, fields: Value) -> String {
    let mut object = Map::new();
    object.insert("time".into(), Value::String(clock::format_utc(SystemTime::now())));
    object.insert("level".into(), Value::String(level.name().into()));
    object.insert("logger".into(), Value::String("perago.supervisor".into()));
    object.insert("message".into(), Value::String(message.into()));
    if let Value::Object(extra) = fields {
        object.extend(extra);
    }
    let mut line = Value::Object(object).to_string();
    line.push('\n');
    line
}

/// Write one record to stderr. Errors writing the log are ignored: logging must never stop supervision.
pub fn emit(level: Level, message: &str, fields: Value) {
    write_stderr_line(record(level, message, fields).as_bytes());
}

/// Write `line` (ending in a newline) to stderr with a single `write` call where possible.
pub fn write_stderr_line(line: &[u8]) {
    let _ = std::io::stderr().lock().write_all(line);
}

pub fn info(message: &str, fields: Value) {
    emit(Level::Info, message, fields);
}

pub fn warning(message: &str, fields: Value) {
    emit(Level::Warning, message, fields);
}

pub fn error(message: &str, fields: Value) {
    emit(Level::Error, message, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_is_one_json_line_with_fields() {
        let line = record(Level::Error, "worker process exited; restarting", json!({"worker_id": "x0001", "pid": 7}));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["message"], "worker process exited; restarting");
        assert_eq!(value["worker_id"], "x0001");
        assert_eq!(value["pid"], 7);
    }
}
