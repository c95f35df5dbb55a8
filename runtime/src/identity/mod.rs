//! SPIFFE identity: where a workload's X.509-SVID and trust bundles come from, and the
//! rustls configurations that present the SVID and authorize the peer by SPIFFE ID.
//!
//! Every source reaches rustls the same way: through `spiffe::X509Source` (the real
//! Workload API client, rotating) and `spiffe-rustls`. The `spiffe` source talks to the
//! agent at its endpoint; the `dev` and `files` sources are served by an in-process
//! agent ([`LocalAgent`]) over an in-memory pipe. So rotation, bundle selection and the
//! X509-SVID checks are one code path, whatever the source.

mod agent;
mod authorization;
mod dev_ca;
mod files;
mod material;
mod pem_writer;

pub use agent::{AbortOnDrop, LocalAgent};
pub use dev_ca::{DEFAULT_SVID_LIFETIME, DevCa};
pub use material::{SvidMaterial, X509Material};
pub use pem_writer::PemPaths;

pub(crate) use authorization::{PeerAuthorizer, Refusal};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ephemos_config::model::{IdentityConfig, IdentitySource, ServerAuthorization};
use ephemos_config::preset::DEFAULT_INITIAL_SYNC_TIMEOUT;
use ephemos_config::value::{SpiffeId, TrustDomain};
use tokio::sync::watch;

use files::PemFiles;

/// Why an identity could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No Workload API answered, or it gave no usable SVID, in time.
    #[error("no SVID from the Workload API at {endpoint} within {timeout:?}: {message}")]
    WorkloadApi {
        /// The endpoint tried (or `$SPIFFE_ENDPOINT_SOCKET`).
        endpoint: String,
        /// The initial sync timeout.
        timeout: Duration,
        /// The `spiffe` crate's error.
        message: String,
    },
    /// A PEM file of the `files` identity could not be read or parsed.
    #[error("identity file {path}: {message}")]
    Files {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Minting a development SVID failed.
    #[error("cannot mint a development SVID: {0}")]
    Mint(String),
    /// The rustls configuration could not be built from the material.
    #[error("cannot build the TLS configuration: {0}")]
    Tls(String),
    /// The identity needs a trust domain that the configuration does not give.
    #[error("the dev identity needs a trust domain or an explicit SPIFFE ID")]
    NoTrustDomain,
}

/// A workload's SPIFFE identity. Cheap to clone; nothing is fetched until first needed.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Origin,
    initial_sync_timeout: Duration,
    state: Mutex<Acquisition>,
}

/// Getting the source runs in a task of its own, bounded by the initial sync timeout
/// and by nothing else: a caller that gives up (a connection attempt's deadline) does not
/// cancel it, and a failure is not cached (the next caller tries again).
enum Acquisition {
    Idle,
    Pending(watch::Receiver<Option<Result<spiffe::X509Source, IdentityError>>>),
    Ready(spiffe::X509Source),
}

enum Origin {
    /// The Workload API at an endpoint (`None`: `SPIFFE_ENDPOINT_SOCKET`).
    WorkloadApi(Option<String>),
    /// An in-process agent (material given by the program).
    Local(LocalAgent),
    /// SVIDs minted by the dev CA when first needed, renewed at half their lifetime.
    Dev(Arc<DevCa>, SpiffeId),
    /// PEM files, loaded on first use into an in-process agent, reloaded on change.
    Files(PemFiles),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = match &self.inner.origin {
            Origin::WorkloadApi(endpoint) => format!(
                "workload API {}",
                endpoint.as_deref().unwrap_or("$SPIFFE_ENDPOINT_SOCKET")
            ),
            Origin::Local(agent) => {
                format!("in-process agent for {}", agent.material().svid.spiffe_id)
            }
            Origin::Dev(_, id) => format!("dev CA, as {id}"),
            Origin::Files(files) => format!("files {}", files.cert.display()),
        };
        f.debug_struct("Identity").field("source", &origin).finish()
    }
}

