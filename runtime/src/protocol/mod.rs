//! gRPC over HTTP/2 (grpc/grpc `doc/PROTOCOL-HTTP2.md`), the parts the client enforces
//! itself rather than trusting the server or tonic: message length prefixes (size
//! limits), `grpc-timeout`, what a response head must be to be gRPC, status headers tonic
//! can read safely, and what a failed HTTP/2 exchange means for the call.

pub(crate) mod codec;
pub(crate) mod decode_watch;
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
    /// The server's retry pushback, in a Trailers-Only response (gRFC A6).
    pub(crate) const GRPC_RETRY_PUSHBACK_MS: HeaderName =
        HeaderName::from_static("grpc-retry-pushback-ms");
    /// On every retry: how many attempts came before it (gRFC A6).
    pub(crate) const GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName =
        HeaderName::from_static("grpc-previous-rpc-attempts");
}
