//! gRFC A6 retry policies against a real tonic server whose handlers fail on command;
//! every attempt is counted at the server, with the `grpc-previous-rpc-attempts` and
//! `grpc-timeout` it carried.

mod common;

use std::time::{Duration, Instant};

use common::{MS, eventually, request};
use ephemos::config::service_config::ServiceConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::pb::echo_client::EchoClient;
use ephemos_test_support::{Answer, FailingServer};
use tokio_stream::StreamExt;
use tonic::Code;

/// A retry policy for every method of `echo.v1.Echo`, and `extra` JSON after it.
fn policy(attempts: u32, initial: &str, extra: &str) -> ServiceConfig {
    let json = format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "echo.v1.Echo"}}],
            "retryPolicy": {{"maxAttempts": {attempts}, "initialBackoff": "{initial}", "maxBackoff": "1s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}}}]{extra}}}"#
    );
    ServiceConfig::parse_json(&json).unwrap()
}

fn client_of(server: &FailingServer, config: ServiceConfig) -> (Channel, EchoClient<Channel>) {
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("failing")
        .service_config(config)
        .connect_lazy()
        .unwrap();
    (channel.clone(), EchoClient::new(channel))
}

fn unavailable(n: &'static str) -> Answer {
    Answer::Fail(Code::Unavailable, n)
}

#[tokio::test]
async fn fewer_failures_than_attempts_succeed_on_the_next_attempt() {
    let server = FailingServer::start([unavailable("1"), unavailable("2")]).await;
    let (channel, mut client) = client_of(&server, policy(3, "0.01s", ""));
    let reply = client.unary(request("hi")).await.unwrap().into_inner();
    assert_eq!(reply.message, "hi");
    let received = server.received();
    assert_eq!(received.len(), 3, "{received:#?}");
    let previous: Vec<_> = received
        .iter()
        .map(|r| r.previous_attempts.as_deref())
        .collect();
    assert_eq!(previous, [None, Some("1"), Some("2")]);
    assert!(
        received.iter().all(|r| r.messages == ["hi"]),
        "each attempt sent the request"
    );
    let stats = channel.stats();
    assert_eq!((stats.retries, stats.transparent_retries), (2, 0));
}

#[tokio::test]
async fn as_many_failures_as_attempts_fail_with_the_last_status() {
    let server = FailingServer::start([unavailable("1"), unavailable("2"), unavailable("3")]).await;
    let (_, mut client) = client_of(&server, policy(3, "0.01s", ""));
    let status = client.unary(request("hi")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unavailable, "3"));
    assert_eq!(server.calls(), 3, "exactly max_attempts");
}

#[tokio::test]
async fn a_code_not_in_the_policy_is_never_retried() {
    let server = FailingServer::start([Answer::Fail(Code::Internal, "no")]).await;
    let (channel, mut client) = client_of(&server, policy(5, "0.01s", ""));
    let status = client.unary(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(server.calls(), 1);
    assert_eq!(channel.stats().retries, 0);
}

#[tokio::test]
async fn response_headers_commit_the_call() {
    let server = FailingServer::start([Answer::HeadersThenFail(Code::Unavailable)]).await;
    let (_, mut client) = client_of(&server, policy(5, "0.01s", ""));
    let mut stream = client
        .server_stream(request("s"))
        .await
        .expect("headers arrive")
        .into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().message, "s");
    let status = stream.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.calls(), 1, "committed: never retried");
}

#[tokio::test]
async fn server_pushback_sets_the_delay_and_a_negative_one_stops() {
    let server = FailingServer::start([Answer::FailWithPushback(Code::Unavailable, "300")]).await;
    let (channel, mut client) = client_of(&server, policy(3, "0.001s", ""));
    client.unary(request("hi")).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(waited >= MS(300), "pushback honoured: {waited:?}");
    assert!(channel.stats().retry_delay >= MS(300));

    let server = FailingServer::start([Answer::FailWithPushback(Code::Unavailable, "-1")]).await;
    let (_, mut client) = client_of(&server, policy(3, "0.001s", ""));
    let status = client.unary(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.calls(), 1, "pushback -1: no retry");
}

