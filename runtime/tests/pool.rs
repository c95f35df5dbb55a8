//! The pool against real tonic servers, counted at the servers: how many connections a
//! channel opens (its `pool.size` per endpoint, across endpoints) and how calls spread
//! over them (power of two choices on the calls in flight).

mod common;

use std::time::Duration;

use common::{client, eventually, request};
use ephemos::Channel;
use ephemos_test_support::EchoServer;

/// A channel for target `echo` of `preset`, with `extra` lines, over `servers`.
fn channel_of(servers: &[&EchoServer], preset: &str, extra: &str) -> Channel {
    common::echo_target(&format!(
        "[targets.echo]\nendpoints = {}\nidentity = \"plaintext\"\npreset = \"{preset}\"\n\
         service = \"echo.v1.Echo\"\n{extra}",
        common::endpoints_of(servers.iter().map(|s| s.addr()))
    ))
}

/// `tasks` concurrent tasks making `calls` unary calls each; every one must succeed.
async fn load(channel: &Channel, tasks: usize, calls: usize) {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut client = client(channel);
        handles.push(tokio::spawn(async move {
            for c in 0..calls {
                client
                    .unary(request(&format!("{t}.{c}")))
                    .await
                    .unwrap_or_else(|status| panic!("call {t}.{c} failed: {status:?}"));
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_throughput_opens_ten_connections_and_spreads_the_calls_over_them() {
    let server = EchoServer::start("s").await;
    let channel = channel_of(&[&server], "high_throughput", "");
    load(&channel, 200, 20).await;

    assert_eq!(server.calls(), 4000);
    assert_eq!(
        server.connections_accepted(),
        10,
        "connections the server accepted"
    );
    let per_connection = server.calls_per_connection();
    assert_eq!(
        per_connection.len(),
        10,
        "connections that carried calls: {per_connection:?}"
    );
    let fair = 4000 / 10;
    for (peer, calls) in &per_connection {
        assert!(
            *calls <= 2 * fair,
            "{peer} carried {calls} calls, over twice its fair share {fair}: {per_connection:?}"
        );
    }
    let stats = channel.stats();
    assert_eq!(stats.pool_size, 10);
    assert_eq!(stats.connections.len(), 10);
    assert_eq!(stats.pool_hits + stats.pool_misses, 4000, "{stats}");
    assert!(
        stats
            .to_string()
            .contains("pool 10 per endpoint (up to 10), 10 connections"),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pooling_one_connection_carries_everything() {
    let server = EchoServer::start("s").await;
    let channel = channel_of(&[&server], "production", "");
    load(&channel, 200, 5).await;
    assert_eq!(server.calls(), 1000);
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(channel.stats().pool_size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_applies_to_every_endpoint_and_both_endpoints_share_the_calls() {
    let (a, b) = (EchoServer::start("a").await, EchoServer::start("b").await);
    let channel = channel_of(&[&a, &b], "production", "pool = { size = 3 }\n");
    load(&channel, 60, 20).await;
    assert_eq!(a.connections_accepted(), 3);
    assert_eq!(b.connections_accepted(), 3);
    assert_eq!(a.calls() + b.calls(), 1200);
    for server in [&a, &b] {
        assert!(
            server.calls() >= 1200 / 4,
            "one endpoint took {} of 1200 calls",
            server.calls()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_pool_connects_every_connection_before_any_call() {
    let server = EchoServer::start("s").await;
    let channel = channel_of(
        &[&server],
        "production",
        "pool = { size = 4, warm = true }\n",
    );
    eventually(Duration::from_secs(10), "four connections accepted", || {
        server.connections_accepted() == 4
    })
    .await;
    assert_eq!(server.calls(), 0);
    eventually(Duration::from_secs(10), "four connections READY", || {
        common::all_ready(&channel)
    })
    .await;
    // Every call now finds a connection at once.
    load(&channel, 4, 5).await;
    let stats = channel.stats();
    assert_eq!((stats.pool_hits, stats.pool_misses), (20, 0), "{stats}");
}
