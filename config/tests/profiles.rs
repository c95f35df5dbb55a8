//! Profiles: `[defaults.profiles.P]` and `[targets.T.profiles.P]`, each resolved and
//! checked like a target; their layering and their errors.

use std::time::Duration;

use ephemos_config::model::IdentitySource;
use ephemos_config::{Preset, check_str};

const FILE: &str = r#"
[defaults]
trust_domain = "example.org"
connect_timeout = "7s"

[defaults.profiles.development]
preset = "development"
identity = "dev"
idle_timeout = "2m"

[targets.payments]
address = "payments.internal:8443"
connect_timeout = "9s"
idle_timeout = "1m"

[targets.payments.profiles.development]
address = "127.0.0.1:50051"

[targets.payments.profiles.staging]
endpoints = ["10.0.0.1:8443", "10.0.0.2:8443"]
idle_timeout = "off"

[targets.ledger]
address = "ledger.internal:8443"
"#;

#[test]
fn profiles_sit_above_the_target_and_every_target_has_every_profile() {
    let checked = check_str("connections.toml", FILE);
    assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
    let payments = checked.target("payments").unwrap();
    assert_eq!(
        payments.config.connection.connect_timeout,
        Duration::from_secs(9)
    );
    let names: Vec<_> = payments
        .profiles
        .iter()
        .map(|p| p.profile.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["development", "staging"]);

    let development = payments.profile("development").unwrap();
    // [defaults.profiles.development] is above the target: its preset and identity win,
    // and the target's written connect_timeout is above the preset's.
    assert_eq!(development.config.preset, Preset::Development);
    assert!(matches!(
        development.config.identity.source,
        IdentitySource::Dev { .. }
    ));
    assert_eq!(
        development.config.endpoints[0].to_string(),
        "127.0.0.1:50051"
    );
    assert_eq!(
        development.config.connection.connect_timeout,
        Duration::from_secs(9)
    );
    assert_eq!(development.name_span.start().line, 16);
    // Above the target: the profile's idle timeout replaces the target's own.
    assert_eq!(
        payments.config.connection.idle_timeout,
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        development.config.connection.idle_timeout,
        Some(Duration::from_secs(120))
    );

    let staging = payments.profile("staging").unwrap();
    assert_eq!(staging.config.preset, Preset::Production);
    assert_eq!(staging.config.endpoints.len(), 2);
    assert_eq!(staging.config.connection.idle_timeout, None);
    assert_eq!(
        staging.config.connection.connect_timeout,
        Duration::from_secs(9)
    );

    // `ledger` declares no profile: it has both, from [defaults] (or its own settings).
    let ledger = checked.target("ledger").unwrap();
    assert_eq!(
        ledger.profile("development").unwrap().config.preset,
        Preset::Development
    );
    assert_eq!(ledger.profile("staging").unwrap().config, ledger.config);
}

fn errors(text: &str) -> Vec<String> {
    let checked = check_str("connections.toml", text);
    checked
        .diagnostics
        .errors()
        .map(|d| {
            let at = d
                .span
                .as_ref()
                .map(|s| s.start().to_string())
                .unwrap_or_default();
            format!(
                "{at} {}: {}",
                d.message,
                d.label.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn a_profile_error_names_its_place_and_fails_the_target() {
    let text = "[targets.a]\naddress = \"h:1\"\nserver_any = true\n\
                [targets.a.profiles.dev]\nconnect_timeout = \"soon\"\n";
    let checked = check_str("connections.toml", text);
    assert!(
        checked.target("a").is_none(),
        "a target with a broken profile is not built"
    );
    assert_eq!(
        errors(text),
        [
            "5:19 invalid value for `targets.a.profiles.dev.connect_timeout`: invalid duration: expected number at 0"
        ]
    );
}

#[test]
fn what_a_profile_cannot_set_is_an_error_each() {
    let text = "[defaults.profiles.dev]\naddress = \"h:1\"\n\
                [targets.a]\naddress = \"h:1\"\nserver_any = true\n\
                [targets.a.profiles.dev]\nservice = \"a.v1.A\"\n\
                [targets.a.profiles.\"bad name\"]\ntimeout = \"1s\"\n";
    let found = errors(text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with("2:11 `address` belongs to a target's profile"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("7:11 `service` cannot be set in a profile"),
        "{found:#?}"
    );
    assert!(
        found[2].starts_with("8:21 invalid profile name"),
        "{found:#?}"
    );
}

#[test]
fn a_profile_may_not_change_a_raw_service_config_s_policies() {
    let text = "[targets.a]\naddress = \"h:1\"\nserver_any = true\n\
                service_config = '{\"methodConfig\": []}'\n\
                [targets.a.profiles.dev]\ntimeout = \"1s\"\n";
    let found = errors(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("6:11 target `a` in profile `dev` has a raw `service_config`"),
        "{found:#?}"
    );
}

#[test]
fn a_warning_shared_with_the_target_is_said_once() {
    // Plaintext outside development warns for the target; each profile would repeat it.
    let text = "[targets.a]\naddress = \"h:1\"\nidentity = \"plaintext\"\n\
                [targets.a.profiles.x]\nconnect_timeout = \"1s\"\n\
                [targets.a.profiles.y]\nconnect_timeout = \"2s\"\n";
    let checked = check_str("connections.toml", text);
    assert_eq!(
        checked.diagnostics.warnings().count(),
        1,
        "{:#?}",
        checked.diagnostics
    );
}
