//! `ephemos call` and `ephemos probe` against a raw HTTP/2 server whose answers are legal
//! but odd: responses protobuf's JSON mapping cannot show (a `google.protobuf.Any` of a
//! type the `--proto` files lack, a Timestamp or a Duration out of JSON's range), a server
//! stream that fails after sending messages, and health checks answered with an error
//! status. The binary runs as a user would; requests are counted at the server.

mod run;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ephemos_test_support::RawServer;
use prost::Message;
use serde_json::Value;

use run::{json, stdout};

const PROTO: &str = r#"
syntax = "proto3";
package odd.v1;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";

service Odd {
  rpc Get(GetRequest) returns (Thing);
  rpc List(GetRequest) returns (stream Thing);
}

message GetRequest { string name = 1; }

message Thing {
  string name = 1;
  google.protobuf.Any detail = 2;
  google.protobuf.Timestamp created = 3;
  repeated Part parts = 4;
}

message Part { google.protobuf.Duration took = 1; }
"#;

#[derive(Clone, PartialEq, Message)]
struct GetRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, Message)]
struct Thing {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    detail: Option<Any>,
    #[prost(message, optional, tag = "3")]
    created: Option<Timestamp>,
    #[prost(message, repeated, tag = "4")]
    parts: Vec<Part>,
}

