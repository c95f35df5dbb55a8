//! Runs the example with its metrics on a free loopback port, scrapes
//! `/metrics` over HTTP, and checks gRPC's metric names (in Prometheus's spelling) are
//! there with the calls the server counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

#[test]
fn the_metrics_endpoint_shows_grpcs_standard_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prometheus-example"))
        .args(["--listen", &listen, "--calls", "200", "--serve-for", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("200 calls made"), "{line}");

    let mut stream = std::net::TcpStream::connect(&listen).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    drop(child.stdin.take());
    let _ = child.wait();

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    for name in [
        "grpc_client_attempt_started",
        "grpc_client_attempt_duration",
        "grpc_client_call_duration",
        "grpc_client_attempt_sent_total_compressed_message_size",
        "grpc_client_attempt_rcvd_total_compressed_message_size",
        "grpc_subchannel_connection_attempts_succeeded",
        "grpc_subchannel_open_connections",
        "ephemos_pool_hits",
        "ephemos_pool_size",
        "ephemos_connect_duration",
    ] {
        assert!(response.contains(name), "{name} missing from:\n{response}");
    }
    assert!(
        response.contains(
            "grpc_client_attempt_started_total{grpc_method=\"echo.v1.Echo/Unary\",grpc_target=\"echo\"} 200"
        ) || response.contains(
            "grpc_client_attempt_started{grpc_method=\"echo.v1.Echo/Unary\",grpc_target=\"echo\"} 200"
        ),
        "200 attempts, as the server counted:\n{response}"
    );
}
