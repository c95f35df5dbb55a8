//! Parses service-config JSON and checks it with grpc-go's rules, reporting every problem
//! with its byte range in the text. Where we are stricter, the message says why: unknown
//! keys (grpc-go ignores them; a typo should not vanish), `maxAttempts` above 5 (grpc-go
//! caps silently), a `methodConfig` without `name`, keys ephemos configures elsewhere, and
//! durations in canonical proto3 form only (digits on both sides of a decimal point).
//!
//! `jsonc-parser` gives an AST with byte ranges, which `serde_json` does not; every loose
//! JSONC extension is turned off, so what parses here is plain JSON.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use jsonc_parser::ast::{Object, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

use super::{
    CallPolicy, ConnectionScaling, HedgingPolicy, MAX_ATTEMPTS_LIMIT, MAX_TOKENS_LIMIT,
    MethodConfig, MethodName, RetryPolicy, RetryThrottling, ServiceConfig, truncate_token_ratio,
};
use crate::diagnostic::unknown_name_help;
use crate::value::{Code, InvalidValue, parse_proto_duration};

/// One problem in service-config JSON: where (byte range in the JSON text) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonProblem {
    /// Byte range in the JSON text.
    pub range: Range<usize>,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub help: String,
}

const TOP_KEYS: &[&str] = &["methodConfig", "retryThrottling", "connectionScaling"];
const SCALING_KEYS: &[&str] = &["maxConnectionsPerSubchannel"];
const METHOD_KEYS: &[&str] = &[
    "name",
    "timeout",
    "waitForReady",
    "retryPolicy",
    "hedgingPolicy",
];
const NAME_KEYS: &[&str] = &["service", "method"];
const RETRY_KEYS: &[&str] = &[
    "maxAttempts",
    "initialBackoff",
    "maxBackoff",
    "backoffMultiplier",
    "retryableStatusCodes",
];
const HEDGING_KEYS: &[&str] = &["maxAttempts", "hedgingDelay", "nonFatalStatusCodes"];
const THROTTLING_KEYS: &[&str] = &["maxTokens", "tokenRatio"];

/// Keys grpc-go knows that ephemos configures elsewhere, and where.
const ELSEWHERE: &[(&str, &str)] = &[
    (
        "loadBalancingConfig",
        "ephemos picks connections itself: configure `pool`",
    ),
    (
        "loadBalancingPolicy",
        "ephemos picks connections itself: configure `pool`",
    ),
    (
        "healthCheckConfig",
        "configure `health_check` in connections.toml",
    ),
    (
        "maxRequestMessageBytes",
        "configure `max_message_size` in connections.toml",
    ),
    (
        "maxResponseMessageBytes",
        "configure `max_message_size` in connections.toml",
    ),
];

impl ServiceConfig {
    /// Parses and validates service-config JSON; on failure, every problem found.
    pub fn parse_json(text: &str) -> Result<ServiceConfig, Vec<JsonProblem>> {
        let options = ParseOptions {
            allow_comments: false,
            allow_loose_object_property_names: false,
            allow_trailing_commas: false,
            allow_missing_commas: false,
            allow_single_quoted_strings: false,
            allow_hexadecimal_numbers: false,
            allow_unary_plus_numbers: false,
            allow_bare_decimal_point_numbers: false,
            allow_non_finite_numbers: false,
            allow_extended_string_escapes: false,
        };
        let parsed = jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &options)
            .map_err(|e| {
                let range = e.range();
                vec![JsonProblem {
                    range: range.start..range.end.max(range.start + 1).min(text.len().max(1)),
                    problem: format!("invalid JSON: {}", e.kind()),
                    help: "the service config is a JSON object such as {\"methodConfig\": [...]}"
                        .to_owned(),
                }]
            })?;
        let mut reader = Reader::default();
        let config = match &parsed.value {
            Some(value) => reader.service_config(value),
            None => {
                reader.report(
                    0..text.len(),
                    "the service config is empty",
                    "write a JSON object",
                );
                None
            }
        };
        match config {
            Some(config) if reader.problems.is_empty() => Ok(config),
            _ => Err(reader.problems),
        }
    }
}

