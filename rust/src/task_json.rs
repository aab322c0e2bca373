//! What the broker needs from Conductor's task JSON, without building Python objects:
//! each task of a poll answer as the exact bytes Conductor sent (they go to an executor
//! unchanged) plus the three fields the broker itself uses — task id, workflow id and
//! response timeout (for the lease).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

/// The fields of one task the broker reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskHead {
    pub task_id: String,
    pub workflow_instance_id: String,
    /// `responseTimeoutSeconds` when it is a number.
    pub response_timeout_seconds: Option<f64>,
}

/// The head of one task object; `None` when `raw` is not an object with a task id
/// (Conductor answers "no task" with an empty body or `{}` on some paths).
pub fn task_head(raw: &[u8]) -> Result<Option<TaskHead>, String> {
    let mut reader = serde_json::Deserializer::from_slice(raw);
    let head = reader.deserialize_any(HeadVisitor).and_then(|head| reader.end().map(|()| head));
    head.map_err(|error| format!("task JSON does not parse: {error}"))
}

/// Every task of a batch-poll answer (a JSON array), in order, with its own bytes; entries
/// without a task id are skipped, as the SDK does. An empty answer is no task.
pub fn split_poll_answer(raw: &[u8]) -> Result<Vec<(TaskHead, &[u8])>, String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let entries: Vec<&RawValue> = serde_json::from_slice(raw)
        .map_err(|error| format!("Conductor's batch poll answer is not a JSON array of tasks: {error}"))?;
    let mut tasks = Vec::with_capacity(entries.len());
    for entry in entries {
        let bytes = entry.get().as_bytes();
        if let Some(head) = task_head(bytes).expect("a RawValue is valid JSON") {
            tasks.push((head, bytes));
        }
    }
    Ok(tasks)
}

/// Reads the three fields and skips everything else without building it (the input
/// data of a task can be large; the broker never needs it).
struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Option<TaskHead>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a Conductor task")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut task_id, mut workflow_instance_id, mut response_timeout) = (None, None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "taskId" => task_id = Some(map.next_value::<Value>()?),
                "workflowInstanceId" => workflow_instance_id = Some(map.next_value::<Value>()?),
                "responseTimeoutSeconds" => response_timeout = Some(map.next_value::<Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(task_id) = task_id.as_ref().and_then(text_of) else { return Ok(None) };
        Ok(Some(TaskHead {
            task_id,
            workflow_instance_id: workflow_instance_id.as_ref().and_then(text_of).unwrap_or_default(),
            response_timeout_seconds: response_timeout.as_ref().and_then(Value::as_f64),
        }))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A non-empty string, or a number written as text (ids are strings in practice).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_answer_splits_into_the_exact_bytes_of_each_task() {
        let raw = br#" [ {"taskId":"a","workflowInstanceId":"w","responseTimeoutSeconds":600,"inputData":{"x":[1, 2]}},
            {"taskId":""}, 5, {"taskId":"b"} ] "#;
        let tasks = split_poll_answer(raw).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].1, br#"{"taskId":"a","workflowInstanceId":"w","responseTimeoutSeconds":600,"inputData":{"x":[1, 2]}}"#);
        assert_eq!(
            tasks[0].0,
            TaskHead { task_id: "a".into(), workflow_instance_id: "w".into(), response_timeout_seconds: Some(600.0) }
        );
        assert_eq!(tasks[1].0, TaskHead { task_id: "b".into(), workflow_instance_id: String::new(), response_timeout_seconds: None });
    }

    #[test]
    fn empty_and_malformed_answers() {
        assert!(split_poll_answer(b"").unwrap().is_empty());
        assert!(split_poll_answer(b"[]").unwrap().is_empty());
        assert!(split_poll_answer(b"{\"taskId\":\"a\"}").unwrap_err().contains("not a JSON array"));
        assert!(split_poll_answer(b"[{\"taskId\":").is_err());
        assert_eq!(task_head(b"{}").unwrap(), None);
        assert!(task_head(b"<html>").is_err());
        assert_eq!(task_head(br#"{"taskId":7}"#).unwrap().unwrap().task_id, "7");
        assert_eq!(task_head(b"[1]").unwrap(), None);
        assert_eq!(task_head(b"null").unwrap(), None);
        assert!(task_head(b"{} x").is_err());
        let escaped = task_head(br#"{"task\u0049d":"a\"b","inputData":{"big":[1,{"taskId":"inner"}]},"responseTimeoutSeconds":1.5}"#);
        let head = escaped.unwrap().unwrap();
        assert_eq!((head.task_id.as_str(), head.response_timeout_seconds), ("a\"b", Some(1.5)));
    }
}
