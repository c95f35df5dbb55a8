//! The pool under failure, with real servers behind proxies that kill connections: a
//! killed endpoint's calls move to the other one with no failed call (retries on), 64
//! tasks of 1,000 calls each survive random connection kills without a lost or stuck
//! call, a long call on a connection cleanup gives back is drained, not cut, and
//! dropping the channel stops every task it started (counted by the runtime).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{client, eventually, request};
use ephemos::config::ServiceConfig;
use ephemos::config::model::PoolConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::{EchoServer, Proxy, ProxyMode};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const SOON: Duration = Duration::from_secs(10);

/// Retries UNAVAILABLE on every method of the echo service.
fn retrying() -> ServiceConfig {
    ServiceConfig::parse_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap()
}

fn pool(size: u32, max_size: u32, cleanup: Duration) -> PoolConfig {
    PoolConfig {
        size,
        max_size,
        cleanup_interval: cleanup,
        ..ephemos::config::Preset::Production.pool_config()
    }
}

fn channel_over(proxies: &[&Proxy], pool: PoolConfig) -> Channel {
    let endpoints: Vec<Address> = proxies.iter().map(|p| Address::from(p.addr())).collect();
    Channel::plaintext(endpoints[0].clone())
        .target_name("echo")
        .endpoints(endpoints)
        .connection(common::quick())
        .pool(pool)
        .service_config(retrying())
        .connect_lazy()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_endpoints_calls_move_to_the_other_with_no_failed_call() {
    let (a, b) = (EchoServer::start("a").await, EchoServer::start("b").await);
    let (pa, pb) = (Proxy::start(a.addr()).await, Proxy::start(b.addr()).await);
    let channel = channel_over(&[&pa, &pb], pool(2, 2, Duration::from_secs(30)));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..32 {
        let mut client = client(&channel);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            for c in 0..100 {
                client
                    .unary(request(&format!("{t}.{c}")))
                    .await
                    .unwrap_or_else(|status| panic!("call {t}.{c} failed: {status:?}"));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    eventually(SOON, "a third of the calls done", || {
        done.load(Ordering::Relaxed) > 1000
    })
    .await;
    assert!(a.calls() > 0, "both endpoints took calls before the kill");
    pa.switch(ProxyMode::Refuse).await;
    pa.cut_all();
    let a_at_kill = a.calls();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 3200);
    // Every call was served (a killed call may have been served twice: by a before the
    // kill and by b on the retry), and b took everything after the kill.
    assert!(a.calls() + b.calls() >= 3200);
    assert!(
        a.calls() <= a_at_kill + 32,
        "a served calls after it was killed"
    );
    let stats = channel.stats();
    assert!(
        stats
            .connections
            .iter()
            .any(|c| c.endpoint == pa.addr().to_string()
                && c.state != ephemos::ConnectivityState::Ready),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_of_a_thousand_calls_survive_random_connection_kills() {
    let (a, b) = (EchoServer::start("a").await, EchoServer::start("b").await);
    let (pa, pb) = (Proxy::start(a.addr()).await, Proxy::start(b.addr()).await);
    let proxies = Arc::new([pa, pb]);
    let channel = channel_over(
        &[&proxies[0], &proxies[1]],
        pool(4, 4, Duration::from_millis(100)),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let killer = tokio::spawn({
        let (proxies, stop) = (proxies.clone(), stop.clone());
        async move {
            let mut kills = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(100..300))).await;
                proxies[fastrand::usize(..2)].cut_all();
                kills += 1;
            }
            kills
        }
    });
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for t in 0..64 {
        let mut client = client(&channel);
        let (ok, failed) = (ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            for c in 0..1000 {
                let mut call = tonic::Request::new(request(&format!("{t}.{c}")));
                call.set_timeout(SOON);
                match client.unary(call).await {
                    Ok(reply) => {
                        assert_eq!(reply.into_inner().message, format!("{t}.{c}"));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => {
                        // Only a call whose response had begun when its connection was
                        // cut may fail (gRFC A6 does not retry a committed call).
                        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(300), all)
        .await
        .expect("a call is stuck: 64 x 1000 calls did not end");
    stop.store(true, Ordering::Relaxed);
    let kills = killer.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("{ok} calls succeeded, {failed} failed, {kills} kills");
    assert_eq!(ok + failed, 64_000, "every call ended");
    assert!(kills > 0);
    assert!(
        failed <= 64_000 / 200,
        "{failed} calls failed: more than a committed call per kill can explain"
    );
    assert!(
        a.calls() + b.calls() >= ok,
        "the servers served every success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_on_a_connection_cleanup_gives_back_is_drained_not_cut() {
    let server = EchoServer::start("s").await;
    let proxy = Proxy::start(server.addr()).await;
    let mut config = pool(1, 2, Duration::from_millis(50));
    config.max_streams_per_connection = Some(2);
    let channel = channel_over(&[&proxy], config);
    let open = |name: &'static str| {
        let channel = channel.clone();
        async move {
            let (tx, rx) = mpsc::channel::<EchoRequest>(4);
            let mut replies = client(&channel)
                .bidi(ReceiverStream::new(rx))
                .await
                .unwrap()
                .into_inner();
            tx.send(request(name)).await.unwrap();
            assert_eq!(replies.next().await.unwrap().unwrap().message, name);
            (tx, replies)
        }
    };
    // Two fill the first connection; the third opens the second.
    let first = open("first").await;
    let second = open("second").await;
    let (tx, mut replies) = open("long").await;
    assert_eq!(server.connections_accepted(), 2);
    // The first connection's calls end: the rest fit in one, so cleanup gives back the
    // second, which still carries the long call.
    for (tx, mut replies) in [first, second] {
        drop(tx);
        assert!(replies.next().await.is_none());
    }
    eventually(SOON, "the pool shrank", || {
        channel.stats().pool_evictions == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.open_connections(),
        2,
        "the draining connection was closed"
    );
    tx.send(request("still here")).await.unwrap();
    assert_eq!(replies.next().await.unwrap().unwrap().message, "still here");
    // New calls went to the first connection meanwhile.
    client(&channel).unary(request("new")).await.unwrap();
    drop(tx);
    assert!(replies.next().await.is_none());
    // (h2 keeps a connection open while a stream's handle lives.)
    drop(replies);
    eventually(SOON, "the drained connection closed", || {
        proxy.open_connections() == 1
    })
    .await;
}

#[test]
fn dropping_the_channel_stops_every_task_it_started() {
    // The servers run on a runtime of their own, so the client's runtime counts only
    // the channel's tasks (drivers, health watches, cleanup, hyper's connections).
    let servers = tokio::runtime::Runtime::new().unwrap();
    let (a, b) = servers.block_on(async {
        (
            EchoServer::start_with_health("a").await,
            EchoServer::start_with_health("b").await,
        )
    });
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_runtime.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_alive_tasks(), 0);
        let endpoints = [Address::from(a.addr()), Address::from(b.addr())];
        let channel = Channel::plaintext(endpoints[0].clone())
            .target_name("echo")
            .endpoints(endpoints)
            .pool(pool(3, 5, Duration::from_millis(20)))
            .health_check(Some(ephemos::config::model::HealthCheckConfig {
                service_name: "".into(),
            }))
            .connect_lazy()
            .unwrap();
        let mut client = client(&channel);
        for i in 0..50 {
            client.unary(request(&i.to_string())).await.unwrap();
        }
        // Every connection made (and health-checked), so no task is still to start.
        eventually(SOON, "every connection READY", || {
            common::all_ready(&channel)
        })
        .await;
        let running = metrics.num_alive_tasks();
        // 10 drivers (2 endpoints x max_size 5), the cleanup task, and for each of the
        // connections made a health watch and hyper's connection task.
        assert!(running >= 11, "{running} tasks");
        let clone = channel.clone();
        drop(channel);
        drop(client);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A clone keeps the channel alive: its drivers and cleanup task run on (cleanup
        // may have closed a connection the pool grew, so its task may be gone), and it
        // still carries calls, counted at the servers.
        let alive = metrics.num_alive_tasks();
        assert!(
            alive >= 11 && alive <= running,
            "{alive} tasks after dropping the original, {running} before"
        );
        let served = a.calls() + b.calls();
        common::client(&clone)
            .unary(request("still"))
            .await
            .unwrap();
        assert_eq!(a.calls() + b.calls(), served + 1);
        drop(clone);
        eventually(SOON, "every task stopped", || {
            metrics.num_alive_tasks() == 0
        })
        .await;
    });
    drop((a, b));
}
