//! Resolving the configuration of one `#[ephemos::client(...)]`: a target of
//! `connections.toml` (or an inline address), with the attribute's arguments as the top
//! layer. The attribute's arguments are read by the same code as the file: each becomes
//! one line of TOML (`pool_size = 4` is `pool.size = 4`), so every rule and message is
//! the same, and each problem is traced back to the argument it came from.

use std::sync::Arc;

use toml::de::DeTable;

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::file::{
    ConnectionsFile, Reader, Table, TargetTable, read_call_settings, read_connection_settings,
    read_endpoints,
};
use crate::layer::Layer;
use crate::naming::implied_target;
use crate::provenance::Origin;
use crate::resolve::{ResolvedTarget, resolve_with_profiles};

/// The name of the source an attribute's arguments are read from.
const ATTRIBUTE_SOURCE: &str = "#[ephemos::client]";

/// Tables of the model whose keys an argument names as `TABLE_KEY` (`pool_size`).
const TABLES: [&str; 10] = [
    "retry_throttling",
    "retry",
    "max_message_size",
    "health_check",
    "keepalive",
    "backoff",
    "hedging",
    "identity",
    "http2",
    "pool",
];

/// An argument's value, as the attribute wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgumentValue {
    /// A string literal.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// One `key = value` argument of the attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientArgument {
    /// The key as written (`connect_timeout`, `pool_size`).
    pub key: String,
    /// The value.
    pub value: ArgumentValue,
}

/// What a client's configuration is resolved from.
#[derive(Debug, Clone)]
pub struct ClientRequest<'a> {
    /// The client's type name (names an inline target).
    pub name: &'a str,
    /// The `connections.toml` in effect, if any.
    pub file: Option<SourceFile>,
    /// `target = "..."`: the target of the file. Without it, a client with an `address`
    /// (or `endpoints`) argument is inline; any other is the target named by its type
    /// name in snake case ([`implied_target`](crate::implied_target)).
    pub target: Option<&'a str>,
    /// The setting arguments (not `target` or `config`), in order.
    pub arguments: &'a [ClientArgument],
}

/// A problem, traced to where the macro should report it.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientProblem {
    /// About the argument at this index.
    Argument {
        /// Index into [`ClientRequest::arguments`].
        index: usize,
        /// The diagnostic (its place is in the arguments, not in a file).
        diagnostic: Diagnostic,
    },
    /// In `connections.toml` (its diagnostic has the file's place).
    File(Diagnostic),
    /// `target` names no target of the file.
    UnknownTarget {
        /// What to say.
        message: String,
    },
    /// About the attribute as a whole.
    Attribute(String),
}

/// The TOML key an argument stands for: `pool_size` is `pool.size`.
pub fn argument_key(key: &str) -> String {
    TABLES
        .iter()
        .find_map(|table| {
            let rest = key.strip_prefix(table)?.strip_prefix('_')?;
            Some(format!("{table}.{rest}"))
        })
        .unwrap_or_else(|| key.to_owned())
}

fn toml_value(value: &ArgumentValue) -> String {
    match value {
        // JSON string escapes are TOML basic-string escapes.
        ArgumentValue::Str(s) => serde_json::to_string(s).unwrap_or_default(),
        ArgumentValue::Int(n) => n.to_string(),
        ArgumentValue::Float(f) => format!("{f:?}"),
        ArgumentValue::Bool(b) => b.to_string(),
    }
}

/// "no target `payments` in connections.toml ...": the file's targets and the nearest;
/// for a target implied by the type's name, how it was implied and the other ways out.
fn unknown_target_message(
    name: &str,
    implied_by: Option<&str>,
    file: &ConnectionsFile,
    file_name: &str,
) -> String {
    let names: Vec<&str> = file.targets.iter().map(|t| t.name.as_str()).collect();
    let mut message = match implied_by {
        Some(type_name) => format!(
            "no target `{name}` in {file_name} (the target of `{type_name}` is its name in snake case)"
        ),
        None => format!("no target `{name}` in {file_name}"),
    };
    if names.is_empty() {
        message.push_str("; it declares no target");
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        message.push_str(&format!("; its targets: {}", list.join(", ")));
        if let Some(near) = crate::diagnostic::did_you_mean(name, names.iter().copied()) {
            message.push_str(&format!("\n  help: did you mean `{near}`?"));
        }
    }
    if implied_by.is_some() {
        message.push_str(&format!(
            "\n  help: add [targets.{name}] to {file_name}, name one with `target = \"...\"`, or give an `address` for a client without a file entry"
        ));
    }
    message
}

