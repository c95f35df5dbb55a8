//! The probe's calls: `grpc.health.v1.Health/Check` for the whole server (`""`) and
//! for the target's service, and a few timed Checks as round trips, all through the
//! target's own channel.

use std::time::{Duration, Instant};

use ephemos::Channel;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The answer to one Check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The server's status for the service (`SERVING`, `NOT_SERVING`, ...).
    Status(String),
    /// The server has no health service (UNIMPLEMENTED): it answered, that is all.
    NoHealthService,
    /// The server does not know the service (NOT_FOUND).
    UnknownService,
    /// The call failed.
    Failed {
        /// Its status code.
        code: Code,
        /// Its message.
        message: String,
    },
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status(status) => f.write_str(status),
            Answer::NoHealthService => f.write_str("no health service (UNIMPLEMENTED)"),
            Answer::UnknownService => f.write_str("unknown to the server (NOT_FOUND)"),
            Answer::Failed { code, message } => write!(
                f,
                "call failed: {}: {message}",
                crate::grpc_code::name(*code)
            ),
        }
    }
}

/// One service's health.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    /// The service name asked about (`""` is the whole server).
    pub(crate) service: String,
    /// What the server said.
    pub(crate) answer: Answer,
}

/// Checks the whole server and, when the target names one, its service.
pub(crate) async fn check(
    channel: &Channel,
    service: Option<&str>,
    timeout: Duration,
) -> Vec<Health> {
    let mut names = vec![String::new()];
    names.extend(service.map(str::to_owned));
    let mut answers = Vec::new();
    for name in names {
        let answer = one_check(channel, &name, timeout).await.0;
        answers.push(Health {
            service: name,
            answer,
        });
    }
    answers
}

/// Times `count` Checks of the whole server; a call the server answered with an
/// error status still took one round trip, one that failed on the client side did not.
pub(crate) async fn round_trips(
    channel: &Channel,
    count: usize,
    timeout: Duration,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let (answer, took) = one_check(channel, "", timeout).await;
        if !matches!(answer, Answer::Failed { .. }) {
            times.push(took);
        }
    }
    times
}

async fn one_check(channel: &Channel, service: &str, timeout: Duration) -> (Answer, Duration) {
    let mut client = HealthClient::new(channel.clone());
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    request.set_timeout(timeout);
    let started = Instant::now();
    let result = client.check(request).await;
    let took = started.elapsed();
    let answer = match result {
        Ok(response) => Answer::Status(
            ServingStatus::try_from(response.into_inner().status)
                .map(|s| s.as_str_name().to_owned())
                .unwrap_or_else(|_| "UNKNOWN".to_owned()),
        ),
        Err(status) if status.code() == Code::Unimplemented => Answer::NoHealthService,
        Err(status) if status.code() == Code::NotFound => Answer::UnknownService,
        Err(status) => Answer::Failed {
            code: status.code(),
            message: status.message().to_owned(),
        },
    };
    (answer, took)
}
