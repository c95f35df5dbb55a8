//! Cleanup replaces a connection unhealthy for a whole interval once: the sweeps made
//! while it drains do not ask again, and the new connection is not torn down by a
//! request meant for the old one. Connections are counted at the server.

mod common;

use std::time::Duration;

use common::{MS, client, eventually, request};
use ephemos::ConnectivityState;
use ephemos_test_support::EchoServer;
use tokio_stream::wrappers::ReceiverStream;

const SOON: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_draining_for_several_cleanups_is_replaced_once() {
    let server = EchoServer::start_with_health("s").await;
    let channel = common::echo_target(&format!(
        "[targets.echo]\nendpoints = {}\nidentity = \"plaintext\"\npreset = \"development\"\n\
         service = \"echo.v1.Echo\"\nhealth_check = true\n\
         backoff = {{ base = \"50ms\", max = \"100ms\" }}\n\
         pool = {{ size = 1, warm = true, cleanup_interval = \"100ms\" }}\n",
        common::endpoints_of([server.addr()])
    ));
    channel.connect().await.unwrap();

    // A call that stays in flight until the test ends it: the replaced connection
    // drains until then.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(request("held")).await.unwrap();
    let mut replies = client(&channel)
        .bidi(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replies.message().await.unwrap().unwrap().message, "held");

    server.set_serving(false).await;
    eventually(SOON, "the unhealthy connection replaced", || {
        channel.stats().pool_evictions >= 1
    })
    .await;
    // Five more sweeps while it drains.
    tokio::time::sleep(MS(500)).await;
    server.set_serving(true).await;
    drop(tx);
    while replies.message().await.unwrap().is_some() {}

    common::wait_for(&channel, ConnectivityState::Ready, SOON).await;
    // Long enough for a stale request to tear the new connection down and another to
    // be made (the backoff is 100 ms at most).
    tokio::time::sleep(MS(500)).await;
    common::unary_calls(&channel, 3).await;
    assert_eq!(
        server.connections_accepted(),
        2,
        "the old one and its replacement: {}",
        channel.stats()
    );
    assert_eq!(channel.stats().pool_evictions, 1, "{}", channel.stats());
}
