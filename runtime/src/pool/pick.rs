//! The pick: a READY subchannel whose connection takes new calls, by power of two
//! choices on the calls in flight (two at random, the less loaded wins; no lock, no
//! scan of the pool on the call path), else the least loaded one a full scan finds.
//! IDLE subchannels are asked to connect on the way. Fail fast when every subchannel is
//! in (sticky) TRANSIENT_FAILURE, unless the call waits for ready; the call's deadline
//! bounds the wait.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;
use tonic::{Code, Status};

use crate::call::{CallOptions, SubchannelId};
use crate::error::{ConnectError, status};
use crate::state::ConnectivityState;
use crate::subchannel::{Ready, Subchannel};

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

/// Two subchannels at random: the one with fewer calls in flight, when one of them is
/// READY, takes new calls and is not `avoid`. IDLE ones are asked to connect.
fn two_choices(subchannels: &[Subchannel], avoid: Option<SubchannelId>) -> Option<(usize, Ready)> {
    let count = subchannels.len();
    let first = fastrand::usize(..count);
    let second = (first + 1 + fastrand::usize(..count - 1)) % count;
    let usable = |index: usize| {
        let subchannel = &subchannels[index];
        match subchannel.state_and_ready() {
            (ConnectivityState::Ready, Some(ready)) if Some(subchannel.id()) != avoid => {
                Some((index, ready, subchannel.load().in_flight()))
            }
            (ConnectivityState::Idle, _) => {
                subchannel.request_connect();
                None
            }
            _ => None,
        }
    };
    match (usable(first), usable(second)) {
        (Some(a), Some(b)) => {
            let (index, ready, _) = if b.2 < a.2 { b } else { a };
            Some((index, ready))
        }
        (Some((index, ready, _)), None) | (None, Some((index, ready, _))) => Some((index, ready)),
        (None, None) => None,
    }
}

/// Looks at every subchannel once (after two random ones, when there are more than one),
/// starting at the next in turn; the least loaded READY one wins, `avoid` only when it is
/// the only one READY.
pub(crate) fn scan(
    subchannels: &[Subchannel],
    next: &AtomicUsize,
    avoid: Option<SubchannelId>,
) -> Scan {
    let count = subchannels.len();
    if count > 1
        && let Some((index, ready)) = two_choices(subchannels, avoid)
    {
        return Scan::Ready(index, ready);
    }
    let start = if count > 1 {
        next.fetch_add(1, Ordering::Relaxed)
    } else {
        0
    };
    let (mut all_failed, mut all_shutdown) = (count > 0, true);
    let mut last_error = None;
    let mut avoided = None;
    let mut best: Option<(usize, Ready, usize)> = None;
    for i in 0..count {
        let index = (start + i) % count;
        let subchannel = &subchannels[index];
        let (state, ready) = subchannel.state_and_ready();
        match state {
            ConnectivityState::Ready => {
                if let Some(ready) = ready {
                    let load = subchannel.load().in_flight();
                    if Some(subchannel.id()) == avoid {
                        avoided = Some((index, ready));
                    } else if best.as_ref().is_none_or(|b| load < b.2) {
                        best = Some((index, ready, load));
                    }
                }
                all_failed = false;
            }
            ConnectivityState::Idle => {
                subchannel.request_connect();
                all_failed = false;
            }
            ConnectivityState::Connecting => all_failed = false,
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
    if let Some((index, ready, _)) = best.or(avoided.map(|(i, r)| (i, r, 0))) {
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

/// A connection for a call: at once when one is READY (`false`: a hit), else waiting
/// for one while connections are made (`true`: a miss).
pub(crate) async fn pick(
    target: &str,
    subchannels: &[Subchannel],
    next: &AtomicUsize,
    changed: &watch::Receiver<u64>,
    options: &CallOptions,
) -> Result<(usize, Ready, bool), Status> {
    if let Scan::Ready(index, ready) = scan(subchannels, next, options.avoid) {
        return Ok((index, ready, false));
    }
    let mut changed = changed.clone();
    loop {
        // Marked seen before looking, so any change after the look wakes the wait.
        changed.borrow_and_update();
        match scan(subchannels, next, options.avoid) {
            Scan::Ready(index, ready) => return Ok((index, ready, true)),
            Scan::AllFailed(error) if !options.wait_for_ready => {
                let reason = error.map_or_else(|| "no connection".to_owned(), |e| e.to_string());
                return Err(status(Code::Unavailable, target, reason));
            }
            Scan::Shutdown => {
                return Err(status(Code::Unavailable, target, ConnectError::Shutdown));
            }
            Scan::AllFailed(_) | Scan::Waiting => {}
        }
        let change = changed.changed();
        let outcome = match options.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, change)
                .await
                .map_err(|_| {
                    let state =
                        ConnectivityState::aggregate(subchannels.iter().map(Subchannel::state));
                    status(
                        Code::DeadlineExceeded,
                        target,
                        format!("deadline exceeded waiting for a connection (channel {state})"),
                    )
                })?,
            None => change.await,
        };
        if outcome.is_err() {
            return Err(status(Code::Unavailable, target, ConnectError::Shutdown));
        }
    }
}

/// Until one subchannel is READY (connecting every IDLE one), or every one has failed.
pub(crate) async fn wait_ready(
    subchannels: &[Subchannel],
    next: &AtomicUsize,
    changed: &watch::Receiver<u64>,
) -> Result<(), ConnectError> {
    // Every IDLE one, not only those a scan reaches before it finds a READY one.
    for subchannel in subchannels {
        if subchannel.state() == ConnectivityState::Idle {
            subchannel.request_connect();
        }
    }
    let mut changed = changed.clone();
    loop {
        changed.borrow_and_update();
        match scan(subchannels, next, None) {
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
