//! What the facade decides once per call and the layers below only read: the deadline
//! (an `Instant`, never re-derived, so a retry's attempt never gets a fresh timeout),
//! wait-for-ready, the method's call policy, and a connection the next attempt should
//! avoid.

use http::Request;
use tokio::time::Instant;

use super::SubchannelId;

/// Per-call settings, in the request's extensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallOptions {
    /// When the whole call must be over: the smaller of the request's `grpc-timeout` and
    /// the method's `timeout`. Each attempt tells the server the time left.
    pub(crate) deadline: Option<Instant>,
    /// Wait for a connection instead of failing fast while every one is in
    /// TRANSIENT_FAILURE.
    pub(crate) wait_for_ready: bool,
    /// The connection that refused the previous attempt: the pool picks another one
    /// when there is one (gRFC A6 transparent retry).
    pub(crate) avoid: Option<SubchannelId>,
    /// The method's call policy (retry or hedging), as an index into the channel's
    /// policies; `None`: no policy, only transparent retries.
    pub(crate) policy: Option<u16>,
}

impl CallOptions {
    /// The options of a request (the defaults when the facade set none: a layer used on
    /// its own).
    pub(crate) fn of<B>(request: &Request<B>) -> CallOptions {
        request
            .extensions()
            .get::<CallOptions>()
            .copied()
            .unwrap_or_default()
    }
}
