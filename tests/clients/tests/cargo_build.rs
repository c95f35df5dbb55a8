//! The attribute in a crate that cargo itself builds, the way a user's crate is built:
//! rustc runs in the workspace's root and names source files relative to it
//! (`src/lib.rs`), which the trybuild tests (absolute paths) never show. The crate is
//! written into the target directory and checked offline, with path dependencies on
//! this workspace; its own target directory stays there, so later runs are quick.

use std::path::{Path, PathBuf};
use std::process::Command;

/// This workspace's root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One fixture directory per checkout, so checkouts sharing a target directory do not
/// write over each other's fixture.
fn fixture_dir() -> PathBuf {
    let checkout: String = workspace()
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("macro-in-a-cargo-build")
        .join(checkout)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn manifest(name: &str, ephemos: &Path, workspace: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nephemos = {{ path = {ephemos:?} }}\n\
         tonic-health = {{ version = \"0.14\", default-features = false }}\n{workspace}"
    )
}

fn connections(connect_timeout: &str) -> String {
    format!(
        "[targets.health]\naddress = \"127.0.0.1:1\"\nidentity = \"plaintext\"\n\
         connect_timeout = \"{connect_timeout}\"\n"
    )
}

/// A client whose `connections.toml` is next to the file, not next to Cargo.toml; the
/// constant assertion fails the build unless that file's value was baked.
fn client_source(seconds: u64) -> String {
    format!(
        "//! connections.toml is next to this file.\n\
         #[ephemos::client(target = \"health\")]\n\
         pub struct Health(pub tonic_health::pb::health_client::HealthClient<ephemos::Channel>);\n\
         const _: () = assert!(Health::CONFIG.connection.connect_timeout.as_secs() == {seconds});\n"
    )
}

#[test]
fn connections_toml_next_to_the_using_file_is_found_in_a_cargo_build() {
    let dir = fixture_dir();
    let ephemos = workspace().join("runtime");
    let _ = std::fs::remove_dir_all(dir.join("src"));
    let _ = std::fs::remove_dir_all(dir.join("member"));
    // The workspace's root package (rustc names its files `src/...`) and a member
    // (`member/src/...`, relative to the root, not to the member).
    write(
        &dir.join("Cargo.toml"),
        &manifest(
            "ephemos-macro-fixture",
            &ephemos,
            "\n[workspace]\nmembers = [\"member\"]\nresolver = \"3\"\n",
        ),
    );
    write(&dir.join("src/lib.rs"), &client_source(7));
    write(&dir.join("src/connections.toml"), &connections("7s"));
    write(
        &dir.join("member/Cargo.toml"),
        &manifest("ephemos-macro-fixture-member", &ephemos, ""),
    );
    write(
        &dir.join("member/src/lib.rs"),
        "//! A module in a folder of its own.\npub mod clients;\n",
    );
    write(&dir.join("member/src/clients/mod.rs"), &client_source(9));
    write(
        &dir.join("member/src/clients/connections.toml"),
        &connections("9s"),
    );
    // The versions this workspace was built with, so the check needs no network.
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--workspace"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("EPHEMOS_CONFIG")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo check failed:\n{stderr}");
}
