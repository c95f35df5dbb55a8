//! Reads `connections.toml` into layers of settings, one per table, every problem
//! reported with its `file:line:column`.

mod profiles;
mod settings;
mod table;

pub(crate) use table::{Reader, Table};

use std::ops::Range;

use toml::de::DeTable;

use crate::diagnostic::Diagnostic;
use crate::layer::Layer;
use crate::provenance::Sourced;
use crate::service_config::ServiceConfig;
use crate::value::{Address, InvalidValue};
pub(crate) use settings::{read_call_settings, read_connection_settings};
use table::Field;

/// A parsed `connections.toml`: the `[defaults]` layer and each target's layers.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionsFile {
    pub(crate) defaults: Layer,
    /// `[defaults.profiles.NAME]`: settings of every target in that profile.
    pub(crate) default_profiles: Vec<ProfileTable>,
    /// Whether the file has syntax errors or errors in `[defaults]`: then no target is
    /// resolved (each would repeat them).
    pub(crate) has_shared_errors: bool,
    pub(crate) targets: Vec<TargetTable>,
}

/// One `[targets.NAME]` table.
#[derive(Debug, Clone)]
pub(crate) struct TargetTable {
    pub(crate) name: String,
    /// The `[targets.NAME]` header (or inline table), for errors about the whole target.
    pub(crate) span: Range<usize>,
    pub(crate) layer: Layer,
    pub(crate) methods: Vec<MethodTable>,
    /// `[targets.NAME.profiles.PROFILE]` tables.
    pub(crate) profiles: Vec<ProfileTable>,
    /// Whether reading the table found errors: such a target is not resolved, so its
    /// errors are not followed by confusing ones about the values left in their place.
    pub(crate) has_errors: bool,
}

/// One `profiles.NAME` table, of `[defaults]` or of a target.
#[derive(Debug, Clone)]
pub(crate) struct ProfileTable {
    pub(crate) name: String,
    /// Where the profile's name is written.
    pub(crate) span: Range<usize>,
    pub(crate) layer: Layer,
}

impl ConnectionsFile {
    /// Every profile the file declares, in the order first written ([defaults] first).
    pub(crate) fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let all = self
            .default_profiles
            .iter()
            .chain(self.targets.iter().flat_map(|t| &t.profiles));
        for profile in all {
            if !names.contains(&profile.name) {
                names.push(profile.name.clone());
            }
        }
        names
    }
}

/// One `[targets.NAME.methods.METHOD]` table.
#[derive(Debug, Clone)]
pub(crate) struct MethodTable {
    pub(crate) name: String,
    pub(crate) span: Range<usize>,
    pub(crate) layer: Layer,
}

impl ConnectionsFile {
    /// Parses a whole file; syntax errors and schema errors all land in `reader`.
    pub(crate) fn read(reader: &mut Reader) -> ConnectionsFile {
        let file = reader.file.clone();
        let (document, syntax_errors) = DeTable::parse_recoverable(file.text());
        for error in syntax_errors {
            let range = error.span().unwrap_or(0..0);
            reader.push(
                Diagnostic::error("invalid TOML")
                    .with_label(error.message().trim().to_owned())
                    .with_help("see https://toml.io for the syntax"),
                range,
            );
        }
        let mut top = Table::new(document.get_ref(), "");
        // Syntax errors are not counted as shared: recovery keeps the rest of the file, so
        // the targets it reads are still checked.
        let errors_before_defaults = reader.diagnostics.errors().count();
        let mut defaults = Layer::default();
        let mut default_profiles = Vec::new();
        if let Some(f) = top.get("defaults")
            && let Some(mut t) = reader.table(&f, "a [defaults] table")
        {
            read_connection_settings(&mut t, reader, &mut defaults);
            read_call_settings(&mut t, reader, &mut defaults);
            if let Some(p) = t.get("profiles") {
                default_profiles = profiles::read_profiles(reader, &p, profiles::Owner::Defaults);
            }
            for key in [
                "service",
                "address",
                "endpoints",
                "methods",
                "service_config",
            ] {
                if let Some(misplaced) = t.get(key) {
                    reader.push(
                        Diagnostic::error(format!(
                            "`{key}` belongs to a target, not to [defaults]"
                        ))
                        .with_help("move it under [targets.NAME]"),
                        misplaced.value.span(),
                    );
                }
            }
            t.finish(reader);
        }
        let has_shared_errors = reader.diagnostics.errors().count() > errors_before_defaults;
        let mut targets = Vec::new();
        if let Some(f) = top.get("targets")
            && let Some(t) = reader.table(&f, "[targets.NAME] tables")
        {
            for (name, value) in t.entries.iter() {
                let field = Field {
                    path: t.child_path(name.get_ref()),
                    key: "targets",
                    value,
                };
                let errors_before = reader.diagnostics.errors().count();
                if let Some(mut target) = read_target(reader, name.get_ref(), name.span(), &field) {
                    target.has_errors = reader.diagnostics.errors().count() > errors_before;
                    targets.push(target);
                }
            }
        }
        top.finish(reader);
        if targets.is_empty() && !reader.diagnostics.has_errors() {
            reader.push(
                Diagnostic::warning("no targets are declared")
                    .with_help("add a [targets.NAME] table with an `address`"),
                0..0,
            );
        }
        ConnectionsFile {
            defaults,
            default_profiles,
            has_shared_errors,
            targets,
        }
    }
}

