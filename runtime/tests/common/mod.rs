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
