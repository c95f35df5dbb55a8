//! gRPC's standard client metrics (gRFC A66, A94, A96) and ephemos's own, captured with
//! a recorder over metrics-util's registry after a scripted sequence against real servers:
//! calls through a generated client and a path no generated client knows, a health flip
//! long enough for cleanup to evict the connection, a killed connection and refused
//! reconnects, failures a retry policy retries, a stream the server refuses (a
//! transparent retry), and a hedged call. What the recorder holds is checked against
//! what the servers counted.
//!
//! One test in this file: the recorder is the process's global one.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{MS, client, eventually, request};
use ephemos::config::service_config::ServiceConfig;
use ephemos::{Address, Channel, ConnectivityState};
use ephemos_test_support::raw::code;
use ephemos_test_support::{Answer, EchoServer, FailingServer, Proxy, ProxyMode, RawServer};
use metrics::{Key, KeyName, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use tonic::Code;

const SOON: Duration = Duration::from_secs(10);

/// A recorder that keeps every value: counters and gauges as they stand, every value
/// each histogram got. (a recorder over metrics-util's registry resets counters and gauges at
/// each snapshot, which loses an up-down gauge; its registry keeps them.)
#[derive(Clone)]
struct Capture {
    registry: Arc<Registry<Key, AtomicStorage>>,
}

impl metrics::Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        self.registry
            .get_or_create_counter(key, |c| metrics::Counter::from_arc(c.clone()))
    }
    fn register_gauge(&self, key: &Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.registry
            .get_or_create_gauge(key, |g| metrics::Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, key: &Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        self.registry
            .get_or_create_histogram(key, |h| metrics::Histogram::from_arc(h.clone()))
    }
}

/// A metric's key: its name, then its labels sorted, `name{a=1,b=2}`.
fn key_of(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Capture {
    fn counter(&mut self, key: &str) -> u64 {
        self.registry
            .get_counter_handles()
            .into_iter()
            .find(|(k, _)| key_of(k) == key)
            .map_or(0, |(_, c)| c.load(Ordering::SeqCst))
    }

    fn gauge(&mut self, key: &str) -> Option<f64> {
        self.registry
            .get_gauge_handles()
            .into_iter()
            .find(|(k, _)| key_of(k) == key)
            .map(|(_, g)| f64::from_bits(g.load(Ordering::SeqCst)))
    }

    fn histogram(&mut self, key: &str) -> Vec<f64> {
        self.registry
            .get_histogram_handles()
            .into_iter()
            .find(|(k, _)| key_of(k) == key)
            .map(|(_, h)| h.data())
            .unwrap_or_default()
    }

    /// Every key of `name`, with the labels.
    fn keys(&mut self, name: &str) -> Vec<String> {
        let prefix = format!("{name}{{");
        let mut keys: Vec<String> = self
            .registry
            .get_counter_handles()
            .into_keys()
            .chain(self.registry.get_gauge_handles().into_keys())
            .chain(self.registry.get_histogram_handles().into_keys())
            .map(|k| key_of(&k))
            .filter(|k| k.starts_with(&prefix))
            .collect();
        keys.sort();
        keys
    }

    async fn wait(&mut self, what: &str, mut condition: impl FnMut(&mut Capture) -> bool) {
        let deadline = tokio::time::Instant::now() + SOON;
        while !condition(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still not so after {SOON:?}"
            );
            tokio::time::sleep(MS(20)).await;
        }
    }
}

const UNARY: &str = "grpc.method=echo.v1.Echo/Unary";

