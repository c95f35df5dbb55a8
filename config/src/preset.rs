//! The three presets of the reference document, as data.
//!
//! A preset is a named set of values that sits between the built-in default and what
//! the user writes. `production` is also the built-in default.

use std::fmt;
use std::time::Duration;

use crate::layer::{ByteCount, Layer, PolicyKind};
use crate::model::{
    BackoffConfig, ConnectionConfig, Http2Config, IdentitySource, KeepaliveConfig,
    MessageSizeLimits,
};
use crate::provenance::{Origin, Sourced};
use crate::value::{Code, InvalidValue};

/// A named starting point for a target's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// The default: reliable settings for production services.
    Production,
    /// Quick feedback for local work: short timeouts, few retries, the dev identity.
    Development,
    /// Long-lived, high-volume traffic: pooled connections, large messages, no idle timeout.
    HighThroughput,
}

/// Every value a preset sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresetValues {
    /// Connection attempt timeout.
    pub connect_timeout: Duration,
    /// Connection backoff: base delay.
    pub backoff_base: Duration,
    /// Connection backoff: multiplier.
    pub backoff_multiplier: f64,
    /// Connection backoff: jitter.
    pub backoff_jitter: f64,
    /// Connection backoff: maximum delay.
    pub backoff_max: Duration,
    /// Keepalive ping interval.
    pub keepalive_time: Duration,
    /// Keepalive ping timeout.
    pub keepalive_timeout: Duration,
    /// Keepalive pings without calls in flight.
    pub keepalive_permit_without_stream: bool,
    /// Idle timeout, `None` for off.
    pub idle_timeout: Option<Duration>,
    /// Max message size, both directions, bytes.
    pub max_message_size: u32,
    /// Connections per endpoint (1: pooling off).
    pub pool_size: u32,
    /// Retry: attempts in all.
    pub retry_max_attempts: u32,
    /// Retry: initial backoff.
    pub retry_initial_backoff: Duration,
    /// Retry: max backoff.
    pub retry_max_backoff: Duration,
    /// Retry: backoff multiplier.
    pub retry_backoff_multiplier: f64,
    /// Retry: retryable status codes.
    pub retry_codes: &'static [Code],
    /// Whether the identity defaults to the in-process dev CA instead of SPIFFE.
    pub dev_identity: bool,
}

