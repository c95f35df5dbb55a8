//! # ephemos-build
//!
//! What a `build.rs` calls: it checks `connections.toml` (every error at once, each with
//! `file:line:column`), compiles the protos with protox (pure Rust: no `protoc` on any
//! machine) and tonic-prost-build, and checks each target's `service` and
//! `[targets.NAME.methods.M]` against the compiled services, suggesting the nearest name
//! on a miss.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     ephemos_build::configure()
//!         .connections("connections.toml")
//!         .compile_protos(&["proto/payments.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! Errors fail the build with `cargo::error=` lines (one per line of the rendered
//! diagnostic, as rustc would print it); warnings become `cargo::warning=` lines.
//!
//! It sits between `ephemos-config` (the model and its checks) and the user's crate; the
//! `#[ephemos::client]` attribute reads the same file through the same crate.

mod clients;
mod generated_paths;
mod proto_check;

use std::path::{Path, PathBuf};

use ephemos_config::diagnostic::render;
use ephemos_config::{Checked, Diagnostics};
use std::io::Write;

pub use proto_check::check_services;

/// Why the build script failed.
#[derive(Debug)]
pub enum Error {
    /// `connections.toml` (or its cross-check against the protos) has errors; they were
    /// printed as `cargo::error=` lines.
    InvalidConnections {
        /// The file.
        path: PathBuf,
        /// How many errors.
        errors: usize,
    },
    /// `connections.toml` could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file `EPHEMOS_CONFIG` names (in place of the one given to
    /// [`Builder::connections`]) could not be read.
    ReadEphemosConfig {
        /// The file `EPHEMOS_CONFIG` names.
        path: PathBuf,
        /// The file given to [`Builder::connections`].
        given: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The protos did not compile.
    Protos(String),
    /// Writing the generated code failed.
    Codegen(std::io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConnections { path, errors } => {
                write!(
                    f,
                    "{} has {errors} error(s); see the messages above",
                    path.display()
                )
            }
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::ReadEphemosConfig {
                path,
                given,
                source,
            } => write!(
                f,
                "cannot read {}, which EPHEMOS_CONFIG names in place of {}: {source} \
                 (help: name an existing file, relative to the crate, or unset EPHEMOS_CONFIG)",
                path.display(),
                given.display()
            ),
            Error::Protos(message) => write!(f, "the protos do not compile: {message}"),
            Error::Codegen(e) => write!(f, "cannot write the generated code: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Starts a configuration: `configure().connections(path).compile_protos(..)`.
pub fn configure() -> Builder {
    Builder::default()
}

/// What to check and compile.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    connections: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    generate_clients: bool,
}

impl Builder {
    /// The `connections.toml` to check, relative to the crate's manifest directory.
    /// When the `EPHEMOS_CONFIG` environment variable is set, the file it names is
    /// checked instead (relative to the crate too), because that is the file
    /// `#[ephemos::client]` reads and bakes when it has no `config = "..."`; the build
    /// script runs again when the variable changes.
    pub fn connections(mut self, path: impl Into<PathBuf>) -> Self {
        self.connections = Some(path.into());
        self
    }

    /// Where the generated code goes (default: cargo's `OUT_DIR`).
    pub fn out_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(path.into());
        self
    }

    /// Also writes one `#[ephemos::client]` struct per target whose `service` the protos
    /// declare (target `order_history` is `OrderHistory`), with the protos' code in a
    /// `proto` module; `ephemos::include_clients!()` brings them in. Off by default: the
    /// attribute on a struct of your own is the primary path.
    pub fn generate_clients(mut self, on: bool) -> Self {
        self.generate_clients = on;
        self
    }

    /// Checks the connections file, compiles `protos` (searching `includes`), checks the
    /// targets against the services, and generates the tonic and prost code.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let ephemos_config = std::env::var_os("EPHEMOS_CONFIG").map(PathBuf::from);
        self.run(
            protos,
            includes,
            ephemos_config,
            &mut std::io::stdout().lock(),
        )
    }

    /// [`Builder::compile_protos`] with `EPHEMOS_CONFIG`'s value, writing cargo's
    /// instructions to `cargo`.
    fn run(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        ephemos_config: Option<PathBuf>,
        cargo: &mut dyn Write,
    ) -> Result<(), Error> {
        let mut say = |line: String| writeln!(cargo, "{line}").map_err(Error::Codegen);
        say("cargo::rerun-if-env-changed=EPHEMOS_CONFIG".to_owned())?;
        for path in protos
            .iter()
            .map(AsRef::as_ref)
            .chain(includes.iter().map(AsRef::as_ref))
        {
            say(format!("cargo::rerun-if-changed={}", path.display()))?;
        }
        let descriptors =
            protox::compile(protos, includes).map_err(|e| Error::Protos(e.to_string()))?;
        let mut checked_file = None;
        if let Some(given) = &self.connections {
            let path = ephemos_config.as_ref().unwrap_or(given);
            say(format!("cargo::rerun-if-changed={}", path.display()))?;
            let checked =
                ephemos_config::check_file(path).map_err(|source| match &ephemos_config {
                    Some(_) => Error::ReadEphemosConfig {
                        path: path.clone(),
                        given: given.clone(),
                        source,
                    },
                    None => Error::Read {
                        path: path.clone(),
                        source,
                    },
                })?;
            let mut diagnostics = checked.diagnostics.clone();
            diagnostics.extend(check_services(&checked, &descriptors));
            if self.generate_clients {
                diagnostics.extend(clients::check_names(&checked, &descriptors));
            }
            for line in cargo_lines(&diagnostics) {
                say(line)?;
            }
            let errors = diagnostics.errors().count();
            if errors > 0 {
                return Err(Error::InvalidConnections {
                    path: path.clone(),
                    errors,
                });
            }
            for target in &checked.targets {
                let profiles: Vec<_> = target.profiles.iter().map(|p| &p.config).collect();
                if let Some(message) =
                    ephemos_config::in_force::not_in_force_message(&target.config, &profiles)
                {
                    say(format!("cargo::warning={message}"))?;
                }
            }
            checked_file = Some(checked_with_path(checked, path));
        }
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::Codegen(std::io::Error::other(
                        "OUT_DIR is not set: run from build.rs, or set out_dir(..)",
                    ))
                })?,
        };
        let packages: Vec<String> = descriptors
            .file
            .iter()
            .map(|f| f.package().to_owned())
            .collect();
        let mut prost = tonic_prost_build::Config::new();
        prost
            .prost_path(generated_paths::PROST)
            .prost_types_path(generated_paths::PROST_TYPES);
        tonic_prost_build::configure()
            .out_dir(&out_dir)
            .codec_path(generated_paths::CODEC)
            .compile_fds_with_config(descriptors.clone(), prost)
            .map_err(Error::Codegen)?;
        generated_paths::rewrite_files(&out_dir, &packages).map_err(Error::Codegen)?;
        if self.generate_clients {
            let (checked, path) = match &checked_file {
                Some((checked, path)) => (checked.clone(), path.clone()),
                None => (ephemos_config::check_str("(none)", ""), PathBuf::new()),
            };
            let code = clients::generate(&checked, &descriptors, &path);
            std::fs::write(out_dir.join(clients::FILE_NAME), code).map_err(Error::Codegen)?;
        }
        Ok(())
    }
}

