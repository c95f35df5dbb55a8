//! `ephemos.health.status` is a series per connection: two connections to one endpoint
//! whose server answers their Watch calls differently (one SERVING, one NOT_SERVING)
//! are two series, 1 and 0, not one series each overwrites.
//!
//! A test binary of its own: the recorder is the process's global one.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ephemos_test_support::{RawConnection, RawServer};
use metrics::{Key, KeyName, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

/// Keeps the gauges (what this test reads); the rest is dropped.
#[derive(Clone)]
struct Gauges(Arc<Registry<Key, AtomicStorage>>);

impl metrics::Recorder for Gauges {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.0
            .get_or_create_gauge(key, |g| metrics::Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, _: &Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// `HealthCheckResponse { status }`: field 1, a varint (1 SERVING, 2 NOT_SERVING).
fn health_answer(status: u8) -> [u8; 2] {
    [0x08, status]
}

/// The first connection's Watch is answered SERVING, the others' NOT_SERVING.
async fn serve(mut c: RawConnection) -> std::io::Result<()> {
    c.handshake().await?;
    let watch = c.request().await?.stream;
    c.headers(
        watch,
        &[(":status", "200"), ("content-type", "application/grpc")],
        false,
    )
    .await?;
    let status = if c.index() == 0 { 1 } else { 2 };
    c.grpc_message(watch, &health_answer(status)).await?;
    loop {
        c.frame().await?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_of_an_endpoint_has_its_own_health_series() {
    let gauges = Gauges(Arc::new(Registry::atomic()));
    metrics::set_global_recorder(gauges.clone()).unwrap();
    let server = RawServer::start(serve).await;
    let channel = common::echo_target(&format!(
        "[targets.echo]\nendpoints = {}\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\nhealth_check = true\n\
         pool = {{ size = 2, warm = true }}\n",
        common::endpoints_of([server.addr()])
    ));
    common::eventually(Duration::from_secs(10), "both connections answered", || {
        let mut health: Vec<Option<String>> = channel
            .stats()
            .connections
            .into_iter()
            .map(|c| c.health)
            .collect();
        health.sort();
        health == [Some("NOT_SERVING".to_owned()), Some("SERVING".to_owned())]
    })
    .await;

    let mut series: Vec<(Vec<String>, f64)> = gauges
        .0
        .get_gauge_handles()
        .into_iter()
        .filter(|(key, _)| key.name() == "ephemos.health.status")
        .map(|(key, value)| {
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (labels, f64::from_bits(value.load(Ordering::SeqCst)))
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
    assert_eq!(series.len(), 2, "a series per connection: {series:?}");
    assert!(values.contains(&1.0) && values.contains(&0.0), "{series:?}");
    let address = format!("ephemos.address={}", server.addr());
    for (i, (labels, _)) in series.iter().enumerate() {
        assert_eq!(
            labels,
            &[
                address.clone(),
                format!("ephemos.connection={i}"),
                "grpc.target=echo".to_owned()
            ],
        );
    }
}
