//! Client-side health checking (gRFC A17): one `grpc.health.v1.Health/Watch` stream on
//! each connection, made with tonic-health's generated client over that connection
//! alone. The driver maps what it reports onto the subchannel's state the way grpc-go's
//! health client does: not READY until the server says SERVING, TRANSIENT_FAILURE while
//! it says anything else or the stream has failed, READY when the server has no health
//! service (UNIMPLEMENTED, logged once per channel at error level). A failed stream is
//! opened again after the connection backoff, which a received message resets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use ephemos_config::model::BackoffConfig;
use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::backoff::ConnectionBackoff;
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
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching the health of the connection `sender` belongs to.
pub(crate) fn start(
    sender: SendRequest<AttemptBody>,
    check: Arc<HealthCheck>,
    target: Arc<str>,
    backoff: BackoffConfig,
) -> HealthWatch {
    let (tx, reports) = watch::channel(Health::Checking);
    let task = tokio::spawn(run(sender, check, target, backoff, tx));
    HealthWatch { reports, task }
}

async fn run(
    sender: SendRequest<AttemptBody>,
    check: Arc<HealthCheck>,
    target: Arc<str>,
    backoff: BackoffConfig,
    reports: watch::Sender<Health>,
) {
    let mut backoff = ConnectionBackoff::new(backoff);
    let connection = OnConnection {
        sender,
        authority: check.authority.clone(),
        target: target.clone(),
    };
    let mut client = HealthClient::new(connection.clone());
    loop {
        let started = Instant::now();
        let request = HealthCheckRequest {
            service: check.service.clone(),
        };
        let ended = match client.watch(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(answer)) => {
                            backoff.reset();
                            reports.send_replace(match answer.status() {
                                ServingStatus::Serving => Health::Serving,
                                other => Health::NotServing(other.as_str_name().to_owned()),
                            });
                        }
                        Ok(None) => break Err("the server ended the Watch call".to_owned()),
                        Err(status) => break Ok(status),
                    }
                }
            }
            Err(status) => Ok(status),
        };
        let reason = match ended {
            Ok(status) if status.code() == Code::Unimplemented => {
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
            Ok(status) => format!("{:?}: {}", status.code(), status.message()),
            Err(reason) => reason,
        };
        if connection.sender.is_closed() {
            return;
        }
        tracing::debug!(%target, %reason, "health check failed: trying again after a backoff");
        reports.send_replace(Health::Failed(reason));
        sleep_until(started + backoff.next_delay()).await;
    }
}

/// tonic's view of one connection: every request goes on it, with the channel's
/// authority.
#[derive(Clone)]
struct OnConnection {
    sender: SendRequest<AttemptBody>,
    authority: Authority,
    target: Arc<str>,
}

type SendFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, hyper::Error>> + Send>>;

impl tower::Service<Request<tonic::body::Body>> for OnConnection {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = SendFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> SendFuture {
        let (mut parts, body) = request.into_parts();
        // tonic's path is always valid: a failure leaves it, and the server answers.
        let _ = crate::channel::set_origin(&mut parts.uri, &self.authority);
        let body = AttemptBody::once(body, self.target.clone());
        Box::pin(self.sender.send_request(Request::from_parts(parts, body)))
    }
}
