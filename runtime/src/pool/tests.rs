//! The pool on its own, over real echo servers: the pick (round-robin, avoiding the
//! connection that refused the last attempt), fail fast, and per-subchannel in-flight
//! counts released when the response body ends or is dropped.

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use ephemos_test_support::{EchoServer, Proxy, ProxyMode};
use http_body_util::BodyExt;
use tonic::Code;
use tower::{Service, ServiceExt};

use super::Pool;
use super::pick::{Scan, scan};
use crate::call::{AttemptError, CallOptions};
use crate::testing::{echo_request, quick};

fn pool(addresses: &[std::net::SocketAddr]) -> Pool {
    let endpoints: Vec<_> = addresses.iter().map(|a| (*a).into()).collect();
    Pool::new(
        "echo".into(),
        &endpoints,
        quick(),
        super::PoolSettings {
            config: ephemos_config::Preset::Production.pool_config(),
            health: None,
            name_servers: super::dns::NameServers::System,
        },
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pick_avoids_the_connection_that_refused_unless_it_is_the_only_one() {
    let (a, b) = (EchoServer::start("a").await, EchoServer::start("b").await);
    let pool = pool(&[a.addr(), b.addr()]);
    tokio::time::timeout(Duration::from_secs(5), async {
        while pool
            .subchannels()
            .iter()
            .any(|s| s.state() != crate::ConnectivityState::Ready)
        {
            let _ = pool.connect().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both READY");
    let next = AtomicUsize::new(0);
    let first = pool.subchannels()[0].id();
    for _ in 0..4 {
        match scan(pool.subchannels(), pool.members(), &next, Some(first), None) {
            Scan::Ready(index, _) => assert_eq!(index, 1, "picked the avoided one"),
            _ => panic!("no pick"),
        }
    }
    let alone = Pool::of("echo".into(), Vec::new(), pool.channel().clone(), 1);
    assert!(matches!(
        scan(alone.subchannels(), alone.members(), &next, None, None),
        Scan::Shutdown
    ));

    let single = self::pool(&[a.addr()]);
    single.connect().await.unwrap();
    let only = single.subchannels()[0].id();
    assert!(matches!(
        scan(
            single.subchannels(),
            single.members(),
            &next,
            Some(only),
            None
        ),
        Scan::Ready(0, _)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_counted_in_flight_on_their_own_subchannel() {
    let (a, b) = (EchoServer::start("a").await, EchoServer::start("b").await);
    let mut pool = pool(&[a.addr(), b.addr()]);
    let response = pool
        .ready()
        .await
        .unwrap()
        .call(echo_request("x"))
        .await
        .unwrap();
    let loads: Vec<usize> = pool
        .subchannels()
        .iter()
        .map(|s| s.load().in_flight())
        .collect();
    assert_eq!(loads.iter().sum::<usize>(), 1, "{loads:?}");
    // Read to its end, the body still alive: the end, not the drop, releases the call.
    let mut body = response.into_body();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        if let Ok(t) = frame.unwrap().into_trailers() {
            trailers = Some(t);
        }
    }
    assert!(trailers.is_some(), "the whole response was read");
    assert_eq!(
        pool.subchannels()
            .iter()
            .map(|s| s.load().in_flight())
            .sum::<usize>(),
        0,
        "released at the end of the body"
    );
    drop(body);

    let response = pool.call(echo_request("y")).await.unwrap();
    drop(response);
    assert_eq!(
        pool.subchannels()
            .iter()
            .map(|s| s.load().in_flight())
            .sum::<usize>(),
        0,
        "released when the body is dropped"
    );
    assert_eq!(a.calls() + b.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pick_fails_fast_once_every_subchannel_failed_unless_it_waits_for_ready() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.switch(ProxyMode::Refuse).await;
    let mut pool = pool(&[proxy.addr()]);
    let Err(error) = pool.call(echo_request("x")).await else {
        panic!("a call succeeded with every connection refused");
    };
    let AttemptError::NoConnection(status) = error else {
        panic!("a failed pick is final, not a failed attempt: {error:?}");
    };
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("cannot connect"), "{status:?}");

    let mut waiting = echo_request("waits");
    waiting.extensions_mut().insert(CallOptions {
        wait_for_ready: true,
        ..CallOptions::default()
    });
    let call = tokio::spawn({
        let mut pool = pool.clone();
        async move { pool.call(waiting).await.map(drop) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "a wait-for-ready call waits");
    proxy.switch(ProxyMode::Forward).await;
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("it gets a connection")
        .unwrap()
        .unwrap();
}
