//! The `ephemos` binary, run as a user would: exit codes, text and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ephemos_config::service_config::{CallPolicy, ServiceConfig};
use ephemos_config::{Preset, check_str};
use serde_json::Value;

fn ephemos(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ephemos"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the ephemos binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_validates_the_root_file_and_shows_provenance() {
    let output = ephemos(&["check"], &workspace_root());
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.starts_with("connections.toml: ok, 3 targets"),
        "{text}"
    );
    for target in ["payments", "ledger", "echo"] {
        assert!(text.contains(&format!("[targets.{target}]")), "{text}");
    }
    // Values written in the file point at their line and column; the others at their
    // preset or the built-in default.
    assert!(text.contains("connect_timeout = \"10s\""), "{text}");
    assert!(text.contains("# connections.toml:13:19"), "{text}");
    assert!(text.contains("# preset high_throughput"), "{text}");
    assert!(text.contains("# built-in default"), "{text}");
    assert!(text.contains("methods.Charge.timeout = \"2s\""), "{text}");
}

const MALFORMED: &str = r#"[defaults]
trust_domain = "example.org"

[targets.payments]
address = "payments.internal:8443"
preset = "hi_throughput"
connect_timeout = "10 parsecs"
keepalive = { time = "5s" }
backoff = { jitter = 1.5 }
server_id = "spiffe://example.org/a b"

[targets.payments.retry]
max_attempts = 7
"#;

#[test]
fn check_reports_every_error_with_its_place_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.toml", MALFORMED);
    let output = ephemos(&["check", "bad.toml"], dir.path());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for place in [
        "bad.toml:6:10",
        "bad.toml:7:19",
        "bad.toml:8:22",
        "bad.toml:9:22",
        "bad.toml:10:13",
        "bad.toml:13:16",
    ] {
        assert!(
            text.contains(&format!("--> {place}")),
            "missing {place} in\n{text}"
        );
    }
    assert!(text.contains("did you mean `high_throughput`?"), "{text}");
    assert!(text.contains("bad.toml: 6 errors, 0 warnings"), "{text}");
    assert!(
        !text.contains("[targets.payments]"),
        "no settings for a broken file:\n{text}"
    );
}

#[test]
fn check_json_lists_errors_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.toml", MALFORMED);
    let output = ephemos(&["check", "bad.toml", "--format", "json"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["ok"], false);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 6);
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["column"].as_u64()),
        (Some(6), Some(10))
    );
    assert_eq!(errors[0]["help"], "did you mean `high_throughput`?");

    let output = ephemos(&["check", "--format", "json"], &workspace_root());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let payments = &report["targets"][0];
    assert_eq!(payments["name"], "payments");
    let timeout = payments["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "connect_timeout")
        .unwrap();
    assert_eq!(timeout["origin"]["line"], 13);
}

/// One target per preset, nothing else: `render` must bake exactly the preset's policy.
const PER_PRESET: &str = r#"
[defaults]
trust_domain = "example.org"

[targets.production]
service = "demo.v1.Demo"
address = "127.0.0.1:1"

[targets.development]
service = "demo.v1.Demo"
address = "127.0.0.1:1"
preset = "development"

[targets.high_throughput]
service = "demo.v1.Demo"
address = "127.0.0.1:1"
preset = "high_throughput"
"#;

#[test]
fn render_prints_json_that_passes_grpc_go_rules_for_each_preset() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "connections.toml", PER_PRESET);
    for preset in Preset::ALL {
        let output = ephemos(&["render", preset.name(), "--format", "json"], dir.path());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rendered: Value = serde_json::from_slice(&output.stdout).expect("render prints JSON");
        let json = rendered["service_config"].to_string();
        let config =
            ServiceConfig::parse_json(&json).unwrap_or_else(|p| panic!("{preset}: {p:?}\n{json}"));
        let Some(CallPolicy::Retry(retry)) = &config.method_configs[0].policy else {
            panic!("{json}")
        };
        let values = preset.values();
        assert_eq!(retry.max_attempts, values.retry_max_attempts);
        assert_eq!(retry.initial_backoff, values.retry_initial_backoff);
        assert_eq!(retry.max_backoff, values.retry_max_backoff);
        assert_eq!(retry.backoff_multiplier, values.retry_backoff_multiplier);
        assert_eq!(&*retry.retryable_status_codes, values.retry_codes);
        assert_eq!(rendered["dial"]["pool"]["size"], values.pool_size);

        // The text form carries the same JSON, as baked.
        let text = stdout(&ephemos(
            &["render", "connections.toml", preset.name()],
            dir.path(),
        ));
        let baked = check_str("c", PER_PRESET)
            .target(preset.name())
            .unwrap()
            .config
            .service_config
            .to_json();
        assert!(text.contains(&baked), "{text}");
    }
}

#[test]
fn render_names_the_targets_when_one_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "connections.toml", PER_PRESET);
    let output = ephemos(&["render", "prod"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("no target `prod`")
            && err.contains("production, development, high_throughput"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = ephemos(&["check", "nope.toml"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read nope.toml"));
}

#[test]
fn check_and_render_show_each_profile_and_nothing_not_in_force() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "connections.toml",
        "[defaults]\ntrust_domain = \"example.org\"\n\
         [targets.payments]\naddress = \"dns:///payments.internal:8443\"\npreset = \"high_throughput\"\n\
         [targets.payments.profiles.development]\naddress = \"127.0.0.1:50051\"\nretry = false\n",
    );
    let output = ephemos(&["check"], dir.path());
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("  [profile development]\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("endpoints = [\"127.0.0.1:50051\"]")
                && l.contains("connections.toml:7:11")),
        "{text}"
    );
    // A name followed by DNS and a pool of 10: both in force, so no warning.
    assert!(!text.contains("not in force"), "{text}");

    let json: Value =
        serde_json::from_slice(&ephemos(&["check", "--format", "json"], dir.path()).stdout)
            .unwrap();
    let profile = &json["targets"][0]["profiles"][0];
    assert_eq!(profile["profile"], "development");
    assert_eq!(json["targets"][0]["not_in_force"], serde_json::json!([]));

    let rendered = stdout(&ephemos(
        &["render", "payments", "--profile", "development"],
        dir.path(),
    ));
    assert!(rendered.contains("in profile `development`"), "{rendered}");
    assert!(
        !rendered.contains("retryPolicy"),
        "the profile turns retry off: {rendered}"
    );
    let base = stdout(&ephemos(&["render", "payments"], dir.path()));
    assert!(base.contains("retryPolicy"), "{base}");
    assert!(
        base.contains("# profiles (render with --profile NAME): development"),
        "{base}"
    );
    let unknown = ephemos(&["render", "payments", "--profile", "stagin"], dir.path());
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no profile `stagin`; the profiles are: development"),
        "{unknown:?}"
    );
}