/// A proto identifier: a letter or `_`, then letters, digits and `_`.
fn check_identifier(name: &str, what: &str) -> Result<(), InvalidValue> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(InvalidValue::new(
            format!("`{name}` is not a valid {what}"),
            format!("a {what} starts with a letter and has only letters, digits and `_`"),
        ))
    }
}

/// Rust's keywords (strict and reserved, all editions): a target name becomes an
/// identifier in generated code, so it cannot be one of these.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "abstract", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

fn check_target_name(name: &str) -> Result<(), InvalidValue> {
    check_identifier(name, "target name")?;
    if name == "_" || RUST_KEYWORDS.contains(&name) {
        return Err(InvalidValue::new(
            format!("`{name}` is a Rust keyword"),
            "choose another name",
        ));
    }
    Ok(())
}

fn read_target(
    reader: &mut Reader,
    name: &str,
    name_span: Range<usize>,
    field: &Field<'_, '_>,
) -> Option<TargetTable> {
    if let Err(e) = check_target_name(name) {
        reader.push(
            Diagnostic::error(format!("invalid target name `{name}`"))
                .with_label(e.problem)
                .with_help("target names become Rust identifiers: use letters, digits and `_`"),
            name_span.clone(),
        );
    }
    let mut t = reader.table(field, "a [targets.NAME] table")?;
    let mut layer = Layer::default();
    if let Some(f) = t.get("service") {
        layer.service = reader.parsed(&f, "\"payments.v1.Payments\"", |s| {
            s.split('.')
                .try_for_each(|part| check_identifier(part, "proto name"))
                .map(|()| s.to_owned())
                .map_err(|e| {
                    InvalidValue::new(
                        e.problem,
                        "write the fully qualified service name, e.g. \"payments.v1.Payments\"",
                    )
                })
        });
    }
    read_endpoints(&mut t, reader, &mut layer, Some(name_span.clone()));
    read_connection_settings(&mut t, reader, &mut layer);
    read_call_settings(&mut t, reader, &mut layer);
    let mut methods = Vec::new();
    if let Some(f) = t.get("methods")
        && let Some(mt) = reader.table(&f, "[targets.NAME.methods.METHOD] tables")
    {
        for (method, value) in mt.entries.iter() {
            let method_field = Field {
                path: mt.child_path(method.get_ref()),
                key: "methods",
                value,
            };
            if let Err(e) = check_identifier(method.get_ref(), "method name") {
                reader.push(
                    Diagnostic::error(format!("invalid method name in `{}`", mt.path))
                        .with_label(e.problem)
                        .with_help("write the method's name as in the proto, e.g. `GetBalance`"),
                    method.span(),
                );
            }
            let Some(mut m) = reader.table(&method_field, "{ timeout = \"2s\", retry = false }")
            else {
                continue;
            };
            let mut method_layer = Layer::default();
            read_call_settings(&mut m, reader, &mut method_layer);
            settings::reject_target_keys(&mut m, reader);
            m.finish(reader);
            methods.push(MethodTable {
                name: method.get_ref().to_string(),
                span: method.span(),
                layer: method_layer,
            });
        }
    }
    if let Some(f) = t.get("service_config") {
        read_raw_service_config(reader, &f, &mut layer, &t, !methods.is_empty());
    }
    let profiles = match t.get("profiles") {
        Some(f) => profiles::read_profiles(reader, &f, profiles::Owner::Target),
        None => Vec::new(),
    };
    t.finish(reader);
    Some(TargetTable {
        name: name.to_owned(),
        span: name_span,
        layer,
        methods,
        profiles,
        has_errors: false,
    })
}