impl Identity {
    fn new(origin: Origin, initial_sync_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                origin,
                initial_sync_timeout,
                state: Mutex::new(Acquisition::Idle),
            }),
        }
    }

    /// The identity a resolved target asks for; `None` for `plaintext`.
    pub fn from_config(config: &IdentityConfig) -> Result<Option<Identity>, IdentityError> {
        Ok(Some(match &config.source {
            IdentitySource::Plaintext => return Ok(None),
            IdentitySource::Spiffe {
                endpoint,
                initial_sync_timeout,
            } => Identity::workload_api(endpoint.as_deref(), *initial_sync_timeout),
            IdentitySource::Files { cert, key, bundle } => {
                Identity::files(cert.as_ref(), key.as_ref(), bundle.as_ref())
            }
            IdentitySource::Dev { id } => {
                let id = match (id, &config.trust_domain) {
                    (Some(id), _) => id.clone(),
                    (None, Some(td)) => default_dev_id(td, "client"),
                    (None, None) => return Err(IdentityError::NoTrustDomain),
                };
                Identity::dev(&id)?
            }
        }))
    }

    /// The SPIFFE Workload API at `endpoint` (`unix:///path`, `tcp://IP:port`), or at
    /// `SPIFFE_ENDPOINT_SOCKET` when `None`; the first SVID must arrive within
    /// `initial_sync_timeout`.
    pub fn workload_api(endpoint: Option<&str>, initial_sync_timeout: Duration) -> Identity {
        Identity::new(
            Origin::WorkloadApi(endpoint.map(str::to_owned)),
            initial_sync_timeout,
        )
    }

    /// PEM files (certificate chain, PKCS#8 key, bundle of the SVID's own trust domain),
    /// read when first needed and again whenever one changes.
    pub fn files(
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
        bundle: impl Into<std::path::PathBuf>,
    ) -> Identity {
        Identity::new(
            Origin::Files(PemFiles {
                cert: cert.into(),
                key: key.into(),
                bundle: bundle.into(),
            }),
            DEFAULT_INITIAL_SYNC_TIMEOUT,
        )
    }

    /// SVIDs for `id` minted by this process's development CA of its trust domain
    /// ([`DevCa::shared`]): every dev identity of a trust domain in the process trusts
    /// every other. Minted when first needed, renewed at half their lifetime. For
    /// examples and tests only.
    pub fn dev(id: &SpiffeId) -> Result<Identity, IdentityError> {
        let ca = DevCa::shared(&id.trust_domain())?;
        Ok(Identity::new(
            Origin::Dev(ca, id.clone()),
            DEFAULT_INITIAL_SYNC_TIMEOUT,
        ))
    }

    /// The material an in-process agent serves (tests rotate it through the agent).
    pub fn local(agent: LocalAgent) -> Identity {
        Identity::new(Origin::Local(agent), DEFAULT_INITIAL_SYNC_TIMEOUT)
    }

    /// The live X.509 source, fetched on first use (at most the initial sync timeout).
    pub async fn x509_source(&self) -> Result<spiffe::X509Source, IdentityError> {
        let mut pending = {
            let mut state = self
                .inner
                .state
                .lock()
                .map_err(|_| IdentityError::Tls("identity state poisoned".to_owned()))?;
            match &*state {
                Acquisition::Ready(source) => return Ok(source.clone()),
                Acquisition::Pending(rx) => rx.clone(),
                Acquisition::Idle => {
                    let (tx, rx) = watch::channel(None);
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        let result = acquire(&inner).await;
                        if let Ok(mut state) = inner.state.lock() {
                            *state = match &result {
                                Ok(source) => Acquisition::Ready(source.clone()),
                                Err(_) => Acquisition::Idle,
                            };
                        }
                        tx.send_replace(Some(result));
                    });
                    *state = Acquisition::Pending(rx.clone());
                    rx
                }
            }
        };
        let result = pending
            .wait_for(Option::is_some)
            .await
            .map_err(|_| IdentityError::Tls("the identity task ended".to_owned()))?;
        // `wait_for` returned, so the result is there.
        result
            .clone()
            .unwrap_or_else(|| Err(IdentityError::Tls("the identity task ended".to_owned())))
    }

    /// A rustls client configuration presenting this identity and accepting servers by
    /// `authorization`; a refused server's ID and rule are written to `refusal`.
    pub(crate) async fn client_config(
        &self,
        authorization: &ServerAuthorization,
        refusal: Refusal,
    ) -> Result<rustls::ClientConfig, IdentityError> {
        let source = self.x509_source().await?;
        spiffe_rustls::mtls_client(source)
            .authorize(PeerAuthorizer::new(
                authorization.clone(),
                "server",
                refusal,
            ))
            .with_alpn_protocols([b"h2"])
            .build()
            .map_err(|e| IdentityError::Tls(e.to_string()))
    }

    /// A rustls server configuration presenting this identity and accepting clients by
    /// `authorization`.
    pub(crate) async fn server_config(
        &self,
        authorization: &ServerAuthorization,
        refusal: Refusal,
    ) -> Result<rustls::ServerConfig, IdentityError> {
        let source = self.x509_source().await?;
        spiffe_rustls::mtls_server(source)
            .authorize(PeerAuthorizer::new(
                authorization.clone(),
                "client",
                refusal,
            ))
            .with_alpn_protocols([b"h2"])
            .build()
            .map_err(|e| IdentityError::Tls(e.to_string()))
    }

    /// This workload's SPIFFE ID (fetches the SVID if needed).
    pub async fn spiffe_id(&self) -> Result<SpiffeId, IdentityError> {
        let source = self.x509_source().await?;
        let svid = source
            .svid()
            .map_err(|e| IdentityError::Tls(e.to_string()))?;
        SpiffeId::parse(&svid.spiffe_id().to_string())
            .map_err(|e| IdentityError::Tls(e.to_string()))
    }
}

