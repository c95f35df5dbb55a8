//! An HTTP/2 gRPC server (on the `h2` crate) that sends a graceful GOAWAY after serving
//! a number of calls on a connection, while its listener stays open: the situation of a
//! server rolling its connections (max connection age) under load.
//!
//! It answers any unary call by echoing the request message back, which an `EchoClient`
//! reads as an `EchoReply` with the same `message`, and counts the calls it executed (a
//! call replayed after it ran would be counted twice).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::net::{TcpListener, TcpStream};

/// A running server; dropping it stops accepting.
pub struct GoAwayServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    executions: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl GoAwayServer {
    /// Starts on `127.0.0.1:0`; each connection gets GOAWAY after `calls_per_connection`.
    pub async fn start(calls_per_connection: usize) -> GoAwayServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let executions = Arc::new(AtomicUsize::new(0));
        let (counter, executed) = (connections.clone(), executions.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(socket, calls_per_connection, executed.clone()));
            }
        });
        GoAwayServer {
            addr,
            connections,
            executions,
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Calls executed so far: requests read whole and answered.
    pub fn executions(&self) -> usize {
        self.executions.load(Ordering::SeqCst)
    }
}

impl Drop for GoAwayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    socket: TcpStream,
    calls_per_connection: usize,
    executions: Arc<AtomicUsize>,
) -> Result<(), h2::Error> {
    let mut connection = h2::server::handshake(socket).await?;
    let mut served = 0;
    while let Some(call) = connection.accept().await {
        let (request, respond) = call?;
        tokio::spawn(echo(request, respond, executions.clone()));
        served += 1;
        if served == calls_per_connection {
            connection.graceful_shutdown();
        }
    }
    Ok(())
}

async fn echo(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    executions: Arc<AtomicUsize>,
) -> Result<(), h2::Error> {
    let mut body = request.into_body();
    let mut message = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        message.extend_from_slice(&chunk);
    }
    executions.fetch_add(1, Ordering::SeqCst);
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let mut stream = respond.send_response(response, false)?;
    stream.send_data(message.freeze(), false)?;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    stream.send_trailers(trailers)
}
