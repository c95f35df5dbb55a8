//! Layering (built-in < preset < [defaults] < target < method) and provenance.

use std::time::Duration;

use ephemos_config::model::{IdentitySource, ServerAuthorization};
use ephemos_config::provenance::Origin;
use ephemos_config::service_config::{CallPolicy, MethodName};
use ephemos_config::value::{Code, TrustDomain};
use ephemos_config::{Checked, Preset, ResolvedTarget, check_str};

fn resolve(text: &str) -> Checked {
    let checked = check_str("connections.toml", text);
    assert!(
        !checked.diagnostics.has_errors(),
        "{:#?}",
        checked.diagnostics
    );
    checked
}

fn origin_of<'a>(target: &'a ResolvedTarget, key: &str) -> &'a Origin {
    &target
        .provenance
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no `{key}` in {:#?}", target.provenance))
        .origin
}

fn line_of(origin: &Origin) -> usize {
    origin.span().expect("written in the file").start().line
}

const LAYERED: &str = r#"
[defaults]
trust_domain = "example.org"
connect_timeout = "7s"
idle_timeout = "off"

[targets.a]
address = "127.0.0.1:1"
preset = "development"
connect_timeout = "3s"

[targets.b]
address = "127.0.0.1:2"
preset = "high_throughput"
"#;

#[test]
fn each_value_comes_from_the_highest_layer_that_sets_it() {
    let checked = resolve(LAYERED);
    let a = checked.target("a").unwrap();
    let b = checked.target("b").unwrap();

    // target > [defaults]
    assert_eq!(a.config.connection.connect_timeout, Duration::from_secs(3));
    assert_eq!(line_of(origin_of(a, "connect_timeout")), 10);
    // [defaults] > preset
    assert_eq!(b.config.connection.connect_timeout, Duration::from_secs(7));
    assert_eq!(line_of(origin_of(b, "connect_timeout")), 4);
    assert_eq!(a.config.connection.idle_timeout, None);
    // preset > built-in
    assert_eq!(
        a.config.connection.backoff.base_delay,
        Duration::from_millis(500)
    );
    assert_eq!(
        origin_of(a, "backoff.base"),
        &Origin::Preset(Preset::Development)
    );
    assert_eq!(b.config.pool.size, 10);
    assert_eq!(
        origin_of(b, "pool.size"),
        &Origin::Preset(Preset::HighThroughput)
    );
    // built-in: values no preset sets
    assert_eq!(a.config.pool.cleanup_interval, Duration::from_secs(30));
    assert_eq!(origin_of(a, "pool.cleanup_interval"), &Origin::BuiltIn);
    // The preset chooses the identity: dev for development, SPIFFE otherwise.
    assert!(matches!(
        a.config.identity.source,
        IdentitySource::Dev { id: None }
    ));
    assert!(matches!(
        b.config.identity.source,
        IdentitySource::Spiffe { .. }
    ));
}

#[test]
fn provenance_displays_file_line_and_column() {
    let checked = resolve(LAYERED);
    let a = checked.target("a").unwrap();
    let line = a
        .provenance
        .iter()
        .find(|s| s.key == "connect_timeout")
        .unwrap();
    assert_eq!(
        line.to_string(),
        "connect_timeout = \"3s\" (connections.toml:10:19)"
    );
    let preset_line = a
        .provenance
        .iter()
        .find(|s| s.key == "retry.max_attempts")
        .unwrap();
    assert_eq!(
        preset_line.to_string(),
        "retry.max_attempts = 3 (preset development)"
    );
}

#[test]
fn turning_pooling_on_without_a_size_gives_five_connections() {
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\n\
         [targets.on]\naddress = \"h:1\"\npool = true\n\
         [targets.warm]\naddress = \"h:1\"\npool = { warm = true }\n\
         [targets.ht]\naddress = \"h:1\"\npreset = \"high_throughput\"\npool = true\n\
         [targets.off]\naddress = \"h:1\"\npreset = \"high_throughput\"\npool = false\n",
    );
    let size = |name| checked.target(name).unwrap().config.pool.size;
    assert_eq!(
        (size("on"), size("warm"), size("ht"), size("off")),
        (5, 5, 10, 1)
    );
    let on = checked.target("on").unwrap();
    assert_eq!(on.config.pool.max_size, 5);
    assert_eq!(line_of(origin_of(on, "pool.size")), 5);
}

#[test]
fn methods_layer_over_their_target() {
    let checked = resolve(
        r#"
[defaults]
trust_domain = "example.org"
timeout = "10s"

[targets.p]
service = "p.v1.P"
address = "h:1"
retry = { max_attempts = 4, retryable_status_codes = ["UNAVAILABLE"] }

[targets.p.methods.Charge]
retry = false

[targets.p.methods.Get]
timeout = "1s"
retry = { max_attempts = 2 }
"#,
    );
    let p = checked.target("p").unwrap();
    let configs = &p.config.service_config.method_configs;
    assert_eq!(configs.len(), 3);
    assert_eq!(
        configs[0].names[0],
        MethodName {
            service: "p.v1.P".into(),
            method: None
        }
    );
    let Some(CallPolicy::Retry(target_retry)) = &configs[0].policy else {
        panic!()
    };
    assert_eq!(target_retry.max_attempts, 4);
    // The production preset fills in what the tables leave out.
    assert_eq!(target_retry.initial_backoff, Duration::from_secs(1));

    assert_eq!(configs[1].names[0].method.as_deref(), Some("Charge"));
    assert_eq!(configs[1].policy, None);
    assert_eq!(configs[1].timeout, Some(Duration::from_secs(10)));

    let Some(CallPolicy::Retry(get_retry)) = &configs[2].policy else {
        panic!()
    };
    assert_eq!(get_retry.max_attempts, 2);
    assert_eq!(&*get_retry.retryable_status_codes, &[Code::Unavailable]);
    assert_eq!(configs[2].timeout, Some(Duration::from_secs(1)));
    assert!(p.provenance.iter().any(|s| s.key == "methods.Get.timeout"));
}

