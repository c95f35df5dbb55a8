//! The connector: dials an address (TCP with DNS, or a unix socket), runs the client's
//! SPIFFE mTLS handshake when the target has an identity (the server authorized by its
//! SPIFFE ID, HTTP/2 agreed by ALPN), and puts the [frame watch](frame_watch) under the
//! HTTP/2 connection. It is a `tower::Service<Dial>`; each subchannel's driver owns one
//! and bounds each call by the attempt's deadline.

pub(crate) mod frame_watch;
pub(crate) mod tls;
pub(crate) mod transport;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};

use ephemos_config::value::{Address, SpiffeId};
use tokio_util::either::Either;

use crate::error::ConnectError;
use frame_watch::{FrameWatch, ServerFrames};
use tls::{Stream, TlsSettings};

/// How far an attempt got, for the message when it times out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(Arc<AtomicU8>);

impl Progress {
    pub(crate) const DIALING: u8 = 0;
    pub(crate) const TLS: u8 = 1;
    pub(crate) const HTTP2: u8 = 2;
    pub(crate) const SETTINGS: u8 = 3;

    pub(crate) fn set(&self, step: u8) {
        self.0.store(step, Ordering::Relaxed);
    }

    /// The step the attempt is in, in words.
    pub(crate) fn step(&self) -> &'static str {
        match self.0.load(Ordering::Relaxed) {
            Self::DIALING => "dialing",
            Self::TLS => "TLS handshake",
            Self::HTTP2 => "HTTP/2 handshake",
            _ => "waiting for the server's HTTP/2 SETTINGS",
        }
    }
}

/// What to connect to.
pub(crate) struct Dial {
    pub(crate) address: Address,
    /// The client's SVID source, over TLS (fetched by the caller, within the identity's
    /// own initial sync timeout rather than the attempt's deadline).
    pub(crate) source: Option<spiffe::X509Source>,
    pub(crate) progress: Progress,
}

/// A connected byte stream, ready for the HTTP/2 handshake, with what the handshake
/// learned.
pub(crate) struct Connected {
    /// The stream, its reads watched for SETTINGS and GOAWAY.
    pub(crate) io: FrameWatch<Stream>,
    /// Frames the server sends, as they are read.
    pub(crate) frames: ServerFrames,
    /// Set the moment a GOAWAY's header is read.
    pub(crate) draining: Arc<AtomicBool>,
    /// The peer's address, for messages.
    pub(crate) peer: String,
    /// The server's verified SPIFFE ID, over TLS.
    pub(crate) server_id: Option<SpiffeId>,
    /// When the server's leaf certificate ends, over TLS.
    pub(crate) server_certificate_expiry: Option<std::time::SystemTime>,
    /// The SPIFFE ID of the SVID this client presented, over TLS.
    pub(crate) client_id: Option<SpiffeId>,
    /// That ID as the value of the caller-ID metadata, when the channel propagates it.
    pub(crate) caller_header: Option<http::HeaderValue>,
    /// When to replace the connection: a certificate of it nears its end (TLS only).
    pub(crate) replace_at: Option<tokio::time::Instant>,
    /// Rotations of the identity the connection was made with (TLS only).
    pub(crate) rotation: Option<spiffe::X509SourceUpdates>,
}

/// Makes connections: plaintext, or SPIFFE mTLS with `tls`.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    tls: Option<Arc<TlsSettings>>,
}

impl Connector {
    pub(crate) fn new(tls: Option<Arc<TlsSettings>>) -> Self {
        Self { tls }
    }
}

/// The future of a connection attempt.
pub(crate) type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Connected, ConnectError>> + Send>>;

impl tower::Service<Dial> for Connector {
    type Response = Connected;
    type Error = ConnectError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dial: Dial) -> ConnectFuture {
        Box::pin(connect(self.tls.clone(), dial))
    }
}

async fn connect(tls: Option<Arc<TlsSettings>>, dial: Dial) -> Result<Connected, ConnectError> {
    // Subscribed before the handshake, so a rotation during it is not missed.
    let rotation = dial.source.as_ref().map(spiffe::X509Source::updated);
    dial.progress.set(Progress::DIALING);
    let transport = transport::dial(&dial.address).await?;
    let peer = transport::peer_of(&transport);
    let stream = match &tls {
        Some(settings) => {
            dial.progress.set(Progress::TLS);
            tls::handshake(settings, &dial.address, transport).await?
        }
        None => Either::Left(transport),
    };
    let own_leaf = dial
        .source
        .as_ref()
        .and_then(|source| source.svid().ok())
        .map(|svid| svid.leaf().as_ref().to_vec());
    let replace_at = tls::replace_at(&stream, own_leaf.as_deref());
    let server_id = tls::peer_id(&stream);
    let server_certificate_expiry = tls::peer_expiry(&stream);
    let client_id = own_leaf
        .as_deref()
        .and_then(|der| crate::identity::peer_spiffe_id(&[der.into()]));
    let caller_header = match &tls {
        Some(settings) if settings.propagate_identity => client_id
            .as_ref()
            .and_then(|id| http::HeaderValue::from_str(&id.to_string()).ok()),
        _ => None,
    };
    let draining = Arc::new(AtomicBool::new(false));
    let (io, frames) = FrameWatch::new(stream, draining.clone());
    Ok(Connected {
        io,
        frames,
        draining,
        peer,
        server_id,
        server_certificate_expiry,
        client_id,
        caller_header,
        replace_at,
        rotation,
    })
}
