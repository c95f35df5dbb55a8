//! From the attribute and the struct to the generated code.

use std::path::{Path, PathBuf};

use ephemos_config::codegen::ToRust;
use ephemos_config::model::Profile;
use ephemos_config::{ClientProblem, ClientRequest, SourceFile, resolve_client};
use proc_macro2::{Span, TokenStream};
use syn::ItemStruct;

use crate::arguments::{Arguments, parse};
use crate::{emit, shape};

/// Where `connections.toml` is: `config = "..."`, else `EPHEMOS_CONFIG`, else
/// `connections.toml`; each relative to the crate's root, or failing that to the
/// directory of the file that uses the attribute. Always absolute: the path goes into
/// `include_bytes!`, which would read a relative one from the using file's directory.
fn config_path(arguments: &Arguments) -> PathBuf {
    let name = match (&arguments.config, std::env::var_os("EPHEMOS_CONFIG")) {
        (Some((path, _)), _) => PathBuf::from(path),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => PathBuf::from("connections.toml"),
    };
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let from_crate = absolute(&manifest.join(&name));
    if from_crate.exists() {
        return from_crate;
    }
    match using_file().as_deref().and_then(Path::parent) {
        Some(dir) if dir.join(&name).exists() => dir.join(&name),
        _ => from_crate,
    }
}

/// The file that uses the attribute, absolute. rustc names it relative to its own
/// working directory (in a cargo build the workspace's root: `src/lib.rs`,
/// `member/src/lib.rs`), and the macro runs in rustc's process, so that directory is
/// the macro's too.
fn using_file() -> Option<PathBuf> {
    proc_macro::Span::call_site()
        .local_file()
        .map(|file| absolute(&file))
}

/// `path` made absolute against the working directory (unchanged if it cannot be).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A file's diagnostic in one message: `file:line:column: what (help: how)`.
fn one_line(diagnostic: &ephemos_config::Diagnostic) -> String {
    let place = diagnostic
        .span
        .as_ref()
        .map(|s| format!("{s}: "))
        .unwrap_or_default();
    let label = diagnostic
        .label
        .as_deref()
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    let help = diagnostic
        .help
        .as_deref()
        .map(|h| format!("\n  help: {h}"))
        .unwrap_or_default();
    format!("{place}{}{label}{help}", diagnostic.message)
}

fn error(span: Span, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, message)
}

/// All the errors as one, or `None` when there are none.
pub(crate) fn combine(errors: Vec<syn::Error>) -> Option<syn::Error> {
    let mut iter = errors.into_iter();
    let mut first = iter.next()?;
    for e in iter {
        first.combine(e);
    }
    Some(first)
}

pub(crate) fn expand(attribute: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: ItemStruct = syn::parse2(item).map_err(|e| {
        error(
            e.span(),
            "#[ephemos::client] goes on a newtype over a tonic client: `pub struct Payments(PaymentsClient<ephemos::Channel>);`",
        )
    })?;
    let arguments = parse(attribute);
    let shape = shape::check(&item);
    let (arguments, shape) = match (arguments, shape) {
        (Ok(a), Ok(s)) => (a, s),
        (a, s) => {
            let errors = [a.err(), s.err()].into_iter().flatten().collect();
            return Err(
                combine(errors).unwrap_or_else(|| error(item.ident.span(), "invalid client"))
            );
        }
    };
    let attribute_span = Span::call_site();
    let path = config_path(&arguments);
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => Some(SourceFile::new(path.display().to_string(), text)),
        Err(e) if arguments.target.is_some() || arguments.config.is_some() => {
            let span = arguments
                .config
                .as_ref()
                .or(arguments.target.as_ref())
                .map_or(attribute_span, |(_, s)| *s);
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            return Err(error(
                span,
                format!(
                    "cannot read `{name}` next to Cargo.toml or next to this file: {e}\n  \
                     help: set `config = \"path/to/connections.toml\"` (relative to the crate) or EPHEMOS_CONFIG"
                ),
            ));
        }
        Err(_) => None,
    };
    let name = item.ident.to_string();
    let request = ClientRequest {
        name: &name,
        file: file.clone(),
        target: arguments.target.as_ref().map(|(t, _)| t.as_str()),
        arguments: &arguments.settings,
    };
    // A target implied by the struct's name is reported on the name.
    let target_span = arguments
        .target
        .as_ref()
        .map_or(item.ident.span(), |(_, s)| *s);
    let resolved = resolve_client(&request).map_err(|problems| {
        let errors = problems
            .into_iter()
            .map(|problem| match problem {
                ClientProblem::Argument { index, diagnostic } => {
                    let span = arguments
                        .setting_spans
                        .get(index)
                        .copied()
                        .unwrap_or(attribute_span);
                    let mut message = diagnostic
                        .label
                        .clone()
                        .unwrap_or_else(|| diagnostic.message.clone());
                    if diagnostic.label.is_some() {
                        message = format!("{}: {message}", diagnostic.message);
                    }
                    if let Some(help) = &diagnostic.help {
                        message = format!("{message}\n  help: {help}");
                    }
                    error(span, message)
                }
                ClientProblem::File(diagnostic) => error(attribute_span, one_line(&diagnostic)),
                ClientProblem::UnknownTarget { message } => error(target_span, message),
                ClientProblem::Attribute(message) => error(attribute_span, message),
            })
            .collect();
        combine(errors).unwrap_or_else(|| error(attribute_span, "invalid client"))
    })?;
    let parse = |rust: String| -> syn::Result<syn::Expr> {
        syn::parse_str(&rust).map_err(|e| {
            error(
                attribute_span,
                format!("internal: generated configuration does not parse: {e}"),
            )
        })
    };
    let baked = emit::Baked {
        config: parse(resolved.config.to_rust())?,
        profiles: resolved
            .profiles
            .iter()
            .map(|p| {
                let profile = Profile {
                    name: p.profile.clone().unwrap_or_default().into(),
                    config: p.config.clone(),
                };
                parse(profile.to_rust())
            })
            .collect::<syn::Result<_>>()?,
        resolved: &resolved,
        config_file: file.map(|_| path.display().to_string()),
        interceptors: arguments.interceptors.clone(),
        propagate_identity: arguments.propagate_identity,
    };
    Ok(emit::client(&item, &shape, &baked))
}
