//! The rules a service config built in code is held to: the same as those the JSON of
//! a file is read with (`parse.rs`), so `ChannelBuilder::service_config` accepts nothing
//! `connections.toml` would refuse (a negative multiplier, a delay past any clock, a
//! thousand hedges).

use std::collections::HashSet;
use std::time::Duration;

use super::{
    CallPolicy, MAX_ATTEMPTS_LIMIT, MAX_TOKENS_LIMIT, ServiceConfig, truncate_token_ratio,
};
use crate::rules::{MAX_POOL_SIZE, Problems, SettingProblem};
use crate::value::{Code, InvalidValue, MAX_DURATION};

impl ServiceConfig {
    /// Every rule this service config breaks, in the words of the JSON keys; empty when
    /// it is valid. A service config read from a file already passed these checks; this
    /// is for one built in code.
    pub fn problems(&self) -> Vec<SettingProblem> {
        let mut problems = Problems::default();
        let mut check = |setting, value, result| problems.check(setting, value, result);
        let mut names = HashSet::new();
        for config in self.method_configs.iter() {
            let of = config
                .names
                .iter()
                .map(|n| n.path())
                .collect::<Vec<_>>()
                .join(", ");
            let of = if of.is_empty() {
                "every method".to_owned()
            } else {
                of
            };
            for name in config.names.iter() {
                check(
                    "methodConfig.name",
                    name.path(),
                    if name.service.is_empty() && name.method.is_some() {
                        Err(InvalidValue::new(
                            "a method without a service",
                            "name the method's service, or leave both out for every method",
                        ))
                    } else if !names.insert(name.path()) {
                        Err(InvalidValue::new(
                            "configured twice",
                            "give each name one methodConfig",
                        ))
                    } else {
                        Ok(())
                    },
                );
            }
            if let Some(timeout) = config.timeout {
                check(
                    "methodConfig.timeout",
                    format!("{timeout:?} ({of})"),
                    duration_at_most(timeout),
                );
            }
            match &config.policy {
                Some(CallPolicy::Retry(retry)) => {
                    check(
                        "retryPolicy.maxAttempts",
                        format!("{} ({of})", retry.max_attempts),
                        max_attempts(retry.max_attempts),
                    );
                    for (setting, backoff) in [
                        ("retryPolicy.initialBackoff", retry.initial_backoff),
                        ("retryPolicy.maxBackoff", retry.max_backoff),
                    ] {
                        check(
                            setting,
                            format!("{backoff:?} ({of})"),
                            positive(backoff).and_then(|()| duration_at_most(backoff)),
                        );
                    }
                    let multiplier = retry.backoff_multiplier;
                    check(
                        "retryPolicy.backoffMultiplier",
                        format!("{multiplier} ({of})"),
                        if multiplier.is_finite() && multiplier > 0.0 {
                            Ok(())
                        } else {
                            Err(InvalidValue::new(
                                "must be a finite number greater than 0",
                                "e.g. 2.0",
                            ))
                        },
                    );
                    check(
                        "retryPolicy.retryableStatusCodes",
                        format!("{:?} ({of})", retry.retryable_status_codes),
                        codes(&retry.retryable_status_codes, false),
                    );
                }
                Some(CallPolicy::Hedging(hedging)) => {
                    check(
                        "hedgingPolicy.maxAttempts",
                        format!("{} ({of})", hedging.max_attempts),
                        max_attempts(hedging.max_attempts),
                    );
                    check(
                        "hedgingPolicy.hedgingDelay",
                        format!("{:?} ({of})", hedging.hedging_delay),
                        duration_at_most(hedging.hedging_delay),
                    );
                    check(
                        "hedgingPolicy.nonFatalStatusCodes",
                        format!("{:?} ({of})", hedging.non_fatal_status_codes),
                        codes(&hedging.non_fatal_status_codes, true),
                    );
                }
                None => {}
            }
        }
        if let Some(throttling) = &self.retry_throttling {
            check(
                "retryThrottling.maxTokens",
                throttling.max_tokens.to_string(),
                if (1..=MAX_TOKENS_LIMIT).contains(&throttling.max_tokens) {
                    Ok(())
                } else {
                    Err(InvalidValue::new(
                        format!("must be a whole number from 1 to {MAX_TOKENS_LIMIT}"),
                        "gRFC A6 bounds the token bucket to (0, 1000]",
                    ))
                },
            );
            let ratio = throttling.token_ratio;
            check(
                "retryThrottling.tokenRatio",
                ratio.to_string(),
                if ratio.is_finite() && truncate_token_ratio(ratio) > 0.0 {
                    Ok(())
                } else {
                    Err(InvalidValue::new(
                        "must be greater than 0 (three decimals are kept)",
                        "e.g. 0.1",
                    ))
                },
            );
        }
        if let Some(scaling) = &self.connection_scaling {
            let n = scaling.max_connections_per_subchannel;
            check(
                "connectionScaling.maxConnectionsPerSubchannel",
                n.to_string(),
                if (1..=MAX_POOL_SIZE).contains(&n) {
                    Ok(())
                } else {
                    Err(InvalidValue::new(
                        format!("must be a whole number from 1 to {MAX_POOL_SIZE}"),
                        "it is the pool's max_size",
                    ))
                },
            );
        }
        problems.0
    }
}

