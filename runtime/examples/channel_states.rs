//! Calls a local echo server through `ephemos::Channel` and prints every state change:
//! lazy IDLE, CONNECTING, READY; the server dying (fail fast with the connect error,
//! reconnect attempts spaced by the backoff); the server coming back; SHUTDOWN on drop.
//!
//! Run with `cargo run -p ephemos --example channel_states`; it ends by itself.

use std::time::{Duration, Instant};

use ephemos::config::Preset;
use ephemos::{Address, Channel, ConnectivityState};
use ephemos_test_support::EchoServer;
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::pb::echo_client::EchoClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let server = EchoServer::start("first").await;
    let addr = server.addr();

    let mut settings = Preset::Development.connection_config();
    settings.backoff.base_delay = Duration::from_millis(200);
    settings.backoff.max_delay = Duration::from_millis(800);
    let channel = Channel::plaintext(Address::from(addr))
        .target_name("echo")
        .connection(settings)
        .connect_lazy()?;

    let mut watcher = channel.state_watcher();
    let printer = tokio::spawn(async move {
        let mut state = watcher.state();
        println!("{:>6} ms  state {state}", started.elapsed().as_millis());
        while state != ConnectivityState::Shutdown {
            state = watcher.wait_for_state_change(state).await;
            println!("{:>6} ms  state {state}", started.elapsed().as_millis());
        }
    });

    let mut client = EchoClient::new(channel.clone());
    let ask = |message: &str| EchoRequest {
        message: message.to_owned(),
        ..Default::default()
    };
    let reply = client.unary(ask("hello")).await?.into_inner();
    println!(
        "{:>6} ms  call answered by `{}`",
        started.elapsed().as_millis(),
        reply.server
    );

    println!(
        "{:>6} ms  stopping the server",
        started.elapsed().as_millis()
    );
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    match client.unary(ask("anyone?")).await {
        Ok(_) => println!("unexpected answer"),
        Err(status) => println!(
            "{:>6} ms  call failed fast: {:?}: {}",
            started.elapsed().as_millis(),
            status.code(),
            status.message()
        ),
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    println!(
        "{:>6} ms  starting the server again on {addr}",
        started.elapsed().as_millis()
    );
    let _server = EchoServer::start_on(addr, "second").await;
    channel
        .wait_for_state_change(ConnectivityState::TransientFailure)
        .await;
    let reply = client.unary(ask("back?")).await?.into_inner();
    println!(
        "{:>6} ms  call answered by `{}`",
        started.elapsed().as_millis(),
        reply.server
    );

    drop(client);
    drop(channel);
    printer.await?;
    Ok(())
}
