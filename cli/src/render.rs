//! `ephemos render`: a target's baked service config and dial settings.

use std::path::Path;

use serde_json::json;

use crate::{Format, json};

/// The text to print for TARGET of `file`.
pub(crate) fn run(
    file: &Path,
    target: &str,
    profile: Option<&crate::target::Profile>,
    format: Format,
    color: bool,
) -> Result<String, String> {
    let checked = crate::target::load_clean(file, color)?;
    let names: Vec<&str> = match checked.target(target) {
        Some(resolved) => crate::target::profile_names(resolved),
        None => Vec::new(),
    };
    let resolved = crate::target::select(&checked, file, target, profile)?;
    let profile = profile.map(crate::target::Profile::name);
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
