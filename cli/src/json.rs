//! The `--format json` documents, for tools and editors.

use ephemos_config::model::{IdentitySource, ServerAuthorization};
use ephemos_config::provenance::Origin;
use ephemos_config::value::format_duration;
use ephemos_config::{Checked, Diagnostic, ResolvedTarget};
use serde_json::{Value, json};

/// `ephemos check --format json`.
pub(crate) fn check_report(checked: &Checked) -> Value {
    json!({
        "file": checked.source.name(),
        "ok": !checked.diagnostics.has_errors(),
        "errors": checked.diagnostics.errors().map(diagnostic).collect::<Vec<_>>(),
        "warnings": checked.diagnostics.warnings().map(diagnostic).collect::<Vec<_>>(),
        "targets": checked.targets.iter().map(target).collect::<Vec<_>>(),
    })
}

fn diagnostic(d: &Diagnostic) -> Value {
    let mut value = json!({
        "message": d.message,
        "label": d.label,
        "help": d.help,
    });
    if let Some(span) = &d.span {
        let start = span.file.line_column(span.range.start);
        let end = span.file.line_column(span.range.end);
        value["file"] = json!(span.file.name());
        value["line"] = json!(start.line);
        value["column"] = json!(start.column);
        value["end_line"] = json!(end.line);
        value["end_column"] = json!(end.column);
    }
    value
}

fn origin(o: &Origin) -> Value {
    match o {
        Origin::BuiltIn => json!({ "kind": "built-in" }),
        Origin::Preset(p) => json!({ "kind": "preset", "preset": p.name() }),
        Origin::Attribute => json!({ "kind": "attribute" }),
        Origin::File(span) => {
            let at = span.start();
            json!({ "kind": "file", "file": span.file.name(), "line": at.line, "column": at.column })
        }
    }
}

fn target(t: &ResolvedTarget) -> Value {
    json!({
        "name": t.config.name,
        "settings": t.provenance.iter().map(|s| json!({
            "key": s.key,
            "value": s.value,
            "origin": origin(&s.origin),
        })).collect::<Vec<_>>(),
        "service_config": service_config(t),
        "dial": dial(t),
        "profiles": t.profiles.iter().map(|p| {
            let mut value = target(p);
            value["profile"] = json!(p.profile);
            value
        }).collect::<Vec<_>>(),
        "not_in_force": ephemos_config::in_force::not_in_force(&t.config)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    })
}

/// The baked service config as a JSON value (it is rendered by ephemos-config, so this
/// is the same text the constant holds).
pub(crate) fn service_config(t: &ResolvedTarget) -> Value {
    serde_json::from_str(&t.config.service_config.to_json()).unwrap_or(Value::Null)
}

/// The dial settings of a target.
pub(crate) fn dial(t: &ResolvedTarget) -> Value {
    let c = &t.config;
    let conn = &c.connection;
    let identity = match &c.identity.source {
        IdentitySource::Spiffe {
            endpoint,
            initial_sync_timeout,
        } => json!({
            "source": "spiffe",
            "endpoint": endpoint,
            "initial_sync_timeout": format_duration(*initial_sync_timeout),
        }),
        IdentitySource::Files { cert, key, bundle } => json!({
            "source": "files", "cert": cert, "key": key, "bundle": bundle,
        }),
        IdentitySource::Dev { id } => {
            json!({ "source": "dev", "id": id.as_ref().map(|i| i.as_str()) })
        }
        IdentitySource::Plaintext => json!({ "source": "plaintext" }),
    };
    let authorization = match &c.server_authorization {
        ServerAuthorization::Any => json!({ "any": true }),
        ServerAuthorization::Ids(ids) => {
            json!({ "ids": ids.iter().map(|i| i.as_str()).collect::<Vec<_>>() })
        }
        ServerAuthorization::TrustDomains(tds) => {
            json!({ "trust_domains": tds.iter().map(|t| t.as_str()).collect::<Vec<_>>() })
        }
    };
    json!({
        "service": c.service,
        "endpoints": c.endpoints.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "preset": c.preset.name(),
        "trust_domain": c.identity.trust_domain.as_ref().map(|t| t.as_str()),
        "identity": identity,
        "server_authorization": authorization,
        "connect_timeout": format_duration(conn.connect_timeout),
        "backoff": {
            "base": format_duration(conn.backoff.base_delay),
            "multiplier": conn.backoff.multiplier,
            "jitter": conn.backoff.jitter,
            "max": format_duration(conn.backoff.max_delay),
        },
        "keepalive": conn.keepalive.map(|k| json!({
            "time": format_duration(k.time),
            "timeout": format_duration(k.timeout),
            "permit_without_stream": k.permit_without_stream,
        })),
        "idle_timeout": conn.idle_timeout.map(format_duration),
        "max_message_size": { "send": conn.max_message_size.send, "recv": conn.max_message_size.recv },
        "http2": {
            "stream_window": conn.http2.stream_window,
            "connection_window": conn.http2.connection_window,
            "adaptive_window": conn.http2.adaptive_window,
            "max_frame_size": conn.http2.max_frame_size,
        },
        "pool": {
            "size": c.pool.size,
            "max_size": c.pool.max_size,
            "cleanup_interval": format_duration(c.pool.cleanup_interval),
            "max_streams_per_connection": c.pool.max_streams_per_connection,
            "warm": c.pool.warm,
        },
        "health_check": c.health_check.as_ref().map(|h| json!({ "service": h.service_name })),
    })
}
