//! The TLS side of a connection: a handshake with the client's SPIFFE identity that
//! authorizes the server by SPIFFE ID, under the HTTP/2 connection (hyper is given an
//! `http://` URI; TLS happens here, in the connector).

use std::io;
use std::sync::Arc;

use ephemos_config::model::ServerAuthorization;
use ephemos_config::value::{Address, SpiffeId};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::transport::Transport;
use crate::error::ConnectError;
use crate::identity::{Identity, Refusal};
use tokio_util::either::Either;

/// Who the client is, and which servers it accepts.
#[derive(Clone, Debug)]
pub(crate) struct TlsSettings {
    pub(crate) identity: Identity,
    pub(crate) authorization: ServerAuthorization,
    /// Send the SPIFFE ID this client presents on each call, as information
    /// ([`crate::interceptor::CALLER_ID_HEADER`]).
    pub(crate) propagate_identity: bool,
}

/// A connection's byte stream: plaintext, or TLS over the transport.
pub(crate) type Stream = Either<Transport, Box<TlsStream<Transport>>>;

/// The name sent as SNI. SPIFFE peers are authorized by the ID in their certificate, not
/// by this name, so any valid name will do; the target's host is the honest one.
fn server_name(address: &Address) -> ServerName<'static> {
    address
        .host()
        .and_then(|host| ServerName::try_from(host.to_owned()).ok())
        .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
}

/// Runs the TLS handshake over `transport`.
pub(crate) async fn handshake(
    settings: &TlsSettings,
    address: &Address,
    transport: Transport,
) -> Result<Stream, ConnectError> {
    let peer = super::transport::peer_of(&transport);
    let refusal = Refusal::default();
    let config = settings
        .identity
        .client_config(&settings.authorization, refusal.clone())
        .await?;
    match TlsConnector::from(Arc::new(config))
        .connect(server_name(address), transport)
        .await
    {
        Ok(stream) => {
            // gRPC runs over HTTP/2 only: a server that did not agree to `h2` by ALPN is
            // not one (rustls lets a server that ignores ALPN through).
            let protocol = stream.get_ref().1.alpn_protocol();
            if protocol != Some(b"h2") {
                let offered = protocol.map_or_else(
                    || "none".to_owned(),
                    |p| format!("{:?}", String::from_utf8_lossy(p)),
                );
                return Err(ConnectError::Tls {
                    peer,
                    message: format!(
                        "the server did not select HTTP/2 by ALPN (it selected {offered}): a gRPC server must agree to \"h2\""
                    ),
                });
            }
            Ok(Either::Right(Box::new(stream)))
        }
        Err(error) => {
            let recorded = refusal.lock().ok().and_then(|mut r| r.take());
            Err(ConnectError::Tls {
                peer,
                message: recorded.unwrap_or_else(|| explain(&error, "server")),
            })
        }
    }
}

/// What a failed handshake means, in the words of the X509-SVID rules; `peer` is who
/// presented the certificate ("server" or "client").
pub(crate) fn explain(error: &io::Error, peer: &str) -> String {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => explain_tls(tls, peer),
        None => error.to_string(),
    }
}

/// [`explain`] for a rustls error.
pub(crate) fn explain_tls(error: &rustls::Error, peer: &str) -> String {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            C::Expired | C::ExpiredContext { .. } => {
                format!("the {peer}'s certificate has expired")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the {peer}'s certificate is not valid yet")
            }
            C::UnknownIssuer | C::BadSignature => {
                format!(
                    "the {peer}'s certificate does not chain to the trust bundle of its trust domain"
                )
            }
            C::BadEncoding => format!("the {peer}'s certificate is not a valid X.509-SVID"),
            other => format!("the {peer}'s certificate is not a valid X.509-SVID: {other}"),
        },
        rustls::Error::Other(reason) => format!("the {peer}'s certificate was refused: {reason}"),
        rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol) => format!(
            "the {peer} did not select HTTP/2 by ALPN (it has no protocol in common with \"h2\"): gRPC needs HTTP/2"
        ),
        rustls::Error::AlertReceived(alert) => {
            let us = if peer == "server" { "client" } else { "server" };
            format!(
                "the {peer} refused the {us}'s certificate (TLS alert {alert:?}); see the {peer}'s log for the rule"
            )
        }
        rustls::Error::NoApplicationProtocol => {
            "no common application protocol: the peer does not speak HTTP/2 over TLS (ALPN h2)"
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// When to replace a connection: at 90% of the lifetime of whichever certificate ends
/// first, the peer's or ours (`own_leaf`). TLS only.
pub(crate) fn replace_at(stream: &Stream, own_leaf: Option<&[u8]>) -> Option<tokio::time::Instant> {
    let Either::Right(tls) = stream else {
        return None;
    };
    let peer_leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref());
    [peer_leaf, own_leaf]
        .into_iter()
        .flatten()
        .filter_map(crate::identity::replace_time)
        .min()
}

/// The server's verified SPIFFE ID (TLS only).
pub(crate) fn peer_id(stream: &Stream) -> Option<SpiffeId> {
    match stream {
        Either::Left(_) => None,
        Either::Right(tls) => crate::identity::peer_spiffe_id(tls.get_ref().1.peer_certificates()?),
    }
}

/// When the server's leaf certificate ends (TLS only).
pub(crate) fn peer_expiry(stream: &Stream) -> Option<std::time::SystemTime> {
    let Either::Right(tls) = stream else {
        return None;
    };
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    crate::identity::not_after(leaf.as_ref())
}
