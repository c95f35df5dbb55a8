//! A resolved configuration can be written as a `const`: this is what the attribute macro
//! will emit. The constant below must equal what resolving the same TOML gives.

use std::borrow::Cow;
use std::time::Duration;

use ephemos_config::model::{
    BackoffConfig, ConnectionConfig, Http2Config, IdentityConfig, IdentitySource, KeepaliveConfig,
    MessageSizeLimits, PoolConfig, ServerAuthorization, TargetConfig,
};
use ephemos_config::service_config::{
    CallPolicy, MethodConfig, MethodName, RetryPolicy, ServiceConfig,
};
use ephemos_config::value::{Address, Code, SpiffeId, TrustDomain};
use ephemos_config::{Preset, check_str};

const TOML: &str = r#"
[targets.payments]
service = "payments.v1.Payments"
address = "payments.internal:8443"
trust_domain = "example.org"
server_id = "spiffe://example.org/payments"
connect_timeout = "10s"
retry = { max_attempts = 4, initial_backoff = "1s", max_backoff = "15s", backoff_multiplier = 1.8, retryable_status_codes = ["UNAVAILABLE"] }

[targets.payments.methods.Charge]
timeout = "2s"
retry = false
"#;

const PAYMENTS: TargetConfig = TargetConfig {
    name: Cow::Borrowed("payments"),
    service: Some(Cow::Borrowed("payments.v1.Payments")),
    endpoints: Cow::Borrowed(&[Address::Tcp {
        host: Cow::Borrowed("payments.internal"),
        port: 8443,
    }]),
    preset: Preset::Production,
    identity: IdentityConfig {
        source: IdentitySource::Spiffe {
            endpoint: None,
            initial_sync_timeout: Duration::from_secs(10),
        },
        trust_domain: Some(TrustDomain::from_static_unchecked("example.org")),
    },
    server_authorization: ServerAuthorization::Ids(Cow::Borrowed(&[
        SpiffeId::from_static_unchecked("spiffe://example.org/payments"),
    ])),
    connection: ConnectionConfig {
        connect_timeout: Duration::from_secs(10),
        backoff: BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(120),
        },
        keepalive: Some(KeepaliveConfig {
            time: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            permit_without_stream: true,
        }),
        idle_timeout: Some(Duration::from_secs(1800)),
        max_message_size: MessageSizeLimits {
            send: 4 << 20,
            recv: 4 << 20,
        },
        http2: Http2Config::DEFAULT,
    },
    pool: PoolConfig {
        size: 1,
        max_size: 1,
        cleanup_interval: Duration::from_secs(30),
        max_streams_per_connection: None,
        warm: false,
    },
    health_check: None,
    service_config: ServiceConfig {
        method_configs: Cow::Borrowed(&[
            MethodConfig {
                names: Cow::Borrowed(&[MethodName {
                    service: Cow::Borrowed("payments.v1.Payments"),
                    method: None,
                }]),
                timeout: None,
                wait_for_ready: None,
                policy: Some(CallPolicy::Retry(RetryPolicy {
                    max_attempts: 4,
                    initial_backoff: Duration::from_secs(1),
                    max_backoff: Duration::from_secs(15),
                    backoff_multiplier: 1.8,
                    retryable_status_codes: Cow::Borrowed(&[Code::Unavailable]),
                })),
            },
            MethodConfig {
                names: Cow::Borrowed(&[MethodName {
                    service: Cow::Borrowed("payments.v1.Payments"),
                    method: Some(Cow::Borrowed("Charge")),
                }]),
                timeout: Some(Duration::from_secs(2)),
                wait_for_ready: None,
                policy: None,
            },
        ]),
        retry_throttling: None,
        connection_scaling: None,
    },
};

#[test]
fn a_resolved_target_can_be_baked_as_a_constant() {
    let checked = check_str("connections.toml", TOML);
    assert!(
        !checked.diagnostics.has_errors(),
        "{:#?}",
        checked.diagnostics
    );
    assert_eq!(checked.target("payments").unwrap().config, PAYMENTS);
}
