//! Picking one target (and profile) out of a checked `connections.toml`, shared by the
//! commands that act on a target (`render`, `probe`, `call`).

use std::path::Path;

use ephemos_config::ResolvedTarget;
use ephemos_config::diagnostic::render as render_diagnostic;

/// A file that checked without errors; its errors are printed to stderr otherwise.
pub(crate) fn load_clean(file: &Path, color: bool) -> Result<ephemos_config::Checked, String> {
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
    Ok(checked)
}

/// TARGET of `checked` (read from `file`), in `profile` when one is given; the error
/// lists the names there are.
pub(crate) fn select<'a>(
    checked: &'a ephemos_config::Checked,
    file: &Path,
    target: &str,
    profile: Option<&str>,
) -> Result<&'a ResolvedTarget, String> {
    let Some(resolved) = checked.target(target) else {
        let names: Vec<&str> = checked.target_names().collect();
        return Err(format!(
            "no target `{target}` in {}; the targets are: {}",
            file.display(),
            names.join(", ")
        ));
    };
    match profile {
        None => Ok(resolved),
        Some(name) => resolved.profile(name).ok_or_else(|| {
            let names = profile_names(resolved);
            if names.is_empty() {
                format!("no profile `{name}`: {} declares none", file.display())
            } else {
                format!(
                    "no profile `{name}`; the profiles are: {}",
                    names.join(", ")
                )
            }
        }),
    }
}

/// The names of the profiles a target declares.
pub(crate) fn profile_names(resolved: &ResolvedTarget) -> Vec<&str> {
    resolved
        .profiles
        .iter()
        .filter_map(|p| p.profile.as_deref())
        .collect()
}

/// `[FILE] TARGET ...`: splits the positional arguments of a command whose FILE is
/// optional (default `connections.toml`), given how many follow it.
pub(crate) fn split_file(args: &[String], after: usize) -> (std::path::PathBuf, &[String]) {
    if args.len() > after {
        (std::path::PathBuf::from(&args[0]), &args[1..])
    } else {
        (std::path::PathBuf::from("connections.toml"), args)
    }
}
