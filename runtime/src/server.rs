//! Serving a tonic server with the same SPIFFE mTLS as ephemos clients: the server
//! presents its SVID, accepts only the clients an authorization allows, and hands every
//! request the caller's verified SPIFFE ID.
//!
//! ```no_run
//! # async fn example(service: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//! use ephemos::config::model::ServerAuthorization;
//! use ephemos::identity::Identity;
//!
//! let identity = Identity::dev(&"spiffe://example.org/echo".parse()?)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let incoming = ephemos::server::incoming(listener, identity, ServerAuthorization::Any).await?;
//! // incoming.refusals() reports each refused client and why.
//! tonic::transport::Server::builder()
//!     .add_routes(service)
//!     .serve_with_incoming(incoming)
//!     .await?;
//! // In a handler: ephemos::server::peer_id(&request) is the caller's SPIFFE ID.
//! # Ok(()) }
//! ```
//!
//! Trust the mTLS peer, never a header: [`peer_id`] is the only caller identity a
//! handler should authorize on. A client that propagates its identity
//! ([`ChannelBuilder::propagate_identity`](crate::ChannelBuilder::propagate_identity))
//! also sends its SPIFFE ID in the [`CALLER_ID_HEADER`] metadata; that is information
//! for logs and for the calls the server makes in turn, never proof: any client, or a
//! proxy in between, can write it. [`claimed_caller_id`] reads it under that name.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ephemos_config::model::ServerAuthorization;
use ephemos_config::value::SpiffeId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::identity::{Identity, IdentityError, Refusal};

/// Bounds on the TLS handshakes a server runs, so clients that connect and stall (or
/// flood it with connections) cannot use up its memory or tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Handshakes in progress at once; further connections wait in the listener's
    /// backlog until one ends.
    pub max_in_progress: usize,
    /// How long a client gets to finish its handshake before the connection is closed.
    pub timeout: Duration,
}

impl Default for HandshakeLimits {
    /// 64 handshakes at once, 10 seconds each.
    fn default() -> Self {
        Self {
            max_in_progress: 64,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Who is calling: put in every request's extensions by tonic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The SPIFFE ID of the client's verified X.509-SVID.
    pub spiffe_id: SpiffeId,
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The client's verified leaf certificate (DER), for what the ID does not say (its
    /// serial, its expiry).
    pub certificate: Arc<[u8]>,
}

/// The caller's verified SPIFFE ID, on a server fed by [`incoming`].
pub fn peer_id<T>(request: &tonic::Request<T>) -> Option<&SpiffeId> {
    request
        .extensions()
        .get::<PeerIdentity>()
        .map(|p| &p.spiffe_id)
}

pub use crate::interceptor::CALLER_ID_HEADER;

/// The SPIFFE ID a client says it is in [`CALLER_ID_HEADER`], when it propagates its
/// identity: for logs only. Authorize on [`peer_id`], which the TLS handshake proved;
/// when both are there and differ, something between the two rewrote the header.
pub fn claimed_caller_id<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get(CALLER_ID_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// An accepted, authenticated connection.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: PeerIdentity,
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerIdentity;

    fn connect_info(&self) -> PeerIdentity {
        self.peer.clone()
    }
}

/// A refused client handshake: who, and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The broken rule (authorization, or the X509-SVID rule its certificate broke).
    pub reason: String,
}

/// The authenticated connections of a listener: a `Stream` for
/// `tonic::transport::Server::serve_with_incoming`.
pub struct Incoming {
    connections: ReceiverStream<io::Result<TlsConnection>>,
    refusals: broadcast::Sender<Refused>,
}

impl Incoming {
    /// Every refused handshake from now on (they are also logged).
    pub fn refusals(&self) -> broadcast::Receiver<Refused> {
        self.refusals.subscribe()
    }
}

impl Stream for Incoming {
    type Item = io::Result<TlsConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().connections).poll_next(cx)
    }
}

