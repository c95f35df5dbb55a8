//! A server that floods the client with SETTINGS frames, each with setting identifiers
//! it has not sent before, while calls run: the calls keep succeeding, and what the
//! client keeps of the server's settings stays bounded (the live heap, counted by the
//! allocator, does not grow with the frames).
//!
//! A test binary of its own: the counting allocator sees the whole process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{channel, client, eventually, quick, request};
use ephemos_test_support::raw::kind;
use ephemos_test_support::{RawConnection, RawServer};

/// Counts the heap bytes live.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// SETTINGS frames the server sends.
const FRAMES: usize = 5_000;
/// Calls made while it sends them; after each, the server sends its share of frames.
const CALLS: usize = 100;
/// Fresh setting identifiers in each frame (unknown ones: RFC 9113 says to ignore them).
const FRESH_PER_FRAME: usize = 4;
/// The SETTINGS_MAX_CONCURRENT_STREAMS of the last frame: seen, the flood is taken in.
const LAST_MAX_STREAMS: u32 = 77;

/// Heap bytes allocated and not yet freed.
fn live_heap() -> i64 {
    let stats = HEAP.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// The SETTINGS frames sent after the `call`th call (fresh identifiers from 0x100 on).
fn flood_after(call: usize) -> Vec<Vec<u8>> {
    let per_call = FRAMES / CALLS;
    (call * per_call..(call + 1) * per_call)
        .map(|frame| {
            let mut payload = Vec::new();
            for j in 0..FRESH_PER_FRAME {
                let id = 0x100 + (frame * FRESH_PER_FRAME + j) as u16;
                payload.extend_from_slice(&id.to_be_bytes());
                payload.extend_from_slice(&1u32.to_be_bytes());
            }
            if frame == FRAMES - 1 {
                payload.extend_from_slice(&3u16.to_be_bytes());
                payload.extend_from_slice(&LAST_MAX_STREAMS.to_be_bytes());
            }
            payload
        })
        .collect()
}

/// Answers every call; after the first `warm` ones, each answer is followed by its share
/// of the flood.
async fn serve(mut c: RawConnection, warm: usize, served: Arc<AtomicUsize>) -> std::io::Result<()> {
    c.handshake_with(&[(3, 100)]).await?;
    loop {
        let call = c.request().await?;
        let n = served.fetch_add(1, Ordering::SeqCst);
        c.respond(call.stream, &[]).await?;
        if let Some(flooding) = n.checked_sub(warm).filter(|&i| i < CALLS) {
            let payloads = flood_after(flooding);
            let frames: Vec<(u8, u8, u32, &[u8])> = payloads
                .iter()
                .map(|p| (kind::SETTINGS, 0, 0, p.as_slice()))
                .collect();
            c.send_frames(&frames).await?;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_flood_with_fresh_identifiers_keeps_the_heap_bounded() {
    const WARM: usize = 20;
    let served = Arc::new(AtomicUsize::new(0));
    let server = RawServer::start_with(served.clone(), |c, served| serve(c, WARM, served)).await;
    let channel = channel(server.addr(), quick());
    let mut client = client(&channel);
    for _ in 0..WARM {
        client.unary(request("warm")).await.unwrap();
    }
    let before = live_heap();

    for i in 0..CALLS {
        client
            .unary(request("during"))
            .await
            .unwrap_or_else(|status| panic!("call {i} during the flood failed: {status:?}"));
    }
    eventually(
        Duration::from_secs(30),
        "the last SETTINGS taken in",
        || {
            channel
                .stats()
                .connections
                .first()
                .and_then(|c| c.max_concurrent_streams)
                == Some(LAST_MAX_STREAMS)
        },
    )
    .await;
    let after = live_heap();
    let settings = channel.stats().connections[0].server_settings.len();
    let grown = after - before;
    eprintln!("grown {grown} bytes, {settings} settings kept");
    assert!(
        grown < 64 << 10,
        "{grown} bytes of heap more after {FRAMES} SETTINGS frames ({settings} settings kept)"
    );
    assert!(settings <= 32, "{settings} settings kept");
    assert_eq!(served.load(Ordering::SeqCst), WARM + CALLS);
    assert_eq!(server.connections(), 1);
}
