//! X.509 material as a workload holds it: its SVID (certificate chain and private key)
//! and the trust bundles it verifies peers with.

use std::fmt;

use ephemos_config::value::{SpiffeId, TrustDomain};

/// An X.509-SVID: the certificate chain (leaf first) and its PKCS#8 private key, as DER.
#[derive(Clone)]
pub struct SvidMaterial {
    /// The SPIFFE ID in the leaf's URI SAN.
    pub spiffe_id: SpiffeId,
    /// DER certificates, leaf first, then intermediates.
    pub chain: Vec<Vec<u8>>,
    /// The leaf's private key, PKCS#8 DER.
    pub private_key: Vec<u8>,
}

impl fmt::Debug for SvidMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidMaterial")
            .field("spiffe_id", &self.spiffe_id)
            .field("chain", &format_args!("{} certificates", self.chain.len()))
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Everything a workload needs for mTLS: its SVID and the CA certificates of each trust
/// domain it trusts (its own first).
#[derive(Clone, Debug)]
pub struct X509Material {
    /// The workload's SVID.
    pub svid: SvidMaterial,
    /// CA certificates (DER) by trust domain.
    pub bundles: Vec<(TrustDomain, Vec<Vec<u8>>)>,
}

impl X509Material {
    /// The bundle of one trust domain, as concatenated DER (the Workload API's format).
    pub(crate) fn bundle_der(&self, trust_domain: &TrustDomain) -> Option<Vec<u8>> {
        self.bundles
            .iter()
            .find(|(td, _)| td == trust_domain)
            .map(|(_, certs)| certs.concat())
    }
}
