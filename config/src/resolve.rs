//! Stacks the layers of a target (built-in default < preset < `[defaults]` < target) into
//! a [`TargetConfig`], checks the rules that tie several values together, emits the
//! warnings of docs/design.md section 4, and lists where every value came from.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use crate::diagnostic::{Diagnostic, SourceSpan};
use crate::file::{ConnectionsFile, ProfileTable, Reader, TargetTable};
use crate::layer::{Layer, PolicyKind};
use crate::model::{
    BackoffConfig, ConnectionConfig, HealthCheckConfig, Http2Config, IdentityConfig,
    IdentitySource, KeepaliveConfig, MessageSizeLimits, PoolConfig, ServerAuthorization,
    TargetConfig,
};
use crate::preset::{DEFAULT_POOL_SIZE_WHEN_ENABLED, Preset, built_in_layer};
use crate::provenance::{Origin, Setting, Sourced};
use crate::service_config::{
    CallPolicy, HedgingPolicy, MethodConfig, MethodName, RetryPolicy, ServiceConfig,
};
use crate::value::Code;

/// Servers enforce a minimum ping interval of 5 minutes by default (gRFC A8).
const SERVER_DEFAULT_MIN_PING_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A target's resolved configuration and the origin of each of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTarget {
    /// The configuration a client is built from.
    pub config: TargetConfig,
    /// Each setting's value and where it came from, in `connections.toml` key order.
    pub provenance: Vec<Setting>,
    /// Where the target's name is written (`[targets.NAME]`).
    pub name_span: SourceSpan,
    /// The target's method tables and where each name is written, for checks against
    /// the protos.
    pub methods: Vec<(String, SourceSpan)>,
    /// The profile this is the resolution of; `None` for the target's own settings.
    pub profile: Option<String>,
    /// The target in each profile the file declares (`[defaults.profiles.P]` or any
    /// `[targets.T.profiles.P]`), in the order first written; empty in a profile.
    pub profiles: Vec<ResolvedTarget>,
}

impl ResolvedTarget {
    /// The resolution in a profile, by name.
    pub fn profile(&self, name: &str) -> Option<&ResolvedTarget> {
        self.profiles
            .iter()
            .find(|p| p.profile.as_deref() == Some(name))
    }
}

/// The value of a setting the built-in layer always sets.
fn value<T: Clone>(setting: &Option<Sourced<T>>) -> T {
    setting
        .as_ref()
        .map(|s| s.value.clone())
        .expect("the built-in layer sets every defaulted setting")
}

struct Resolver<'r> {
    reader: &'r mut Reader,
    target_span: Range<usize>,
    target_name: String,
    failed: bool,
}

impl Resolver<'_> {
    /// Where to point for a value: its own place where it was written (in the file, or
    /// in an attribute's arguments), else the target.
    fn place(&self, origin: Option<&Origin>) -> SourceSpan {
        origin
            .and_then(Origin::span)
            .cloned()
            .unwrap_or_else(|| self.reader.span(self.target_span.clone()))
    }

    fn error(&mut self, diagnostic: Diagnostic, origin: Option<&Origin>) {
        self.failed = true;
        let span = self.place(origin);
        self.reader.push_at(diagnostic, span);
    }

    fn warn(&mut self, diagnostic: Diagnostic, origin: Option<&Origin>) {
        let span = self.place(origin);
        self.reader.push_at(diagnostic, span);
    }
}

fn origin<T>(setting: &Option<Sourced<T>>) -> Option<&Origin> {
    setting.as_ref().map(|s| &s.origin)
}

