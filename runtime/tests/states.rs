//! Connectivity states: lazy start, each transition, fail fast, wait for ready,
//! deadlines, and shutdown when the last clone is dropped.

mod common;

use std::time::Duration;

use common::{MS, channel, client, eventually, quick, request, wait_for};
use ephemos::{Channel, ConnectError, ConnectivityState};
use ephemos_test_support::{EchoServer, Proxy, ProxyMode};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_then_connecting_then_ready() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    let channel = channel(proxy.addr(), quick());

    tokio::time::sleep(MS(100)).await;
    assert_eq!(channel.state(), ConnectivityState::Idle);
    assert!(proxy.accepts().is_empty(), "no I/O before the first call");

    let mut watcher = channel.state_watcher();
    let observed = tokio::spawn(async move {
        let mut seen = vec![];
        let mut state = ConnectivityState::Idle;
        while state != ConnectivityState::Ready {
            state = watcher.wait_for_state_change(state).await;
            seen.push(state);
        }
        seen
    });
    // wait_for_state_change returns at once when the state differs.
    assert_eq!(
        channel
            .wait_for_state_change(ConnectivityState::Ready)
            .await,
        ConnectivityState::Idle
    );

    client(&channel).unary(request("hi")).await.unwrap();
    assert_eq!(
        observed.await.unwrap(),
        [ConnectivityState::Connecting, ConnectivityState::Ready]
    );
    assert_eq!(proxy.accepts().len(), 1);
    assert!(channel.is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_fail_fast_with_the_connect_error() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.set_mode(ProxyMode::Refuse);
    tokio::time::sleep(MS(50)).await;
    let channel = channel(proxy.addr(), quick());

    let error = channel.connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Transport { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&proxy.addr().to_string()),
        "{error}"
    );
    assert_eq!(channel.state(), ConnectivityState::TransientFailure);

    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("target `echo`"), "{status:?}");
    assert!(status.message().contains("cannot connect to"), "{status:?}");

    // Back up: the next attempt after the backoff succeeds, without any call.
    proxy.set_mode(ProxyMode::Forward);
    wait_for(&channel, ConnectivityState::Ready, MS(5000)).await;
    client(&channel).unary(request("y")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_ready_waits_for_the_server_and_deadlines_bound_the_wait() {
    let server = EchoServer::start("s").await;
    let addr = server.addr();
    server.stop().await;
    let config = ephemos::config::check_str(
        "c.toml",
        format!(
            "[targets.echo]\naddress = \"{addr}\"\nidentity = \"plaintext\"\npreset = \"development\"\n\
             service = \"echo.v1.Echo\"\nconnect_timeout = \"2s\"\nbackoff = {{ base = \"100ms\", max = \"200ms\" }}\n\
             [targets.echo.methods.Unary]\nwait_for_ready = true\n"
        ),
    );
    assert!(!config.diagnostics.has_errors(), "{:?}", config.diagnostics);
    let channel = Channel::from_target(&config.target("echo").unwrap().config)
        .unwrap()
        .connect_lazy();
    let mut client = client(&channel);

    // A deadline while waiting for a connection is DEADLINE_EXCEEDED.
    let mut timed = request("t");
    let mut timed_request = tonic::Request::new(timed.clone());
    timed_request.set_timeout(MS(300));
    let status = client.unary(timed_request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // Without a deadline, a wait-for-ready call waits until the server is back.
    timed.message = "waited".into();
    let call = tokio::spawn({
        let mut client = client.clone();
        async move { client.unary(timed).await }
    });
    tokio::time::sleep(MS(500)).await;
    assert!(
        !call.is_finished(),
        "the call waits instead of failing fast"
    );
    let _server = EchoServer::start_on(addr, "back").await;
    let reply = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_inner().message, "waited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_clone_shuts_everything_down() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Channel>();

    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    let channel = channel(proxy.addr(), quick());
    let clone = channel.clone();
    client(&channel).unary(request("hi")).await.unwrap();
    eventually(MS(2000), "one open connection", || {
        proxy.open_connections() == 1
    })
    .await;

    let mut watcher = channel.state_watcher();
    drop(channel);
    tokio::time::sleep(MS(100)).await;
    assert_eq!(
        watcher.state(),
        ConnectivityState::Ready,
        "a clone still lives"
    );
    drop(clone);
    let state = tokio::time::timeout(MS(5000), async {
        let mut state = watcher.state();
        while state != ConnectivityState::Shutdown {
            state = watcher.wait_for_state_change(state).await;
        }
        state
    })
    .await
    .expect("reaches SHUTDOWN");
    assert_eq!(state, ConnectivityState::Shutdown);
    eventually(MS(5000), "the connection is closed", || {
        proxy.open_connections() == 0
    })
    .await;
}
