//! `ephemos`: the command-line face of ephemos-config.
//!
//! - `ephemos check [FILE]` validates a `connections.toml` (default `./connections.toml`),
//!   prints every error and warning with its place, then each target's resolved settings
//!   and where each value came from. Exit code 1 when there are errors.
//! - `ephemos render [FILE] TARGET` prints the gRPC service config JSON exactly as a
//!   client of TARGET bakes it, and the target's dial settings.
//!
//! Both take `--format json` for tools. The command sits on top of the workspace: it
//! depends on ephemos-config only (and, later, on the runtime for `probe`).

mod check;
mod json;
mod render;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Check and explain ephemos connection settings.
#[derive(Parser)]
#[command(name = "ephemos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a connections.toml: all errors and warnings, then each target's resolved
    /// settings with the origin of every value.
    Check {
        /// The file to check.
        #[arg(default_value = "connections.toml")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Print a target's service-config JSON as it is baked, and its dial settings.
    Render {
        /// `[FILE] TARGET`: the file (default connections.toml) and the target's name.
        #[arg(num_args = 1..=2, required = true, value_names = ["FILE", "TARGET"])]
        args: Vec<String>,
        /// The target's settings in this profile (`[targets.T.profiles.P]`), as a client
        /// running with EPHEMOS_PROFILE=P gets them.
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(clap::Args)]
struct Output {
    /// Output format: text for people, json for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Output {
    fn color(&self) -> bool {
        match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { file, output } => check::run(&file, output.format, output.color()),
        Command::Render {
            args,
            profile,
            output,
        } => {
            let (file, target) = match args.as_slice() {
                [target] => (PathBuf::from("connections.toml"), target.clone()),
                [file, target, ..] => (PathBuf::from(file), target.clone()),
                [] => unreachable!("clap requires at least one argument"),
            };
            render::run(
                &file,
                &target,
                profile.as_deref(),
                output.format,
                output.color(),
            )
            .map(|text| (text, ExitCode::SUCCESS))
        }
    };
    match result {
        Ok((text, code)) => {
            // A closed pipe (`ephemos check | head`) is not an error worth a panic.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            code
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Reads and checks a file, turning an I/O failure into a message that names it.
fn load(file: &std::path::Path) -> Result<ephemos_config::Checked, String> {
    ephemos_config::check_file(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}
