//! Keepalive (gRFC A8), idle timeout, GOAWAY, and failures seen by calls.

mod common;

use std::time::Duration;

use common::{MS, channel, client, eventually, keepalive, quick, request, wait_for};
use ephemos::{ConnectError, ConnectivityState};
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::{EchoServer, GoAwayServer, Proxy, ProxyMode, TooManyPingsServer};
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_connection_is_declared_dead_by_keepalive() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    let mut config = quick();
    config.keepalive = keepalive(MS(200), MS(200));
    let channel = channel(proxy.addr(), config);
    let mut client = client(&channel);
    client.unary(request("hi")).await.unwrap();

    // A call in flight when the network freezes.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut stream = client
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request("1")).await.unwrap();
    stream.next().await.unwrap().unwrap();

    proxy.set_mode(ProxyMode::Freeze);
    let frozen_at = std::time::Instant::now();
    let status = tokio::time::timeout(MS(5000), stream.next())
        .await
        .expect("the stream ends once keepalive gives up")
        .expect("an item")
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    wait_for(&channel, ConnectivityState::Idle, MS(2000)).await;
    // Detected after the next ping falls due plus its timeout: well under 2 s here.
    assert!(
        frozen_at.elapsed() < MS(2000),
        "took {:?}",
        frozen_at.elapsed()
    );

    proxy.set_mode(ProxyMode::Forward);
    client.unary(request("again")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_pings_doubles_the_keepalive_time() {
    let server = TooManyPingsServer::start(3).await;
    let mut config = quick();
    config.keepalive = keepalive(MS(200), MS(2000));
    let channel = channel(server.addr(), config);

    channel.connect().await.unwrap();
    // After three pings the server answers GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
    wait_for(&channel, ConnectivityState::Idle, MS(5000)).await;
    channel.connect().await.unwrap();
    wait_for(&channel, ConnectivityState::Idle, MS(5000)).await;

    let pings = server.ping_times();
    assert_eq!(pings.len(), 2, "two connections");
    // The shortest gap of each connection: lateness only lengthens gaps.
    let interval =
        |times: &[std::time::Instant]| times.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    let (first, second) = (interval(&pings[0]), interval(&pings[1]));
    assert!(
        second.as_secs_f64() >= first.as_secs_f64() * 1.5,
        "ping interval {first:?} then {second:?}: not doubled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_the_next_call_reconnects() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    let mut config = quick();
    config.idle_timeout = Some(MS(300));
    let channel = channel(proxy.addr(), config);
    let mut client = client(&channel);

    // A long stream keeps the channel busy past the idle timeout.
    let mut stream = client
        .server_stream(EchoRequest {
            message: "m".into(),
            count: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(MS(600)).await;
    assert_eq!(
        channel.state(),
        ConnectivityState::Ready,
        "a call in flight is not idle"
    );
    while stream.next().await.is_some() {}
    drop(stream);

    wait_for(&channel, ConnectivityState::Idle, MS(3000)).await;
    eventually(MS(3000), "the idle connection is closed", || {
        proxy.open_connections() == 0
    })
    .await;
    client.unary(request("again")).await.unwrap();
    assert_eq!(proxy.accepts().len(), 2, "the next call reconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_drains_in_flight_calls_and_new_calls_use_a_new_connection() {
    let server = EchoServer::start("first").await;
    let addr = server.addr();
    let channel = channel(addr, quick());
    let mut client = client(&channel);

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut stream = client
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request("before")).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().server, "first");

    // Graceful shutdown: GOAWAY (NO_ERROR), the listener closes, in-flight calls go on.
    let stopping = server.stop_gracefully();
    wait_for(&channel, ConnectivityState::Idle, MS(5000)).await;
    tx.send(request("during")).await.unwrap();
    let reply = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (reply.message.as_str(), reply.server.as_str()),
        ("during", "first")
    );
    drop(tx);
    assert!(stream.next().await.is_none());
    stopping.await;

    let _second = EchoServer::start_on(addr, "second").await;
    let reply = client.unary(request("after")).await.unwrap().into_inner();
    assert_eq!(reply.server, "second", "new calls go to a new connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_limits_hold_both_ways() {
    let server = EchoServer::start("s").await;
    let mut config = quick();
    config.max_message_size.send = 1024;
    config.max_message_size.recv = 2048;
    let channel = channel(server.addr(), config);
    let mut client = client(&channel);

    let big_request = EchoRequest {
        padding: vec![0; 2000],
        ..Default::default()
    };
    let status = client.unary(big_request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("send limit of 1024 bytes"),
        "{status:?}"
    );
    assert_eq!(
        server.calls(),
        0,
        "the over-size request never reached the server"
    );

    let big_reply = EchoRequest {
        reply_padding: 4000,
        ..Default::default()
    };
    let status = client.unary(big_reply).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("receive limit of 2048 bytes"),
        "{status:?}"
    );

    let fits = EchoRequest {
        padding: vec![0; 900],
        reply_padding: 1900,
        ..Default::default()
    };
    client.unary(fits).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_say_which_step_failed() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;

    proxy.switch(ProxyMode::Reset).await;
    let error = channel(proxy.addr(), quick()).connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Http2 { .. }), "{error:?}");

    proxy.switch(ProxyMode::Freeze).await;
    let mut config = quick();
    config.connect_timeout = MS(300);
    config.backoff.base_delay = MS(100);
    let started = std::time::Instant::now();
    let error = channel(proxy.addr(), config).connect().await.unwrap_err();
    assert!(
        matches!(
            error,
            ConnectError::Timeout {
                step: "waiting for the server's HTTP/2 SETTINGS",
                ..
            }
        ),
        "{error:?} after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_covers_the_whole_response() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    let channel = channel(proxy.addr(), quick());
    let mut client = client(&channel);
    client.unary(request("warm")).await.unwrap();

    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut call = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    call.set_timeout(MS(500));
    let mut stream = client.bidi(call).await.unwrap().into_inner();
    tx.send(request("1")).await.unwrap();
    stream.next().await.unwrap().unwrap();

    // The server can no longer answer (or cancel): only the client can end the call.
    proxy.set_mode(ProxyMode::Freeze);
    let status = tokio::time::timeout(MS(5000), stream.next())
        .await
        .expect("the deadline ends the call")
        .expect("an item")
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_racing_a_goaway_move_to_a_new_connection() {
    // Every connection gets a graceful GOAWAY after 3 calls; the listener stays open.
    // A call the GOAWAY refused is replayed once (gRFC A6); refused again (its replay
    // raced the next connection's GOAWAY) it fails UNAVAILABLE, for a retry policy to
    // take. Either way the server ran it exactly as often as the caller was told.
    let server = GoAwayServer::start(3).await;
    let channel = channel(server.addr(), quick());
    let mut workers = Vec::new();
    for worker in 0..8 {
        let mut client = client(&channel);
        workers.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0, 0);
            for i in 0..25 {
                let message = format!("{worker}-{i}");
                match client.unary(request(&message)).await {
                    Ok(reply) => {
                        assert_eq!(reply.into_inner().message, message);
                        ok += 1;
                    }
                    Err(status) => {
                        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                        assert!(
                            status
                                .message()
                                .contains("refused the call before processing it"),
                            "a GOAWAY failed a call it did not refuse: {status:?}"
                        );
                        refused += 1;
                    }
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for worker in workers {
        let (o, r) = worker.await.unwrap();
        ok += o;
        refused += r;
    }
    assert!(
        server.connections() > 10,
        "connections: {}",
        server.connections()
    );
    assert_eq!(
        server.executions(),
        ok,
        "every call that succeeded ran once at the server, and no refused one ran"
    );
    assert!(
        ok >= 8 * 25 / 2,
        "most calls moved to a new connection: {ok} ok, {refused} refused twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_on_an_open_stream_is_resource_exhausted() {
    let server = EchoServer::start("s").await;
    let mut config = quick();
    config.max_message_size.send = 1024;
    let channel = channel(server.addr(), config);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut stream = client(&channel)
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(request("small")).await.unwrap();
    stream.next().await.unwrap().unwrap();
    let big = EchoRequest {
        padding: vec![1; 4096],
        ..Default::default()
    };
    tx.send(big).await.unwrap();
    let status = tokio::time::timeout(MS(5000), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_timeout_shorter_than_the_backoff_does_not_shorten_it() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.switch(ProxyMode::Reset).await;
    let mut config = quick();
    config.idle_timeout = Some(MS(100));
    config.backoff.base_delay = MS(1500);
    config.backoff.max_delay = MS(1500);
    config.backoff.jitter = 0.0;
    let channel = channel(proxy.addr(), config);
    let mut client = client(&channel);
    assert!(client.unary(request("1")).await.is_err());
    tokio::time::sleep(MS(400)).await;
    // Idle for longer than the idle timeout, but still inside the backoff: no new attempt.
    assert!(client.unary(request("2")).await.is_err());
    tokio::time::sleep(MS(300)).await;
    assert_eq!(
        proxy.accepts().len(),
        1,
        "an attempt came before the backoff allowed it"
    );
}

/// The shortest gap between pings: lateness only lengthens gaps.
fn ping_interval(times: &[std::time::Instant]) -> Duration {
    times.windows(2).map(|w| w[1] - w[0]).min().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_pings_doubles_the_keepalive_time_of_the_whole_channel() {
    // Endpoint A answers the fourth ping with GOAWAY too_many_pings; B allows any number.
    // gRFC A8 doubles the time for the channel: B's next connection pings half as often.
    let strict = TooManyPingsServer::start(3).await;
    let lenient = TooManyPingsServer::start(1000).await;
    let lenient_proxy = Proxy::start(lenient.addr()).await;
    let mut config = quick();
    config.keepalive = keepalive(MS(200), MS(2000));
    let channel = ephemos::Channel::plaintext(strict.addr())
        .endpoints([strict.addr().into(), lenient_proxy.addr().into()])
        .target_name("echo")
        .connection(config)
        .connect_lazy()
        .unwrap();
    channel.connect().await.unwrap();
    eventually(MS(5000), "both endpoints connected", || {
        common::all_ready(&channel)
    })
    .await;
    eventually(
        MS(5000),
        "A's GOAWAY doubled the channel's keepalive",
        || channel.stats().keepalive_doubled,
    )
    .await;
    assert_eq!(channel.stats().keepalive_time, Some(MS(400)));

    // B's connection (made at 200 ms) is cut; its next one uses the channel's time.
    lenient_proxy.cut_all();
    eventually(MS(5000), "B's connection is gone", || {
        channel.stats().connections[1].state == ConnectivityState::Idle
    })
    .await;
    channel.connect().await.unwrap();
    eventually(MS(5000), "B reconnects", || lenient.connections() >= 2).await;
    eventually(MS(5000), "three pings on B's second connection", || {
        lenient.ping_times().get(1).is_some_and(|p| p.len() >= 3)
    })
    .await;
    let pings = lenient.ping_times();
    let (first, second) = (ping_interval(&pings[0]), ping_interval(&pings[1]));
    assert!(
        second.as_secs_f64() >= first.as_secs_f64() * 1.5,
        "B pinged every {first:?}, then every {second:?}: not doubled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_permit_without_stream_an_idle_connection_sends_no_pings() {
    let server = TooManyPingsServer::start(1000).await;
    let mut config = quick();
    config.keepalive = Some(ephemos::config::model::KeepaliveConfig {
        time: MS(100),
        timeout: MS(2000),
        permit_without_stream: false,
    });
    let channel = channel(server.addr(), config);
    channel.connect().await.unwrap();
    tokio::time::sleep(MS(800)).await;
    assert_eq!(server.ping_times()[0].len(), 0, "pings while idle");

    // The control: with a call in flight (this server never answers), it pings.
    let mut client = client(&channel);
    let call = tokio::spawn(async move { client.unary(request("held")).await });
    eventually(MS(5000), "pings while a call is in flight", || {
        server.ping_times()[0].len() >= 2
    })
    .await;
    call.abort();
}