#[derive(Clone, PartialEq, Message)]
struct Part {
    #[prost(message, optional, tag = "1")]
    took: Option<Timestamp>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.protobuf.Timestamp` and `google.protobuf.Duration` (the same fields).
#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Past the largest Timestamp (9999-12-31) and the largest Duration (10,000 years).
const TOO_FAR: i64 = 1_000_000_000_000;

fn thing(name: &str) -> Thing {
    Thing {
        name: name.to_owned(),
        ..Thing::default()
    }
}

/// What the server answers to a request named `name`: messages, then a status.
fn answer(name: &str) -> (Vec<Thing>, &'static str, &'static str) {
    let unknown_any = Thing {
        detail: Some(Any {
            type_url: "type.googleapis.com/nowhere.v1.Secret".to_owned(),
            value: b"\x08\x01".to_vec(),
        }),
        ..thing(name)
    };
    match name {
        "any" => (vec![unknown_any], "0", ""),
        "timestamp" => (
            vec![Thing {
                created: Some(Timestamp {
                    seconds: TOO_FAR,
                    nanos: 0,
                }),
                ..thing(name)
            }],
            "0",
            "",
        ),
        "duration" => (
            vec![Thing {
                parts: vec![
                    Part::default(),
                    Part {
                        took: Some(Timestamp {
                            seconds: TOO_FAR,
                            nanos: 0,
                        }),
                    },
                ],
                ..thing(name)
            }],
            "0",
            "",
        ),
        "mixed" => (vec![thing("first"), unknown_any, thing("third")], "0", ""),
        "fails-midway" => (vec![thing("first"), thing("second")], "14", "gone away"),
        _ => (vec![thing(name)], "0", ""),
    }
}

/// A raw server answering each request by its name ([`answer`]), counting requests.
async fn odd_server(requests: Arc<AtomicUsize>) -> RawServer {
    RawServer::start_with(requests, |mut c, requests| async move {
        c.handshake().await?;
        loop {
            let request = c.request().await?;
            requests.fetch_add(1, Ordering::SeqCst);
            let name = GetRequest::decode(request.messages[0].clone())
                .map(|r| r.name)
                .unwrap_or_default();
            let (messages, status, message) = answer(&name);
            c.headers(
                request.stream,
                &[(":status", "200"), ("content-type", "application/grpc")],
                false,
            )
            .await?;
            for m in messages {
                c.grpc_message(request.stream, &m.encode_to_vec()).await?;
            }
            c.headers(
                request.stream,
                &[("grpc-status", status), ("grpc-message", message)],
                true,
            )
            .await?;
        }
    })
    .await
}

/// A raw server answering every call (health Checks) Trailers-Only with
/// DEADLINE_EXCEEDED.
async fn deadline_exceeded_server() -> RawServer {
    RawServer::start(|mut c| async move {
        c.handshake().await?;
        loop {
            let request = c.request().await?;
            c.headers(
                request.stream,
                &[
                    (":status", "200"),
                    ("content-type", "application/grpc"),
                    ("grpc-status", "4"),
                    ("grpc-message", "the check was too slow"),
                ],
                true,
            )
            .await?;
        }
    })
    .await
}

struct Setup {
    dir: tempfile::TempDir,
    requests: Arc<AtomicUsize>,
    _odd: RawServer,
    _slow_health: RawServer,
}

impl Setup {
    async fn start() -> Setup {
        let requests = Arc::new(AtomicUsize::new(0));
        let odd = odd_server(requests.clone()).await;
        let slow_health = deadline_exceeded_server().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("odd.proto"), PROTO).unwrap();
        std::fs::write(
            dir.path().join("connections.toml"),
            toml(odd.addr(), slow_health.addr()),
        )
        .unwrap();
        Setup {
            dir,
            requests,
            _odd: odd,
            _slow_health: slow_health,
        }
    }

    /// Runs `ephemos ARGS` in the setup's directory.
    async fn ephemos(&self, args: &[&str]) -> Output {
        run::ephemos(self.dir.path(), args, None).await
    }

    /// `ephemos call odd METHOD -d {"name": NAME} --proto odd.proto [--format json]`.
    async fn call(&self, method: &str, name: &str, json: bool) -> Output {
        let data = format!(r#"{{"name": "{name}"}}"#);
        let mut args = vec!["call", "odd", method, "-d", &data, "--proto", "odd.proto"];
        if json {
            args.extend(["--format", "json"]);
        }
        self.ephemos(&args).await
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn toml(odd: SocketAddr, slow_health: SocketAddr) -> String {
    format!(
        r#"
[defaults]
identity = {{ source = "plaintext" }}
connect_timeout = "2s"

[targets.odd]
service = "odd.v1.Odd"
address = "{odd}"
retry = false

[targets.slow_health]
address = "{slow_health}"
retry = false
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_json_cannot_show_is_shown_in_text_format_with_the_field_and_why() {
    let setup = Setup::start().await;
    let cases = [
        (
            "any",
            "field `detail`: message 'nowhere.v1.Secret' not found",
            r#"type_url: "type.googleapis.com/nowhere.v1.Secret""#,
        ),
        (
            "timestamp",
            "field `created`: timestamp out of range",
            "seconds: 1000000000000",
        ),
        (
            "duration",
            "field `parts[1].took`: duration out of range",
            "seconds: 1000000000000",
        ),
    ];
    for (name, why, shown) in cases {
        let output = setup.call("Get", name, true).await;
        let result = json(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {result:#}");
        assert_eq!(result["status"], "OK", "{name}: {result:#}");
        assert_eq!(result["responses"], serde_json::json!([null]), "{name}");
        let not_json = &result["not_json"][0];
        assert_eq!(not_json["index"], 0, "{name}: {result:#}");
        assert_eq!(not_json["error"], why, "{name}: {result:#}");
        let text = not_json["text_format"].as_str().unwrap();
        assert!(text.contains(shown), "{name}: {text}");
        // The rest of the response is there too.
        assert!(
            text.contains(&format!("name: \"{name}\"")),
            "{name}: {text}"
        );

        let output = setup.call("Get", name, false).await;
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {text}");
        assert!(
            text.starts_with(&format!(
                "# response 1 cannot be shown as JSON: {why}; in protobuf text format:\n"
            )),
            "{name}: {text}"
        );
        assert!(text.contains(shown), "{name}: {text}");
    }
    assert_eq!(setup.requests(), 6, "counted at the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_shows_the_responses_json_can_show_around_one_it_cannot() {
    let setup = Setup::start().await;
    let output = setup.call("List", "mixed", true).await;
    let result = json(&output);
    assert_eq!(output.status.code(), Some(0), "{result:#}");
    let responses = result["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 3, "{result:#}");
    assert_eq!(responses[0]["name"], "first");
    assert_eq!(responses[1], Value::Null);
    assert_eq!(responses[2]["name"], "third");
    assert_eq!(result["not_json"][0]["index"], 1, "{result:#}");

    let output = setup.call("List", "mixed", false).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let first = text.find(r#""name": "first""#).unwrap();
    let note = text.find("# response 2 cannot be shown as JSON").unwrap();
    let third = text.find(r#""name": "third""#).unwrap();
    assert!(first < note && note < third, "{text}");
    assert_eq!(setup.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_fails_midway_shows_its_messages_then_the_error() {
    let setup = Setup::start().await;
    let output = setup.call("List", "fails-midway", false).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let first = text.find(r#""name": "first""#).expect(&text);
    let second = text.find(r#""name": "second""#).expect(&text);
    let error = text.find("error: UNAVAILABLE: gone away").expect(&text);
    assert!(first < second && second < error, "{text}");

    let output = setup.call("List", "fails-midway", true).await;
    let result = json(&output);
    assert_eq!(output.status.code(), Some(1), "{result:#}");
    assert_eq!(result["status"], "UNAVAILABLE");
    assert_eq!(result["message"], "gone away");
    let names: Vec<&str> = result["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(setup.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_names_a_failed_checks_code_as_grpc_does() {
    let setup = Setup::start().await;
    let output = setup
        .ephemos(&["probe", "slow_health", "--format", "json"])
        .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(
        report["health"][0]["status"], "call failed: DEADLINE_EXCEEDED: the check was too slow",
        "{report:#}"
    );
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .ends_with("call failed: DEADLINE_EXCEEDED: the check was too slow"),
        "{report:#}"
    );

    let output = setup.ephemos(&["probe", "slow_health"]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("DEADLINE_EXCEEDED"), "{text}");
    assert!(!text.contains("DeadlineExceeded"), "{text}");
}
