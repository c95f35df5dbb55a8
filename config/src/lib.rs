//! # ephemos-config
//!
//! The model of an ephemos client's connection settings, and everything that turns a
//! `connections.toml` into it: the schema, the three presets, validation with
//! compile-grade diagnostics, provenance, and the gRPC service config.
//!
//! ## Where it sits
//!
//! ```text
//! ephemos-config  <-  ephemos-build (build.rs), ephemos-macros (#[ephemos::client]),
//!                     ephemos (runtime), ephemos-cli (`ephemos check` / `render`)
//! ```
//!
//! It has no tokio and no tonic: the build script and the proc-macro link it at compile
//! time, and the runtime uses its types (all constructible in a `const`, so a client's
//! resolved settings are baked into the binary and nothing is parsed at run time).
//!
//! ## Resolution
//!
//! Each setting is taken from the highest layer that sets it:
//! built-in default < preset < `[defaults]` < `[targets.NAME]` < attribute argument.
//! A method table (`[targets.NAME.methods.M]`) is one more layer for that method's calls.
//! Every resolved value keeps its [`Origin`](provenance::Origin).
//!
//! ## Diagnostics
//!
//! Every problem of a file is reported at once, each with `file:line:column`, the source
//! line with a caret, and a hint ([`diagnostic::render`]). Warnings are kept apart from
//! errors.
//!
//! ```
//! let checked = ephemos_config::check_str("connections.toml", r#"
//! [targets.payments]
//! address = "payments.internal:8443"
//! server_id = "spiffe://example.org/payments"
//! preset = "high_throughput"
//! "#);
//! assert!(!checked.diagnostics.has_errors());
//! let payments = checked.target("payments").unwrap();
//! assert_eq!(payments.config.pool.size, 10);
//! ```
//!
//! ## The file format
//!
//! This is `reference.toml`, which uses every key; a test parses it so it cannot drift.
//!
//! ```toml
#![doc = include_str!("../reference.toml")]
//! ```

mod client;
pub mod codegen;
pub mod diagnostic;
mod file;
pub mod in_force;
mod layer;
pub mod model;
pub mod naming;
pub mod preset;
pub mod provenance;
mod resolve;
pub mod rules;
pub mod service_config;
pub mod value;

pub use client::{
    ArgumentValue, ClientArgument, ClientProblem, ClientRequest, argument_key, resolve_client,
};
pub use diagnostic::{Diagnostic, Diagnostics, Severity, SourceFile};
pub use model::TargetConfig;
pub use naming::implied_target;
pub use preset::Preset;
pub use resolve::ResolvedTarget;
pub use service_config::ServiceConfig;

use std::path::Path;
use std::sync::Arc;

use file::{ConnectionsFile, Reader};

/// The result of checking a `connections.toml`: every diagnostic, and each target that
/// resolved without errors.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The file that was checked.
    pub source: Arc<SourceFile>,
    /// Targets in file order; a target with errors is left out.
    pub targets: Vec<ResolvedTarget>,
    /// Errors and warnings, errors first, each in file order.
    pub diagnostics: Diagnostics,
}

impl Checked {
    /// A resolved target by name.
    pub fn target(&self, name: &str) -> Option<&ResolvedTarget> {
        self.targets.iter().find(|t| t.config.name == name)
    }

    /// The names of the resolved targets, in file order.
    pub fn target_names(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| &*t.config.name)
    }
}

/// Checks a `connections.toml` given as text; `name` is what messages call the file.
pub fn check_str(name: impl Into<String>, text: impl Into<String>) -> Checked {
    let mut reader = Reader::new(SourceFile::new(name, text));
    let file = ConnectionsFile::read(&mut reader);
    let targets = file
        .targets
        .iter()
        .filter(|target| !target.has_errors && !file.has_shared_errors)
        .filter_map(|target| resolve::resolve_with_profiles(&file, target, None, &mut reader))
        .collect();
    let mut diagnostics = reader.diagnostics;
    diagnostics.sort();
    Checked {
        source: reader.file,
        targets,
        diagnostics,
    }
}

/// Reads and checks a `connections.toml` file; messages name it as `path` is written.
pub fn check_file(path: impl AsRef<Path>) -> std::io::Result<Checked> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)?;
    Ok(check_str(path.display().to_string(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reference.toml` must stay complete: every setting of the model is written in it
    /// at least once (in a target, `[defaults]`, or a method table).
    #[test]
    fn reference_toml_is_valid_and_uses_every_setting() {
        let checked = check_str("reference.toml", include_str!("../reference.toml"));
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
        let written: Vec<String> = checked
            .targets
            .iter()
            .flat_map(|t| &t.provenance)
            .filter(|s| s.origin.is_written())
            .map(|s| match s.key.strip_prefix("methods.") {
                Some(rest) => rest.split_once('.').map_or(rest, |(_, key)| key).to_owned(),
                None => s.key.clone(),
            })
            .collect();
        // `pool` (on/off) is implied by the pool table; `policy` by a retry or hedging table.
        for key in layer::Layer::KEYS.iter().filter(|k| **k != "pool") {
            assert!(
                written.iter().any(|w| w == key),
                "reference.toml never sets `{key}`"
            );
        }
    }
}
