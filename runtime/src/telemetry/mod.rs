//! Telemetry: gRPC's standard client metrics through the `metrics` facade (the
//! application installs the recorder and picks the exporter; with none, recording does
//! nothing), `tracing` spans for each call and attempt, and the events the layers log.
//!
//! Where each part is recorded, layer by layer:
//! - the facade ([`call::CallMeter`]): A66 `grpc.client.call.duration`, the `grpc.call`
//!   span;
//! - the retry layer ([`retries::CallRetries`]): A96 retries, transparent retries, hedges
//!   and retry delay of each call;
//! - between retry and the pool ([`attempt::AttemptMeter`]): A66 attempts (started,
//!   duration, message bytes each way), the `grpc.attempt` span;
//! - the pool ([`pool::PoolMeter`]): hits, misses, evictions, size;
//! - each subchannel ([`connection::ConnectionMeter`]): A94 connection attempts,
//!   disconnections, open connections; connect time; health.
//!
//! Labels: `grpc.target` is the channel's target name (what `connections.toml` calls it),
//! `grpc.method` the full method name for calls a generated client makes and `other` for
//! any other path (gRFC A66), `grpc.status` the code's name.
//!
//! - [`names`]: every metric's name, label keys, units and descriptions.
//! - [`labels`]: the call's labels, status names.
//! - [`keys`]: the per-call metrics' keys, built once per method and status.

pub(crate) mod attempt;
pub(crate) mod call;
pub(crate) mod connection;
pub(crate) mod keys;
pub(crate) mod labels;
pub(crate) mod names;
pub(crate) mod pool;
pub(crate) mod retries;

use std::sync::Arc;

use metrics::SharedString;

/// What a channel's calls are labelled with.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// The target's name, shared by every label that carries it.
    pub(crate) target: SharedString,
    /// The per-call metrics' keys, by method.
    pub(crate) keys: keys::ChannelKeys,
}

impl Telemetry {
    pub(crate) fn new(target: &Arc<str>) -> Arc<Self> {
        names::describe();
        let target = SharedString::from(target.clone());
        Arc::new(Self {
            keys: keys::ChannelKeys::new(target.clone()),
            target,
        })
    }
}
