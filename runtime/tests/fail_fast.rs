//! A fail-fast call on a channel in TRANSIENT_FAILURE fails at once with UNAVAILABLE
//! (gRFC A62: failure is sticky and the pick fails fast), even when the method has a
//! retry policy for UNAVAILABLE: the pick's failure sent nothing, and a retry would
//! only pick against the same failing channel after its backoff. Checked against a
//! server that accepts TCP and never speaks, a server that refuses the client's
//! certificate, and a channel kept busy by failing calls past its idle timeout (calls
//! that fail still count as use, so the channel stays in TRANSIENT_FAILURE instead of
//! going IDLE and making the next call wait through a whole connection attempt).
//!
//! The bounds are generous (a second) against what the defects cost: retries waiting
//! out their backoffs (seconds), or a call waiting through a connection attempt.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::{MS, quick, request};
use ephemos::config::model::{BackoffConfig, ConnectionConfig, ServerAuthorization};
use ephemos::config::service_config::ServiceConfig;
use ephemos::config::value::SpiffeId;
use ephemos::identity::Identity;
use ephemos::{Address, Channel, ConnectivityState};
use ephemos_test_support::pb::echo_client::EchoClient;
use tokio::time::Instant;
use tonic::Code;

/// A retry policy on UNAVAILABLE whose backoffs are seconds long.
fn retry_on_unavailable() -> ServiceConfig {
    ServiceConfig::parse_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "1s", "maxBackoff": "10s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap()
}

/// Connection attempts of `connect_timeout`, 50 ms apart.
fn attempts_of(connect_timeout: Duration) -> ConnectionConfig {
    ConnectionConfig {
        connect_timeout,
        backoff: BackoffConfig {
            base_delay: MS(50),
            multiplier: 1.0,
            jitter: 0.0,
            max_delay: MS(50),
        },
        ..quick()
    }
}

/// A server that accepts connections and never sends a byte; it keeps them open.
async fn frozen_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// One fail-fast unary call: its status and how long it took.
async fn timed_call(client: &mut EchoClient<Channel>) -> (tonic::Status, Duration) {
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), client.unary(request("x")))
        .await
        .expect("the call ends")
        .expect_err("nothing can answer it");
    (status, started.elapsed())
}

fn assert_failed_fast(status: &tonic::Status, took: Duration, what: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
    assert!(
        took < Duration::from_secs(1),
        "{what}: a fail-fast call on a channel in TRANSIENT_FAILURE took {took:?} ({status:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_calls_at_once_once_the_channel_failed() {
    let (addr, _server) = frozen_server().await;
    let channel = Channel::plaintext(Address::from(addr))
        .target_name("frozen")
        .connection(attempts_of(MS(300)))
        .service_config(retry_on_unavailable())
        .connect_lazy()
        .unwrap();
    channel
        .connect()
        .await
        .expect_err("the server never speaks");
    assert_eq!(channel.state(), ConnectivityState::TransientFailure);
    let mut client = EchoClient::new(channel.clone());
    for _ in 0..3 {
        let (status, took) = timed_call(&mut client).await;
        assert_failed_fast(&status, took, "frozen server");
    }
    assert_eq!(channel.stats().retries, 0, "a failed pick is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_certificate_fails_the_first_call_with_the_first_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_id = SpiffeId::parse("spiffe://example.org/echo").unwrap();
    let trusted = SpiffeId::parse("spiffe://example.org/trusted").unwrap();
    let incoming = ephemos::server::incoming(
        listener,
        Identity::dev(&server_id).unwrap(),
        ServerAuthorization::Ids(Cow::Owned(vec![trusted])),
    )
    .await
    .unwrap();
    let _server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ephemos_test_support::pb::echo_server::EchoServer::new(
                ephemos_test_support::EchoService::named("s"),
            ))
            .serve_with_incoming(incoming),
    );
    let stranger = SpiffeId::parse("spiffe://example.org/stranger").unwrap();
    let channel = Channel::mtls(
        Address::from(addr),
        Identity::dev(&stranger).unwrap(),
        ServerAuthorization::Any,
    )
    .target_name("refusing")
    .connection(ConnectionConfig {
        connect_timeout: Duration::from_secs(5),
        ..quick()
    })
    .service_config(retry_on_unavailable())
    .connect_lazy()
    .unwrap();
    let mut client = EchoClient::new(channel.clone());
    // The first call waits for the first connection attempt, then fails with it.
    let (status, took) = timed_call(&mut client).await;
    assert_failed_fast(&status, took, "refused certificate, first call");
    assert!(
        status
            .message()
            .contains("refused the client's certificate"),
        "{status:?}"
    );
    let (status, took) = timed_call(&mut client).await;
    assert_failed_fast(&status, took, "refused certificate, next call");
    assert_eq!(channel.stats().retries, 0, "a failed pick is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_keep_a_channel_in_transient_failure_past_its_idle_timeout() {
    let (addr, _server) = frozen_server().await;
    // Each connection attempt takes a second to fail; the idle timeout is 1.5 s.
    let channel = Channel::plaintext(Address::from(addr))
        .target_name("quiet")
        .connection(ConnectionConfig {
            idle_timeout: Some(MS(1500)),
            ..attempts_of(Duration::from_secs(1))
        })
        .connect_lazy()
        .unwrap();
    channel
        .connect()
        .await
        .expect_err("the server never speaks");
    let mut client = EchoClient::new(channel.clone());
    // 3 s of fail-fast calls, twice the idle timeout: each one is use.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (status, took) = timed_call(&mut client).await;
        assert_failed_fast(&status, took, "a channel busy with failing calls");
        assert_eq!(
            channel.state(),
            ConnectivityState::TransientFailure,
            "calls are use: the channel does not go IDLE under them"
        );
        tokio::time::sleep(MS(200)).await;
    }
}

#[tokio::test]
async fn a_loop_of_calls_that_fail_at_once_lets_other_tasks_run() {
    // One thread: a caller retrying in a loop a call that fails fast must yield now and
    // then, or the tasks that would repair the channel (or anything else) never run.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = Channel::plaintext(Address::from(addr))
        .target_name("refused")
        .connection(quick())
        .connect_lazy()
        .unwrap();
    channel.connect().await.expect_err("nothing listens");
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = tokio::spawn({
        let ran = ran.clone();
        async move { ran.store(true, std::sync::atomic::Ordering::SeqCst) }
    });
    let mut client = EchoClient::new(channel.clone());
    let mut calls = 0;
    while !ran.load(std::sync::atomic::Ordering::SeqCst) && calls < 100_000 {
        let status = client.unary(request("x")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        calls += 1;
    }
    assert!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        "{calls} failing calls in a row and the other task never ran"
    );
    other.await.unwrap();
}
