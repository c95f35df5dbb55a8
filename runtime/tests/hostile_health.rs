//! Health servers that do not behave (gRFC A17), written frame by frame: a Watch answered
//! with a status tonic cannot read, a Trailers-Only answer, a stream that never says
//! anything. Each is a failed check with a backoff, never a connection left CONNECTING
//! for ever: `connect()` fails with what went wrong, the check is made again, and once
//! the server answers SERVING, calls are served (counted at the server).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ephemos::{Channel, ConnectivityState};
use ephemos_test_support::{RawConnection, RawServer};

/// Generous: the connect timeout is 500 ms and the backoff 100 ms.
const SOON: Duration = Duration::from_secs(10);

/// `HealthCheckResponse { status: SERVING }`: field 1, varint 1.
const SERVING: &[u8] = &[0x08, 0x01];

/// How a connection's first Watch call is answered; later ones get SERVING, but for
/// [`FirstAnswer::Silence`], which every one gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstAnswer {
    /// Trailers-Only, `grpc-status: 0` with a `grpc-status-details-bin` that is not base64.
    BadDetails,
    /// Trailers-Only, `grpc-status: 0`: the stream ends without a message.
    TrailersOnly,
    /// Response headers, then nothing, for ever.
    Silence,
}

/// What the server counts: Watch calls and other calls.
#[derive(Clone, Default)]
struct Counts {
    watches: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl Counts {
    fn watches(&self) -> usize {
        self.watches.load(Ordering::SeqCst)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A server whose connections' Watch calls get `first` and then SERVING, and whose
/// other calls are answered. A connection's requests until it has answered SERVING are
/// Watch calls: the client sends calls only to a connection its server said SERVING
/// on, and that Watch stays open.
async fn health_server(first: FirstAnswer, counts: Counts) -> RawServer {
    RawServer::start_with(counts, move |c, counts| serve(c, first, counts)).await
}

async fn serve(mut c: RawConnection, first: FirstAnswer, counts: Counts) -> std::io::Result<()> {
    c.handshake().await?;
    let grpc = [(":status", "200"), ("content-type", "application/grpc")];
    let watch = c.request().await?.stream;
    counts.watches.fetch_add(1, Ordering::SeqCst);
    match first {
        FirstAnswer::BadDetails => {
            let mut fields = grpc.to_vec();
            fields.extend([("grpc-status", "0"), ("grpc-status-details-bin", "!!!")]);
            c.headers(watch, &fields, true).await?;
        }
        FirstAnswer::TrailersOnly => {
            let mut fields = grpc.to_vec();
            fields.push(("grpc-status", "0"));
            c.headers(watch, &fields, true).await?;
        }
        FirstAnswer::Silence => loop {
            c.headers(watch, &grpc, false).await?;
            let watch = c.request().await?.stream;
            counts.watches.fetch_add(1, Ordering::SeqCst);
            c.headers(watch, &grpc, false).await?;
        },
    }
    let watch = c.request().await?.stream;
    counts.watches.fetch_add(1, Ordering::SeqCst);
    c.headers(watch, &grpc, false).await?;
    c.grpc_message(watch, SERVING).await?;
    loop {
        let call = c.request().await?;
        counts.calls.fetch_add(1, Ordering::SeqCst);
        c.respond(call.stream, &[]).await?;
    }
}

fn channel(server: &RawServer) -> Channel {
    common::echo_target(&format!(
        "[targets.echo]\nendpoints = {}\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\nhealth_check = true\nconnect_timeout = \"500ms\"\n\
         backoff = {{ base = \"100ms\", max = \"200ms\" }}\n",
        common::endpoints_of([server.addr()])
    ))
}

/// A server answering the first Watch with `first`: `connect()` fails saying `why` (the
/// connection does not stay CONNECTING waiting for an answer), and the check is made
/// again after its backoff.
async fn first_check_fails(first: FirstAnswer, why: &str) -> (RawServer, Channel, Counts) {
    let counts = Counts::default();
    let server = health_server(first, counts.clone()).await;
    let channel = channel(&server);
    let error = tokio::time::timeout(SOON, channel.connect())
        .await
        .unwrap_or_else(|_| panic!("connect() hangs: {}", channel.stats()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not healthy")
            && error.contains("health check failed")
            && error.contains(why),
        "{error}"
    );
    assert_eq!(counts.calls(), 0, "a call went to an unhealthy connection");
    common::eventually(SOON, "the Watch made again after its backoff", || {
        counts.watches() >= 2
    })
    .await;
    (server, channel, counts)
}

/// [`first_check_fails`], then the next Watch's SERVING lets calls through.
async fn fails_then_serves(first: FirstAnswer, why: &str) {
    let (server, channel, counts) = first_check_fails(first, why).await;
    common::wait_for(&channel, ConnectivityState::Ready, SOON).await;
    common::unary_calls(&channel, 3).await;
    assert_eq!(counts.calls(), 3);
    assert_eq!(server.connections(), 1, "health is not a reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_status_tonic_cannot_read_is_a_failed_check_not_a_dead_task() {
    fails_then_serves(
        FirstAnswer::BadDetails,
        "grpc-status 0 with a grpc-status-details-bin that is not base64",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailers_only_watch_answer_is_a_failed_check() {
    fails_then_serves(FirstAnswer::TrailersOnly, "the server ended the Watch call").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_never_answers_fails_after_the_connect_timeout() {
    let (_server, channel, _) = first_check_fails(
        FirstAnswer::Silence,
        "no health answer within the connect timeout",
    )
    .await;
    assert_eq!(
        channel.state(),
        ConnectivityState::TransientFailure,
        "{}",
        channel.stats()
    );
}
