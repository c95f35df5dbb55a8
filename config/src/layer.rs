//! One layer of settings: every setting optional, each value with its origin.
//!
//! Resolution stacks layers (built-in default < preset < `[defaults]` < target <
//! attribute) with [`Layer::overlay`]; a method's settings are one more layer on top of its
//! target's. The macro below keeps the field list, the overlay and the provenance listing
//! in one place, so adding a setting is one line.

use std::time::Duration;

use crate::model::{IdentitySource, ServerAuthorization};
use crate::preset::Preset;
use crate::provenance::{Setting, Sourced};
use crate::service_config::{RetryThrottling, ServiceConfig};
use crate::value::{Address, Code, TrustDomain, format_byte_size, format_duration};

/// Which policy handles failed calls at this layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    Retry,
    Hedging,
    Off,
    /// `hedging = false`: hedging below becomes no policy; retry below stays.
    NotHedging,
}

/// A message size in bytes, shown with units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteCount(pub(crate) u32);

macro_rules! layer {
    ($($field:ident: $ty:ty => $key:literal,)*) => {
        /// Every setting of the model, each optional and with its origin.
        #[derive(Debug, Clone, Default)]
        pub(crate) struct Layer {
            $(pub(crate) $field: Option<Sourced<$ty>>,)*
        }

        impl Layer {
            /// Every setting's key, in listing order.
            #[cfg(test)]
            pub(crate) const KEYS: &[&str] = &[$($key,)*];

            /// Replaces every setting that `upper` sets.
            pub(crate) fn overlay(&mut self, upper: &Layer) {
                let below = self.policy.clone();
                $(if let Some(value) = &upper.$field {
                    self.$field = Some(value.clone());
                })*
                if let Some(not_hedging) = upper.policy.as_ref().filter(|p| p.value == PolicyKind::NotHedging) {
                    self.policy = match below {
                        Some(b) if b.value == PolicyKind::Hedging => {
                            Some(Sourced::new(PolicyKind::Off, not_hedging.origin.clone()))
                        }
                        other => other,
                    };
                }
            }

            /// The settings this layer sets, as provenance lines, keys prefixed.
            pub(crate) fn settings(&self, prefix: &str) -> Vec<Setting> {
                let mut out = Vec::new();
                $(if let Some(value) = &self.$field {
                    out.push(Setting {
                        key: format!("{prefix}{}", $key),
                        value: value.value.show(),
                        origin: value.origin.clone(),
                    });
                })*
                out
            }
        }
    };
}

layer! {
    preset: Preset => "preset",
    service: String => "service",
    endpoints: Vec<Address> => "endpoints",
    trust_domain: TrustDomain => "trust_domain",
    identity: IdentitySource => "identity",
    server_authorization: ServerAuthorization => "server_authorization",
    connect_timeout: Duration => "connect_timeout",
    backoff_base: Duration => "backoff.base",
    backoff_multiplier: f64 => "backoff.multiplier",
    backoff_jitter: f64 => "backoff.jitter",
    backoff_max: Duration => "backoff.max",
    keepalive_enabled: bool => "keepalive",
    keepalive_time: Duration => "keepalive.time",
    keepalive_timeout: Duration => "keepalive.timeout",
    keepalive_permit_without_stream: bool => "keepalive.permit_without_stream",
    idle_timeout: Option<Duration> => "idle_timeout",
    max_send_message_size: ByteCount => "max_message_size.send",
    max_recv_message_size: ByteCount => "max_message_size.recv",
    http2_stream_window: ByteCount => "http2.stream_window",
    http2_connection_window: ByteCount => "http2.connection_window",
    http2_adaptive_window: bool => "http2.adaptive_window",
    http2_max_frame_size: ByteCount => "http2.max_frame_size",
    pool_enabled: bool => "pool",
    pool_size: u32 => "pool.size",
    pool_max_size: u32 => "pool.max_size",
    pool_cleanup_interval: Duration => "pool.cleanup_interval",
    pool_max_streams: Option<u32> => "pool.max_streams_per_connection",
    pool_warm: bool => "pool.warm",
    health_check: Option<String> => "health_check",
    timeout: Option<Duration> => "timeout",
    wait_for_ready: bool => "wait_for_ready",
    policy: PolicyKind => "policy",
    retry_max_attempts: u32 => "retry.max_attempts",
    retry_initial_backoff: Duration => "retry.initial_backoff",
    retry_max_backoff: Duration => "retry.max_backoff",
    retry_backoff_multiplier: f64 => "retry.backoff_multiplier",
    retry_codes: Vec<Code> => "retry.retryable_status_codes",
    hedging_max_attempts: u32 => "hedging.max_attempts",
    hedging_delay: Duration => "hedging.hedging_delay",
    hedging_codes: Vec<Code> => "hedging.non_fatal_status_codes",
    retry_throttling: Option<RetryThrottling> => "retry_throttling",
    service_config: ServiceConfig => "service_config",
}

/// How a value is written back in `connections.toml` style, for provenance listings.
pub(crate) trait ShowValue {
    fn show(&self) -> String;
}

impl ShowValue for Duration {
    fn show(&self) -> String {
        format!("\"{}\"", format_duration(*self))
    }
}

impl ShowValue for Option<Duration> {
    fn show(&self) -> String {
        self.as_ref()
            .map_or_else(|| "\"off\"".to_owned(), ShowValue::show)
    }
}

impl ShowValue for f64 {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl ShowValue for bool {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl ShowValue for u32 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl ShowValue for Option<u32> {
    fn show(&self) -> String {
        self.map_or_else(|| "\"auto\"".to_owned(), |n| n.to_string())
    }
}

impl ShowValue for ByteCount {
    fn show(&self) -> String {
        format!("\"{}\"", format_byte_size(u64::from(self.0)))
    }
}

impl ShowValue for String {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

impl ShowValue for Option<String> {
    fn show(&self) -> String {
        match self {
            None => "false".to_owned(),
            Some(service) if service.is_empty() => "true".to_owned(),
            Some(service) => format!("{{ service = {service:?} }}"),
        }
    }
}

impl ShowValue for Preset {
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl ShowValue for TrustDomain {
    fn show(&self) -> String {
        format!("\"{self}\"")
    }
}

impl ShowValue for Vec<Address> {
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(|a| format!("\"{a}\"")).collect();
        format!("[{}]", items.join(", "))
    }
}

impl ShowValue for Vec<Code> {
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(|c| format!("\"{c}\"")).collect();
        format!("[{}]", items.join(", "))
    }
}

impl ShowValue for IdentitySource {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl ShowValue for ServerAuthorization {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl ShowValue for PolicyKind {
    fn show(&self) -> String {
        match self {
            PolicyKind::Retry => "retry",
            PolicyKind::Hedging => "hedging",
            PolicyKind::Off | PolicyKind::NotHedging => "none",
        }
        .to_owned()
    }
}

impl ShowValue for Option<RetryThrottling> {
    fn show(&self) -> String {
        match self {
            None => "false".to_owned(),
            Some(t) => format!(
                "{{ max_tokens = {}, token_ratio = {:?} }}",
                t.max_tokens, t.token_ratio
            ),
        }
    }
}

impl ShowValue for ServiceConfig {
    fn show(&self) -> String {
        self.to_json_compact()
    }
}