/// `address` or `endpoints`; with `required` (the span of what needs one), one of them
/// must be written.
pub(crate) fn read_endpoints(
    t: &mut Table<'_, '_>,
    reader: &mut Reader,
    layer: &mut Layer,
    required: Option<Range<usize>>,
) {
    let address = t.get("address");
    let endpoints = t.get("endpoints");
    // Both are checked even when both are written, so neither hides the other's errors.
    let from_address = address.as_ref().and_then(|a| {
        reader
            .parsed(a, "\"payments.internal:8443\"", Address::parse)
            .map(|s| Sourced::new(vec![s.value], s.origin))
    });
    let from_endpoints = endpoints.as_ref().and_then(|e| {
        let example = "[\"10.0.0.1:8443\", \"10.0.0.2:8443\"]";
        reader.list(e, "an array of addresses", example, false, |r, item| {
            r.parsed(item, "\"10.0.0.1:8443\"", Address::parse)
                .map(|a| a.value)
        })
    });
    match (&address, &endpoints) {
        (Some(_), Some(e)) => reader.push(
            Diagnostic::error(format!("{} has both `address` and `endpoints`", t.name()))
                .with_help("use `address` for one server or `endpoints` for several, not both"),
            e.span(),
        ),
        (None, None) => {
            if let Some(target_span) = required {
                reader.push(
                    Diagnostic::error(format!("{} has no `address`", t.name()))
                        .with_label("this target")
                        .with_help("add address = \"host:port\" (or endpoints = [...])"),
                    target_span,
                );
            }
        }
        _ => layer.endpoints = from_address.or(from_endpoints),
    }
}

/// `service_config = '''{...}'''`: grpc JSON, validated like any other value. It replaces
/// the policies the target would otherwise get, so it cannot be mixed with them.
fn read_raw_service_config(
    reader: &mut Reader,
    f: &Field<'_, '_>,
    layer: &mut Layer,
    target: &Table<'_, '_>,
    has_methods: bool,
) {
    let Some(json) = reader.string(f, "'''{\"methodConfig\": [...]}'''") else {
        return;
    };
    let mut conflicts = false;
    for key in [
        "retry",
        "hedging",
        "retry_throttling",
        "timeout",
        "wait_for_ready",
        "methods",
    ] {
        let written = if key == "methods" {
            has_methods
        } else {
            target.entries.contains_key(key)
        };
        if written {
            reader.push(
                Diagnostic::error(format!("`{}` has both `service_config` and `{key}`", target.path))
                    .with_label("raw service config here")
                    .with_help(format!("`service_config` replaces every call policy: put `{key}` in the JSON, or drop `service_config`")),
                f.span(),
            );
            conflicts = true;
        }
    }
    // The JSON is checked even when it conflicts, so its own errors show too.
    match ServiceConfig::parse_json(json) {
        Ok(_) if conflicts => {}
        Ok(config) => layer.service_config = Some(reader.sourced(config, f)),
        Err(problems) => {
            let map = json_offset_map(reader.file.text(), f.span(), json);
            for p in problems {
                let range = match map {
                    Some(start) => start + p.range.start..start + p.range.end,
                    None => f.span(),
                };
                reader.push(
                    Diagnostic::error(format!("invalid `{}`", f.path))
                        .with_label(p.problem)
                        .with_help(p.help),
                    range,
                );
            }
        }
    }
}

/// Where the JSON text starts in the file, when the TOML string holds it verbatim
/// (literal strings, or basic strings without escapes); else errors point at the string.
fn json_offset_map(source: &str, span: Range<usize>, json: &str) -> Option<usize> {
    let raw = source.get(span.clone())?;
    for quote in ["'''", "\"\"\"", "'", "\""] {
        if let Some(inner) = raw.strip_prefix(quote).and_then(|s| s.strip_suffix(quote)) {
            let (skip, inner) = match inner
                .strip_prefix("\r\n")
                .or_else(|| inner.strip_prefix('\n'))
            {
                Some(rest) if quote.len() == 3 => (inner.len() - rest.len(), rest),
                _ => (0, inner),
            };
            return (inner == json).then_some(span.start + quote.len() + skip);
        }
    }
    None
}
