//! A request stream that fails part-way (here: a message over the send limit) ends the
//! call with the stream's own error, and no attempt, first, retried or hedged, ever
//! sends the server a request its caller did not finish: the server must never run a
//! truncated request to its end (counted at the server, which records every call it
//! completed).

mod common;

use std::time::Duration;

use common::{MS, quick};
use ephemos::config::service_config::ServiceConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::pb::echo_client::EchoClient;
use ephemos_test_support::{Answer, FailingServer};
use futures_util::StreamExt;
use tonic::Code;

/// A policy for every method of `echo.v1.Echo` (`hedgingPolicy` or `retryPolicy`).
fn policy(json: &str) -> ServiceConfig {
    ServiceConfig::parse_json(&format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "echo.v1.Echo"}}], {json}}}]}}"#
    ))
    .unwrap()
}

fn hedging() -> ServiceConfig {
    policy(
        r#""hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.1s",
            "nonFatalStatusCodes": ["UNAVAILABLE"]}"#,
    )
}

fn retrying() -> ServiceConfig {
    policy(
        r#""retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
            "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}"#,
    )
}

/// A connected client whose send limit is 1 KiB.
async fn client_of(server: &FailingServer, config: ServiceConfig) -> EchoClient<Channel> {
    let mut connection = quick();
    connection.max_message_size.send = 1024;
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("truncation")
        .connection(connection)
        .service_config(config)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel)
}

/// `m1` at once, then (after `gap`) `m2` over the send limit, then `m3`, then the end:
/// a request whose caller never finished it.
fn failing_request(gap: Duration) -> impl futures_util::Stream<Item = EchoRequest> + Send {
    let message = |text: &str, padding: usize| EchoRequest {
        message: text.to_owned(),
        padding: vec![0; padding],
        ..Default::default()
    };
    let items = [message("m1", 0), message("m2", 4096), message("m3", 0)];
    futures_util::stream::iter(items)
        .enumerate()
        .then(move |(i, item)| async move {
            if i == 1 {
                tokio::time::sleep(gap).await;
            }
            item
        })
}

/// Waits long enough for every hedge or retry to have gone, then checks that the server
/// completed nothing.
async fn assert_nothing_completed(server: &FailingServer) {
    tokio::time::sleep(MS(500)).await;
    let received = server.received();
    assert!(!received.is_empty(), "the first attempt reached the server");
    let completed: Vec<_> = received.iter().filter(|r| r.completed).collect();
    assert!(
        completed.is_empty(),
        "the server ran a truncated request to its end: {completed:#?}"
    );
}

fn assert_the_stream_error(status: &tonic::Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("send limit") || status.message().contains("larger"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_hedged_client_stream_that_fails_is_never_sent_truncated() {
    // The failure comes before the first hedge is due (at 100 ms).
    let server = FailingServer::start([]).await;
    let mut client = client_of(&server, hedging()).await;
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        client.client_stream(failing_request(MS(30))),
    )
    .await
    .expect("the call ends")
    .expect_err("the request failed: so does the call");
    assert_the_stream_error(&status);
    assert_nothing_completed(&server).await;
}

#[tokio::test]
async fn a_hedged_bidi_stream_that_fails_is_never_sent_truncated() {
    let server = FailingServer::start([]).await;
    let mut client = client_of(&server, hedging()).await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let mut replies = client.bidi(failing_request(MS(30))).await?.into_inner();
        while replies.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    })
    .await
    .expect("the call ends");
    assert_the_stream_error(&outcome.expect_err("the request failed: so does the call"));
    assert_nothing_completed(&server).await;
}

#[tokio::test]
async fn a_retried_client_stream_that_fails_is_never_sent_truncated() {
    // The first attempt fails after m1; the retry replays m1 and then meets m2.
    let server = FailingServer::start([Answer::Fail(Code::Unavailable, "try again")]).await;
    let mut client = client_of(&server, retrying()).await;
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        client.client_stream(failing_request(MS(100))),
    )
    .await
    .expect("the call ends")
    .expect_err("the request failed: so does the call");
    assert_the_stream_error(&status);
    assert_nothing_completed(&server).await;
}