/// The layers a target is resolved from, lowest first: `[defaults]`, the target, then,
/// in a profile, `[defaults.profiles.P]` and `[targets.T.profiles.P]`, and last the
/// arguments of an attribute. A profile sits above the target because it says how this
/// environment differs from the target's usual settings.
fn user_layers<'a>(
    file: &'a ConnectionsFile,
    target: &'a TargetTable,
    profile: Option<&str>,
    top: Option<&'a Layer>,
) -> Vec<&'a Layer> {
    let mut layers = vec![&file.defaults, &target.layer];
    if let Some(name) = profile {
        let of = |profiles: &'a [ProfileTable]| profiles.iter().find(|p| p.name == name);
        layers.extend(of(&file.default_profiles).map(|p| &p.layer));
        layers.extend(of(&target.profiles).map(|p| &p.layer));
    }
    layers.extend(top);
    layers
}

/// Resolves a target and each profile the file declares; problems go to `reader`, `None`
/// when there were errors (in the target or in any of its profiles).
pub(crate) fn resolve_with_profiles(
    file: &ConnectionsFile,
    target: &TargetTable,
    top: Option<&Layer>,
    reader: &mut Reader,
) -> Option<ResolvedTarget> {
    let base = resolve_target(file, target, None, top, reader);
    let mut profiles = Vec::new();
    let mut failed = false;
    for name in file.profile_names() {
        // A profile repeats what its target says, so what the target's resolution
        // already reported at a place is not said again for each profile.
        let mut scratch = Reader {
            file: reader.file.clone(),
            diagnostics: Default::default(),
        };
        let resolved = resolve_target(file, target, Some(&name), top, &mut scratch);
        for diagnostic in scratch.diagnostics {
            let said = reader
                .diagnostics
                .iter()
                .any(|d| d.severity == diagnostic.severity && d.span == diagnostic.span);
            if !said {
                let span = diagnostic.span.clone();
                match span {
                    Some(span) => reader.push_at(diagnostic, span),
                    None => reader.diagnostics.push(diagnostic),
                }
            }
        }
        match resolved {
            Some(resolved) => profiles.push(resolved),
            None => failed = true,
        }
    }
    let mut base = base?;
    if failed {
        return None;
    }
    base.profiles = profiles;
    Some(base)
}

/// Resolves one target of a file, in one profile (`None`: the target's own settings);
/// problems go to `reader`, `None` when there were errors.
pub(crate) fn resolve_target(
    file: &ConnectionsFile,
    target: &TargetTable,
    profile: Option<&str>,
    top: Option<&Layer>,
    reader: &mut Reader,
) -> Option<ResolvedTarget> {
    let layers = user_layers(file, target, profile, top);
    let preset = layers
        .iter()
        .rev()
        .find_map(|l| l.preset.as_ref())
        .map_or(Preset::Production, |p| p.value);
    let mut eff = built_in_layer();
    eff.overlay(&preset.layer());
    for layer in &layers {
        eff.overlay(layer);
    }

    let profile_span = profile.and_then(|name| {
        target
            .profiles
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.span.clone())
    });
    let mut r = Resolver {
        reader,
        target_span: target.span.clone(),
        target_name: match profile {
            Some(p) => format!("{}` in profile `{p}", target.name),
            None => target.name.clone(),
        },
        failed: false,
    };
    let endpoints = eff.endpoints.as_ref().map(|e| e.value.clone());
    apply_pool_switch(&mut eff);
    let connection = connection_config(&mut r, &eff);
    let pool = pool_config(&mut r, &mut eff);
    let (identity, server_authorization) = identity(&mut r, &mut eff, preset);
    // Above the target, only layers that are not the target's own table.
    let upper = &layers[2..];
    let service_config = service_config(&mut r, &eff, &layers[..2], upper, target);
    let config = TargetConfig {
        name: Cow::Owned(target.name.clone()),
        service: eff.service.as_ref().map(|s| Cow::Owned(s.value.clone())),
        endpoints: Cow::Owned(endpoints?),
        preset,
        identity,
        server_authorization,
        connection: connection?,
        pool,
        health_check: value(&eff.health_check).map(|s| HealthCheckConfig {
            service_name: Cow::Owned(s),
        }),
        service_config: service_config?,
    };
    if r.failed {
        return None;
    }
    Some(ResolvedTarget {
        config,
        profile: profile.map(str::to_owned),
        provenance: provenance(&eff, target),
        name_span: r
            .reader
            .span(profile_span.unwrap_or_else(|| target.span.clone())),
        methods: target
            .methods
            .iter()
            .map(|m| (m.name.clone(), r.reader.span(m.span.clone())))
            .collect(),
        profiles: Vec::new(),
    })
}

