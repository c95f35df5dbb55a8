//! Watches the frames a server sends, under hyper, to see what hyper does not tell:
//! when the server's SETTINGS arrive (the connection is READY) and when a GOAWAY arrives
//! (with its error code and debug data, such as `too_many_pings`).
//!
//! It wraps the read side of the connection's IO (the plaintext side of TLS) and parses
//! only frame headers, copying the payload of SETTINGS and GOAWAY frames; hyper reads
//! the same bytes as if nothing were there.
//!
//! A server decides how many frames it sends, so nothing here grows with them: the
//! events wait in a queue of at most one of each kind ([`ServerFrames`]: a SETTINGS
//! frame not yet taken is merged into the one waiting, the first GOAWAY waiting wins),
//! and what is kept of the settings is bounded ([`merge_settings`]: the settings RFC
//! 9113 and its extensions define, and the first few others).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// GOAWAY payloads longer than this keep only their start (debug data is for humans).
const MAX_CAPTURE: usize = 1024;
/// Settings with identifiers no specification defines that are kept (the first ones a
/// server sends); later new ones are ignored, as RFC 9113 section 6.5.2 lets a client.
const MAX_UNKNOWN_SETTINGS: usize = 8;

/// Whether a setting identifier is defined: RFC 9113's six, ENABLE_CONNECT_PROTOCOL
/// (RFC 8441) and NO_RFC7540_PRIORITIES (RFC 9218).
fn is_defined_setting(id: u16) -> bool {
    matches!(id, 0x1..=0x6 | 0x8 | 0x9)
}

/// Takes `update` (a SETTINGS frame's pairs, in order) into `table`: each value replaces
/// the one with its identifier; an identifier no specification defines is added only
/// while fewer than [`MAX_UNKNOWN_SETTINGS`] are kept. The table stays at 16 entries or
/// fewer, so this is linear in the update. Returns whether the table changed.
pub(crate) fn merge_settings(table: &mut Vec<(u16, u32)>, update: &[(u16, u32)]) -> bool {
    let mut changed = false;
    for &(id, value) in update {
        match table.iter_mut().find(|(known, _)| *known == id) {
            Some(slot) => {
                changed |= slot.1 != value;
                slot.1 = value;
            }
            None => {
                let unknown = table
                    .iter()
                    .filter(|(k, _)| !is_defined_setting(*k))
                    .count();
                if is_defined_setting(id) || unknown < MAX_UNKNOWN_SETTINGS {
                    table.push((id, value));
                    changed = true;
                }
            }
        }
    }
    changed
}

/// A frame from the server that the subchannel acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerFrame {
    /// A SETTINGS frame (not an ACK), with those that came after it before it was taken.
    Settings {
        /// SETTINGS_MAX_CONCURRENT_STREAMS, the latest value the frames set.
        max_concurrent_streams: Option<u32>,
        /// The frames' (identifier, value) pairs, merged by [`merge_settings`].
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

/// The queue between a connection's [`FrameWatch`] and its [`ServerFrames`].
#[derive(Default)]
struct Queue {
    /// At most one event of each kind.
    events: VecDeque<ServerFrame>,
    /// The watch (the connection's IO) is gone.
    closed: bool,
}

#[derive(Default)]
struct Events {
    queue: Mutex<Queue>,
    /// One reader: a notification sent while it does not wait is kept for it.
    arrived: Notify,
}

impl Events {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `frame`, merging it into the event of its kind already waiting.
    fn push(&self, frame: ServerFrame) {
        let mut queue = self.lock();
        let waiting = queue
            .events
            .iter_mut()
            .find(|e| std::mem::discriminant(*e) == std::mem::discriminant(&frame));
        match (waiting, frame) {
            (
                Some(ServerFrame::Settings {
                    max_concurrent_streams,
                    settings,
                }),
                ServerFrame::Settings {
                    max_concurrent_streams: latest,
                    settings: update,
                },
            ) => {
                *max_concurrent_streams = latest.or(*max_concurrent_streams);
                merge_settings(settings, &update);
            }
            // The first GOAWAY (or TLS failure) waiting is the one acted on.
            (Some(_), _) => return,
            (
                None,
                ServerFrame::Settings {
                    max_concurrent_streams,
                    settings: update,
                },
            ) => {
                let mut settings = Vec::new();
                merge_settings(&mut settings, &update);
                queue.events.push_back(ServerFrame::Settings {
                    max_concurrent_streams,
                    settings,
                });
            }
            (None, frame) => queue.events.push_back(frame),
        }
        drop(queue);
        self.arrived.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_one();
    }
}

/// The frames a connection's server sent and the subchannel has not taken yet: at most
/// one SETTINGS (later frames merged into it), one GOAWAY and one TLS failure.
pub(crate) struct ServerFrames(Arc<Events>);

impl ServerFrames {
    /// The next event; `None` once the connection's IO is gone and every event taken.
    /// Cancel-safe: an event is only taken when this returns it.
    pub(crate) async fn recv(&mut self) -> Option<ServerFrame> {
        loop {
            {
                let mut queue = self.0.lock();
                if let Some(frame) = queue.events.pop_front() {
                    return Some(frame);
                }
                if queue.closed {
                    return None;
                }
            }
            self.0.arrived.notified().await;
        }
    }

    /// The next event, if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<ServerFrame> {
        self.0.lock().events.pop_front()
    }
}

