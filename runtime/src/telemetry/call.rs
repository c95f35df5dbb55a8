//! [`CallMeter`]: a call as the application sees it (gRFC A66 `call.duration`, from the
//! call into the channel to the status it gets), and its `grpc.call` span, which every
//! attempt's span is a child of.

use tokio::time::Instant;
use tonic::Code;

use super::Telemetry;
use super::keys;
use super::labels::{CallLabels, status_name};

/// One call, until its status reaches the application.
pub(crate) struct CallMeter {
    labels: CallLabels,
    started: Instant,
    span: tracing::Span,
    finished: bool,
}

impl CallMeter {
    /// A call starting now; its span is `grpc.call`.
    pub(crate) fn start(telemetry: &Telemetry, labels: &CallLabels, path: &str) -> Self {
        let span = tracing::info_span!(
            "grpc.call",
            grpc.target = %telemetry.target,
            grpc.method = %path,
            grpc.status = tracing::field::Empty,
        );
        CallMeter {
            labels: labels.clone(),
            started: Instant::now(),
            span,
            finished: false,
        }
    }

    /// The call's span, entered while the call is polled.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The call ended with `code`; later calls do nothing.
    pub(crate) fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let name = status_name(code);
        keys::record(
            &self.labels.keys.status(code).call_duration,
            self.started.elapsed().as_secs_f64(),
        );
        self.span.record("grpc.status", name);
        if code != Code::Ok {
            tracing::debug!(parent: &self.span, grpc.status = name, "call failed");
        }
    }
}

impl Drop for CallMeter {
    /// A call the application dropped before its status: CANCELLED.
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}
