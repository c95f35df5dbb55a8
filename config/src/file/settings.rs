//! Reads the settings a `[defaults]`, `[targets.NAME]` or `[targets.NAME.methods.M]`
//! table may hold into a [`Layer`], checking each value's own rules (docs/design.md section 4).
//! Rules that tie several values together are checked after layering, in `resolve`.

use std::borrow::Cow;
use std::time::Duration;

use toml::de::DeValue;

use super::table::{Field, Reader, Table};
use crate::diagnostic::Diagnostic;
use crate::layer::{ByteCount, Layer, PolicyKind};
use crate::model::{IdentitySource, ServerAuthorization};
use crate::preset::{DEFAULT_INITIAL_SYNC_TIMEOUT, Preset};
use crate::provenance::Sourced;
use crate::rules::{self, MIN_IDLE_TIMEOUT, MIN_KEEPALIVE_TIME};
use crate::service_config::{
    MAX_ATTEMPTS_LIMIT, MAX_TOKENS_LIMIT, RetryThrottling, truncate_token_ratio,
};
use crate::value::{InvalidValue, SpiffeId, TrustDomain, parse_byte_size};

pub(crate) use crate::rules::MAX_POOL_SIZE;

const SERVER_KEYS: [&str; 5] = [
    "server_id",
    "server_ids",
    "server_trust_domain",
    "server_trust_domains",
    "server_any",
];

/// Settings that shape connections: allowed in `[defaults]` and in targets.
pub(crate) fn read_connection_settings(t: &mut Table<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let Some(f) = t.get("preset") {
        layer.preset = r.parsed(&f, "\"production\"", Preset::parse);
    }
    if let Some(f) = t.get("trust_domain") {
        layer.trust_domain = r.parsed(&f, "\"example.org\"", TrustDomain::parse);
    }
    if let Some(f) = t.get("identity") {
        layer.identity = read_identity(&f, r);
    }
    read_server_authorization(t, r, layer);
    if let Some(f) = t.get("connect_timeout") {
        layer.connect_timeout = r.duration(&f, Duration::ZERO);
    }
    if let Some(f) = t.get("backoff") {
        read_backoff(&f, r, layer);
    }
    if let Some(f) = t.get("keepalive") {
        read_keepalive(&f, r, layer);
    }
    if let Some(f) = t.get("idle_timeout") {
        layer.idle_timeout = r.optional_duration(&f, MIN_IDLE_TIMEOUT);
    }
    if let Some(f) = t.get("max_message_size") {
        read_message_size(&f, r, layer);
    }
    if let Some(f) = t.get("http2") {
        read_http2(&f, r, layer);
    }
    if let Some(f) = t.get("pool") {
        read_pool(&f, r, layer);
    }
    if let Some(f) = t.get("health_check") {
        read_health_check(&f, r, layer);
    }
    if let Some(f) = t.get("retry_throttling") {
        read_retry_throttling(&f, r, layer);
    }
}

/// Keys that belong to a target (or `[defaults]`) and not to a method table: reported
/// as misplaced rather than unknown. The connection keys are those
/// [`read_connection_settings`] asks for, so this list cannot drift from it.
pub(crate) fn reject_target_keys(method: &mut Table<'_, '_>, r: &mut Reader) {
    let empty = toml::de::DeTable::default();
    let mut probe = Table::new(&empty, "");
    let mut scratch = Reader::new(crate::diagnostic::SourceFile::new("", ""));
    read_connection_settings(&mut probe, &mut scratch, &mut Layer::default());
    let target_keys = probe.asked().iter().copied().chain([
        "service",
        "address",
        "endpoints",
        "service_config",
        "methods",
    ]);
    for key in target_keys {
        if let Some(f) = method.get(key) {
            r.push(
                Diagnostic::error(format!("`{key}` cannot be set per method (in `{}`)", method.path))
                    .with_label("a setting of the whole target")
                    .with_help("move it to the target's table; a method may set timeout, wait_for_ready, retry and hedging"),
                f.span(),
            );
        }
    }
}

