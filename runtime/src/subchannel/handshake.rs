//! The HTTP/2 handshake over a connector's stream, and the wait for the server's
//! SETTINGS: the moment a connection is READY, as in grpc-go.

use std::time::Duration;

use ephemos_config::model::{Http2Config, KeepaliveConfig};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;

use super::executor::BoxingExecutor;
use super::view::Connection;
use crate::connector::frame_watch::{ServerFrame, ServerFrames};
use crate::connector::{Connected, Progress};
use crate::error::ConnectError;

/// The largest response header list the client accepts (SETTINGS_MAX_HEADER_LIST_SIZE):
/// 16 KiB, grpc-core's default and hyper's. A response over it is refused (the call
/// fails INTERNAL; it is never sent again, since the server may have run it).
pub(crate) const MAX_HEADER_LIST_SIZE: u32 = 16 << 10;

/// A connection whose server has sent its SETTINGS.
pub(super) struct Established {
    pub(super) connection: Connection,
    /// Frames the server sends from now on (GOAWAY, later SETTINGS).
    pub(super) frames: ServerFrames,
    /// Resolves when the connection ends, with hyper's error if it failed.
    pub(super) closed: oneshot::Receiver<Result<(), hyper::Error>>,
    /// Rotations of the identity the connection was made with (TLS only).
    pub(super) rotation: Option<spiffe::X509SourceUpdates>,
    /// When to replace the connection because a certificate of it nears its end.
    pub(super) replace_at: Option<tokio::time::Instant>,
    pub(super) peer: String,
}

/// What hyper's HTTP/2 client is told; keepalive per gRFC A8 with the channel's time.
pub(super) struct Http2Settings {
    pub(super) keepalive: Option<(KeepaliveConfig, Duration)>,
    pub(super) http2: Http2Config,
    pub(super) over_tls: bool,
    /// Counts the connection as open while its task runs (gRFC A94).
    pub(super) meter: crate::telemetry::connection::ConnectionMeter,
}

/// Runs the HTTP/2 handshake and waits for the server's SETTINGS; the caller bounds the
/// time it takes.
pub(super) async fn establish(
    connected: Connected,
    settings: &Http2Settings,
    progress: &Progress,
) -> Result<Established, ConnectError> {
    let Connected {
        io,
        mut frames,
        draining,
        peer,
        server_id,
        server_certificate_expiry,
        client_id,
        caller_header,
        replace_at,
        rotation,
    } = connected;
    progress.set(Progress::HTTP2);
    let mut builder = http2::Builder::new(BoxingExecutor);
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(settings.http2.stream_window)
        .initial_connection_window_size(settings.http2.connection_window)
        .adaptive_window(settings.http2.adaptive_window)
        .max_frame_size(settings.http2.max_frame_size)
        .max_header_list_size(MAX_HEADER_LIST_SIZE);
    if let Some((keepalive, time)) = settings.keepalive {
        builder
            .keep_alive_interval(time)
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
    let open = settings.meter.opened();
    tokio::spawn(async move {
        let _open = open;
        let _ = closed_tx.send(connection.await);
    });

    progress.set(Progress::SETTINGS);
    let http2_error = |message: String| ConnectError::Http2 {
        peer: peer.clone(),
        message,
    };
    let (max_concurrent_streams, server_settings) = tokio::select! {
        // Frames first: a SETTINGS (or GOAWAY) read just before the connection closed
        // says more than the close.
        biased;
        frame = frames.recv() => match frame {
            Some(ServerFrame::Settings { max_concurrent_streams, settings }) => {
                if draining.load(std::sync::atomic::Ordering::Acquire) {
                    // The GOAWAY came with the SETTINGS: the server takes no calls.
                    let goaway = goaway_after(&mut frames, &mut closed).await;
                    return Err(http2_error(format!(
                        "the server sent GOAWAY {goaway} right after its SETTINGS: it takes no calls"
                    )));
                }
                (max_concurrent_streams, settings)
            }
            Some(ServerFrame::GoAway { error_code, debug_data, .. }) => {
                return Err(http2_error(format!(
                    "the server sent GOAWAY {} before its SETTINGS",
                    describe_goaway(error_code, &debug_data)
                )));
            }
            Some(ServerFrame::TlsFailed(message)) => return Err(ConnectError::Tls { peer, message }),
            // The IO is gone: the connection's end says why.
            None => return Err(before_settings(&peer, settings.over_tls, (&mut closed).await, &mut frames)),
        },
        result = &mut closed => return Err(before_settings(&peer, settings.over_tls, result, &mut frames)),
    };
    Ok(Established {
        connection: Connection {
            sender,
            server_id,
            draining,
            max_concurrent_streams,
            server_settings: server_settings.into(),
            server_certificate_expiry,
            client_id,
            caller_header,
        },
        frames,
        closed,
        rotation,
        replace_at,
        peer,
    })
}

/// `ENHANCE_YOUR_CALM (0xb) "too_many_pings"`.
pub(super) fn describe_goaway(error_code: u32, debug_data: &[u8]) -> String {
    let reason = crate::protocol::transport_failure::reason_name(h2::Reason::from(error_code));
    if debug_data.is_empty() {
        reason
    } else {
        format!("{reason} {:?}", String::from_utf8_lossy(debug_data))
    }
}

/// The GOAWAY whose header was already read: its code and debug data once its payload
/// arrives.
async fn goaway_after(
    frames: &mut ServerFrames,
    closed: &mut oneshot::Receiver<Result<(), hyper::Error>>,
) -> String {
    loop {
        tokio::select! {
            biased;
            frame = frames.recv() => match frame {
                Some(ServerFrame::GoAway { error_code, debug_data, .. }) => {
                    return describe_goaway(error_code, &debug_data);
                }
                Some(_) => {}
                None => return "(cut short)".to_owned(),
            },
            _ = &mut *closed => {
                while let Some(frame) = frames.try_recv() {
                    if let ServerFrame::GoAway { error_code, debug_data, .. } = frame {
                        return describe_goaway(error_code, &debug_data);
                    }
                }
                return "(cut short)".to_owned();
            }
        }
    }
}

/// Why a connection ended before the server's SETTINGS arrived.
fn before_settings(
    peer: &str,
    over_tls: bool,
    result: Result<Result<(), hyper::Error>, oneshot::error::RecvError>,
    frames: &mut ServerFrames,
) -> ConnectError {
    // Under TLS 1.3 the server's verdict on our certificate arrives here, after the
    // client's side of the handshake has finished.
    while let Some(frame) = frames.try_recv() {
        match frame {
            ServerFrame::TlsFailed(message) => {
                return ConnectError::Tls {
                    peer: peer.to_owned(),
                    message,
                };
            }
            ServerFrame::GoAway {
                error_code,
                debug_data,
                ..
            } => {
                return ConnectError::Http2 {
                    peer: peer.to_owned(),
                    message: format!(
                        "the server sent GOAWAY {} before its SETTINGS",
                        describe_goaway(error_code, &debug_data)
                    ),
                };
            }
            ServerFrame::Settings { .. } => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_deadline_is_the_larger_of_timeout_and_backoff() {
        let s = Duration::from_secs;
        assert_eq!(attempt_deadline(s(20), s(1)), s(20));
        assert_eq!(attempt_deadline(s(1), s(120)), s(120));
    }

    #[test]
    fn goaways_are_described_by_name_and_debug_data() {
        assert_eq!(
            describe_goaway(0xb, b"too_many_pings"),
            "ENHANCE_YOUR_CALM (0xb) \"too_many_pings\""
        );
        assert_eq!(describe_goaway(0, b""), "NO_ERROR (0x0)");
    }
}
