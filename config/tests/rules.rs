//! docs/design.md section 4, rule by rule: each rule has a case it rejects (with the place and
//! the message asserted) and a case at its edge that passes.

use ephemos_config::{Checked, check_str};

/// A file with one target `t` at a valid address, plus `body` in that target.
fn target(body: &str) -> String {
    format!(
        "[defaults]\ntrust_domain = \"example.org\"\n\n[targets.t]\naddress = \"127.0.0.1:1\"\n{body}\n"
    )
}

/// Every error as `message | label | help @ text-under-the-caret`.
fn errors(text: &str) -> Vec<String> {
    describe(&check_str("connections.toml", text), true)
}

fn warnings(text: &str) -> Vec<String> {
    describe(&check_str("connections.toml", text), false)
}

fn describe(checked: &Checked, errors: bool) -> Vec<String> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error() == errors)
        .map(|d| {
            let at = d
                .span
                .as_ref()
                .map_or("", |s| &s.file.text()[s.range.clone()]);
            format!(
                "{} | {} | {} @ {at}",
                d.message,
                d.label.as_deref().unwrap_or(""),
                d.help.as_deref().unwrap_or("")
            )
        })
        .collect()
}

#[track_caller]
fn rejects(body: &str, fragment: &str, at: &str) {
    let text = target(body);
    let found = errors(&text);
    assert!(
        found
            .iter()
            .any(|e| e.contains(fragment) && e.ends_with(&format!("@ {at}"))),
        "{body}\nexpected an error containing {fragment:?} at {at:?}; found:\n{}",
        found.join("\n")
    );
}

#[track_caller]
fn passes(body: &str) {
    let text = target(body);
    let found = errors(&text);
    assert!(
        found.is_empty(),
        "{body}\nexpected no error; found:\n{}",
        found.join("\n")
    );
}

#[test]
fn durations() {
    rejects(
        "connect_timeout = \"5 parsecs\"",
        "invalid duration",
        "\"5 parsecs\"",
    );
    rejects("connect_timeout = \"0s\"", "greater than 0", "\"0s\"");
    rejects(
        "connect_timeout = 5",
        "must be a string such as \"10s\"",
        "5",
    );
    rejects("connect_timeout = \"off\"", "invalid duration", "\"off\"");
    passes("connect_timeout = \"1ns\"");
    passes("connect_timeout = \"1m30s\"");
}

#[test]
fn connection_backoff() {
    rejects("backoff = { base = \"0s\" }", "greater than 0", "\"0s\"");
    rejects("backoff = { multiplier = 0.99 }", "at least 1", "0.99");
    rejects("backoff = { jitter = -0.1 }", "outside 0..=1", "-0.1");
    rejects("backoff = { jitter = 1.5 }", "outside 0..=1", "1.5");
    rejects(
        "backoff = { base = \"2s\", max = \"1s\" }",
        "`max` is shorter than `base`",
        "\"1s\"",
    );
    rejects(
        "backoff = { bsae = \"1s\" }",
        "did you mean `base`?",
        "bsae",
    );
    passes("backoff = { base = \"1s\", multiplier = 1, jitter = 0, max = \"1s\" }");
    passes("backoff = { jitter = 1 }");
}

#[test]
fn keepalive() {
    rejects("keepalive = { time = \"9s\" }", "10s floor", "\"9s\"");
    rejects(
        "keepalive = { time = \"5s\" }",
        "at least \"10s\"",
        "\"5s\"",
    );
    rejects(
        "keepalive = { timeout = \"0s\" }",
        "greater than 0",
        "\"0s\"",
    );
    rejects(
        "keepalive = \"sometimes\"",
        "must be a table",
        "\"sometimes\"",
    );
    passes("keepalive = { time = \"10s\", timeout = \"1ms\", permit_without_stream = false }");
    passes("keepalive = \"off\"");
    passes("keepalive = false");
}