/// Settings of calls: allowed in `[defaults]`, targets and methods.
pub(crate) fn read_call_settings(t: &mut Table<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let Some(f) = t.get("timeout") {
        layer.timeout = r.optional_duration(&f, Duration::ZERO);
    }
    if let Some(f) = t.get("wait_for_ready") {
        layer.wait_for_ready = r.boolean(&f);
    }
    let retry = t.get("retry");
    let hedging = t.get("hedging");
    let retry_on = retry
        .as_ref()
        .is_some_and(|f| !matches!(f.value.get_ref(), DeValue::Boolean(false)));
    let hedging_on = hedging
        .as_ref()
        .is_some_and(|f| !matches!(f.value.get_ref(), DeValue::Boolean(false)));
    // Both tables are read even when they conflict, so their own errors show too.
    if let Some(f) = &retry {
        read_retry(f, r, layer);
    }
    let retry_policy = layer.policy.take();
    if let Some(f) = &hedging {
        read_hedging(f, r, layer);
    }
    match (retry_on, hedging_on, &hedging) {
        (true, true, Some(h)) => {
            r.push(
                Diagnostic::error(format!("{} has both `retry` and `hedging`", t.name()))
                    .with_label("hedging set here, retry above")
                    .with_help(
                        "a method has a retry policy or a hedging policy, not both: keep one",
                    ),
                h.span(),
            );
            layer.policy = None;
        }
        // `hedging = false` next to a retry setting says nothing more.
        (_, false, _) if retry.is_some() => layer.policy = retry_policy,
        _ => {}
    }
}

fn read_identity(f: &Field<'_, '_>, r: &mut Reader) -> Option<Sourced<IdentitySource>> {
    const KINDS: [&str; 4] = ["spiffe", "files", "dev", "plaintext"];
    let unknown = |kind: &str| {
        InvalidValue::new(
            format!("unknown identity source `{kind}`"),
            crate::diagnostic::unknown_name_help(kind, KINDS),
        )
    };
    if let DeValue::String(kind) = f.value.get_ref() {
        let source = match kind.as_ref() {
            "spiffe" => IdentitySource::Spiffe {
                endpoint: None,
                initial_sync_timeout: DEFAULT_INITIAL_SYNC_TIMEOUT,
            },
            "dev" => IdentitySource::Dev { id: None },
            "plaintext" => IdentitySource::Plaintext,
            "files" => {
                r.invalid(
                    f,
                    InvalidValue::new(
                        "the `files` identity needs its files",
                        "write identity = { source = \"files\", cert = \"svid.pem\", key = \"svid.key\", bundle = \"bundle.pem\" }",
                    ),
                );
                return None;
            }
            other => {
                r.invalid(f, unknown(other));
                return None;
            }
        };
        return Some(r.sourced(source, f));
    }
    let mut t = r.table(
        f,
        "\"spiffe\" or { source = \"spiffe\", endpoint = \"unix:/run/spire/agent.sock\" }",
    )?;
    let source_field = t.get("source");
    let kind = match &source_field {
        Some(sf) => r.string(sf, "\"spiffe\"").map(str::to_owned),
        None => {
            r.push(
                Diagnostic::error(format!("`{}` has no `source`", f.path))
                    .with_help("add source = \"spiffe\", \"files\", \"dev\" or \"plaintext\""),
                f.span(),
            );
            None
        }
    };
    let path = |t: &mut Table<'_, '_>, r: &mut Reader, key: &'static str| -> Option<String> {
        match t.get(key) {
            Some(pf) => r
                .parsed(&pf, "\"path/to/file.pem\"", |p| {
                    if p.trim().is_empty() {
                        Err(InvalidValue::new("the path is empty", "name a PEM file"))
                    } else {
                        Ok(p.to_owned())
                    }
                })
                .map(|p| p.value),
            None => {
                r.push(
                    Diagnostic::error(format!("`{}` is missing `{key}`", f.path))
                        .with_help("the `files` identity needs `cert`, `key` and `bundle`"),
                    f.span(),
                );
                None
            }
        }
    };
    let source = match kind.as_deref() {
        Some("spiffe") => {
            t.known(&["endpoint", "initial_sync_timeout"]);
            let endpoint = t.get("endpoint").and_then(|ef| {
                r.parsed(
                    &ef,
                    "\"unix:/run/spire/agent.sock\"",
                    check_workload_api_endpoint,
                )
                .map(|e| e.value)
            });
            let timeout = t
                .get("initial_sync_timeout")
                .and_then(|tf| r.duration(&tf, Duration::ZERO))
                .map_or(DEFAULT_INITIAL_SYNC_TIMEOUT, |d| d.value);
            Some(IdentitySource::Spiffe {
                endpoint: endpoint.map(Cow::Owned),
                initial_sync_timeout: timeout,
            })
        }
        Some("files") => {
            let cert = path(&mut t, r, "cert");
            let key = path(&mut t, r, "key");
            let bundle = path(&mut t, r, "bundle");
            Some(IdentitySource::Files {
                cert: Cow::Owned(cert?),
                key: Cow::Owned(key?),
                bundle: Cow::Owned(bundle?),
            })
        }
        Some("dev") => {
            let id = t
                .get("id")
                .and_then(|idf| r.parsed(&idf, "\"spiffe://example.org/client\"", SpiffeId::parse));
            Some(IdentitySource::Dev {
                id: id.map(|i| i.value),
            })
        }
        Some("plaintext") => Some(IdentitySource::Plaintext),
        Some(other) => {
            if let Some(sf) = &source_field {
                r.invalid(sf, unknown(other));
            }
            None
        }
        None => None,
    };
    if source.is_some() {
        t.finish(r);
    }
    Some(r.sourced(source?, f))
}

