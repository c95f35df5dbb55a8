//! Servers that do not behave, written frame by frame: what was executed at the server
//! is counted there, and what the caller gets follows grpc/grpc's
//! `doc/http-grpc-status-mapping.md`, `doc/PROTOCOL-HTTP2.md` and `doc/statuscodes.md`.
//! Only the server's own refusals are sent again; nothing a server sends panics the
//! caller.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{MS, channel, client, quick, request};
use ephemos::ConnectError;
use ephemos_test_support::pb::{EchoReply, EchoRequest};
use ephemos_test_support::raw::code;
use ephemos_test_support::{RawConnection, RawServer, StreamEnd};
use prost::Message;
use tokio::sync::Notify;
use tonic::Code;

fn reply(message: &str) -> Vec<u8> {
    EchoReply {
        message: message.to_owned(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn decoded(messages: &[Bytes]) -> Vec<String> {
    messages
        .iter()
        .map(|m| EchoRequest::decode(m.clone()).unwrap().message)
        .collect()
}

/// Answers every request on the connection with its message echoed, counting each as
/// executed.
async fn serve(mut c: RawConnection, executed: Arc<AtomicUsize>) -> std::io::Result<()> {
    loop {
        let call = c.request().await?;
        executed.fetch_add(1, Ordering::SeqCst);
        let text = decoded(&call.messages).join(",");
        c.respond(call.stream, &reply(&text)).await?;
    }
}

/// Reads whatever the client sends until it closes.
async fn drain(mut c: RawConnection) -> std::io::Result<()> {
    loop {
        c.frame().await?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_server_ran_is_not_sent_again_after_a_protocol_error() {
    // The server runs the call, then breaks flow control (WINDOW_UPDATE of 0 on the
    // connection): the client closes the connection with GOAWAY PROTOCOL_ERROR, which it
    // raised itself, after a request the server processed.
    let executed = Arc::new(AtomicUsize::new(0));
    let server = RawServer::start_with(executed.clone(), |mut c, executed| async move {
        c.handshake().await?;
        c.request().await?;
        executed.fetch_add(1, Ordering::SeqCst);
        c.window_update(0, 0).await?;
        drain(c).await
    })
    .await;
    let channel = channel(server.addr(), quick());
    let status = client(&channel).unary(request("once")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("PROTOCOL_ERROR"), "{status:?}");
    assert!(status.message().contains("by the client"), "{status:?}");
    tokio::time::sleep(MS(200)).await;
    assert_eq!(
        executed.load(Ordering::SeqCst),
        1,
        "executions at the server"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_sent_again_once_then_fails() {
    let streams = Arc::new(AtomicUsize::new(0));
    let server = RawServer::start_with(streams.clone(), |mut c, streams| async move {
        c.handshake().await?;
        loop {
            let (stream, _) = c.stream_opened().await?;
            streams.fetch_add(1, Ordering::SeqCst);
            c.rst_stream(stream, code::REFUSED_STREAM).await?;
        }
    })
    .await;
    let channel = channel(server.addr(), quick());
    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("RST_STREAM REFUSED_STREAM (0x7)"),
        "{status:?}"
    );
    assert_eq!(
        streams.load(Ordering::SeqCst),
        2,
        "one attempt and one transparent retry (gRFC A6)"
    );
    assert_eq!(channel.stats().transparent_retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_goaway_excluded_streams_are_replayed_and_run_once() {
    // Connection 0 refuses the first stream with REFUSED_STREAM and serves the rest;
    // connection 1 never comes: the replay goes to the same connection.
    let executed = Arc::new(AtomicUsize::new(0));
    let refusing = RawServer::start_with(executed.clone(), |mut c, executed| async move {
        c.handshake().await?;
        let (stream, _) = c.stream_opened().await?;
        c.rst_stream(stream, code::REFUSED_STREAM).await?;
        serve(c, executed).await
    })
    .await;
    let first = channel(refusing.addr(), quick());
    let reply = client(&first).unary(request("refused")).await.unwrap();
    assert_eq!(reply.into_inner().message, "refused");
    assert_eq!(executed.load(Ordering::SeqCst), 1);

    // The first connection's GOAWAY excludes the stream (last stream 0): the call moves
    // to a new connection and runs there, once.
    let executed = Arc::new(AtomicUsize::new(0));
    let excluding = RawServer::start_with(executed.clone(), |mut c, executed| async move {
        c.handshake().await?;
        if c.index() == 0 {
            c.stream_opened().await?;
            c.goaway(0, code::NO_ERROR, b"draining").await?;
            return drain(c).await;
        }
        serve(c, executed).await
    })
    .await;
    let channel = channel(excluding.addr(), quick());
    let reply = client(&channel).unary(request("moved")).await.unwrap();
    assert_eq!(reply.into_inner().message, "moved");
    assert_eq!(executed.load(Ordering::SeqCst), 1, "executions equal calls");
    assert_eq!(excluding.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_client_stream_arrives_whole() {
    // The server refuses the first stream after two of its messages; the replay must
    // carry those two, then what the caller sends after.
    let refused = Arc::new(Notify::new());
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = RawServer::start_with(
        (refused.clone(), received.clone()),
        |mut c, (refused, received)| async move {
            c.handshake().await?;
            let (stream, _) = c.stream_opened().await?;
            c.read_messages(stream, |m| m.len() == 2).await?;
            c.rst_stream(stream, code::REFUSED_STREAM).await?;
            refused.notify_one();
            let call = c.request().await?;
            received.lock().unwrap().extend(decoded(&call.messages));
            c.respond(call.stream, &reply("done")).await?;
            drain(c).await
        },
    )
    .await;
    let channel = channel(server.addr(), quick());
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call = tokio::spawn({
        let mut client = client(&channel);
        async move {
            client
                .client_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        }
    });
    tx.send(request("a")).await.unwrap();
    tx.send(request("b")).await.unwrap();
    refused.notified().await;
    tx.send(request("c")).await.unwrap();
    drop(tx);
    let reply = call.await.unwrap().expect("the replayed call succeeds");
    assert_eq!(reply.into_inner().message, "done");
    assert_eq!(*received.lock().unwrap(), ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_over_the_replay_buffer_fails_instead_of_going_out_truncated() {
    let streams = Arc::new(AtomicUsize::new(0));
    let server = RawServer::start_with(streams.clone(), |mut c, streams| async move {
        c.handshake().await?;
        let (stream, _) = c.stream_opened().await?;
        streams.fetch_add(1, Ordering::SeqCst);
        // More than 256 KiB arrived: the client can no longer replay it.
        c.read_messages(stream, |m| {
            m.iter().map(Bytes::len).sum::<usize>() > 300 << 10
        })
        .await?;
        c.rst_stream(stream, code::REFUSED_STREAM).await?;
        loop {
            c.stream_opened().await?;
            streams.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await;
    let channel = channel(server.addr(), quick());
    let big = |i: usize| EchoRequest {
        message: i.to_string(),
        padding: vec![7; 64 << 10],
        ..Default::default()
    };
    let upload = tokio_stream::iter((0..8).map(big));
    let status = client(&channel).client_stream(upload).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("not sent again"), "{status:?}");
    tokio::time::sleep(MS(200)).await;
    assert_eq!(streams.load(Ordering::SeqCst), 1, "no truncated replay");
    assert_eq!(channel.stats().replay_buffer_bytes, 0);
}

/// A response's header fields.
type Head = [(&'static str, &'static str)];

/// A server that answers every request with `head` (and `body` as DATA, if any).
async fn answering(
    head: &'static [(&'static str, &'static str)],
    body: &'static [u8],
) -> RawServer {
    RawServer::start(move |mut c| async move {
        c.handshake().await?;
        loop {
            let call = c.request().await?;
            let end = body.is_empty();
            c.headers(call.stream, head, end).await?;
            if !end {
                c.data(call.stream, body, true).await?;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_grpc_responses_map_by_their_http_status_without_reading_the_body() {
    let page: &[u8] = b"503 Service Unavailable: the upstream is down";
    let cases: [(&Head, Code, &str); 4] = [
        (
            &[(":status", "503"), ("content-type", "text/html")],
            Code::Unavailable,
            "HTTP 503",
        ),
        (
            &[(":status", "404"), ("content-type", "text/plain")],
            Code::Unimplemented,
            "HTTP 404",
        ),
        (
            &[(":status", "401")],
            Code::Unauthenticated,
            "no content-type",
        ),
        (
            &[(":status", "200"), ("content-type", "text/html")],
            Code::Unknown,
            "not gRPC",
        ),
    ];
    for (head, code, words) in cases {
        let server = answering(head, page).await;
        let channel = channel(server.addr(), quick());
        let status = client(&channel).unary(request("x")).await.unwrap_err();
        assert_eq!(status.code(), code, "{head:?}: {status:?}");
        assert!(status.message().contains(words), "{head:?}: {status:?}");
        assert!(
            !status.message().contains("bytes"),
            "the page was read as a gRPC message: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_details_that_are_not_base64_are_unknown_instead_of_a_panic() {
    // Trailers-Only, then in trailers after a message.
    let trailers_only = answering(
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "13"),
            ("grpc-message", "boom"),
            ("grpc-status-details-bin", "!!! not base64 !!!"),
        ],
        b"",
    )
    .await;
    let in_trailers = RawServer::start(|mut c| async move {
        c.handshake().await?;
        loop {
            let call = c.request().await?;
            c.headers(
                call.stream,
                &[(":status", "200"), ("content-type", "application/grpc")],
                false,
            )
            .await?;
            c.grpc_message(call.stream, &reply("r")).await?;
            c.headers(
                call.stream,
                &[("grpc-status", "13"), ("grpc-status-details-bin", "%%%")],
                true,
            )
            .await?;
        }
    })
    .await;
    for server in [&trailers_only, &in_trailers] {
        let channel = channel(server.addr(), quick());
        let mut client = client(&channel);
        let call = tokio::spawn(async move { client.unary(request("x")).await });
        let status = call
            .await
            .expect("the caller's task did not panic")
            .unwrap_err();
        assert_eq!(status.code(), Code::Unknown, "{status:?}");
        assert!(
            status.message().contains("grpc-status 13") && status.message().contains("not base64"),
            "{status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_that_is_not_a_code_says_what_the_server_sent() {
    let server = answering(
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "abc"),
        ],
        b"",
    )
    .await;
    let channel = channel(server.addr(), quick());
    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert_eq!(
        status.message(),
        "the server sent an invalid grpc-status \"abc\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_right_after_settings_is_reported_as_such() {
    let server = RawServer::start(|mut c| async move {
        // SETTINGS and GOAWAY in one write: they arrive together.
        c.read_preface().await?;
        let goaway =
            ephemos_test_support::raw::goaway_payload(0, code::ENHANCE_YOUR_CALM, b"go away");
        c.send_frames(&[(0x4, 0, 0, &[]), (0x7, 0, 0, &goaway)])
            .await?;
        drain(c).await
    })
    .await;
    let channel = channel(server.addr(), quick());
    let error = channel.connect().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ConnectError::Http2 { .. }), "{error:?}");
    assert!(
        text.contains("GOAWAY ENHANCE_YOUR_CALM (0xb) \"go away\" right after its SETTINGS"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_header_list_limit_fails_once_and_is_not_replayed() {
    // 20 KiB: the client resets the stream. 80 KiB (over 4x the limit): the client closes
    // the connection with GOAWAY. Either way the server ran the call, once.
    for size in [20 << 10, 80 << 10] {
        let executed = Arc::new(AtomicUsize::new(0));
        let big: &'static str = Box::leak("h".repeat(size).into_boxed_str());
        let server = RawServer::start_with(executed.clone(), move |mut c, executed| async move {
            c.handshake().await?;
            loop {
                let call = c.request().await?;
                executed.fetch_add(1, Ordering::SeqCst);
                c.headers(
                    call.stream,
                    &[
                        (":status", "200"),
                        ("content-type", "application/grpc"),
                        ("x-big", big),
                    ],
                    false,
                )
                .await?;
            }
        })
        .await;
        let channel = channel(server.addr(), quick());
        let status = client(&channel).unary(request("x")).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{size}: {status:?}");
        assert!(status.message().contains("by the client"), "{status:?}");
        tokio::time::sleep(MS(200)).await;
        assert_eq!(
            executed.load(Ordering::SeqCst),
            1,
            "{size} bytes of headers"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_names_its_reason_and_who_sent_it() {
    let server = RawServer::start(|mut c| async move {
        c.handshake().await?;
        loop {
            let call = c.request().await?;
            c.rst_stream(call.stream, 0x2).await?;
        }
    })
    .await;
    let channel = channel(server.addr(), quick());
    let status = client(&channel).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status
            .message()
            .contains("stream reset by the server with INTERNAL_ERROR (0x2)"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_max_concurrent_streams_is_readable_from_the_channel() {
    let server = RawServer::start(|mut c| async move {
        c.handshake_with(&[(0x3, 7)]).await?;
        drain(c).await
    })
    .await;
    let channel = channel(server.addr(), quick());
    channel.connect().await.unwrap();
    let stats = channel.stats();
    assert_eq!(stats.max_concurrent_streams, Some(7));
    assert_eq!(stats.connections[0].max_concurrent_streams, Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_request_opens_no_stream() {
    let streams = Arc::new(AtomicUsize::new(0));
    let server = RawServer::start_with(streams.clone(), |mut c, streams| async move {
        c.handshake().await?;
        loop {
            let (stream, _) = c.stream_opened().await?;
            streams.fetch_add(1, Ordering::SeqCst);
            if let (_, StreamEnd::EndStream) = c.read_messages(stream, |_| false).await? {
                c.respond(stream, &reply("ok")).await?;
            }
        }
    })
    .await;
    let mut config = quick();
    config.max_message_size.send = 1024;
    let channel = channel(server.addr(), config);
    let big = EchoRequest {
        padding: vec![0; 2000],
        ..Default::default()
    };
    let status = client(&channel).unary(big).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("send limit of 1024 bytes"),
        "{status:?}"
    );
    client(&channel).unary(request("small")).await.unwrap();
    assert_eq!(
        streams.load(Ordering::SeqCst),
        1,
        "only the small call opened a stream"
    );
}
