//! The retry layer on its own, over a scripted attempt-making service: what is sent
//! again, with what body, and what the caller gets.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceExt};

use ephemos_config::service_config::{CallPolicy, RetryPolicy};
use ephemos_config::value::Code as ConfigCode;

use super::{AttemptBody, RetryLayer};
use crate::call::{AttemptError, CallOptions, SubchannelId};

/// What the scripted service does with an attempt.
#[derive(Clone, Copy, Debug)]
enum Step {
    Unsent,
    /// The pick failed fast: no connection could take the attempt.
    NoConnection,
    Refused(SubchannelId),
    Failed(Code),
    Respond,
    /// Reads the request, then answers Trailers-Only with OK.
    TrailersOnlyOk,
    Hang,
}

/// What it saw of an attempt.
#[derive(Debug)]
struct Seen {
    body: Option<Bytes>,
    avoid: Option<SubchannelId>,
    /// `grpc-previous-rpc-attempts`.
    previous: Option<String>,
    at: tokio::time::Instant,
}

#[derive(Clone, Default)]
struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: Arc::new(Mutex::new(steps.into_iter().collect())),
            seen: Arc::default(),
        }
    }

    fn attempts(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Service<Request<AttemptBody>> for Script {
    type Response = Response<Empty<Bytes>>;
    type Error = AttemptError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, AttemptError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), AttemptError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<AttemptBody>) -> Self::Future {
        let step = self
            .steps
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Step::Respond);
        let seen = self.seen.clone();
        Box::pin(async move {
            let avoid = CallOptions::of(&request).avoid;
            let previous = request
                .headers()
                .get("grpc-previous-rpc-attempts")
                .map(|v| v.to_str().unwrap().to_owned());
            let at = tokio::time::Instant::now();
            if let Step::Unsent = step {
                seen.lock().unwrap().push(Seen {
                    body: None,
                    avoid,
                    previous,
                    at,
                });
                // A closing connection takes a moment to hand the call back.
                tokio::time::sleep(Duration::from_millis(1)).await;
                return Err(AttemptError::Unsent(Box::new(request)));
            }
            if let Step::NoConnection = step {
                seen.lock().unwrap().push(Seen {
                    body: None,
                    avoid,
                    previous,
                    at,
                });
                return Err(AttemptError::NoConnection(Status::unavailable(
                    "no connection is READY",
                )));
            }
            if let Step::Hang = step {
                seen.lock().unwrap().push(Seen {
                    body: None,
                    avoid,
                    previous,
                    at,
                });
                return std::future::pending().await;
            }
            let body = request
                .into_body()
                .collect()
                .await
                .ok()
                .map(|b| b.to_bytes());
            seen.lock().unwrap().push(Seen {
                body,
                avoid,
                previous,
                at,
            });
            match step {
                Step::Refused(subchannel) => Err(AttemptError::Refused {
                    status: Status::unavailable("refused"),
                    subchannel,
                }),
                Step::Failed(code) => Err(AttemptError::Failed(Status::new(code, "failed"))),
                Step::TrailersOnlyOk => {
                    let mut response = Response::new(Empty::new());
                    response
                        .headers_mut()
                        .insert("grpc-status", http::HeaderValue::from_static("0"));
                    Ok(response)
                }
                _ => Ok(Response::new(Empty::new())),
            }
        })
    }
}

fn message(len: usize) -> Bytes {
    let mut m = vec![0u8];
    m.extend_from_slice(&(len as u32).to_be_bytes());
    m.resize(5 + len, 3);
    m.into()
}

fn request(body: Bytes, deadline: Option<Duration>) -> Request<tonic::body::Body> {
    let mut request = Request::new(tonic::body::Body::new(http_body_util::Full::new(body)));
    request.extensions_mut().insert(CallOptions {
        deadline: deadline.map(|d| tokio::time::Instant::now() + d),
        ..CallOptions::default()
    });
    request
}

async fn call(script: &Script, request: Request<tonic::body::Body>) -> Result<(), Status> {
    let mut retry = RetryLayer::new("t".into(), 1024, &[], None).layer(script.clone());
    retry.ready().await?.call(request).await.map(drop)
}

/// A retry policy: `attempts` in all, backoff 1s doubling up to 4s, on UNAVAILABLE.
fn retry_policy(attempts: u32) -> CallPolicy {
    CallPolicy::Retry(RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(4),
        backoff_multiplier: 2.0,
        retryable_status_codes: vec![ConfigCode::Unavailable].into(),
    })
}

/// A call under policy 0 of `policies`.
async fn call_with_policy(
    script: &Script,
    policies: &[CallPolicy],
    deadline: Option<Duration>,
) -> Result<(), Status> {
    let mut retry = RetryLayer::new("t".into(), 1024, policies, None).layer(script.clone());
    let mut request = request(message(3), deadline);
    request
        .extensions_mut()
        .get_mut::<CallOptions>()
        .unwrap()
        .policy = Some(0);
    retry.ready().await?.call(request).await.map(drop)
}

