//! The names of the metrics the runtime records, as gRPC's own instrumentation names
//! them (gRFC A66, A94, A96), and ephemos's own (`ephemos.*`), with their labels'
//! keys; [`describe`] gives each its unit and description once per process.

use metrics::Unit;

/// A66: attempts started (counter; `grpc.method`, `grpc.target`).
pub(crate) const ATTEMPT_STARTED: &str = "grpc.client.attempt.started";
/// A66: an attempt's time, pick included, to its status (histogram, seconds).
pub(crate) const ATTEMPT_DURATION: &str = "grpc.client.attempt.duration";
/// A66: the request messages' bytes an attempt sent, prefixes excluded (histogram).
pub(crate) const ATTEMPT_SENT_SIZE: &str = "grpc.client.attempt.sent_total_compressed_message_size";
/// A66: the response messages' bytes an attempt received, prefixes excluded.
pub(crate) const ATTEMPT_RCVD_SIZE: &str = "grpc.client.attempt.rcvd_total_compressed_message_size";
/// A66: a call's time, from the application's call to its status (histogram, seconds).
pub(crate) const CALL_DURATION: &str = "grpc.client.call.duration";
/// A96: retries of a call, when it had any (histogram).
pub(crate) const CALL_RETRIES: &str = "grpc.client.call.retries";
/// A96: transparent retries of a call, when it had any (histogram).
pub(crate) const CALL_TRANSPARENT_RETRIES: &str = "grpc.client.call.transparent_retries";
/// A96: hedges of a call, when it had any (histogram).
pub(crate) const CALL_HEDGES: &str = "grpc.client.call.hedges";
/// A96: the time a call spent with no attempt in flight, when it was retried or hedged.
pub(crate) const CALL_RETRY_DELAY: &str = "grpc.client.call.retry_delay";
/// A94: connection attempts that made a READY connection (counter).
pub(crate) const CONNECTION_ATTEMPTS_SUCCEEDED: &str =
    "grpc.subchannel.connection_attempts_succeeded";
/// A94: connection attempts that failed (counter).
pub(crate) const CONNECTION_ATTEMPTS_FAILED: &str = "grpc.subchannel.connection_attempts_failed";
/// A94: READY connections that ended (counter; `grpc.disconnect_error`).
pub(crate) const DISCONNECTIONS: &str = "grpc.subchannel.disconnections";
/// A94: connections open now (an up-down counter, a gauge here; `grpc.security_level`).
pub(crate) const OPEN_CONNECTIONS: &str = "grpc.subchannel.open_connections";
/// Attempts that found a READY connection at once (counter).
pub(crate) const POOL_HITS: &str = "ephemos.pool.hits";
/// Attempts that waited for a connection (counter).
pub(crate) const POOL_MISSES: &str = "ephemos.pool.misses";
/// Connections the pool's cleanup closed: shrunk back, or unhealthy too long (counter).
pub(crate) const POOL_EVICTIONS: &str = "ephemos.pool.evictions";
/// Connections the pool keeps active now, over all endpoints (gauge).
pub(crate) const POOL_SIZE: &str = "ephemos.pool.size";
/// The time a connection attempt took, TCP, TLS and HTTP/2 SETTINGS (histogram).
pub(crate) const CONNECT_DURATION: &str = "ephemos.connect.duration";
/// A connection's health (gauge: 1 SERVING, 0 otherwise; `ephemos.address`,
/// `ephemos.connection`).
pub(crate) const HEALTH_STATUS: &str = "ephemos.health.status";

/// Label keys.
pub(crate) mod label {
    /// The full method name (`package.Service/Method`), or `other`.
    pub(crate) const METHOD: &str = "grpc.method";
    /// The channel's target: its name in `connections.toml`.
    pub(crate) const TARGET: &str = "grpc.target";
    /// The status code's name (`OK`, `UNAVAILABLE`, ...).
    pub(crate) const STATUS: &str = "grpc.status";
    /// Why a connection ended (A94's values).
    pub(crate) const DISCONNECT_ERROR: &str = "grpc.disconnect_error";
    /// `none` or `privacy_and_integrity` (A94).
    pub(crate) const SECURITY_LEVEL: &str = "grpc.security_level";
    /// The address a connection goes to.
    pub(crate) const ADDRESS: &str = "ephemos.address";
    /// A subchannel's place in its channel's pool (0, 1, ...).
    pub(crate) const CONNECTION: &str = "ephemos.connection";
    /// `succeeded` or `failed`.
    pub(crate) const RESULT: &str = "ephemos.result";
}

/// Gives every metric its unit and description, once per process (a recorder installed
/// later still gets the values, without descriptions).
pub(crate) fn describe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!(ATTEMPT_STARTED, Unit::Count, "RPC attempts started");
        describe_histogram!(
            ATTEMPT_DURATION,
            Unit::Seconds,
            "RPC attempt time, the pick included, to its status"
        );
        describe_histogram!(
            ATTEMPT_SENT_SIZE,
            Unit::Bytes,
            "request message bytes an attempt sent (no gRPC or transport framing)"
        );
        describe_histogram!(
            ATTEMPT_RCVD_SIZE,
            Unit::Bytes,
            "response message bytes an attempt received (no gRPC or transport framing)"
        );
        describe_histogram!(
            CALL_DURATION,
            Unit::Seconds,
            "RPC time, from the call to its status"
        );
        describe_histogram!(CALL_RETRIES, Unit::Count, "retries of a call that had any");
        describe_histogram!(
            CALL_TRANSPARENT_RETRIES,
            Unit::Count,
            "transparent retries of a call that had any"
        );
        describe_histogram!(CALL_HEDGES, Unit::Count, "hedges of a call that had any");
        describe_histogram!(
            CALL_RETRY_DELAY,
            Unit::Seconds,
            "time a retried or hedged call had no attempt in flight"
        );
        describe_counter!(
            CONNECTION_ATTEMPTS_SUCCEEDED,
            Unit::Count,
            "connection attempts that made a READY connection"
        );
        describe_counter!(
            CONNECTION_ATTEMPTS_FAILED,
            Unit::Count,
            "connection attempts that failed"
        );
        describe_counter!(DISCONNECTIONS, Unit::Count, "READY connections that ended");
        describe_gauge!(OPEN_CONNECTIONS, Unit::Count, "connections open now");
        describe_counter!(
            POOL_HITS,
            Unit::Count,
            "attempts that found a READY connection at once"
        );
        describe_counter!(
            POOL_MISSES,
            Unit::Count,
            "attempts that waited for a connection"
        );
        describe_counter!(
            POOL_EVICTIONS,
            Unit::Count,
            "connections the pool's cleanup closed"
        );
        describe_gauge!(POOL_SIZE, Unit::Count, "connections the pool keeps active");
        describe_histogram!(
            CONNECT_DURATION,
            Unit::Seconds,
            "connection attempt time: TCP, TLS and the server's SETTINGS"
        );
        describe_gauge!(
            HEALTH_STATUS,
            Unit::Count,
            "1 while a connection's health check says SERVING, else 0"
        );
    });
}