#[tokio::test]
async fn throttling_stops_retries_when_the_bucket_drains_and_resumes_after_successes() {
    // 4 tokens: a retry needs more than 2 left after the failure takes one.
    let throttling = r#", "retryThrottling": {"maxTokens": 4, "tokenRatio": 1}"#;
    let server = FailingServer::start([]).await;
    let (channel, mut client) = client_of(&server, policy(5, "0.001s", throttling));

    // 4 -> 3: retried; 3 -> 2: throttled. Two attempts, then the failure.
    server.answer([unavailable("a1"), unavailable("a2")]);
    let status = client.unary(request("a")).await.unwrap_err();
    assert_eq!(status.message(), "a2");
    assert_eq!(server.calls(), 2);
    // 2 -> 1: throttled at once.
    server.answer([unavailable("b1")]);
    client.unary(request("b")).await.unwrap_err();
    assert_eq!(server.calls(), 3);
    assert_eq!(channel.stats().throttled, 2);
    assert_eq!(channel.stats().throttle_tokens, Some(1.0));

    // Three successes give back three tokens (1 -> 4): retries resume.
    for _ in 0..3 {
        client.unary(request("ok")).await.unwrap();
    }
    assert_eq!(channel.stats().throttle_tokens, Some(4.0));
    server.answer([unavailable("c1")]);
    client.unary(request("c")).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 8);
    assert_eq!(
        received[7].previous_attempts.as_deref(),
        Some("1"),
        "retried"
    );
}

#[tokio::test]
async fn the_deadline_cuts_the_retry_loop_short() {
    // Backoffs of up to 1s, 2s, ... against a 400ms deadline.
    let server = FailingServer::start(std::iter::repeat_n(unavailable("down"), 10)).await;
    let (_, mut client) = client_of(&server, policy(5, "1s", ""));
    let mut call = tonic::Request::new(request("hi"));
    call.set_timeout(MS(400));
    let started = Instant::now();
    let status = client.unary(call).await.unwrap_err();
    // The call ends when the backoff drawn would end past the deadline, with the last
    // attempt's status and why it was the last; only if the deadline passed during an
    // attempt (it takes a millisecond here) is it DEADLINE_EXCEEDED.
    let took = started.elapsed();
    match status.code() {
        Code::Unavailable => {
            assert!(
                status
                    .message()
                    .contains("down; not retried: no retry fits in the time left"),
                "{status:?}"
            );
            assert!(took < MS(400), "ended before the deadline: {took:?}");
        }
        Code::DeadlineExceeded => assert!(took >= MS(390), "{took:?} {status:?}"),
        _ => panic!("{status:?}"),
    }
    let received = server.received();
    assert!((1..5).contains(&received.len()), "{}", received.len());
    // Each attempt is told the time left, less and less.
    let left: Vec<u64> = received
        .iter()
        .map(|r| {
            // grpc-timeout: up to 8 digits and a unit (PROTOCOL-HTTP2.md), in ns here.
            let t = r.timeout.as_deref().unwrap();
            let (digits, unit) = t.split_at(t.len() - 1);
            let n: u64 = digits.parse().unwrap();
            n * match unit {
                "n" => 1,
                "u" => 1_000,
                "m" => 1_000_000,
                "S" => 1_000_000_000,
                other => panic!("unit {other} for a timeout under a second: {t}"),
            }
        })
        .collect();
    assert!(left.windows(2).all(|w| w[1] < w[0]), "{left:?}");
    assert!(left[0] <= 400_000_000, "{left:?}");
}

#[tokio::test]
async fn a_retried_client_stream_replays_its_messages_then_goes_on_live() {
    let server = FailingServer::start([unavailable("first attempt")]).await;
    let (_, mut client) = client_of(&server, policy(3, "0.001s", ""));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<EchoRequest>();
    tx.send(request("a")).unwrap();
    let call = tokio::spawn(async move {
        client
            .client_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
            .await
    });
    // The first attempt read "a" and failed; the call is being retried.
    eventually(Duration::from_secs(10), "a second attempt", || {
        server.calls() >= 2
    })
    .await;
    tx.send(request("b")).unwrap();
    tx.send(request("c")).unwrap();
    drop(tx);
    let reply = call.await.unwrap().unwrap().into_inner();
    assert_eq!(reply.message, "a,b,c");
    let received = server.received();
    assert_eq!(received[0].messages, ["a"]);
    assert_eq!(
        received[1].messages,
        ["a", "b", "c"],
        "replayed, then live, in order"
    );
}

