//! What the pool keeps per connection, measured with dhat's counting allocator: a channel of
//! 64 connections against one of 1, before any connects (the pool's own bookkeeping: the
//! subchannel handle, its shared state, its load counters and its driver task), and once
//! all are READY (adding hyper's and h2's state for a live connection). Printed for the
//! record (`--nocapture`); bounded so a regression that multiplies it fails.

mod common;

use std::time::Duration;

use common::eventually;
use ephemos::config::model::PoolConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::EchoServer;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn live() -> isize {
    dhat::HeapStats::get().curr_bytes as isize
}

fn pool(size: u32) -> PoolConfig {
    PoolConfig {
        size,
        max_size: size,
        ..ephemos::config::Preset::Production.pool_config()
    }
}

/// Bytes live after building a channel of `size` connections (and, with `connect`,
/// after every one is READY), minus those live before.
async fn measure(server: &EchoServer, size: u32, connect: bool) -> (isize, Channel) {
    // Let earlier channels' tasks finish dropping.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = live();
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("echo")
        .pool(pool(size))
        .connect_lazy()
        .unwrap();
    // Each driver task runs up to its first wait.
    tokio::time::sleep(Duration::from_millis(50)).await;
    if connect {
        channel.connect().await.unwrap();
        eventually(Duration::from_secs(10), "every connection READY", || {
            common::all_ready(&channel)
        })
        .await;
    }
    (live() - before, channel)
}

#[tokio::test(flavor = "current_thread")]
async fn the_pool_keeps_little_per_connection() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let server = EchoServer::start("s").await;
    let (one, channel) = measure(&server, 1, false).await;
    drop(channel);
    let (many, channel) = measure(&server, 64, false).await;
    drop(channel);
    let idle = (many - one) / 63;

    let (one, channel) = measure(&server, 1, true).await;
    drop(channel);
    let (many, channel) = measure(&server, 64, true).await;
    drop(channel);
    let connected = (many - one) / 63;

    println!(
        "pool bookkeeping per connection: {idle} bytes before connecting; {connected} bytes \
         per READY connection (with hyper's and h2's state)"
    );
    assert!(
        idle > 0,
        "nothing measured: is the counting allocator in use?"
    );
    assert!(idle < 4096, "{idle} bytes per connection before connecting");
    assert!(
        connected < 160 * 1024,
        "{connected} bytes per READY connection"
    );
}
