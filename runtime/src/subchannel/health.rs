//! Client-side health checking (gRFC A17): one `grpc.health.v1.Health/Watch` stream on
//! each connection, made with tonic-health's generated client over that connection
//! alone. The driver maps what it reports onto the subchannel's state the way grpc-go's
//! health client does: not READY until the server says SERVING, TRANSIENT_FAILURE while
//! it says anything else or the stream has failed, READY when the server has no health
//! service (UNIMPLEMENTED, logged once per channel at error level). A failed stream is
//! opened again after the connection backoff, which a received message resets.
//!
//! The answers go through the rules a call's do (`protocol::response` and
//! `protocol::status`): a non-gRPC answer, or a status tonic could not read safely, is a
//! failed check. So is a stream whose first answer has not come within the connect
//! timeout, and a panic in the Watch call: the task never dies leaving the connection
//! in CONNECTING with nobody to tell it otherwise.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ephemos_config::model::BackoffConfig;
use futures_util::FutureExt as _;
use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout_at};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::backoff::ConnectionBackoff;
use crate::error::BoxError;
use crate::protocol::{response, status};
use crate::retry::AttemptBody;

/// What a channel's connections ask the server about (shared by its subchannels).
#[derive(Debug)]
pub(crate) struct HealthCheck {
    /// The service name sent in each Watch request; empty asks about the whole server.
    pub(crate) service: String,
    /// The `:authority` of the Watch calls (the channel's).
    pub(crate) authority: Authority,
    /// Whether a server's UNIMPLEMENTED answer has been logged on this channel.
    unimplemented_logged: AtomicBool,
}

impl HealthCheck {
    pub(crate) fn new(service: String, authority: Authority) -> Arc<Self> {
        Arc::new(Self {
            service,
            authority,
            unimplemented_logged: AtomicBool::new(false),
        })
    }
}

/// What the health check of one connection says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// No answer yet on this connection.
    Checking,
    /// The server says SERVING.
    Serving,
    /// The server says something else: NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN.
    NotServing(String),
    /// The Watch call failed; it is made again after a backoff.
    Failed(String),
    /// The server has no health service: healthy, as gRFC A17 says.
    Unimplemented,
}

impl Health {
    /// Why the connection takes no calls, when it takes none.
    pub(crate) fn problem(&self) -> Option<String> {
        match self {
            Health::Serving | Health::Unimplemented => None,
            Health::Checking => Some("waiting for the first health check answer".to_owned()),
            Health::NotServing(status) => Some(format!("the server's health is {status}")),
            Health::Failed(reason) => Some(format!("the health check failed: {reason}")),
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Health::Checking => f.write_str("checking"),
            Health::Serving => f.write_str("SERVING"),
            Health::NotServing(status) => f.write_str(status),
            Health::Failed(_) => f.write_str("check failing"),
            Health::Unimplemented => f.write_str("no health service (healthy)"),
        }
    }
}

/// The watch of one connection: its reports, and the task, stopped when this is dropped.
pub(crate) struct HealthWatch {
    pub(crate) reports: watch::Receiver<Health>,
    task: JoinHandle<()>,
    /// The task has ended and how was seen.
    ended: bool,
}

impl HealthWatch {
    /// The next report; `None` once the task has ended on its own (the server has no
    /// health service, or the connection closed). A task that died (a panic) reports a
    /// failed check, so the connection is not left waiting for an answer.
    pub(crate) async fn next_report(&mut self) -> Option<Health> {
        if self.reports.changed().await.is_ok() {
            return Some(self.reports.borrow_and_update().clone());
        }
        if self.ended {
            return None;
        }
        let joined = (&mut self.task).await;
        self.ended = true;
        match joined {
            Err(error) if error.is_panic() => Some(Health::Failed(
                "the health check task panicked (a bug: the connection is replaced by cleanup)"
                    .to_owned(),
            )),
            _ => None,
        }
    }
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching the health of the connection `sender` belongs to; each Watch stream
/// must give its first answer within `first_answer_within` (the connect timeout).
pub(crate) fn start(
    sender: SendRequest<AttemptBody>,
    check: Arc<HealthCheck>,
    target: Arc<str>,
    backoff: BackoffConfig,
    first_answer_within: Duration,
) -> HealthWatch {
    let (tx, reports) = watch::channel(Health::Checking);
    let task = tokio::spawn(run(
        OnConnection {
            sender,
            authority: check.authority.clone(),
            target,
        },
        check,
        backoff,
        first_answer_within,
        tx,
    ));
    HealthWatch {
        reports,
        task,
        ended: false,
    }
}

/// How one Watch stream ended.
enum WatchEnd {
    /// The server has no health service.
    Unimplemented,
    /// It failed, or ended, or gave no answer in time: why.
    Failed(String),
}

async fn run(
    connection: OnConnection,
    check: Arc<HealthCheck>,
    backoff: BackoffConfig,
    first_answer_within: Duration,
    reports: watch::Sender<Health>,
) {
    let mut backoff = ConnectionBackoff::new(backoff);
    let target = connection.target.clone();
    loop {
        let started = Instant::now();
        // A panic inside tonic (or here) on what a server sent is a failed check, made
        // again after the backoff: the task never dies with the subchannel left waiting
        // for an answer.
        let watched = AssertUnwindSafe(watch_once(
            connection.clone(),
            &check.service,
            &reports,
            &mut backoff,
            started + first_answer_within,
        ))
        .catch_unwind()
        .await;
        let reason = match watched {
            Ok(WatchEnd::Unimplemented) => {
                if !check.unimplemented_logged.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        %target,
                        service = %check.service,
                        "health_check is set but the server has no grpc.health.v1.Health service: its connections count as healthy (gRFC A17)"
                    );
                }
                reports.send_replace(Health::Unimplemented);
                return;
            }
            Ok(WatchEnd::Failed(reason)) => reason,
            Err(panic) => format!(
                "the Watch call panicked in the client: {}",
                panic_message(panic.as_ref())
            ),
        };
        if connection.sender.is_closed() {
            return;
        }
        tracing::debug!(%target, %reason, "health check failed: trying again after a backoff");
        reports.send_replace(Health::Failed(reason));
        sleep_until(started + backoff.next_delay()).await;
    }
}

