//! [`RetryLayer`]: puts a [`Retry`] over the service that makes attempts.

use std::sync::Arc;

use ephemos_config::service_config::{CallPolicy, RetryThrottling};

use super::{Retry, Shared};

/// Wraps an attempt-making service (the pool) in the retry layer.
#[derive(Clone)]
pub(crate) struct RetryLayer {
    shared: Arc<Shared>,
}

impl RetryLayer {
    /// `policies` are the channel's call policies (indexed by a call's
    /// `CallOptions::policy`); `throttling` its retry throttling.
    pub(crate) fn new(
        target: Arc<str>,
        send_limit: u32,
        policies: &[CallPolicy],
        throttling: Option<&RetryThrottling>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared::new(target, send_limit, policies, throttling)),
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