/// The pool switch of the highest layer that has one decides: `pool = false` is one
/// connection whatever lower layers sized; `pool = true` (or a pool table) without a
/// written size, over a preset without pooling, gives the reference's 5 connections.
fn apply_pool_switch(eff: &mut Layer) {
    let Some(enabled) = eff.pool_enabled.clone() else {
        return;
    };
    if !enabled.value {
        eff.pool_size = Some(Sourced::new(1, enabled.origin.clone()));
        eff.pool_max_size = Some(Sourced::new(1, enabled.origin));
    } else if let Some(size) = &eff.pool_size
        && size.value == 1
        && !size.origin.is_written()
    {
        eff.pool_size = Some(Sourced::new(DEFAULT_POOL_SIZE_WHEN_ENABLED, enabled.origin));
    }
}

fn connection_config(r: &mut Resolver<'_>, eff: &Layer) -> Option<ConnectionConfig> {
    let backoff = BackoffConfig {
        base_delay: value(&eff.backoff_base),
        multiplier: value(&eff.backoff_multiplier),
        jitter: value(&eff.backoff_jitter),
        max_delay: value(&eff.backoff_max),
    };
    if let Err(problem) =
        crate::rules::backoff_max_at_least_base(backoff.base_delay, backoff.max_delay)
    {
        let at = origin(&eff.backoff_max)
            .filter(|o| o.is_written())
            .or(origin(&eff.backoff_base));
        r.error(
            Diagnostic::error(format!(
                "backoff of target `{}`: `max` is shorter than `base`",
                r.target_name
            ))
            .with_label(problem.problem)
            .with_help(problem.help),
            at,
        );
        return None;
    }
    let keepalive = value(&eff.keepalive_enabled).then(|| KeepaliveConfig {
        time: value(&eff.keepalive_time),
        timeout: value(&eff.keepalive_timeout),
        permit_without_stream: value(&eff.keepalive_permit_without_stream),
    });
    if let Some(k) = &keepalive {
        let written = [
            origin(&eff.keepalive_time),
            origin(&eff.keepalive_permit_without_stream),
            origin(&eff.keepalive_enabled),
        ]
        .into_iter()
        .flatten()
        .find(|o| o.is_written());
        if k.permit_without_stream && k.time < SERVER_DEFAULT_MIN_PING_INTERVAL && written.is_some()
        {
            r.warn(
                Diagnostic::warning(format!(
                    "target `{}` pings every {} even without calls",
                    r.target_name,
                    crate::value::format_duration(k.time)
                ))
                .with_label("more often than servers allow by default")
                .with_help(
                    "servers with default settings answer pings more frequent than 5m without calls with \
                     GOAWAY too_many_pings (gRFC A8); ephemos then doubles the interval, but set \
                     permit_without_stream = false or time >= \"5m\" unless the server permits it",
                ),
                written,
            );
        }
    }
    Some(ConnectionConfig {
        connect_timeout: value(&eff.connect_timeout),
        backoff,
        keepalive,
        idle_timeout: value(&eff.idle_timeout),
        max_message_size: MessageSizeLimits {
            send: value(&eff.max_send_message_size).0,
            recv: value(&eff.max_recv_message_size).0,
        },
        http2: Http2Config {
            stream_window: value(&eff.http2_stream_window).0,
            connection_window: value(&eff.http2_connection_window).0,
            adaptive_window: value(&eff.http2_adaptive_window),
            max_frame_size: value(&eff.http2_max_frame_size).0,
        },
    })
}

