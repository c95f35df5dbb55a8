//! The server process: one tonic echo server, lean (no recording), listening twice: in
//! plaintext and over SPIFFE mTLS (`ephemos::server`, with the `files` identity the
//! parent wrote). It prints `LISTEN <plaintext> <mtls>` and stops when its stdin closes
//! (the parent exited or is done).

use std::path::Path;
use std::pin::Pin;

use ephemos::config::model::ServerAuthorization;
use ephemos::identity::Identity;
use ephemos_test_support::pb::echo_server::{Echo, EchoServer};
use ephemos_test_support::pb::{EchoReply, EchoRequest};
use tokio::io::AsyncReadExt;
use tonic::{Request, Response, Status, Streaming};

/// Replies with the request's message and `reply_padding` bytes; a server stream sends
/// `count` such replies.
#[derive(Clone, Copy)]
struct Lean;

type Replies = Pin<Box<dyn tokio_stream::Stream<Item = Result<EchoReply, Status>> + Send>>;

fn reply(request: &EchoRequest) -> EchoReply {
    EchoReply {
        message: request.message.clone(),
        server: String::new(),
        padding: vec![0; request.reply_padding as usize],
    }
}

#[tonic::async_trait]
impl Echo for Lean {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        Ok(Response::new(reply(request.get_ref())))
    }
    type ServerStreamStream = Replies;
    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Replies>, Status> {
        let request = request.into_inner();
        let replies: Vec<Result<EchoReply, Status>> =
            (0..request.count).map(|_| Ok(reply(&request))).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }
    async fn client_stream(
        &self,
        _: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
    type BidiStream = Replies;
    async fn bidi(&self, _: Request<Streaming<EchoRequest>>) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
}

fn service() -> EchoServer<Lean> {
    EchoServer::new(Lean)
        .max_decoding_message_size(8 << 20)
        .max_encoding_message_size(8 << 20)
}

/// Runs the server with the PEM files in `dir` (`server.pem`, `server.key`,
/// `server-bundle.pem`).
pub(crate) async fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (plain_addr, tls_addr) = (plain.local_addr()?, tls.local_addr()?);
    let identity = Identity::files(
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("server-bundle.pem"),
    );
    let incoming = ephemos::server::incoming(tls, identity, ServerAuthorization::Any).await?;
    // As tonic's own `serve` does: no Nagle delay on the replies (an incoming stream of
    // one's own gets none of tonic's socket settings).
    let plain = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(plain),
        |stream| {
            stream.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service())
            .serve_with_incoming(plain),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service())
            .serve_with_incoming(incoming),
    );
    println!("LISTEN {plain_addr} {tls_addr}");
    // Until the parent closes our stdin.
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    Ok(())
}
