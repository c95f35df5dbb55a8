//! A raw HTTP/2 server that enforces a ping policy the way grpc-go's does: after a few
//! pings it answers GOAWAY ENHANCE_YOUR_CALM with debug data `too_many_pings` (gRFC A8).
//! It records when every ping arrived, per connection, and never answers a request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::raw::{RawConnection, RawServer, code, kind};

/// A server that accepts HTTP/2 connections and sends GOAWAY `too_many_pings` after
/// `pings_allowed` PING frames on a connection.
pub struct TooManyPingsServer {
    server: RawServer,
    pings: Arc<Mutex<Vec<Vec<Instant>>>>,
}

impl TooManyPingsServer {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start(pings_allowed: usize) -> TooManyPingsServer {
        let pings: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::default();
        let log = pings.clone();
        let server = RawServer::start(move |connection| {
            let log = log.clone();
            async move { serve(connection, pings_allowed, log).await }
        })
        .await;
        TooManyPingsServer { server, pings }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// When each PING arrived, per connection (in the order they were accepted).
    pub fn ping_times(&self) -> Vec<Vec<Instant>> {
        self.pings.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }
}

async fn serve(
    mut connection: RawConnection,
    pings_allowed: usize,
    log: Arc<Mutex<Vec<Vec<Instant>>>>,
) -> std::io::Result<()> {
    let index = connection.index();
    {
        let mut log = log.lock().unwrap();
        if log.len() <= index {
            log.resize(index + 1, Vec::new());
        }
    }
    connection.handshake().await?;
    let mut pings = 0;
    loop {
        let frame = connection.frame().await?;
        match frame.kind {
            kind::SETTINGS if frame.flags & 1 == 0 => {
                connection.send_frame(kind::SETTINGS, 1, 0, &[]).await?
            }
            kind::PING if frame.flags & 1 == 0 => {
                log.lock().unwrap()[index].push(Instant::now());
                pings += 1;
                if pings > pings_allowed {
                    connection
                        .goaway(0, code::ENHANCE_YOUR_CALM, b"too_many_pings")
                        .await?;
                    connection.shutdown().await?;
                    return Ok(());
                }
                connection
                    .send_frame(kind::PING, 1, 0, &frame.payload)
                    .await?;
            }
            _ => {}
        }
    }
}
