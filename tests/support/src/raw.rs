//! A raw HTTP/2 server whose frames a test writes by hand, for servers that misbehave on
//! purpose: a proxy's `503` page, a status tonic cannot parse, refused streams, a GOAWAY
//! right after SETTINGS, a header block over the client's limit, a flow-control
//! violation. Each accepted connection is handed to the test's script.
//!
//! Header blocks are encoded as HPACK literals without indexing (RFC 7541 6.2.2), which
//! every decoder accepts; the client's header blocks are not decoded (tests count
//! streams and read DATA, which is enough to know what a server would have executed).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// HTTP/2 frame types (RFC 9113 section 6).
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
}

/// HTTP/2 error codes used by the tests (RFC 9113 section 7).
pub mod code {
    /// NO_ERROR.
    pub const NO_ERROR: u32 = 0x0;
    /// REFUSED_STREAM.
    pub const REFUSED_STREAM: u32 = 0x7;
    /// CANCEL.
    pub const CANCEL: u32 = 0x8;
    /// ENHANCE_YOUR_CALM.
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame a client accepts unless it says otherwise.
const MAX_FRAME: usize = 16_384;

/// A frame as read from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its type ([`kind`]).
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream (0 for the connection).
    pub stream: u32,
    /// Its payload.
    pub payload: Bytes,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            kind::RST_STREAM => 0,
            kind::GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A request read whole: its stream and the gRPC messages it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// The stream it came on.
    pub stream: u32,
    /// Its gRPC messages (without their 5-byte prefixes).
    pub messages: Vec<Bytes>,
}

/// Why [`RawConnection::read_messages`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The caller's `enough` said so.
    Enough,
    /// The client ended its side of the stream.
    EndStream,
    /// The client reset the stream with this error code.
    Reset(u32),
}

/// One accepted connection, driven by a test's script.
pub struct RawConnection {
    stream: TcpStream,
    index: usize,
}

impl RawConnection {
    /// Which connection this is (0 for the first the server accepted).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Reads the client's preface and sends an empty SETTINGS frame.
    pub async fn handshake(&mut self) -> io::Result<()> {
        self.handshake_with(&[]).await
    }

