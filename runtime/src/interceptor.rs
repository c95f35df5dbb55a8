//! Interceptors: functions of the application's that see each call's outgoing metadata
//! before it is sent (for authentication tokens, tenant or request IDs, logging), added
//! with [`ChannelBuilder::interceptor`](crate::ChannelBuilder::interceptor). They run
//! once per call, in the order they were added, in the facade (above the retry layer):
//! every attempt of the call, retries and hedges included, carries what they wrote. An
//! interceptor that returns an error ends the call with that status before anything is
//! sent.
//!
//! Metadata is information from the client, never proof of who it is: a server
//! authorizes its caller by the SPIFFE ID of the mTLS peer ([`crate::server::peer_id`]),
//! never by a header an interceptor wrote.

use std::sync::Arc;

use tonic::Status;
use tonic::metadata::MetadataMap;

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
    /// error ends the call.
    pub(crate) fn apply<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut metadata = MetadataMap::from_headers(std::mem::take(request.headers_mut()));
        let mut result = Ok(());
        for interceptor in &self.0 {
            result = interceptor(request.uri().path(), &mut metadata);
            if result.is_err() {
                break;
            }
        }
        *request.headers_mut() = metadata.into_headers();
        result
    }
}

impl std::fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} interceptors", self.0.len())
    }
}
