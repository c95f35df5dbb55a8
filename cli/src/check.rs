//! `ephemos check`: every diagnostic, then each target's settings with provenance.

use std::path::Path;
use std::process::ExitCode;

use ephemos_config::diagnostic::render;
use ephemos_config::in_force::not_in_force_message;
use ephemos_config::{Checked, ResolvedTarget};

use crate::Format;
use crate::json;

/// The report to print, and the exit code (failure when the file has errors).
pub(crate) fn run(file: &Path, format: Format, color: bool) -> Result<(String, ExitCode), String> {
    let checked = crate::load(file)?;
    let report = match format {
        Format::Json => format!("{}\n", json::check_report(&checked)),
        Format::Text => text_report(&checked, color),
    };
    let code = if checked.diagnostics.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    Ok((report, code))
}

fn text_report(checked: &Checked, color: bool) -> String {
    let mut out = String::new();
    for diagnostic in checked.diagnostics.iter() {
        out.push_str(&render(diagnostic, color));
        out.push_str("\n\n");
    }
    let errors = checked.diagnostics.errors().count();
    let warnings = checked.diagnostics.warnings().count();
    let name = checked.source.name();
    if errors > 0 {
        out.push_str(&format!(
            "{name}: {errors} error{}, {warnings} warning{}; fix the errors above\n",
            plural(errors),
            plural(warnings)
        ));
        return out;
    }
    out.push_str(&format!(
        "{name}: ok, {} target{}, {warnings} warning{}\n",
        checked.targets.len(),
        plural(checked.targets.len()),
        plural(warnings)
    ));
    for target in &checked.targets {
        out.push('\n');
        out.push_str(&target_table(target));
        for profile in &target.profiles {
            out.push_str(&profile_table(target, profile));
        }
        let profiles: Vec<_> = target.profiles.iter().map(|p| &p.config).collect();
        if let Some(message) = not_in_force_message(&target.config, &profiles) {
            out.push_str(&format!("  # warning: {message}\n"));
        }
    }
    out
}

/// `[targets.NAME] in profile P`: the settings the profile changes, with their origin.
fn profile_table(target: &ResolvedTarget, profile: &ResolvedTarget) -> String {
    let changed: Vec<_> = profile
        .provenance
        .iter()
        .filter(|s| {
            !target
                .provenance
                .iter()
                .any(|b| b.key == s.key && b.value == s.value && b.origin == s.origin)
        })
        .collect();
    let name = profile.profile.as_deref().unwrap_or_default();
    let mut out = format!("  [profile {name}]");
    if changed.is_empty() {
        out.push_str(" the same as the target's own settings\n");
        return out;
    }
    out.push('\n');
    let width = changed
        .iter()
        .map(|s| format!("{} = {}", s.key, s.value).chars().count())
        .max()
        .unwrap_or(0);
    for setting in changed {
        let text = format!("{} = {}", setting.key, setting.value);
        out.push_str(&format!("    {text:<width$}   # {}\n", setting.origin));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `[targets.NAME]` followed by aligned `key = value   origin` lines.
pub(crate) fn target_table(target: &ResolvedTarget) -> String {
    let rows: Vec<(String, String)> = target
        .provenance
        .iter()
        .map(|s| (format!("{} = {}", s.key, s.value), s.origin.to_string()))
        .collect();
    let width = rows
        .iter()
        .map(|(setting, _)| setting.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("[targets.{}]\n", target.config.name);
    for (setting, origin) in rows {
        out.push_str(&format!("  {setting:<width$}   # {origin}\n"));
    }
    out
}
