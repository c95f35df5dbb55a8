//! What the layers' own tests share: settings that make them run in milliseconds and an
//! echo request as the layer below the retry layer sees it.

use std::time::Duration;

use bytes::Bytes;
use ephemos_config::model::{BackoffConfig, ConnectionConfig, Http2Config, MessageSizeLimits};
use http::Request;
use prost::Message;

use crate::retry::AttemptBody;

/// Short timeouts, keepalive and idle timeout off.
pub(crate) fn quick() -> ConnectionConfig {
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

/// A unary `echo.v1.Echo/Unary` call carrying `message`, with scheme and authority set
/// (the facade's job), as an attempt.
pub(crate) fn echo_request(message: &str) -> Request<AttemptBody> {
    let encoded = ephemos_test_support::pb::EchoRequest {
        message: message.to_owned(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    Request::builder()
        .method("POST")
        .uri("http://localhost/echo.v1.Echo/Unary")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(AttemptBody::of_bytes(Bytes::from(framed)))
        .unwrap_or_else(|_| Request::new(AttemptBody::of_bytes(Bytes::new())))
}
