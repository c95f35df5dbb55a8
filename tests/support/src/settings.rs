//! Connection settings that make tests run in milliseconds.

use std::time::Duration;

use ephemos_config::model::{BackoffConfig, ConnectionConfig, Http2Config, MessageSizeLimits};

/// Short timeouts and backoff; keepalive and idle timeout off unless a test turns them on.
pub fn quick() -> ConnectionConfig {
    ConnectionConfig {
        connect_timeout: Duration::from_secs(2),
        backoff: BackoffConfig {
            base_delay: Duration::from_millis(100),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(1),
        },
        keepalive: None,
        idle_timeout: None,
        max_message_size: MessageSizeLimits {
            send: 4 << 20,
            recv: 4 << 20,
        },
        http2: Http2Config::DEFAULT,
    }
}
