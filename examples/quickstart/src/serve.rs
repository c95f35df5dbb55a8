//! `quickstart serve --dir DIR [--listen ADDR] [--exit-after DURATION]`: the
//! quickstart's server for other processes.
//!
//! It makes a development CA of its own for `example.org`, serves Greeter (and
//! grpc.health.v1, SERVING) over SPIFFE mTLS as `spiffe://example.org/greeter`, and
//! writes into DIR what a client in another process needs: a client SVID
//! (`spiffe://example.org/ephemos/client`) as PEM files, and a `connections.toml`
//! whose targets use them:
//!
//! - `greeter`: the server, with the quickstart's retry policy;
//! - `greeter_wrong_id`: the same server, but expecting `spiffe://example.org/billing`,
//!   so a client refuses it;
//! - `nothing_listens`: a loopback port nothing listens on.
//!
//! `connections.toml` is written last (and whole, by a rename), so a script can wait
//! for it and then run `ephemos probe DIR/connections.toml greeter`. The server stops
//! by itself after `--exit-after` (default 10m).

use std::path::PathBuf;
use std::time::Duration;

use ephemos::config::model::ServerAuthorization;
use ephemos::config::value::{SpiffeId, TrustDomain};
use ephemos::identity::{DevCa, Identity, LocalAgent, PemPaths};

use crate::flaky::Flaky;
use crate::pb::greeter_server::GreeterServer;

type Error = Box<dyn std::error::Error>;

struct Args {
    dir: PathBuf,
    listen: std::net::SocketAddr,
    exit_after: Duration,
}

fn parse(args: &[String]) -> Result<Args, Error> {
    let usage = "usage: quickstart serve --dir DIR [--listen 127.0.0.1:0] [--exit-after 10m]";
    let mut parsed = Args {
        dir: PathBuf::new(),
        listen: "127.0.0.1:0".parse()?,
        exit_after: Duration::from_secs(600),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {usage}"))?;
        match flag.as_str() {
            "--dir" => parsed.dir = PathBuf::from(value),
            "--listen" => {
                parsed.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}; {usage}"))?
            }
            "--exit-after" => {
                parsed.exit_after = humantime::parse_duration(value)
                    .map_err(|e| format!("--exit-after {value}: {e}; {usage}"))?
            }
            other => return Err(format!("unknown flag {other}; {usage}").into()),
        }
    }
    if parsed.dir.as_os_str().is_empty() {
        return Err(format!("--dir is required; {usage}").into());
    }
    Ok(parsed)
}

/// Runs the server until `--exit-after` has passed.
pub(crate) async fn run(args: &[String]) -> Result<(), Error> {
    let args = parse(args)?;
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let ca = DevCa::new(TrustDomain::parse("example.org")?)?;
    // The server's SVID outlives the run; the client's is written once, for as long.
    let lifetime = args.exit_after + Duration::from_secs(3600);
    let server_id: SpiffeId = "spiffe://example.org/greeter".parse()?;
    let server = ca.mint(&server_id, lifetime)?;
    let client = ca
        .mint(&"spiffe://example.org/ephemos/client".parse()?, lifetime)?
        .write_pem_files(&dir, "client")?;

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let incoming = ephemos::server::incoming(
        listener,
        Identity::local(LocalAgent::new(server)),
        ServerAuthorization::Any,
    )
    .await?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<GreeterServer<Flaky>>().await;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(GreeterServer::new(Flaky::default()))
            .serve_with_incoming(incoming),
    );

    let config = dir.join("connections.toml");
    let temporary = dir.join(".connections.toml.tmp");
    std::fs::write(&temporary, connections_toml(&client, addr, closed))?;
    std::fs::rename(&temporary, &config)?;
    println!(
        "serving greeter.v1.Greeter as {server_id} on {addr} for {}; clients: {}",
        humantime::format_duration(args.exit_after),
        config.display()
    );

    tokio::select! {
        result = server => result??,
        () = tokio::time::sleep(args.exit_after) => {}
    }
    Ok(())
}

fn connections_toml(
    client: &PemPaths,
    addr: std::net::SocketAddr,
    closed: std::net::SocketAddr,
) -> String {
    let path = |p: &std::path::Path| toml_string(&p.display().to_string());
    format!(
        r#"# Written by `quickstart serve`: its server on {addr}, and a client identity minted by
# the server's own development CA (so only this server trusts it, and it trusts no other).
[defaults]
trust_domain = "example.org"
identity = {{ source = "files", cert = {cert}, key = {key}, bundle = {bundle} }}
connect_timeout = "2s"

[targets.greeter]
service = "greeter.v1.Greeter"
address = "{addr}"
server_id = "spiffe://example.org/greeter"

[targets.greeter.retry]
max_attempts = 4
retryable_status_codes = ["UNAVAILABLE"]
initial_backoff = "20ms"
max_backoff = "200ms"

[targets.greeter.methods.SayHello]
timeout = "2s"

# The same server, but the client expects another SPIFFE ID: it refuses the server.
[targets.greeter_wrong_id]
service = "greeter.v1.Greeter"
address = "{addr}"
server_id = "spiffe://example.org/billing"

# A loopback port nothing listens on.
[targets.nothing_listens]
service = "greeter.v1.Greeter"
address = "{closed}"
server_id = "spiffe://example.org/greeter"
"#,
        cert = path(&client.cert),
        key = path(&client.key),
        bundle = path(&client.bundle),
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
