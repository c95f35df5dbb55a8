//! An ephemos client under load, its metrics exposed for Prometheus: gRPC's standard
//! client metrics (gRFC A66, A94, A96) and `ephemos.*`, recorded through the `metrics`
//! facade, served by `metrics-exporter-prometheus` at `http://LISTEN/metrics`.
//!
//! ```text
//! cargo run -p prometheus-example -- --listen 127.0.0.1:9464 --calls 1000
//! curl -s http://127.0.0.1:9464/metrics | grep grpc_client
//! ```
//!
//! It serves the metrics until its standard input closes (or `--serve-for` passes).

use std::net::SocketAddr;
use std::time::Duration;

use ephemos::{Address, Channel};
use ephemos_test_support::EchoServer;
use ephemos_test_support::pb::EchoRequest;
use ephemos_test_support::pb::echo_client::EchoClient;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::AsyncReadExt;

struct Options {
    listen: SocketAddr,
    calls: usize,
    serve_for: Option<Duration>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:9464".parse().map_err(|e| format!("{e}"))?,
        calls: 1000,
        serve_for: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => {
                options.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?
            }
            "--calls" => options.calls = value()?.parse().map_err(|e| format!("--calls: {e}"))?,
            "--serve-for" => {
                let seconds: u64 = value()?.parse().map_err(|e| format!("--serve-for: {e}"))?;
                options.serve_for = Some(Duration::from_secs(seconds));
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}` (--listen ADDR, --calls N, --serve-for SECONDS)"
                ));
            }
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    // The application picks the exporter; ephemos only records through the facade.
    PrometheusBuilder::new()
        .with_http_listener(options.listen)
        .install()?;

    let server = EchoServer::start("echo").await;
    let channel = Channel::plaintext(Address::from(server.addr()))
        .target_name("echo")
        .connect()
        .await?;
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let mut client = EchoClient::new(channel.clone());
            let calls = options.calls / 8 + usize::from(worker < options.calls % 8);
            tokio::spawn(async move {
                for i in 0..calls {
                    let request = EchoRequest {
                        message: format!("{worker}-{i}"),
                        ..Default::default()
                    };
                    client.unary(request).await?;
                }
                Ok::<_, tonic::Status>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    println!(
        "{} calls made; metrics at http://{}/metrics",
        server.calls(),
        options.listen
    );
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    let until_stdin_closes = async { while stdin.read(&mut buffer).await.is_ok_and(|n| n > 0) {} };
    match options.serve_for {
        Some(limit) => {
            let _ = tokio::time::timeout(limit, until_stdin_closes).await;
        }
        None => until_stdin_closes.await,
    }
    Ok(())
}