#[test]
fn retry_policy() {
    rejects("retry = { max_attempts = 1 }", "goes from 2 to 5", "1");
    rejects("retry = { max_attempts = 6 }", "goes from 2 to 5", "6");
    rejects(
        "retry = { max_attempts = 7 }",
        "rejects more instead of capping",
        "7",
    );
    rejects(
        "retry = { initial_backoff = \"0s\" }",
        "greater than 0",
        "\"0s\"",
    );
    rejects(
        "retry = { max_backoff = \"0s\" }",
        "greater than 0",
        "\"0s\"",
    );
    rejects(
        "retry = { backoff_multiplier = 0 }",
        "not greater than 0",
        "0",
    );
    rejects(
        "retry = { retryable_status_codes = [] }",
        "the list is empty",
        "[]",
    );
    rejects(
        "retry = { retryable_status_codes = [\"ok\"] }",
        "`OK` cannot be listed",
        "\"ok\"",
    );
    rejects(
        "retry = { retryable_status_codes = [0] }",
        "`OK` cannot be listed",
        "0",
    );
    rejects(
        "retry = { retryable_status_codes = [17] }",
        "no status code 17",
        "17",
    );
    rejects(
        "retry = { retryable_status_codes = [\"UNAVAILBLE\"] }",
        "did you mean `UNAVAILABLE`?",
        "\"UNAVAILBLE\"",
    );
    rejects(
        "retry = { retryable_status_codes = [\"UNAVAILABLE\", 14] }",
        "listed twice",
        "14",
    );
    passes(
        "retry = { max_attempts = 2, backoff_multiplier = 0.1, retryable_status_codes = [\"unavailable\", 16] }",
    );
    passes("retry = { max_attempts = 5 }");
    passes("retry = false");
}

#[test]
fn retry_throttling() {
    rejects(
        "retry_throttling = { max_tokens = 0, token_ratio = 0.1 }",
        "goes from 1 to 1000",
        "0",
    );
    rejects(
        "retry_throttling = { max_tokens = 1001, token_ratio = 0.1 }",
        "goes from 1 to 1000",
        "1001",
    );
    rejects(
        "retry_throttling = { max_tokens = 10, token_ratio = 0.0009 }",
        "cut to 3 decimals",
        "0.0009",
    );
    rejects(
        "retry_throttling = { max_tokens = 10 }",
        "missing `token_ratio`",
        "{ max_tokens = 10 }",
    );
    passes("retry_throttling = { max_tokens = 1000, token_ratio = 0.001 }");
    passes("retry_throttling = { max_tokens = 1, token_ratio = 1 }");
}

#[test]
fn retry_or_hedging_not_both() {
    rejects(
        "retry = { max_attempts = 2 }\nhedging = { max_attempts = 2 }",
        "not both",
        "{ max_attempts = 2 }",
    );
    let method =
        "service = \"p.v1.P\"\n[targets.t.methods.M]\nretry = true\nhedging = { max_attempts = 3 }";
    rejects(
        method,
        "`targets.t.methods.M` has both `retry` and `hedging`",
        "{ max_attempts = 3 }",
    );
    rejects(
        "hedging = { hedging_delay = \"1s\" }",
        "has no `max_attempts`",
        "{ hedging_delay = \"1s\" }",
    );
    passes("retry = false\nhedging = { max_attempts = 5, hedging_delay = \"0s\" }");
    passes("service = \"p.v1.P\"\n[targets.t.methods.M]\nhedging = { max_attempts = 2 }");
}