#[tokio::test]
async fn a_call_larger_than_its_replay_buffer_commits_and_is_not_retried() {
    // The server fails once it has read everything: the client has sent it all by then.
    let server =
        FailingServer::start([Answer::FailAfterAll(Code::Unavailable, "too late to retry")]).await;
    let (_, mut client) = client_of(&server, policy(3, "0.001s", ""));
    // Three messages of 100 KiB: past the 256 KiB a call may keep for replays.
    let big = |m: &str| EchoRequest {
        message: m.into(),
        padding: vec![7; 100 << 10],
        ..Default::default()
    };
    let messages = tokio_stream::iter([big("1"), big("2"), big("3")]);
    let status = client.client_stream(messages).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.received()[0].messages, ["1", "2", "3"]);
    assert_eq!(server.calls(), 1);

    // The same call under the limit is retried: the limit, not the kind, decided.
    let small = |m: &str| EchoRequest {
        message: m.into(),
        padding: vec![7; 10 << 10],
        ..Default::default()
    };
    server.answer([Answer::FailAfterAll(Code::Unavailable, "retried")]);
    let messages = tokio_stream::iter([small("1"), small("2"), small("3")]);
    client.client_stream(messages).await.unwrap();
    assert_eq!(server.calls(), 3);
}

#[tokio::test]
async fn methods_with_retry_false_get_one_attempt() {
    let checked = ephemos::config::check_str(
        "connections.toml",
        "[targets.echo]\nservice = \"echo.v1.Echo\"\naddress = \"127.0.0.1:1\"\nidentity = \"plaintext\"\n\
         preset = \"development\"\n[targets.echo.retry]\nmax_attempts = 3\ninitial_backoff = \"1ms\"\n\
         [targets.echo.methods.Unary]\nretry = false\n",
    );
    let config = checked
        .target("echo")
        .unwrap()
        .config
        .service_config
        .clone();
    let server = FailingServer::start([unavailable("u"), unavailable("s1")]).await;
    let (_, mut client) = client_of(&server, config);
    let status = client.unary(request("u")).await.unwrap_err();
    assert_eq!(status.message(), "u");
    assert_eq!(server.calls(), 1, "Unary: retry = false");
    let mut stream = client
        .server_stream(request("s"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().message, "s");
    assert_eq!(
        server.calls(),
        3,
        "ServerStream: retried under the target's policy"
    );
}

#[tokio::test]
async fn a_failure_to_connect_fails_the_call_at_once_and_is_not_retried() {
    // The pick fails fast once the connection attempt failed (UNAVAILABLE, gRFC A62):
    // nothing was sent, and a retry after its backoff would pick against the same
    // failing channel (docs/design.md section 5, "Retry").
    let server = FailingServer::start([]).await;
    let proxy = ephemos_test_support::Proxy::start(server.addr()).await;
    proxy.switch(ephemos_test_support::ProxyMode::Refuse).await;
    let channel = Channel::plaintext(Address::from(proxy.addr()))
        .target_name("failing")
        .connection(common::quick())
        .service_config(policy(5, "1s", ""))
        .connect_lazy()
        .unwrap();
    let mut client = EchoClient::new(channel.clone());
    let started = Instant::now();
    let status = client.unary(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("cannot connect"), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no retry waited out its backoff: {:?}",
        started.elapsed()
    );
    assert_eq!(channel.stats().retries, 0);
    // Back up: the next call after the connection's own backoff gets through.
    proxy.switch(ephemos_test_support::ProxyMode::Forward).await;
    common::wait_for(
        &channel,
        ephemos::ConnectivityState::Ready,
        Duration::from_secs(10),
    )
    .await;
    client.unary(request("again")).await.unwrap();
    assert_eq!(server.calls(), 1, "only the call that connected reached it");
}

#[tokio::test]
async fn a_bidi_call_that_failed_before_any_response_is_replayed() {
    let server = FailingServer::start([unavailable("no")]).await;
    let (channel, mut client) = client_of(&server, policy(3, "0.001s", ""));
    let requests = tokio_stream::iter([request("x"), request("y")]);
    let mut replies = client.bidi(requests).await.unwrap().into_inner();
    let mut got = Vec::new();
    while let Some(reply) = replies.next().await {
        got.push(reply.unwrap().message);
    }
    assert_eq!(got, ["x", "y"]);
    assert_eq!(server.calls(), 2);
    assert_eq!(channel.stats().retries, 1);
}

#[tokio::test]
async fn a_unary_message_larger_than_the_replay_buffer_is_sent_once_without_retries() {
    // 300 KiB: more than a call's 256 KiB buffer. The call commits at once: it is sent,
    // but a failure would not be retried.
    let server = FailingServer::start([]).await;
    let (_, mut client) = client_of(&server, policy(3, "0.001s", ""));
    let big = EchoRequest {
        message: "big".into(),
        padding: vec![1; 300 << 10],
        ..Default::default()
    };
    let reply = client.unary(big.clone()).await.expect("sent once");
    assert_eq!(reply.into_inner().message, "big");
    server.answer([unavailable("not retried")]);
    let status = client.unary(big).await.unwrap_err();
    assert_eq!(status.message(), "not retried");
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn a_retry_that_commits_while_replaying_still_sends_everything() {
    // The server answers the second attempt's headers at once (a bidi handler), while
    // the replay of 200 KiB is still going out through a 64 KiB window.
    let server = FailingServer::start([unavailable("first")]).await;
    let (_, mut client) = client_of(&server, policy(3, "0.001s", ""));
    let big = |m: &str| EchoRequest {
        message: m.into(),
        padding: vec![2; 100 << 10],
        ..Default::default()
    };
    let requests = tokio_stream::iter([big("x"), big("y")]);
    let mut replies = client.bidi(requests).await.unwrap().into_inner();
    let mut got = Vec::new();
    while let Some(reply) = replies.next().await {
        got.push(
            reply
                .expect("the committed attempt sends the whole request")
                .message,
        );
    }
    assert_eq!(got, ["x", "y"]);
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn a_failed_pick_moments_after_the_channel_was_ready_is_retried_by_the_policy() {
    // A rolling restart: the only server goes away just after serving, and is back
    // before the retry's backoff ends. Within a connection attempt's time of losing its
    // last READY connection the channel may well come back, so the pick's UNAVAILABLE
    // goes to the retry policy (as in grpc-go); a channel that has not been READY for
    // that long fails at once (a_failure_to_connect_fails_the_call_at_once...).
    let server = FailingServer::start([]).await;
    let proxy = ephemos_test_support::Proxy::start(server.addr()).await;
    let channel = Channel::plaintext(Address::from(proxy.addr()))
        .target_name("restarting")
        .connection(common::quick())
        .service_config(policy(5, "0.3s", ""))
        .connect_lazy()
        .unwrap();
    let mut client = EchoClient::new(channel.clone());
    client.unary(request("before")).await.unwrap();
    proxy.switch(ephemos_test_support::ProxyMode::Refuse).await;
    proxy.cut_all();
    // The connection is lost (the subchannel goes IDLE); the call's pick reconnects,
    // is refused, and fails fast.
    common::wait_for(
        &channel,
        ephemos::ConnectivityState::Idle,
        Duration::from_secs(10),
    )
    .await;
    let call = tokio::spawn(async move { client.unary(request("during")).await });
    tokio::time::sleep(MS(50)).await;
    proxy.switch(ephemos_test_support::ProxyMode::Forward).await;
    let reply = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call ends")
        .unwrap()
        .expect("retried after the failed pick, once the server is back");
    assert_eq!(reply.into_inner().message, "during");
    assert!(channel.stats().retries >= 1, "{}", channel.stats());
    assert_eq!(server.calls(), 2, "counted at the server");
}
