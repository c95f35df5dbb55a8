//! gRFC A6 hedging against a real tonic server whose handlers fail or hang on command;
//! attempts, their timing and their cancellation are seen at the server.

mod common;

use std::time::{Duration, Instant};

use common::{MS, eventually, request};
use ephemos::config::service_config::ServiceConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::pb::echo_client::EchoClient;
use ephemos_test_support::{Answer, FailingServer};
use tonic::Code;

/// A hedging policy for every method of `echo.v1.Echo`.
fn hedging(attempts: u32, delay: &str) -> ServiceConfig {
    let json = format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "echo.v1.Echo"}}],
            "hedgingPolicy": {{"maxAttempts": {attempts}, "hedgingDelay": "{delay}",
              "nonFatalStatusCodes": ["UNAVAILABLE"]}}}}]}}"#
    );
    ServiceConfig::parse_json(&json).unwrap()
}

/// A connected client: the first attempt does not pay for the connection.
async fn client_of(
    server: &FailingServer,
    config: ServiceConfig,
) -> (Channel, EchoClient<Channel>) {
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("hedged")
        .service_config(config)
        .connect()
        .await
        .unwrap();
    (channel.clone(), EchoClient::new(channel))
}

#[tokio::test]
async fn hedges_go_out_every_delay_and_the_losers_are_cancelled() {
    let server = FailingServer::start([Answer::Hang, Answer::Hang, Answer::Succeed]).await;
    let (channel, mut client) = client_of(&server, hedging(3, "0.1s")).await;
    let reply = tokio::time::timeout(Duration::from_secs(10), client.unary(request("h")))
        .await
        .expect("the winner returns without waiting for the losers")
        .unwrap()
        .into_inner();
    assert_eq!(reply.message, "h");
    let received = server.received();
    assert_eq!(received.len(), 3, "{received:#?}");
    let previous: Vec<_> = received
        .iter()
        .map(|r| r.previous_attempts.as_deref())
        .collect();
    assert_eq!(previous, [None, Some("1"), Some("2")]);
    // Sent at 0, 100 and 200 ms (bounds that hold on a loaded machine).
    let gap = |a: usize, b: usize| received[b].at - received[a].at;
    assert!(
        gap(0, 1) >= MS(50) && gap(1, 2) >= MS(50),
        "{:?} {:?}",
        gap(0, 1),
        gap(1, 2)
    );
    assert!(
        gap(0, 2) >= MS(150) && gap(0, 2) < Duration::from_secs(5),
        "{:?}",
        gap(0, 2)
    );
    // The two hanging attempts are reset on the wire: their handlers stop.
    eventually(Duration::from_secs(5), "the losers cancelled", || {
        let r = server.received();
        r[0].cancelled && r[1].cancelled
    })
    .await;
    assert!(!server.received()[2].cancelled);
    assert_eq!(channel.stats().hedges, 2);
}

#[tokio::test]
async fn a_non_fatal_failure_sends_the_next_hedge_at_once() {
    let server =
        FailingServer::start([Answer::Fail(Code::Unavailable, "no"), Answer::Succeed]).await;
    let (_, mut client) = client_of(&server, hedging(3, "10s")).await;
    let started = Instant::now();
    client.unary(request("h")).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn a_fatal_failure_cancels_the_others_and_is_the_result() {
    let server = FailingServer::start([Answer::Hang, Answer::Fail(Code::Internal, "fatal")]).await;
    // Two attempts at most: on a loaded machine a third could be due before the fatal
    // status is handled.
    let (_, mut client) = client_of(&server, hedging(2, "0.05s")).await;
    let status = client.unary(request("h")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Internal, "fatal"));
    eventually(
        Duration::from_secs(5),
        "the first attempt cancelled",
        || server.received()[0].cancelled,
    )
    .await;
    assert_eq!(server.calls(), 2, "no hedge after a fatal status");
}

#[tokio::test]
async fn pushback_delays_the_next_hedge_or_stops_hedging() {
    let server = FailingServer::start([
        Answer::FailWithPushback(Code::Unavailable, "300"),
        Answer::Succeed,
    ])
    .await;
    let (_, mut client) = client_of(&server, hedging(3, "10s")).await;
    client.unary(request("h")).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= MS(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    let server = FailingServer::start([Answer::FailWithPushback(Code::Unavailable, "-1")]).await;
    let (_, mut client) = client_of(&server, hedging(3, "10s")).await;
    let started = Instant::now();
    let status = client.unary(request("h")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.calls(), 1, "pushback -1: no more hedges");
}

#[tokio::test]
async fn a_zero_delay_sends_every_attempt_at_once_and_all_failing_is_the_last_failure() {
    let server = FailingServer::start([
        Answer::Fail(Code::Unavailable, "1"),
        Answer::Fail(Code::Unavailable, "2"),
    ])
    .await;
    let (channel, mut client) = client_of(&server, hedging(2, "0s")).await;
    let status = client.unary(request("h")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.calls(), 2);
    assert_eq!(channel.stats().hedges, 1);
}

#[tokio::test]
async fn a_failed_hedge_is_not_counted_in_flight_while_the_others_go_on() {
    // The first attempt fails at once (Trailers-Only, non-fatal), the hedge it triggers
    // hangs: while it does, the connection carries one call, not two.
    let server = FailingServer::start([Answer::Fail(Code::Unavailable, "no"), Answer::Hang]).await;
    let (channel, mut client) = client_of(&server, hedging(2, "10s")).await;
    let call = tokio::spawn(async move { client.unary(request("h")).await });
    eventually(
        Duration::from_secs(5),
        "the hedge reached the server",
        || server.calls() == 2,
    )
    .await;
    // Give the failed attempt's release every chance to show (it is immediate).
    tokio::time::sleep(MS(50)).await;
    let in_flight: usize = channel
        .stats()
        .connections
        .iter()
        .map(|c| c.in_flight)
        .sum();
    assert_eq!(in_flight, 1, "{}", channel.stats());
    call.abort();
}

#[tokio::test]
async fn a_failed_pick_ends_a_hedged_call_without_hedges_or_tokens() {
    // Nothing listens: the first attempt's pick fails once the connection attempt has.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = ServiceConfig::parse_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
            "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "10s",
              "nonFatalStatusCodes": ["UNAVAILABLE"]}}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    )
    .unwrap();
    let channel = Channel::plaintext(Address::from(addr))
        .target_name("hedged")
        .connection(common::quick())
        .service_config(config)
        .connect_lazy()
        .unwrap();
    let status = EchoClient::new(channel.clone())
        .unary(request("h"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let stats = channel.stats();
    assert_eq!(stats.hedges, 0, "no hedge goes to a failing channel");
    assert_eq!(stats.throttle_tokens, Some(10.0), "and none takes a token");
}

#[tokio::test]
async fn a_hedge_that_could_not_go_before_the_deadline_ends_the_call_at_once() {
    // The only attempt fails with a pushback of 5 s; the deadline is in 1 s.
    let server = FailingServer::start([Answer::FailWithPushback(Code::Unavailable, "5000")]).await;
    let config = ServiceConfig::parse_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}], "timeout": "1s",
            "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "10s",
              "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap();
    let (_, mut client) = client_of(&server, config).await;
    let started = Instant::now();
    let status = client.unary(request("h")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("no retry fits in the time left"),
        "{status:?}"
    );
    assert!(started.elapsed() < MS(900), "{:?}", started.elapsed());
    assert_eq!(server.calls(), 1);
}
