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

/// The profile a command runs in, and who named it.
pub(crate) struct Profile {
    name: String,
    from_env: bool,
}

impl Profile {
    /// `--profile` when given, else `EPHEMOS_PROFILE` read as a client reads it (unset or
    /// empty: none, the target's own settings), so the command sees what a service
    /// started in the same environment sees.
    pub(crate) fn chosen(flag: Option<String>) -> Option<Profile> {
        match flag {
            Some(name) => Some(Profile {
                name,
                from_env: false,
            }),
            None => std::env::var_os(ephemos::PROFILE_VARIABLE)
                .map(|value| value.to_string_lossy().into_owned())
                .filter(|name| !name.is_empty())
                .map(|name| Profile {
                    name,
                    from_env: true,
                }),
        }
    }

    /// The profile's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// TARGET of `checked` (read from `file`), in `profile` when one is given; the error
/// lists the names there are.
pub(crate) fn select<'a>(
    checked: &'a ephemos_config::Checked,
    file: &Path,
    target: &str,
    profile: Option<&Profile>,
) -> Result<&'a ResolvedTarget, String> {
    let Some(resolved) = checked.target(target) else {
        let names: Vec<&str> = checked.target_names().collect();
        return Err(format!(
            "no target `{target}` in {}; the targets are: {}",
            file.display(),
            names.join(", ")
        ));
    };
    let Some(profile) = profile else {
        return Ok(resolved);
    };
    let name = profile.name();
    resolved.profile(name).ok_or_else(|| {
        let names = profile_names(resolved);
        let named = if profile.from_env {
            format!(
                "no profile `{name}` (named by {}; --profile overrides it, unset it for the target's own settings)",
                ephemos::PROFILE_VARIABLE
            )
        } else {
            format!("no profile `{name}`")
        };
        if names.is_empty() {
            format!("{named}: {} declares none", file.display())
        } else {
            format!("{named}; the profiles are: {}", names.join(", "))
        }
    })
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