#[test]
fn service_config_json() {
    rejects(
        "service_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"\", \"method\": \"M\"}]}]}'",
        "empty `service` cannot be combined",
        "{\"service\": \"\", \"method\": \"M\"}",
    );
    rejects(
        "service_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}]}, {\"name\": [{\"service\": \"s\"}]}]}'",
        "configured twice",
        "{\"service\": \"s\"}",
    );
    rejects(
        "service_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"timeout\": \"1.5\"}]}'",
        "must end in `s`",
        "\"1.5\"",
    );
    // Escapes in a basic string: the error points at the whole string.
    rejects(
        "service_config = \"{\\\"retryThrottling\\\": {\\\"maxTokens\\\": 0, \\\"tokenRatio\\\": 1}}\"",
        "from 1 to 1000",
        "\"{\\\"retryThrottling\\\": {\\\"maxTokens\\\": 0, \\\"tokenRatio\\\": 1}}\"",
    );
    rejects(
        "service_config = '{\"methodConfig\": []}'\nretry = false",
        "both `service_config` and `retry`",
        "'{\"methodConfig\": []}'",
    );
    passes(
        "service_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"\"}], \"timeout\": \"0.000000001s\"}]}'",
    );
}

#[test]
fn pool() {
    rejects("pool = { size = 0 }", "goes from 1 to 64", "0");
    rejects("pool = { size = 65 }", "goes from 1 to 64", "65");
    rejects(
        "pool = { size = 8, max_size = 4 }",
        "`max_size` is below `size`",
        "4",
    );
    rejects(
        "pool = { max_streams_per_connection = 0 }",
        "out of range",
        "0",
    );
    rejects("pool = 3", "must be a table", "3");
    passes("pool = { size = 1 }");
    passes("pool = { size = 64, max_size = 64, cleanup_interval = \"1s\", warm = true }");
    passes("pool = true");
}

#[test]
fn message_sizes() {
    rejects("max_message_size = 0", "out of range", "0");
    rejects("max_message_size = \"4GiB\"", "out of range", "\"4GiB\"");
    rejects(
        "max_message_size = \"4 parsecs\"",
        "unknown size unit",
        "\"4 parsecs\"",
    );
    rejects(
        "max_message_size = { send = \"1MiB\", rcv = \"1MiB\" }",
        "did you mean `recv`?",
        "rcv",
    );
    passes("max_message_size = \"4095MiB\"");
    passes("max_message_size = { send = 1, recv = \"16MiB\" }");
}

#[test]
fn http2_settings() {
    rejects(
        "http2 = { stream_window = 65534 }",
        "from 65535 bytes to 2GiB - 1",
        "65534",
    );
    rejects(
        "http2 = { connection_window = \"2GiB\" }",
        "from 65535 bytes to 2GiB - 1",
        "\"2GiB\"",
    );
    rejects(
        "http2 = { max_frame_size = \"16MiB\" }",
        "16KiB to 16MiB - 1",
        "\"16MiB\"",
    );
    rejects(
        "http2 = { adaptive = true }",
        "did you mean `adaptive_window`?",
        "adaptive",
    );
    passes(
        "http2 = { stream_window = 65535, connection_window = 2147483647, max_frame_size = 16384 }",
    );
    passes("http2 = { max_frame_size = 16777215, adaptive_window = true }");
}

#[test]
fn idle_timeout() {
    rejects("idle_timeout = \"500ms\"", "at least 1s", "\"500ms\"");
    passes("idle_timeout = \"1s\"");
    passes("idle_timeout = \"off\"");
}

#[test]
fn spiffe_ids_and_trust_domains() {
    rejects(
        "server_id = \"spiffe://example.org/a/../b\"",
        "`..` segment",
        "\"spiffe://example.org/a/../b\"",
    );
    rejects(
        "server_id = \"https://example.org/a\"",
        "does not start with `spiffe://`",
        "\"https://example.org/a\"",
    );
    rejects(
        "server_trust_domain = \"Example.org\"",
        "uppercase",
        "\"Example.org\"",
    );
    rejects("server_ids = []", "the list is empty", "[]");
    rejects(
        "server_ids = [\"spiffe://example.org/a\", \"spiffe://example.org/a\"]",
        "listed twice",
        "\"spiffe://example.org/a\"",
    );
    rejects(
        "server_id = \"spiffe://example.org/a\"\nserver_trust_domain = \"example.org\"",
        "both say which servers to accept",
        "\"example.org\"",
    );
    passes("server_id = \"spiffe://example.org/a-b_c.d\"");
    passes("server_trust_domains = [\"example.org\", \"partner.example\"]");
    passes("server_any = true");
}

