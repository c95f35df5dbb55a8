//! Why a connection could not be made, and how failures become gRPC statuses.

use std::error::Error as StdError;
use std::time::Duration;

use tonic::{Code, Status};

/// The boxed error type of the channel's `tower::Service` (always a [`Status`] inside).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a connection attempt failed: which step, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The name did not resolve (DNS), or resolved to nothing.
    #[error("cannot resolve {address}: {message}")]
    Resolve {
        /// The address as configured.
        address: String,
        /// The resolver's message.
        message: String,
    },
    /// The TCP (or unix socket) connection failed.
    #[error("cannot connect to {peer}: {message}")]
    Transport {
        /// The socket address or path dialled.
        peer: String,
        /// The operating system's message.
        message: String,
    },
    /// The TLS handshake failed: the server's certificate was refused (by the X509-SVID
    /// rules or the authorization), or the server refused ours.
    #[error("TLS handshake with {peer} failed: {message}")]
    Tls {
        /// The socket address dialled.
        peer: String,
        /// Which rule was broken, naming the server's SPIFFE ID when it was refused.
        message: String,
    },
    /// The client's own identity could not be had (no Workload API, unreadable files).
    #[error("no client identity: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    /// The HTTP/2 handshake failed (the peer is not an HTTP/2 server, or closed).
    #[error("HTTP/2 handshake with {peer} failed: {message}")]
    Http2 {
        /// The peer.
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// The attempt did not finish within its deadline.
    #[error("connecting to {address} timed out after {after:?} ({step})")]
    Timeout {
        /// The address as configured.
        address: String,
        /// The attempt's deadline.
        after: Duration,
        /// The step it was in.
        step: &'static str,
    },
    /// Connected, but the client-side health check (gRFC A17) says the server takes no
    /// calls: it answered NOT_SERVING (or SERVICE_UNKNOWN), or the Watch call failed.
    #[error("{peer} is connected but not healthy: {message}")]
    Unhealthy {
        /// The peer.
        peer: String,
        /// What the health check said.
        message: String,
    },
    /// The channel was dropped.
    #[error("the channel was shut down")]
    Shutdown,
}

/// A status for a call that failed because of the channel, naming the target.
pub(crate) fn status(code: Code, target: &str, message: impl std::fmt::Display) -> Status {
    Status::new(code, format!("target `{target}`: {message}"))
}

/// The first error of type `E` in a `source()` chain, looking inside `io::Error`s too
/// (whose `source()` skips the error they wrap).
pub(crate) fn find<'a, E: StdError + 'static>(
    mut error: &'a (dyn StdError + 'static),
) -> Option<&'a E> {
    loop {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(wrapped) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(found) = find::<E>(wrapped)
        {
            return Some(found);
        }
        error = error.source()?;
    }
}

/// An error and its sources, joined: hyper's own messages say little on their own.
pub(crate) fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
