//! One connection attempt: dial, HTTP/2 handshake, and wait for the server's SETTINGS
//! (the moment the connection is READY, as in grpc-go).

use std::time::Duration;

use ephemos_config::model::{Http2Config, KeepaliveConfig};
use ephemos_config::value::Address;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::{mpsc, oneshot};

use super::Connection;
use crate::error::ConnectError;
use crate::frame_watch::{FrameWatch, ServerFrame};
use crate::tls::TlsSettings;
use crate::transport;
use tokio_util::either::Either;

/// A connection whose server has sent its SETTINGS.
pub(super) struct Established {
    pub(super) connection: Connection,
    /// Frames the server sends from now on (GOAWAY, later SETTINGS).
    pub(super) frames: mpsc::UnboundedReceiver<ServerFrame>,
    /// Resolves when the connection ends, with hyper's error if it failed.
    pub(super) closed: oneshot::Receiver<Result<(), hyper::Error>>,
    /// Rotations of the identity the connection was made with (TLS only).
    pub(super) rotation: Option<spiffe::X509SourceUpdates>,
    /// When to replace the connection because a certificate of it nears its end.
    pub(super) replace_at: Option<tokio::time::Instant>,
    pub(super) peer: String,
}

/// Makes one connection; the caller bounds the time it takes.
pub(super) async fn establish(
    address: &Address,
    keepalive: Option<KeepaliveConfig>,
    http2: Http2Config,
    tls: Option<(&TlsSettings, spiffe::X509Source)>,
    step: &mut &'static str,
) -> Result<Established, ConnectError> {
    // Subscribed before the handshake, so a rotation during it is not missed.
    let rotation = tls.as_ref().map(|(_, source)| source.updated());
    *step = "dialing";
    let transport = transport::dial(address).await?;
    let peer = crate::transport::peer_of(&transport);
    let stream = match &tls {
        Some((settings, _)) => {
            *step = "TLS handshake";
            crate::tls::handshake(settings, address, transport).await?
        }
        None => Either::Left(transport),
    };
    let own_leaf = tls
        .as_ref()
        .and_then(|(_, source)| source.svid().ok())
        .map(|svid| svid.leaf().as_ref().to_vec());
    let replace_at = crate::tls::replace_at(&stream, own_leaf.as_deref());
    let server_id = crate::tls::peer_id(&stream);
    let over_tls = tls.is_some();
    let draining = Arc::new(AtomicBool::new(false));
    let (io, mut frames) = FrameWatch::new(stream, draining.clone());

    *step = "HTTP/2 handshake";
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(http2.stream_window)
        .initial_connection_window_size(http2.connection_window)
        .adaptive_window(http2.adaptive_window)
        .max_frame_size(http2.max_frame_size);
    if let Some(keepalive) = keepalive {
        builder
            .keep_alive_interval(keepalive.time)
            .keep_alive_timeout(keepalive.timeout)
            .keep_alive_while_idle(keepalive.permit_without_stream);
    }
    let (sender, connection) =
        builder
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ConnectError::Http2 {
                peer: peer.clone(),
                message: e.to_string(),
            })?;
    let (closed_tx, mut closed) = oneshot::channel();
    tokio::spawn(async move {
        let _ = closed_tx.send(connection.await);
    });

    *step = "waiting for the server's HTTP/2 SETTINGS";
    let http2_error = |message: String| ConnectError::Http2 {
        peer: peer.clone(),
        message,
    };
    tokio::select! {
        frame = frames.recv() => match frame {
            Some(ServerFrame::Settings { .. }) => {}
            Some(ServerFrame::GoAway { error_code, debug_data, .. }) => {
                return Err(http2_error(format!(
                    "the server sent GOAWAY (code {error_code}, {:?}) before its SETTINGS",
                    String::from_utf8_lossy(&debug_data)
                )));
            }
            Some(ServerFrame::TlsFailed(message)) => return Err(ConnectError::Tls { peer, message }),
            // The IO is gone: the connection's end says why.
            None => return Err(before_settings(&peer, over_tls, (&mut closed).await, &mut frames)),
        },
        result = &mut closed => return Err(before_settings(&peer, over_tls, result, &mut frames)),
    }
    Ok(Established {
        connection: Connection {
            sender,
            server_id,
            draining,
        },
        frames,
        closed,
        rotation,
        replace_at,
        peer,
    })
}

/// Why a connection ended before the server's SETTINGS arrived.
fn before_settings(
    peer: &str,
    over_tls: bool,
    result: Result<Result<(), hyper::Error>, oneshot::error::RecvError>,
    frames: &mut mpsc::UnboundedReceiver<ServerFrame>,
) -> ConnectError {
    // Under TLS 1.3 the server's verdict on our certificate arrives here, after the
    // client's side of the handshake has finished.
    while let Ok(frame) = frames.try_recv() {
        if let ServerFrame::TlsFailed(message) = frame {
            return ConnectError::Tls {
                peer: peer.to_owned(),
                message,
            };
        }
    }
    if over_tls {
        // The alert can be lost when the server resets the connection first.
        return ConnectError::Tls {
            peer: peer.to_owned(),
            message: "the server closed the connection right after the TLS handshake: it probably \
                      refused the client's certificate (the server's log says why)"
                .to_owned(),
        };
    }
    let message = match result {
        Ok(Err(e)) => {
            format!(
                "the connection failed before the server's SETTINGS: {}",
                crate::error::describe(&e)
            )
        }
        _ => "the server closed the connection before its SETTINGS (is it an HTTP/2 server?)"
            .to_owned(),
    };
    ConnectError::Http2 {
        peer: peer.to_owned(),
        message,
    }
}

/// The deadline of one attempt: `max(connect_timeout, current backoff)`.
pub(super) fn attempt_deadline(connect_timeout: Duration, backoff: Duration) -> Duration {
    connect_timeout.max(backoff)
}
