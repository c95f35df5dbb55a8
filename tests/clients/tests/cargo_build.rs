//! Crates that cargo itself builds, the way a user's crate is built: rustc runs in the
//! workspace's root and names source files relative to it (`src/lib.rs`), which the
//! trybuild tests (absolute paths) never show, and cargo decides when a build script
//! runs again. Each crate is written into the target directory and checked offline,
//! with path dependencies on this workspace; their target directory stays there, so
//! later runs are quick.

use std::path::{Path, PathBuf};
use std::process::Command;

/// This workspace's root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One directory of fixtures per checkout, so checkouts sharing a target directory do
/// not write over each other's fixtures.
fn fixtures() -> PathBuf {
    let checkout: String = workspace()
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cargo-built-fixtures")
        .join(checkout)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A fresh fixture directory `name` (what an earlier run left is removed, not its
/// target directory) with the versions this workspace was built with, so `--offline`
/// finds them.
fn fixture(name: &str) -> PathBuf {
    let dir = fixtures().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

/// `cargo check` of the fixture's workspace, with `EPHEMOS_CONFIG` as given: whether it
/// succeeded, and cargo's output.
fn cargo_check(dir: &Path, ephemos_config: Option<&str>) -> (bool, String) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["check", "--offline", "--quiet", "--workspace"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", fixtures().join("target"))
        .env_remove("EPHEMOS_CONFIG")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    if let Some(path) = ephemos_config {
        command.env("EPHEMOS_CONFIG", path);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A package depending on this workspace's `ephemos`; `tail` is the rest of the file.
fn manifest(name: &str, tail: &str) -> String {
    let runtime = workspace().join("runtime");
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nephemos = {{ path = {runtime:?} }}\n\
         tonic-health = {{ version = \"0.14\", default-features = false }}\n{tail}"
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
    let dir = fixture("attribute");
    // The workspace's root package (rustc names its files `src/...`) and a member
    // (`member/src/...`, relative to the root, not to the member).
    write(
        &dir.join("Cargo.toml"),
        &manifest(
            "ephemos-attribute-fixture",
            "\n[workspace]\nmembers = [\"member\"]\nresolver = \"3\"\n",
        ),
    );
    write(&dir.join("src/lib.rs"), &client_source(7));
    write(&dir.join("src/connections.toml"), &connections("7s"));
    write(
        &dir.join("member/Cargo.toml"),
        &manifest("ephemos-attribute-fixture-member", ""),
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
    let (ok, stderr) = cargo_check(&dir, None);
    assert!(ok, "cargo check failed:\n{stderr}");
}

/// A build script that checks `connections.toml` and generates its clients, as the
/// README's. With `EPHEMOS_CONFIG` the attribute reads another file; the build script
/// must check that one, and run again when the variable changes.
#[test]
fn the_build_script_checks_the_file_ephemos_config_names_and_reruns_when_it_changes() {
    let dir = fixture("build-script");
    write(
        &dir.join("Cargo.toml"),
        &manifest(
            "ephemos-build-script-fixture",
            &format!(
                "\n[build-dependencies]\nephemos-build = {{ path = {:?} }}\n\n[workspace]\n",
                workspace().join("build")
            ),
        ),
    );
    write(
        &dir.join("build.rs"),
        "fn main() -> Result<(), Box<dyn std::error::Error>> {\n    \
         ephemos_build::configure()\n        .connections(\"connections.toml\")\n        \
         .generate_clients(true)\n        .compile_protos(&[\"proto/ping.proto\"], &[\"proto\"])?;\n    \
         Ok(())\n}\n",
    );
    write(
        &dir.join("proto/ping.proto"),
        "syntax = \"proto3\";\npackage ping.v1;\nmessage M {}\nservice Ping { rpc Ping(M) returns (M); }\n",
    );
    write(
        &dir.join("src/lib.rs"),
        "//! The generated clients.\nephemos::include_clients!();\n\
         /// A client of the user's own, reading the file as the attribute does.\n\
         #[ephemos::client(target = \"ping\")]\n\
         pub struct Mine(pub proto::ping::v1::ping_client::PingClient<ephemos::Channel>);\n",
    );
    let target = |service: &str| {
        format!(
            "[targets.ping]\nservice = \"{service}\"\naddress = \"127.0.0.1:1\"\nidentity = \"plaintext\"\n"
        )
    };
    write(&dir.join("connections.toml"), &target("ping.v1.Ping"));
    write(&dir.join("staging.toml"), &target("ping.v1.Pong"));

    let (ok, stderr) = cargo_check(&dir, None);
    assert!(ok, "cargo check failed:\n{stderr}");
    // staging.toml names a service the protos do not declare: the build script, run
    // again, says so at its place.
    let (ok, stderr) = cargo_check(&dir, Some("staging.toml"));
    assert!(!ok, "staging.toml was not checked:\n{stderr}");
    assert!(
        stderr.contains("no service `ping.v1.Pong` in the protos")
            && stderr.contains("staging.toml:2:11"),
        "{stderr}"
    );
}
