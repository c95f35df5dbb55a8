//! Tracing: each call is a `grpc.call` span with its target, method and status, and
//! each attempt a `grpc.attempt` span inside it with its number, the connection the pool
//! picked and the status; retried attempts carry their number. Captured with a
//! tracing-subscriber layer that keeps every span's fields, against a real server whose
//! answers the test scripts.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{client, request};
use ephemos::config::service_config::ServiceConfig;
use ephemos::{Address, Channel};
use ephemos_test_support::{Answer, FailingServer};
use tonic::Code;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// A span as it was closed: its name, its parent's name, its fields.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    parent: Option<String>,
    fields: HashMap<String, String>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

#[derive(Clone, Default)]
struct Spans {
    open: Arc<Mutex<HashMap<u64, Seen>>>,
    closed: Arc<Mutex<Vec<Seen>>>,
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.open.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(seen) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(seen) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(seen);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_and_each_of_its_attempts_are_spans_with_their_fields() {
    let spans = Spans::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))
        .unwrap();
    let server = FailingServer::start([Answer::Fail(Code::Unavailable, "1")]).await;
    let config = ServiceConfig::parse_json(
        r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}],
          "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .unwrap();
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("traced")
        .service_config(config)
        .connect_lazy()
        .unwrap();
    client(&channel).unary(request("t")).await.unwrap();
    assert_eq!(server.calls(), 2, "counted at the server");
    drop(channel);

    let closed = spans.closed.lock().unwrap().clone();
    let calls: Vec<&Seen> = closed.iter().filter(|s| s.name == "grpc.call").collect();
    assert_eq!(calls.len(), 1, "{closed:#?}");
    let call = &calls[0].fields;
    assert_eq!(call["grpc.target"], "traced");
    assert_eq!(call["grpc.method"], "/echo.v1.Echo/Unary");
    assert_eq!(call["grpc.status"], "OK");

    let attempts: Vec<&Seen> = closed.iter().filter(|s| s.name == "grpc.attempt").collect();
    assert_eq!(attempts.len(), 2, "{closed:#?}");
    let mut by_number: Vec<(String, String)> = attempts
        .iter()
        .map(|a| {
            (
                a.fields["grpc.attempt"].clone(),
                a.fields["grpc.status"].clone(),
            )
        })
        .collect();
    by_number.sort();
    assert_eq!(
        by_number,
        [
            ("0".to_owned(), "UNAVAILABLE".to_owned()),
            ("1".to_owned(), "OK".to_owned())
        ]
    );
    for attempt in &attempts {
        assert_eq!(attempt.parent.as_deref(), Some("grpc.call"), "{attempt:?}");
        assert_eq!(
            attempt.fields.get("ephemos.connection").map(String::as_str),
            Some("0"),
            "the pool names the connection it picked: {attempt:?}"
        );
    }
}
