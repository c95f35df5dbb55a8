//! The subchannel on its own: its service sends on the current connection, and a driver
//! that dies (here, a connector that panics) publishes SHUTDOWN, so calls fail instead of
//! waiting for a subchannel nobody drives.

use std::time::Duration;

use ephemos_test_support::EchoServer;
use tonic::Code;
use tower::{Service, ServiceExt};

use super::{BoxConnector, ChannelShared, Load, Subchannel, SubchannelConfig};
use crate::call::AttemptError;
use crate::connector::{Connected, Dial};
use crate::error::ConnectError;
use crate::pool::Pool;
use crate::state::ConnectivityState;
use crate::testing::{echo_request, quick};

fn config(address: std::net::SocketAddr) -> SubchannelConfig {
    SubchannelConfig {
        index: 0,
        target: "echo".into(),
        address: address.into(),
        connection: quick(),
        tls: None,
        health: None,
        rotation_spread: std::time::Duration::ZERO,
    }
}

async fn wait_for(subchannel: &Subchannel, state: ConnectivityState) {
    let mut view = subchannel.watch();
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(|v| v.state == state))
        .await
        .unwrap_or_else(|_| panic!("still {}", subchannel.state()))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_on_its_connection_once_ready() {
    let server = EchoServer::start("s").await;
    let mut subchannel =
        Subchannel::spawn(config(server.addr()), ChannelShared::new(), Load::new());
    let unsent = subchannel.call(echo_request("early")).await.unwrap_err();
    assert!(
        matches!(unsent, AttemptError::Unsent(_)),
        "not READY yet: {unsent:?}"
    );
    wait_for(&subchannel, ConnectivityState::Ready).await;
    let response = ServiceExt::ready(&mut subchannel)
        .await
        .unwrap()
        .call(echo_request("x"))
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    drop(response);
    assert_eq!(server.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_panics_publishes_shutdown_and_calls_fail() {
    let panicking = BoxConnector::new(tower::service_fn(|_: Dial| async {
        panic!("a connector bug");
        #[allow(unreachable_code)]
        Ok::<Connected, ConnectError>(unreachable!())
    }));
    let channel = ChannelShared::new();
    let load = Load::new();
    channel.set_loads(vec![load.clone()]);
    let subchannel = Subchannel::spawn_with(
        config("127.0.0.1:9".parse().unwrap()),
        channel.clone(),
        load,
        panicking,
    );
    subchannel.request_connect();
    wait_for(&subchannel, ConnectivityState::Shutdown).await;

    let mut pool = Pool::of("echo".into(), vec![subchannel], channel, 1);
    let Err(error) = tokio::time::timeout(Duration::from_secs(5), pool.call(echo_request("x")))
        .await
        .expect("the call does not wait for a dead driver")
    else {
        panic!("a call through a dead subchannel succeeded");
    };
    let AttemptError::NoConnection(status) = error else {
        panic!("{error:?}");
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
