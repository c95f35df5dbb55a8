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

/// A server that never answers, and a channel to it whose interceptor writes
/// `grpc-timeout: 200m`; the method has a retry policy (and `method_timeout`, if any).
async fn timed_by_an_interceptor(
    method_timeout: Option<&str>,
) -> (ephemos_test_support::FailingServer, Channel) {
    let server =
        ephemos_test_support::FailingServer::start([ephemos_test_support::Answer::Hang]).await;
    let timeout = method_timeout.map_or(String::new(), |t| format!(r#""timeout": "{t}","#));
    let config = ephemos::config::service_config::ServiceConfig::parse_json(&format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "echo.v1.Echo"}}], {timeout}
            "retryPolicy": {{"maxAttempts": 5, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
              "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"]}}}}]}}"#
    ))
    .unwrap();
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("timed")
        .service_config(config)
        .interceptor(|_, metadata| {
            metadata.insert("grpc-timeout", "200m".parse().unwrap());
            Ok(())
        })
        .connect_lazy()
        .unwrap();
    (server, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_timeout_an_interceptor_writes_is_the_calls_deadline() {
    for method_timeout in [None, Some("30s")] {
        let (server, channel) = timed_by_an_interceptor(method_timeout).await;
        let started = std::time::Instant::now();
        let status = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            client(&channel).unary(request("t")),
        )
        .await
        .expect("the interceptor's deadline ends the call")
        .unwrap_err();
        // The client's deadline, or the server's own timer for the `grpc-timeout` it
        // was sent (tonic answers CANCELLED "Timeout expired"), whichever fires first.
        assert!(
            status.code() == Code::DeadlineExceeded
                || (status.code() == Code::Cancelled && status.message() == "Timeout expired"),
            "{status:?}"
        );
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_millis(190)
                && took < std::time::Duration::from_secs(5),
            "{method_timeout:?}: {took:?}"
        );
        // The server was told the time left (at most 200 ms), and the deadline is
        // not the method's 30 s.
        let received = server.received();
        assert_eq!(received.len(), 1, "{received:#?}");
        let timeout = received[0].timeout.as_deref().unwrap();
        let (digits, unit) = timeout.split_at(timeout.len() - 1);
        let nanos: u64 = digits.parse::<u64>().unwrap()
            * match unit {
                "m" => 1_000_000,
                "u" => 1_000,
                "n" => 1,
                other => panic!("{other}: {timeout}"),
            };
        assert!(nanos <= 200_000_000, "{timeout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interceptor_may_not_touch_the_headers_that_make_the_call_grpc() {
    let server = EchoServer::start("s").await;
    for (header, change) in [
        ("te", None),
        ("content-type", Some("application/json")),
        ("grpc-previous-rpc-attempts", Some("3")),
        ("connection", Some("close")),
    ] {
        let channel = Channel::plaintext(Address::from(server.addr()))
            .target_name("meddling")
            .interceptor(|_, _| Ok(()))
            .interceptor(move |_, metadata| {
                match change {
                    Some(value) => metadata.insert(header, value.parse().unwrap()),
                    None => metadata.remove(header),
                };
                Ok(())
            })
            .connect_lazy()
            .unwrap();
        let status = client(&channel).unary(request("m")).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{header}: {status:?}");
        assert!(
            status
                .message()
                .contains(&format!("interceptor 2 of 2 changed the `{header}` header")),
            "{status:?}"
        );
    }
    let garbled = Channel::plaintext(Address::from(server.addr()))
        .target_name("garbled")
        .interceptor(|_, metadata| {
            metadata.insert("grpc-timeout", "soon".parse().unwrap());
            Ok(())
        })
        .connect_lazy()
        .unwrap();
    let status = client(&garbled).unary(request("g")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status.message().contains("is not a gRPC timeout"),
        "{status:?}"
    );
    assert_eq!(server.calls(), 0, "none of them reached the server");
}