#[test]
fn addresses() {
    let with = |address: &str| {
        format!("[defaults]\ntrust_domain = \"example.org\"\n[targets.t]\naddress = {address:?}\n")
    };
    for (address, fragment) in [
        ("payments", "has no port"),
        ("payments:0", "invalid port"),
        ("::1:80", "brackets"),
        ("https://x:1", "unsupported address scheme"),
    ] {
        let found = errors(&with(address));
        assert!(
            found.iter().any(|e| e.contains(fragment)),
            "{address}: {found:?}"
        );
    }
    for address in [
        "[::1]:1",
        "dns:///payments.internal:8443",
        "unix:/run/a.sock",
        "localhost:65535",
    ] {
        assert!(errors(&with(address)).is_empty(), "{address}");
    }
    let neither = "[defaults]\ntrust_domain = \"example.org\"\n[targets.t]\nservice = \"a.B\"\n";
    assert!(
        errors(neither)[0].contains("has no `address`"),
        "{:?}",
        errors(neither)
    );
    rejects(
        "endpoints = [\"127.0.0.2:1\"]",
        "both `address` and `endpoints`",
        "[\"127.0.0.2:1\"]",
    );
    let endpoints = |list: &str| {
        format!("[defaults]\ntrust_domain = \"example.org\"\n[targets.t]\nendpoints = {list}\n")
    };
    assert!(errors(&endpoints("[]"))[0].contains("the list is empty"));
    let twice = errors(&endpoints("[\"h:1\", \"h:2\", \"h:1\"]"));
    assert!(
        twice[0].contains("listed twice") && twice[0].ends_with("@ \"h:1\""),
        "{twice:?}"
    );
    assert!(errors(&endpoints("[\"h:1\", \"[::1]:2\"]")).is_empty());
}

#[test]
fn identity_and_authorization() {
    rejects(
        "identity = \"spife\"",
        "did you mean `spiffe`?",
        "\"spife\"",
    );
    rejects("identity = \"files\"", "needs its files", "\"files\"");
    rejects(
        "identity = { source = \"files\", cert = \"c.pem\", key = \"k.pem\" }",
        "missing `bundle`",
        "{ source = \"files\", cert = \"c.pem\", key = \"k.pem\" }",
    );
    rejects(
        "identity = \"plaintext\"\nserver_id = \"spiffe://example.org/a\"",
        "uses plaintext",
        "\"spiffe://example.org/a\"",
    );
    let no_trust = "[targets.t]\naddress = \"127.0.0.1:1\"\n";
    assert!(
        errors(no_trust)[0].contains("does not say which servers to trust"),
        "{:?}",
        errors(no_trust)
    );
    let dev_without_domain =
        "[targets.t]\naddress = \"127.0.0.1:1\"\nidentity = \"dev\"\nserver_any = true\n";
    assert!(errors(dev_without_domain)[0].contains("dev identity needs a trust domain"));
    passes(
        "identity = { source = \"spiffe\", endpoint = \"unix:/tmp/agent.sock\", initial_sync_timeout = \"1s\" }",
    );
    passes(
        "identity = { source = \"dev\", id = \"spiffe://example.org/me\" }\npreset = \"development\"",
    );
}

#[test]
fn names_and_methods() {
    rejects(
        "service = \"payments v1\"",
        "not a valid proto name",
        "\"payments v1\"",
    );
    rejects(
        "[targets.t.methods.M]\ntimeout = \"1s\"",
        "has no `service`",
        "M",
    );
    rejects(
        "service = \"p.v1.P\"\n[targets.t.methods.M]\ntimeot = \"1s\"",
        "did you mean `timeout`?",
        "timeot",
    );
    rejects(
        "service = \"p.v1.P\"\n[targets.t.methods.M]\npool = true",
        "`pool` cannot be set per method",
        "true",
    );
    let bad_name = "[defaults]\ntrust_domain = \"example.org\"\n[targets.\"pay ments\"]\naddress = \"127.0.0.1:1\"\n";
    assert!(
        errors(bad_name)
            .iter()
            .any(|e| e.contains("invalid target name") && e.ends_with("@ \"pay ments\""))
    );
    passes(
        "service = \"p.v1.P\"\n[targets.t.methods.Get_2]\ntimeout = \"1s\"\nwait_for_ready = true",
    );
}

