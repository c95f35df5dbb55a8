//! The replay buffer's memory, read through `channel.stats().replay_buffer_bytes`: a call
//! keeps its request messages only while it is uncommitted and under 256 KiB, all calls
//! together stay under 16 MiB, and nothing is held once a call commits or overflows.

mod common;

use common::{MS, channel, client, eventually, quick, request};
use ephemos_test_support::EchoServer;
use ephemos_test_support::pb::EchoRequest;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const CHANNEL_LIMIT: usize = 16 << 20;

fn padded(bytes: usize) -> EchoRequest {
    EchoRequest {
        padding: vec![1; bytes],
        ..Default::default()
    }
}

/// Starts `calls` client streams (uncommitted: the server answers when they end), each
/// sending `messages` of `bytes`, and keeps them open.
async fn open_client_streams(
    channel: &ephemos::Channel,
    calls: usize,
    messages: usize,
    bytes: usize,
) -> Vec<mpsc::Sender<EchoRequest>> {
    let mut senders = Vec::new();
    for _ in 0..calls {
        let (tx, rx) = mpsc::channel(messages + 1);
        let mut client = client(channel);
        tokio::spawn(async move { client.client_stream(ReceiverStream::new(rx)).await });
        for _ in 0..messages {
            tx.send(padded(bytes)).await.unwrap();
        }
        senders.push(tx);
    }
    senders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_calls_hold_their_messages_until_they_commit() {
    let server = EchoServer::start("s").await;
    let channel = channel(server.addr(), quick());
    let streams = open_client_streams(&channel, 20, 2, 50 << 10).await;
    // Each keeps 100 KiB (and a little per message) for a replay.
    eventually(MS(10_000), "20 calls buffer 100 KiB each", || {
        channel.stats().replay_buffer_bytes >= 20 * (100 << 10)
    })
    .await;
    assert!(channel.stats().replay_buffer_bytes < 20 * (101 << 10));
    drop(streams);
    eventually(MS(10_000), "committed calls hold nothing", || {
        channel.stats().replay_buffer_bytes == 0
    })
    .await;
    eventually(MS(10_000), "the server served them", || {
        server.calls() == 20
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_sent_past_their_buffer_hold_nothing_while_they_idle() {
    let server = EchoServer::start("s").await;
    let channel = channel(server.addr(), quick());
    // 300 KiB each: past a call's 256 KiB, so each commits and lets go of its buffer.
    let _open = open_client_streams(&channel, 20, 6, 50 << 10).await;
    // The 6th message of every call is out of the client's hands once its window allows;
    // sampling until then, the held bytes never pass what 20 partial buffers can hold.
    let mut zero_since = None;
    for _ in 0..500 {
        let held = channel.stats().replay_buffer_bytes;
        assert!(held <= 20 * (256 << 10), "{held}");
        if held == 0 {
            let since = *zero_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > MS(300) {
                break;
            }
        } else {
            zero_since = None;
        }
        tokio::time::sleep(MS(10)).await;
    }
    assert_eq!(
        channel.stats().replay_buffer_bytes,
        0,
        "idle streams hold no replay bytes"
    );
    assert_eq!(server.calls(), 20, "all 20 streams are open at the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_calls_together_stay_under_the_channels_16_mib() {
    let server = EchoServer::start("s").await;
    let channel = channel(server.addr(), quick());
    // 80 calls of 250 KiB would hold 20 MB: the channel's budget stops at 16 MiB.
    let _open = open_client_streams(&channel, 80, 5, 50 << 10).await;
    eventually(MS(20_000), "the budget fills", || {
        channel.stats().replay_buffer_bytes > CHANNEL_LIMIT - (256 << 10)
    })
    .await;
    for _ in 0..20 {
        let held = channel.stats().replay_buffer_bytes;
        assert!(held <= CHANNEL_LIMIT, "{held} bytes held");
        tokio::time::sleep(MS(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bidi_stream_commits_at_the_response_headers_and_then_keeps_nothing() {
    let server = EchoServer::start("s").await;
    let channel = channel(server.addr(), quick());
    let mut open = Vec::new();
    for _ in 0..10 {
        let (tx, rx) = mpsc::channel(4);
        let mut replies = client(&channel)
            .bidi(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        tx.send(padded(100 << 10)).await.unwrap();
        // Its echo proves the message went out after the headers (the commit).
        replies.next().await.unwrap().unwrap();
        tx.send(request("small")).await.unwrap();
        replies.next().await.unwrap().unwrap();
        open.push((tx, replies));
    }
    assert_eq!(channel.stats().replay_buffer_bytes, 0);
}