const MIB: u32 = 1 << 20;

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 3] = [
        Preset::Production,
        Preset::Development,
        Preset::HighThroughput,
    ];

    /// The name written in `connections.toml`.
    pub const fn name(self) -> &'static str {
        match self {
            Preset::Production => "production",
            Preset::Development => "development",
            Preset::HighThroughput => "high_throughput",
        }
    }

    /// Parses a preset name.
    pub fn parse(name: &str) -> Result<Preset, InvalidValue> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                InvalidValue::new(
                    format!("unknown preset `{name}`"),
                    crate::diagnostic::unknown_name_help(name, Preset::ALL.map(Preset::name)),
                )
            })
    }

    /// The values of docs/design.md section 3 (from the reference document).
    pub const fn values(self) -> PresetValues {
        match self {
            Preset::Production => PresetValues {
                connect_timeout: Duration::from_secs(30),
                backoff_base: Duration::from_secs(1),
                backoff_multiplier: 1.6,
                backoff_jitter: 0.2,
                backoff_max: Duration::from_secs(120),
                keepalive_time: Duration::from_secs(10),
                keepalive_timeout: Duration::from_secs(5),
                keepalive_permit_without_stream: true,
                idle_timeout: Some(Duration::from_secs(30 * 60)),
                max_message_size: 4 * MIB,
                pool_size: 1,
                retry_max_attempts: 5,
                retry_initial_backoff: Duration::from_secs(1),
                retry_max_backoff: Duration::from_secs(30),
                retry_backoff_multiplier: 2.0,
                retry_codes: &[Code::Unavailable, Code::DeadlineExceeded, Code::Aborted],
                dev_identity: false,
            },
            Preset::Development => PresetValues {
                connect_timeout: Duration::from_secs(5),
                backoff_base: Duration::from_millis(500),
                backoff_multiplier: 1.6,
                backoff_jitter: 0.2,
                backoff_max: Duration::from_secs(10),
                keepalive_time: Duration::from_secs(10),
                keepalive_timeout: Duration::from_secs(5),
                keepalive_permit_without_stream: true,
                idle_timeout: Some(Duration::from_secs(5 * 60)),
                max_message_size: 4 * MIB,
                pool_size: 1,
                retry_max_attempts: 3,
                retry_initial_backoff: Duration::from_millis(500),
                retry_max_backoff: Duration::from_secs(5),
                retry_backoff_multiplier: 1.5,
                retry_codes: &[Code::Unavailable],
                dev_identity: true,
            },
            Preset::HighThroughput => PresetValues {
                connect_timeout: Duration::from_secs(10),
                backoff_base: Duration::from_secs(1),
                backoff_multiplier: 1.6,
                backoff_jitter: 0.2,
                backoff_max: Duration::from_secs(120),
                keepalive_time: Duration::from_secs(30),
                keepalive_timeout: Duration::from_secs(10),
                keepalive_permit_without_stream: true,
                idle_timeout: None,
                max_message_size: 16 * MIB,
                pool_size: 10,
                retry_max_attempts: 3,
                retry_initial_backoff: Duration::from_secs(2),
                retry_max_backoff: Duration::from_secs(60),
                retry_backoff_multiplier: 2.0,
                retry_codes: &[Code::Unavailable, Code::DeadlineExceeded],
                dev_identity: false,
            },
        }
    }

    /// The preset's pool, as a resolved target without pool settings of its own has it.
    pub const fn pool_config(self) -> crate::model::PoolConfig {
        let v = self.values();
        crate::model::PoolConfig {
            size: v.pool_size,
            max_size: v.pool_size,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            max_streams_per_connection: None,
            warm: false,
        }
    }

    /// The dial settings of this preset, for a channel built without `connections.toml`.
    pub const fn connection_config(self) -> ConnectionConfig {
        let v = self.values();
        ConnectionConfig {
            connect_timeout: v.connect_timeout,
            backoff: BackoffConfig {
                base_delay: v.backoff_base,
                multiplier: v.backoff_multiplier,
                jitter: v.backoff_jitter,
                max_delay: v.backoff_max,
            },
            keepalive: Some(KeepaliveConfig {
                time: v.keepalive_time,
                timeout: v.keepalive_timeout,
                permit_without_stream: v.keepalive_permit_without_stream,
            }),
            idle_timeout: v.idle_timeout,
            max_message_size: MessageSizeLimits {
                send: v.max_message_size,
                recv: v.max_message_size,
            },
            http2: Http2Config::DEFAULT,
        }
    }

    /// The preset as a layer of settings whose origin is the preset.
    pub(crate) fn layer(self) -> Layer {
        let v = self.values();
        let origin = Origin::Preset(self);
        let set = |value| Some(Sourced::new(value, origin.clone()));
        Layer {
            preset: Some(Sourced::new(self, origin.clone())),
            identity: Some(Sourced::new(
                if v.dev_identity {
                    IdentitySource::Dev { id: None }
                } else {
                    IdentitySource::Spiffe {
                        endpoint: None,
                        initial_sync_timeout: DEFAULT_INITIAL_SYNC_TIMEOUT,
                    }
                },
                origin.clone(),
            )),
            connect_timeout: set(v.connect_timeout),
            backoff_base: set(v.backoff_base),
            backoff_multiplier: Some(Sourced::new(v.backoff_multiplier, origin.clone())),
            backoff_jitter: Some(Sourced::new(v.backoff_jitter, origin.clone())),
            backoff_max: set(v.backoff_max),
            keepalive_enabled: Some(Sourced::new(true, origin.clone())),
            keepalive_time: set(v.keepalive_time),
            keepalive_timeout: set(v.keepalive_timeout),
            keepalive_permit_without_stream: Some(Sourced::new(
                v.keepalive_permit_without_stream,
                origin.clone(),
            )),
            idle_timeout: Some(Sourced::new(v.idle_timeout, origin.clone())),
            max_send_message_size: Some(Sourced::new(
                ByteCount(v.max_message_size),
                origin.clone(),
            )),
            max_recv_message_size: Some(Sourced::new(
                ByteCount(v.max_message_size),
                origin.clone(),
            )),
            pool_enabled: Some(Sourced::new(v.pool_size > 1, origin.clone())),
            pool_size: Some(Sourced::new(v.pool_size, origin.clone())),
            policy: Some(Sourced::new(PolicyKind::Retry, origin.clone())),
            retry_max_attempts: Some(Sourced::new(v.retry_max_attempts, origin.clone())),
            retry_initial_backoff: set(v.retry_initial_backoff),
            retry_max_backoff: set(v.retry_max_backoff),
            retry_backoff_multiplier: Some(Sourced::new(
                v.retry_backoff_multiplier,
                origin.clone(),
            )),
            retry_codes: Some(Sourced::new(v.retry_codes.to_vec(), origin.clone())),
            ..Layer::default()
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long the `spiffe` identity waits for the first SVID by default.
pub const DEFAULT_INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the pool cleans up (the reference's 30 s).
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(30);
/// The pool size when pooling is turned on without a size (the reference's 5).
pub const DEFAULT_POOL_SIZE_WHEN_ENABLED: u32 = 5;

/// The values no preset sets: the bottom layer of every resolution.
pub(crate) fn built_in_layer() -> Layer {
    let origin = Origin::BuiltIn;
    let mut layer = Preset::Production.layer();
    layer.overlay(&Layer {
        http2_stream_window: Some(Sourced::new(
            ByteCount(Http2Config::DEFAULT.stream_window),
            origin.clone(),
        )),
        http2_connection_window: Some(Sourced::new(
            ByteCount(Http2Config::DEFAULT.connection_window),
            origin.clone(),
        )),
        http2_adaptive_window: Some(Sourced::new(
            Http2Config::DEFAULT.adaptive_window,
            origin.clone(),
        )),
        http2_max_frame_size: Some(Sourced::new(
            ByteCount(Http2Config::DEFAULT.max_frame_size),
            origin.clone(),
        )),
        pool_cleanup_interval: Some(Sourced::new(DEFAULT_CLEANUP_INTERVAL, origin.clone())),
        pool_max_streams: Some(Sourced::new(None, origin.clone())),
        pool_warm: Some(Sourced::new(false, origin.clone())),
        health_check: Some(Sourced::new(None, origin.clone())),
        timeout: Some(Sourced::new(None, origin.clone())),
        wait_for_ready: Some(Sourced::new(false, origin.clone())),
        hedging_delay: Some(Sourced::new(Duration::ZERO, origin.clone())),
        hedging_codes: Some(Sourced::new(Vec::new(), origin.clone())),
        retry_throttling: Some(Sourced::new(None, origin.clone())),
        ..Layer::default()
    });
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/design.md section 3, one row per setting, one column per preset
    /// (production, development, high_throughput).
    #[test]
    fn presets_match_the_design_table() {
        let [p, d, h] = Preset::ALL.map(Preset::values);
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let rows: &[(&str, [String; 3], [&str; 3])] = &[
            (
                "connect_timeout",
                [p, d, h].map(|v| format!("{:?}", v.connect_timeout)),
                ["30s", "5s", "10s"],
            ),
            (
                "backoff",
                [p, d, h].map(|v| {
                    format!(
                        "{:?}/{}/{}/{:?}",
                        v.backoff_base, v.backoff_multiplier, v.backoff_jitter, v.backoff_max
                    )
                }),
                ["1s/1.6/0.2/120s", "500ms/1.6/0.2/10s", "1s/1.6/0.2/120s"],
            ),
            (
                "keepalive",
                [p, d, h].map(|v| {
                    format!(
                        "{:?}/{:?}/{}",
                        v.keepalive_time, v.keepalive_timeout, v.keepalive_permit_without_stream
                    )
                }),
                ["10s/5s/true", "10s/5s/true", "30s/10s/true"],
            ),
            (
                "idle_timeout",
                [p, d, h].map(|v| format!("{:?}", v.idle_timeout)),
                ["Some(1800s)", "Some(300s)", "None"],
            ),
            (
                "max_message_size",
                [p, d, h].map(|v| (v.max_message_size / MIB).to_string()),
                ["4", "4", "16"],
            ),
            (
                "pool",
                [p, d, h].map(|v| v.pool_size.to_string()),
                ["1", "1", "10"],
            ),
            (
                "retry",
                [p, d, h].map(|v| {
                    format!(
                        "{}/{:?}/{:?}/{}",
                        v.retry_max_attempts,
                        v.retry_initial_backoff,
                        v.retry_max_backoff,
                        v.retry_backoff_multiplier
                    )
                }),
                ["5/1s/30s/2", "3/500ms/5s/1.5", "3/2s/60s/2"],
            ),
            (
                "retryable codes",
                [p, d, h].map(|v| {
                    v.retry_codes
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(",")
                }),
                [
                    "UNAVAILABLE,DEADLINE_EXCEEDED,ABORTED",
                    "UNAVAILABLE",
                    "UNAVAILABLE,DEADLINE_EXCEEDED",
                ],
            ),
        ];
        for (setting, actual, expected) in rows {
            assert_eq!(actual.clone(), expected.map(str::to_owned), "{setting}");
        }
        assert_eq!((s(1), ms(500)), (p.backoff_base, d.backoff_base));
        assert_eq!(DEFAULT_CLEANUP_INTERVAL, s(30));
        assert_eq!(DEFAULT_POOL_SIZE_WHEN_ENABLED, 5);
    }

    #[test]
    fn names_parse_back_and_typos_get_a_suggestion() {
        for preset in Preset::ALL {
            assert_eq!(Preset::parse(preset.name()), Ok(preset));
        }
        let err = Preset::parse("high-throughput").unwrap_err();
        assert!(err.help.contains("`high_throughput`"), "{err}");
    }
}
