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

    // Hold the connection in CONNECTING until the observer has seen it.
    proxy.switch(ProxyMode::Freeze).await;
    let mut watcher = channel.state_watcher();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut state = ConnectivityState::Idle;
        while state != ConnectivityState::Ready {
            state = watcher.wait_for_state_change(state).await;
            let _ = seen_tx.send(state);
        }
    });
    // wait_for_state_change returns at once when the state differs.
    assert_eq!(
        channel
            .wait_for_state_change(ConnectivityState::Ready)
            .await,
        ConnectivityState::Idle
    );

    let call = tokio::spawn({
        let mut client = client(&channel);
        async move { client.unary(request("hi")).await }
    });
    assert_eq!(seen.recv().await, Some(ConnectivityState::Connecting));
    proxy.switch(ProxyMode::Forward).await;
    assert_eq!(seen.recv().await, Some(ConnectivityState::Ready));
    call.await.unwrap().unwrap();
    assert_eq!(proxy.accepts().len(), 1);
    assert!(channel.is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_fail_fast_with_the_connect_error() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.switch(ProxyMode::Refuse).await;
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
        .connect_lazy()
        .unwrap();
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

#[test]
fn dropping_a_channel_before_its_tasks_run_still_shuts_them_down() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = channel("127.0.0.1:9".parse().unwrap(), quick());
        let mut watcher = channel.state_watcher();
        drop(channel); // no await in between: the driver tasks have not run yet
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
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_endpoints_one_down_is_not_the_channel_down() {
    let up = EchoServer::start("up").await;
    let down = EchoServer::start("down").await;
    let down_proxy = Proxy::start(down.addr()).await;
    down_proxy.switch(ProxyMode::Refuse).await;
    let channel = Channel::plaintext(down_proxy.addr())
        .endpoints([down_proxy.addr().into(), up.addr().into()])
        .target_name("echo")
        .connection(quick())
        .connect_lazy()
        .unwrap();
    channel.connect().await.expect("one endpoint is enough");
    let mut client = client(&channel);
    for i in 0..20 {
        let reply = client
            .unary(request(&i.to_string()))
            .await
            .expect("no call fails");
        assert_eq!(reply.into_inner().server, "up");
    }

    // The other endpoint comes up: its subchannel reconnects after its backoff and
    // takes its turn, with no call failing meanwhile.
    down_proxy.switch(ProxyMode::Forward).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while down.calls() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second endpoint never served"
        );
        client
            .unary(request("spread"))
            .await
            .expect("no call fails");
        tokio::time::sleep(MS(20)).await;
    }
    assert!(up.calls() > 20);
}

/// gRFC A62: once an attempt fails, the subchannel stays in TRANSIENT_FAILURE while it
/// tries again, so `connect()` and fail-fast calls see the failure instead of waiting
/// through attempt after attempt (here each attempt takes longer than the backoff, so
/// without sticky failure the state flips to CONNECTING in the same poll).
#[tokio::test]
async fn failure_is_sticky_so_connect_and_fail_fast_calls_see_it() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.switch(ProxyMode::Freeze).await;
    let mut config = quick();
    config.connect_timeout = MS(300);
    config.backoff = ephemos::config::model::BackoffConfig {
        base_delay: MS(50),
        multiplier: 1.0,
        jitter: 0.0,
        max_delay: MS(50),
    };
    let channel = channel(proxy.addr(), config);
    let mut watcher = channel.state_watcher();
    let seen = tokio::spawn(async move {
        let mut state = watcher.state();
        while state != ConnectivityState::TransientFailure && state != ConnectivityState::Shutdown {
            state = watcher.wait_for_state_change(state).await;
        }
        state
    });

    let error = tokio::time::timeout(Duration::from_secs(2), channel.connect())
        .await
        .expect("connect() reports the failure within 2 s")
        .unwrap_err();
    assert!(matches!(error, ConnectError::Timeout { .. }), "{error:?}");

    let started = std::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), client(&channel).unary(request("x")))
        .await
        .expect("a call without a deadline fails fast")
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("timed out"), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    eventually(MS(3000), "it keeps trying after its backoff", || {
        proxy.accepts().len() >= 3
    })
    .await;
    assert_eq!(
        channel.state(),
        ConnectivityState::TransientFailure,
        "while trying again"
    );

    let state = tokio::time::timeout(Duration::from_secs(2), seen)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state,
        ConnectivityState::TransientFailure,
        "a watcher saw the failure"
    );
    assert_eq!(channel.state(), ConnectivityState::TransientFailure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_when_every_connection_failed_says_none_is_ready_and_why() {
    let closed: Vec<_> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .collect();
    let channel = common::echo_target(&format!(
        r#"
[targets.echo]
service = "echo.v1.Echo"
endpoints = {}
identity = "plaintext"
retry = false
"#,
        common::endpoints_of(closed.iter().copied())
    ));
    let error = channel.connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Transport { .. }), "{error:?}");

    // The call tried no connection of its own: the status says so, and why they failed.
    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with(
            "target `echo`: no connection is READY (2 in TRANSIENT_FAILURE); the last \
             failure: cannot connect to 127.0.0.1:"
        ),
        "{status:?}"
    );
}