#[derive(Default)]
struct Reader {
    problems: Vec<JsonProblem>,
}

fn range_of(node: &impl Ranged) -> Range<usize> {
    let r = node.range();
    r.start..r.end
}

impl Reader {
    fn report(&mut self, range: Range<usize>, problem: impl Into<String>, help: impl Into<String>) {
        self.problems.push(JsonProblem {
            range,
            problem: problem.into(),
            help: help.into(),
        });
    }

    fn invalid(&mut self, range: Range<usize>, e: InvalidValue) {
        self.report(range, e.problem, e.help);
    }

    /// Checks an object's keys (unknown, duplicated) and returns it.
    fn object<'a, 'b>(
        &mut self,
        value: &'a Value<'b>,
        what: &str,
        known: &[&str],
    ) -> Option<&'a Object<'b>> {
        let Value::Object(object) = value else {
            self.report(
                range_of(value),
                format!("`{what}` must be a JSON object"),
                format!("write {what} as {{...}}"),
            );
            return None;
        };
        let mut seen = HashSet::new();
        for prop in &object.properties {
            let key = prop.name.as_str();
            if !seen.insert(key) {
                self.report(
                    range_of(&prop.name),
                    format!("`{key}` appears twice in `{what}`"),
                    "keep one of them",
                );
            } else if let Some((_, instead)) = ELSEWHERE.iter().find(|(k, _)| *k == key) {
                self.report(
                    range_of(&prop.name),
                    format!("`{key}` is not supported in an ephemos service config"),
                    *instead,
                );
            } else if !known.contains(&key) {
                self.report(
                    range_of(&prop.name),
                    format!("unknown key `{key}` in `{what}`"),
                    unknown_name_help(key, known.iter().copied()),
                );
            }
        }
        Some(object)
    }

    fn service_config(&mut self, value: &Value<'_>) -> Option<ServiceConfig> {
        let object = self.object(value, "service config", TOP_KEYS)?;
        let mut method_configs = Vec::new();
        let mut names_seen: HashSet<MethodName> = HashSet::new();
        if let Some(prop) = object.get("methodConfig") {
            match &prop.value {
                Value::Array(array) => {
                    for element in &array.elements {
                        if let Some(mc) = self.method_config(element, &mut names_seen) {
                            method_configs.push(mc);
                        }
                    }
                }
                other => self.report(
                    range_of(other),
                    "`methodConfig` must be an array",
                    "write \"methodConfig\": [{...}, ...]",
                ),
            }
        }
        let retry_throttling = object
            .get("retryThrottling")
            .and_then(|prop| self.throttling(&prop.value));
        let connection_scaling = object
            .get("connectionScaling")
            .and_then(|prop| self.scaling(&prop.value));
        Some(ServiceConfig {
            method_configs: Cow::Owned(method_configs),
            retry_throttling,
            connection_scaling,
        })
    }

    fn scaling(&mut self, value: &Value<'_>) -> Option<ConnectionScaling> {
        let object = self.object(value, "connectionScaling", SCALING_KEYS)?;
        let max = self.required(
            value,
            object,
            "connectionScaling",
            "maxConnectionsPerSubchannel",
            |r, v| {
                let (n, range) = r.integer(v, "maxConnectionsPerSubchannel")?;
                if n >= 1.0 && n <= f64::from(crate::rules::MAX_POOL_SIZE) && n.fract() == 0.0 {
                    Some(n as u32)
                } else {
                    r.report(
                        range,
                        format!(
                            "`maxConnectionsPerSubchannel` must be a whole number from 1 to {}",
                            crate::rules::MAX_POOL_SIZE
                        ),
                        "the same bound as pool.max_size: more connections to one endpoint stop helping long before this",
                    );
                    None
                }
            },
        );
        Some(ConnectionScaling {
            max_connections_per_subchannel: max?,
        })
    }