/// Resolves a client's configuration; every problem at once.
pub fn resolve_client(request: &ClientRequest<'_>) -> Result<ResolvedTarget, Vec<ClientProblem>> {
    let text: String = request
        .arguments
        .iter()
        .map(|a| format!("{} = {}\n", argument_key(&a.key), toml_value(&a.value)))
        .collect();
    let mut attribute = Reader::new(SourceFile::new(ATTRIBUTE_SOURCE, text));
    let attribute_file = attribute.file.clone();
    let (document, syntax) = DeTable::parse_recoverable(attribute_file.text());
    for error in syntax {
        attribute.push(
            Diagnostic::error("invalid argument").with_label(error.message().trim().to_owned()),
            error.span().unwrap_or(0..0),
        );
    }
    let mut table = Table::new(document.get_ref(), "");
    let mut layer = Layer::default();
    read_connection_settings(&mut table, &mut attribute, &mut layer);
    read_call_settings(&mut table, &mut attribute, &mut layer);
    let inline_address = request
        .arguments
        .iter()
        .any(|a| a.key == "address" || a.key == "endpoints");
    let target_name: Option<String> = match request.target {
        Some(name) => Some(name.to_owned()),
        None if inline_address => None,
        None => Some(implied_target(request.name)),
    };
    let inline = target_name.is_none();
    if let Some(f) = table.get("service") {
        layer.service = attribute.parsed(&f, "\"package.Service\"", |s| Ok(s.to_owned()));
    }
    if inline {
        read_endpoints(&mut table, &mut attribute, &mut layer, Some(0..0));
    } else {
        // A target's address is in connections.toml; a second one here would be a
        // second source of truth (to dial elsewhere at run time, use `builder()`).
        for key in ["address", "endpoints"] {
            if let Some(f) = table.get(key) {
                attribute.push(
                    Diagnostic::error(format!("`{key}` conflicts with `target`"))
                        .with_label("the target's address is in connections.toml")
                        .with_help("remove it, or drop `target` for an inline client; to dial elsewhere at run time, use `builder().endpoints(..)`"),
                    f.span(),
                );
            }
        }
    }
    table.finish(&mut attribute);

    let mut file_reader = Reader::new(
        request
            .file
            .clone()
            .unwrap_or_else(|| SourceFile::new("(no connections.toml)", "")),
    );
    let file = ConnectionsFile::read(&mut file_reader);
    let mut problems = Vec::new();
    let (target, top) = match target_name.as_deref() {
        Some(name) => match file.targets.iter().find(|t| t.name == name) {
            Some(target) => (Some(target.clone()), Some(layer)),
            None => {
                problems.push(ClientProblem::UnknownTarget {
                    message: unknown_target_message(
                        name,
                        request.target.is_none().then_some(request.name),
                        &file,
                        file_reader.file.name(),
                    ),
                });
                (None, None)
            }
        },
        None => (
            Some(TargetTable {
                name: request.name.to_owned(),
                span: 0..0,
                layer,
                methods: Vec::new(),
                profiles: Vec::new(),
                has_errors: false,
            }),
            None,
        ),
    };
    let resolved = if attribute.diagnostics.has_errors() || file_reader.diagnostics.has_errors() {
        None
    } else {
        target.and_then(|target| {
            // Problems of the resolution land in the file's reader, placed in the file
            // or in the arguments.
            resolve_with_profiles(&file, &target, top.as_ref(), &mut file_reader)
        })
    };
    let all = attribute
        .diagnostics
        .into_iter()
        .chain(file_reader.diagnostics);
    for diagnostic in all.filter(|d| d.is_error()) {
        problems.push(match &diagnostic.span {
            // About the client as a whole (an inline client without an address, say).
            Some(span)
                if span.range.is_empty()
                    && (inline || Arc::ptr_eq(&span.file, &attribute_file)) =>
            {
                let help = diagnostic
                    .help
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                ClientProblem::Attribute(format!("{}{help}", diagnostic.message))
            }
            Some(span) if Arc::ptr_eq(&span.file, &attribute_file) => ClientProblem::Argument {
                index: span.start().line.saturating_sub(1),
                diagnostic,
            },
            _ => ClientProblem::File(diagnostic),
        });
    }
    match resolved {
        Some(mut resolved) if problems.is_empty() => {
            for setting in &mut resolved.provenance {
                if matches!(&setting.origin, Origin::File(span) if Arc::ptr_eq(&span.file, &attribute_file))
                {
                    setting.origin = Origin::Attribute;
                }
            }
            Ok(resolved)
        }
        _ if problems.is_empty() => Err(vec![ClientProblem::Attribute(
            "the configuration did not resolve".to_owned(),
        )]),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;

    fn arg(key: &str, value: ArgumentValue) -> ClientArgument {
        ClientArgument {
            key: key.to_owned(),
            value,
        }
    }

    const FILE: &str = "[defaults]\ntrust_domain = \"example.org\"\n[targets.payments]\naddress = \"h:1\"\nconnect_timeout = \"10s\"\n";

    #[test]
    fn arguments_override_the_target_and_say_so() {
        let arguments = [
            arg("connect_timeout", ArgumentValue::Str("2s".into())),
            arg("pool_size", ArgumentValue::Int(4)),
        ];
        let resolved = resolve_client(&ClientRequest {
            name: "Payments",
            file: Some(SourceFile::new("connections.toml", FILE)),
            target: Some("payments"),
            arguments: &arguments,
        })
        .unwrap();
        assert_eq!(resolved.config.connection.connect_timeout.as_secs(), 2);
        assert_eq!(resolved.config.pool.size, 4);
        let origin = |key: &str| {
            resolved
                .provenance
                .iter()
                .find(|s| s.key == key)
                .unwrap()
                .origin
                .clone()
        };
        assert_eq!(origin("connect_timeout"), Origin::Attribute);
        assert_eq!(origin("pool.size"), Origin::Attribute);
        assert_eq!(origin("trust_domain").span().unwrap().start().line, 2);
    }

    #[test]
    fn inline_clients_need_no_file() {
        let arguments = [
            arg("address", ArgumentValue::Str("127.0.0.1:50051".into())),
            arg("preset", ArgumentValue::Str("development".into())),
            arg("identity", ArgumentValue::Str("dev".into())),
            arg("trust_domain", ArgumentValue::Str("example.org".into())),
        ];
        let resolved = resolve_client(&ClientRequest {
            name: "LocalEcho",
            file: None,
            target: None,
            arguments: &arguments,
        })
        .unwrap();
        assert_eq!(resolved.config.preset, Preset::Development);
        assert_eq!(resolved.config.name, "LocalEcho");
    }

    #[test]
    fn each_problem_points_at_its_argument_or_file() {
        let arguments = [
            arg("connect_timeout", ArgumentValue::Str("soon".into())),
            arg("retry_max_attempts", ArgumentValue::Int(9)),
            arg("conect_timeout", ArgumentValue::Str("1s".into())),
        ];
        let problems = resolve_client(&ClientRequest {
            name: "P",
            file: Some(SourceFile::new("connections.toml", FILE)),
            target: Some("payments"),
            arguments: &arguments,
        })
        .unwrap_err();
        let indices: Vec<usize> = problems
            .iter()
            .filter_map(|p| match p {
                ClientProblem::Argument { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(indices, [0, 1, 2], "{problems:#?}");

        let unknown = resolve_client(&ClientRequest {
            name: "P",
            file: Some(SourceFile::new("connections.toml", FILE)),
            target: Some("paymnts"),
            arguments: &[],
        })
        .unwrap_err();
        assert!(
            matches!(&unknown[0], ClientProblem::UnknownTarget { message } if message.contains("did you mean `payments`?")),
            "{unknown:?}"
        );

        let broken = resolve_client(&ClientRequest {
            name: "P",
            file: Some(SourceFile::new(
                "connections.toml",
                "[targets.payments]\naddress = 5\n",
            )),
            target: Some("payments"),
            arguments: &[],
        })
        .unwrap_err();
        assert!(
            matches!(&broken[0], ClientProblem::File(d) if d.span.as_ref().unwrap().start().line == 2),
            "{broken:?}"
        );
    }
}