fn pool_config(r: &mut Resolver<'_>, eff: &mut Layer) -> PoolConfig {
    let size = value(&eff.pool_size);
    let max_size = match &eff.pool_max_size {
        Some(max) if max.value < size => {
            let at = max.origin.clone();
            r.error(
                Diagnostic::error(format!(
                    "pool of target `{}`: `max_size` is below `size`",
                    r.target_name
                ))
                .with_label(format!("max_size {} < size {size}", max.value))
                .with_help("the pool grows from `size` up to `max_size`: make max_size >= size"),
                Some(&at),
            );
            size
        }
        Some(max) => max.value,
        None => {
            let size_origin = eff.pool_size.as_ref().map(|s| s.origin.clone());
            eff.pool_max_size = size_origin.map(|o| Sourced::new(size, o));
            size
        }
    };
    PoolConfig {
        size,
        max_size,
        cleanup_interval: value(&eff.pool_cleanup_interval),
        max_streams_per_connection: value(&eff.pool_max_streams),
        warm: value(&eff.pool_warm),
    }
}

fn identity(
    r: &mut Resolver<'_>,
    eff: &mut Layer,
    preset: Preset,
) -> (IdentityConfig, ServerAuthorization) {
    let source = value(&eff.identity);
    let source_origin = origin(&eff.identity).cloned();
    let trust_domain =
        eff.trust_domain
            .as_ref()
            .map(|t| t.value.clone())
            .or_else(|| match &source {
                IdentitySource::Dev { id: Some(id) } => Some(id.trust_domain()),
                _ => None,
            });
    let written = source_origin.as_ref().filter(|o| o.is_written());
    match &source {
        IdentitySource::Plaintext if preset != Preset::Development => r.warn(
            Diagnostic::warning(format!(
                "target `{}` uses plaintext outside the development preset",
                r.target_name
            ))
            .with_label("no encryption, no authentication")
            .with_help("use identity = \"spiffe\" (or \"files\") in production"),
            source_origin.as_ref(),
        ),
        IdentitySource::Dev { .. } if preset != Preset::Development && written.is_some() => r.warn(
            Diagnostic::warning(format!(
                "target `{}` uses the dev identity outside the development preset",
                r.target_name
            ))
            .with_label("an in-process CA that only this process trusts")
            .with_help(
                "the dev CA is for examples and tests; use identity = \"spiffe\" in production",
            ),
            written,
        ),
        _ => {}
    }
    if matches!(source, IdentitySource::Dev { id: None }) && trust_domain.is_none() {
        r.error(
            Diagnostic::error(format!(
                "target `{}`: the dev identity needs a trust domain",
                r.target_name
            ))
            .with_help("set trust_domain = \"example.org\" (in [defaults] or the target)"),
            source_origin.as_ref(),
        );
    }
    let authorization = match (&source, &eff.server_authorization) {
        (IdentitySource::Plaintext, Some(written)) => {
            let at = written.origin.clone();
            r.error(
                Diagnostic::error(format!(
                    "target `{}` names servers to accept but uses plaintext",
                    r.target_name
                ))
                .with_label("cannot be checked without TLS")
                .with_help("use a TLS identity (spiffe, files or dev), or remove the server rule"),
                Some(&at),
            );
            ServerAuthorization::Any
        }
        (IdentitySource::Plaintext, None) => ServerAuthorization::Any,
        (_, Some(written)) => written.value.clone(),
        (_, None) => match &trust_domain {
            Some(td) => {
                let from = eff.trust_domain.as_ref().map_or_else(
                    || source_origin.clone().unwrap_or(Origin::BuiltIn),
                    |t| t.origin.clone(),
                );
                eff.server_authorization = Some(Sourced::new(
                    ServerAuthorization::TrustDomains(Cow::Owned(vec![td.clone()])),
                    from,
                ));
                ServerAuthorization::TrustDomains(Cow::Owned(vec![td.clone()]))
            }
            None => {
                r.error(
                    Diagnostic::error(format!("target `{}` does not say which servers to trust", r.target_name))
                        .with_label("this target")
                        .with_help(
                            "set server_id = \"spiffe://example.org/service\", server_trust_domain, or \
                             trust_domain in [defaults] (accepts its members); server_any = true accepts any",
                        ),
                    None,
                );
                ServerAuthorization::Any
            }
        },
    };
    (
        IdentityConfig {
            source,
            trust_domain,
        },
        authorization,
    )
}

