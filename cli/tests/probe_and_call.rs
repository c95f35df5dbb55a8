//! `ephemos probe` and `ephemos call`, run as a user would against real servers on
//! loopback: an mTLS echo server whose SVID a development CA minted in the test (the
//! command gets its client SVID as PEM files, a `files` identity), with a health service
//! the test flips; a plaintext server that fails on command and has no health service;
//! and a port nothing listens on. Calls are counted at the servers.

mod run;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ephemos::config::model::ServerAuthorization;
use ephemos::config::value::TrustDomain;
use ephemos::identity::{DevCa, Identity, LocalAgent};
use ephemos_test_support::pb::echo_server::EchoServer as EchoRoutes;
use ephemos_test_support::{Answer, EchoService, FailingServer};
use serde_json::Value;
use tonic::Code;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use run::{json, stdout};

const ECHO_ID: &str = "spiffe://example.org/echo";
const CLIENT_ID: &str = "spiffe://example.org/ephemos/client";

/// An mTLS echo server with health, and a directory with the client's SVID and a
/// `connections.toml` naming it, a wrong ID for it, a closed port and a plaintext
/// failing server.
struct Setup {
    dir: tempfile::TempDir,
    echo: EchoService,
    health: HealthReporter,
    failing: FailingServer,
    closed: SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl Setup {
    async fn start() -> Setup {
        let ca = DevCa::new(TrustDomain::parse("example.org").unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lifetime = Duration::from_secs(3 * 3600);
        let server_svid = ca.mint(&ECHO_ID.parse().unwrap(), lifetime).unwrap();
        let client = ca
            .mint(&CLIENT_ID.parse().unwrap(), lifetime)
            .unwrap()
            .write_pem_files(dir.path(), "client")
            .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = ephemos::server::incoming(
            listener,
            Identity::local(LocalAgent::new(server_svid)),
            ServerAuthorization::Any,
        )
        .await
        .unwrap();
        let echo = EchoService::named("echo");
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("echo.v1.Echo", ServingStatus::Serving)
            .await;
        let routes = EchoRoutes::new(echo.clone());
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .max_concurrent_streams(Some(50))
                .add_service(health_service)
                .add_service(routes)
                .serve_with_incoming(incoming)
                .await;
        });
        let failing = FailingServer::start([]).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let toml = format!(
            r#"
[defaults]
trust_domain = "example.org"
identity = {{ source = "files", cert = "{cert}", key = "{key}", bundle = "{bundle}" }}
connect_timeout = "2s"

[targets.echo]
service = "echo.v1.Echo"
address = "{addr}"
server_id = "{ECHO_ID}"

[targets.echo_wrong_id]
service = "echo.v1.Echo"
address = "{addr}"
server_id = "spiffe://example.org/billing"

[targets.nothing_listens]
service = "echo.v1.Echo"
address = "{closed}"
server_id = "{ECHO_ID}"

[targets.flaky]
service = "echo.v1.Echo"
address = "{flaky}"
identity = {{ source = "plaintext" }}
preset = "development"

[targets.flaky.retry]
max_attempts = 3
retryable_status_codes = ["UNAVAILABLE"]
initial_backoff = "10ms"

[targets.flaky_no_retry]
service = "echo.v1.Echo"
address = "{flaky}"
identity = {{ source = "plaintext" }}
retry = false
"#,
            cert = client.cert.display(),
            key = client.key.display(),
            bundle = client.bundle.display(),
            flaky = failing.addr(),
        );
        std::fs::write(dir.path().join("connections.toml"), toml).unwrap();
        Setup {
            dir,
            echo,
            health,
            failing,
            closed,
            _server: server,
        }
    }

    /// Runs `ephemos ARGS` in the setup's directory.
    async fn ephemos(&self, args: &[&str]) -> Output {
        run::ephemos(self.dir.path(), args, None).await
    }
}

fn echo_proto() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/proto/echo.proto")
}

