//! The pick: a READY subchannel whose connection takes new calls, among the pool's
//! active members, by power of two choices on the calls in flight (two at random, the
//! less loaded wins; no lock, no scan of the pool on the call path), else the least
//! loaded one a full scan finds.
//! IDLE subchannels are asked to connect on the way. Fail fast when every subchannel is
//! in (sticky) TRANSIENT_FAILURE, unless the call waits for ready; the call's deadline
//! bounds the wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tonic::{Code, Status};

use super::members::Members;
use crate::call::{CallOptions, SubchannelId};
use crate::error::{ConnectError, status};
use crate::state::ConnectivityState;
use crate::subchannel::{ChannelShared, Ready, Subchannel};

/// One look at every subchannel.
pub(crate) enum Scan {
    /// A connection that takes new calls, and its subchannel's index.
    Ready(usize, Ready),
    /// Connections are being made (or a READY one is closing): wait for a change.
    Waiting,
    /// Every subchannel is in TRANSIENT_FAILURE.
    AllFailed(Option<ConnectError>),
    /// Every subchannel is shut down (or there are none).
    Shutdown,
}

/// How a pool that grows (gRFC A105) picks: a connection carrying as many calls as it
/// may (the server's MAX_CONCURRENT_STREAMS, or `max_streams_per_connection` when lower)
/// is full, and a call waits for the connection being added rather than queue on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Growth {
    /// `max_streams_per_connection`.
    pub(crate) max_streams: Option<u32>,
}

impl Growth {
    /// The calls a connection carries before it is full, if it has a limit.
    pub(crate) fn limit(&self, server: Option<u32>) -> Option<usize> {
        let limit = match (server, self.max_streams) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(limit.max(1) as usize)
    }

    fn is_full(growth: Option<Growth>, ready: &Ready, load: usize) -> bool {
        growth
            .and_then(|g| g.limit(ready.max_streams))
            .is_some_and(|limit| load >= limit)
    }
}

/// Two subchannels at random: the one with fewer calls in flight, when one of them is
/// READY, takes new calls, is not full and is not `avoid`. IDLE ones are asked to
/// connect.
fn two_choices(
    subchannels: &[Subchannel],
    members: &Members,
    avoid: Option<SubchannelId>,
    growth: Option<Growth>,
) -> Option<(usize, Ready)> {
    let first = members.random()?;
    let second = members.random()?;
    let usable = |index: usize| {
        let subchannel = &subchannels[index];
        match subchannel.state_and_ready() {
            (ConnectivityState::Ready, Some(ready)) if Some(subchannel.id()) != avoid => {
                let load = subchannel.load().in_flight();
                (!Growth::is_full(growth, &ready, load)).then_some((index, ready, load))
            }
            (ConnectivityState::Idle, _) => {
                subchannel.request_connect();
                None
            }
            _ => None,
        }
    };
    let second = (second != first).then(|| usable(second)).flatten();
    match (usable(first), second) {
        (Some(a), Some(b)) => {
            let (index, ready, _) = if b.2 < a.2 { b } else { a };
            Some((index, ready))
        }
        (Some((index, ready, _)), None) | (None, Some((index, ready, _))) => Some((index, ready)),
        (None, None) => None,
    }
}

/// Looks at every active subchannel once (after two random ones, when there are more
/// than one), starting at the next in turn; the least loaded READY one that is not full
/// wins; a full one only when no connection is on its way; `avoid` only when it is the
/// only one READY.
pub(crate) fn scan(
    subchannels: &[Subchannel],
    members: &Members,
    next: &AtomicUsize,
    avoid: Option<SubchannelId>,
    growth: Option<Growth>,
) -> Scan {
    let count = members.active_count();
    if count > 1
        && let Some((index, ready)) = two_choices(subchannels, members, avoid, growth)
    {
        return Scan::Ready(index, ready);
    }
    let start = if count > 1 {
        next.fetch_add(1, Ordering::Relaxed) % count
    } else {
        0
    };
    let (mut all_failed, mut all_shutdown) = (count > 0, true);
    let mut last_error = None;
    let mut avoided = None;
    let mut best: Option<(usize, Ready, usize)> = None;
    let mut best_full: Option<(usize, Ready, usize)> = None;
    let mut coming = false;
    let order = members
        .active()
        .skip(start)
        .chain(members.active().take(start));
    for index in order {
        let Some(subchannel) = subchannels.get(index) else {
            continue;
        };
        let (state, ready) = subchannel.state_and_ready();
        match state {
            ConnectivityState::Ready => {
                if let Some(ready) = ready {
                    let load = subchannel.load().in_flight();
                    let slot = if Growth::is_full(growth, &ready, load) {
                        &mut best_full
                    } else {
                        &mut best
                    };
                    if Some(subchannel.id()) == avoid {
                        avoided = Some((index, ready));
                    } else if slot.as_ref().is_none_or(|b| load < b.2) {
                        *slot = Some((index, ready, load));
                    }
                }
                all_failed = false;
            }
            ConnectivityState::Idle => {
                subchannel.request_connect();
                all_failed = false;
                coming = true;
            }
            ConnectivityState::Connecting => {
                all_failed = false;
                coming = true;
            }
            ConnectivityState::TransientFailure => {
                // Still trying after its backoff; the failure stays until it is READY.
                if last_error.is_none() {
                    last_error = subchannel.with_view(|v| v.last_error.clone());
                }
            }
            ConnectivityState::Shutdown => {
                all_failed = false;
                continue;
            }
        }
        all_shutdown = false;
    }
    if let Some((index, ready, _)) = best {
        return Scan::Ready(index, ready);
    }
    // Every READY connection is full: wait for the one on its way, else queue on the
    // least loaded (HTTP/2 holds the call until a stream is free).
    if coming && best_full.is_some() {
        return Scan::Waiting;
    }
    if let Some((index, ready, _)) = best_full.or(avoided.map(|(i, r)| (i, r, 0))) {
        return Scan::Ready(index, ready);
    }
    if all_shutdown {
        Scan::Shutdown
    } else if all_failed {
        Scan::AllFailed(last_error)
    } else {
        Scan::Waiting
    }
}

