//! gRPC over HTTP/2 (grpc/grpc `doc/PROTOCOL-HTTP2.md`), the parts the client enforces
//! itself rather than trusting the server or tonic: message length prefixes (size
//! limits), `grpc-timeout`, what a response head must be to be gRPC, status headers tonic
//! can read safely, and what a failed HTTP/2 exchange means for the call.

pub(crate) mod message;
pub(crate) mod response;
pub(crate) mod status;
pub(crate) mod timeout;
pub(crate) mod transport_failure;
