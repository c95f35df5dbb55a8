//! The X509-SVID rules (spiffe/spiffe `standards/X509-SVID.md`) enforced in real TLS
//! handshakes, on both sides: each bad certificate is its own case, and the reason the
//! handshake was refused is asserted. The bad peer is plain rustls presenting whatever
//! certificate the case minted.

mod common;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use common::{MS, quick, request};
use ephemos::config::model::ServerAuthorization;
use ephemos::config::value::{SpiffeId, TrustDomain};
use ephemos::identity::{DevCa, Identity, SvidMaterial, X509Material};
use ephemos::{Address, Channel};
use ephemos_test_support::pb::echo_client::EchoClient;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tonic::Code;

const SERVER: &str = "spiffe://example.org/server";
const CLIENT: &str = "spiffe://example.org/client";

fn id(text: &str) -> SpiffeId {
    SpiffeId::parse(text).unwrap()
}

fn example_org() -> Arc<DevCa> {
    DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap()
}

fn uri(text: &str) -> SanType {
    SanType::URI(text.to_owned().try_into().unwrap())
}

fn ago(hours: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::hours(hours)
}

/// One case: a certificate for the role `who` (SERVER or CLIENT) and the words the
/// refusal must contain (`None`: the certificate is good and must be accepted).
struct Case {
    name: &'static str,
    material: X509Material,
    reason: Option<&'static str>,
}

fn mint(who: &str, customize: impl FnOnce(&mut CertificateParams)) -> X509Material {
    example_org()
        .mint_with(&id(who), Duration::from_secs(3600), customize)
        .unwrap()
}

fn self_signed(who: &str) -> X509Material {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![uri(who)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).unwrap();
    X509Material {
        svid: SvidMaterial {
            spiffe_id: id(who),
            chain: vec![cert.der().to_vec()],
            private_key: key.serialize_der(),
        },
        bundles: vec![],
    }
}

fn cases(who: &'static str) -> Vec<Case> {
    let other_domain = DevCa::new(TrustDomain::parse("other.org").unwrap()).unwrap();
    let impostor_ca = DevCa::new(TrustDomain::parse("example.org").unwrap()).unwrap();
    let wrong_id = if who == SERVER {
        "spiffe://example.org/impostor"
    } else {
        "spiffe://example.org/stranger"
    };
    vec![
        Case {
            name: "valid",
            material: mint(who, |_| {}),
            reason: None,
        },
        Case {
            name: "wrong SPIFFE ID",
            material: mint(wrong_id, |_| {}),
            reason: Some("is not `spiffe://example.org/"),
        },
        Case {
            name: "wrong trust domain",
            material: other_domain
                .mint(
                    &id(&who.replace("example.org", "other.org")),
                    Duration::from_secs(3600),
                )
                .unwrap(),
            reason: Some("no bundle for trust domain other.org"),
        },
        Case {
            name: "two URI SANs",
            material: mint(who, |p| {
                p.subject_alt_names.push(uri("spiffe://example.org/second"))
            }),
            reason: Some("multiple URI SAN entries"),
        },
        Case {
            name: "no URI SAN",
            material: mint(who, |p| {
                p.subject_alt_names =
                    vec![SanType::DnsName("server.example.org".try_into().unwrap())]
            }),
            reason: Some("missing SPIFFE ID URI SAN"),
        },
        Case {
            name: "leaf is a CA",
            material: mint(who, |p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)),
            reason: Some("CA is set to true"),
        },
        Case {
            name: "leaf with keyCertSign",
            material: mint(who, |p| p.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            reason: Some("keyCertSign key usage is set"),
        },
        Case {
            name: "leaf with cRLSign",
            material: mint(who, |p| p.key_usages.push(KeyUsagePurpose::CrlSign)),
            reason: Some("cRLSign key usage is set"),
        },
        Case {
            name: "expired",
            material: mint(who, |p| {
                p.not_before = ago(3);
                p.not_after = ago(1);
            }),
            reason: Some("expired"),
        },
        Case {
            name: "not yet valid",
            material: mint(who, |p| {
                p.not_before = ago(-1);
                p.not_after = ago(-3);
            }),
            reason: Some("not valid yet"),
        },
        Case {
            name: "signed by an unknown CA",
            material: impostor_ca
                .mint(&id(who), Duration::from_secs(3600))
                .unwrap(),
            reason: Some("does not chain to the trust bundle"),
        },
        Case {
            name: "self-signed leaf",
            material: self_signed(who),
            reason: Some("does not chain to the trust bundle"),
        },
        Case {
            name: "non-spiffe URI scheme",
            material: mint(who, |p| {
                p.subject_alt_names = vec![uri("https://example.org/server")]
            }),
            reason: Some("SPIFFE ID URI SAN"),
        },
    ]
}

