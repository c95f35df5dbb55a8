//! Cancelling is on the wire: when a call ends early on the client's side (its deadline,
//! a response over the receive limit, or the caller dropping the response), the stream is
//! reset with CANCEL and the request stream stops, also for client- and bidi-streaming
//! calls whose request stream is still open. Seen at a raw server that counts the
//! messages it receives and records the reset.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{MS, channel, client, quick, request};
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::raw::code;
use ephemos_test_support::{RawServer, StreamEnd};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::Code;

/// What the server saw of the one stream it served.
#[derive(Clone)]
struct Seen {
    messages: Arc<AtomicUsize>,
    reset: watch::Receiver<Option<u32>>,
}

impl Seen {
    fn messages(&self) -> usize {
        self.messages.load(Ordering::SeqCst)
    }

    /// The reset's error code, once the client sent it (at most 5 s).
    async fn reset(&mut self) -> Option<u32> {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.reset.wait_for(Option::is_some))
            .await;
        *self.reset.borrow()
    }
}

/// A server that opens the response (`headers`: the call commits) or not, sends a reply
/// of `reply_len` bytes if non-zero, then counts the client's messages until it resets
/// the stream.
async fn server(headers: bool, reply_len: usize) -> (RawServer, Seen) {
    let messages = Arc::new(AtomicUsize::new(0));
    let (reset_tx, reset) = watch::channel(None);
    let state = (messages.clone(), Arc::new(reset_tx));
    let server = RawServer::start_with(state, move |mut c, (counter, reset_tx)| async move {
        c.handshake().await?;
        let (stream, _) = c.stream_opened().await?;
        if headers {
            c.headers(
                stream,
                &[(":status", "200"), ("content-type", "application/grpc")],
                false,
            )
            .await?;
        }
        if reply_len > 0 {
            c.grpc_message(stream, &vec![0x1a; reply_len]).await?;
        }
        let (_, end) = c
            .read_messages(stream, |m| {
                counter.store(m.len(), Ordering::SeqCst);
                false
            })
            .await?;
        if let StreamEnd::Reset(code) = end {
            reset_tx.send_replace(Some(code));
        }
        loop {
            c.frame().await?;
        }
    })
    .await;
    (server, Seen { messages, reset })
}

/// A request stream that never ends: a message every 20 ms.
fn endless() -> impl tokio_stream::Stream<Item = EchoRequest> + Send + 'static {
    tokio_stream::StreamExt::throttle(
        tokio_stream::iter((0..).map(|i: u64| request(&i.to_string()))),
        MS(20),
    )
}

/// After the call ended, the server got a CANCEL and no more messages.
async fn assert_cancelled_on_the_wire(mut seen: Seen) {
    assert_eq!(seen.reset().await, Some(code::CANCEL), "RST_STREAM CANCEL");
    let at_reset = seen.messages();
    tokio::time::sleep(MS(300)).await;
    assert_eq!(
        seen.messages(),
        at_reset,
        "messages kept coming after the reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_resets_a_bidi_stream_whose_request_side_is_open() {
    let (server, seen) = server(true, 0).await;
    let channel = channel(server.addr(), quick());
    let mut call = tonic::Request::new(endless());
    call.set_timeout(MS(400));
    let mut replies = client(&channel).bidi(call).await.unwrap().into_inner();
    let status = replies.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        seen.messages() > 3,
        "the stream was sending: {}",
        seen.messages()
    );
    assert_cancelled_on_the_wire(seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_before_the_response_resets_a_client_stream() {
    let (server, seen) = server(false, 0).await;
    let channel = channel(server.addr(), quick());
    let mut call = tonic::Request::new(endless());
    call.set_timeout(MS(400));
    let status = client(&channel).client_stream(call).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_cancelled_on_the_wire(seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_receive_limit_resets_the_stream() {
    let (server, seen) = server(true, 4096).await;
    let mut config = quick();
    config.max_message_size.recv = 1024;
    let channel = channel(server.addr(), config);
    let mut replies = client(&channel).bidi(endless()).await.unwrap().into_inner();
    let status = replies.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("receive limit of 1024 bytes"),
        "{status:?}"
    );
    assert_cancelled_on_the_wire(seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_response_of_a_bidi_call_resets_the_stream() {
    let (server, seen) = server(true, 0).await;
    let channel = channel(server.addr(), quick());
    let replies = client(&channel).bidi(endless()).await.unwrap().into_inner();
    common::eventually(MS(5000), "messages arrive", || seen.messages() >= 3).await;
    drop(replies);
    assert_cancelled_on_the_wire(seen).await;
    assert_eq!(channel.stats().connections[0].in_flight, 0, "released");
}