fn service_config(json: &str) -> ServiceConfig {
    ServiceConfig::parse_json(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_metric_counts_what_the_servers_saw() {
    let mut m = Capture {
        registry: Arc::new(Registry::atomic()),
    };
    metrics::set_global_recorder(m.clone()).unwrap();

    // 1. Calls through a generated client, and one to a path no generated client
    // knows, over a proxy in front of a server with a health service.
    let server = EchoServer::start_with_health("a").await;
    let proxy = Proxy::start(server.addr()).await;
    let echo = common::echo_target(&format!(
        "[targets.echo]\nendpoints = [\"{}\"]\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\nhealth_check = true\n\
         pool = {{ size = 1, cleanup_interval = \"300ms\" }}\n\
         backoff = {{ base = \"50ms\", max = \"100ms\" }}\n",
        proxy.addr()
    ));
    common::unary_calls(&echo, 4).await;
    let mut raw = tonic::client::Grpc::new(echo.clone());
    raw.ready().await.unwrap();
    let reply: tonic::Response<ephemos_test_support::pb::EchoReply> = raw
        .unary(
            tonic::Request::new(request("raw")),
            http::uri::PathAndQuery::from_static("/echo.v1.Echo/Unary"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "raw");
    assert_eq!(server.calls(), 5, "counted at the server");

    let started = |method: &str, target: &str| {
        format!("grpc.client.attempt.started{{{method},grpc.target={target}}}")
    };
    assert_eq!(m.counter(&started(UNARY, "echo")), 4);
    assert_eq!(m.counter(&started("grpc.method=other", "echo")), 1);
    assert_eq!(
        m.keys("grpc.client.attempt.started"),
        [started(UNARY, "echo"), started("grpc.method=other", "echo")],
        "only the generated client's method is named"
    );
    let ok = |name: &str| format!("{name}{{{UNARY},grpc.status=OK,grpc.target=echo}}");
    assert_eq!(m.histogram(&ok("grpc.client.call.duration")).len(), 4);
    let durations = m.histogram(&ok("grpc.client.attempt.duration"));
    assert_eq!(durations.len(), 4);
    assert!(
        durations.iter().all(|d| *d > 0.0 && *d < 10.0),
        "{durations:?}"
    );
    // EchoRequest { message: "0" } is 3 bytes (tag, length, "0"); the reply says more.
    let sent = m.histogram(&ok(
        "grpc.client.attempt.sent_total_compressed_message_size",
    ));
    assert_eq!(sent, [3.0; 4], "the request messages' bytes, no prefixes");
    let rcvd = m.histogram(&ok(
        "grpc.client.attempt.rcvd_total_compressed_message_size",
    ));
    let expected = prost::Message::encoded_len(&ephemos_test_support::pb::EchoReply {
        message: "0".into(),
        server: "a".into(),
        ..Default::default()
    }) as f64;
    assert_eq!(rcvd.len(), 4);
    assert_eq!(rcvd[0], expected, "{rcvd:?}");
    // One connection, made once; the first call waited for it.
    let echo_target = "{grpc.target=echo}";
    assert_eq!(
        m.counter(&format!(
            "grpc.subchannel.connection_attempts_succeeded{echo_target}"
        )),
        1
    );
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(
        m.gauge("grpc.subchannel.open_connections{grpc.security_level=none,grpc.target=echo}"),
        Some(1.0)
    );
    assert_eq!(
        m.counter(&format!("ephemos.pool.hits{echo_target}"))
            + m.counter(&format!("ephemos.pool.misses{echo_target}")),
        5
    );
    assert_eq!(m.counter(&format!("ephemos.pool.misses{echo_target}")), 1);
    assert_eq!(
        m.gauge(&format!("ephemos.pool.size{echo_target}")),
        Some(1.0)
    );
    assert_eq!(
        m.histogram("ephemos.connect.duration{ephemos.result=succeeded,grpc.target=echo}")
            .len(),
        1
    );
    let health = format!(
        "ephemos.health.status{{ephemos.address={},ephemos.connection=0,grpc.target=echo}}",
        proxy.addr()
    );
    assert_eq!(m.gauge(&health), Some(1.0));

    // 2. A health flip, held past a cleanup interval: the connection is evicted
    // (replaced), then SERVING again.
    server.set_serving(false).await;
    m.wait("NOT_SERVING", |m| m.gauge(&health) == Some(0.0))
        .await;
    m.wait("an eviction", |m| {
        m.counter(&format!("ephemos.pool.evictions{echo_target}")) >= 1
    })
    .await;
    let shutdown_key = "grpc.subchannel.disconnections{grpc.disconnect_error=subchannel shutdown,grpc.target=echo}";
    assert!(
        m.counter(shutdown_key) >= 1,
        "the replaced connection ended"
    );
    server.set_serving(true).await;
    m.wait("SERVING again", |m| m.gauge(&health) == Some(1.0))
        .await;
    common::wait_for(&echo, ConnectivityState::Ready, SOON).await;
    let accepted = server.connections_accepted();
    assert!(accepted >= 2, "the eviction replaced the connection");
    m.wait("every replaced connection counted", |m| {
        m.counter(&format!(
            "grpc.subchannel.connection_attempts_succeeded{echo_target}"
        )) == accepted as u64
    })
    .await;

    // 3. The connection killed, reconnects refused: a disconnection that is not the
    // client's doing, failed attempts, a call that fails UNAVAILABLE.
    let before: u64 = m
        .keys("grpc.subchannel.disconnections")
        .iter()
        .map(|k| m.counter(k))
        .sum();
    proxy.switch(ProxyMode::Refuse).await;
    proxy.cut_all();
    m.wait("the killed connection", |m| {
        let all: u64 = m
            .keys("grpc.subchannel.disconnections")
            .iter()
            .map(|k| m.counter(k))
            .sum();
        all > before
    })
    .await;
    let killed: Vec<String> = m
        .keys("grpc.subchannel.disconnections")
        .into_iter()
        .filter(|k| !k.contains("subchannel shutdown"))
        .collect();
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert!(
        ["unknown", "connection reset", "socket error"]
            .iter()
            .any(|reason| killed[0].contains(&format!("grpc.disconnect_error={reason},"))),
        "{killed:?}"
    );
    m.wait("open connections back to 0", |m| {
        m.gauge("grpc.subchannel.open_connections{grpc.security_level=none,grpc.target=echo}")
            == Some(0.0)
    })
    .await;
    let status = loop {
        match client(&echo).unary(request("down")).await {
            Err(status) => break status,
            // The loss may not have been seen yet.
            Ok(_) => tokio::time::sleep(MS(20)).await,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        m.counter(&format!(
            "grpc.subchannel.connection_attempts_failed{echo_target}"
        )) >= 1
    );
    assert!(
        !m.histogram(&format!(
            "grpc.client.call.duration{{{UNARY},grpc.status=UNAVAILABLE,grpc.target=echo}}"
        ))
        .is_empty()
    );
    assert!(
        !m.histogram("ephemos.connect.duration{ephemos.result=failed,grpc.target=echo}")
            .is_empty()
    );
    proxy.switch(ProxyMode::Forward).await;
    eventually(SOON, "calls again", || {
        echo.state() != ConnectivityState::Shutdown
    })
    .await;
    let mut echo_client = client(&echo);
    let deadline = tokio::time::Instant::now() + SOON;
    while echo_client.unary(request("up")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(MS(20)).await;
    }

    // 4. A retry policy: two UNAVAILABLE, then OK: three attempts, two retries.
    let failing = FailingServer::start([
        Answer::Fail(Code::Unavailable, "1"),
        Answer::Fail(Code::Unavailable, "2"),
    ])
    .await;
    let retried = Channel::plaintext(Address::from(failing.addr()))
        .target_name("failing")
        .service_config(service_config(
            r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
              "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
        ))
        .connect_lazy()
        .unwrap();
    client(&retried).unary(request("r")).await.unwrap();
    assert_eq!(failing.calls(), 3, "counted at the server");
    let failing_labels = format!("{UNARY},grpc.target=failing");
    assert_eq!(
        m.counter(&format!("grpc.client.attempt.started{{{failing_labels}}}")),
        3
    );
    let attempt = |status: &str| {
        format!("grpc.client.attempt.duration{{{UNARY},grpc.status={status},grpc.target=failing}}")
    };
    assert_eq!(m.histogram(&attempt("UNAVAILABLE")).len(), 2);
    assert_eq!(m.histogram(&attempt("OK")).len(), 1);
    assert_eq!(
        m.histogram(&format!("grpc.client.call.retries{{{failing_labels}}}")),
        [2.0]
    );
    let delay = m.histogram(&format!("grpc.client.call.retry_delay{{{failing_labels}}}"));
    assert!(
        delay.len() == 1 && delay[0] >= 0.0 && delay[0] < 1.0,
        "{delay:?}"
    );
    assert!(
        m.histogram(&format!(
            "grpc.client.call.transparent_retries{{{failing_labels}}}"
        ))
        .is_empty(),
        "zero is not reported (A96)"
    );

    // 5. A stream the server refuses: sent again once, transparently, then failed.
    let streams = Arc::new(AtomicUsize::new(0));
    let refusing = RawServer::start_with(streams.clone(), |mut c, streams| async move {
        c.handshake().await?;
        loop {
            let (stream, _) = c.stream_opened().await?;
            streams.fetch_add(1, Ordering::SeqCst);
            c.rst_stream(stream, code::REFUSED_STREAM).await?;
        }
    })
    .await;
    let refused = Channel::plaintext(Address::from(refusing.addr()))
        .target_name("refusing")
        .connect_lazy()
        .unwrap();
    let status = client(&refused).unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(streams.load(Ordering::SeqCst), 2, "counted at the server");
    let refusing_labels = format!("{UNARY},grpc.target=refusing");
    assert_eq!(
        m.histogram(&format!(
            "grpc.client.call.transparent_retries{{{refusing_labels}}}"
        )),
        [1.0]
    );
    assert_eq!(
        m.counter(&format!("grpc.client.attempt.started{{{refusing_labels}}}")),
        2
    );

    // 6. A hedged call: the first attempt hangs, the hedge answers; the loser is
    // cancelled.
    let hedging = FailingServer::start([Answer::Hang, Answer::Succeed]).await;
    let hedged = Channel::plaintext(Address::from(hedging.addr()))
        .target_name("hedged")
        .service_config(service_config(
            r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
              "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0.05s",
                "nonFatalStatusCodes": ["UNAVAILABLE"]}}]}"#,
        ))
        .connect_lazy()
        .unwrap();
    client(&hedged).unary(request("h")).await.unwrap();
    assert_eq!(hedging.calls(), 2, "counted at the server");
    let hedged_labels = format!("{UNARY},grpc.target=hedged");
    assert_eq!(
        m.histogram(&format!("grpc.client.call.hedges{{{hedged_labels}}}")),
        [1.0]
    );
    assert_eq!(
        m.histogram(&format!(
            "grpc.client.attempt.duration{{{UNARY},grpc.status=CANCELLED,grpc.target=hedged}}"
        ))
        .len(),
        1,
        "the losing hedge ends CANCELLED"
    );

    // 7. Server errors in Trailers-Only responses: the call's status is the server's,
    // not CANCELLED (tonic drops the body of a failed Trailers-Only response unread).
    let erring = FailingServer::start([
        Answer::Fail(Code::NotFound, "no such thing"),
        Answer::Fail(Code::PermissionDenied, "not you"),
    ])
    .await;
    let errors = Channel::plaintext(Address::from(erring.addr()))
        .target_name("erring")
        .connect_lazy()
        .unwrap();
    let mut errors_client = client(&errors);
    for expected in [Code::NotFound, Code::PermissionDenied] {
        let status = errors_client.unary(request("e")).await.unwrap_err();
        assert_eq!(status.code(), expected);
    }
    assert_eq!(erring.calls(), 2, "counted at the server");
    let call_duration = |target: &str, status: &str| {
        format!("grpc.client.call.duration{{{UNARY},grpc.status={status},grpc.target={target}}}")
    };
    assert_eq!(m.histogram(&call_duration("erring", "NOT_FOUND")).len(), 1);
    assert_eq!(
        m.histogram(&call_duration("erring", "PERMISSION_DENIED"))
            .len(),
        1
    );
    assert!(
        m.histogram(&call_duration("erring", "CANCELLED"))
            .is_empty(),
        "{:?}",
        m.keys("grpc.client.call.duration")
    );

    // 8. No retry fits before the deadline: the call ends at once with the server's
    // UNAVAILABLE, and that is the status recorded (not DEADLINE_EXCEEDED).
    let down = FailingServer::start(std::iter::repeat_n(
        Answer::Fail(Code::Unavailable, "down"),
        10,
    ))
    .await;
    let short = Channel::plaintext(Address::from(down.addr()))
        .target_name("short")
        .service_config(service_config(
            r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}], "timeout": "0.5s",
              "retryPolicy": {"maxAttempts": 2, "initialBackoff": "10s", "maxBackoff": "10s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
        ))
        .connect()
        .await
        .unwrap();
    // A 10 s backoff drawn with full jitter fits in 0.5 s one time in twenty: call
    // until one does not (each call that retried tried twice).
    let mut short_client = client(&short);
    let mut cut_short = 0;
    for _ in 0..5 {
        let status = short_client.unary(request("s")).await.unwrap_err();
        if status.message().contains("no retry fits") {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            cut_short += 1;
        }
    }
    assert!(cut_short > 0, "no call was cut short by its deadline");
    assert_eq!(
        m.histogram(&call_duration("short", "UNAVAILABLE")).len()
            + m.histogram(&call_duration("short", "DEADLINE_EXCEEDED"))
                .len(),
        5
    );
    assert!(m.histogram(&call_duration("short", "UNAVAILABLE")).len() >= cut_short);

    // 9. A call the caller drops while it retries: the retry it made is still counted
    // (A96), as the server saw it.
    let hanging = FailingServer::start([Answer::Fail(Code::Unavailable, "1"), Answer::Hang]).await;
    let dropped = Channel::plaintext(Address::from(hanging.addr()))
        .target_name("dropped")
        .service_config(service_config(
            r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
              "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
        ))
        .connect_lazy()
        .unwrap();
    let mut dropped_client = client(&dropped);
    let mut call = Box::pin(dropped_client.unary(request("d")));
    tokio::select! {
        _ = call.as_mut() => panic!("the second attempt hangs"),
        () = async { while hanging.calls() < 2 { tokio::time::sleep(MS(10)).await } } => {}
    }
    drop(call);
    assert_eq!(
        m.histogram(&format!(
            "grpc.client.call.retries{{{UNARY},grpc.target=dropped}}"
        )),
        [1.0],
        "{:?}",
        m.keys("grpc.client.call.retries")
    );

    // 10. A response message that fails to decode: tonic gives the application
    // INTERNAL and drops the body unread; with the codec generated clients use
    // (`ephemos::__private::ProstCodec`), INTERNAL is the status recorded, not CANCELLED.
    let garbling = RawServer::start(|mut c| async move {
        c.handshake().await?;
        loop {
            let request = c.request().await?;
            // Field 1 (a string) whose length runs past the message's end.
            c.respond(request.stream, &[0x0a, 0x7f, b'x']).await?;
        }
    })
    .await;
    let garbled = Channel::plaintext(Address::from(garbling.addr()))
        .target_name("garbled")
        .connect_lazy()
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(garbled.clone());
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<_, ephemos_test_support::pb::EchoReply, _>(
            tonic::Request::new(request("g")),
            http::uri::PathAndQuery::from_static("/echo.v1.Echo/Unary"),
            ephemos::__private::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    let garbled_duration = |status: &str| {
        format!(
            "grpc.client.call.duration{{grpc.method=other,grpc.status={status},grpc.target=garbled}}"
        )
    };
    assert_eq!(
        m.histogram(&garbled_duration("INTERNAL")).len(),
        1,
        "{:?}",
        m.keys("grpc.client.call.duration")
    );
    assert!(m.histogram(&garbled_duration("CANCELLED")).is_empty());
}