#[test]
fn hedging_at_a_higher_layer_replaces_the_presets_retry() {
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\n[targets.h]\naddress = \"h:1\"\nhedging = { max_attempts = 3 }\n",
    );
    let h = checked.target("h").unwrap();
    let Some(CallPolicy::Hedging(policy)) = &h.config.service_config.method_configs[0].policy
    else {
        panic!("{:?}", h.config.service_config)
    };
    assert_eq!(
        (policy.max_attempts, policy.hedging_delay),
        (3, Duration::ZERO)
    );
    assert_eq!(
        h.config.service_config.method_configs[0].names[0],
        MethodName::ALL
    );
}

#[test]
fn server_authorization_defaults_to_members_of_the_trust_domain() {
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\n\
         [targets.members]\naddress = \"h:1\"\n\
         [targets.exact]\naddress = \"h:1\"\nserver_id = \"spiffe://example.org/x\"\n\
         [targets.any]\naddress = \"h:1\"\nserver_any = true\n",
    );
    let members = checked.target("members").unwrap();
    assert_eq!(
        members.config.server_authorization,
        ServerAuthorization::TrustDomains(vec![TrustDomain::parse("example.org").unwrap()].into())
    );
    assert_eq!(line_of(origin_of(members, "server_authorization")), 2);
    assert!(matches!(
        checked.target("exact").unwrap().config.server_authorization,
        ServerAuthorization::Ids(_)
    ));
    assert_eq!(
        checked.target("any").unwrap().config.server_authorization,
        ServerAuthorization::Any
    );
}

#[test]
fn raw_service_config_is_taken_as_written() {
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\n[targets.raw]\naddress = \"h:1\"\n\
         service_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"\"}], \"waitForReady\": true}]}'\n",
    );
    let raw = checked.target("raw").unwrap();
    let configs = &raw.config.service_config.method_configs;
    assert_eq!(configs.len(), 1);
    assert_eq!(
        (configs[0].wait_for_ready, &configs[0].policy),
        (Some(true), &None)
    );
    assert!(!raw.provenance.iter().any(|s| s.key.starts_with("retry.")));
}

#[test]
fn targets_keep_file_order_and_errors_leave_a_target_out() {
    let checked = check_str(
        "c.toml",
        "[defaults]\ntrust_domain = \"example.org\"\n\
         [targets.zeta]\naddress = \"h:1\"\n\
         [targets.alpha]\naddress = \"h:1\"\nconnect_timeout = \"zz\"\n\
         [targets.mid]\naddress = \"h:1\"\n",
    );
    assert_eq!(checked.target_names().collect::<Vec<_>>(), ["zeta", "mid"]);
    assert_eq!(checked.diagnostics.errors().count(), 1);
}

#[test]
fn a_preset_alone_gives_the_same_dial_settings_as_a_bare_target() {
    for preset in Preset::ALL {
        let checked = resolve(&format!(
            "[targets.t]\naddress = \"h:1\"\nserver_any = true\ntrust_domain = \"example.org\"\npreset = \"{preset}\"\n"
        ));
        assert_eq!(
            checked.target("t").unwrap().config.connection,
            preset.connection_config(),
            "{preset}"
        );
    }
}

#[test]
fn hedging_false_leaves_retry_alone() {
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\n\
         [targets.a]\naddress = \"h:1\"\nservice = \"p.P\"\nretry = { max_attempts = 3 }\nhedging = false\n\
         [targets.a.methods.M]\nhedging = false\n\
         [targets.h]\naddress = \"h:1\"\nservice = \"p.P\"\nhedging = { max_attempts = 2 }\n\
         [targets.h.methods.M]\nhedging = false\n",
    );
    let configs = &checked
        .target("a")
        .unwrap()
        .config
        .service_config
        .method_configs;
    for config in configs.iter() {
        let Some(CallPolicy::Retry(retry)) = &config.policy else {
            panic!("{config:?}")
        };
        assert_eq!(retry.max_attempts, 3);
    }
    let hedged = &checked
        .target("h")
        .unwrap()
        .config
        .service_config
        .method_configs;
    assert!(matches!(hedged[0].policy, Some(CallPolicy::Hedging(_))));
    assert_eq!(
        hedged[1].policy, None,
        "hedging = false over hedging is no policy"
    );
}

#[test]
fn the_highest_pool_switch_wins() {
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\npool = false\n\
         [targets.on]\naddress = \"h:1\"\npool = true\n",
    );
    let on = checked.target("on").unwrap();
    assert_eq!((on.config.pool.size, on.config.pool.max_size), (5, 5));
    let checked = resolve(
        "[defaults]\ntrust_domain = \"example.org\"\npool = { size = 4, max_size = 8 }\n\
         [targets.off]\naddress = \"h:1\"\npool = false\n",
    );
    let off = checked.target("off").unwrap();
    assert_eq!((off.config.pool.size, off.config.pool.max_size), (1, 1));
    assert_eq!(line_of(origin_of(off, "pool.max_size")), 6);
}

#[test]
fn token_ratio_keeps_exactly_three_decimals() {
    let checked = resolve(
        "[targets.t]\naddress = \"h:1\"\nserver_any = true\nretry_throttling = { max_tokens = 5, token_ratio = 1.005 }\n",
    );
    let throttling = checked
        .target("t")
        .unwrap()
        .config
        .service_config
        .retry_throttling
        .unwrap();
    assert_eq!(throttling.token_ratio, 1.005);
}