/// Why a pick gave no connection.
pub(crate) struct PickFailure {
    pub(crate) status: Status,
    /// Every connection failed, but one was READY less than a connection attempt's time
    /// ago: the failure may pass before a retry's backoff ends, so the retry policy may
    /// send the call again. Otherwise the failure is final (docs/design.md section 5).
    pub(crate) lately_ready: bool,
}

impl From<Status> for PickFailure {
    fn from(status: Status) -> Self {
        Self {
            status,
            lately_ready: false,
        }
    }
}

/// A connection for a call: at once when one is READY (`false`: a hit), else waiting
/// for one while connections are made (`true`: a miss). `lately` is how recently a
/// connection must have been READY for a fail-fast failure to be worth a retry.
///
/// A call that found no READY connection at once is use of the channel all the same
/// (grpc-go counts every call's start): while it waits, and when it fails fast, the
/// channel is not idle, so a subchannel in TRANSIENT_FAILURE keeps trying (and keeps
/// failing calls fast) instead of going IDLE and making the next call wait through a
/// whole connection attempt.
pub(crate) async fn pick(
    target: &str,
    subchannels: &[Subchannel],
    members: &Members,
    next: &AtomicUsize,
    channel: &ChannelShared,
    options: &CallOptions,
    (growth, lately): (Option<Growth>, Duration),
) -> Result<(usize, Ready, bool), PickFailure> {
    if let Scan::Ready(index, ready) = scan(subchannels, members, next, options.avoid, growth) {
        return Ok((index, ready, false));
    }
    let _waiting = channel.call_waiting();
    let mut changed = channel.changed.subscribe();
    loop {
        // Marked seen before looking, so any change after the look wakes the wait.
        changed.borrow_and_update();
        match scan(subchannels, members, next, options.avoid, growth) {
            Scan::Ready(index, ready) => return Ok((index, ready, true)),
            Scan::AllFailed(error) if !options.wait_for_ready => {
                // Said as it is: this call tried no connection; none is READY. With
                // one connection, its failure says it all.
                let count = members.active_count();
                let reason = match error {
                    Some(e) if count > 1 => format!(
                        "no connection is READY ({count} in TRANSIENT_FAILURE); the last \
                         failure: {e}"
                    ),
                    Some(e) => e.to_string(),
                    None => "no connection".to_owned(),
                };
                return Err(PickFailure {
                    status: status(Code::Unavailable, target, reason),
                    lately_ready: channel.ready_lately(lately),
                });
            }
            Scan::Shutdown => {
                return Err(status(Code::Unavailable, target, ConnectError::Shutdown).into());
            }
            Scan::AllFailed(_) | Scan::Waiting => {}
        }
        let change = changed.changed();
        let outcome = match options.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, change)
                .await
                .map_err(|_| {
                    let state = ConnectivityState::aggregate(
                        members.active().map(|i| subchannels[i].state()),
                    );
                    PickFailure::from(status(
                        Code::DeadlineExceeded,
                        target,
                        format!("deadline exceeded waiting for a connection (channel {state})"),
                    ))
                })?,
            None => change.await,
        };
        if outcome.is_err() {
            return Err(status(Code::Unavailable, target, ConnectError::Shutdown).into());
        }
    }
}

/// Until one subchannel is READY (connecting every IDLE one), or every one has failed.
pub(crate) async fn wait_ready(
    subchannels: &[Subchannel],
    members: &Members,
    next: &AtomicUsize,
    changed: &watch::Receiver<u64>,
) -> Result<(), ConnectError> {
    // Every IDLE one, not only those a scan reaches before it finds a READY one.
    for index in members.active() {
        let subchannel = &subchannels[index];
        if subchannel.state() == ConnectivityState::Idle {
            subchannel.request_connect();
        }
    }
    let mut changed = changed.clone();
    loop {
        changed.borrow_and_update();
        match scan(subchannels, members, next, None, None) {
            Scan::Ready(..) => return Ok(()),
            Scan::AllFailed(error) => return Err(error.unwrap_or(ConnectError::Shutdown)),
            Scan::Shutdown => return Err(ConnectError::Shutdown),
            Scan::Waiting => {}
        }
        if changed.changed().await.is_err() {
            return Err(ConnectError::Shutdown);
        }
    }
}