#[test]
fn warnings_are_separate_from_errors() {
    let chatty = target("keepalive = { time = \"10s\", permit_without_stream = true }");
    assert!(errors(&chatty).is_empty());
    assert!(
        warnings(&chatty)[0].contains("too_many_pings"),
        "{:?}",
        warnings(&chatty)
    );
    let quiet = target("keepalive = { time = \"5m\", permit_without_stream = true }");
    assert!(warnings(&quiet).is_empty(), "{:?}", warnings(&quiet));

    let plaintext = target("identity = \"plaintext\"");
    assert!(warnings(&plaintext)[0].contains("plaintext outside the development preset"));
    let dev_plaintext = target("identity = \"plaintext\"\npreset = \"development\"");
    assert!(
        warnings(&dev_plaintext).is_empty(),
        "{:?}",
        warnings(&dev_plaintext)
    );

    let risky =
        target("retry = { retryable_status_codes = [\"UNAVAILABLE\", \"DEADLINE_EXCEEDED\"] }");
    assert!(
        warnings(&risky)[0].contains("retrying DEADLINE_EXCEEDED"),
        "{:?}",
        warnings(&risky)
    );
    // The preset's own codes do not warn: only what the user writes.
    assert!(warnings(&target("")).is_empty());
}

#[test]
fn toml_syntax_errors_have_a_place() {
    let found = errors("[targets.t\naddress = \"x:1\"\n");
    assert!(found[0].starts_with("invalid TOML"), "{found:?}");
    let found = errors("[targets.t]\naddress = \"127.0.0.1:1\"\naddress = \"127.0.0.1:2\"\n");
    assert!(
        found.iter().any(|e| e.contains("invalid TOML")),
        "{found:?}"
    );
}

/// Found in review: each of these once slipped through or was misreported.
#[test]
fn review_regressions() {
    // Status codes in hex or octal are numbers like any other.
    passes("retry = { retryable_status_codes = [0xE, 0o20] }");
    rejects(
        "retry = { retryable_status_codes = [0x11] }",
        "no status code 17",
        "0x11",
    );
    // Numbers that overflow to infinity, and durations grpc-go cannot hold.
    rejects(
        "retry_throttling = { max_tokens = 10, token_ratio = 1.7e308 }",
        "not a finite number",
        "1.7e308",
    );
    rejects(
        "timeout = \"500000years\"",
        "duration too long",
        "\"500000years\"",
    );
    rejects(
        "service_config = '{\"retryThrottling\": {\"maxTokens\": 1, \"tokenRatio\": 1e999}}'",
        "finite number",
        "1e999",
    );
    rejects(
        "service_config = '{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"9223372037s\"}]}'",
        "grpc-go accepts at most 9223372036s",
        "\"9223372037s\"",
    );
    rejects(
        "service_config = '{\"methodConfig\": [{\"name\": [{}], \"retryPolicy\": {\"maxAttempts\": 2.0, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\", \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"unavailable\"]}}]}'",
        "must be a whole number",
        "2.0",
    );
    rejects(
        "service_config = '{\"methodConfig\": [{\"name\": [{}], \"retryPolicy\": {\"maxAttempts\": 2, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\", \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"unavailable\"]}}]}'",
        "must be written `UNAVAILABLE` in JSON",
        "\"unavailable\"",
    );
    // Addresses and names that only looked valid.
    rejects(
        "endpoints = [\"unix://run/a.sock\"]",
        "no absolute path",
        "\"unix://run/a.sock\"",
    );
    let bad_port = "[defaults]\ntrust_domain = \"example.org\"\n[targets.t]\naddress = \"x:+80\"\n";
    assert!(
        errors(bad_port)[0].contains("invalid port"),
        "{:?}",
        errors(bad_port)
    );
    for keyword in ["self", "fn", "_"] {
        let text = format!(
            "[defaults]\ntrust_domain = \"example.org\"\n[targets.{keyword}]\naddress = \"h:1\"\n"
        );
        assert!(
            errors(&text)
                .iter()
                .any(|e| e.contains("invalid target name")),
            "{keyword}"
        );
    }
    rejects(
        "identity = { source = \"spiffe\", endpoint = \"http://agent\" }",
        "not a Workload API endpoint",
        "\"http://agent\"",
    );
    rejects(
        "identity = { source = \"files\", cert = \"\", key = \"k\", bundle = \"b\" }",
        "the path is empty",
        "\"\"",
    );
    // Method names are pointed at by their key.
    rejects(
        "service = \"p.v1.P\"\n[targets.t.methods.\"bad-name\"]\ntimeout = \"1s\"",
        "invalid method name",
        "\"bad-name\"",
    );
    rejects(
        "service = \"p.v1.P\"\n[targets.t.methods.M]\nconnect_timeout = \"1s\"",
        "`connect_timeout` cannot be set per method",
        "\"1s\"",
    );
    // Values a provenance listing shows can be written back.
    passes("service = \"p.v1.P\"\ntimeout = \"5s\"\n[targets.t.methods.Watch]\ntimeout = \"off\"");
    passes("pool = { max_streams_per_connection = \"auto\" }\nretry_throttling = false");
}

