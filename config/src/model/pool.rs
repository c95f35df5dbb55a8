//! Connection pool and client-side health checking settings.

use std::borrow::Cow;
use std::time::Duration;

/// How many connections a client keeps per endpoint, and how it tends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections kept open per endpoint, 1..=64 (1 means no pooling).
    pub size: u32,
    /// Connections the pool may grow to when every one carries
    /// `max_streams_per_connection` calls; equal to `size` when it never grows.
    pub max_size: u32,
    /// How often idle and unhealthy connections are cleaned up.
    pub cleanup_interval: Duration,
    /// Calls per connection before the pool opens another; `None` uses the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_streams_per_connection: Option<u32>,
    /// Open every connection at `connect()` instead of on first use.
    pub warm: bool,
}

/// Client-side health checking with `grpc.health.v1.Health/Watch` (gRFC A17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// The service name sent in the health request; empty asks about the whole server.
    pub service_name: Cow<'static, str>,
}
