//! [`BoxingExecutor`]: the executor hyper's HTTP/2 client spawns its tasks on.
//!
//! hyper spawns two futures for every call (one sends the request body, one waits for
//! the response), both of its enum `H2ClientFuture`, which is as large as its largest
//! variant: the connection task, with h2's codec and the IO inline (1.5 KB here).
//! `tokio::spawn` moves a future several times on its way into the task's cell, so a
//! call copied kilobytes it never used. Boxed first, a spawn moves a pointer: 2,700
//! fewer instructions a call (callgrind, unary 64 B, one caller), for one more allocation
//! a spawn. tonic's channel boxes every future it spawns the same way (its `SharedExec`).

use std::future::Future;

/// Spawns each future on the current tokio runtime, boxed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BoxingExecutor;

impl<F> hyper::rt::Executor<F> for BoxingExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Box::pin(future));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;

    #[tokio::test]
    async fn a_spawned_future_runs_to_its_end() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        BoxingExecutor.execute(async move {
            let _ = tx.send(7);
        });
        assert_eq!(rx.await, Ok(7));
    }
}
