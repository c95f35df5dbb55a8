//! `ephemos render`: a target's baked service config and dial settings.

use std::path::Path;

use ephemos_config::diagnostic::render as render_diagnostic;
use serde_json::json;

use crate::{Format, json};

/// The text to print for TARGET of `file`.
pub(crate) fn run(
    file: &Path,
    target: &str,
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
    Ok(match format {
        Format::Json => format!(
            "{}\n",
            json!({
                "target": target,
                "service_config": json::service_config(resolved),
                "dial": json::dial(resolved),
            })
        ),
        Format::Text => {
            let dial = serde_json::to_string_pretty(&json::dial(resolved)).unwrap_or_default();
            format!(
                "# service config of `{target}`, as baked into its clients\n{}\n\n# dial settings of `{target}`\n{dial}\n",
                resolved.config.service_config.to_json()
            )
        }
    })
}
