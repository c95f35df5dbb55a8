//! Transparent retries of an attempt that never left the client (gRFC A6: sent again
//! as it is, not counted as an attempt), paced and bounded. A connection that is closing
//! hands a call back once and the next pick goes elsewhere, so the first one goes again
//! at once; but a connection (or a pick) that keeps handing calls back must neither spin
//! a core nor hold a call without a deadline for ever: later ones wait 1 ms, doubling up
//! to 64 ms, and after [`MOST_IN_A_ROW`] in a row the call fails UNAVAILABLE.

use std::time::Duration;

use tokio::time::Instant;
use tonic::{Code, Status};

/// How many attempts in a row may come back unsent before the call fails (with the
/// pauses, about half a second of trying).
pub(super) const MOST_IN_A_ROW: u32 = 16;

/// The pause before the second unsent retry in a row; doubled each time after.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// The longest pause between two unsent retries.
const LONGEST_PAUSE: Duration = Duration::from_millis(64);

/// The status of a call that gave up after `times` unsent attempts in a row.
pub(super) fn gave_up(target: &str, times: u32) -> Status {
    crate::error::status(
        Code::Unavailable,
        target,
        format!(
            "the call could not be sent: {times} connections in a row handed it back unsent \
             (each was closing)"
        ),
    )
}

/// One call's unsent attempts in a row.
#[derive(Debug, Default)]
pub(super) struct UnsentRetries {
    in_a_row: u32,
}

impl UnsentRetries {
    /// An attempt came back unsent: waits before it goes again (never past `deadline`),
    /// or says the call has tried enough (`Err` with the count).
    pub(super) async fn pause(&mut self, deadline: Option<Instant>) -> Result<(), u32> {
        self.in_a_row += 1;
        if self.in_a_row > MOST_IN_A_ROW {
            return Err(self.in_a_row - 1);
        }
        let Some(pause) = self.pause_for(self.in_a_row) else {
            tokio::task::yield_now().await;
            return Ok(());
        };
        let wake = Instant::now() + pause;
        tokio::time::sleep_until(deadline.map_or(wake, |d| d.min(wake))).await;
        Ok(())
    }

    /// An attempt was sent: the next unsent one starts a new run.
    pub(super) fn sent(&mut self) {
        self.in_a_row = 0;
    }

    /// The pause before the `n`th retry in a row: none for the first.
    fn pause_for(&self, n: u32) -> Option<Duration> {
        let doublings = n.checked_sub(2)?;
        Some(
            FIRST_PAUSE
                .saturating_mul(1 << doublings.min(16))
                .min(LONGEST_PAUSE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_goes_at_once_then_pauses_double_up_to_the_longest() {
        let retries = UnsentRetries::default();
        let pauses: Vec<_> = (1..=9).map(|n| retries.pause_for(n)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            pauses,
            [
                None,
                ms(1),
                ms(2),
                ms(4),
                ms(8),
                ms(16),
                ms(32),
                ms(64),
                ms(64)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_of_unsent_attempts_ends_and_a_sent_one_starts_a_new_run() {
        let mut retries = UnsentRetries::default();
        let started = Instant::now();
        for _ in 0..MOST_IN_A_ROW {
            retries.pause(None).await.unwrap();
        }
        assert_eq!(retries.pause(None).await, Err(MOST_IN_A_ROW));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(400) && waited <= Duration::from_secs(1),
            "{waited:?}"
        );
        retries.sent();
        assert_eq!(retries.pause(None).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn no_pause_outlives_the_deadline() {
        let mut retries = UnsentRetries::default();
        for _ in 0..8 {
            retries.pause(None).await.unwrap();
        }
        // The next pause is 64 ms; the deadline is in 5.
        let started = Instant::now();
        retries
            .pause(Some(started + Duration::from_millis(5)))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(5));
    }
}