    fn method_config(
        &mut self,
        value: &Value<'_>,
        names_seen: &mut HashSet<MethodName>,
    ) -> Option<MethodConfig> {
        let object = self.object(value, "methodConfig", METHOD_KEYS)?;
        let mut names = Vec::new();
        match object.get("name").map(|p| &p.value) {
            Some(Value::Array(array)) if !array.elements.is_empty() => {
                for element in &array.elements {
                    if let Some(name) = self.name(element) {
                        if !names_seen.insert(name.clone()) {
                            self.report(
                                range_of(element),
                                format!("the name `{}` is configured twice", name.path()),
                                "each service or method may appear in only one methodConfig entry",
                            );
                        }
                        names.push(name);
                    }
                }
            }
            Some(other) => self.report(
                range_of(other),
                "`name` must be a non-empty array",
                "write \"name\": [{\"service\": \"pkg.Service\", \"method\": \"Method\"}]",
            ),
            None => self.report(
                range_of(value),
                "this methodConfig has no `name`, so it applies to no method",
                "add \"name\": [{\"service\": \"\"}] to apply it to every method",
            ),
        }
        let timeout = object.get("timeout").and_then(|p| self.duration(&p.value));
        let wait_for_ready = object
            .get("waitForReady")
            .and_then(|p| self.boolean(&p.value, "waitForReady"));
        let retry = object.get("retryPolicy");
        let hedging = object.get("hedgingPolicy");
        let policy = match (retry, hedging) {
            (Some(_), Some(h)) => {
                self.report(
                    range_of(&h.name),
                    "a methodConfig has `retryPolicy` or `hedgingPolicy`, not both",
                    "keep one of them",
                );
                None
            }
            (Some(r), None) => self.retry_policy(&r.value).map(CallPolicy::Retry),
            (None, Some(h)) => self.hedging_policy(&h.value).map(CallPolicy::Hedging),
            (None, None) => None,
        };
        Some(MethodConfig {
            names: Cow::Owned(names),
            timeout,
            wait_for_ready,
            policy,
        })
    }

    fn name(&mut self, value: &Value<'_>) -> Option<MethodName> {
        let object = self.object(value, "name", NAME_KEYS)?;
        let service = match object.get("service") {
            Some(p) => self.string(&p.value, "service")?,
            None => String::new(),
        };
        let method = match object.get("method") {
            Some(p) => Some(self.string(&p.value, "method")?).filter(|m| !m.is_empty()),
            None => None,
        };
        if service.is_empty() && method.is_some() {
            self.report(
                range_of(value),
                "an empty `service` cannot be combined with a `method`",
                "name the method's service, or drop `method` to match every method",
            );
            return None;
        }
        Some(MethodName {
            service: Cow::Owned(service),
            method: method.map(Cow::Owned),
        })
    }

    fn retry_policy(&mut self, value: &Value<'_>) -> Option<RetryPolicy> {
        let object = self.object(value, "retryPolicy", RETRY_KEYS)?;
        let max_attempts = self.required(value, object, "retryPolicy", "maxAttempts", |r, v| {
            r.max_attempts(v)
        });
        let initial_backoff =
            self.required(value, object, "retryPolicy", "initialBackoff", |r, v| {
                r.positive_duration(v, "initialBackoff")
            });
        let max_backoff = self.required(value, object, "retryPolicy", "maxBackoff", |r, v| {
            r.positive_duration(v, "maxBackoff")
        });
        let backoff_multiplier =
            self.required(value, object, "retryPolicy", "backoffMultiplier", |r, v| {
                let (m, range) = r.number(v, "backoffMultiplier")?;
                if m > 0.0 {
                    Some(m)
                } else {
                    r.report(
                        range,
                        "`backoffMultiplier` must be greater than 0",
                        "e.g. 2.0",
                    );
                    None
                }
            });
        let codes = self.required(
            value,
            object,
            "retryPolicy",
            "retryableStatusCodes",
            |r, v| r.codes(v, "retryableStatusCodes", false),
        );
        Some(RetryPolicy {
            max_attempts: max_attempts?,
            initial_backoff: initial_backoff?,
            max_backoff: max_backoff?,
            backoff_multiplier: backoff_multiplier?,
            retryable_status_codes: Cow::Owned(codes?),
        })
    }