    /// Reads the client's connection preface (and nothing else).
    pub async fn read_preface(&mut self) -> io::Result<()> {
        let mut preface = [0u8; 24];
        self.stream.read_exact(&mut preface).await?;
        if preface != PREFACE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not HTTP/2"));
        }
        Ok(())
    }

    /// Reads the client's preface and sends SETTINGS with `settings` (id, value).
    pub async fn handshake_with(&mut self, settings: &[(u16, u32)]) -> io::Result<()> {
        self.read_preface().await?;
        let mut payload = Vec::new();
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        self.send_frame(kind::SETTINGS, 0, 0, &payload).await
    }

    /// The next frame, whatever it is.
    pub async fn frame(&mut self) -> io::Result<Frame> {
        let mut header = [0u8; 9];
        self.stream.read_exact(&mut header).await?;
        let len =
            (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await?;
        Ok(Frame {
            kind: header[3],
            flags: header[4],
            stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff,
            payload: payload.into(),
        })
    }

    /// The next frame that is not connection upkeep: SETTINGS and PING are acknowledged,
    /// WINDOW_UPDATE is skipped.
    pub async fn next(&mut self) -> io::Result<Frame> {
        loop {
            let frame = self.frame().await?;
            match frame.kind {
                kind::SETTINGS if frame.flags & ACK == 0 => {
                    self.send_frame(kind::SETTINGS, ACK, 0, &[]).await?
                }
                kind::SETTINGS | kind::WINDOW_UPDATE => {}
                kind::PING if frame.flags & ACK == 0 => {
                    let payload = frame.payload.clone();
                    self.send_frame(kind::PING, ACK, 0, &payload).await?
                }
                _ => return Ok(frame),
            }
        }
    }

    /// Reads until a stream opens (its HEADERS, and any CONTINUATION), returning its id
    /// and whether the request ended with them.
    pub async fn stream_opened(&mut self) -> io::Result<(u32, bool)> {
        loop {
            let frame = self.next().await?;
            if frame.kind == kind::HEADERS {
                let mut flags = frame.flags;
                while flags & END_HEADERS == 0 {
                    flags |= self.next().await?.flags;
                }
                return Ok((frame.stream, frame.flags & END_STREAM != 0));
            }
        }
    }

    /// Reads a whole request: its HEADERS, then DATA until END_STREAM, granting flow
    /// control as it goes (so a large request is not stalled).
    pub async fn request(&mut self) -> io::Result<RawRequest> {
        let (stream, ended) = self.stream_opened().await?;
        let messages = if ended {
            Vec::new()
        } else {
            match self.read_messages(stream, |_| false).await? {
                (messages, StreamEnd::EndStream) => messages,
                (_, end) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        format!("the request did not end: {end:?}"),
                    ));
                }
            }
        };
        Ok(RawRequest { stream, messages })
    }

    /// Reads the gRPC messages of `stream`'s DATA, granting flow control, until `enough`
    /// (called after each message) says so, the client ends the stream, or resets it.
    pub async fn read_messages(
        &mut self,
        stream: u32,
        mut enough: impl FnMut(&[Bytes]) -> bool,
    ) -> io::Result<(Vec<Bytes>, StreamEnd)> {
        let mut body = BytesMut::new();
        let mut messages = Vec::new();
        loop {
            let frame = self.next().await?;
            if frame.stream != stream {
                continue;
            }
            match frame.kind {
                kind::DATA => {
                    body.extend_from_slice(&unpad(&frame));
                    if !frame.payload.is_empty() {
                        let n = frame.payload.len() as u32;
                        self.window_update(0, n).await?;
                        self.window_update(stream, n).await?;
                    }
                    while let Some(message) = take_message(&mut body) {
                        messages.push(message);
                        if enough(&messages) {
                            return Ok((messages, StreamEnd::Enough));
                        }
                    }
                    if frame.flags & END_STREAM != 0 {
                        return Ok((messages, StreamEnd::EndStream));
                    }
                }
                kind::RST_STREAM => {
                    let code = frame.error_code().unwrap_or(u32::MAX);
                    return Ok((messages, StreamEnd::Reset(code)));
                }
                _ => {}
            }
        }
    }

    /// Writes a frame.
    pub async fn send_frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        self.stream
            .write_all(&encode_frame(kind, flags, stream, payload))
            .await
    }

    /// Writes several frames at once (one write: they arrive together).
    pub async fn send_frames(&mut self, frames: &[(u8, u8, u32, &[u8])]) -> io::Result<()> {
        let mut out = Vec::new();
        for (kind, flags, stream, payload) in frames {
            out.extend(encode_frame(*kind, *flags, *stream, payload));
        }
        self.stream.write_all(&out).await
    }

    /// Writes a header block (HPACK literals), in CONTINUATION frames past 16 KiB.
    pub async fn headers(
        &mut self,
        stream: u32,
        fields: &[(&str, &str)],
        end_stream: bool,
    ) -> io::Result<()> {
        let block = encode_header_block(fields);
        let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
        let chunks = if chunks.is_empty() {
            vec![&[][..]]
        } else {
            chunks
        };
        let last = chunks.len() - 1;
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let kind = if i == 0 {
                kind::HEADERS
            } else {
                kind::CONTINUATION
            };
            let mut flags = if i == last { END_HEADERS } else { 0 };
            if i == 0 && end_stream {
                flags |= END_STREAM;
            }
            out.extend(encode_frame(kind, flags, stream, chunk));
        }
        self.stream.write_all(&out).await
    }

    /// Writes DATA.
    pub async fn data(&mut self, stream: u32, data: &[u8], end_stream: bool) -> io::Result<()> {
        let flags = if end_stream { END_STREAM } else { 0 };
        self.send_frame(kind::DATA, flags, stream, data).await
    }

    /// Writes one gRPC message (5-byte prefix, uncompressed) as DATA.
    pub async fn grpc_message(&mut self, stream: u32, message: &[u8]) -> io::Result<()> {
        let mut data = vec![0u8];
        data.extend_from_slice(&(message.len() as u32).to_be_bytes());
        data.extend_from_slice(message);
        self.data(stream, &data, false).await
    }

    /// A successful gRPC response: headers, `message`, trailers with status 0.
    pub async fn respond(&mut self, stream: u32, message: &[u8]) -> io::Result<()> {
        self.headers(
            stream,
            &[(":status", "200"), ("content-type", "application/grpc")],
            false,
        )
        .await?;
        self.grpc_message(stream, message).await?;
        self.headers(stream, &[("grpc-status", "0")], true).await
    }

    /// Writes RST_STREAM with `code`.
    pub async fn rst_stream(&mut self, stream: u32, code: u32) -> io::Result<()> {
        self.send_frame(kind::RST_STREAM, 0, stream, &code.to_be_bytes())
            .await
    }

    /// Writes GOAWAY.
    pub async fn goaway(&mut self, last_stream: u32, code: u32, debug: &[u8]) -> io::Result<()> {
        self.send_frame(
            kind::GOAWAY,
            0,
            0,
            &goaway_payload(last_stream, code, debug),
        )
        .await
    }

    /// Writes WINDOW_UPDATE (an increment of 0 is a protocol error the client must act on).
    pub async fn window_update(&mut self, stream: u32, increment: u32) -> io::Result<()> {
        self.send_frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
            .await
    }

    /// Closes the write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }
}

