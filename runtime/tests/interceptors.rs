//! Interceptors added with the builder: each sees the call's path and outgoing
//! metadata, in order; what they write reaches the server (checked at the server, on
//! every attempt of a retried call), and one that refuses ends the call before anything
//! is sent.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{client, request};
use ephemos::{Address, Channel};
use ephemos_test_support::EchoServer;
use tonic::{Code, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interceptors_write_metadata_in_order_and_may_refuse_a_call() {
    let server = EchoServer::start("s").await;
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("intercepted")
        .interceptor(|_, metadata| {
            metadata.insert("authorization", "Bearer t0ken".parse().unwrap());
            metadata.insert("x-order", "first".parse().unwrap());
            Ok(())
        })
        .interceptor(move |path, metadata| {
            counted.fetch_add(1, Ordering::SeqCst);
            let first = metadata.get("x-order").cloned();
            metadata.insert(
                "x-order",
                format!("{}-second", first.unwrap().to_str().unwrap())
                    .parse()
                    .unwrap(),
            );
            metadata.insert("x-path", path.parse().unwrap());
            if metadata.contains_key("x-refuse") {
                return Err(Status::permission_denied("refused by the interceptor"));
            }
            Ok(())
        })
        .connect_lazy()
        .unwrap();
    client(&channel).unary(request("a")).await.unwrap();
    let received = server.metadata();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].get("authorization").unwrap(), "Bearer t0ken");
    assert_eq!(received[0].get("x-order").unwrap(), "first-second");
    assert_eq!(received[0].get("x-path").unwrap(), "/echo.v1.Echo/Unary");

    let mut refused = tonic::Request::new(request("b"));
    refused
        .metadata_mut()
        .insert("x-refuse", "yes".parse().unwrap());
    let status = client(&channel).unary(refused).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, "refused by the interceptor")
    );
    assert_eq!(server.calls(), 1, "a refused call never reaches the server");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "once per call");
}
