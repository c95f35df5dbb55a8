//! `ephemos`: the command line of ephemos: check and explain `connections.toml`, and
//! probe and call its targets with exactly the settings their services use.
//!
//! - `ephemos check [FILE]` validates a `connections.toml` (default `./connections.toml`),
//!   prints every error and warning with its place, then each target's resolved settings
//!   and where each value came from. Exit code 1 when there are errors.
//! - `ephemos render [FILE] TARGET` prints the gRPC service config JSON exactly as a
//!   client of TARGET bakes it, and the target's dial settings.
//!
//! - `ephemos probe [FILE] TARGET` connects with the target's settings and identity and
//!   reports resolution, TCP connect time, the TLS peer (SPIFFE ID, certificate end),
//!   the server's HTTP/2 settings, health, round trips and each state change. Exit 0
//!   only when the target is SERVING (or has no health service and answered).
//! - `ephemos call [FILE] TARGET METHOD --data JSON --proto FILE` calls a method with a
//!   JSON request through the target's own channel (its retry policy, pool, identity);
//!   `--repeat N --concurrency C` makes a small load and prints a summary. A response
//!   JSON cannot show (an `Any` of a type the protos lack, a Timestamp out of range) is
//!   printed in protobuf text format with a note saying which field and why.
//!
//! `render`, `probe` and `call` run in the profile `--profile` names, else in the one
//! `EPHEMOS_PROFILE` names, as a client does (unset or empty: the target's own settings).
//!
//! All take `--format json` for tools. Exit codes: 0 success; 1 the file has errors
//! (`check`), the target failed the probe, or a call did not end OK; 2 the command
//! could not run (unreadable file, unknown target, bad arguments).
//!
//! The command sits on top of the workspace: it reads files with ephemos-config and
//! connects with the runtime (`ephemos`), exactly as a service's generated client does.

mod call;
mod check;
mod deadline;
mod duration_text;
mod grpc_code;
mod json;
mod probe;
mod render;
mod target;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Check and explain ephemos connection settings; probe and call their targets.
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
        /// running with EPHEMOS_PROFILE=P gets them [default: EPHEMOS_PROFILE's value].
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Connect to a target with its settings and identity, and report each step:
    /// resolution, TCP connect, TLS peer, HTTP/2 settings, health, round trips, states.
    Probe {
        /// `[FILE] TARGET`: the file (default connections.toml) and the target's name.
        #[arg(num_args = 1..=2, required = true, value_names = ["FILE", "TARGET"])]
        args: Vec<String>,
        /// The target's settings in this profile, as a client with EPHEMOS_PROFILE=P
        /// [default: EPHEMOS_PROFILE's value].
        #[arg(long)]
        profile: Option<String>,
        /// The longest the probe waits for a READY connection and for each check (at
        /// most 99999999h, the longest deadline gRPC carries).
        #[arg(long, default_value = "10s", value_parser = deadline::parse)]
        timeout: std::time::Duration,
        #[command(flatten)]
        output: Output,
    },
    /// Call one method of a target with a JSON request, through the target's channel
    /// (its method policy, pool and identity).
    Call {
        /// `[FILE] TARGET METHOD`: the file (default connections.toml), the target, and
        /// `pkg.Service/Method` (or `Method` of the target's `service`).
        #[arg(num_args = 2..=3, required = true, value_names = ["FILE", "TARGET", "METHOD"])]
        args: Vec<String>,
        /// The request as JSON (an array of messages for client-streaming methods), or
        /// `@FILE` to read it from a file.
        #[arg(long, short = 'd', default_value = "{}")]
        data: String,
        /// A proto file that defines the method (repeat for more).
        #[arg(long = "proto", value_name = "FILE")]
        protos: Vec<PathBuf>,
        /// A folder the protos' imports are found in (default: each proto's folder).
        #[arg(long = "include", short = 'I', value_name = "DIR")]
        includes: Vec<PathBuf>,
        /// Metadata `key: value` sent with every call (repeat for more).
        #[arg(long = "header", short = 'H', value_name = "KEY: VALUE")]
        headers: Vec<String>,
        /// A deadline for each call (the method's configured timeout applies as well; at
        /// most 99999999h, the longest deadline gRPC carries).
        #[arg(long, value_parser = deadline::parse)]
        timeout: Option<std::time::Duration>,
        /// How many calls to make (1 to 10^12); more than one prints a summary instead of
        /// responses.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MOST_CALLS))]
        repeat: u64,
        /// How many calls run at once (1 to 10000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MOST_AT_ONCE))]
        concurrency: u64,
        /// The target's settings in this profile, as a client with EPHEMOS_PROFILE=P
        /// [default: EPHEMOS_PROFILE's value].
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

/// The most calls `call --repeat` makes: a load's memory does not grow with it, so the
/// limit is only there to keep its counters far from overflowing.
const MOST_CALLS: u64 = 1_000_000_000_000;

/// The most calls `call --concurrency` runs at once (each is a task with its stream).
const MOST_AT_ONCE: u64 = 10_000;

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
            let (file, rest) = target::split_file(&args, 1);
            render::run(
                &file,
                &rest[0],
                target::Profile::chosen(profile).as_ref(),
                output.format,
                output.color(),
            )
            .map(|text| (text, ExitCode::SUCCESS))
        }
        Command::Probe {
            args,
            profile,
            timeout,
            output,
        } => {
            let (file, rest) = target::split_file(&args, 1);
            probe::run(
                &file,
                &rest[0],
                target::Profile::chosen(profile).as_ref(),
                timeout,
                output.format,
                output.color(),
            )
            .map(passed)
        }
        Command::Call {
            args,
            data,
            protos,
            includes,
            headers,
            timeout,
            repeat,
            concurrency,
            profile,
            output,
        } => {
            let (file, rest) = target::split_file(&args, 2);
            call::run(call::CallArgs {
                file,
                target: rest[0].clone(),
                method: rest[1].clone(),
                profile: target::Profile::chosen(profile),
                data,
                protos,
                includes,
                headers,
                timeout,
                repeat,
                concurrency,
                format: output.format,
                color: output.color(),
            })
            .map(passed)
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

/// The exit code of a command that passed or failed against a target.
fn passed((text, ok): (String, bool)) -> (String, ExitCode) {
    (
        text,
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The runtime the commands that connect run on.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Reads and checks a file, turning an I/O failure into a message that names it.
fn load(file: &std::path::Path) -> Result<ephemos_config::Checked, String> {
    ephemos_config::check_file(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}