/// Fetches the source (the agent's, for in-process identities) within the initial sync
/// timeout.
async fn acquire(inner: &Inner) -> Result<spiffe::X509Source, IdentityError> {
    let timeout = inner.initial_sync_timeout;
    let (builder, endpoint) = match &inner.origin {
        Origin::WorkloadApi(endpoint) => {
            let builder = match endpoint {
                Some(endpoint) => spiffe::X509SourceBuilder::new().endpoint(endpoint),
                None => spiffe::X509SourceBuilder::new(),
            };
            let shown = endpoint
                .clone()
                .unwrap_or_else(|| "$SPIFFE_ENDPOINT_SOCKET".to_owned());
            (builder, shown)
        }
        Origin::Local(agent) => (
            spiffe::X509SourceBuilder::new().client_factory(agent.client_factory()),
            "the in-process agent".to_owned(),
        ),
        Origin::Dev(ca, id) => {
            let agent = LocalAgent::new(ca.mint(id, DEFAULT_SVID_LIFETIME)?);
            renew_dev_svid(&agent, ca.clone(), id.clone());
            (
                spiffe::X509SourceBuilder::new().client_factory(agent.client_factory()),
                "the in-process dev agent".to_owned(),
            )
        }
        Origin::Files(files) => {
            // The times are taken before reading, so a change during the read is seen.
            let seen = files.modified();
            let agent = LocalAgent::new(files.load()?);
            files.clone().watch(&agent, seen);
            (
                spiffe::X509SourceBuilder::new().client_factory(agent.client_factory()),
                format!("the in-process agent for {}", files.cert.display()),
            )
        }
    };
    builder
        .initial_sync_timeout(timeout)
        .build()
        .await
        .map_err(|e| IdentityError::WorkloadApi {
            endpoint,
            timeout,
            message: e.to_string(),
        })
}

/// `spiffe://TD/ephemos/ROLE`: the ID the dev identity mints when none is configured.
pub fn default_dev_id(trust_domain: &TrustDomain, role: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://{trust_domain}/ephemos/{role}"))
        .unwrap_or_else(|_| SpiffeId::from_static_unchecked("spiffe://invalid/ephemos"))
}

/// Mints a fresh SVID at half the lifetime of the current one, for as long as the agent
/// runs, as SPIRE does: connections made with the old one are replaced before it expires.
fn renew_dev_svid(agent: &LocalAgent, ca: Arc<DevCa>, id: SpiffeId) {
    let weak = agent.downgrade();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(DEFAULT_SVID_LIFETIME / 2).await;
            let Some(agent) = LocalAgent::upgrade(&weak) else {
                return;
            };
            match ca.mint(&id, DEFAULT_SVID_LIFETIME) {
                Ok(material) => agent.rotate(material),
                Err(e) => tracing::error!(error = %e, %id, "cannot renew the development SVID"),
            }
        }
    });
}

/// The SPIFFE ID in the URI SAN of a peer's leaf certificate (verified by the handshake).
pub(crate) fn peer_spiffe_id(chain: &[rustls::pki_types::CertificateDer<'_>]) -> Option<SpiffeId> {
    let (_, certificate) = x509_parser::parse_x509_certificate(chain.first()?.as_ref()).ok()?;
    let san = certificate.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => SpiffeId::parse(uri).ok(),
        _ => None,
    })
}

/// When a certificate ends (its `notAfter`).
pub(crate) fn not_after(der: &[u8]) -> Option<std::time::SystemTime> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let end = u64::try_from(certificate.validity().not_after.timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(end))
}

/// When a connection using this certificate should be replaced: at 90% of its lifetime,
/// as a deadline of the tokio clock.
pub(crate) fn replace_time(der: &[u8]) -> Option<tokio::time::Instant> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = certificate.validity();
    let start = validity.not_before.timestamp();
    let end = validity.not_after.timestamp();
    let at = start + (end - start).max(0) * 9 / 10;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs(),
    )
    .ok()?;
    // Past the 90% mark already (a peer renewing late): halve what is left each time,
    // rather than replace every new connection at once.
    let wait = if at > now {
        at - now
    } else {
        ((end - now) / 2).max(1)
    };
    tokio::time::Instant::now().checked_add(Duration::from_secs(u64::try_from(wait).ok()?))
}
