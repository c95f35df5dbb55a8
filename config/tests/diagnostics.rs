//! A file with many mistakes: every error is reported at once, each with its
//! `file:line:column`, the source line, a caret under the right place, and a hint.

use ephemos_config::check_str;
use ephemos_config::diagnostic::render;

const MALFORMED: &str = r#"[defaults]
trust_domain = "example.org"
conect_timeout = "5s"

[targets.payments]
service = "payments.v1.Payments"
address = "payments.internal:8443"
server_id = "spiffe://example.org/pay ments"
preset = "hi_throughput"
connect_timeout = 10
idle_timeout = "10 parsecs"
backoff = { base = "1s", multiplier = 1.6, jitter = 1.5, max = "2m" }
keepalive = { time = "5s", timeout = "1s" }

[targets.payments.retry]
max_attempts = 7

[targets.payments.methods.Charge]
retry = { max_attempts = 2 }
hedging = { max_attempts = 2 }

[targets.audit]
address = "unix:/run/audit.sock"
server_any = true
service_config = '''
{"methodConfig": [{"name": [{"service": "a.A"}],
  "retryPolicy": {"maxAttempts": 9, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
'''
"#;

/// (line, column, fragment of the rendered text) for each expected error, in order.
const EXPECTED: &[(usize, usize, &str)] = &[
    (3, 1, "did you mean `connect_timeout`?"),
    (8, 13, "the path has the character ` `"),
    (9, 10, "did you mean `high_throughput`?"),
    (10, 19, "must be a string such as \"10s\""),
    (11, 16, "invalid duration"),
    (12, 53, "1.5 is outside 0..=1"),
    (13, 22, "gRFC A8 sets a 10s floor"),
    (16, 16, "`max_attempts` goes from 2 to 5"),
    (20, 11, "not both"),
    (27, 34, "`maxAttempts` must be a whole number from 2 to 5"),
];

#[test]
fn every_error_is_reported_at_once_with_place_caret_and_hint() {
    let checked = check_str("connections.toml", MALFORMED);
    let errors: Vec<_> = checked.diagnostics.errors().collect();
    let places: Vec<(usize, usize)> = errors
        .iter()
        .map(|e| {
            let at = e.span.as_ref().expect("every error has a place").start();
            (at.line, at.column)
        })
        .collect();
    assert_eq!(
        places,
        EXPECTED
            .iter()
            .map(|(l, c, _)| (*l, *c))
            .collect::<Vec<_>>(),
        "{:#?}",
        errors
    );
    for (error, (line, column, fragment)) in errors.iter().zip(EXPECTED) {
        let text = render(error, false);
        assert!(
            text.contains(&format!("--> connections.toml:{line}:{column}")),
            "{text}"
        );
        assert!(text.contains(fragment), "expected {fragment:?} in\n{text}");
        assert!(text.contains("= help: "), "no hint in\n{text}");
        // The caret line sits under the source line and starts at the column.
        let source_line = MALFORMED.lines().nth(line - 1).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| {
                l.ends_with(source_line) || l.contains(&source_line[..source_line.len().min(60)])
            })
            .unwrap_or_else(|| panic!("source line missing in\n{text}"));
        let caret_line = lines[at + 1];
        let gutter = lines[at].find('|').unwrap() + 2;
        assert_eq!(
            caret_line.find('^'),
            Some(gutter + column - 1),
            "caret misplaced in\n{text}"
        );
    }
    assert!(
        checked.targets.is_empty(),
        "no target of a broken file is resolved"
    );
}
