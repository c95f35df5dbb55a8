//! `ephemos render`: a target's baked service config and dial settings.

use std::path::Path;

use ephemos_config::diagnostic::render as render_diagnostic;
use serde_json::json;

use crate::{Format, json};

/// The text to print for TARGET of `file`.
pub(crate) fn run(
    file: &Path,
    target: &str,
    profile: Option<&str>,
    format: Format,
    color: bool,
) -> Result<String, String> {
    let checked = crate::load(file)?;
    if checked.diagnostics.has_errors() {
        for diagnostic in checked.diagnostics.errors() {
            eprintln!("{}\n", render_diagnostic(diagnostic, color));
        }
        return Err(format!(
            "{} has errors; `ephemos check {}` lists them",
            file.display(),
            file.display()
        ));
    }
    let Some(resolved) = checked.target(target) else {
        let names: Vec<&str> = checked.target_names().collect();
        return Err(format!(
            "no target `{target}` in {}; the targets are: {}",
            file.display(),
            names.join(", ")
        ));
    };
    let names: Vec<&str> = resolved
        .profiles
        .iter()
        .filter_map(|p| p.profile.as_deref())
        .collect();
    let resolved = match profile {
        None => resolved,
        Some(name) => resolved.profile(name).ok_or_else(|| {
            if names.is_empty() {
                format!("no profile `{name}`: {} declares none", file.display())
            } else {
                format!(
                    "no profile `{name}`; the profiles are: {}",
                    names.join(", ")
                )
            }
        })?,
    };
    let heading = match profile {
        Some(p) => format!("`{target}` in profile `{p}`"),
        None => format!("`{target}`"),
    };
    let others = match (profile, names.is_empty()) {
        (None, false) => format!(
            "\n# profiles (render with --profile NAME): {}\n",
            names.join(", ")
        ),
        _ => String::new(),
    };
    Ok(match format {
        Format::Json => format!(
            "{}\n",
            json!({
                "target": target,
                "profile": profile,
                "service_config": json::service_config(resolved),
                "dial": json::dial(resolved),
            })
        ),
        Format::Text => {
            let dial = serde_json::to_string_pretty(&json::dial(resolved)).unwrap_or_default();
            format!(
                "# service config of {heading}, as baked into its clients\n{}\n\n# dial settings of {heading}\n{dial}\n{others}",
                resolved.config.service_config.to_json()
            )
        }
    })
}
