//! What the client tests share: a real server over SPIFFE mTLS.

use std::net::SocketAddr;

use ephemos::config::model::ServerAuthorization;
use ephemos::identity::Identity;

/// An echo server over SPIFFE mTLS with the dev identity `id`.
pub(crate) async fn mtls_server(id: &str) -> SocketAddr {
    recording_mtls_server(id).await.0
}

/// [`mtls_server`], and its service, which records each call's metadata.
#[allow(dead_code)] // Not every test file uses it.
pub(crate) async fn recording_mtls_server(
    id: &str,
) -> (SocketAddr, ephemos_test_support::EchoService) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let identity = Identity::dev(&id.parse().unwrap()).unwrap();
    let incoming = ephemos::server::incoming(listener, identity, ServerAuthorization::Any)
        .await
        .unwrap();
    let recording = ephemos_test_support::EchoService::named("mtls");
    let service = ephemos_test_support::pb::echo_server::EchoServer::new(recording.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    (addr, recording)
}
