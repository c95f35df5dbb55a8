//! The `files` identity: PEM certificate chain, private key and bundle, read when first
//! needed and read again whenever one of them changes.
//!
//! The bundle is the CA certificates of the SVID's own trust domain: every certificate in
//! it is trusted for that trust domain (federated bundles need the Workload API).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ephemos_config::value::{SpiffeId, TrustDomain};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{IdentityError, LocalAgent, SvidMaterial, X509Material};

/// How often the files are checked for changes.
pub(crate) const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The three files of a `files` identity.
#[derive(Debug, Clone)]
pub(crate) struct PemFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) bundle: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|e| file_error(path, e))
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> IdentityError {
    IdentityError::Files {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<Vec<u8>>, IdentityError> {
    let text = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

fn pkcs8_key(path: &Path) -> Result<Vec<u8>, IdentityError> {
    match PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| file_error(path, e))? {
        PrivateKeyDer::Pkcs8(key) => Ok(key.secret_pkcs8_der().to_vec()),
        _ => Err(file_error(
            path,
            "the private key must be PKCS#8 (BEGIN PRIVATE KEY)",
        )),
    }
}

fn check_key_matches(path: &Path, chain: &[Vec<u8>], key: &[u8]) -> Result<(), IdentityError> {
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(key.to_vec().into());
    rustls::sign::CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .map(|_| ())
        .map_err(|e| file_error(path, format!("the key does not match the certificate: {e}")))
}

/// The SPIFFE ID of an X.509-SVID, checked by the `spiffe` crate's SVID rules.
fn spiffe_id_of(path: &Path, chain: &[Vec<u8>], key: &[u8]) -> Result<SpiffeId, IdentityError> {
    let svid =
        spiffe::X509Svid::parse_from_der(&chain.concat(), key).map_err(|e| file_error(path, e))?;
    SpiffeId::parse(&svid.spiffe_id().to_string()).map_err(|e| file_error(path, e))
}

impl PemFiles {
    /// Reads the three files into material.
    pub(crate) fn load(&self) -> Result<X509Material, IdentityError> {
        let chain = certificates(&self.cert)?;
        let key = pkcs8_key(&self.key)?;
        let bundle = certificates(&self.bundle)?;
        let spiffe_id = spiffe_id_of(&self.cert, &chain, &key)?;
        // A certificate and key written one after the other can be read half-updated:
        // refuse a pair that does not match (the old material stays until both agree).
        check_key_matches(&self.key, &chain, &key)?;
        let trust_domain: TrustDomain = spiffe_id.trust_domain();
        Ok(X509Material {
            svid: SvidMaterial {
                spiffe_id,
                chain,
                private_key: key,
            },
            bundles: vec![(trust_domain, bundle)],
        })
    }

    pub(crate) fn modified(&self) -> Vec<Option<SystemTime>> {
        [&self.cert, &self.key, &self.bundle]
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// Reloads the files into `agent` whenever one changes (relative to `seen`, the
    /// times of the files as first loaded), until the agent is gone.
    pub(crate) fn watch(self, agent: &LocalAgent, mut seen: Vec<Option<SystemTime>>) {
        let weak = agent.downgrade();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_INTERVAL).await;
                let Some(agent) = LocalAgent::upgrade(&weak) else {
                    return;
                };
                let now = self.modified();
                if now == seen {
                    continue;
                }
                match self.load() {
                    Ok(material) => {
                        tracing::info!(cert = %self.cert.display(), "identity files changed: new SVID");
                        agent.rotate(material);
                        seen = now;
                    }
                    // Half-written files: keep the old material and try again.
                    Err(e) => {
                        tracing::warn!(error = %e, "identity files changed but cannot be read yet")
                    }
                }
            }
        });
    }
}