/// The Workload API endpoint, as `SPIFFE_ENDPOINT_SOCKET` writes it: `unix:/path`,
/// `unix:///path`, or `tcp://IP:port` (an IP address: the standard allows no names).
fn check_workload_api_endpoint(text: &str) -> Result<String, InvalidValue> {
    let help = "write `unix:///run/spire/agent.sock` or `tcp://127.0.0.1:8081`";
    if let Some(path) = text.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.starts_with('/') && path.len() > 1 {
            return Ok(text.to_owned());
        }
        return Err(InvalidValue::new(
            "a unix endpoint needs an absolute path",
            help,
        ));
    }
    if let Some(addr) = text.strip_prefix("tcp://") {
        if addr.parse::<std::net::SocketAddr>().is_ok() {
            return Ok(text.to_owned());
        }
        return Err(InvalidValue::new(
            "a tcp endpoint is an IP address and a port",
            help,
        ));
    }
    Err(InvalidValue::new(
        format!("`{text}` is not a Workload API endpoint"),
        help,
    ))
}

fn read_server_authorization(t: &mut Table<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    let written: Vec<Field<'_, '_>> = SERVER_KEYS.iter().filter_map(|key| t.get(key)).collect();
    // Every rule is checked, so a conflict does not hide a malformed value.
    let rules: Vec<Option<ServerAuthorization>> =
        written.iter().map(|f| server_rule(f, r)).collect();
    if let [first, second, ..] = written.as_slice() {
        r.push(
            Diagnostic::error(format!(
                "`{}` and `{}` both say which servers to accept",
                first.key, second.key
            ))
            .with_label("second rule here")
            .with_help("keep one of server_id, server_ids, server_trust_domain, server_trust_domains, server_any"),
            second.span(),
        );
        return;
    }
    if let (Some(f), Some(Some(rule))) = (written.first(), rules.into_iter().next()) {
        layer.server_authorization = Some(r.sourced(rule, f));
    }
}

fn server_rule(f: &Field<'_, '_>, r: &mut Reader) -> Option<ServerAuthorization> {
    match f.key {
        "server_id" => r
            .parsed(f, "\"spiffe://example.org/payments\"", SpiffeId::parse)
            .map(|id| ServerAuthorization::Ids(Cow::Owned(vec![id.value]))),
        "server_ids" => {
            string_list(f, r, SpiffeId::parse).map(|ids| ServerAuthorization::Ids(Cow::Owned(ids)))
        }
        "server_trust_domain" => r
            .parsed(f, "\"example.org\"", TrustDomain::parse)
            .map(|td| ServerAuthorization::TrustDomains(Cow::Owned(vec![td.value]))),
        "server_trust_domains" => string_list(f, r, TrustDomain::parse)
            .map(|tds| ServerAuthorization::TrustDomains(Cow::Owned(tds))),
        _ => match r.boolean(f) {
            Some(b) if b.value => Some(ServerAuthorization::Any),
            Some(_) => {
                r.invalid(
                    f,
                    InvalidValue::new(
                        "`server_any = false` says nothing",
                        "remove it, or name the servers with server_id or server_trust_domain",
                    ),
                );
                None
            }
            None => None,
        },
    }
}