    fn hedging_policy(&mut self, value: &Value<'_>) -> Option<HedgingPolicy> {
        let object = self.object(value, "hedgingPolicy", HEDGING_KEYS)?;
        let max_attempts = self.required(value, object, "hedgingPolicy", "maxAttempts", |r, v| {
            r.max_attempts(v)
        });
        let hedging_delay = match object.get("hedgingDelay") {
            Some(p) => self.duration(&p.value),
            None => Some(Duration::ZERO),
        };
        let codes = match object.get("nonFatalStatusCodes") {
            Some(p) => self.codes(&p.value, "nonFatalStatusCodes", true),
            None => Some(Vec::new()),
        };
        Some(HedgingPolicy {
            max_attempts: max_attempts?,
            hedging_delay: hedging_delay?,
            non_fatal_status_codes: Cow::Owned(codes?),
        })
    }

    fn throttling(&mut self, value: &Value<'_>) -> Option<RetryThrottling> {
        let object = self.object(value, "retryThrottling", THROTTLING_KEYS)?;
        let max_tokens = self.required(value, object, "retryThrottling", "maxTokens", |r, v| {
            let (n, range) = r.integer(v, "maxTokens")?;
            if n > 0.0 && n <= f64::from(MAX_TOKENS_LIMIT) && n.fract() == 0.0 {
                Some(n as u32)
            } else {
                r.report(
                    range,
                    format!("`maxTokens` must be a whole number from 1 to {MAX_TOKENS_LIMIT}"),
                    "gRFC A6 bounds the token bucket to (0, 1000]",
                );
                None
            }
        });
        let token_ratio = self.required(value, object, "retryThrottling", "tokenRatio", |r, v| {
            let (ratio, range) = r.number(v, "tokenRatio")?;
            let kept = truncate_token_ratio(ratio);
            if kept > 0.0 {
                Some(kept)
            } else {
                r.report(
                    range,
                    "`tokenRatio` must be greater than 0 (three decimals are kept)",
                    "e.g. 0.1",
                );
                None
            }
        });
        Some(RetryThrottling {
            max_tokens: max_tokens?,
            token_ratio: token_ratio?,
        })
    }

    fn required<T>(
        &mut self,
        parent: &Value<'_>,
        object: &Object<'_>,
        what: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &Value<'_>) -> Option<T>,
    ) -> Option<T> {
        match object.get(key) {
            Some(prop) => read(self, &prop.value),
            None => {
                self.report(
                    range_of(parent),
                    format!("`{what}` is missing `{key}`"),
                    format!("add \"{key}\""),
                );
                None
            }
        }
    }

    fn max_attempts(&mut self, value: &Value<'_>) -> Option<u32> {
        let (n, range) = self.integer(value, "maxAttempts")?;
        if n.fract() == 0.0 && (2.0..=f64::from(MAX_ATTEMPTS_LIMIT)).contains(&n) {
            Some(n as u32)
        } else {
            self.report(
                range,
                format!("`maxAttempts` must be a whole number from 2 to {MAX_ATTEMPTS_LIMIT}"),
                "gRPC caps attempts at 5; ephemos rejects larger values instead of capping silently",
            );
            None
        }
    }

    fn number(&mut self, value: &Value<'_>, key: &str) -> Option<(f64, Range<usize>)> {
        if let Value::NumberLit(n) = value
            && let Ok(parsed) = n.value.parse::<f64>()
            && parsed.is_finite()
        {
            return Some((parsed, range_of(value)));
        }
        self.report(
            range_of(value),
            format!("`{key}` must be a finite number"),
            "write a JSON number",
        );
        None
    }

    /// A JSON integer literal (grpc-go reads these into Go ints: `2.0` is an error there).
    fn integer(&mut self, value: &Value<'_>, key: &str) -> Option<(f64, Range<usize>)> {
        if let Value::NumberLit(n) = value
            && n.value.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
        {
            self.report(
                range_of(value),
                format!("`{key}` must be a whole number"),
                "write it without a decimal point",
            );
            return None;
        }
        self.number(value, key)
    }

    fn string(&mut self, value: &Value<'_>, key: &str) -> Option<String> {
        if let Value::StringLit(s) = value {
            return Some(s.value.to_string());
        }
        self.report(
            range_of(value),
            format!("`{key}` must be a string"),
            "write a JSON string",
        );
        None
    }