fn service_config(
    r: &mut Resolver<'_>,
    eff: &Layer,
    below: &[&Layer],
    upper: &[&Layer],
    target: &TargetTable,
) -> Option<ServiceConfig> {
    if let Some(raw) = &target.layer.service_config {
        warn_ignored_defaults(r, below[0], &raw.origin);
        for layer in upper {
            reject_call_policy_over_raw(r, layer);
        }
        if r.failed {
            return None;
        }
        return Some(raw.value.clone());
    }
    let service = eff.service.as_ref().map(|s| s.value.clone());
    let default_name = match &service {
        Some(s) => MethodName {
            service: Cow::Owned(s.clone()),
            method: None,
        },
        None => MethodName::ALL,
    };
    // Every method is resolved, so each one's errors are reported.
    let mut method_configs = vec![method_config(r, eff, default_name)];
    for method in &target.methods {
        let Some(service) = &service else {
            let at = r.reader.origin(method.span.clone());
            r.error(
                Diagnostic::error(format!(
                    "target `{}` configures methods but has no `service`",
                    r.target_name
                ))
                .with_label("method of which service?")
                .with_help("add service = \"package.Service\" to the target"),
                Some(&at),
            );
            continue;
        };
        let mut method_eff = eff.clone();
        method_eff.overlay(&method.layer);
        let name = MethodName {
            service: Cow::Owned(service.clone()),
            method: Some(Cow::Owned(method.name.clone())),
        };
        method_configs.push(method_config(r, &method_eff, name));
    }
    Some(ServiceConfig {
        method_configs: Cow::Owned(method_configs.into_iter().collect::<Option<Vec<_>>>()?),
        retry_throttling: value(&eff.retry_throttling),
        connection_scaling: None,
    })
}

/// Call settings above a raw `service_config` (a profile's, an attribute's) would be
/// dropped: an error at each, as for the target's own table.
fn reject_call_policy_over_raw(r: &mut Resolver<'_>, layer: &Layer) {
    let written = [
        ("timeout", origin(&layer.timeout)),
        ("wait_for_ready", origin(&layer.wait_for_ready)),
        ("retry", origin(&layer.policy)),
        ("retry", origin(&layer.retry_max_attempts)),
        ("retry", origin(&layer.retry_codes)),
        ("hedging", origin(&layer.hedging_max_attempts)),
        ("retry_throttling", origin(&layer.retry_throttling)),
    ];
    for (key, at) in written {
        if let Some(at) = at.filter(|o| o.is_written()).cloned() {
            r.error(
                Diagnostic::error(format!(
                    "target `{}` has a raw `service_config`, which `{key}` here would not change",
                    r.target_name
                ))
                .with_label("ignored under a raw service config")
                .with_help(format!(
                    "`service_config` replaces every call policy: put `{key}` in the JSON, or drop `service_config`"
                )),
                Some(&at),
            );
        }
    }
}

