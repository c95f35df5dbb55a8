//! The quickstart: a target declared in `connections.toml`, a client declared with one
//! attribute, a local server with the `dev` SPIFFE identity, and calls between them.
//! Run with `cargo run -p quickstart`; it ends by itself in a few seconds.
//!
//! `cargo run -p quickstart -- serve --dir DIR` runs the same server for other
//! processes instead (the `ephemos probe` and `ephemos call` commands, CI): see
//! [`serve`].

mod flaky;
mod serve;

use ephemos::ConnectivityState;
use ephemos::config::model::ServerAuthorization;
use ephemos::identity::Identity;

#[allow(unreachable_pub, clippy::all)]
mod pb {
    // The generated code names tonic and prost through ephemos: no dependency on them
    // for the client (this example also runs a tonic server, so it depends on tonic).
    ephemos::include_proto!("greeter.v1");
}

use flaky::Flaky;
use pb::HelloRequest;
use pb::greeter_server::GreeterServer;

/// The client: everything about it comes from `connections.toml` (target `greeter`, the
/// struct's name in snake case), checked when this crate compiled, and is baked into
/// `Greeter::CONFIG`. The second field keeps the channel, for `greeter.channel()`.
#[ephemos::client]
struct Greeter(
    pb::greeter_client::GreeterClient<ephemos::Channel>,
    ephemos::Channel,
);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve::run(&args[1..]).await;
    }
    println!("== the target, as resolved when this crate compiled");
    let checked =
        ephemos::config::check_str("connections.toml", include_str!("../connections.toml"));
    if let Some(target) = checked.target(Greeter::TARGET) {
        for setting in target
            .provenance
            .iter()
            .filter(|s| !s.key.starts_with("http2."))
        {
            println!("  {setting}");
        }
    }
    println!("  service config baked: {}", Greeter::SERVICE_CONFIG_JSON);

    println!("\n== a server with the dev identity spiffe://example.org/greeter");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_identity = Identity::dev(&"spiffe://example.org/greeter".parse()?)?;
    let incoming =
        ephemos::server::incoming(listener, server_identity, ServerAuthorization::Any).await?;
    let service = GreeterServer::new(Flaky::default());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    println!("  listening on {addr}");

    println!("\n== the client (baked settings; dialling the server's port)");
    let channel = Greeter::builder()?
        .endpoints([addr.into()])
        .connect_lazy()?;
    let mut watcher = channel.state_watcher();
    let printer = tokio::spawn(async move {
        let mut state = watcher.state();
        println!("  state: {state}");
        while state != ConnectivityState::Shutdown {
            state = watcher.wait_for_state_change(state).await;
            println!("  state: {state}");
        }
    });
    let mut greeter = Greeter::from_channel(channel);
    let (mut ok, mut failed) = (0, 0);
    for i in 1..=6 {
        // The attempts of this call, from the channel's own counts.
        let retries_before = greeter.channel().stats().retries;
        let result = greeter
            .say_hello(HelloRequest {
                name: format!("#{i}"),
            })
            .await;
        let attempts = 1 + greeter.channel().stats().retries - retries_before;
        match result {
            Ok(reply) => {
                ok += 1;
                println!(
                    "  call {i}: {} ({attempts} attempt{})",
                    reply.into_inner().message,
                    if attempts == 1 { "" } else { "s" }
                );
            }
            Err(status) => {
                failed += 1;
                println!(
                    "  call {i}: {:?}: {} ({attempts} attempts)",
                    status.code(),
                    status.message()
                );
            }
        }
    }
    println!(
        "  verified server: {:?}",
        greeter
            .channel()
            .server_ids()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );

    println!("\n== summary");
    println!("  calls: {ok} ok, {failed} failed");
    println!(
        "  the server failed the first attempt of every third call with UNAVAILABLE; the baked policy (up to {} attempts on \
         UNAVAILABLE, gRFC A6) retried each of those, so the caller saw none of them.",
        match Greeter::CONFIG
            .service_config
            .method_configs
            .first()
            .and_then(|m| m.policy.as_ref())
        {
            Some(ephemos::config::service_config::CallPolicy::Retry(p)) => p.max_attempts,
            _ => 1,
        }
    );
    // What the channel did: the pool (its connections, the calls each carried, hits and
    // misses), the retries, and the settings in force.
    let stats = greeter.channel().stats();
    println!(
        "  the pool spread the calls over {} connections: {:?} attempts each",
        stats.connections.len(),
        stats
            .connections
            .iter()
            .map(|c| c.calls)
            .collect::<Vec<_>>()
    );
    for line in stats.to_string().lines() {
        println!("  {line}");
    }
    drop(greeter);
    printer.await?;
    Ok(())
}
