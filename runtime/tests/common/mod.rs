//! Shared by the runtime tests: quick settings and a client over a channel.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::Duration;

use ephemos::config::model::{ConnectionConfig, KeepaliveConfig};
use ephemos::{Address, Channel, ConnectivityState};
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::pb::echo_client::EchoClient;

pub const MS: fn(u64) -> Duration = Duration::from_millis;

pub use ephemos_test_support::quick;

pub fn keepalive(time: Duration, timeout: Duration) -> Option<KeepaliveConfig> {
    Some(KeepaliveConfig {
        time,
        timeout,
        permit_without_stream: true,
    })
}

pub fn channel(addr: std::net::SocketAddr, config: ConnectionConfig) -> Channel {
    Channel::plaintext(Address::from(addr))
        .target_name("echo")
        .connection(config)
        .connect_lazy()
        .unwrap()
}

pub fn client(channel: &Channel) -> EchoClient<Channel> {
    EchoClient::new(channel.clone())
}

pub fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
        ..Default::default()
    }
}

/// Waits (at most `within`) until the channel is in `state`.
pub async fn wait_for(channel: &Channel, state: ConnectivityState, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut current = channel.state();
    while current != state {
        match tokio::time::timeout_at(deadline, channel.wait_for_state_change(current)).await {
            Ok(next) => current = next,
            Err(_) => panic!("channel still {current} after {within:?}, wanted {state}"),
        }
    }
}

/// Polls `condition` every 10 ms for at most `within`.
pub async fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not true after {within:?}: {what}"
        );
        tokio::time::sleep(MS(10)).await;
    }
}

/// A channel for target `echo` of a `connections.toml` given as text, which must check
/// without errors.
pub fn echo_target(toml: &str) -> Channel {
    let checked = ephemos::config::check_str("c.toml", toml);
    assert!(
        !checked.diagnostics.has_errors(),
        "{:?}",
        checked.diagnostics
    );
    Channel::from_target(&checked.target("echo").unwrap().config)
        .connect_lazy()
        .unwrap()
}

/// The `endpoints = [...]` value for these addresses.
pub fn endpoints_of(addresses: impl IntoIterator<Item = std::net::SocketAddr>) -> String {
    let quoted: Vec<String> = addresses.into_iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// `n` unary calls, one after another; each must succeed.
pub async fn unary_calls(channel: &Channel, n: usize) {
    let mut client = client(channel);
    for i in 0..n {
        client
            .unary(request(&i.to_string()))
            .await
            .unwrap_or_else(|status| panic!("call {i} failed: {status:?}"));
    }
}

/// Whether every connection the channel shows is READY.
pub fn all_ready(channel: &Channel) -> bool {
    channel
        .stats()
        .connections
        .iter()
        .all(|c| c.state == ConnectivityState::Ready)
}