/// Accepts connections on `listener`, completes the mTLS handshake with `identity`, and
/// yields those whose client `authorization` allows. Refused handshakes are logged with
/// the client's ID and the rule it broke, reported on [`Incoming::refusals`], and
/// dropped. Fails at once when the identity cannot be had. Handshakes are bounded by
/// [`HandshakeLimits::default`].
pub async fn incoming(
    listener: TcpListener,
    identity: Identity,
    authorization: ServerAuthorization,
) -> Result<Incoming, IdentityError> {
    incoming_with_limits(
        listener,
        identity,
        authorization,
        HandshakeLimits::default(),
    )
    .await
}

/// [`incoming`] with bounds of the caller's on concurrent handshakes and their time.
pub async fn incoming_with_limits(
    listener: TcpListener,
    identity: Identity,
    authorization: ServerAuthorization,
    limits: HandshakeLimits,
) -> Result<Incoming, IdentityError> {
    // Fails now if the identity cannot be had; each handshake then gets its own
    // configuration (cheap: the source is shared), so a refusal is never misattributed.
    identity
        .server_config(&authorization, Refusal::default())
        .await?;
    let (tx, rx) = mpsc::channel(64);
    let (refusals, _) = broadcast::channel(64);
    let report = refusals.clone();
    let permits = Arc::new(Semaphore::new(limits.max_in_progress.max(1)));
    tokio::spawn(async move {
        loop {
            // A permit before accepting: past the bound, connections wait in the backlog.
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = tx.closed() => return,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                // The server (and its Incoming) is gone: stop, and free the port.
                () = tx.closed() => return,
            };
            let (socket, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (identity, authorization, sender, report) = (
                identity.clone(),
                authorization.clone(),
                tx.clone(),
                report.clone(),
            );
            tokio::spawn(async move {
                let refusal = Refusal::default();
                let outcome = handshake(
                    socket,
                    &identity,
                    &authorization,
                    refusal.clone(),
                    limits.timeout,
                )
                .await;
                drop(permit);
                let reason = match outcome {
                    Ok(stream) => match (client_id(&stream), client_leaf(&stream)) {
                        (Some(spiffe_id), Some(certificate)) => {
                            let peer = PeerIdentity {
                                spiffe_id,
                                remote_addr: Some(remote),
                                certificate,
                            };
                            let _ = sender.send(Ok(TlsConnection { stream, peer })).await;
                            return;
                        }
                        _ => "the client's certificate has no SPIFFE ID".to_owned(),
                    },
                    // The authorizer's record names the client's ID; other failures are
                    // the X509-SVID rule its certificate broke.
                    Err(reason) => refusal
                        .lock()
                        .ok()
                        .and_then(|mut r| r.take())
                        .unwrap_or(reason),
                };
                tracing::warn!(%remote, %reason, "client refused");
                let _ = report.send(Refused {
                    remote_addr: remote,
                    reason,
                });
            });
        }
    });
    Ok(Incoming {
        connections: ReceiverStream::new(rx),
        refusals,
    })
}

/// One server-side handshake, within `timeout`.
async fn handshake(
    socket: TcpStream,
    identity: &Identity,
    authorization: &ServerAuthorization,
    refusal: Refusal,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, String> {
    let _ = socket.set_nodelay(true);
    let config = identity
        .server_config(authorization, refusal)
        .await
        .map_err(|e| e.to_string())?;
    let accept = TlsAcceptor::from(Arc::new(config)).accept(socket);
    match tokio::time::timeout(timeout, accept).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(crate::connector::tls::explain(&e, "client")),
        Err(_) => Err("the TLS handshake timed out".to_owned()),
    }
}

/// The client's (already verified) leaf certificate.
fn client_leaf(stream: &TlsStream<TcpStream>) -> Option<Arc<[u8]>> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?;
    Some(Arc::from(leaf.as_ref()))
}

/// The SPIFFE ID of the client's (already verified) leaf certificate.
fn client_id(stream: &TlsStream<TcpStream>) -> Option<SpiffeId> {
    crate::identity::peer_spiffe_id(stream.get_ref().1.peer_certificates()?)
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
