//! The task that owns a subchannel's connection: connects when asked, backs off after a
//! failure, publishes each state, closes on idle, drains on GOAWAY, and doubles the
//! keepalive time after GOAWAY `too_many_pings` (gRFC A8).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ephemos_config::model::ConnectionConfig;
use ephemos_config::value::Address;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};

use super::Shared;
use super::connect::{Established, attempt_deadline, establish};
use crate::activity::Activity;
use crate::backoff::ConnectionBackoff;
use crate::error::ConnectError;
use crate::frame_watch::ServerFrame;
use crate::state::ConnectivityState;
use crate::tls::TlsSettings;

/// HTTP/2 ENHANCE_YOUR_CALM.
const ENHANCE_YOUR_CALM: u32 = 0xb;

pub(super) struct Settings {
    pub(super) target: Arc<str>,
    pub(super) address: Address,
    pub(super) config: ConnectionConfig,
    pub(super) tls: Option<Arc<TlsSettings>>,
    pub(super) activity: Arc<Activity>,
}

/// Why a READY connection stopped being used.
enum ReadyEnd {
    Shutdown,
    IdleTimeout,
    GoAway {
        error_code: u32,
        debug: String,
    },
    Lost(String),
    /// The identity's SVID or bundle rotated: new connections present the new one.
    Rotated,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    settings: Settings,
) {
    let mut backoff = ConnectionBackoff::new(settings.config.backoff);
    let mut keepalive = settings.config.keepalive;
    let target = &settings.target;
    let address = &settings.address;
    'idle: loop {
        shared.publish(|v| {
            v.state = ConnectivityState::Idle;
            v.connection = None;
        });
        // Wait for a caller's request (the flag, not the notification, is the truth: a
        // stale wake-up from an earlier burst of calls is ignored).
        while !shared.connect_requested.load(Ordering::Acquire) {
            if *shutdown.borrow() {
                break 'idle;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = shutdown.changed() => break 'idle,
            }
        }
        loop {
            shared.connect_requested.store(false, Ordering::Release);
            shared.publish(|v| v.state = ConnectivityState::Connecting);
            let started = Instant::now();
            // The client's SVID first, bounded by the identity's initial sync timeout,
            // not by the connection attempt's deadline.
            let identity = match &settings.tls {
                Some(tls) => tokio::select! {
                    source = tls.identity.x509_source() => Some(source.map(|s| (tls.as_ref(), s))),
                    _ = shutdown.changed() => break 'idle,
                },
                None => None,
            };
            let deadline = attempt_deadline(settings.config.connect_timeout, backoff.current());
            let mut step = "dialing";
            let attempt = match identity.transpose() {
                Err(error) => Ok(Err(ConnectError::Identity(error))),
                Ok(tls) => tokio::select! {
                    result = timeout(deadline, establish(address, keepalive, settings.config.http2, tls, &mut step)) => result,
                    _ = shutdown.changed() => break 'idle,
                },
            };
            let failure = match attempt {
                Ok(Ok(established)) => {
                    backoff.reset();
                    // Becoming READY counts as use: a warm-up is not undone by the idle timer.
                    settings.activity.touch();
                    tracing::debug!(%target, peer = %established.peer, "subchannel READY");
                    shared.publish(|v| {
                        v.state = ConnectivityState::Ready;
                        v.connection = Some(established.connection.clone());
                        v.last_error = None;
                    });
                    match run_ready(established, &mut shutdown, &settings).await {
                        ReadyEnd::Shutdown => break 'idle,
                        ReadyEnd::IdleTimeout => {
                            tracing::debug!(%target, "idle timeout: connection closed");
                        }
                        ReadyEnd::GoAway {
                            error_code,
                            debug: reason_text,
                        } => {
                            if error_code == ENHANCE_YOUR_CALM && reason_text == "too_many_pings" {
                                if let Some(k) = &mut keepalive {
                                    k.time = k.time.saturating_mul(2);
                                    tracing::warn!(
                                        %target,
                                        keepalive_time = ?k.time,
                                        "server sent GOAWAY too_many_pings: keepalive time doubled for new connections (gRFC A8)"
                                    );
                                }
                            } else {
                                tracing::debug!(%target, error_code, debug_data = %reason_text, "GOAWAY: draining");
                            }
                        }
                        ReadyEnd::Lost(reason) => {
                            tracing::info!(%target, %reason, "connection lost");
                        }
                        ReadyEnd::Rotated => {
                            tracing::info!(%target, "identity rotated: draining the connection, new calls use a new one");
                        }
                    }
                    continue 'idle;
                }
                Ok(Err(error)) => error,
                Err(_) => ConnectError::Timeout {
                    address: address.to_string(),
                    after: deadline,
                    step,
                },
            };
            tracing::debug!(%target, error = %failure, "connection attempt failed");
            shared.publish(|v| {
                v.state = ConnectivityState::TransientFailure;
                v.connection = None;
                v.last_error = Some(failure);
            });
            let retry_at = started + backoff.next_delay();
            tokio::select! {
                _ = sleep_until(retry_at) => {}
                _ = shutdown.changed() => break 'idle,
            }
            // The backoff has run out: reconnect, unless nobody has used the channel for
            // the idle timeout (then wait in IDLE for the next call, as gRPC does).
            if is_idle(&settings) {
                continue 'idle;
            }
        }
    }
    shared.publish(|v| {
        v.state = ConnectivityState::Shutdown;
        v.connection = None;
    });
}

