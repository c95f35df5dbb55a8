//! What `#[ephemos::client]` bakes, compared with what resolving the same file gives at
//! run time; and baked clients calling a real server over SPIFFE mTLS.

use std::time::Duration;

use ephemos::config::service_config::ServiceConfig;
use ephemos_clients_tests::pb::EchoRequest;
use ephemos_clients_tests::{Echo, InlineEcho, TunedEcho};

mod common;

fn resolved(name: &str) -> ephemos::TargetConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/connections.toml");
    let checked = ephemos::config::check_file(path).unwrap();
    checked.target(name).unwrap().config.clone()
}

#[test]
fn the_baked_constant_is_the_resolved_file() {
    // Editing connections.toml rebuilds the crate (the file is an input of the
    // attribute), so this equality holds for whatever the file says.
    assert_eq!(Echo::CONFIG, resolved("echo"));
    assert_eq!(Echo::TARGET, "echo");
    assert_eq!(
        ServiceConfig::parse_json(Echo::SERVICE_CONFIG_JSON).unwrap(),
        Echo::CONFIG.service_config
    );
}

#[test]
fn arguments_override_the_file() {
    let mut expected = resolved("echo");
    expected.connection.connect_timeout = Duration::from_secs(1);
    expected.pool.size = 2;
    expected.pool.max_size = 2;
    assert_eq!(TunedEcho::CONFIG, expected);
}

#[test]
fn an_inline_client_needs_no_file_entry() {
    let config = InlineEcho::CONFIG;
    assert_eq!(config.name, "InlineEcho");
    assert_eq!(config.endpoints[0].to_string(), "127.0.0.1:50051");
    assert_eq!(config.preset, ephemos::config::Preset::Development);
    // The crate's connections.toml still gives its [defaults] (the trust domain).
    let checked = ephemos::config::check_str(
        "attribute",
        "[defaults]\ntrust_domain = \"example.org\"\n[targets.InlineEcho]\naddress = \"127.0.0.1:50051\"\npreset = \"development\"\nidentity = \"plaintext\"\nservice = \"echo.v1.Echo\"\n",
    );
    let mut expected = checked.target("InlineEcho").unwrap().config.clone();
    expected.name = "InlineEcho".into();
    assert_eq!(config, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baked_client_calls_a_real_server_over_mtls() {
    // The server: dev identity `spiffe://example.org/echo`, as `server_id` expects.
    let addr = common::mtls_server("spiffe://example.org/echo").await;

    // The baked settings, at the test server's address.
    let channel = Echo::builder()
        .unwrap()
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    let mut client = Echo::from_channel(channel);
    let reply = client
        .unary(EchoRequest {
            message: "hi".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "hi");
    assert_eq!(
        client.channel().server_ids()[0].as_str(),
        "spiffe://example.org/echo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_baked_limit_is_resource_exhausted_and_never_sent() {
    // The generated client leaves the send limit to the channel: tonic's own limit would
    // fail inside the body and reach the caller as a stream reset (INTERNAL).
    let server = ephemos_test_support::EchoServer::start("small").await;
    let channel = ephemos_clients_tests::SmallEcho::builder()
        .unwrap()
        .endpoints([server.addr().into()])
        .connect_lazy()
        .unwrap();
    let mut client = ephemos_clients_tests::SmallEcho::from_channel(channel);
    let status = client
        .unary(EchoRequest {
            padding: vec![0; 2000],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("request message of 2003 bytes is larger than the send limit of 1024 bytes"),
        "{status:?}"
    );
    assert_eq!(server.calls(), 0, "nothing reached the server");
    let fits = EchoRequest {
        padding: vec![0; 900],
        ..Default::default()
    };
    client.unary(fits).await.unwrap();
    assert_eq!(server.calls(), 1);
}
