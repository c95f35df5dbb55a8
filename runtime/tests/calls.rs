//! Every kind of call through an ephemos Channel against a real tonic server, before and
//! after the server is killed and restarted on the same port.

mod common;

use common::{MS, channel, client, quick, request, wait_for};
use ephemos::ConnectivityState;
use ephemos_test_support::EchoServer;
use ephemos_test_support::pb::EchoRequest;
use tokio_stream::StreamExt;

async fn all_four_kinds(
    client: &mut ephemos_test_support::pb::echo_client::EchoClient<ephemos::Channel>,
    server: &str,
) {
    let reply = client
        .unary(request("hello"))
        .await
        .expect("unary")
        .into_inner();
    assert_eq!(
        (reply.message.as_str(), reply.server.as_str()),
        ("hello", server)
    );

    let mut stream = client
        .server_stream(EchoRequest {
            message: "s".into(),
            count: 3,
            ..Default::default()
        })
        .await
        .expect("server stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        got.push(item.expect("stream item").message);
    }
    assert_eq!(got, ["s 0", "s 1", "s 2"]);

    let upload = tokio_stream::iter(["a", "b", "c"].map(request));
    let reply = client
        .client_stream(upload)
        .await
        .expect("client stream")
        .into_inner();
    assert_eq!(reply.message, "a,b,c");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = client
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("bidi")
        .into_inner();
    for word in ["x", "y"] {
        tx.send(request(word)).await.unwrap();
        let reply = replies.next().await.expect("a reply").expect("bidi item");
        assert_eq!(reply.message, word);
    }
    drop(tx);
    assert!(replies.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_streaming_calls_work_and_survive_a_server_restart() {
    let server = EchoServer::start("first").await;
    let addr = server.addr();
    let channel = channel(addr, quick());
    let mut client = client(&channel);

    all_four_kinds(&mut client, "first").await;
    assert_eq!(server.calls(), 4, "counted at the server");
    assert_eq!(channel.state(), ConnectivityState::Ready);

    server.stop().await;
    wait_for(&channel, ConnectivityState::Idle, MS(5000)).await;

    let server = EchoServer::start_on(addr, "second").await;
    all_four_kinds(&mut client, "second").await;
    assert_eq!(server.calls(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("ephemos-unix-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let server = EchoServer::start_unix(&path, "unix").await;
    let address: ephemos::Address = format!("unix:{}", path.display()).parse().unwrap();
    let channel = ephemos::Channel::plaintext(address)
        .connection(quick())
        .connect_lazy()
        .unwrap();
    let mut client = client(&channel);
    all_four_kinds(&mut client, "unix").await;
    assert_eq!(server.calls(), 4);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_receives_the_time_left_in_the_finest_unit() {
    let server = EchoServer::start("s").await;
    let channel = channel(server.addr(), quick());
    let mut client = client(&channel);
    client.unary(request("no deadline")).await.unwrap();
    for (timeout, unit) in [(MS(5000), 'u'), (MS(50), 'n')] {
        let mut call = tonic::Request::new(request("timed"));
        call.set_timeout(timeout);
        client.unary(call).await.unwrap();
        let sent = server
            .timeouts()
            .pop()
            .unwrap()
            .expect("a grpc-timeout header");
        assert!(sent.ends_with(unit), "{timeout:?} was sent as {sent}");
        let digits: u64 = sent[..sent.len() - 1].parse().unwrap();
        let left = match unit {
            'u' => std::time::Duration::from_micros(digits),
            _ => std::time::Duration::from_nanos(digits),
        };
        assert!(
            left <= timeout,
            "{sent} is more than the {timeout:?} asked for"
        );
        assert!(
            left > timeout / 2,
            "{sent}: the time left, not the time gone"
        );
    }
    assert_eq!(server.timeouts()[0], None, "no deadline, no header");
}
