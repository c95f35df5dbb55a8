//! The resolved configuration as a Rust constant expression, for generated code: the
//! attribute macro bakes `TargetConfig` into the binary with it. Every path is
//! `::ephemos::...`, so a user's crate needs only the `ephemos` dependency.

use std::fmt::Write;
use std::time::Duration;

use crate::model::{
    BackoffConfig, ConnectionConfig, HealthCheckConfig, Http2Config, IdentityConfig,
    IdentitySource, KeepaliveConfig, MessageSizeLimits, PoolConfig, Profile, ServerAuthorization,
    TargetConfig,
};
use crate::preset::Preset;
use crate::service_config::{
    CallPolicy, ConnectionScaling, HedgingPolicy, MethodConfig, MethodName, RetryPolicy,
    RetryThrottling, ServiceConfig,
};
use crate::value::{Address, Code, SpiffeId, TrustDomain};

const M: &str = "::ephemos::config::model";
const V: &str = "::ephemos::config::value";
const S: &str = "::ephemos::config::service_config";

/// Writes a value as a Rust constant expression.
pub trait ToRust {
    /// The expression.
    fn to_rust(&self) -> String;
}

fn cow_str(s: &str) -> String {
    format!("::std::borrow::Cow::Borrowed({s:?})")
}

fn cow_slice<T: ToRust>(items: &[T]) -> String {
    let mut out = String::from("::std::borrow::Cow::Borrowed(&[");
    for item in items {
        let _ = write!(out, "{},", item.to_rust());
    }
    out.push_str("])");
    out
}

fn option<T: ToRust>(value: Option<&T>) -> String {
    value.map_or_else(
        || "::core::option::Option::None".to_owned(),
        |v| format!("::core::option::Option::Some({})", v.to_rust()),
    )
}

impl ToRust for Duration {
    fn to_rust(&self) -> String {
        format!(
            "::core::time::Duration::new({}, {})",
            self.as_secs(),
            self.subsec_nanos()
        )
    }
}

impl ToRust for f64 {
    fn to_rust(&self) -> String {
        format!("{self:?}_f64")
    }
}

impl ToRust for u32 {
    fn to_rust(&self) -> String {
        format!("{self}_u32")
    }
}

impl ToRust for bool {
    fn to_rust(&self) -> String {
        self.to_string()
    }
}

impl ToRust for Code {
    fn to_rust(&self) -> String {
        format!("{V}::Code::{self:?}")
    }
}

impl ToRust for Preset {
    fn to_rust(&self) -> String {
        format!("::ephemos::config::Preset::{self:?}")
    }
}

impl ToRust for SpiffeId {
    fn to_rust(&self) -> String {
        format!("{V}::SpiffeId::from_static_unchecked({:?})", self.as_str())
    }
}

impl ToRust for TrustDomain {
    fn to_rust(&self) -> String {
        format!(
            "{V}::TrustDomain::from_static_unchecked({:?})",
            self.as_str()
        )
    }
}

impl ToRust for Address {
    fn to_rust(&self) -> String {
        match self {
            Address::Tcp { host, port } => format!(
                "{V}::Address::Tcp {{ host: {}, port: {port} }}",
                cow_str(host)
            ),
            Address::Dns { host, port } => format!(
                "{V}::Address::Dns {{ host: {}, port: {port} }}",
                cow_str(host)
            ),
            Address::Unix { path } => format!("{V}::Address::Unix {{ path: {} }}", cow_str(path)),
        }
    }
}

impl ToRust for TargetConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::TargetConfig {{ name: {}, service: {}, endpoints: {}, preset: {}, identity: {}, \
             server_authorization: {}, connection: {}, pool: {}, health_check: {}, service_config: {} }}",
            cow_str(&self.name),
            self.service.as_deref().map_or_else(
                || "::core::option::Option::None".to_owned(),
                |s| format!("::core::option::Option::Some({})", cow_str(s))
            ),
            cow_slice(&self.endpoints),
            self.preset.to_rust(),
            self.identity.to_rust(),
            self.server_authorization.to_rust(),
            self.connection.to_rust(),
            self.pool.to_rust(),
            option(self.health_check.as_ref()),
            self.service_config.to_rust(),
        )
    }
}

impl ToRust for Profile {
    fn to_rust(&self) -> String {
        format!(
            "{M}::Profile {{ name: {}, config: {} }}",
            cow_str(&self.name),
            self.config.to_rust()
        )
    }
}

impl ToRust for IdentityConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::IdentityConfig {{ source: {}, trust_domain: {} }}",
            self.source.to_rust(),
            option(self.trust_domain.as_ref())
        )
    }
}

impl ToRust for IdentitySource {
    fn to_rust(&self) -> String {
        match self {
            IdentitySource::Spiffe {
                endpoint,
                initial_sync_timeout,
            } => format!(
                "{M}::IdentitySource::Spiffe {{ endpoint: {}, initial_sync_timeout: {} }}",
                endpoint.as_deref().map_or_else(
                    || "::core::option::Option::None".to_owned(),
                    |e| format!("::core::option::Option::Some({})", cow_str(e))
                ),
                initial_sync_timeout.to_rust()
            ),
            IdentitySource::Files { cert, key, bundle } => format!(
                "{M}::IdentitySource::Files {{ cert: {}, key: {}, bundle: {} }}",
                cow_str(cert),
                cow_str(key),
                cow_str(bundle)
            ),
            IdentitySource::Dev { id } => {
                format!("{M}::IdentitySource::Dev {{ id: {} }}", option(id.as_ref()))
            }
            IdentitySource::Plaintext => format!("{M}::IdentitySource::Plaintext"),
        }
    }
}

