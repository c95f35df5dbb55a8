//! `ephemos-bench`: is an ephemos client as fast as what a careful user writes by hand
//! with tonic? One server process (plaintext and SPIFFE mTLS listeners), and in this
//! process the same load through raw tonic (one `tonic::transport::Channel`; N
//! independent Channels picked round-robin) and through ephemos channels (the default
//! `production` preset, with and without a retry policy; `high_throughput` with its
//! pool), alternating within each cell so all of them see the same machine. Cells: unary
//! 64 B and 64 KiB and a server stream, at concurrency 1, 16 and 128, plaintext and mTLS
//! (ephemos with the `files` identity; every certificate a valid X.509-SVID minted by a
//! development CA). `--calls N` makes a fixed number of calls instead, for
//! `bench/instructions-per-call.sh`.
//!
//! Prints one JSON line per measurement on stdout and a summary with the ratios on
//! stderr. `--quick` finishes in under two minutes; the full run in under fifteen.
//! `bench/RESULTS.md` has a full run and the command.
//!
//! It sits outside the library: it depends on the runtime (`ephemos`) and on the test
//! support's generated echo service, and nothing depends on it.

mod clients;
mod measure;
mod server;
mod summary;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ephemos::config::value::TrustDomain;
use ephemos::identity::DevCa;
use serde_json::json;

use clients::{Kind, Server};
use measure::Load;
use summary::{Cell, Summary};

/// Benchmark ephemos against raw tonic.
#[derive(Parser)]
#[command(name = "ephemos-bench")]
struct Args {
    /// A short run (one round, short measurements): under two minutes.
    #[arg(long)]
    quick: bool,
    /// Only these clients (tonic, tonic_round_robin, ephemos, ephemos_high_throughput),
    /// for profiling one of them.
    #[arg(long)]
    only: Vec<String>,
    /// Only cells whose `security/load/concurrency` contains this (`plaintext/unary`), or
    /// is this when it names all three (`plaintext/unary_64B/1` is that cell alone).
    #[arg(long)]
    cells: Option<String>,
    /// Rounds per cell (default 5; 1 with --quick): more rounds, steadier medians.
    #[arg(long)]
    rounds: Option<usize>,
    /// Each caller makes exactly this many calls per measurement, with no warm-up,
    /// instead of calling for a fixed time: for counting instructions per call under
    /// `valgrind --tool=callgrind`, where two counts difference away the setup.
    #[arg(long)]
    calls: Option<usize>,
    /// Run as the server process (started by the benchmark itself).
    #[arg(long, hide = true)]
    server: Option<PathBuf>,
}

type Error = Box<dyn std::error::Error>;

/// Counts the client's heap allocations (`--features count-allocations`).
#[cfg(feature = "count-allocations")]
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    if let Some(dir) = args.server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(server::run(&dir));
    }
    let (default_rounds, warmup, duration) = if args.quick {
        (1, Duration::from_millis(150), Duration::from_millis(400))
    } else {
        (5, Duration::from_millis(200), Duration::from_millis(1000))
    };
    let rounds = args.rounds.unwrap_or(default_rounds).max(1);

    let dir = std::env::temp_dir().join(format!("ephemos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = DevCa::new(TrustDomain::parse("example.org")?)?;
    let lifetime = Duration::from_secs(4 * 3600);
    ca.mint(&"spiffe://example.org/bench-server".parse()?, lifetime)?
        .write_pem_files(&dir, "server")?;
    ca.mint(&"spiffe://example.org/bench-client".parse()?, lifetime)?
        .write_pem_files(&dir, "client")?;

    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--server")
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().ok_or("no server stdout")?).read_line(&mut line)?;
    let addrs: Vec<&str> = line.split_whitespace().collect();
    let [_, plain, tls] = addrs.as_slice() else {
        return Err(format!("the server said {line:?}").into());
    };
    let server = Server {
        plain: plain.parse()?,
        tls: tls.parse()?,
        dir: dir.clone(),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| args.only.is_empty() || args.only.iter().any(|o| o == k.name()))
        .collect();
    if kinds.is_empty() {
        return Err(format!("--only names no client: {:?}", args.only).into());
    }
    let plan = Plan {
        rounds,
        length: match args.calls {
            Some(calls) => measure::Length::Calls(calls),
            None => measure::Length::Timed { warmup, duration },
        },
        kinds,
        cells: args.cells.clone(),
    };
    let summary = runtime.block_on(run(&server, &plan))?;
    eprintln!(
        "{}",
        summary.text(
            measure::peak_rss_mib(),
            started.elapsed(),
            if args.quick { "--quick" } else { "full" }
        )
    );
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Whether the `--cells` filter `filter` selects the cell `name`.
fn selects(filter: &str, name: &str) -> bool {
    if filter.split('/').count() == 3 {
        name == filter
    } else {
        name.contains(filter)
    }
}

/// What to run.
struct Plan {
    rounds: usize,
    length: measure::Length,
    kinds: Vec<Kind>,
    cells: Option<String>,
}

async fn run(server: &Server, plan: &Plan) -> Result<Summary, Error> {
    let (rounds, length) = (plan.rounds, plan.length);
    let mut summary = Summary::default();
    for mtls in [false, true] {
        let security = if mtls { "mtls" } else { "plaintext" };
        // Connect-to-first-call: a new client each time, its first call answered.
        for &kind in &plan.kinds {
            let mut times = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let client = clients::connect(kind, server, mtls).await?;
                client.unary(Load::Unary(64).request()).await?;
                times.push(started.elapsed());
            }
            times.sort();
            let median = times[times.len() / 2];
            println!(
                "{}",
                json!({
                    "measure": "connect_to_first_call",
                    "security": security,
                    "client": kind.name(),
                    "micros": median.as_micros() as u64,
                })
            );
            summary.connect(security, kind, median);
        }
        let mut connected = Vec::new();
        for &kind in &plan.kinds {
            connected.push((kind, clients::connect(kind, server, mtls).await?));
        }
        for load in [Load::Unary(64), Load::Unary(65536), Load::ServerStream(16)] {
            for concurrency in [1, 16, 128] {
                let cell = Cell {
                    security,
                    load: load.name(),
                    concurrency,
                };
                let name = format!("{security}/{}/{concurrency}", cell.load);
                if plan.cells.as_ref().is_some_and(|f| !selects(f, &name)) {
                    continue;
                }
                for round in 0..rounds {
                    // Each round starts with another kind, so none always goes first.
                    for i in 0..connected.len() {
                        let (kind, client) = &connected[(i + round) % connected.len()];
                        let sample = measure::run(client, load, concurrency, length).await;
                        println!(
                            "{}",
                            json!({
                                "measure": "load",
                                "security": cell.security,
                                "load": cell.load,
                                "concurrency": concurrency,
                                "round": round,
                                "client": kind.name(),
                                "calls_per_sec": sample.calls_per_sec.round(),
                                "p50_us": sample.p50_us,
                                "p99_us": sample.p99_us,
                                "cpu_us_per_call": (sample.cpu_us_per_call * 10.0).round() / 10.0,
                                "allocations_per_call": sample.allocations_per_call,
                                "errors": sample.errors,
                            })
                        );
                        summary.sample(&cell, *kind, sample);
                    }
                }
            }
        }
    }
    Ok(summary)
}
