//! Dial settings of one HTTP/2 connection: timeouts, backoff, keepalive, idle, sizes.

use std::time::Duration;

/// How a connection is made and kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionConfig {
    /// The least time one connection attempt is given (gRPC's MIN_CONNECT_TIMEOUT).
    pub connect_timeout: Duration,
    /// Spacing of reconnection attempts.
    pub backoff: BackoffConfig,
    /// HTTP/2 keepalive pings (gRFC A8), when on.
    pub keepalive: Option<KeepaliveConfig>,
    /// Close a connection with no calls for this long; `None` keeps it open.
    pub idle_timeout: Option<Duration>,
    /// Largest encoded gRPC message in each direction.
    pub max_message_size: MessageSizeLimits,
    /// HTTP/2 flow control and framing.
    pub http2: Http2Config,
}

/// HTTP/2 flow-control windows and frame size (RFC 9113).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Config {
    /// SETTINGS_INITIAL_WINDOW_SIZE: bytes a stream may receive before acknowledging.
    pub stream_window: u32,
    /// The connection's receive window, shared by its streams.
    pub connection_window: u32,
    /// Grow the windows with the measured bandwidth-delay product (BDP probing).
    pub adaptive_window: bool,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame the client accepts.
    pub max_frame_size: u32,
}

impl Http2Config {
    /// hyper's defaults: 2 MiB per stream, 5 MiB per connection, fixed, 16 KiB frames.
    pub const DEFAULT: Http2Config = Http2Config {
        stream_window: 2 << 20,
        connection_window: 5 << 20,
        adaptive_window: false,
        max_frame_size: 16 << 10,
    };
}

/// gRPC connection backoff (grpc/grpc `doc/connection-backoff.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first reconnection attempt (INITIAL_BACKOFF).
    pub base_delay: Duration,
    /// Growth of the delay per failed attempt (MULTIPLIER), >= 1.
    pub multiplier: f64,
    /// Randomisation of each delay, +-jitter, in 0..=1 (JITTER).
    pub jitter: f64,
    /// Upper bound of the delay (MAX_BACKOFF).
    pub max_delay: Duration,
}

/// HTTP/2 keepalive (gRFC A8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepaliveConfig {
    /// Ping after this long without activity, at least 10 s.
    pub time: Duration,
    /// Declare the connection dead when a ping is unanswered this long.
    pub timeout: Duration,
    /// Ping even when no call is in flight.
    pub permit_without_stream: bool,
}

/// Largest encoded message, per direction, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSizeLimits {
    /// Largest request message the client sends.
    pub send: u32,
    /// Largest response message the client accepts.
    pub recv: u32,
}