/// A raw `service_config` replaces every call policy, so call settings of `[defaults]`
/// do not reach the target: say so rather than drop them silently.
fn warn_ignored_defaults(r: &mut Resolver<'_>, defaults: &Layer, raw: &Origin) {
    let written = [
        ("timeout", origin(&defaults.timeout)),
        ("wait_for_ready", origin(&defaults.wait_for_ready)),
        ("retry", origin(&defaults.policy)),
        ("retry_throttling", origin(&defaults.retry_throttling)),
    ];
    for (key, at) in written {
        if at.is_some_and(Origin::is_written) {
            r.warn(
                Diagnostic::warning(format!(
                    "target `{}` ignores `{key}` of [defaults]",
                    r.target_name
                ))
                .with_label("this raw service config replaces every call policy")
                .with_help(format!("put `{key}` in the JSON if the target needs it")),
                Some(raw),
            );
        }
    }
}

fn method_config(r: &mut Resolver<'_>, eff: &Layer, name: MethodName) -> Option<MethodConfig> {
    let policy = match value(&eff.policy) {
        PolicyKind::Off | PolicyKind::NotHedging => None,
        PolicyKind::Retry => {
            let codes = value(&eff.retry_codes);
            // Warned once where the codes are written (the reader drops repeats), for
            // every layer a user writes: [defaults], target or method.
            if let Some(written) = eff.retry_codes.as_ref().filter(|c| c.origin.is_written())
                && let Some(risky) = codes
                    .iter()
                    .find(|c| matches!(c, Code::DeadlineExceeded | Code::Aborted))
            {
                let at = written.origin.clone();
                r.warn(
                    Diagnostic::warning(format!("retrying {risky} can run a call twice"))
                        .with_label("the failed attempt may have run on the server")
                        .with_help("retry DEADLINE_EXCEEDED and ABORTED only for idempotent methods; set retry = false on the others"),
                    Some(&at),
                );
            }
            Some(CallPolicy::Retry(RetryPolicy {
                max_attempts: value(&eff.retry_max_attempts),
                initial_backoff: value(&eff.retry_initial_backoff),
                max_backoff: value(&eff.retry_max_backoff),
                backoff_multiplier: value(&eff.retry_backoff_multiplier),
                retryable_status_codes: Cow::Owned(codes),
            }))
        }
        PolicyKind::Hedging => match &eff.hedging_max_attempts {
            Some(attempts) => Some(CallPolicy::Hedging(HedgingPolicy {
                max_attempts: attempts.value,
                hedging_delay: value(&eff.hedging_delay),
                non_fatal_status_codes: Cow::Owned(value(&eff.hedging_codes)),
            })),
            None => {
                r.error(
                    Diagnostic::error(format!(
                        "hedging of `{}` has no `max_attempts`",
                        name.path()
                    ))
                    .with_help("add max_attempts = 2..=5 to the hedging table"),
                    origin(&eff.policy),
                );
                return None;
            }
        },
    };
    Some(MethodConfig {
        names: Cow::Owned(vec![name]),
        timeout: value(&eff.timeout),
        wait_for_ready: value(&eff.wait_for_ready).then_some(true),
        policy,
    })
}

fn provenance(eff: &Layer, target: &TargetTable) -> Vec<Setting> {
    let policy = eff.policy.as_ref().map(|p| p.value);
    let keepalive_on = eff.keepalive_enabled.as_ref().is_some_and(|k| k.value);
    let raw_service_config = target.layer.service_config.is_some();
    let shown = |key: &str| {
        let call_policy_key =
            key.starts_with("retry.") || key.starts_with("hedging.") || key == "policy";
        if raw_service_config
            && (call_policy_key || matches!(key, "timeout" | "wait_for_ready" | "retry_throttling"))
        {
            return false;
        }
        if key.starts_with("retry.") {
            return policy == Some(PolicyKind::Retry);
        }
        if key.starts_with("hedging.") {
            return policy == Some(PolicyKind::Hedging);
        }
        if key.starts_with("keepalive.") {
            return keepalive_on;
        }
        key != "pool"
    };
    let mut settings: Vec<Setting> = eff
        .settings("")
        .into_iter()
        .filter(|s| shown(&s.key))
        .collect();
    for method in &target.methods {
        settings.extend(method.layer.settings(&format!("methods.{}.", method.name)));
    }
    settings
}
