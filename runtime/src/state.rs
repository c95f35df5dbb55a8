//! Connectivity states (grpc/grpc `doc/connectivity-semantics-and-api.md`) and a
//! watcher with grpc-go's `WaitForStateChange` semantics.

use std::fmt;

/// The connectivity state of a subchannel or channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection, and none being made: the next call (or `connect()`) starts one.
    Idle,
    /// A connection attempt is in progress.
    Connecting,
    /// Connected: the server's HTTP/2 SETTINGS arrived, calls go out at once.
    Ready,
    /// The last attempt failed; the next waits for the backoff. Calls fail fast with
    /// UNAVAILABLE unless they wait for ready.
    TransientFailure,
    /// The channel was dropped; nothing will connect again.
    Shutdown,
}

impl ConnectivityState {
    /// The channel's state from its subchannels' (any READY, else any CONNECTING, else
    /// any TRANSIENT_FAILURE, else IDLE; SHUTDOWN only when all are).
    pub fn aggregate(states: impl IntoIterator<Item = ConnectivityState>) -> ConnectivityState {
        let mut seen = [false; 5];
        let mut any = false;
        for state in states {
            any = true;
            seen[state as usize] = true;
        }
        use ConnectivityState::*;
        if !any {
            return Shutdown;
        }
        [Ready, Connecting, TransientFailure, Idle]
            .into_iter()
            .find(|s| seen[*s as usize])
            .unwrap_or(Shutdown)
    }
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectivityState::Idle => "IDLE",
            ConnectivityState::Connecting => "CONNECTING",
            ConnectivityState::Ready => "READY",
            ConnectivityState::TransientFailure => "TRANSIENT_FAILURE",
            ConnectivityState::Shutdown => "SHUTDOWN",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectivityState::*;
    use super::*;

    #[test]
    fn aggregation_follows_the_design_order() {
        assert_eq!(
            ConnectivityState::aggregate([Idle, TransientFailure, Ready]),
            Ready
        );
        assert_eq!(
            ConnectivityState::aggregate([Idle, Connecting, TransientFailure]),
            Connecting
        );
        assert_eq!(
            ConnectivityState::aggregate([Idle, TransientFailure]),
            TransientFailure
        );
        assert_eq!(ConnectivityState::aggregate([Idle, Idle]), Idle);
        assert_eq!(ConnectivityState::aggregate([Shutdown, Idle]), Idle);
        assert_eq!(ConnectivityState::aggregate([Shutdown]), Shutdown);
        assert_eq!(ConnectivityState::aggregate([]), Shutdown);
    }
}
