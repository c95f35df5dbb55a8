//! `dns:///` endpoints against a real DNS server on loopback (tests/support's, built on
//! hickory-proto) and echo servers on two loopback addresses with the same port: every
//! address the name resolves to is an endpoint of the pool, the name is resolved again
//! when its TTL runs out and when a connection is lost, and a vanished address's
//! connections are drained. Calls and questions are counted at the servers.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{client, eventually, request, unary_calls};
use ephemos::config::model::PoolConfig;
use ephemos::{Address, Channel, ConnectivityState};
use ephemos_test_support::{DnsServer, EchoServer};
use tonic::Code;

const SOON: Duration = Duration::from_secs(15);

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Echo servers on 127.0.0.1 and 127.0.0.2, on the same port.
async fn two_servers() -> (EchoServer, EchoServer) {
    for _ in 0..20 {
        let a = EchoServer::start("a").await;
        let port = a.addr().port();
        let b_addr = SocketAddr::new(loopback(2), port);
        if std::net::TcpListener::bind(b_addr).is_ok() {
            return (a, EchoServer::start_on(b_addr, "b").await);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

fn channel(dns: &DnsServer, port: u16, size: u32) -> Channel {
    let name = Address::parse(&format!("dns:///echo.test:{port}")).unwrap();
    Channel::plaintext(name)
        .target_name("echo")
        .connection(common::quick())
        .dns_servers([dns.addr()])
        .pool(PoolConfig {
            size,
            max_size: size,
            ..ephemos::config::Preset::Production.pool_config()
        })
        .connect_lazy()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_of_the_name_is_an_endpoint_followed_at_its_ttl() {
    let (a, b) = two_servers().await;
    let port = a.addr().port();
    let dns = DnsServer::start(1, [loopback(1)]).await;
    let channel = channel(&dns, port, 2);

    unary_calls(&channel, 20).await;
    assert_eq!((a.calls(), b.calls()), (20, 0));
    assert_eq!(
        a.connections_accepted(),
        2,
        "pool.size connections to the address"
    );

    // The name gains an address: at the next resolution (TTL 1 s) it is an endpoint.
    dns.set([loopback(1), loopback(2)]);
    eventually(SOON, "b takes calls", || {
        let channel = channel.clone();
        tokio::spawn(async move { unary_calls(&channel, 5).await });
        b.calls() > 0
    })
    .await;
    // The first of b's connections takes calls as soon as it is READY; the second may
    // still be on its way (it is dialled when a pick first finds it IDLE).
    eventually(SOON, "pool.size connections to b", || {
        b.connections_accepted() == 2
    })
    .await;
    let stats = channel.stats();
    assert_eq!(stats.connections.len(), 4, "{stats}");

    // It loses the first: its connections leave the picks and are drained.
    dns.set([loopback(2)]);
    eventually(SOON, "a's connections are gone", || {
        let endpoint = a.addr().to_string();
        !channel
            .stats()
            .connections
            .iter()
            .any(|c| c.endpoint == endpoint)
    })
    .await;
    let a_calls = a.calls();
    unary_calls(&channel, 50).await;
    assert_eq!(a.calls(), a_calls, "a vanished address got calls");
    assert!(dns.questions() >= 3, "resolved again at the TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_fails_fast_with_the_resolvers_reason() {
    let dns = DnsServer::start(1, []).await;
    let channel = channel(&dns, 1, 1);
    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("cannot resolve dns:///echo.test:1"),
        "{status:?}"
    );
    assert_eq!(channel.state(), ConnectivityState::TransientFailure);
    assert!(dns.questions() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_makes_the_name_resolve_again_before_its_ttl() {
    let (a, b) = two_servers().await;
    let port = a.addr().port();
    // A TTL of an hour: only a lost connection asks again.
    let dns = DnsServer::start(3600, [loopback(1)]).await;
    let channel = channel(&dns, port, 1);
    unary_calls(&channel, 5).await;
    let asked = dns.questions();
    // The name moves to b; a goes away, and its connection with it.
    dns.set([loopback(2)]);
    a.stop().await;
    eventually(SOON, "the name resolved again", || dns.questions() > asked).await;
    eventually(SOON, "calls reach b", || {
        let channel = channel.clone();
        tokio::spawn(async move {
            let _ = client(&channel).unary(request("x")).await;
        });
        b.calls() > 0
    })
    .await;
}