/// One Watch stream, its answers published as they come, until it ends; its first
/// answer must come by `first_answer_by`.
async fn watch_once(
    connection: OnConnection,
    service: &str,
    reports: &watch::Sender<Health>,
    backoff: &mut ConnectionBackoff,
    first_answer_by: Instant,
) -> WatchEnd {
    let no_answer = || {
        WatchEnd::Failed("the server gave no health answer within the connect timeout".to_owned())
    };
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let mut client = HealthClient::new(connection);
    let mut stream = match timeout_at(first_answer_by, client.watch(request)).await {
        Err(_) => return no_answer(),
        Ok(Err(status)) => return ended_with(&status),
        Ok(Ok(response)) => response.into_inner(),
    };
    let mut answered = false;
    loop {
        let next = if answered {
            stream.message().await
        } else {
            match timeout_at(first_answer_by, stream.message()).await {
                Ok(next) => next,
                Err(_) => return no_answer(),
            }
        };
        match next {
            Ok(Some(answer)) => {
                answered = true;
                backoff.reset();
                reports.send_replace(match answer.status() {
                    ServingStatus::Serving => Health::Serving,
                    other => Health::NotServing(other.as_str_name().to_owned()),
                });
            }
            Ok(None) => return WatchEnd::Failed("the server ended the Watch call".to_owned()),
            Err(status) => return ended_with(&status),
        }
    }
}

/// A Watch call that ended with `status`.
fn ended_with(status: &tonic::Status) -> WatchEnd {
    if status.code() == Code::Unimplemented {
        WatchEnd::Unimplemented
    } else {
        WatchEnd::Failed(format!("{:?}: {}", status.code(), status.message()))
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// tonic's view of one connection: every request goes on it, with the channel's
/// authority.
#[derive(Clone)]
struct OnConnection {
    sender: SendRequest<AttemptBody>,
    authority: Authority,
    target: Arc<str>,
}

type SendFuture = Pin<Box<dyn Future<Output = Result<Response<SafeStatus>, BoxError>> + Send>>;

impl tower::Service<Request<tonic::body::Body>> for OnConnection {
    type Response = Response<SafeStatus>;
    type Error = BoxError;
    type Future = SendFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.sender.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> SendFuture {
        let (mut parts, body) = request.into_parts();
        // tonic's path is always valid: a failure leaves it, and the server answers.
        let _ = crate::channel::set_origin(&mut parts.uri, &self.authority);
        let body = AttemptBody::once(body, self.target.clone());
        let sent = self.sender.send_request(Request::from_parts(parts, body));
        let target = self.target.clone();
        Box::pin(async move {
            let (mut parts, body) = sent.await?.into_parts();
            // The rules a call's answer goes through: a non-gRPC answer is a failed
            // check, and a status tonic cannot read safely is made UNKNOWN.
            response::check_head(&target, parts.status, &mut parts.headers)?;
            Ok(Response::from_parts(parts, SafeStatus { inner: body }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A Watch response's body, its trailers' status made safe for tonic.
    struct SafeStatus {
        #[pin]
        inner: Incoming,
    }
}

impl http_body::Body for SafeStatus {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let polled = self.project().inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = polled {
            let mut frame = frame;
            if let Some(trailers) = frame.trailers_mut() {
                status::sanitize(trailers);
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_reports_a_failed_check() {
        let (tx, reports) = watch::channel(Health::Checking);
        let task = tokio::spawn(async move {
            let _reports = tx;
            panic!("a bug");
        });
        let mut watch = HealthWatch {
            reports,
            task,
            ended: false,
        };
        let report = watch.next_report().await;
        assert!(
            matches!(&report, Some(Health::Failed(why)) if why.contains("panicked")),
            "{report:?}"
        );
        assert_eq!(watch.next_report().await, None);
    }

    #[tokio::test]
    async fn a_task_that_ends_on_its_own_reports_its_last_word_and_then_nothing() {
        let (tx, reports) = watch::channel(Health::Checking);
        let task = tokio::spawn(async move {
            tx.send_replace(Health::Unimplemented);
        });
        let mut watch = HealthWatch {
            reports,
            task,
            ended: false,
        };
        assert_eq!(watch.next_report().await, Some(Health::Unimplemented));
        assert_eq!(watch.next_report().await, None);
    }
}
