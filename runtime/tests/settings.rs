//! Settings given in code are held to the rules `connections.toml` is held to, with the
//! same words, when the channel is created: a value that would trip an assertion inside
//! h2 (and leave a driver dead) never reaches it.

mod common;

use common::quick;
use ephemos::{BuildError, Channel, ClientError};

#[test]
fn an_invalid_setting_is_a_build_error_in_the_files_words() {
    let mut config = quick();
    config.http2.max_frame_size = 1;
    config.backoff.multiplier = 0.5;
    let error = Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .target_name("echo")
        .connection(config)
        .connect_lazy()
        .unwrap_err();
    let BuildError::Settings { target, problems } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(target, "echo");
    let settings: Vec<_> = problems.iter().map(|p| p.setting).collect();
    assert_eq!(settings, ["backoff.multiplier", "http2.max_frame_size"]);
    let text = error.to_string();
    assert!(
        text.contains("`http2.max_frame_size = 1`: size out of range (an HTTP/2 frame is from 16KiB to 16MiB - 1 (RFC 9113))"),
        "{text}"
    );
    assert!(text.contains("the multiplier must be at least 1"), "{text}");
}

#[tokio::test]
async fn connect_reports_a_build_error_too() {
    let mut config = quick();
    config.idle_timeout = Some(std::time::Duration::ZERO);
    let result = Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .connection(config)
        .connect()
        .await;
    assert!(
        matches!(result, Err(ClientError::Build(BuildError::Settings { .. }))),
        "{result:?}"
    );
    let no_endpoints = Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .endpoints([])
        .connection(quick())
        .connect_lazy();
    assert!(matches!(no_endpoints, Err(BuildError::NoEndpoints { .. })));
}

#[test]
fn a_channel_built_outside_a_runtime_is_an_error_not_a_panic() {
    let result = Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .connection(quick())
        .connect_lazy();
    let error = result.expect_err("no runtime here");
    assert!(matches!(error, BuildError::NoRuntime { .. }), "{error:?}");
    assert!(error.to_string().contains("Runtime::enter"), "{error}");
}

#[tokio::test]
async fn a_pool_given_in_code_is_checked_like_the_files() {
    let pool = ephemos::config::model::PoolConfig {
        size: 65,
        max_size: 2,
        ..ephemos::config::Preset::Production.pool_config()
    };
    let error = Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .target_name("echo")
        .pool(pool)
        .connect_lazy()
        .unwrap_err();
    let BuildError::Settings { problems, .. } = &error else {
        panic!("{error:?}");
    };
    let settings: Vec<_> = problems.iter().map(|p| p.setting).collect();
    assert_eq!(settings, ["pool.size", "pool.max_size"]);
    let text = error.to_string();
    assert!(text.contains("`pool.size = 65`"), "{text}");
    assert!(text.contains("make max_size >= size"), "{text}");
}

#[test]
fn a_service_config_given_in_code_is_checked_like_the_files() {
    use ephemos::config::service_config::{
        CallPolicy, HedgingPolicy, MethodConfig, MethodName, RetryPolicy, ServiceConfig,
    };
    use ephemos::config::value::Code;
    use std::borrow::Cow;
    use std::time::Duration;
    let every = |service: &'static str, policy| MethodConfig {
        names: Cow::Owned(vec![MethodName {
            service: Cow::Borrowed(service),
            method: None,
        }]),
        timeout: None,
        wait_for_ready: None,
        policy: Some(policy),
    };
    // What panicked at run time: a negative multiplier on the second retry, a
    // `Duration::MAX` hedging delay when added to now, a thousand hedges a call.
    let config = ServiceConfig {
        method_configs: Cow::Owned(vec![
            every(
                "echo.v1.Echo",
                CallPolicy::Retry(RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(10),
                    max_backoff: Duration::from_secs(1),
                    backoff_multiplier: -1.5,
                    retryable_status_codes: Cow::Borrowed(&[Code::Unavailable]),
                }),
            ),
            every(
                "echo.v1.Other",
                CallPolicy::Hedging(HedgingPolicy {
                    max_attempts: 1000,
                    hedging_delay: Duration::MAX,
                    non_fatal_status_codes: Cow::Borrowed(&[]),
                }),
            ),
        ]),
        ..ServiceConfig::default()
    };
    let error = Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .target_name("echo")
        .service_config(config)
        .connect_lazy()
        .unwrap_err();
    let BuildError::Settings { problems, .. } = &error else {
        panic!("{error:?}");
    };
    let settings: Vec<_> = problems.iter().map(|p| p.setting).collect();
    assert_eq!(
        settings,
        [
            "retryPolicy.backoffMultiplier",
            "hedgingPolicy.maxAttempts",
            "hedgingPolicy.hedgingDelay"
        ]
    );
    let text = error.to_string();
    assert!(
        text.contains("`retryPolicy.backoffMultiplier = -1.5 (echo.v1.Echo/*)`"),
        "{text}"
    );
    assert!(text.contains("from 2 to 5"), "{text}");
}