/// When the idle timer fires, if it is on: now + timeout while calls are in flight.
/// `None` when the timer is off or too far away to represent.
fn idle_deadline(settings: &Settings) -> Option<Instant> {
    let timeout = settings.config.idle_timeout?;
    match settings.activity.idle_at(timeout) {
        Some(at) => at,
        None => Instant::now().checked_add(timeout),
    }
}

fn is_idle(settings: &Settings) -> bool {
    idle_deadline(settings).is_some_and(|at| at <= Instant::now())
        && settings.activity.in_flight() == 0
}

async fn sleep_until_option(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn run_ready(
    mut conn: Established,
    shutdown: &mut watch::Receiver<bool>,
    settings: &Settings,
) -> ReadyEnd {
    loop {
        tokio::select! {
            // Frames first: a GOAWAY read just before the connection closed must win.
            biased;
            frame = conn.frames.recv() => match frame {
                Some(ServerFrame::GoAway { error_code, debug_data, .. }) => {
                    return ReadyEnd::GoAway {
                        error_code,
                        debug: String::from_utf8_lossy(&debug_data).into_owned(),
                    };
                }
                Some(ServerFrame::Settings { .. } | ServerFrame::TlsFailed(_)) => {}
                // The IO was dropped: the connection is over, `closed` says how.
                None => return ended(&mut conn).await,
            },
            result = &mut conn.closed => return goaway_seen(&mut conn).unwrap_or_else(|| lost(result)),
            () = rotation(&mut conn.rotation) => {
                // Calls in flight finish on this connection; new ones wait for the next.
                conn.connection.draining.store(true, Ordering::Release);
                return ReadyEnd::Rotated;
            }
            _ = sleep_until_option(conn.replace_at) => {
                // A certificate of this connection nears its end: replace it in time.
                conn.connection.draining.store(true, Ordering::Release);
                return ReadyEnd::Rotated;
            }
            _ = sleep_until_option(idle_deadline(settings)) => {
                if is_idle(settings) {
                    return ReadyEnd::IdleTimeout;
                }
            }
            _ = shutdown.changed() => return ReadyEnd::Shutdown,
        }
    }
}

/// Resolves when the identity's material changes (never without TLS).
async fn rotation(updates: &mut Option<spiffe::X509SourceUpdates>) {
    if let Some(updates) = updates
        && updates.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

async fn ended(conn: &mut Established) -> ReadyEnd {
    lost((&mut conn.closed).await)
}

/// A GOAWAY already read but not yet handled when the connection closed.
fn goaway_seen(conn: &mut Established) -> Option<ReadyEnd> {
    while let Ok(frame) = conn.frames.try_recv() {
        if let ServerFrame::GoAway {
            error_code,
            debug_data,
            ..
        } = frame
        {
            return Some(ReadyEnd::GoAway {
                error_code,
                debug: String::from_utf8_lossy(&debug_data).into_owned(),
            });
        }
    }
    None
}

fn lost(
    result: Result<Result<(), hyper::Error>, tokio::sync::oneshot::error::RecvError>,
) -> ReadyEnd {
    ReadyEnd::Lost(match result {
        Ok(Ok(())) => "the server closed the connection".to_owned(),
        Ok(Err(e)) => crate::error::describe(&e),
        Err(_) => "the connection task ended".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn attempt_deadline_is_the_larger_of_timeout_and_backoff() {
        let s = Duration::from_secs;
        assert_eq!(attempt_deadline(s(20), s(1)), s(20));
        assert_eq!(attempt_deadline(s(1), s(120)), s(120));
    }
}
