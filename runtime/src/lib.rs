//! # ephemos
//!
//! The ephemos runtime: a gRPC [`Channel`] for tonic clients that does what tonic's own
//! channel does not: gRPC connection backoff, connectivity states with
//! [`Channel::wait_for_state_change`], HTTP/2 keepalive per gRFC A8 (doubling the
//! interval after GOAWAY `too_many_pings`), idle timeout, GOAWAY draining, message-size
//! limits in both directions, and failures reported with the right gRPC status code.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use ephemos::{Channel, ConnectivityState};
//!
//! let channel = Channel::plaintext("127.0.0.1:50051".parse::<ephemos::Address>()?)
//!     .target_name("echo")
//!     .connect_lazy();                     // no I/O yet
//! assert_eq!(channel.state(), ConnectivityState::Idle);
//! channel.connect().await?;                // or just make a call
//! // let mut client = EchoClient::new(channel.clone());
//! # Ok(()) }
//! ```
//!
//! ## Where it sits
//!
//! ```text
//! Channel        tower::Service<http::Request<tonic::body::Body>>: the T of any tonic client
//!  └ subchannel  one HTTP/2 connection (hyper) per endpoint: state, backoff, keepalive, idle
//!    └ tls       SPIFFE mTLS (spiffe-rustls over spiffe::X509Source): SVID, peer authorization
//!      └ transport TCP (DNS, TCP_NODELAY) or unix socket
//! ```
//!
//! Settings come from `ephemos-config` ([`ConnectionConfig`], [`TargetConfig`]), usually
//! resolved from `connections.toml`; [`Channel::from_target`] takes a resolved target.
//! SPIFFE mTLS comes from [`identity`] (SVID sources: Workload API, files, an in-process
//! dev CA) and [`server`] gives tonic servers the same mTLS. Retries, pooling and
//! telemetry are layers still to come (see the project's DESIGN.md).
//!
//! ## The model
//!
//! - **Lazy**: nothing connects before the first call or [`Channel::connect`].
//! - **States**: IDLE → CONNECTING → READY; a failed attempt → TRANSIENT_FAILURE, then a
//!   new attempt after the backoff; a lost connection, a GOAWAY or the idle timeout →
//!   IDLE, and the next call reconnects. The channel's state aggregates its subchannels'.
//! - **Backoff** (gRPC `connection-backoff.md`): the first retry after `base`, each next
//!   `min(previous * multiplier, max)`, each +-jitter; an attempt's deadline is
//!   `max(connect_timeout, backoff)`; READY (the server's SETTINGS arrived) resets it.
//! - **Fail fast**: a call made while every subchannel is in TRANSIENT_FAILURE fails with
//!   UNAVAILABLE carrying the last connect error, unless the method has `wait_for_ready`.
//! - **Deadlines**: a call's `grpc-timeout` (or its method's `timeout`) bounds the wait
//!   for a connection and for the response headers.

mod call;
mod channel;
mod connector;
mod error;
pub mod identity;
mod pool;
mod protocol;
mod retry;
pub mod server;
mod state;
mod subchannel;
#[cfg(test)]
mod testing;

pub use channel::{
    BuildError, Channel, ChannelBuilder, ChannelStats, ConnectionStats, ResponseBody,
    ResponseFuture, StateWatcher,
};
pub use ephemos_config::model::{ConnectionConfig, TargetConfig};
pub use ephemos_config::value::Address;
pub use error::{BoxError, ConnectError};
pub use state::ConnectivityState;

/// The configuration model (re-exported `ephemos-config`).
pub use ephemos_config as config;

/// `#[ephemos::client(...)]`: bakes a client's configuration, from `connections.toml`
/// and the attribute's arguments, into the binary. On `pub struct Payments(PaymentsClient<ephemos::Channel>);`
/// it adds `TARGET`, `CONFIG`, `SERVICE_CONFIG_JSON`, `connect()`, `connect_lazy()`,
/// `builder()`, `channel()`, `Clone` and `Deref` to the tonic client.
pub use ephemos_macros::client;
/// The same attribute, under the name the project's documents use.
pub use ephemos_macros::client as ephemos_client;

/// Why a client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Its configuration cannot be turned into a channel (its identity, say).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// It did not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}
