//! A subchannel's metrics (gRFC A94: connection attempts, disconnections with their
//! reason, open connections with their security level) and ephemos's connect time and
//! health gauge.

use std::time::Duration;

use metrics::SharedString;

use super::names::{self, label};

/// What one subchannel records its connections with.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionMeter {
    target: SharedString,
    address: SharedString,
    /// The subchannel's place in its pool: each one's health is a series of its own.
    connection: SharedString,
    security_level: &'static str,
}

impl ConnectionMeter {
    /// For subchannel `index` of the pool of `target`, to `address`, over TLS or not.
    pub(crate) fn new(
        target: &std::sync::Arc<str>,
        address: String,
        index: usize,
        tls: bool,
    ) -> Self {
        names::describe();
        Self {
            target: SharedString::from(target.clone()),
            address: SharedString::from(address),
            connection: SharedString::from(index.to_string()),
            // SPIFFE mTLS encrypts and authenticates; plaintext does neither (A94's words).
            security_level: if tls { "privacy_and_integrity" } else { "none" },
        }
    }

    /// A connection attempt ended after `took`: READY, or failed. (A94: an attempt the
    /// subchannel's shutdown stopped is neither, and is not recorded.)
    pub(crate) fn attempt_ended(&self, took: Duration, succeeded: bool) {
        let counter = if succeeded {
            names::CONNECTION_ATTEMPTS_SUCCEEDED
        } else {
            names::CONNECTION_ATTEMPTS_FAILED
        };
        metrics::counter!(counter, label::TARGET => self.target.clone()).increment(1);
        metrics::histogram!(
            names::CONNECT_DURATION,
            label::TARGET => self.target.clone(),
            label::RESULT => if succeeded { "succeeded" } else { "failed" }
        )
        .record(took.as_secs_f64());
    }

    /// A connection is open until the guard is dropped (with the connection's task).
    pub(crate) fn opened(&self) -> OpenConnection {
        let gauge = metrics::gauge!(
            names::OPEN_CONNECTIONS,
            label::TARGET => self.target.clone(),
            label::SECURITY_LEVEL => self.security_level
        );
        gauge.increment(1.0);
        OpenConnection(gauge)
    }

    /// A READY connection ended, for `reason` (A94's `grpc.disconnect_error` values).
    pub(crate) fn disconnected(&self, reason: DisconnectError) {
        metrics::counter!(
            names::DISCONNECTIONS,
            label::TARGET => self.target.clone(),
            label::DISCONNECT_ERROR => reason.label()
        )
        .increment(1);
    }

    /// What the connection's health check says now (a series per subchannel: the
    /// subchannels of one endpoint can disagree).
    pub(crate) fn health(&self, serving: bool) {
        metrics::gauge!(
            names::HEALTH_STATUS,
            label::TARGET => self.target.clone(),
            label::ADDRESS => self.address.clone(),
            label::CONNECTION => self.connection.clone()
        )
        .set(if serving { 1.0 } else { 0.0 });
    }
}

/// Keeps a connection counted as open.
pub(crate) struct OpenConnection(metrics::Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl std::fmt::Debug for OpenConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenConnection")
    }
}

/// Why a READY connection ended, in gRFC A94's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisconnectError {
    /// The server's GOAWAY, with its HTTP/2 error code.
    GoAway(u32),
    /// The client closed it: shut down, idle, the pool shrank, a rotation, a cleanup.
    SubchannelShutdown,
    /// ECONNRESET.
    ConnectionReset,
    /// ETIMEDOUT, or the keepalive ping went unanswered (A8).
    ConnectionTimedOut,
    /// ECONNABORTED.
    ConnectionAborted,
    /// Any other socket error.
    SocketError,
    /// Anything else (the server closed it without GOAWAY, a protocol error).
    Unknown,
}

impl DisconnectError {
    /// The reason an error from hyper's connection task gives.
    pub(crate) fn of(error: &hyper::Error) -> Self {
        if error.is_timeout() {
            return DisconnectError::ConnectionTimedOut;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::ConnectionReset => DisconnectError::ConnectionReset,
                    std::io::ErrorKind::TimedOut => DisconnectError::ConnectionTimedOut,
                    std::io::ErrorKind::ConnectionAborted => DisconnectError::ConnectionAborted,
                    _ => DisconnectError::SocketError,
                };
            }
            source = e.source();
        }
        DisconnectError::Unknown
    }

    fn label(self) -> SharedString {
        SharedString::const_str(match self {
            DisconnectError::GoAway(code) => return goaway_label(code),
            DisconnectError::SubchannelShutdown => "subchannel shutdown",
            DisconnectError::ConnectionReset => "connection reset",
            DisconnectError::ConnectionTimedOut => "connection timed out",
            DisconnectError::ConnectionAborted => "connection aborted",
            DisconnectError::SocketError => "socket error",
            DisconnectError::Unknown => "unknown",
        })
    }
}

/// `GOAWAY <RFC 9113 code name>`.
fn goaway_label(code: u32) -> SharedString {
    SharedString::const_str(match code {
        0x0 => "GOAWAY NO_ERROR",
        0x1 => "GOAWAY PROTOCOL_ERROR",
        0x2 => "GOAWAY INTERNAL_ERROR",
        0x3 => "GOAWAY FLOW_CONTROL_ERROR",
        0x4 => "GOAWAY SETTINGS_TIMEOUT",
        0x5 => "GOAWAY STREAM_CLOSED",
        0x6 => "GOAWAY FRAME_SIZE_ERROR",
        0x7 => "GOAWAY REFUSED_STREAM",
        0x8 => "GOAWAY CANCEL",
        0x9 => "GOAWAY COMPRESSION_ERROR",
        0xa => "GOAWAY CONNECT_ERROR",
        0xb => "GOAWAY ENHANCE_YOUR_CALM",
        0xc => "GOAWAY INADEQUATE_SECURITY",
        0xd => "GOAWAY HTTP_1_1_REQUIRED",
        _ => "GOAWAY UNKNOWN",
    })
}
