//! Interceptors: functions of the application's that see each call's outgoing metadata
//! before it is sent (for authentication tokens, tenant or request IDs, logging), added
//! with [`ChannelBuilder::interceptor`](crate::ChannelBuilder::interceptor). They run
//! once per call, in the order they were added, in the facade (above the retry layer):
//! every attempt of the call, retries and hedges included, carries what they wrote. An
//! interceptor that returns an error ends the call with that status before anything is
//! sent.
//!
//! What an interceptor may change: the application's metadata, and `grpc-timeout`,
//! which is honoured (the call's deadline is the smaller of it and the method's
//! `timeout`, fixed after the interceptors ran). It may not add, change or remove the
//! headers that make the request gRPC or that the channel writes itself ([`RESERVED`]:
//! `te`, `content-type`, the `grpc-` headers of the protocol, HTTP/1 connection
//! headers that HTTP/2 forbids): the call ends INTERNAL before anything is sent, with a
//! message naming the interceptor and the header.
//!
//! Metadata is information from the client, never proof of who it is: a server
//! authorizes its caller by the SPIFFE ID of the mTLS peer ([`crate::server::peer_id`]),
//! never by a header an interceptor wrote.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// The headers an interceptor may not add, change or remove: what makes the request
/// gRPC (`te`, `content-type`, the message encoding), what the channel writes for each
/// attempt (`grpc-previous-rpc-attempts`), what only a server sends (status, message,
/// details), and HTTP/1 connection headers, which HTTP/2 forbids (RFC 9113 8.2.2).
pub const RESERVED: [&str; 14] = [
    "te",
    "content-type",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-previous-rpc-attempts",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "connection",
    "host",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The metadata that carries the caller's SPIFFE ID when a channel propagates its
/// identity ([`ChannelBuilder::propagate_identity`](crate::ChannelBuilder::propagate_identity)):
/// the ID of the SVID the client presented on the connection the attempt went on.
/// Information only, for logs and for the calls a server makes in turn: a server
/// authorizes by the mTLS peer ([`crate::server::peer_id`]), never by this header,
/// which any client (or a proxy in between) can write.
pub const CALLER_ID_HEADER: &str = "ephemos-caller-spiffe-id";

/// An interceptor: given the call's path (`/package.Service/Method`) and its outgoing
/// metadata, changes the metadata or refuses the call.
pub type Interceptor = Arc<dyn Fn(&str, &mut MetadataMap) -> Result<(), Status> + Send + Sync>;

/// A channel's interceptors, in order.
#[derive(Clone, Default)]
pub(crate) struct Interceptors(Vec<Interceptor>);

impl Interceptors {
    pub(crate) fn push(&mut self, interceptor: Interceptor) {
        self.0.push(interceptor);
    }

    /// Runs each interceptor over `request`'s headers (moved, not copied); the first
    /// error ends the call, and so does a change to a [`RESERVED`] header (INTERNAL,
    /// naming the interceptor, from 1, and the header).
    pub(crate) fn apply<B>(
        &self,
        target: &str,
        request: &mut http::Request<B>,
    ) -> Result<(), Status> {
        if self.0.is_empty() {
            return Ok(());
        }
        let reserved = Reserved::of(request.headers());
        let mut metadata = MetadataMap::from_headers(std::mem::take(request.headers_mut()));
        let mut result = Ok(());
        for (index, interceptor) in self.0.iter().enumerate() {
            result = interceptor(request.uri().path(), &mut metadata).and_then(|()| {
                reserved.unchanged(metadata.as_ref()).map_err(|header| {
                    crate::error::status(
                        Code::Internal,
                        target,
                        format!(
                            "interceptor {} of {} changed the `{header}` header, which \
                             interceptors may not add, change or remove (they may change \
                             application metadata and `grpc-timeout`)",
                            index + 1,
                            self.0.len()
                        ),
                    )
                })
            });
            if result.is_err() {
                break;
            }
        }
        *request.headers_mut() = metadata.into_headers();
        result
    }
}

/// The [`RESERVED`] headers of a request before its interceptors ran.
struct Reserved(Vec<(HeaderName, Vec<HeaderValue>)>);

impl Reserved {
    fn of(headers: &HeaderMap) -> Self {
        Self(
            RESERVED
                .iter()
                .map(|name| {
                    let name = HeaderName::from_static(name);
                    let values = headers.get_all(&name).iter().cloned().collect();
                    (name, values)
                })
                .collect(),
        )
    }

    /// `Err` with the first reserved header `headers` has changed.
    fn unchanged(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        for ((name, before), reserved) in self.0.iter().zip(RESERVED) {
            if !headers.get_all(name).iter().eq(before.iter()) {
                return Err(reserved);
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} interceptors", self.0.len())
    }
}
