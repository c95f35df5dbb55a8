//! How `ephemos call` prints one call: each response in protobuf's JSON mapping, then
//! the call's status. The responses a server stream sent before it failed are printed
//! before the error. A legal response that JSON cannot show (a `google.protobuf.Any` of a
//! type the `--proto` files lack, a Timestamp or Duration outside JSON's range) is shown
//! in protobuf text format instead, with a note naming the field and why; the others are
//! shown as usual.

use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value};
use serde_json::json;
use tonic::Status;

use crate::grpc_code;

/// What one call came to: the responses it got, and how it ended.
pub(crate) struct Outcome {
    /// Every response received, in order (those before a failure included).
    pub(crate) responses: Vec<DynamicMessage>,
    /// OK, or the status the call ended with.
    pub(crate) status: Result<(), Status>,
}

impl Outcome {
    /// A call that failed before any response.
    pub(crate) fn failed(status: Status) -> Outcome {
        Outcome {
            responses: Vec::new(),
            status: Err(status),
        }
    }

    /// The text for people: each response as pretty JSON (or text format, after a `#`
    /// note), then `error: CODE: message` when the call failed.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for (index, response) in self.responses.iter().enumerate() {
            match shown(response) {
                Ok(value) => {
                    out.push_str(&serde_json::to_string_pretty(&value).unwrap_or_default());
                    out.push('\n');
                }
                Err(NotJson { why, text }) => {
                    out.push_str(&format!(
                        "# response {} cannot be shown as JSON: {why}; in protobuf text format:\n{text}\n",
                        index + 1
                    ));
                }
            }
        }
        if let Err(status) = &self.status {
            out.push_str(&format!(
                "error: {}: {}\n",
                grpc_code::name(status.code()),
                status.message()
            ));
        }
        out
    }

    /// The document for tools: `status` (and `message` when it failed), `responses` in
    /// JSON, and when some cannot be shown so, `null` in their place and an entry in
    /// `not_json` with the response's index, why, and its protobuf text format.
    pub(crate) fn json(&self) -> serde_json::Value {
        let mut responses = Vec::new();
        let mut not_json = Vec::new();
        for (index, response) in self.responses.iter().enumerate() {
            match shown(response) {
                Ok(value) => responses.push(value),
                Err(NotJson { why, text }) => {
                    responses.push(serde_json::Value::Null);
                    not_json.push(json!({ "index": index, "error": why, "text_format": text }));
                }
            }
        }
        let mut document = match &self.status {
            Ok(()) => json!({ "status": "OK", "responses": responses }),
            Err(status) => json!({
                "status": grpc_code::name(status.code()),
                "message": status.message(),
                "responses": responses,
            }),
        };
        if !not_json.is_empty() {
            document["not_json"] = serde_json::Value::Array(not_json);
        }
        document
    }
}

/// A response JSON cannot show: why, and the response in protobuf text format.
struct NotJson {
    why: String,
    text: String,
}

/// `response` in protobuf's JSON mapping, or why it cannot be and its text format.
fn shown(response: &DynamicMessage) -> Result<serde_json::Value, NotJson> {
    serde_json::to_value(response).map_err(|error| NotJson {
        why: match culprit(response) {
            Some(path) => format!("field `{path}`: {error}"),
            None => error.to_string(),
        },
        text: format!("{response:#}"),
    })
}

/// The path of the first field inside `message` whose value JSON cannot show
/// (`items[2].created`), when it is a field of `message` or of a message inside it.
fn culprit(message: &DynamicMessage) -> Option<String> {
    for (field, value) in message.fields() {
        let inner: Vec<(String, &DynamicMessage)> = match value {
            Value::Message(m) => vec![(field.name().to_owned(), m)],
            Value::List(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.as_message()
                        .map(|m| (format!("{}[{i}]", field.name()), m))
                })
                .collect(),
            Value::Map(entries) => entries
                .iter()
                .filter_map(|(k, v)| {
                    v.as_message()
                        .map(|m| (format!("{}[{}]", field.name(), map_key(k)), m))
                })
                .collect(),
            _ => continue,
        };
        for (name, m) in inner {
            if serde_json::to_value(m).is_ok() {
                continue;
            }
            // A well-known type (Any, Timestamp, ...) is the culprit itself; a message of
            // the protos' own has one inside.
            let own = !m.descriptor().full_name().starts_with("google.protobuf.");
            return Some(match culprit(m).filter(|_| own) {
                Some(deeper) => format!("{name}.{deeper}"),
                None => name,
            });
        }
    }
    None
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => format!("{s:?}"),
    }
}
