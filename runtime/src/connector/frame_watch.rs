//! Watches the frames a server sends, under hyper, to see what hyper does not tell:
//! when the server's SETTINGS arrive (the connection is READY) and when a GOAWAY arrives
//! (with its error code and debug data, such as `too_many_pings`).
//!
//! It wraps the read side of the connection's IO (the plaintext side of TLS) and parses
//! only frame headers, copying the payload of SETTINGS and GOAWAY frames; hyper reads
//! the same bytes as if nothing were there.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// GOAWAY payloads longer than this keep only their start (debug data is for humans).
const MAX_CAPTURE: usize = 1024;

/// A frame from the server that the subchannel acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerFrame {
    /// A SETTINGS frame (not an ACK).
    Settings {
        /// SETTINGS_MAX_CONCURRENT_STREAMS, when the frame sets it.
        max_concurrent_streams: Option<u32>,
        /// Every (identifier, value) pair of the frame, in order (RFC 9113 section 6.5.1).
        settings: Vec<(u16, u32)>,
    },
    /// Reading failed with a TLS error (h2 keeps only the text of I/O errors, so the
    /// TLS verdict is caught here, where the error is still whole).
    TlsFailed(String),
    /// A GOAWAY frame.
    GoAway {
        /// The last stream the server will process.
        last_stream_id: u32,
        /// The HTTP/2 error code (0 is NO_ERROR, a graceful shutdown).
        error_code: u32,
        /// Free-form debug data.
        debug_data: Bytes,
    },
}

/// Incremental parser of a server-to-client HTTP/2 frame stream.
#[derive(Debug, Default)]
struct FrameParser {
    header: [u8; 9],
    header_len: usize,
    kind: u8,
    flags: u8,
    remaining: usize,
    capture: Option<Vec<u8>>,
    /// A GOAWAY header has been read (its payload may still be on its way).
    goaway_started: bool,
}

impl FrameParser {
    fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(ServerFrame)) {
        while !bytes.is_empty() {
            if self.header_len < 9 {
                let take = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len < 9 {
                    return;
                }
                let h = self.header;
                self.remaining =
                    (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                self.kind = h[3];
                self.flags = h[4];
                if self.kind == FRAME_GOAWAY {
                    self.goaway_started = true;
                }
                let interesting = self.kind == FRAME_GOAWAY
                    || (self.kind == FRAME_SETTINGS && self.flags & FLAG_ACK == 0);
                self.capture = interesting.then(Vec::new);
            }
            let take = self.remaining.min(bytes.len());
            if let Some(capture) = &mut self.capture {
                let room = MAX_CAPTURE.saturating_sub(capture.len());
                capture.extend_from_slice(&bytes[..take.min(room)]);
            }
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                self.header_len = 0;
                if let Some(payload) = self.capture.take() {
                    emit(self.frame(&payload));
                }
            }
        }
    }

    fn frame(&self, payload: &[u8]) -> ServerFrame {
        if self.kind == FRAME_SETTINGS {
            let settings: Vec<(u16, u32)> = payload
                .chunks_exact(6)
                .map(|s| {
                    (
                        u16::from_be_bytes([s[0], s[1]]),
                        u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                    )
                })
                .collect();
            let max_concurrent_streams = settings
                .iter()
                .filter(|(id, _)| *id == SETTINGS_MAX_CONCURRENT_STREAMS)
                .map(|(_, value)| *value)
                .next_back();
            return ServerFrame::Settings {
                max_concurrent_streams,
                settings,
            };
        }
        let word = |i: usize| {
            payload
                .get(i..i + 4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        ServerFrame::GoAway {
            last_stream_id: word(0) & 0x7fff_ffff,
            error_code: word(4),
            debug_data: Bytes::copy_from_slice(payload.get(8..).unwrap_or_default()),
        }
    }
}

pin_project! {
    /// IO that reports the server's SETTINGS and GOAWAY frames as they are read.
    pub(crate) struct FrameWatch<T> {
        #[pin]
        inner: T,
        parser: FrameParser,
        events: mpsc::UnboundedSender<ServerFrame>,
        draining: Arc<AtomicBool>,
    }
}

impl<T> FrameWatch<T> {
    /// Wraps `inner`; `draining` is set the moment a GOAWAY's header is read, before
    /// hyper sees the frame, so no new call is given to this connection after it.
    pub(crate) fn new(
        inner: T,
        draining: Arc<AtomicBool>,
    ) -> (Self, mpsc::UnboundedReceiver<ServerFrame>) {
        let (events, rx) = mpsc::unbounded_channel();
        (
            Self {
                inner,
                parser: FrameParser::default(),
                events,
                draining,
            },
            rx,
        )
    }
}

impl<T: AsyncRead> AsyncRead for FrameWatch<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Err(error)) = &result
            && let Some(tls) = error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            let _ = this
                .events
                .send(ServerFrame::TlsFailed(super::tls::explain_tls(
                    tls, "server",
                )));
        }
        if let Poll::Ready(Ok(())) = &result {
            let events = &*this.events;
            this.parser.feed(&buf.filled()[before..], |frame| {
                let _ = events.send(frame);
            });
            if this.parser.goaway_started {
                this.draining.store(true, Ordering::Release);
            }
        }
        result
    }
}

impl<T: AsyncWrite> AsyncWrite for FrameWatch<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reports_settings_and_goaway_across_any_split() {
        let mut stream = frame(FRAME_SETTINGS, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0]);
        stream.extend(frame(FRAME_SETTINGS, FLAG_ACK, &[]));
        stream.extend(frame(0x0, 0, &[1; 40])); // DATA, ignored
        let mut goaway = 5u32.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0xbu32.to_be_bytes());
        goaway.extend_from_slice(b"too_many_pings");
        stream.extend(frame(FRAME_GOAWAY, 0, &goaway));
        let expected = vec![
            ServerFrame::Settings {
                max_concurrent_streams: Some(100),
                settings: vec![(3, 100), (4, 65536)],
            },
            ServerFrame::GoAway {
                last_stream_id: 5,
                error_code: 0xb,
                debug_data: Bytes::from_static(b"too_many_pings"),
            },
        ];
        for split in 0..stream.len() {
            let mut parser = FrameParser::default();
            let mut seen = Vec::new();
            parser.feed(&stream[..split], |f| seen.push(f));
            parser.feed(&stream[split..], |f| seen.push(f));
            assert_eq!(seen, expected, "split at {split}");
        }
    }
}