fn chain(material: &X509Material) -> Vec<CertificateDer<'static>> {
    material
        .svid
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect()
}

fn key(material: &X509Material) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(material.svid.private_key.clone()))
}

/// A TLS server presenting `material` as is, for one handshake at a time.
async fn raw_server(material: &X509Material) -> std::net::SocketAddr {
    tls_server(material, vec![b"h2".to_vec()]).await
}

/// [`raw_server`] offering the ALPN protocols `alpn`.
async fn tls_server(material: &X509Material, alpn: Vec<Vec<u8>>) -> std::net::SocketAddr {
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain(material), key(material))
        .unwrap();
    config.alpn_protocols = alpn;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(socket).await {
                    // An empty HTTP/2 SETTINGS frame: enough for the client to be READY.
                    use tokio::io::AsyncWriteExt;
                    let _ = stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
                    tokio::time::sleep(MS(500)).await;
                    drop(stream);
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refuses_bad_server_certificates() {
    let mut failures = Vec::new();
    for case in cases(SERVER) {
        let addr = raw_server(&case.material).await;
        let authorization = ServerAuthorization::Ids(Cow::Owned(vec![id(SERVER)]));
        let channel = Channel::mtls(
            Address::from(addr),
            Identity::dev(&id(CLIENT)).unwrap(),
            authorization,
        )
        .connection(quick())
        .connect_lazy()
        .unwrap();
        let result = channel.connect().await;
        match (case.reason, result) {
            (None, Ok(())) => {}
            (Some(reason), Err(error)) => {
                let message = error.to_string();
                if !message.contains(reason) {
                    failures.push(format!(
                        "{}: refused for another reason: {message}",
                        case.name
                    ));
                }
                // And a call made now fails with UNAVAILABLE naming the same reason.
                let status = EchoClient::new(channel.clone())
                    .unary(request("x"))
                    .await
                    .unwrap_err();
                if status.code() != Code::Unavailable || !status.message().contains(reason) {
                    failures.push(format!("{}: call failed with {status:?}", case.name));
                }
            }
            (None, Err(error)) => failures.push(format!(
                "{}: a good certificate was refused: {error}",
                case.name
            )),
            (Some(_), Ok(())) => failures.push(format!("{}: accepted", case.name)),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Accepts any server certificate: this client tests the server's checks, not its own.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refuses_bad_client_certificates() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = ephemos::server::incoming(
        listener,
        Identity::dev(&id(SERVER)).unwrap(),
        ServerAuthorization::Ids(Cow::Owned(vec![id(CLIENT)])),
    )
    .await
    .unwrap();
    let mut refusals = incoming.refusals();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        use tokio_stream::StreamExt;
        let mut incoming = incoming;
        while let Some(Ok(_connection)) = incoming.next().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut failures = Vec::new();
    for case in cases(CLIENT) {
        let mut config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider.clone())))
            .with_client_auth_cert(chain(&case.material), key(&case.material))
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
        let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = connector
            .connect(ServerName::try_from("localhost").unwrap(), socket)
            .await;
        // In TLS 1.3 the client finishes first; the server's verdict follows.
        let verdict = tokio::time::timeout(MS(5000), async {
            loop {
                if accepted.load(std::sync::atomic::Ordering::SeqCst) > before {
                    return Ok(());
                }
                if let Ok(refused) = refusals.try_recv() {
                    return Err(refused.reason);
                }
                tokio::time::sleep(MS(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no verdict (client side: {:?})",
                stream.as_ref().err()
            ))
        });
        drop(stream);
        match (case.reason, verdict) {
            (None, Ok(())) => {}
            (Some(reason), Err(refused)) if refused.contains(reason) => {}
            (Some(_), Err(refused)) => failures.push(format!(
                "{}: refused for another reason: {refused}",
                case.name
            )),
            (None, Err(refused)) => failures.push(format!(
                "{}: a good certificate was refused: {refused}",
                case.name
            )),
            (Some(_), Ok(())) => failures.push(format!("{}: accepted", case.name)),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_agree_to_http2_by_alpn_is_refused() {
    // A valid SVID, but the server selects no protocol (or HTTP/1.1): not a gRPC server.
    for alpn in [vec![], vec![b"http/1.1".to_vec()]] {
        let addr = tls_server(&mint(SERVER, |_| {}), alpn.clone()).await;
        let channel = Channel::mtls(
            Address::from(addr),
            Identity::dev(&id(CLIENT)).unwrap(),
            ServerAuthorization::Ids(Cow::Owned(vec![id(SERVER)])),
        )
        .connection(quick())
        .connect_lazy()
        .unwrap();
        let error = channel.connect().await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, ephemos::ConnectError::Tls { .. })
                && message.contains("did not select HTTP/2 by ALPN"),
            "{alpn:?}: {message}"
        );
    }
}
