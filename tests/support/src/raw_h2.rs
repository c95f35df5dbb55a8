//! A raw HTTP/2 server that enforces a ping policy the way grpc-go's does: after a few
//! pings it answers GOAWAY ENHANCE_YOUR_CALM with debug data `too_many_pings` (gRFC A8).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A server that accepts HTTP/2 connections and sends GOAWAY `too_many_pings` after
/// `pings_allowed` PING frames on a connection.
pub struct TooManyPingsServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    pings: Arc<Mutex<Vec<Vec<Instant>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TooManyPingsServer {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start(pings_allowed: usize) -> TooManyPingsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let pings = Arc::new(Mutex::new(Vec::new()));
        let counter = connections.clone();
        let log = pings.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let index = counter.fetch_add(1, Ordering::SeqCst);
                log.lock().unwrap().push(Vec::new());
                let log = log.clone();
                tokio::spawn(serve(stream, pings_allowed, move || {
                    log.lock().unwrap()[index].push(Instant::now())
                }));
            }
        });
        TooManyPingsServer {
            addr,
            connections,
            pings,
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When each PING arrived, per connection.
    pub fn ping_times(&self) -> Vec<Vec<Instant>> {
        self.pings.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TooManyPingsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

async fn serve(
    mut stream: TcpStream,
    pings_allowed: usize,
    on_ping: impl Fn(),
) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    stream.read_exact(&mut preface).await?;
    if preface != PREFACE {
        return Ok(());
    }
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
    let mut pings = 0;
    loop {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).await?;
        let len =
            (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await?;
        match header[3] {
            SETTINGS if header[4] & ACK == 0 => {
                stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await?
            }
            PING if header[4] & ACK == 0 => {
                on_ping();
                pings += 1;
                if pings > pings_allowed {
                    let mut goaway = 0u32.to_be_bytes().to_vec();
                    goaway.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
                    goaway.extend_from_slice(b"too_many_pings");
                    stream.write_all(&frame(GOAWAY, 0, 0, &goaway)).await?;
                    stream.shutdown().await?;
                    return Ok(());
                }
                stream.write_all(&frame(PING, ACK, 0, &payload)).await?;
            }
            _ => {}
        }
    }
}
