//! # ephemos
//!
//! The ephemos runtime: a gRPC [`Channel`] for tonic clients that does what tonic's own
//! channel does not: gRPC connection backoff, connectivity states with
//! [`Channel::wait_for_state_change`] (failure is sticky, gRFC A62), HTTP/2 keepalive per
//! gRFC A8 (the channel doubles its interval after GOAWAY `too_many_pings`), idle timeout,
//! GOAWAY draining, gRFC A6 retries (transparent retry of calls the server never
//! processed, and each method's retry or hedging policy with throttling and server
//! pushback),
//! message-size limits in both directions, cancellation on the wire, SPIFFE mTLS, and
//! failures reported with the right gRPC status code, whatever the server sends.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use ephemos::{Channel, ConnectivityState};
//!
//! let channel = Channel::plaintext("127.0.0.1:50051".parse::<ephemos::Address>()?)
//!     .target_name("echo")
//!     .connect_lazy()?;                    // no I/O yet; settings checked
//! assert_eq!(channel.state(), ConnectivityState::Idle);
//! channel.connect().await?;                // or just make a call
//! // let mut client = EchoClient::new(channel.clone());
//! println!("{}", channel.stats());         // connections, load, settings in force
//! # Ok(()) }
//! ```
//!
//! ## Where it sits: a stack of layers
//!
//! ```text
//! Channel        the facade, tower::Service<http::Request<tonic::body::Body>> (the T of any
//!  │             tonic client): method policy, the call's deadline set once, response body
//!  └ retry       owns the request body and its replay buffer; A6 retries
//!    └ pool      size (to max_size) subchannels per endpoint or resolved address, the
//!                pick, health checking, growth, cleanup, DNS, in-flight calls
//!      └ subchannel  one HTTP/2 connection (hyper): state, backoff, keepalive, idle, GOAWAY
//!        └ connector TCP or unix socket, SPIFFE mTLS (spiffe-rustls), the frame watch
//! ```
//!
//! Each layer is a `tower::Service` tested on its own; what passes between them (the
//! call's options in the request's extensions, an attempt's outcome: unsent, refused
//! unprocessed, or failed) is described in the repository's ARCHITECTURE.md. Settings
//! come from `ephemos-config` ([`ConnectionConfig`], [`TargetConfig`]), usually resolved
//! from `connections.toml`; [`Channel::from_target`] takes a resolved target, and settings
//! given in code are checked with the file's rules. SPIFFE mTLS comes from [`identity`]
//! (SVID sources: Workload API, files, an in-process dev CA) and [`server`] gives tonic
//! servers the same mTLS. Telemetry: gRPC's standard client metrics (gRFC A66, A94, A96)
//! and `ephemos.*` through the `metrics` facade (install any recorder; with none,
//! nothing is recorded), `grpc.call` and `grpc.attempt` tracing spans, and
//! [`interceptor`]s over each call's outgoing metadata
//! ([`ChannelBuilder::interceptor`]).
//!
//! ## The model
//!
//! - **Lazy**: nothing connects before the first call or [`Channel::connect`].
//! - **States**: IDLE → CONNECTING → READY; a failed attempt → TRANSIENT_FAILURE, which
//!   stays while the subchannel tries again after the backoff, until it is READY; a lost
//!   connection, a GOAWAY or the idle timeout → IDLE, and the next call reconnects. The
//!   channel's state aggregates its subchannels'.
//! - **Backoff** (gRPC `connection-backoff.md`): the first retry after `base`, each next
//!   `min(previous * multiplier, max)`, each +-jitter; an attempt's deadline is
//!   `max(connect_timeout, backoff)`; READY (the server's SETTINGS arrived) resets it.
//! - **Fail fast**: a call made while every subchannel is in TRANSIENT_FAILURE fails with
//!   UNAVAILABLE carrying the last connect error, unless the method has `wait_for_ready`.
//! - **Deadlines**: a call's `grpc-timeout` (or its method's `timeout`) is one deadline for
//!   the wait for a connection, every attempt, the response headers and the whole body;
//!   the server is told the time left, in the finest unit that fits.
//! - **Cancelling**: a deadline, a response over the limit, or a dropped response resets
//!   the stream (RST_STREAM CANCEL), its request side included.
//!
//! ## Features
//!
//! - `testing`: for tests only, never in production. Lowers the keepalive (gRFC A8, 10 s)
//!   and idle-timeout (1 s) floors to 1 ms so tests run those timers in milliseconds, and
//!   serves the in-process Workload API agent on TCP ([`identity::LocalAgent`]'s
//!   `serve_tcp`), which lets any local process fetch its private key.

mod call;
mod channel;
mod connector;
mod error;
pub mod identity;
pub mod interceptor;
mod pool;
mod protocol;
mod retry;
pub mod server;
mod state;
mod subchannel;
mod telemetry;
#[cfg(test)]
mod testing;

pub use channel::{
    BakedTarget, BuildError, Channel, ChannelBuilder, ChannelStats, ConnectionStats,
    PROFILE_VARIABLE, ResponseBody, ResponseFuture, StateWatcher, http2_setting_name,
};
pub use ephemos_config::model::{ConnectionConfig, TargetConfig};
pub use ephemos_config::value::Address;
pub use error::{BoxError, ConnectError};
pub use state::ConnectivityState;

/// The configuration model (re-exported `ephemos-config`).
pub use ephemos_config as config;

/// `#[ephemos::client(...)]`: bakes a client's configuration, from `connections.toml`
/// (the target named by `target = "..."`, else by the struct's name in snake case) and
/// the attribute's arguments, into the binary, with every profile of the file. On
/// `pub struct Payments(PaymentsClient<ephemos::Channel>);`, kept as written, it adds
/// `TARGET`, `CONFIG`, `PROFILES`, `BAKED`, `SERVICE_CONFIG_JSON`, `connect()`,
/// `connect_lazy()`, `builder()`, `builder_for_profile()`, `from_channel()`, and `Deref`
/// to the tonic client; with a second field of type `ephemos::Channel`, `channel()`.
/// Besides settings, the attribute takes code: `interceptor = path::to::function`
/// (repeatable; each a `fn(&str, &mut MetadataMap) -> Result<(), Status>`, run in order
/// on every call, see [`interceptor`]) and `propagate_identity = true` (see
/// [`ChannelBuilder::propagate_identity`]); the generated `builder()` adds both.
/// docs/design.md section 1 has the details.
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

/// The crates generated code names (`ephemos-build` points prost's, tonic's and the
/// codec's paths here), so a user's crate needs no direct dependency on them. Not an
/// API: its contents follow ephemos-build.
#[doc(hidden)]
pub mod __private {
    pub use ::prost;
    pub use ::prost_types;
    pub use ::tonic;
    pub use ::tonic_prost;

    pub use crate::protocol::codec::{ProstCodec, ProstDecoder};
}

/// The code `ephemos-build` generated for a proto package:
/// `mod pb { ephemos::include_proto!("payments.v1"); }`. Like `tonic::include_proto!`,
/// but the code names tonic and prost through ephemos.
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// The clients `ephemos_build::configure().generate_clients(true)` wrote: one
/// `#[ephemos::client]` struct per target whose `service` is in the protos (target
/// `order_history` is `OrderHistory`), and the protos' code in a `proto` module.
#[macro_export]
macro_rules! include_clients {
    () => {
        include!(concat!(env!("OUT_DIR"), "/ephemos_clients.rs"));
    };
}
