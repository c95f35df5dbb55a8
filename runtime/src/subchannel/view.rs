//! What callers see of a subchannel: its state, the live connection while READY, and the
//! last connect error, published by the driver on a `watch`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use ephemos_config::value::SpiffeId;
use hyper::client::conn::http2::SendRequest;

use tokio::time::Instant;

use super::health::Health;
use crate::error::ConnectError;
use crate::retry::AttemptBody;
use crate::state::ConnectivityState;

/// A READY connection as callers see it.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) sender: SendRequest<AttemptBody>,
    /// The server's verified SPIFFE ID, over TLS.
    pub(crate) server_id: Option<SpiffeId>,
    /// Set as soon as the server's GOAWAY is read, or an identity rotation retires the
    /// connection: take no new calls.
    pub(crate) draining: Arc<AtomicBool>,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, when it sent one.
    pub(crate) max_concurrent_streams: Option<u32>,
    /// The settings the server has sent, (identifier, value), the latest value of each
    /// (bounded: `connector::frame_watch::merge_settings`).
    pub(crate) server_settings: Arc<[(u16, u32)]>,
    /// When the server's leaf certificate ends (TLS only).
    pub(crate) server_certificate_expiry: Option<SystemTime>,
    /// The SPIFFE ID of the SVID this client presented on the connection (TLS only).
    pub(crate) client_id: Option<SpiffeId>,
    /// The caller-ID metadata each attempt carries, when the channel propagates it.
    pub(crate) caller_header: Option<http::HeaderValue>,
}

impl Connection {
    /// Whether a new call may be sent on this connection.
    pub(crate) fn usable(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && !self.sender.is_closed()
    }
}

/// What callers see of a subchannel.
#[derive(Clone)]
pub(crate) struct View {
    pub(crate) state: ConnectivityState,
    /// The connection, while READY.
    pub(crate) connection: Option<Connection>,
    /// Why the last attempt failed, kept until an attempt succeeds.
    pub(crate) last_error: Option<ConnectError>,
    /// What the health check of the connection says, while connected with
    /// `health_check` set.
    pub(crate) health: Option<Health>,
    /// Since when the health check has said the connection takes no calls.
    pub(crate) unhealthy_since: Option<Instant>,
    /// When the current connection was made.
    pub(crate) connected_at: Option<Instant>,
    /// Connections made so far.
    pub(crate) connects: u64,
}

impl View {
    /// No connection any more: `state`, and nothing that described the connection.
    pub(crate) fn disconnect(&mut self, state: ConnectivityState) {
        self.state = state;
        self.connection = None;
        self.health = None;
        self.connected_at = None;
        self.unhealthy_since = None;
    }

    pub(crate) fn idle() -> View {
        View {
            state: ConnectivityState::Idle,
            connection: None,
            last_error: None,
            health: None,
            connected_at: None,
            unhealthy_since: None,
            connects: 0,
        }
    }
}
