//! The user's path: the brief's attribute form (the target from the struct's name),
//! per-environment profiles chosen at run time, run-time overrides on the builder, and
//! the clients ephemos-build generates.

use std::process::Command;
use std::time::Duration;

use ephemos::config::model::{IdentitySource, ServerAuthorization};
use ephemos::identity::Identity;
use ephemos_clients_tests::pb::EchoRequest;
use ephemos_clients_tests::{Echo, OrderHistory, TracedEcho, generated};

mod common;
use common::{mtls_server, recording_mtls_server};

fn checked() -> ephemos::config::Checked {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/connections.toml");
    ephemos::config::check_file(path).unwrap()
}

fn hello() -> EchoRequest {
    EchoRequest {
        message: "hello".into(),
        ..Default::default()
    }
}

#[test]
fn the_brief_form_takes_its_target_from_the_struct_name() {
    assert_eq!(OrderHistory::TARGET, "order_history");
    let mut expected = checked().target("order_history").unwrap().config.clone();
    expected.connection.connect_timeout = Duration::from_secs(4);
    assert_eq!(OrderHistory::CONFIG, expected);
}

#[test]
fn every_profile_is_resolved_and_baked_with_the_attribute_on_top() {
    let checked = checked();
    let target = checked.target("order_history").unwrap();
    let names: Vec<&str> = OrderHistory::BAKED.profile_names().collect();
    assert_eq!(names, ["development", "staging"]);
    for profile in OrderHistory::PROFILES {
        let mut expected = target.profile(&profile.name).unwrap().config.clone();
        // The attribute's argument is above every profile.
        expected.connection.connect_timeout = Duration::from_secs(4);
        assert_eq!(profile.config, expected, "profile {}", profile.name);
    }
    let staging = OrderHistory::BAKED.select(Some("staging")).unwrap();
    assert_eq!(staging.endpoints[0].to_string(), "127.0.0.1:9");
    assert!(staging.service_config.method_configs[0].policy.is_none());
    let development = OrderHistory::BAKED.select(Some("development")).unwrap();
    assert_eq!(development.preset, ephemos::config::Preset::Development);
    assert_eq!(development.endpoints[0].to_string(), "127.0.0.1:50051");
    // A target that declares no profile of its own still has [defaults]' profiles.
    assert_eq!(
        Echo::BAKED.profile_names().collect::<Vec<_>>(),
        ["development", "staging"]
    );
}

#[test]
fn ephemos_profile_picks_a_baked_profile_at_run_time() {
    let run = |profile: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_profile"));
        match profile {
            Some(p) => command.env("EPHEMOS_PROFILE", p),
            None => command.env_remove("EPHEMOS_PROFILE"),
        };
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap().trim().to_owned(),
        )
    };
    assert_eq!(run(None), (Some(0), "127.0.0.1:50051 production 4s".into()));
    assert_eq!(
        run(Some("")),
        (Some(0), "127.0.0.1:50051 production 4s".into())
    );
    assert_eq!(
        run(Some("staging")),
        (Some(0), "127.0.0.1:9 production 4s".into())
    );
    assert_eq!(
        run(Some("development")),
        (Some(0), "127.0.0.1:50051 development 4s".into())
    );
    let (code, out) = run(Some("stagin"));
    assert_eq!(code, Some(2));
    assert_eq!(
        out,
        "error: target `order_history`: no profile `stagin` was baked into this client; \
         baked: `development`, `staging` (or unset EPHEMOS_PROFILE for the target's own settings)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_time_overrides_replace_identity_authorization_and_endpoints_only() {
    let addr = mtls_server("spiffe://example.org/echo").await;

    // As baked, the identity's files are the build machine's: the error names them.
    let channel = OrderHistory::builder()
        .unwrap()
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    let error = channel.connect().await.unwrap_err().to_string();
    assert!(error.contains("/build-machine/svid.pem"), "{error}");

    // The deployment's identity: the baked server rule (server_id) and settings stay.
    let deployed = IdentitySource::Dev {
        id: Some("spiffe://example.org/orders".parse().unwrap()),
    };
    let channel = OrderHistory::builder()
        .unwrap()
        .identity_source(deployed.clone())
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    let mut client = OrderHistory::from_channel(channel.clone());
    // The user's own #[derive(Clone)] works; the RPCs come through Deref.
    let reply = client.clone().unary(hello()).await.unwrap();
    assert_eq!(reply.into_inner().message, "hello");
    assert_eq!(
        channel.server_ids()[0].as_str(),
        "spiffe://example.org/echo"
    );
    assert_eq!(
        channel.max_recv_message_size(),
        OrderHistory::CONFIG.connection.max_message_size.recv as usize
    );
    client.unary(hello()).await.unwrap();

    // Another server rule, given at run time, is the one enforced.
    let channel = OrderHistory::builder()
        .unwrap()
        .identity_source(deployed)
        .server_authorization(ServerAuthorization::Ids(
            vec!["spiffe://example.org/ledger".parse().unwrap()].into(),
        ))
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    let error = channel.connect().await.unwrap_err().to_string();
    assert!(
        error.contains("spiffe://example.org/echo")
            && error.contains("spiffe://example.org/ledger"),
        "{error}"
    );

    // An identity made in code.
    let channel = OrderHistory::builder()
        .unwrap()
        .identity(Identity::dev(&"spiffe://example.org/orders".parse().unwrap()).unwrap())
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    OrderHistory::from_channel(channel)
        .unary(hello())
        .await
        .unwrap();
}

