//! Client-side health checking (gRFC A17) against real tonic servers serving
//! tonic-health's `grpc.health.v1.Health`: a connection takes calls only while its server
//! says SERVING, a NOT_SERVING server stops getting calls while another endpoint takes
//! them, a server without a health service counts as healthy, and a failing Watch keeps
//! the connection out of the picks. Calls are counted at the servers.

mod common;

use std::time::Duration;

use common::{MS, client, eventually, request, unary_calls};
use ephemos::{Channel, ConnectivityState};
use ephemos_test_support::EchoServer;
use tonic::Code;

const SOON: Duration = Duration::from_secs(10);

/// A channel over `servers` (one connection each) with `health` as its `health_check`
/// and `extra` lines.
fn channel(servers: &[&EchoServer], health: &str, extra: &str) -> Channel {
    common::echo_target(&format!(
        "[targets.echo]\nendpoints = {}\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\nhealth_check = {health}\n\
         backoff = {{ base = \"100ms\", max = \"200ms\" }}\n{extra}",
        common::endpoints_of(servers.iter().map(|s| s.addr()))
    ))
}

/// What the health column of `endpoint`'s connection says.
fn health_of(channel: &Channel, endpoint: &EchoServer) -> Option<String> {
    let endpoint = endpoint.addr().to_string();
    channel
        .stats()
        .connections
        .into_iter()
        .find(|c| c.endpoint == endpoint)
        .and_then(|c| c.health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_serving_gets_no_calls_while_the_other_endpoint_takes_them() {
    let (a, b) = (
        EchoServer::start_with_health("a").await,
        EchoServer::start_with_health("b").await,
    );
    let channel = channel(&[&a, &b], "true", "");
    channel.connect().await.unwrap();
    eventually(SOON, "both SERVING", || {
        health_of(&channel, &a).as_deref() == Some("SERVING")
            && health_of(&channel, &b).as_deref() == Some("SERVING")
    })
    .await;
    unary_calls(&channel, 40).await;
    assert!(
        a.calls() > 0 && b.calls() > 0,
        "both take calls while SERVING"
    );

    a.set_serving(false).await;
    // One health update: the Watch stream tells the client at once.
    eventually(SOON, "a NOT_SERVING", || {
        health_of(&channel, &a).as_deref() == Some("NOT_SERVING")
    })
    .await;
    let (a_before, b_before) = (a.calls(), b.calls());
    unary_calls(&channel, 100).await;
    assert_eq!(a.calls(), a_before, "a NOT_SERVING server got calls");
    assert_eq!(b.calls(), b_before + 100);
    assert_eq!(channel.state(), ConnectivityState::Ready);

    a.set_serving(true).await;
    eventually(SOON, "a SERVING again", || {
        health_of(&channel, &a).as_deref() == Some("SERVING")
    })
    .await;
    unary_calls(&channel, 60).await;
    assert!(a.calls() > a_before, "a SERVING again takes calls");
    // The connection was kept all along: health is not a reconnect.
    assert_eq!(a.connections_accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_goes_to_a_server_before_it_says_serving() {
    let server = EchoServer::start_with_health("s").await;
    server.set_serving(false).await;
    let fail_fast = channel(&[&server], "true", "");
    let mut client = client(&fail_fast);
    // The first call connects, then fails fast once the server says NOT_SERVING.
    let status = loop {
        match client.unary(request("x")).await {
            Err(status) if status.message().contains("not healthy") => break status,
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
            Ok(reply) => panic!("a call went to a NOT_SERVING server: {reply:?}"),
        }
        tokio::time::sleep(MS(20)).await;
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("NOT_SERVING"), "{status:?}");
    assert_eq!(
        fail_fast.state(),
        ConnectivityState::TransientFailure,
        "{}",
        fail_fast.stats()
    );

    let waiting = channel(
        &[&server],
        "true",
        "[targets.echo.methods.Unary]\nwait_for_ready = true\n",
    );
    let call = tokio::spawn({
        let mut client = common::client(&waiting);
        async move { client.unary(request("waited")).await }
    });
    tokio::time::sleep(MS(300)).await;
    assert!(!call.is_finished(), "a wait-for-ready call did not wait");
    assert_eq!(server.calls(), 0, "calls reached a NOT_SERVING server");

    server.set_serving(true).await;
    let reply = tokio::time::timeout(SOON, call)
        .await
        .expect("the call ends once the server is SERVING")
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_inner().message, "waited");
    assert_eq!(server.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_health_service_counts_as_healthy() {
    let server = EchoServer::start("plain").await;
    let channel = channel(&[&server], "true", "");
    unary_calls(&channel, 5).await;
    assert_eq!(server.calls(), 5);
    assert_eq!(
        health_of(&channel, &server).as_deref(),
        Some("no health service (healthy)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_watch_keeps_the_connection_out_until_it_answers() {
    // tonic-health answers NOT_FOUND for a service it does not know.
    let server = EchoServer::start_with_health("s").await;
    let channel = channel(&[&server], "{ service = \"payments.v1.Payments\" }", "");
    let mut client = client(&channel);
    let status = loop {
        match client.unary(request("x")).await {
            Err(status) if status.message().contains("not healthy") => break status,
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
            Ok(reply) => panic!("a call went through an unhealthy connection: {reply:?}"),
        }
        tokio::time::sleep(MS(20)).await;
    };
    assert!(
        status.message().contains("health check failed") && status.message().contains("NotFound"),
        "{status:?}"
    );
    assert_eq!(server.calls(), 0);
    assert_eq!(
        health_of(&channel, &server).as_deref(),
        Some("check failing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_replaces_a_connection_unhealthy_for_too_long_keeping_its_backoff() {
    let server = EchoServer::start_with_health("s").await;
    server.set_serving(false).await;
    let channel = common::echo_target(&format!(
        "[targets.echo]\nendpoints = {}\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\nhealth_check = true\n\
         backoff = {{ base = \"200ms\", multiplier = 2.0, max = \"10s\" }}\n\
         pool = {{ size = 1, warm = true, cleanup_interval = \"100ms\" }}\n",
        common::endpoints_of([server.addr()])
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Replaced about 0.35 s, 0.85 s and 1.75 s in (the backoff doubling from 200 ms,
    // SERVING never having reset it); a replacement every cleanup would be about nine.
    let accepted = server.connections_accepted();
    assert!(
        (3..=6).contains(&accepted),
        "{accepted} connections in 3 s: {}",
        channel.stats()
    );
    assert!(channel.stats().pool_evictions >= 2, "{}", channel.stats());
    assert_eq!(server.calls(), 0);
    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
