//! gRPC over HTTP/2 (grpc/grpc `doc/PROTOCOL-HTTP2.md`), the parts the client enforces
//! itself rather than trusting the server or tonic: message length prefixes (size
//! limits), `grpc-timeout`, what a response head must be to be gRPC, status headers tonic
//! can read safely, and what a failed HTTP/2 exchange means for the call.

pub(crate) mod message;
pub(crate) mod response;
pub(crate) mod status;
pub(crate) mod timeout;
pub(crate) mod transport_failure;

/// The gRPC header names the client reads or writes on every call, parsed once.
pub(crate) mod names {
    use http::HeaderName;

    pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
    pub(crate) const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
    pub(crate) const GRPC_STATUS_DETAILS: HeaderName =
        HeaderName::from_static("grpc-status-details-bin");
    pub(crate) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
}