#[tokio::test(start_paused = true)]
async fn a_policy_retries_with_full_jitter_backoff_and_counts_previous_attempts() {
    let script = Script::new([
        Step::Failed(Code::Unavailable),
        Step::Failed(Code::Unavailable),
    ]);
    let started = tokio::time::Instant::now();
    call_with_policy(&script, &[retry_policy(3)], None)
        .await
        .unwrap();
    let seen = script.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let previous: Vec<_> = seen.iter().map(|s| s.previous.as_deref()).collect();
    assert_eq!(previous, [None, Some("1"), Some("2")]);
    assert!(
        seen.iter()
            .all(|s| s.body.as_deref() == Some(&message(3)[..]))
    );
    // Retry 1 waits random(0, 1s), retry 2 random(0, 2s).
    assert!(seen[1].at - seen[0].at < Duration::from_secs(1));
    assert!(seen[2].at - seen[1].at < Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_policy_stops_at_max_attempts_and_on_other_codes() {
    let script = Script::new([Step::Failed(Code::Unavailable); 5]);
    let status = call_with_policy(&script, &[retry_policy(3)], None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(script.attempts(), 3);

    let script = Script::new([Step::Failed(Code::Internal), Step::Respond]);
    let status = call_with_policy(&script, &[retry_policy(3)], None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_backoff_outlives_the_deadline_and_the_last_status_says_why() {
    // Retries wait up to 1s, 2s, 4s, 4s: a 1.5s deadline cuts the loop short. The call
    // ends when the backoff drawn would end past the deadline, before the deadline, with
    // the last attempt's own status: the time had not run out.
    let script = Script::new([Step::Failed(Code::Unavailable); 5]);
    let started = tokio::time::Instant::now();
    let status = call_with_policy(
        &script,
        &[retry_policy(5)],
        Some(Duration::from_millis(1500)),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("no retry fits in the time left"),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(script.attempts() < 5, "{}", script.attempts());
}

#[tokio::test(start_paused = true)]
async fn a_failed_pick_is_not_retried() {
    let script = Script::new([Step::NoConnection, Step::Respond]);
    let status = call_with_policy(&script, &[retry_policy(5)], None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(script.attempts(), 1);
}

#[tokio::test]
async fn an_unsent_attempt_goes_again_as_many_times_as_it_takes() {
    let script = Script::new([Step::Unsent; 10]);
    let retry = RetryLayer::new("t".into(), 1024, &[], None).layer(script.clone());
    let mut service = retry.clone();
    service.call(request(message(3), None)).await.unwrap();
    assert_eq!(script.attempts(), 11);
    assert_eq!(retry.stats().transparent_retries, 10);
    assert_eq!(retry.stats().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn unsent_attempts_stop_at_the_deadline() {
    // Each comes back after 1 ms; sent again at once, then after 1, 2, 4, 8, 16 ms,
    // then the deadline cuts the 32 ms pause short, and the eighth attempt's wait is
    // cut short by it too.
    let script = Script::new(std::iter::repeat_n(Step::Unsent, 1_000_000));
    let started = tokio::time::Instant::now();
    let deadline = Duration::from_millis(50);
    let status = call(&script, request(message(3), Some(deadline)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(script.attempts(), 8);
    assert_eq!(started.elapsed(), deadline);
}

#[tokio::test(start_paused = true)]
async fn unsent_attempts_without_a_deadline_neither_spin_nor_go_on_for_ever() {
    let script = Script::new(std::iter::repeat_n(Step::Unsent, 1_000_000));
    let started = tokio::time::Instant::now();
    let status = call(&script, request(message(3), None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("16 connections in a row"),
        "{status:?}"
    );
    assert_eq!(script.attempts(), 17);
    let paced = started.elapsed();
    assert!(paced >= Duration::from_millis(400), "{paced:?}");
}

#[tokio::test]
async fn a_refused_attempt_is_replayed_once_elsewhere() {
    let refusing = SubchannelId::next();
    let script = Script::new([Step::Refused(refusing)]);
    call(&script, request(message(7), None)).await.unwrap();
    let seen = script.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].body, seen[1].body,
        "the replay carries the same body"
    );
    assert_eq!(seen[1].body.as_ref().map(Bytes::len), Some(12));
    assert_eq!(seen[0].avoid, None);
    assert_eq!(seen[1].avoid, Some(refusing), "the next attempt avoids it");
}

#[tokio::test]
async fn a_second_refusal_is_the_calls_status() {
    let script = Script::new([
        Step::Refused(SubchannelId::next()),
        Step::Refused(SubchannelId::next()),
    ]);
    let status = call(&script, request(message(1), None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(script.attempts(), 2);
}

#[tokio::test]
async fn a_failed_attempt_is_not_retried_without_a_policy() {
    let script = Script::new([Step::Failed(Code::Unavailable)]);
    let status = call(&script, request(message(1), None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(script.attempts(), 1);
}

#[tokio::test]
async fn a_message_over_the_send_limit_fails_before_any_attempt() {
    let script = Script::new([]);
    let status = call(&script, request(message(2000), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("request message of 2000 bytes is larger than the send limit of 1024 bytes"),
        "{status:?}"
    );
    assert_eq!(script.attempts(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_wait_for_response_headers() {
    let script = Script::new([Step::Hang]);
    let status = call(&script, request(message(1), Some(Duration::from_secs(3))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(status.message().contains("response headers"), "{status:?}");
}

#[tokio::test]
async fn a_request_that_failed_is_the_calls_status_even_after_a_trailers_only_ok() {
    // The server answers OK without reading to the end; meanwhile the caller's second
    // message broke the send limit: the caller gets that failure, not the OK.
    let frames = futures_util::stream::iter([
        Ok::<_, Status>(http_body::Frame::data(message(3))),
        Ok(http_body::Frame::data(message(2000))),
    ]);
    let mut request = Request::new(tonic::body::Body::new(http_body_util::StreamBody::new(
        frames,
    )));
    request.extensions_mut().insert(CallOptions::default());
    let script = Script::new([Step::TrailersOnlyOk]);
    let status = call(&script, request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(script.attempts(), 1);
}