    fn boolean(&mut self, value: &Value<'_>, key: &str) -> Option<bool> {
        if let Value::BooleanLit(b) = value {
            return Some(b.value);
        }
        self.report(
            range_of(value),
            format!("`{key}` must be true or false"),
            "write true or false",
        );
        None
    }

    fn duration(&mut self, value: &Value<'_>) -> Option<Duration> {
        let Value::StringLit(s) = value else {
            self.report(
                range_of(value),
                "a duration must be a string",
                "write it as \"1.5s\"",
            );
            return None;
        };
        parse_proto_duration(&s.value)
            .map_err(|e| self.invalid(range_of(value), e))
            .ok()
    }

    fn positive_duration(&mut self, value: &Value<'_>, key: &str) -> Option<Duration> {
        let duration = self.duration(value)?;
        if duration.is_zero() {
            self.report(
                range_of(value),
                format!("`{key}` must be greater than 0"),
                "e.g. \"0.1s\"",
            );
            return None;
        }
        Some(duration)
    }

    fn codes(&mut self, value: &Value<'_>, key: &str, may_be_empty: bool) -> Option<Vec<Code>> {
        let Value::Array(array) = value else {
            self.report(
                range_of(value),
                format!("`{key}` must be an array of status codes"),
                "write [\"UNAVAILABLE\"]",
            );
            return None;
        };
        if array.elements.is_empty() && !may_be_empty {
            self.report(
                range_of(value),
                format!("`{key}` is empty"),
                "list at least one status code, e.g. [\"UNAVAILABLE\"]",
            );
            return None;
        }
        let mut codes = Vec::new();
        let mut ok = true;
        for element in &array.elements {
            let parsed = match element {
                Value::StringLit(s) => match Code::ALL.into_iter().find(|c| c.name() == s.value) {
                    Some(code) => Ok(code),
                    None => Code::parse(&s.value).and_then(|code| {
                        Err(InvalidValue::new(
                            format!("`{}` must be written `{code}` in JSON", s.value),
                            "grpc-go accepts only upper-case code names (or unquoted numbers)",
                        ))
                    }),
                },
                Value::NumberLit(n) => Code::parse(n.value),
                _ => Err(InvalidValue::new(
                    "a status code is a name or a number",
                    "write \"UNAVAILABLE\" or 14",
                )),
            };
            match parsed {
                Ok(Code::Ok) => {
                    ok = false;
                    self.report(
                        range_of(element),
                        "`OK` cannot be listed: a successful call is never retried",
                        "remove it",
                    );
                }
                Ok(code) if codes.contains(&code) => {
                    ok = false;
                    self.report(
                        range_of(element),
                        format!("`{code}` is listed twice"),
                        "remove one",
                    );
                }
                Ok(code) => codes.push(code),
                Err(e) => {
                    ok = false;
                    self.invalid(range_of(element), e);
                }
            }
        }
        ok.then_some(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Code;

    const REFERENCE: &str = r#"{
        "methodConfig": [{
            "name": [{"service": ""}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "1s",
                "maxBackoff": "15s",
                "backoffMultiplier": 1.8,
                "retryableStatusCodes": ["UNAVAILABLE"]
            }
        }]
    }"#;

    fn problems(json: &str) -> Vec<String> {
        ServiceConfig::parse_json(json)
            .expect_err(json)
            .into_iter()
            .map(|p| {
                assert!(p.range.end <= json.len(), "range out of the text: {p:?}");
                format!("{} ({}) @{}", p.problem, p.help, &json[p.range])
            })
            .collect()
    }

    #[test]
    fn parses_the_reference_documents_config() {
        let config = ServiceConfig::parse_json(REFERENCE).unwrap();
        let mc = &config.method_configs[0];
        assert_eq!(mc.names[0], MethodName::ALL);
        let Some(CallPolicy::Retry(retry)) = &mc.policy else {
            panic!("{mc:?}")
        };
        assert_eq!(retry.max_attempts, 4);
        assert_eq!(retry.max_backoff, Duration::from_secs(15));
        assert_eq!(retry.backoff_multiplier, 1.8);
        assert_eq!(&*retry.retryable_status_codes, &[Code::Unavailable]);
    }

    #[test]
    fn render_then_parse_gives_the_same_config() {
        let config = ServiceConfig {
            method_configs: Cow::Owned(vec![
                MethodConfig {
                    names: Cow::Owned(vec![MethodName {
                        service: "p.v1.P".into(),
                        method: None,
                    }]),
                    timeout: Some(Duration::from_millis(1500)),
                    wait_for_ready: Some(true),
                    policy: Some(CallPolicy::Hedging(HedgingPolicy {
                        max_attempts: 3,
                        hedging_delay: Duration::from_millis(50),
                        non_fatal_status_codes: Cow::Owned(vec![Code::Unavailable, Code::Internal]),
                    })),
                },
                MethodConfig {
                    names: Cow::Owned(vec![MethodName {
                        service: "p.v1.P".into(),
                        method: Some("Charge".into()),
                    }]),
                    timeout: None,
                    wait_for_ready: None,
                    policy: None,
                },
            ]),
            retry_throttling: Some(RetryThrottling {
                max_tokens: 10,
                token_ratio: 0.1,
            }),
            connection_scaling: Some(ConnectionScaling {
                max_connections_per_subchannel: 4,
            }),
        };
        let json = config.to_json();
        assert!(
            json.contains("\"connectionScaling\"")
                && json.contains("\"maxConnectionsPerSubchannel\": 4"),
            "{json}"
        );
        assert_eq!(ServiceConfig::parse_json(&json), Ok(config.clone()));
        assert_eq!(
            ServiceConfig::parse_json(&config.to_json_compact()),
            Ok(config)
        );
    }

    #[test]
    fn rejects_what_grpc_go_rejects_each_with_its_place() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"connectionScaling": {"maxConnectionsPerSubchannel": 65}}"#,
                "`maxConnectionsPerSubchannel` must be a whole number from 1 to 64 @65",
            ),
            (
                r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#,
                "empty `service` cannot be combined @{\"method\": \"M\"}",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}]}, {"name": [{"service": "s"}]}]}"#,
                "configured twice",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "timeout": "1.0000000001s"}]}"#,
                "at most 9 fractional digits",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "timeout": "5"}]}"#,
                "must end in `s`",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 1, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
                "`maxAttempts` must be a whole number from 2 to 5 @1",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 7, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
                "@7",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0s", "maxBackoff": "1s", "backoffMultiplier": 0, "retryableStatusCodes": []}}]}"#,
                "`initialBackoff` must be greater than 0",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["OK"]}}]}"#,
                "`OK` cannot be listed @\"OK\"",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 2}}]}"#,
                "missing `initialBackoff`",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {}, "hedgingPolicy": {}}]}"#,
                "not both",
            ),
            (
                r#"{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 0.1}}"#,
                "from 1 to 1000 @1001",
            ),
            (
                r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.0001}}"#,
                "`tokenRatio` must be greater than 0",
            ),
            (r#"{"methodConfg": []}"#, "did you mean `methodConfig`?"),
            (
                r#"{"methodConfig": [], "methodConfig": []}"#,
                "appears twice",
            ),
            (r#"{"loadBalancingConfig": []}"#, "not supported"),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}],}]}"#,
                "invalid JSON",
            ),
            (
                r#"{"methodConfig": [{"timeout": "1s"}]}"#,
                "applies to no method",
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "s"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILBLE"]}}]}"#,
                "did you mean `UNAVAILABLE`?",
            ),
        ];
        for (json, expected) in cases {
            let found = problems(json);
            let joined = found.join(" | ");
            let (message, at) = expected.split_once(" @").unwrap_or((expected, ""));
            assert!(
                found
                    .iter()
                    .any(|p| p.contains(message) && p.ends_with(&format!("@{at}"))
                        || (at.is_empty() && p.contains(message))),
                "{json}\nexpected {expected:?}, found {joined}"
            );
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let json = r#"{"methodConfig": [{"name": [{"service": "s"}], "timeout": "x", "waitForReady": 1}], "retryThrottling": {"maxTokens": 0, "tokenRatio": -1}}"#;
        assert_eq!(problems(json).len(), 4, "{:?}", problems(json));
    }
}
