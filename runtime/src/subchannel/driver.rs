//! The task that owns a subchannel's connection: connects when asked, backs off after a
//! failure, publishes each state, closes on idle, drains on GOAWAY, and doubles the
//! channel's keepalive time after GOAWAY `too_many_pings` (gRFC A8).
//!
//! Failure is sticky (gRFC A62, grpc-go's pick_first): after a failed attempt the
//! subchannel reports TRANSIENT_FAILURE until it is READY again, also while it tries
//! again, so fail-fast calls and `connect()` see the failure instead of waiting through
//! attempt after attempt. Whatever way the task ends, a panic included, it publishes
//! SHUTDOWN, so calls fail instead of waiting for a subchannel nobody drives.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ephemos_config::model::ConnectionConfig;
use ephemos_config::value::Address;
use std::time::Duration;
use tokio::sync::watch;

use tokio::time::{Instant, sleep_until, timeout};
use tower::util::BoxService;
use tower::{Service, ServiceExt};

use super::backoff::ConnectionBackoff;
use super::handshake::{Established, Http2Settings, attempt_deadline, describe_goaway, establish};
use super::health::{self, Health, HealthCheck, HealthWatch};
use super::load::Load;
use super::view::Connection;
use super::{END_NONE, END_REPLACE, END_RETIRE, Shared};
use crate::connector::frame_watch::{ServerFrame, ServerFrames, merge_settings};
use crate::connector::{Connected, Dial, Progress};
use crate::error::ConnectError;
use crate::identity::Identity;
use crate::state::ConnectivityState;
use crate::telemetry::connection::{ConnectionMeter, DisconnectError};

/// HTTP/2 ENHANCE_YOUR_CALM.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The connector a driver dials with.
pub(crate) type BoxConnector = BoxService<Dial, Connected, ConnectError>;

pub(super) struct Settings {
    pub(super) target: Arc<str>,
    /// Where it dials, read at each attempt (a resolved name's address can change).
    pub(super) address: Arc<std::sync::Mutex<Address>>,
    pub(super) config: ConnectionConfig,
    /// The client's identity, over TLS: its SVID is fetched before each attempt.
    pub(super) identity: Option<Identity>,
    pub(super) connector: BoxConnector,
    pub(super) load: Arc<Load>,
    /// Client-side health checking (gRFC A17), when `health_check` is set.
    pub(super) health: Option<Arc<HealthCheck>>,
    /// After an identity rotation, the connection is replaced at a random time within
    /// this, so the pool's connections are not all replaced at once.
    pub(super) rotation_spread: Duration,
    /// Its metrics (gRFC A94).
    pub(super) meter: ConnectionMeter,
}

/// Why a READY connection stopped being used.
enum ReadyEnd {
    Shutdown,
    IdleTimeout,
    GoAway {
        error_code: u32,
        debug: Vec<u8>,
    },
    Lost(String, DisconnectError),
    /// The identity's SVID or bundle rotated, or a certificate nears its end: new
    /// connections present the new one.
    Rotated,
    /// The pool no longer uses this subchannel (it shrank): drained, then closed.
    Retired,
    /// The pool's cleanup replaces the connection, unhealthy for too long: drained,
    /// closed, and made again after the backoff, which was not reset.
    Replaced,
}

/// Publishes SHUTDOWN when the driver ends, however it ends.
struct ShutdownOnExit(Arc<Shared>);

