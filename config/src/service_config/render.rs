//! Renders a [`ServiceConfig`] to the canonical JSON grpc-go accepts: camelCase keys in a
//! fixed order, proto3 JSON durations, status codes by name.

use serde::Serialize;

use super::{CallPolicy, MethodConfig, MethodName, ServiceConfig};
use crate::value::format_proto_duration;

impl ServiceConfig {
    /// The service config as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&Wire::from(self)).unwrap_or_default()
    }

    /// The service config as compact JSON (what a constant bakes).
    pub fn to_json_compact(&self) -> String {
        serde_json::to_string(&Wire::from(self)).unwrap_or_default()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    method_config: Vec<WireMethodConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_throttling: Option<WireThrottling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_scaling: Option<WireScaling>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireScaling {
    max_connections_per_subchannel: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMethodConfig<'a> {
    name: Vec<WireName<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_for_ready: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_policy: Option<WireRetry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hedging_policy: Option<WireHedging>,
}

#[derive(Serialize)]
struct WireName<'a> {
    service: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRetry {
    max_attempts: u32,
    initial_backoff: String,
    max_backoff: String,
    backoff_multiplier: f64,
    retryable_status_codes: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireHedging {
    max_attempts: u32,
    hedging_delay: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    non_fatal_status_codes: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireThrottling {
    max_tokens: u32,
    token_ratio: f64,
}

impl<'a> From<&'a ServiceConfig> for Wire<'a> {
    fn from(config: &'a ServiceConfig) -> Self {
        Wire {
            method_config: config
                .method_configs
                .iter()
                .map(WireMethodConfig::from)
                .collect(),
            retry_throttling: config.retry_throttling.map(|t| WireThrottling {
                max_tokens: t.max_tokens,
                token_ratio: t.token_ratio,
            }),
            connection_scaling: config.connection_scaling.map(|s| WireScaling {
                max_connections_per_subchannel: s.max_connections_per_subchannel,
            }),
        }
    }
}

impl<'a> From<&'a MethodConfig> for WireMethodConfig<'a> {
    fn from(config: &'a MethodConfig) -> Self {
        let (retry_policy, hedging_policy) = match &config.policy {
            Some(CallPolicy::Retry(p)) => (
                Some(WireRetry {
                    max_attempts: p.max_attempts,
                    initial_backoff: format_proto_duration(p.initial_backoff),
                    max_backoff: format_proto_duration(p.max_backoff),
                    backoff_multiplier: p.backoff_multiplier,
                    retryable_status_codes: p
                        .retryable_status_codes
                        .iter()
                        .map(|c| c.name())
                        .collect(),
                }),
                None,
            ),
            Some(CallPolicy::Hedging(p)) => (
                None,
                Some(WireHedging {
                    max_attempts: p.max_attempts,
                    hedging_delay: format_proto_duration(p.hedging_delay),
                    non_fatal_status_codes: p
                        .non_fatal_status_codes
                        .iter()
                        .map(|c| c.name())
                        .collect(),
                }),
            ),
            None => (None, None),
        };
        WireMethodConfig {
            name: config.names.iter().map(WireName::from).collect(),
            timeout: config.timeout.map(format_proto_duration),
            wait_for_ready: config.wait_for_ready,
            retry_policy,
            hedging_policy,
        }
    }
}

impl<'a> From<&'a MethodName> for WireName<'a> {
    fn from(name: &'a MethodName) -> Self {
        WireName {
            service: &name.service,
            method: name.method.as_deref(),
        }
    }
}