fn max_attempts(n: u32) -> Result<(), InvalidValue> {
    if (2..=MAX_ATTEMPTS_LIMIT).contains(&n) {
        return Ok(());
    }
    Err(InvalidValue::new(
        format!("must be a whole number from 2 to {MAX_ATTEMPTS_LIMIT}"),
        "gRPC caps attempts at 5; ephemos rejects larger values instead of capping silently",
    ))
}

fn positive(duration: Duration) -> Result<(), InvalidValue> {
    if duration.is_zero() {
        return Err(InvalidValue::new("must be greater than 0", "e.g. 0.1s"));
    }
    Ok(())
}

fn duration_at_most(duration: Duration) -> Result<(), InvalidValue> {
    if duration <= MAX_DURATION {
        return Ok(());
    }
    Err(InvalidValue::new(
        format!("longer than {}s", MAX_DURATION.as_secs()),
        "a duration in a service config is at most what any clock can add to now",
    ))
}

fn codes(codes: &[Code], may_be_empty: bool) -> Result<(), InvalidValue> {
    if codes.is_empty() && !may_be_empty {
        return Err(InvalidValue::new(
            "is empty",
            "list at least one status code, e.g. UNAVAILABLE",
        ));
    }
    if codes.contains(&Code::Ok) {
        return Err(InvalidValue::new(
            "lists OK",
            "OK is not a failure: remove it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{HedgingPolicy, MethodConfig, MethodName, RetryPolicy, RetryThrottling};
    use super::*;
    use std::borrow::Cow;

    fn every_method(policy: CallPolicy) -> MethodConfig {
        MethodConfig {
            names: Cow::Owned(vec![MethodName {
                service: Cow::Borrowed("echo.v1.Echo"),
                method: None,
            }]),
            timeout: None,
            wait_for_ready: None,
            policy: Some(policy),
        }
    }

    #[test]
    fn what_a_file_would_refuse_is_refused_in_code_too() {
        let config = ServiceConfig {
            method_configs: Cow::Owned(vec![
                every_method(CallPolicy::Retry(RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    backoff_multiplier: -2.0,
                    retryable_status_codes: Cow::Borrowed(&[Code::Unavailable]),
                })),
                MethodConfig {
                    names: Cow::Owned(vec![MethodName {
                        service: Cow::Borrowed("other.v1.Other"),
                        method: None,
                    }]),
                    ..every_method(CallPolicy::Hedging(HedgingPolicy {
                        max_attempts: 1000,
                        hedging_delay: Duration::MAX,
                        non_fatal_status_codes: Cow::Borrowed(&[]),
                    }))
                },
            ]),
            retry_throttling: Some(RetryThrottling {
                max_tokens: 0,
                token_ratio: f64::NAN,
            }),
            connection_scaling: None,
        };
        let settings: Vec<_> = config.problems().iter().map(|p| p.setting).collect();
        assert_eq!(
            settings,
            [
                "retryPolicy.backoffMultiplier",
                "hedgingPolicy.maxAttempts",
                "hedgingPolicy.hedgingDelay",
                "retryThrottling.maxTokens",
                "retryThrottling.tokenRatio",
            ]
        );
        let text = config.problems()[0].to_string();
        assert!(text.contains("-2 (echo.v1.Echo/*)"), "{text}");
    }

    #[test]
    fn a_valid_config_has_no_problem() {
        let json = r#"{"methodConfig": [{"name": [{"service": "echo.v1.Echo"}], "timeout": "2s",
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s",
              "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#;
        assert_eq!(ServiceConfig::parse_json(json).unwrap().problems(), []);
    }
}
