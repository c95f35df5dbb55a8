//! The channel's connectivity state, aggregated from its subchannels, and waiting for it
//! to change. A [`StateWatcher`] does not keep the channel alive.

use std::sync::Arc;

use tokio::sync::watch;

use crate::pool::members::{Members, RESOLVING};
use crate::state::ConnectivityState;
use crate::subchannel::View;

/// Reads and waits on a channel's connectivity state.
#[derive(Clone)]
pub struct StateWatcher {
    subchannels: Vec<watch::Receiver<View>>,
    /// Which subchannels count: the pool's active ones (a spare or a retired connection
    /// says nothing of the channel).
    members: Arc<Members>,
    changed: watch::Receiver<u64>,
}

impl std::fmt::Debug for StateWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWatcher")
            .field("state", &self.state())
            .finish()
    }
}

impl StateWatcher {
    pub(crate) fn new(
        subchannels: Vec<watch::Receiver<View>>,
        members: Arc<Members>,
        changed: watch::Receiver<u64>,
    ) -> Self {
        Self {
            subchannels,
            members,
            changed,
        }
    }

    /// The current state: any READY subchannel makes the channel READY, else any
    /// CONNECTING, else any TRANSIENT_FAILURE, else IDLE (SHUTDOWN once dropped).
    pub fn state(&self) -> ConnectivityState {
        // Dropped: every subchannel's sender is gone.
        if self
            .subchannels
            .first()
            .is_some_and(|s| s.has_changed().is_err())
        {
            return ConnectivityState::Shutdown;
        }
        if self.members.active_count() == 0 {
            // Only `dns:///` names, none resolved to an address yet.
            // Failed, or resolved to addresses the pool could not take.
            return match self.members.resolution() {
                RESOLVING => ConnectivityState::Connecting,
                _ => ConnectivityState::TransientFailure,
            };
        }
        ConnectivityState::aggregate(
            self.members
                .active()
                .filter_map(|index| self.subchannels.get(index))
                .map(|s| s.borrow().state),
        )
    }

    /// Returns at once if the state is not `from`; otherwise waits for the next change
    /// and returns the new state (grpc-go's `WaitForStateChange`). Returns SHUTDOWN when
    /// the channel is gone.
    pub async fn wait_for_state_change(&mut self, from: ConnectivityState) -> ConnectivityState {
        loop {
            self.changed.borrow_and_update();
            let now = self.state();
            if now != from {
                return now;
            }
            if self.changed.changed().await.is_err() {
                return ConnectivityState::Shutdown;
            }
        }
    }
}
