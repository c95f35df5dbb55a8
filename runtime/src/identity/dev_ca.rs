//! The development certificate authority: an in-process CA (rcgen) per trust domain
//! that mints X.509-SVIDs following the X509-SVID standard. It backs the `dev` identity
//! of examples and tests; nothing outside the process trusts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ephemos_config::value::{SpiffeId, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use super::{IdentityError, SvidMaterial, X509Material};

/// How long minted SVIDs live unless asked otherwise.
pub const DEFAULT_SVID_LIFETIME: Duration = Duration::from_secs(3600);

/// A certificate authority for one trust domain, living in this process.
pub struct DevCa {
    trust_domain: TrustDomain,
    params: CertificateParams,
    key: KeyPair,
    certificate: Vec<u8>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

fn now_plus(offset: time::Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() + offset
}

fn rcgen_error(e: rcgen::Error) -> IdentityError {
    IdentityError::Mint(e.to_string())
}

impl DevCa {
    /// A new CA for `trust_domain`, valid for ten years.
    pub fn new(trust_domain: TrustDomain) -> Result<Self, IdentityError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("ephemos development CA for {trust_domain}"),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let td_uri = format!("spiffe://{trust_domain}");
        params.subject_alt_names = vec![SanType::URI(td_uri.try_into().map_err(rcgen_error)?)];
        params.not_before = now_plus(time::Duration::hours(-1));
        params.not_after = now_plus(time::Duration::days(3650));
        let certificate = params
            .self_signed(&key)
            .map_err(rcgen_error)?
            .der()
            .to_vec();
        Ok(Self {
            trust_domain,
            params,
            key,
            certificate,
        })
    }

    /// The process-wide CA of a trust domain: every `dev` identity of that trust domain in
    /// this process (clients and servers) shares it, so they trust each other.
    pub fn shared(trust_domain: &TrustDomain) -> Result<Arc<DevCa>, IdentityError> {
        static CAS: OnceLock<Mutex<HashMap<TrustDomain, Arc<DevCa>>>> = OnceLock::new();
        let mut cas = CAS
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| IdentityError::Mint("the dev CA registry is poisoned".to_owned()))?;
        if let Some(ca) = cas.get(trust_domain) {
            return Ok(ca.clone());
        }
        let ca = Arc::new(DevCa::new(trust_domain.clone())?);
        cas.insert(trust_domain.clone(), ca.clone());
        Ok(ca)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate (DER): the trust bundle of the trust domain.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Mints an X.509-SVID for `id`, valid from five minutes ago for `lifetime`, and
    /// returns it with this CA's bundle.
    pub fn mint(&self, id: &SpiffeId, lifetime: Duration) -> Result<X509Material, IdentityError> {
        self.mint_with(id, lifetime, |_| {})
    }

    /// Like [`DevCa::mint`], letting `customize` change the certificate first: tests use
    /// it to mint certificates that break the X509-SVID rules.
    pub fn mint_with(
        &self,
        id: &SpiffeId,
        lifetime: Duration,
        customize: impl FnOnce(&mut CertificateParams),
    ) -> Result<X509Material, IdentityError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(
            id.as_str().to_owned().try_into().map_err(rcgen_error)?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = now_plus(time::Duration::minutes(-5));
        let lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::days(3650));
        params.not_after = now_plus(lifetime);
        params.use_authority_key_identifier_extension = true;
        customize(&mut params);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let leaf = params.signed_by(&key, &issuer).map_err(rcgen_error)?;
        Ok(X509Material {
            svid: SvidMaterial {
                spiffe_id: id.clone(),
                chain: vec![leaf.der().to_vec()],
                private_key: key.serialize_der(),
            },
            bundles: vec![(self.trust_domain.clone(), vec![self.certificate.clone()])],
        })
    }
}
