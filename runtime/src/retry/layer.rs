//! [`RetryLayer`]: puts a [`Retry`] over the service that makes attempts.

use std::sync::Arc;

use super::{Retry, Shared};

/// Wraps an attempt-making service (the pool) in the retry layer.
#[derive(Clone)]
pub(crate) struct RetryLayer {
    shared: Arc<Shared>,
}

impl RetryLayer {
    pub(crate) fn new(target: Arc<str>, send_limit: u32) -> Self {
        Self {
            shared: Arc::new(Shared::new(target, send_limit)),
        }
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            shared: self.shared.clone(),
        }
    }
}