impl ToRust for ServerAuthorization {
    fn to_rust(&self) -> String {
        match self {
            ServerAuthorization::Any => format!("{M}::ServerAuthorization::Any"),
            ServerAuthorization::Ids(ids) => {
                format!("{M}::ServerAuthorization::Ids({})", cow_slice(ids))
            }
            ServerAuthorization::TrustDomains(tds) => {
                format!("{M}::ServerAuthorization::TrustDomains({})", cow_slice(tds))
            }
        }
    }
}

impl ToRust for ConnectionConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::ConnectionConfig {{ connect_timeout: {}, backoff: {}, keepalive: {}, idle_timeout: {}, \
             max_message_size: {}, http2: {} }}",
            self.connect_timeout.to_rust(),
            self.backoff.to_rust(),
            option(self.keepalive.as_ref()),
            option(self.idle_timeout.as_ref()),
            self.max_message_size.to_rust(),
            self.http2.to_rust()
        )
    }
}

impl ToRust for BackoffConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::BackoffConfig {{ base_delay: {}, multiplier: {}, jitter: {}, max_delay: {} }}",
            self.base_delay.to_rust(),
            self.multiplier.to_rust(),
            self.jitter.to_rust(),
            self.max_delay.to_rust()
        )
    }
}

impl ToRust for KeepaliveConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::KeepaliveConfig {{ time: {}, timeout: {}, permit_without_stream: {} }}",
            self.time.to_rust(),
            self.timeout.to_rust(),
            self.permit_without_stream
        )
    }
}

impl ToRust for MessageSizeLimits {
    fn to_rust(&self) -> String {
        format!(
            "{M}::MessageSizeLimits {{ send: {}, recv: {} }}",
            self.send.to_rust(),
            self.recv.to_rust()
        )
    }
}

impl ToRust for Http2Config {
    fn to_rust(&self) -> String {
        format!(
            "{M}::Http2Config {{ stream_window: {}, connection_window: {}, adaptive_window: {}, max_frame_size: {} }}",
            self.stream_window.to_rust(),
            self.connection_window.to_rust(),
            self.adaptive_window,
            self.max_frame_size.to_rust()
        )
    }
}

impl ToRust for PoolConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::PoolConfig {{ size: {}, max_size: {}, cleanup_interval: {}, max_streams_per_connection: {}, warm: {} }}",
            self.size.to_rust(),
            self.max_size.to_rust(),
            self.cleanup_interval.to_rust(),
            option(self.max_streams_per_connection.as_ref()),
            self.warm
        )
    }
}

impl ToRust for HealthCheckConfig {
    fn to_rust(&self) -> String {
        format!(
            "{M}::HealthCheckConfig {{ service_name: {} }}",
            cow_str(&self.service_name)
        )
    }
}

impl ToRust for ServiceConfig {
    fn to_rust(&self) -> String {
        format!(
            "{S}::ServiceConfig {{ method_configs: {}, retry_throttling: {}, connection_scaling: {} }}",
            cow_slice(&self.method_configs),
            option(self.retry_throttling.as_ref()),
            option(self.connection_scaling.as_ref())
        )
    }
}

impl ToRust for MethodConfig {
    fn to_rust(&self) -> String {
        format!(
            "{S}::MethodConfig {{ names: {}, timeout: {}, wait_for_ready: {}, policy: {} }}",
            cow_slice(&self.names),
            option(self.timeout.as_ref()),
            option(self.wait_for_ready.as_ref()),
            option(self.policy.as_ref())
        )
    }
}

impl ToRust for MethodName {
    fn to_rust(&self) -> String {
        format!(
            "{S}::MethodName {{ service: {}, method: {} }}",
            cow_str(&self.service),
            self.method.as_deref().map_or_else(
                || "::core::option::Option::None".to_owned(),
                |m| format!("::core::option::Option::Some({})", cow_str(m))
            )
        )
    }
}

impl ToRust for CallPolicy {
    fn to_rust(&self) -> String {
        match self {
            CallPolicy::Retry(p) => format!("{S}::CallPolicy::Retry({})", p.to_rust()),
            CallPolicy::Hedging(p) => format!("{S}::CallPolicy::Hedging({})", p.to_rust()),
        }
    }
}

impl ToRust for RetryPolicy {
    fn to_rust(&self) -> String {
        format!(
            "{S}::RetryPolicy {{ max_attempts: {}, initial_backoff: {}, max_backoff: {}, backoff_multiplier: {}, \
             retryable_status_codes: {} }}",
            self.max_attempts.to_rust(),
            self.initial_backoff.to_rust(),
            self.max_backoff.to_rust(),
            self.backoff_multiplier.to_rust(),
            cow_slice(&self.retryable_status_codes)
        )
    }
}

impl ToRust for HedgingPolicy {
    fn to_rust(&self) -> String {
        format!(
            "{S}::HedgingPolicy {{ max_attempts: {}, hedging_delay: {}, non_fatal_status_codes: {} }}",
            self.max_attempts.to_rust(),
            self.hedging_delay.to_rust(),
            cow_slice(&self.non_fatal_status_codes)
        )
    }
}

impl ToRust for ConnectionScaling {
    fn to_rust(&self) -> String {
        format!(
            "{S}::ConnectionScaling {{ max_connections_per_subchannel: {} }}",
            self.max_connections_per_subchannel.to_rust()
        )
    }
}

impl ToRust for RetryThrottling {
    fn to_rust(&self) -> String {
        format!(
            "{S}::RetryThrottling {{ max_tokens: {}, token_ratio: {} }}",
            self.max_tokens.to_rust(),
            self.token_ratio.to_rust()
        )
    }
}