/// The payload of a GOAWAY frame.
pub fn goaway_payload(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let mut payload = last_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(debug);
    payload
}

fn encode_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 5.1).
fn hpack_integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

fn encode_header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        // Literal header field without indexing, new name; strings without Huffman.
        out.push(0x00);
        hpack_integer(&mut out, 0, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_integer(&mut out, 0, 7, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A DATA or HEADERS frame's payload without its padding and priority fields.
fn unpad(frame: &Frame) -> Bytes {
    let mut payload = frame.payload.clone();
    let mut pad = 0;
    if frame.flags & PADDED != 0 && !payload.is_empty() {
        pad = usize::from(payload[0]);
        payload.advance(1);
    }
    if frame.kind == kind::HEADERS && frame.flags & PRIORITY != 0 && payload.len() >= 5 {
        payload.advance(5);
    }
    payload.truncate(payload.len().saturating_sub(pad));
    payload
}

/// The next whole gRPC message at the start of `body`, without its prefix.
fn take_message(body: &mut BytesMut) -> Option<Bytes> {
    if body.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() < 5 + len {
        return None;
    }
    body.advance(5);
    Some(body.split_to(len).freeze())
}

/// A running raw server; dropping it stops accepting.
pub struct RawServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    /// Starts on `127.0.0.1:0`; every accepted connection runs `script` in a task of its
    /// own (its result is ignored: a script returns when it is done with the connection).
    pub async fn start<F, Fut>(script: F) -> RawServer
    where
        F: Fn(RawConnection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let index = counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(script(RawConnection { stream, index }));
            }
        });
        RawServer {
            addr,
            connections,
            task,
        }
    }

    /// [`RawServer::start`] for a script that shares `state` (counters, say) with the
    /// test: each connection gets its own clone.
    pub async fn start_with<T, F, Fut>(state: T, script: F) -> RawServer
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(RawConnection, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        RawServer::start(move |connection| script(connection, state.clone())).await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_follow_rfc_7541() {
        // RFC 7541 C.1.1 and C.1.2.
        let mut out = Vec::new();
        hpack_integer(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        let mut out = Vec::new();
        hpack_integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
    }

    #[test]
    fn messages_are_taken_by_their_prefixes() {
        let mut body = BytesMut::from(&[0, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 2, b'b', b'c', 0, 0][..]);
        assert_eq!(take_message(&mut body).as_deref(), Some(&b"a"[..]));
        assert_eq!(take_message(&mut body).as_deref(), Some(&b"bc"[..]));
        assert_eq!(take_message(&mut body), None);
    }
}