impl Drop for ShutdownOnExit {
    fn drop(&mut self) {
        self.0
            .publish(|v| v.disconnect(ConnectivityState::Shutdown));
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    mut settings: Settings,
) {
    let _exit = ShutdownOnExit(shared.clone());
    let mut backoff = ConnectionBackoff::new(settings.config.backoff);
    'idle: loop {
        shared.publish(|v| v.disconnect(ConnectivityState::Idle));
        // Wait for a caller's request (the flag, not the notification, is the truth: a
        // stale wake-up from an earlier burst of calls is ignored).
        while !shared.connect_requested.load(Ordering::Acquire) {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
        loop {
            shared.connect_requested.store(false, Ordering::Release);
            // Sticky failure: a subchannel in TRANSIENT_FAILURE stays there while it
            // tries again, until it is READY.
            shared.publish(|v| {
                if v.state != ConnectivityState::TransientFailure {
                    v.state = ConnectivityState::Connecting;
                }
            });
            let started = Instant::now();
            // Boxed, as is the READY loop below: the task's own future stays small while
            // it waits in IDLE, which is where most spares of a pool spend their life.
            let failure = match Box::pin(attempt(&shared, &mut shutdown, &mut settings, &backoff))
                .await
            {
                Attempt::Shutdown => return,
                Attempt::Failed(error) => error,
                Attempt::Ready(established) => {
                    // Requests made while connecting are served by this connection: none
                    // is left to reconnect at once when it ends.
                    shared.connect_requested.store(false, Ordering::Release);
                    // A replacement asked of an earlier connection (while it drained, or
                    // during the backoff) is not this one's.
                    let _ = shared.end_request.compare_exchange(
                        END_REPLACE,
                        END_NONE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    // With health checking, the backoff is reset by SERVING, not by the
                    // connection: replacing an unhealthy one keeps growing the delay.
                    if settings.health.is_none() {
                        backoff.reset();
                    }
                    // Becoming READY counts as use: a warm-up is not undone by the idle timer.
                    settings.load.touch();
                    tracing::debug!(target = %settings.target, peer = %established.peer, "subchannel READY");
                    // Learned before READY is published: whoever sees READY sees it too.
                    if let Some(streams) = established.connection.max_concurrent_streams {
                        shared.channel.set_max_concurrent_streams(streams);
                    }
                    // With health checking, READY waits for the server's SERVING.
                    let health = settings.health.as_ref().map(|check| {
                        health::start(
                            established.connection.sender.clone(),
                            check.clone(),
                            settings.target.clone(),
                            settings.config.backoff,
                            settings.config.connect_timeout,
                        )
                    });
                    let first = health.as_ref().map(|h| h.reports.borrow().clone());
                    if let Some(first) = &first {
                        record_health(&settings.meter, first);
                    }
                    publish_connected(&shared, &established, first.as_ref());
                    let end = Box::pin(run_ready(
                        established,
                        health,
                        Ready {
                            shared: &shared,
                            shutdown: &mut shutdown,
                            settings: &mut settings,
                            backoff: &mut backoff,
                        },
                    ))
                    .await;
                    if let ReadyEnd::Replaced = end {
                        settings
                            .meter
                            .disconnected(DisconnectError::SubchannelShutdown);
                        tracing::info!(target = %settings.target, "cleanup: replacing a connection unhealthy for too long");
                        let why = shared
                            .view
                            .borrow()
                            .health
                            .as_ref()
                            .and_then(Health::problem);
                        shared.publish(|v| {
                            v.disconnect(ConnectivityState::TransientFailure);
                            v.last_error = Some(ConnectError::Unhealthy {
                                peer: dial_address(&settings.address).to_string(),
                                message: format!(
                                    "replaced after a cleanup interval unhealthy ({})",
                                    why.unwrap_or_else(|| "no health answer".to_owned())
                                ),
                            });
                        });
                        let retry_at = Instant::now() + backoff.next_delay();
                        tokio::select! {
                            _ = sleep_until(retry_at) => {}
                            _ = shutdown.changed() => return,
                        }
                        continue;
                    }
                    if !ended(end, &shared, &settings) {
                        return;
                    }
                    continue 'idle;
                }
            };
            tracing::debug!(target = %settings.target, error = %failure, "connection attempt failed");
            shared.channel.connection_lost.notify_waiters();
            shared.publish(|v| {
                v.disconnect(ConnectivityState::TransientFailure);
                v.last_error = Some(failure);
            });
            let retry_at = started + backoff.next_delay();
            loop {
                tokio::select! {
                    _ = sleep_until(retry_at) => break,
                    () = shared.wake.notified() => {
                        // Retired while failing (the pool shrank, or the name no longer
                        // resolves to this address): stop trying.
                        if shared.end_request.swap(END_NONE, Ordering::AcqRel) == END_RETIRE {
                            continue 'idle;
                        }
                    }
                    _ = shutdown.changed() => return,
                }
            }
            // The backoff has run out: reconnect, unless nobody has used the channel for
            // the idle timeout (then wait in IDLE for the next call, as gRPC does).
            if let Some(idle) = settings.config.idle_timeout
                && shared.channel.unused_for(idle)
            {
                continue 'idle;
            }
        }
    }
}

/// The address the next attempt dials.
pub(super) fn dial_address(cell: &std::sync::Mutex<Address>) -> Address {
    cell.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The outcome of one connection attempt.
enum Attempt {
    Ready(Established),
    Failed(ConnectError),
    Shutdown,
}

async fn attempt(
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    settings: &mut Settings,
    backoff: &ConnectionBackoff,
) -> Attempt {
    let started = Instant::now();
    let attempt = dial(shared, shutdown, settings, backoff).await;
    // gRFC A94: an attempt the subchannel's shutdown stopped counts as neither.
    match &attempt {
        Attempt::Ready(_) => settings.meter.attempt_ended(started.elapsed(), true),
        Attempt::Failed(_) => settings.meter.attempt_ended(started.elapsed(), false),
        Attempt::Shutdown => {}
    }
    attempt
}

/// One connection attempt: the SVID, the dial, TLS and the HTTP/2 handshake.
async fn dial(
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    settings: &mut Settings,
    backoff: &ConnectionBackoff,
) -> Attempt {
    // The client's SVID first, bounded by the identity's initial sync timeout, not by
    // the connection attempt's deadline.
    let source = match &settings.identity {
        Some(identity) => tokio::select! {
            source = identity.x509_source() => match source {
                Ok(source) => Some(source),
                Err(error) => return Attempt::Failed(ConnectError::Identity(error)),
            },
            _ = shutdown.changed() => return Attempt::Shutdown,
        },
        None => None,
    };
    let deadline = attempt_deadline(settings.config.connect_timeout, backoff.current());
    let progress = Progress::default();
    let http2 = Http2Settings {
        keepalive: settings.config.keepalive.map(|k| {
            let time = shared.channel.keepalive_time(k.time);
            (k, time)
        }),
        http2: settings.config.http2,
        over_tls: source.is_some(),
        meter: settings.meter.clone(),
    };
    let address = dial_address(&settings.address);
    let dial = Dial {
        address: address.clone(),
        source,
        progress: progress.clone(),
    };
    let connector = &mut settings.connector;
    let connect = async {
        let connected = connector.ready().await?.call(dial).await?;
        establish(connected, &http2, &progress).await
    };
    tokio::select! {
        result = timeout(deadline, connect) => match result {
            Ok(Ok(established)) => Attempt::Ready(established),
            Ok(Err(error)) => Attempt::Failed(error),
            Err(_) => Attempt::Failed(ConnectError::Timeout {
                address: address.to_string(),
                after: deadline,
                step: progress.step(),
            }),
        },
        _ = shutdown.changed() => Attempt::Shutdown,
    }
}

/// Logs how a READY connection ended and learns from it; `false` when the subchannel
/// shuts down.
fn ended(end: ReadyEnd, shared: &Shared, settings: &Settings) -> bool {
    let target = &settings.target;
    settings.meter.disconnected(match &end {
        ReadyEnd::GoAway { error_code, .. } => DisconnectError::GoAway(*error_code),
        ReadyEnd::Lost(_, kind) => *kind,
        ReadyEnd::Shutdown
        | ReadyEnd::IdleTimeout
        | ReadyEnd::Rotated
        | ReadyEnd::Retired
        | ReadyEnd::Replaced => DisconnectError::SubchannelShutdown,
    });
    match end {
        ReadyEnd::Shutdown => return false,
        ReadyEnd::IdleTimeout => tracing::debug!(%target, "idle timeout: connection closed"),
        ReadyEnd::GoAway { error_code, debug } => {
            // The server is going away: where the name points may have changed.
            shared.channel.connection_lost.notify_waiters();
            if error_code == ENHANCE_YOUR_CALM && debug == b"too_many_pings" {
                if let Some(k) = &settings.config.keepalive {
                    let time = shared.channel.double_keepalive_time(k.time);
                    tracing::warn!(
                        %target,
                        keepalive_time = ?time,
                        "server sent GOAWAY too_many_pings: the channel's keepalive time doubled for new connections (gRFC A8)"
                    );
                }
            } else {
                let goaway = describe_goaway(error_code, &debug);
                tracing::debug!(%target, %goaway, "GOAWAY: draining");
            }
        }
        ReadyEnd::Lost(reason, _) => {
            tracing::info!(%target, %reason, "connection lost");
            shared.channel.connection_lost.notify_waiters();
        }
        ReadyEnd::Retired => {
            tracing::debug!(%target, "the pool shrank: connection drained and closed")
        }
        ReadyEnd::Replaced => {}
        ReadyEnd::Rotated => tracing::info!(
            %target,
            "identity rotated or nearing expiry: draining the connection, new calls use a new one"
        ),
    }
    true
}

/// When the idle timer fires, if it is on: now + timeout while calls are in flight.
fn idle_deadline(settings: &Settings) -> Option<Instant> {
    let timeout = settings.config.idle_timeout?;
    settings
        .load
        .idle_at(timeout)
        .or_else(|| Instant::now().checked_add(timeout))
}

async fn sleep_until_option(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Publishes a connection: READY, or with health checking what its health says
/// (gRFC A17: CONNECTING until the first answer, TRANSIENT_FAILURE while not SERVING;
/// a subchannel already in TRANSIENT_FAILURE stays there until it is READY).
fn publish_connected(shared: &Shared, conn: &Established, health: Option<&Health>) {
    let connection: Connection = conn.connection.clone();
    shared.publish(|v| {
        if v.connected_at.is_none() {
            v.connected_at = Some(Instant::now());
            v.connects += 1;
        }
        v.connection = Some(connection);
        v.health = health.cloned();
        // Unhealthy is what the server said (or a failing check), not a first answer
        // still on its way.
        match health {
            Some(Health::NotServing(_) | Health::Failed(_)) => {
                v.unhealthy_since.get_or_insert_with(Instant::now);
            }
            _ => v.unhealthy_since = None,
        }
        match health {
            None | Some(Health::Serving | Health::Unimplemented) => {
                v.state = ConnectivityState::Ready;
                v.last_error = None;
            }
            Some(Health::Checking) => {
                if v.state != ConnectivityState::TransientFailure {
                    v.state = ConnectivityState::Connecting;
                }
            }
            Some(other) => {
                v.state = ConnectivityState::TransientFailure;
                v.last_error = Some(ConnectError::Unhealthy {
                    peer: conn.peer.clone(),
                    message: other.problem().unwrap_or_default(),
                });
            }
        }
    });
}

/// The health gauge: 1 while the server says SERVING (or has no health service), 0
/// when it says otherwise or the check fails; nothing while the first answer is awaited.
fn record_health(meter: &ConnectionMeter, report: &Health) {
    match report {
        Health::Checking => {}
        Health::Serving | Health::Unimplemented => meter.health(true),
        _ => meter.health(false),
    }
}

/// The next report of a health watch (never without one, or once it has stopped).
async fn health_changed(health: &mut Option<HealthWatch>) -> Health {
    if let Some(watch) = health
        && let Some(report) = watch.next_report().await
    {
        return report;
    }
    std::future::pending().await
}

/// What a READY connection's loop works with.
struct Ready<'a> {
    shared: &'a Shared,
    shutdown: &'a mut watch::Receiver<bool>,
    settings: &'a mut Settings,
    backoff: &'a mut ConnectionBackoff,
}

/// The connection that takes over from one whose identity rotated (or whose certificate
/// nears its end), made while the old one keeps serving: it is READY, and with health
/// checking SERVING, before it is swapped in, so no call waits for its handshake.
/// `Err(None)` when the subchannel shuts down.
async fn successor(
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    settings: &mut Settings,
    backoff: &ConnectionBackoff,
) -> Result<(Established, Option<HealthWatch>), Option<ConnectError>> {
    let new = match attempt(shared, shutdown, settings, backoff).await {
        Attempt::Ready(new) => new,
        Attempt::Failed(error) => return Err(Some(error)),
        Attempt::Shutdown => return Err(None),
    };
    let Some(check) = &settings.health else {
        return Ok((new, None));
    };
    let mut watch = health::start(
        new.connection.sender.clone(),
        check.clone(),
        settings.target.clone(),
        settings.config.backoff,
        settings.config.connect_timeout,
    );
    let first_answer = timeout(
        settings.config.connect_timeout,
        watch.reports.wait_for(|h| *h != Health::Checking),
    );
    let problem = tokio::select! {
        answer = first_answer => match answer {
            Ok(Ok(report)) => report.problem(),
            Ok(Err(_)) => Some("the health check stopped".to_owned()),
            Err(_) => Some("no health check answer within the connect timeout".to_owned()),
        },
        _ = shutdown.changed() => return Err(None),
    };
    match problem {
        None => Ok((new, Some(watch))),
        Some(message) => Err(Some(ConnectError::Unhealthy {
            peer: new.peer.clone(),
            message,
        })),
    }
}

/// A random time within `spread` from now.
fn jittered(spread: Duration) -> Instant {
    Instant::now() + spread.mul_f64(fastrand::f64())
}

/// Takes no new calls on `conn`, waits until its calls in flight have ended (or it
/// closes), then returns `end`.
async fn drain(conn: &mut Established, load: &Load, end: ReadyEnd) -> ReadyEnd {
    conn.connection.draining.store(true, Ordering::Release);
    while load.in_flight() > 0 {
        tokio::select! {
            result = &mut conn.closed => return lost(result),
            _ = tokio::time::sleep(DRAIN_POLL) => {}
        }
    }
    end
}

/// How often a draining connection looks whether its last call has ended.
const DRAIN_POLL: std::time::Duration = std::time::Duration::from_millis(50);

async fn run_ready(
    mut conn: Established,
    mut health: Option<HealthWatch>,
    ready: Ready<'_>,
) -> ReadyEnd {
    let Ready {
        shared,
        shutdown,
        settings,
        backoff,
    } = ready;
    // When to replace the connection after a rotation (make-before-break, jittered).
    let mut rotate_at: Option<Instant> = None;
    loop {
        tokio::select! {
            // The connection first: a GOAWAY read just before it closed must win.
            biased;
            event = connection_event(&mut conn.frames, &mut conn.closed, &mut health, shared) => match event {
                Event::Ended(end) => return end,
                Event::Drain(end) => return drain(&mut conn, &settings.load, end).await,
                Event::Health(report) => {
                    if report.problem().is_none() {
                        backoff.reset();
                    }
                    take_health(shared, &conn, &settings.meter, &settings.target, &report);
                }
                Event::Nothing => {}
            },
            () = rotation(&mut conn.rotation) => {
                // Each connection of the pool at its own time within the spread.
                rotate_at.get_or_insert_with(|| jittered(settings.rotation_spread));
            }
            _ = sleep_until_option(rotate_at.or(conn.replace_at)) => {
                // The identity rotated, or a certificate of this connection nears its
                // end: a new connection takes over before this one drains.
                rotate_at = None;
                let (meter, load, target) = (settings.meter.clone(), settings.load.clone(), settings.target.clone());
                // The old connection is still the subchannel's while the new one is
                // made (up to twice the connect timeout): its end, its health and the
                // pool's requests are acted on meanwhile.
                let made = {
                    let made = successor(shared, shutdown, settings, backoff);
                    tokio::pin!(made);
                    loop {
                    tokio::select! {
                        biased;
                        event = connection_event(&mut conn.frames, &mut conn.closed, &mut health, shared) => match event {
                            Event::Ended(end) => return end,
                            Event::Drain(end) => return drain(&mut conn, &load, end).await,
                            Event::Health(report) => take_health(shared, &conn, &meter, &target, &report),
                            Event::Nothing => {}
                        },
                        made = &mut made => break made,
                    }
                    }
                };
                match made {
                    Ok((new, new_health)) => {
                        if let Some(streams) = new.connection.max_concurrent_streams {
                            shared.channel.set_max_concurrent_streams(streams);
                        }
                        let old = std::mem::replace(&mut conn, new);
                        health = new_health;
                        let report = health.as_ref().map(|h| h.reports.borrow().clone());
                        shared.publish(|v| v.connected_at = None);
                        publish_connected(shared, &conn, report.as_ref());
                        // Its calls finish; hyper closes it once they have and nothing
                        // holds it.
                        old.connection.draining.store(true, Ordering::Release);
                        drop(old);
                        tracing::info!(target = %settings.target, peer = %conn.peer, "identity rotated: the connection was replaced (the new one was READY first)");
                    }
                    Err(None) => return ReadyEnd::Shutdown,
                    Err(Some(error)) => {
                        tracing::warn!(target = %settings.target, %error, "identity rotated, but no new connection could be made beside the old one: draining it");
                        conn.connection.draining.store(true, Ordering::Release);
                        return ReadyEnd::Rotated;
                    }
                }
            }
            _ = sleep_until_option(idle_deadline(settings)) => {
                if let Some(timeout) = settings.config.idle_timeout
                    && settings.load.idle_at(timeout).is_some_and(|at| at <= Instant::now())
                {
                    return ReadyEnd::IdleTimeout;
                }
            }
            _ = shutdown.changed() => return ReadyEnd::Shutdown,
        }
    }
}

/// What happened on a READY connection.
enum Event {
    /// It is over.
    Ended(ReadyEnd),
    /// The pool asks for it to be drained, then to end so.
    Drain(ReadyEnd),
    /// Its health check reports this.
    Health(Health),
    /// Nothing that changes its course (a SETTINGS frame, taken in; a wake-up).
    Nothing,
}

/// The next thing that happens on `conn`: a frame from its server, its end, a health
/// report, a request of the pool.
async fn connection_event(
    frames: &mut ServerFrames,
    closed: &mut Closed,
    health: &mut Option<HealthWatch>,
    shared: &Shared,
) -> Event {
    tokio::select! {
        // Frames first: a GOAWAY read just before the connection closed must win.
        biased;
        frame = frames.recv() => match frame {
            Some(ServerFrame::GoAway { error_code, debug_data, .. }) => {
                Event::Ended(ReadyEnd::GoAway { error_code, debug: debug_data.to_vec() })
            }
            Some(ServerFrame::Settings { max_concurrent_streams, settings }) => {
                if let Some(streams) = max_concurrent_streams {
                    shared.channel.set_max_concurrent_streams(streams);
                }
                take_settings(shared, max_concurrent_streams, &settings);
                Event::Nothing
            }
            Some(ServerFrame::TlsFailed(_)) => Event::Nothing,
            // The IO was dropped: the connection is over, `closed` says how.
            None => Event::Ended(lost((&mut *closed).await)),
        },
        result = &mut *closed => Event::Ended(goaway_seen(frames).unwrap_or_else(|| lost(result))),
        report = health_changed(health) => Event::Health(report),
        () = shared.wake.notified() => {
            // A connect request while READY needs nothing; the pool's requests do.
            match shared.end_request.swap(END_NONE, Ordering::AcqRel) {
                END_RETIRE => Event::Drain(ReadyEnd::Retired),
                END_REPLACE => {
                    // Being replaced: no longer one for cleanup to replace, so a later
                    // sweep during the drain does not ask again.
                    shared.publish(|v| v.unhealthy_since = None);
                    Event::Drain(ReadyEnd::Replaced)
                }
                _ => Event::Nothing,
            }
        }
    }
}

/// Records and publishes a health report of `conn`.
fn take_health(
    shared: &Shared,
    conn: &Established,
    meter: &ConnectionMeter,
    target: &str,
    report: &Health,
) {
    tracing::debug!(%target, peer = %conn.peer, health = %report, "health check");
    record_health(meter, report);
    publish_connected(shared, conn, Some(report));
}

/// Takes a later SETTINGS into the view. Merged before the view is locked (only the
/// driver writes it, so nothing changes in between), and published only when it
/// changes something: picks read the view meanwhile.
fn take_settings(shared: &Shared, max_concurrent_streams: Option<u32>, update: &[(u16, u32)]) {
    let Some((mut table, streams)) = shared
        .view
        .borrow()
        .connection
        .as_ref()
        .map(|c| (c.server_settings.to_vec(), c.max_concurrent_streams))
    else {
        return;
    };
    let streams_changed = max_concurrent_streams.is_some_and(|m| streams != Some(m));
    if !merge_settings(&mut table, update) && !streams_changed {
        return;
    }
    let table: Arc<[(u16, u32)]> = table.into();
    shared.publish(|v| {
        if let Some(c) = &mut v.connection {
            if max_concurrent_streams.is_some() {
                c.max_concurrent_streams = max_concurrent_streams;
            }
            c.server_settings = table;
        }
    });
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

/// A GOAWAY already read but not yet handled when the connection closed.
fn goaway_seen(frames: &mut ServerFrames) -> Option<ReadyEnd> {
    while let Some(frame) = frames.try_recv() {
        if let ServerFrame::GoAway {
            error_code,
            debug_data,
            ..
        } = frame
        {
            return Some(ReadyEnd::GoAway {
                error_code,
                debug: debug_data.to_vec(),
            });
        }
    }
    None
}

/// How a connection's task ends: hyper's result, or the task gone.
type Closed = tokio::sync::oneshot::Receiver<Result<(), hyper::Error>>;

fn lost(
    result: Result<Result<(), hyper::Error>, tokio::sync::oneshot::error::RecvError>,
) -> ReadyEnd {
    match result {
        Ok(Ok(())) => ReadyEnd::Lost(
            "the server closed the connection".to_owned(),
            DisconnectError::Unknown,
        ),
        Ok(Err(e)) => ReadyEnd::Lost(crate::error::describe(&e), DisconnectError::of(&e)),
        Err(_) => ReadyEnd::Lost(
            "the connection task ended".to_owned(),
            DisconnectError::Unknown,
        ),
    }
}
