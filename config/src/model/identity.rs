//! Who the client is (its SVID source) and which servers it accepts.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::value::{SpiffeId, TrustDomain};

/// The client's identity source and trust domain.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityConfig {
    /// Where the client's X.509-SVID and trust bundle come from.
    pub source: IdentitySource,
    /// The client's trust domain (the dev CA mints in it; the default server
    /// authorization accepts its members).
    pub trust_domain: Option<TrustDomain>,
}

/// Where the client's certificate and trust bundle come from.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentitySource {
    /// The SPIFFE Workload API (SPIRE agent or compatible), rotating.
    Spiffe {
        /// Agent socket; `None` reads `SPIFFE_ENDPOINT_SOCKET`.
        endpoint: Option<Cow<'static, str>>,
        /// How long to wait for the first SVID before failing.
        initial_sync_timeout: Duration,
    },
    /// PEM files, reloaded when they change.
    Files {
        /// Certificate chain, leaf first.
        cert: Cow<'static, str>,
        /// Private key of the leaf.
        key: Cow<'static, str>,
        /// Trust bundle (CA certificates).
        bundle: Cow<'static, str>,
    },
    /// An in-process development CA that mints SVIDs: for examples and tests.
    Dev {
        /// The ID to mint for the client; `None` mints `spiffe://<trust domain>/ephemos/client`.
        id: Option<SpiffeId>,
    },
    /// No TLS at all. Explicit only.
    Plaintext,
}

impl IdentitySource {
    /// The name written in `connections.toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            IdentitySource::Spiffe { .. } => "spiffe",
            IdentitySource::Files { .. } => "files",
            IdentitySource::Dev { .. } => "dev",
            IdentitySource::Plaintext => "plaintext",
        }
    }
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Spiffe {
                endpoint,
                initial_sync_timeout,
            } => write!(
                f,
                "spiffe (endpoint {}, initial sync timeout {})",
                endpoint.as_deref().unwrap_or("$SPIFFE_ENDPOINT_SOCKET"),
                crate::value::format_duration(*initial_sync_timeout)
            ),
            IdentitySource::Files { cert, key, bundle } => {
                write!(f, "files (cert {cert}, key {key}, bundle {bundle})")
            }
            IdentitySource::Dev { id: Some(id) } => write!(f, "dev (as {id})"),
            IdentitySource::Dev { id: None } => f.write_str("dev"),
            IdentitySource::Plaintext => f.write_str("plaintext"),
        }
    }
}

/// Which servers the client accepts, by the SPIFFE ID in their certificate
/// (go-spiffe's AuthorizeID / AuthorizeOneOf / AuthorizeMemberOf / AuthorizeAny).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAuthorization {
    /// Any server whose certificate chains to the trust bundle.
    Any,
    /// Only these exact IDs.
    Ids(Cow<'static, [SpiffeId]>),
    /// Any ID in one of these trust domains.
    TrustDomains(Cow<'static, [TrustDomain]>),
}

impl fmt::Display for ServerAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            items
                .iter()
                .map(T::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
        match self {
            ServerAuthorization::Any => f.write_str("any server of the trust bundle"),
            ServerAuthorization::Ids(ids) => write!(f, "exactly {}", list(ids)),
            ServerAuthorization::TrustDomains(tds) => write!(f, "members of {}", list(tds)),
        }
    }
}