/// The value of a text report's line `LABEL   value`.
fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_the_tls_peer_the_servers_settings_and_health_of_a_serving_target() {
    let setup = Setup::start().await;
    let output = setup.ephemos(&["probe", "echo", "--format", "json"]).await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    let connection = &report["connections"][0];
    assert_eq!(connection["server_id"], ECHO_ID);
    assert_eq!(connection["client_id"], CLIENT_ID);
    // The server's SVID was minted for three hours.
    let expiry =
        humantime::parse_rfc3339(connection["server_certificate_expiry"].as_str().unwrap())
            .unwrap();
    let left = expiry
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((3 * 3600 - 300..=3 * 3600).contains(&left), "{left}");
    // What the server's SETTINGS frame said (tonic's server was told 50 streams).
    assert_eq!(connection["http2_settings"]["MAX_CONCURRENT_STREAMS"], 50);
    assert_eq!(report["health"][0]["service"], "");
    assert_eq!(report["health"][0]["status"], "SERVING");
    assert_eq!(report["health"][1]["service"], "echo.v1.Echo");
    assert_eq!(report["health"][1]["status"], "SERVING");
    assert_eq!(report["round_trip_millis"].as_array().unwrap().len(), 5);
    let states = report["states"].as_array().unwrap();
    assert_eq!(states.last().unwrap()["state"], "READY", "{states:?}");
    assert_eq!(report["tcp_connect"][0]["error"], Value::Null);

    // The same, for people.
    let output = setup.ephemos(&["probe", "echo"]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(field(&text, "server id"), Some(ECHO_ID), "{text}");
    assert_eq!(field(&text, "client id"), Some(CLIENT_ID), "{text}");
    assert!(text.contains("MAX_CONCURRENT_STREAMS=50"), "{text}");
    assert!(text.contains("ok: SERVING (`echo.v1.Echo`)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_with_the_reason_when_nothing_listens() {
    let setup = Setup::start().await;
    let output = setup.ephemos(&["probe", "nothing_listens"]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let closed = setup.closed.to_string();
    assert!(
        text.contains(&format!(
            "error: cannot connect to {closed}: Connection refused"
        )),
        "{text}"
    );
    assert!(
        field(&text, "states")
            .and_then(|states| states.rsplit(" -> ").next())
            .unwrap()
            .starts_with("TRANSIENT_FAILURE"),
        "{text}"
    );
    assert!(
        field(&text, "tcp connect")
            .unwrap()
            .starts_with(&format!("{closed} failed after")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_refuses_a_server_whose_spiffe_id_is_not_authorized() {
    let setup = Setup::start().await;
    let output = setup
        .ephemos(&["probe", "echo_wrong_id", "--format", "json"])
        .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(report["ok"], false);
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("TLS handshake"), "{error}");
    assert!(
        error.contains(&format!(
            "`{ECHO_ID}` is not `spiffe://example.org/billing`"
        )),
        "{error}"
    );
    assert_eq!(report["connections"], Value::Array(Vec::new()));
    // Refused before any call: the server counted none.
    assert_eq!(setup.echo.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_when_the_targets_service_is_not_serving() {
    let setup = Setup::start().await;
    setup
        .health
        .set_service_status("echo.v1.Echo", ServingStatus::NotServing)
        .await;
    let output = setup.ephemos(&["probe", "echo"]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: `echo.v1.Echo` is NOT_SERVING, not SERVING"),
        "{text}"
    );
    // The whole server still serves: the target's own service decides.
    assert!(text.contains("the whole server (\"\"): SERVING"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_a_server_without_a_health_service_that_answered() {
    let setup = Setup::start().await;
    let output = setup.ephemos(&["probe", "flaky"]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok: answered (the server has no health service)"),
        "{text}"
    );
    assert!(text.contains("none (plaintext)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_the_reply_and_each_repeated_call_reaches_the_server() {
    let setup = Setup::start().await;
    let proto = echo_proto();
    let proto = proto.to_str().unwrap();
    let output = setup
        .ephemos(&[
            "call",
            "echo",
            "Unary",
            "--data",
            r#"{"message": "hello"}"#,
            "--proto",
            proto,
        ])
        .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["message"], "hello");
    assert_eq!(reply["server"], "echo");
    assert_eq!(setup.echo.calls(), 1);

    let output = setup
        .ephemos(&[
            "call",
            "echo",
            "echo.v1.Echo/Unary",
            "-d",
            r#"{"message": "load"}"#,
            "--proto",
            proto,
            "--repeat",
            "20",
            "--concurrency",
            "4",
            "--format",
            "json",
        ])
        .await;
    let summary = json(&output);
    assert_eq!(output.status.code(), Some(0), "{summary:#}");
    assert_eq!(summary["calls"], 20);
    assert_eq!(summary["statuses"]["OK"], 20);
    assert_eq!(summary["retries"], 0);
    assert!(summary["latency_millis"]["p99"].as_f64().unwrap() > 0.0);
    assert_eq!(setup.echo.calls(), 21, "counted at the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_streams_both_ways() {
    let setup = Setup::start().await;
    let proto = echo_proto();
    let proto = proto.to_str().unwrap();
    let output = setup
        .ephemos(&[
            "call",
            "echo",
            "ServerStream",
            "-d",
            r#"{"message": "m", "count": 3}"#,
            "--proto",
            proto,
            "--format",
            "json",
        ])
        .await;
    let result = json(&output);
    assert_eq!(output.status.code(), Some(0), "{result:#}");
    let messages: Vec<&str> = result["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["m 0", "m 1", "m 2"]);

    let output = setup
        .ephemos(&[
            "call",
            "echo",
            "ClientStream",
            "-d",
            r#"[{"message": "a"}, {"message": "b"}]"#,
            "--proto",
            proto,
            "--format",
            "json",
        ])
        .await;
    let result = json(&output);
    assert_eq!(output.status.code(), Some(0), "{result:#}");
    assert_eq!(result["responses"][0]["message"], "a,b");
    assert_eq!(setup.echo.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_uses_the_targets_retry_policy() {
    let setup = Setup::start().await;
    let proto = echo_proto();
    let proto = proto.to_str().unwrap();
    setup
        .failing
        .answer([Answer::Fail(Code::Unavailable, "busy"), Answer::Succeed]);
    let output = setup
        .ephemos(&[
            "call",
            "flaky",
            "Unary",
            "-d",
            r#"{"message": "x"}"#,
            "--proto",
            proto,
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let received = setup.failing.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[1].previous_attempts.as_deref(), Some("1"));

    // Without a policy the same failure is the call's status.
    setup
        .failing
        .answer([Answer::Fail(Code::Unavailable, "busy"), Answer::Succeed]);
    let output = setup
        .ephemos(&[
            "call",
            "flaky_no_retry",
            "Unary",
            "-d",
            r#"{"message": "x"}"#,
            "--proto",
            proto,
        ])
        .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("error: UNAVAILABLE: busy"), "{text}");
    assert_eq!(setup.failing.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_fails_with_the_status_against_an_unauthorized_server_or_a_closed_port() {
    let setup = Setup::start().await;
    let proto = echo_proto();
    let proto = proto.to_str().unwrap();
    let output = setup
        .ephemos(&["call", "echo_wrong_id", "Unary", "--proto", proto])
        .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("error: UNAVAILABLE: target `echo_wrong_id`: TLS handshake"),
        "{text}"
    );
    assert!(
        text.contains("is not `spiffe://example.org/billing`"),
        "{text}"
    );

    let output = setup
        .ephemos(&["call", "nothing_listens", "Unary", "--proto", proto])
        .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("cannot connect to {}", setup.closed)),
        "{text}"
    );
    assert_eq!(setup.echo.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_names_what_is_wrong_with_its_arguments() {
    let setup = Setup::start().await;
    let proto = echo_proto();
    let proto = proto.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["call", "echo", "Nope", "--proto", proto],
            "no method `Nope` in the protos; the methods are: echo.v1.Echo/Unary",
        ),
        (
            &[
                "call",
                "echo",
                "Unary",
                "-d",
                r#"{"mesage": "x"}"#,
                "--proto",
                proto,
            ],
            "--data is not a echo.v1.EchoRequest",
        ),
        (
            &["call", "echo", "Unary", "-d", "[{}]", "--proto", proto],
            "takes one echo.v1.EchoRequest message",
        ),
        (
            &["call", "echo", "Unary"],
            "name the target's protos: --proto FILE",
        ),
    ];
    for (args, expected) in cases {
        let output = setup.ephemos(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(setup.echo.calls(), 0);
}