#[test]
fn every_error_is_reported_even_next_to_a_conflict() {
    let found = errors(&target(
        "server_id = \"http://bad\"\nserver_trust_domain = \"BAD\"\n\
         retry = { max_attempts = 99 }\nhedging = { max_attempts = 99 }",
    ));
    for expected in [
        "does not start with `spiffe://`",
        "uppercase",
        "both say which servers",
        "not both",
    ] {
        assert!(
            found.iter().any(|e| e.contains(expected)),
            "{expected}: {found:#?}"
        );
    }
    assert_eq!(
        found
            .iter()
            .filter(|e| e.contains("goes from 2 to 5"))
            .count(),
        2,
        "{found:#?}"
    );

    let both = "[defaults]\ntrust_domain = \"example.org\"\n[targets.t]\naddress = \"nope\"\nendpoints = []\n";
    let found = errors(both);
    assert_eq!(found.len(), 3, "{found:#?}");

    let raw = target("service_config = '{}'\nretry = false\ntimeout = \"1s\"");
    assert_eq!(
        errors(&raw)
            .iter()
            .filter(|e| e.contains("both `service_config`"))
            .count(),
        2
    );

    let two_methods = target(
        "service = \"p.v1.P\"\n[targets.t.methods.A]\nhedging = { hedging_delay = \"1s\" }\n\
         [targets.t.methods.B]\nhedging = { hedging_delay = \"1s\" }",
    );
    assert_eq!(
        errors(&two_methods)
            .iter()
            .filter(|e| e.contains("no `max_attempts`"))
            .count(),
        2
    );
}

#[test]
fn defaults_that_a_raw_service_config_replaces_are_warned_about() {
    let text = "[defaults]\ntrust_domain = \"example.org\"\ntimeout = \"1s\"\n\
                [targets.t]\naddress = \"h:1\"\nservice_config = '{}'\n";
    let found = warnings(text);
    assert!(
        found[0].contains("target `t` ignores `timeout` of [defaults]"),
        "{found:?}"
    );
}

#[test]
fn a_warning_about_inherited_codes_is_given_once() {
    let text = "[defaults]\ntrust_domain = \"example.org\"\nretry = { retryable_status_codes = [\"ABORTED\"] }\n\
                [targets.a]\naddress = \"h:1\"\n[targets.b]\naddress = \"h:2\"\n";
    let found = warnings(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("retrying ABORTED"));
}
