//! A server and a client with the `dev` identity (an in-process CA for `example.org`),
//! authenticating each other by SPIFFE ID over mTLS; both print what they verified.
//!
//! Run with `cargo run -p ephemos --example dev_mtls`; it ends by itself.

use std::borrow::Cow;

use ephemos::config::model::ServerAuthorization;
use ephemos::config::value::SpiffeId;
use ephemos::identity::Identity;
use ephemos::{Address, Channel};
use ephemos_test_support::pb::echo_client::EchoClient;
use ephemos_test_support::pb::echo_server::{Echo, EchoServer};
use ephemos_test_support::pb::{EchoReply, EchoRequest};
use tonic::{Request, Response, Status, Streaming};

type Replies =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<EchoReply, Status>> + Send>>;

/// Replies with the caller's verified SPIFFE ID.
struct Greeter;

#[tonic::async_trait]
impl Echo for Greeter {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let caller = ephemos::server::peer_id(&request)
            .map(ToString::to_string)
            .unwrap_or_default();
        println!("server: verified caller {caller}");
        Ok(Response::new(EchoReply {
            message: format!("hello, {caller}"),
            server: "spiffe://example.org/greeter".to_owned(),
            padding: vec![],
        }))
    }
    type ServerStreamStream = Replies;
    async fn server_stream(&self, _: Request<EchoRequest>) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("unary only"))
    }
    async fn client_stream(
        &self,
        _: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        Err(Status::unimplemented("unary only"))
    }
    type BidiStream = Replies;
    async fn bidi(&self, _: Request<Streaming<EchoRequest>>) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("unary only"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server_id: SpiffeId = "spiffe://example.org/greeter".parse()?;
    let client_id: SpiffeId = "spiffe://example.org/caller".parse()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let only_the_caller = ServerAuthorization::Ids(Cow::Owned(vec![client_id.clone()]));
    let incoming =
        ephemos::server::incoming(listener, Identity::dev(&server_id)?, only_the_caller).await?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EchoServer::new(Greeter))
            .serve_with_incoming(incoming),
    );

    let only_the_greeter = ServerAuthorization::Ids(Cow::Owned(vec![server_id]));
    let channel = Channel::mtls(
        Address::from(addr),
        Identity::dev(&client_id)?,
        only_the_greeter,
    )
    .target_name("greeter")
    .connect()
    .await?;
    println!(
        "client: verified server {:?}",
        channel
            .server_ids()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    let reply = EchoClient::new(channel)
        .unary(EchoRequest::default())
        .await?
        .into_inner();
    println!("client: {}", reply.message);
    Ok(())
}
