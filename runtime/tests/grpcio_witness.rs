//! Retry decisions against an independent implementation: a grpcio (gRPC C-core) server
//! whose handler fails on command, sets `grpc-retry-pushback-ms` in its own trailers,
//! and reports each attempt it received. `.ci/run` installs grpcio with pip; without it
//! these tests fail and say how to install it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MS, eventually, request};
use ephemos::config::service_config::ServiceConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::pb::echo_client::EchoClient;
use tonic::Code;

/// The grpcio server, and the attempts it reported.
struct Grpcio {
    child: Child,
    port: u16,
    calls: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Grpcio {
    fn start(script: &[&str]) -> Grpcio {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/support/grpcio/failing_server.py"
        );
        let mut child = Command::new("python3")
            .arg(path)
            .args(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(port) = first.strip_prefix("PORT ").and_then(|p| p.parse().ok()) else {
            panic!(
                "the grpcio server did not start (got {first:?}); install it with \
                 `python3 -m pip install grpcio` (.ci/run does)"
            );
        };
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    seen.lock().unwrap().push(value);
                }
            }
        });
        Grpcio { child, port, calls }
    }

    fn calls(&self) -> Vec<serde_json::Value> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until `n` calls are reported, then a little longer, and says how many
    /// there are: exactly `n` means no more came (reports arrive through Python's
    /// stdout, a moment after the calls).
    async fn settled_calls(&self, n: usize) -> usize {
        eventually(Duration::from_secs(10), "the calls reported", || {
            self.calls().len() >= n
        })
        .await;
        tokio::time::sleep(MS(300)).await;
        self.calls().len()
    }

    fn client(&self, attempts: u32) -> EchoClient<Channel> {
        let json = format!(
            r#"{{"methodConfig": [{{"name": [{{"service": "echo.v1.Echo"}}],
                "retryPolicy": {{"maxAttempts": {attempts}, "initialBackoff": "0.001s",
                  "maxBackoff": "0.01s", "backoffMultiplier": 2,
                  "retryableStatusCodes": ["UNAVAILABLE"]}}}}]}}"#
        );
        let address: Address = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let channel = Channel::plaintext(address)
            .target_name("grpcio")
            .service_config(ServiceConfig::parse_json(&json).unwrap())
            .connect_lazy()
            .unwrap();
        EchoClient::new(channel)
    }
}

impl Drop for Grpcio {
    fn drop(&mut self) {
        // Closing stdin stops it; kill in case it does not.
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn grpcio_sees_the_attempts_and_their_previous_attempts() {
    let server = Grpcio::start(&["UNAVAILABLE", "UNAVAILABLE"]);
    let reply = server.client(3).unary(request("hi")).await.unwrap();
    assert_eq!(reply.into_inner().message, "hi");
    eventually(Duration::from_secs(5), "three attempts reported", || {
        server.calls().len() == 3
    })
    .await;
    let previous: Vec<_> = server
        .calls()
        .iter()
        .map(|c| c["previous"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(previous, [None, Some("1".into()), Some("2".into())]);
}

#[tokio::test]
async fn grpcio_pushback_is_honoured_and_a_negative_one_stops() {
    let server = Grpcio::start(&["UNAVAILABLE@300"]);
    server.client(3).unary(request("hi")).await.unwrap();
    eventually(Duration::from_secs(5), "two attempts reported", || {
        server.calls().len() == 2
    })
    .await;
    let calls = server.calls();
    let waited = calls[1]["at"].as_f64().unwrap() - calls[0]["at"].as_f64().unwrap();
    assert!(waited >= 0.3, "waited {waited}s");

    let server = Grpcio::start(&["UNAVAILABLE@-1"]);
    let status = server.client(3).unary(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "grpcio says UNAVAILABLE@-1");
    assert_eq!(
        server.settled_calls(1).await,
        1,
        "no retry after pushback -1"
    );
}

#[tokio::test]
async fn grpcio_non_retryable_codes_and_max_attempts() {
    let server = Grpcio::start(&["INTERNAL"]);
    let status = server.client(3).unary(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(server.settled_calls(1).await, 1);

    let server = Grpcio::start(&["UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE"]);
    let status = server.client(2).unary(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.settled_calls(2).await, 2, "exactly max_attempts");
}