#[test]
fn plaintext_with_a_server_rule_is_refused() {
    let error = ephemos::Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .server_authorization(ServerAuthorization::Ids(
            vec!["spiffe://example.org/echo".parse().unwrap()].into(),
        ))
        .connect_lazy()
        .unwrap_err();
    assert!(
        matches!(error, ephemos::BuildError::PlaintextAuthorization { .. }),
        "{error}"
    );
    let error = ephemos::Channel::plaintext("127.0.0.1:1".parse::<ephemos::Address>().unwrap())
        .identity(Identity::dev(&"spiffe://example.org/a".parse().unwrap()).unwrap())
        .connect_lazy()
        .unwrap_err();
    assert!(
        matches!(error, ephemos::BuildError::NoServerAuthorization { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_client_is_the_attribute_s_client() {
    // One code generator: the generated struct bakes what the attribute bakes.
    assert_eq!(generated::Echo::CONFIG, Echo::CONFIG);
    assert_eq!(generated::Small::TARGET, "small");
    assert_eq!(
        generated::OrderHistory::CONFIG,
        checked().target("order_history").unwrap().config
    );
    let addr = mtls_server("spiffe://example.org/echo").await;
    let channel = generated::Echo::builder()
        .unwrap()
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    let mut client = generated::Echo::from_channel(channel);
    // The generated file carries the protos' code too, in `proto`.
    let request = generated::proto::echo::v1::EchoRequest {
        message: "generated".into(),
        ..Default::default()
    };
    let reply = client.unary(request).await.unwrap();
    assert_eq!(reply.into_inner().message, "generated");
}

#[tokio::test]
async fn a_struct_with_a_channel_field_keeps_it() {
    let channel = Echo::builder().unwrap().connect_lazy().unwrap();
    let client = Echo::from_channel(channel);
    let copy = client.clone();
    assert_eq!(copy.channel().target(), "echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attributes_interceptors_run_in_order_and_it_propagates_the_callers_id() {
    let (addr, server) = recording_mtls_server("spiffe://example.org/echo").await;
    let channel = TracedEcho::builder()
        .unwrap()
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    let mut client = TracedEcho::from_channel(channel);
    client.unary(hello()).await.unwrap();
    let metadata = server.metadata();
    let seen = |key: &str| metadata[0].get(key).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(seen("tenant").as_deref(), Some("blue"));
    // `trace` ran second: it saw the tenant the first wrote.
    assert_eq!(seen("trace").as_deref(), Some("blue/echo.v1.Echo/Unary"));
    // The dev identity's default client ID, the one the handshake presented.
    assert_eq!(
        seen(ephemos::server::CALLER_ID_HEADER).as_deref(),
        Some("spiffe://example.org/ephemos/client")
    );
    // A client of the same target without the attribute's code sends none of it.
    let plain = Echo::builder()
        .unwrap()
        .endpoints([addr.into()])
        .connect_lazy()
        .unwrap();
    Echo::from_channel(plain).unary(hello()).await.unwrap();
    let metadata = server.metadata();
    assert!(metadata[1].get("tenant").is_none());
    assert!(metadata[1].get(ephemos::server::CALLER_ID_HEADER).is_none());
}
