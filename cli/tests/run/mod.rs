//! Running the `ephemos` binary as a user would, and reading what it printed: shared by
//! the test files that start servers (each uses the part it needs).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `ephemos ARGS` in `dir`, without colour, with `EPHEMOS_PROFILE` set to `profile` (or
/// unset, whatever the test's own environment says).
pub(crate) fn command(dir: &Path, args: &[&str], profile: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ephemos"));
    command.args(args).current_dir(dir).env("NO_COLOR", "1");
    match profile {
        Some(profile) => command.env("EPHEMOS_PROFILE", profile),
        None => command.env_remove("EPHEMOS_PROFILE"),
    };
    command
}

/// Runs [`command`] to its end, off the runtime's threads (the servers run on them).
pub(crate) async fn ephemos(dir: &Path, args: &[&str], profile: Option<&str>) -> Output {
    let mut command = command(dir, args, profile);
    tokio::task::spawn_blocking(move || command.output().expect("the ephemos binary runs"))
        .await
        .unwrap()
}

/// What it printed on stdout.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What it printed on stderr.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Its stdout as one JSON document (the panic shows both outputs when it is not).
pub(crate) fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            stdout(output),
            stderr(output)
        )
    })
}