fn string_list<T: PartialEq>(
    f: &Field<'_, '_>,
    r: &mut Reader,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Option<Vec<T>> {
    r.list(f, "an array of strings", "[\"...\"]", false, |r, item| {
        r.parsed(item, "\"...\"", &parse).map(|v| v.value)
    })
    .map(|list| list.value)
}

fn read_backoff(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    let Some(mut t) = r.table(
        f,
        "{ base = \"1s\", multiplier = 1.6, jitter = 0.2, max = \"120s\" }",
    ) else {
        return;
    };
    if let Some(bf) = t.get("base") {
        layer.backoff_base = r.duration(&bf, Duration::ZERO);
    }
    if let Some(mf) = t.get("multiplier") {
        layer.backoff_multiplier = r.number(&mf, |m| rules::backoff_multiplier(m).map(|()| m));
    }
    if let Some(jf) = t.get("jitter") {
        layer.backoff_jitter = r.number(&jf, |j| rules::backoff_jitter(j).map(|()| j));
    }
    if let Some(xf) = t.get("max") {
        layer.backoff_max = r.duration(&xf, Duration::ZERO);
    }
    t.finish(r);
}

fn read_keepalive(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    match f.value.get_ref() {
        DeValue::Boolean(false) => {
            layer.keepalive_enabled = Some(r.sourced(false, f));
            return;
        }
        DeValue::String(s) if s.eq_ignore_ascii_case("off") => {
            layer.keepalive_enabled = Some(r.sourced(false, f));
            return;
        }
        _ => {}
    }
    let Some(mut t) = r.table(f, "{ time = \"30s\", timeout = \"10s\" } or \"off\"") else {
        return;
    };
    layer.keepalive_enabled = Some(r.sourced(true, f));
    if let Some(tf) = t.get("time") {
        layer.keepalive_time = r.duration(&tf, Duration::ZERO).and_then(|d| {
            match rules::keepalive_time(d.value, MIN_KEEPALIVE_TIME) {
                Ok(()) => Some(d),
                Err(e) => {
                    r.invalid(&tf, e);
                    None
                }
            }
        });
    }
    if let Some(of) = t.get("timeout") {
        layer.keepalive_timeout = r.duration(&of, Duration::ZERO);
    }
    if let Some(pf) = t.get("permit_without_stream") {
        layer.keepalive_permit_without_stream = r.boolean(&pf);
    }
    t.finish(r);
}

/// A size in bytes within `range`; `why` explains the range.
fn byte_count(
    f: &Field<'_, '_>,
    r: &mut Reader,
    range: std::ops::RangeInclusive<u32>,
    why: &str,
) -> Option<Sourced<ByteCount>> {
    let bytes = match f.value.get_ref() {
        DeValue::String(s) => match parse_byte_size(s) {
            Ok(n) => n,
            Err(e) => {
                r.invalid(f, e);
                return None;
            }
        },
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        _ => {
            r.wrong_type(f, "a size", "\"4MiB\"");
            return None;
        }
    };
    match rules::size_in(bytes, range, why) {
        Ok(n) => Some(r.sourced(ByteCount(n), f)),
        Err(e) => {
            r.invalid(f, e);
            None
        }
    }
}

use rules::{MESSAGE_SIZE as MESSAGE_SIZE_RANGE, MESSAGE_SIZE_WHY};

fn read_http2(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    let Some(mut t) = r.table(
        f,
        "{ stream_window = \"2MiB\", connection_window = \"5MiB\" }",
    ) else {
        return;
    };
    let (window, window_why) = (rules::HTTP2_WINDOW, rules::HTTP2_WINDOW_WHY);
    if let Some(wf) = t.get("stream_window") {
        layer.http2_stream_window = byte_count(&wf, r, window.clone(), window_why);
    }
    if let Some(wf) = t.get("connection_window") {
        layer.http2_connection_window = byte_count(&wf, r, window, window_why);
    }
    if let Some(af) = t.get("adaptive_window") {
        layer.http2_adaptive_window = r.boolean(&af);
    }
    if let Some(mf) = t.get("max_frame_size") {
        layer.http2_max_frame_size = byte_count(
            &mf,
            r,
            rules::HTTP2_MAX_FRAME_SIZE,
            rules::HTTP2_MAX_FRAME_SIZE_WHY,
        );
    }
    t.finish(r);
}

fn read_message_size(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let DeValue::Table(_) = f.value.get_ref() {
        let Some(mut t) = r.table(f, "{ send = \"4MiB\", recv = \"16MiB\" }") else {
            return;
        };
        if let Some(sf) = t.get("send") {
            layer.max_send_message_size = byte_count(&sf, r, MESSAGE_SIZE_RANGE, MESSAGE_SIZE_WHY);
        }
        if let Some(rf) = t.get("recv") {
            layer.max_recv_message_size = byte_count(&rf, r, MESSAGE_SIZE_RANGE, MESSAGE_SIZE_WHY);
        }
        t.finish(r);
    } else if let Some(size) = byte_count(f, r, MESSAGE_SIZE_RANGE, MESSAGE_SIZE_WHY) {
        layer.max_send_message_size = Some(size.clone());
        layer.max_recv_message_size = Some(size);
    }
}

fn read_pool(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let DeValue::Boolean(on) = f.value.get_ref() {
        layer.pool_enabled = Some(r.sourced(*on, f));
        return;
    }
    let Some(mut t) = r.table(f, "{ size = 8 } or true") else {
        return;
    };
    layer.pool_enabled = Some(r.sourced(true, f));
    let why = "connections per endpoint";
    if let Some(sf) = t.get("size") {
        layer.pool_size = r.integer(&sf, 1..=MAX_POOL_SIZE, why);
    }
    if let Some(mf) = t.get("max_size") {
        layer.pool_max_size = r.integer(&mf, 1..=MAX_POOL_SIZE, why);
    }
    if let Some(cf) = t.get("cleanup_interval") {
        layer.pool_cleanup_interval = r.duration(&cf, Duration::ZERO);
    }
    if let Some(sf) = t.get("max_streams_per_connection") {
        layer.pool_max_streams = match sf.value.get_ref() {
            // "auto": the server's SETTINGS_MAX_CONCURRENT_STREAMS.
            DeValue::String(s) if s.as_ref() == "auto" => Some(r.sourced(None, &sf)),
            _ => r
                .integer(
                    &sf,
                    1..=u32::MAX,
                    "calls in flight on one connection, or \"auto\"",
                )
                .map(|n| Sourced::new(Some(n.value), n.origin)),
        };
    }
    if let Some(wf) = t.get("warm") {
        layer.pool_warm = r.boolean(&wf);
    }
    t.finish(r);
}

fn read_health_check(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let DeValue::Boolean(on) = f.value.get_ref() {
        layer.health_check = Some(r.sourced(on.then(String::new), f));
        return;
    }
    let Some(mut t) = r.table(f, "true or { service = \"payments.v1.Payments\" }") else {
        return;
    };
    let service = match t.get("service") {
        Some(sf) => r.string(&sf, "\"payments.v1.Payments\"").map(str::to_owned),
        None => Some(String::new()),
    };
    t.finish(r);
    layer.health_check = service.map(|s| r.sourced(Some(s), f));
}

fn read_retry_throttling(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let DeValue::Boolean(false) = f.value.get_ref() {
        layer.retry_throttling = Some(r.sourced(None, f));
        return;
    }
    let Some(mut t) = r.table(f, "{ max_tokens = 10, token_ratio = 0.1 }") else {
        return;
    };
    let max_tokens = match t.get("max_tokens") {
        Some(mf) => r.integer(&mf, 1..=MAX_TOKENS_LIMIT, "gRFC A6 bounds the token bucket"),
        None => missing(r, f, "max_tokens", "max_tokens = 10"),
    };
    let token_ratio = match t.get("token_ratio") {
        Some(rf) => r.number(&rf, |ratio| {
            let kept = truncate_token_ratio(ratio);
            if kept > 0.0 {
                Ok(kept)
            } else {
                Err(InvalidValue::new(
                    format!("{ratio} is not greater than 0 once cut to 3 decimals"),
                    "gRFC A6 keeps 3 decimals of token_ratio; write e.g. 0.1",
                ))
            }
        }),
        None => missing(r, f, "token_ratio", "token_ratio = 0.1"),
    };
    t.finish(r);
    if let (Some(max_tokens), Some(token_ratio)) = (max_tokens, token_ratio) {
        layer.retry_throttling = Some(r.sourced(
            Some(RetryThrottling {
                max_tokens: max_tokens.value,
                token_ratio: token_ratio.value,
            }),
            f,
        ));
    }
}

fn missing<T>(r: &mut Reader, f: &Field<'_, '_>, key: &str, example: &str) -> Option<T> {
    r.push(
        Diagnostic::error(format!("`{}` is missing `{key}`", f.path))
            .with_help(format!("add {example}")),
        f.span(),
    );
    None
}

fn attempts(f: &Field<'_, '_>, r: &mut Reader) -> Option<Sourced<u32>> {
    r.integer(
        f,
        2..=MAX_ATTEMPTS_LIMIT,
        "gRPC caps attempts at 5, and ephemos rejects more instead of capping silently",
    )
}

fn positive_number(f: &Field<'_, '_>, r: &mut Reader) -> Option<Sourced<f64>> {
    r.number(f, |m| {
        if m > 0.0 {
            Ok(m)
        } else {
            Err(InvalidValue::new(
                format!("{m} is not greater than 0"),
                "write e.g. 2.0",
            ))
        }
    })
}

fn read_retry(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let DeValue::Boolean(on) = f.value.get_ref() {
        let kind = if *on {
            PolicyKind::Retry
        } else {
            PolicyKind::Off
        };
        layer.policy = Some(r.sourced(kind, f));
        return;
    }
    let Some(mut t) = r.table(f, "{ max_attempts = 3 } or false") else {
        return;
    };
    layer.policy = Some(r.sourced(PolicyKind::Retry, f));
    if let Some(af) = t.get("max_attempts") {
        layer.retry_max_attempts = attempts(&af, r);
    }
    if let Some(bf) = t.get("initial_backoff") {
        layer.retry_initial_backoff = r.duration(&bf, Duration::ZERO);
    }
    if let Some(bf) = t.get("max_backoff") {
        layer.retry_max_backoff = r.duration(&bf, Duration::ZERO);
    }
    if let Some(mf) = t.get("backoff_multiplier") {
        layer.retry_backoff_multiplier = positive_number(&mf, r);
    }
    if let Some(cf) = t.get("retryable_status_codes") {
        layer.retry_codes = r.codes(&cf, false);
    }
    t.finish(r);
}

fn read_hedging(f: &Field<'_, '_>, r: &mut Reader, layer: &mut Layer) {
    if let DeValue::Boolean(on) = f.value.get_ref() {
        // `hedging = false` turns hedging off and leaves an inherited retry policy alone.
        let kind = if *on {
            PolicyKind::Hedging
        } else {
            PolicyKind::NotHedging
        };
        layer.policy = Some(r.sourced(kind, f));
        return;
    }
    let Some(mut t) = r.table(f, "{ max_attempts = 3, hedging_delay = \"50ms\" }") else {
        return;
    };
    layer.policy = Some(r.sourced(PolicyKind::Hedging, f));
    if let Some(af) = t.get("max_attempts") {
        layer.hedging_max_attempts = attempts(&af, r);
    }
    if let Some(df) = t.get("hedging_delay") {
        layer.hedging_delay = r.parsed(&df, "\"50ms\"", crate::value::parse_duration);
    }
    if let Some(cf) = t.get("non_fatal_status_codes") {
        layer.hedging_codes = r.codes(&cf, true);
    }
    t.finish(r);
}