/// The checked file and its absolute path (the generated clients name it in
/// `config = "..."`, read by the attribute from wherever the crate is built).
fn checked_with_path(checked: Checked, path: &Path) -> (Checked, PathBuf) {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    (checked, absolute)
}

/// The `cargo::error=` / `cargo::warning=` lines for diagnostics, one per rendered line
/// (cargo shows each as its own line, so the snippet and caret survive).
pub fn cargo_lines(diagnostics: &Diagnostics) -> Vec<String> {
    let mut lines = Vec::new();
    for diagnostic in diagnostics.iter() {
        let kind = if diagnostic.is_error() {
            "error"
        } else {
            "warning"
        };
        for line in render(diagnostic, false).lines() {
            lines.push(format!("cargo::{kind}={line}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(connections: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proto")).unwrap();
        std::fs::write(
            dir.path().join("proto/echo.proto"),
            "syntax = \"proto3\";\npackage echo.v1;\nmessage M { string s = 1; }\nservice Echo { rpc Say(M) returns (M); }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("connections.toml"), connections).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        dir
    }

    fn build(dir: &Path) -> (Result<(), Error>, String) {
        build_with(dir, configure(), None)
    }

    /// Builds with `builder`, as if `EPHEMOS_CONFIG` were `ephemos_config`.
    fn build_with(
        dir: &Path,
        builder: Builder,
        ephemos_config: Option<PathBuf>,
    ) -> (Result<(), Error>, String) {
        let mut cargo = Vec::new();
        let result = builder
            .connections(dir.join("connections.toml"))
            .out_dir(dir.join("out"))
            .run(
                &[dir.join("proto/echo.proto")],
                &[dir.join("proto")],
                ephemos_config,
                &mut cargo,
            );
        (result, String::from_utf8(cargo).unwrap())
    }

    const ECHO: &str = "service = \"echo.v1.Echo\"\naddress = \"h:1\"\nserver_any = true\n";

    #[test]
    fn generated_clients_with_one_name_fail_the_build_naming_both_targets() {
        let dir = project(&format!(
            "[targets.order_history]\n{ECHO}\n[targets.orderHistory]\n{ECHO}"
        ));
        let generating = configure().generate_clients(true);
        let (result, cargo) = build_with(dir.path(), generating, None);
        assert!(
            matches!(result, Err(Error::InvalidConnections { errors: 1, .. })),
            "{result:?}"
        );
        let first = format!("{}:1:10", dir.path().join("connections.toml").display());
        let second = format!("{}:6:10", dir.path().join("connections.toml").display());
        assert!(
            cargo.contains(&format!(
                "cargo::error=error: targets `order_history` ({first}) and `orderHistory` \
                 ({second}) would both generate the client `OrderHistory`"
            )),
            "{cargo}"
        );
        assert!(cargo.contains("rename one of the two targets"), "{cargo}");
        assert!(!dir.path().join("out").join(clients::FILE_NAME).exists());
        // Without generated clients, the names are the user's own.
        let (result, cargo) = build(dir.path());
        assert!(result.is_ok(), "{result:?}: {cargo}");
    }

    #[test]
    fn ephemos_config_names_the_file_checked_as_the_attribute_reads_it() {
        let dir = project(&format!("[targets.echo]\n{ECHO}"));
        let staging = dir.path().join("staging.toml");
        std::fs::write(
            &staging,
            "[targets.echo]\nservice = \"echo.v1.Eco\"\naddress = \"h:1\"\nserver_any = true\n",
        )
        .unwrap();
        let generating = configure().generate_clients(true);
        let (result, cargo) = build_with(dir.path(), generating.clone(), Some(staging.clone()));
        assert!(
            matches!(&result, Err(Error::InvalidConnections { path, .. }) if *path == staging),
            "{result:?}"
        );
        assert!(
            cargo.contains(&format!("{}:2:11", staging.display())),
            "the error is in staging.toml: {cargo}"
        );
        assert!(
            cargo.contains(&format!("cargo::rerun-if-changed={}", staging.display())),
            "{cargo}"
        );
        assert!(
            cargo.contains("cargo::rerun-if-env-changed=EPHEMOS_CONFIG"),
            "{cargo}"
        );

        // A good file: the generated clients name it, so the attribute reads it too.
        std::fs::write(
            &staging,
            "[targets.echo]\nservice = \"echo.v1.Echo\"\naddress = \"staging:1\"\nserver_any = true\n",
        )
        .unwrap();
        let (result, cargo) = build_with(dir.path(), generating, Some(staging.clone()));
        assert!(result.is_ok(), "{result:?}: {cargo}");
        let generated =
            std::fs::read_to_string(dir.path().join("out").join(clients::FILE_NAME)).unwrap();
        let canonical = std::fs::canonicalize(&staging).unwrap();
        assert!(
            generated.contains(&format!("config = {:?}", canonical.display().to_string())),
            "{generated}"
        );

        let missing = dir.path().join("missing.toml");
        let (result, _) = build_with(dir.path(), configure(), Some(missing));
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("missing.toml, which EPHEMOS_CONFIG names in place of"),
            "{message}"
        );
    }

    #[test]
    fn a_valid_project_generates_code_and_asks_to_rerun_on_changes() {
        let dir = project(
            "[targets.echo]\nservice = \"echo.v1.Echo\"\naddress = \"h:1\"\nserver_any = true\n",
        );
        let (result, cargo) = build(dir.path());
        result.unwrap();
        assert!(
            cargo.contains("cargo::rerun-if-changed=") && cargo.contains("connections.toml"),
            "{cargo}"
        );
        assert!(!cargo.contains("cargo::error"), "{cargo}");
        let generated = std::fs::read_to_string(dir.path().join("out/echo.v1.rs")).unwrap();
        assert!(
            generated.contains("pub mod echo_client"),
            "tonic client generated"
        );
    }

    #[test]
    fn errors_fail_the_build_with_one_cargo_error_line_per_rendered_line() {
        let dir = project(
            "[targets.echo]\nservice = \"echo.v1.Eco\"\naddress = \"h:1\"\nserver_any = true\n\
             connect_timeout = \"soon\"\n",
        );
        let (result, cargo) = build(dir.path());
        assert!(
            matches!(result, Err(Error::InvalidConnections { errors: 1, .. })),
            "{result:?}"
        );
        // The TOML error stops resolution of the target, so the service is not checked yet.
        assert!(
            cargo.contains("cargo::error=error: invalid value for `targets.echo.connect_timeout`"),
            "{cargo}"
        );
        assert!(cargo.contains("connections.toml:5:19"), "{cargo}");
        assert!(
            cargo
                .lines()
                .any(|l| l.starts_with("cargo::error=") && l.contains('^')),
            "caret kept: {cargo}"
        );

        let dir = project(
            "[targets.echo]\nservice = \"echo.v1.Eco\"\naddress = \"h:1\"\nserver_any = true\n",
        );
        let (result, cargo) = build(dir.path());
        assert!(result.is_err());
        assert!(
            cargo.contains("no service `echo.v1.Eco` in the protos"),
            "{cargo}"
        );
        assert!(cargo.contains("did you mean `echo.v1.Echo`?"), "{cargo}");
    }
}
