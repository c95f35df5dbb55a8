//! What the layers' own tests share: settings that make them run in milliseconds and an
//! echo request as the layer below the retry layer sees it.

use bytes::Bytes;
use http::Request;
use prost::Message;

use crate::retry::AttemptBody;

pub(crate) use ephemos_test_support::quick;

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
        .expect("a valid request")
}
