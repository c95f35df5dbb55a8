//! Connection backoff measured where it happens: at the proxy, from the times it
//! accepted each connection attempt.

mod common;

use std::time::Duration;

use common::{MS, channel, client, eventually, quick, request};
use ephemos::config::model::BackoffConfig;
use ephemos_test_support::{EchoServer, Proxy, ProxyMode};

fn gaps(accepts: &[std::time::Instant]) -> Vec<Duration> {
    accepts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_follow_the_backoff_schedule() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    // Accept then close: each attempt fails at once, so the spacing is the backoff alone.
    proxy.set_mode(ProxyMode::Reset);
    let mut config = quick();
    config.backoff = BackoffConfig {
        base_delay: MS(100),
        multiplier: 2.0,
        jitter: 0.2,
        max_delay: MS(400),
    };
    let channel = channel(proxy.addr(), config);
    let _ = channel.connect().await;
    eventually(MS(10_000), "six attempts", || proxy.accepts().len() >= 6).await;

    let expected = [100u64, 200, 400, 400, 400];
    for (gap, base) in gaps(&proxy.accepts()).iter().zip(expected) {
        // Accept times are taken on a loaded machine too: 50 ms of slack each way below,
        // more above (late is possible, early by more than scheduling noise is a bug).
        let low = MS(base * 8 / 10).saturating_sub(MS(50));
        let high = MS(base * 12 / 10 + 300);
        assert!(
            *gap >= low && *gap <= high,
            "gap {gap:?} outside {low:?}..={high:?} (backoff {base}ms)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_never_make_attempts_sooner_than_the_backoff() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.set_mode(ProxyMode::Reset);
    let mut config = quick();
    config.backoff = BackoffConfig {
        base_delay: MS(300),
        multiplier: 1.0,
        jitter: 0.0,
        max_delay: MS(300),
    };
    let channel = channel(proxy.addr(), config);
    let mut client = client(&channel);
    let started = std::time::Instant::now();
    let mut failures = 0;
    while started.elapsed() < MS(1000) {
        if client.unary(request("x")).await.is_err() {
            failures += 1;
        }
        tokio::time::sleep(MS(5)).await;
    }
    let attempts = proxy.accepts().len();
    assert!(failures > 20, "calls failed fast ({failures})");
    // One attempt at 0 ms, then one per 300 ms: at most 4 in a second (+1 for timing).
    assert!(
        attempts <= 5,
        "{attempts} attempts in one second with a 300 ms backoff"
    );
    assert!(attempts >= 2, "it kept trying ({attempts})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_connection_resets_the_backoff() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.set_mode(ProxyMode::Reset);
    let mut config = quick();
    config.backoff = BackoffConfig {
        base_delay: MS(100),
        multiplier: 3.0,
        jitter: 0.0,
        max_delay: MS(2700),
    };
    let channel = channel(proxy.addr(), config);
    let _ = channel.connect().await;
    // Attempts at 0, 100, 400 ms: the next would wait 900 ms.
    eventually(MS(5000), "three attempts", || proxy.accepts().len() >= 3).await;
    proxy.set_mode(ProxyMode::Forward);
    common::wait_for(&channel, ephemos::ConnectivityState::Ready, MS(5000)).await;

    // Lose the connection, refuse again: the first retry comes after `base`, not 2.7 s.
    proxy.set_mode(ProxyMode::Reset);
    proxy.cut_all();
    common::wait_for(&channel, ephemos::ConnectivityState::Idle, MS(5000)).await;
    let before = proxy.accepts().len();
    let _ = channel.connect().await;
    eventually(MS(5000), "two more attempts", || {
        proxy.accepts().len() >= before + 2
    })
    .await;
    let accepts = proxy.accepts();
    let gap = accepts[before + 1] - accepts[before];
    assert!(
        gap >= MS(50) && gap < MS(700),
        "first retry after READY waited {gap:?}"
    );
}
