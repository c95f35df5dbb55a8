//! The pool grows (gRFC A105) against a real server that lets each connection carry two
//! calls (its SETTINGS_MAX_CONCURRENT_STREAMS), and shrinks back in cleanup once the
//! calls end. Connections are counted at the server and at a proxy in front of it.

mod common;

use std::time::Duration;

use common::{client, eventually, request};
use ephemos::Channel;
use ephemos_test_support::pb::{EchoReply, EchoRequest};
use ephemos_test_support::{EchoServer, Proxy};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const SOON: Duration = Duration::from_secs(10);

fn channel(address: std::net::SocketAddr, pool: &str) -> Channel {
    common::echo_target(&format!(
        "[targets.echo]\naddress = \"{address}\"\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\npool = {pool}\n"
    ))
}

/// A bidi call kept open: its sender and its replies.
struct Open {
    tx: mpsc::Sender<EchoRequest>,
    replies: tonic::Streaming<EchoReply>,
}

async fn open(channel: &Channel, name: &str) -> Open {
    let (tx, rx) = mpsc::channel(4);
    let mut replies = client(channel)
        .bidi(ReceiverStream::new(rx))
        .await
        .expect("bidi")
        .into_inner();
    tx.send(request(name)).await.unwrap();
    let reply = replies.next().await.expect("a reply").expect("bidi item");
    assert_eq!(reply.message, name);
    Open { tx, replies }
}

async fn close(call: Open) {
    let Open { tx, mut replies } = call;
    drop(tx);
    assert!(replies.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_full_opens_another_up_to_max_size_and_cleanup_shrinks_back() {
    let server = EchoServer::start_limited("s", 2).await;
    let proxy = Proxy::start(server.addr()).await;
    let channel = channel(
        proxy.addr(),
        "{ size = 1, max_size = 3, cleanup_interval = \"200ms\" }",
    );

    let mut calls = Vec::new();
    for i in 0..6 {
        let call = tokio::time::timeout(SOON, open(&channel, &format!("c{i}")))
            .await
            .unwrap_or_else(|_| panic!("call {i} waited for a connection that never came"));
        calls.push(call);
    }
    assert_eq!(server.connections_accepted(), 3, "{}", channel.stats());
    let mut per_connection: Vec<usize> = server.calls_per_connection().into_values().collect();
    per_connection.sort_unstable();
    assert_eq!(per_connection, [2, 2, 2], "two calls on each connection");
    let stats = channel.stats();
    assert_eq!(stats.pool_grown, 2, "{stats}");
    assert_eq!(stats.connections.len(), 3, "{stats}");

    // At max_size, a seventh call queues on a full connection (HTTP/2 holds it until a
    // stream is free) instead of opening a fourth.
    let seventh = tokio::spawn({
        let channel = channel.clone();
        async move { close(open(&channel, "c6").await).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.connections_accepted(), 3, "grew past max_size");
    // Queued on one of the three: it runs once that one has a free stream.
    while !seventh.is_finished() && !calls.is_empty() {
        close(calls.remove(0)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::timeout(SOON, seventh)
        .await
        .expect("the queued call ran once a stream was free")
        .unwrap();
    assert_eq!(server.connections_accepted(), 3, "grew past max_size");

    // The calls end: cleanup gives back the grown connections, one per interval.
    for call in calls {
        close(call).await;
    }
    eventually(SOON, "back to one connection", || {
        proxy.open_connections() == 1
    })
    .await;
    let stats = channel.stats();
    assert_eq!(stats.pool_evictions, 2, "{stats}");
    assert_eq!(stats.connections.len(), 1, "{stats}");
    // The one left still works.
    let mut client = client(&channel);
    client.unary(request("after")).await.unwrap();
    assert_eq!(server.connections_accepted(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_streams_per_connection_grows_below_the_servers_limit() {
    let server = EchoServer::start("s").await;
    let channel = channel(
        server.addr(),
        "{ size = 1, max_size = 4, max_streams_per_connection = 1, cleanup_interval = \"1h\" }",
    );
    let mut calls = Vec::new();
    for i in 0..4 {
        calls.push(
            tokio::time::timeout(SOON, open(&channel, &format!("c{i}")))
                .await
                .expect("a connection"),
        );
    }
    assert_eq!(server.connections_accepted(), 4);
    assert_eq!(server.calls_per_connection().len(), 4);
    for call in calls {
        close(call).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_does_not_grow_queues_on_its_connections() {
    let server = EchoServer::start_limited("s", 2).await;
    let channel = channel(server.addr(), "{ size = 1 }");
    let mut calls = Vec::new();
    for i in 0..2 {
        calls.push(open(&channel, &format!("c{i}")).await);
    }
    let third = tokio::spawn({
        let channel = channel.clone();
        async move { close(open(&channel, "c2").await).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a third stream on a connection of two"
    );
    assert_eq!(server.connections_accepted(), 1);
    close(calls.pop().unwrap()).await;
    tokio::time::timeout(SOON, third).await.unwrap().unwrap();
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_configs_connection_scaling_is_the_pools_max_size() {
    let server = EchoServer::start_limited("s", 1).await;
    let config = ephemos::config::ServiceConfig::parse_json(
        r#"{"connectionScaling": {"maxConnectionsPerSubchannel": 3}}"#,
    )
    .unwrap();
    let channel = Channel::plaintext(ephemos::Address::from(server.addr()))
        .target_name("echo")
        .service_config(config)
        .connect_lazy()
        .unwrap();
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(
            tokio::time::timeout(SOON, open(&channel, &format!("c{i}")))
                .await
                .expect("a connection"),
        );
    }
    assert_eq!(server.connections_accepted(), 3);
    assert_eq!(channel.stats().pool_max_size, 3);
    for call in calls {
        close(call).await;
    }
}