/// The watch's end of the queue: closes it when the IO is dropped.
struct FrameSender(Arc<Events>);

impl Drop for FrameSender {
    fn drop(&mut self) {
        self.0.close();
    }
}

pin_project! {
    /// IO that reports the server's SETTINGS and GOAWAY frames as they are read.
    pub(crate) struct FrameWatch<T> {
        #[pin]
        inner: T,
        parser: FrameParser,
        events: FrameSender,
        draining: Arc<AtomicBool>,
    }
}

impl<T> FrameWatch<T> {
    /// Wraps `inner`; `draining` is set the moment a GOAWAY's header is read, before
    /// hyper sees the frame, so no new call is given to this connection after it.
    pub(crate) fn new(inner: T, draining: Arc<AtomicBool>) -> (Self, ServerFrames) {
        let events = Arc::new(Events::default());
        (
            Self {
                inner,
                parser: FrameParser::default(),
                events: FrameSender(events.clone()),
                draining,
            },
            ServerFrames(events),
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
            this.events
                .0
                .push(ServerFrame::TlsFailed(super::tls::explain_tls(
                    tls, "server",
                )));
        }
        if let Poll::Ready(Ok(())) = &result {
            let events = &this.events.0;
            this.parser
                .feed(&buf.filled()[before..], |frame| events.push(frame));
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

    fn settings(max_concurrent_streams: Option<u32>, settings: &[(u16, u32)]) -> ServerFrame {
        ServerFrame::Settings {
            max_concurrent_streams,
            settings: settings.to_vec(),
        }
    }

    #[test]
    fn settings_keep_the_defined_ones_and_a_few_others() {
        let mut table = Vec::new();
        let fresh: Vec<(u16, u32)> = (0x100..0x200).map(|id| (id, 1)).collect();
        assert!(merge_settings(&mut table, &fresh));
        assert!(merge_settings(&mut table, &[(0x3, 10), (0x9, 1)]));
        assert_eq!(table.len(), MAX_UNKNOWN_SETTINGS + 2);
        // A kept one is updated; the same values again change nothing.
        assert!(merge_settings(&mut table, &[(0x100, 2), (0x3, 20)]));
        assert!(!merge_settings(
            &mut table,
            &[(0x100, 2), (0x3, 20), (0x300, 1)]
        ));
        assert!(table.contains(&(0x100, 2)) && table.contains(&(0x3, 20)));
    }

    #[tokio::test]
    async fn waiting_settings_merge_and_the_first_goaway_wins() {
        let events = Arc::new(Events::default());
        let mut frames = ServerFrames(events.clone());
        let goaway = |code| ServerFrame::GoAway {
            last_stream_id: 1,
            error_code: code,
            debug_data: Bytes::new(),
        };
        events.push(settings(Some(100), &[(0x3, 100), (0x4, 1)]));
        events.push(goaway(0));
        for id in 0..10_000u16 {
            events.push(settings(None, &[(0x1000 + id, 1), (0x4, u32::from(id))]));
            events.push(goaway(0xb));
        }
        events.push(settings(Some(7), &[(0x3, 7)]));
        assert_eq!(events.lock().events.len(), 2);
        let Some(ServerFrame::Settings {
            max_concurrent_streams,
            settings,
        }) = frames.recv().await
        else {
            panic!("settings first");
        };
        assert_eq!(max_concurrent_streams, Some(7));
        assert_eq!(settings.len(), 2 + MAX_UNKNOWN_SETTINGS);
        assert!(settings.contains(&(0x3, 7)) && settings.contains(&(0x4, 9_999)));
        assert_eq!(frames.recv().await, Some(goaway(0)));
        assert_eq!(frames.try_recv(), None);
        drop(FrameSender(events));
        assert_eq!(frames.recv().await, None);
    }
}
