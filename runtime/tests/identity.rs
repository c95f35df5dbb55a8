//! SPIFFE mTLS with real TLS handshakes on loopback: certificates minted in the test by
//! the dev CA, the real `spiffe` client fetching them from an in-process Workload API.

mod common;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MS, quick, request};
use ephemos::config::model::ServerAuthorization;
use ephemos::config::value::{SpiffeId, TrustDomain};
use ephemos::identity::{DevCa, Identity, LocalAgent};
use ephemos::{Address, Channel, ConnectError};
use ephemos_test_support::pb::echo_client::EchoClient;
use ephemos_test_support::pb::echo_server::{Echo, EchoServer as EchoService};
use ephemos_test_support::pb::{EchoReply, EchoRequest};
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming};

fn id(text: &str) -> SpiffeId {
    SpiffeId::parse(text).unwrap()
}

fn exactly(text: &str) -> ServerAuthorization {
    ServerAuthorization::Ids(Cow::Owned(vec![id(text)]))
}

fn members_of(td: &str) -> ServerAuthorization {
    ServerAuthorization::TrustDomains(Cow::Owned(vec![TrustDomain::parse(td).unwrap()]))
}

/// Echoes the caller's verified SPIFFE ID, and remembers the address of each caller.
#[derive(Clone, Default)]
struct WhoAmI {
    callers: Arc<Mutex<Vec<std::net::SocketAddr>>>,
    /// The serial of each caller's certificate, per call, with its address.
    serials: Arc<Mutex<Vec<Serial>>>,
}

/// A caller's address and its certificate's serial.
type Serial = (std::net::SocketAddr, Vec<u8>);

type Replies = std::pin::Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for WhoAmI {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let peer = request
            .extensions()
            .get::<ephemos::server::PeerIdentity>()
            .cloned();
        let caller = ephemos::server::peer_id(&request)
            .map(ToString::to_string)
            .unwrap_or_default();
        if let Some(peer) = peer
            && let Some(addr) = peer.remote_addr
        {
            self.callers.lock().unwrap().push(addr);
            self.serials
                .lock()
                .unwrap()
                .push((addr, serial(&peer.certificate)));
        }
        Ok(Response::new(EchoReply {
            message: request.into_inner().message,
            server: caller,
            padding: vec![],
        }))
    }
    type ServerStreamStream = Replies;
    async fn server_stream(&self, _: Request<EchoRequest>) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented(""))
    }
    async fn client_stream(
        &self,
        _: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        Err(Status::unimplemented(""))
    }
    type BidiStream = Replies;
    async fn bidi(&self, _: Request<Streaming<EchoRequest>>) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented(""))
    }
}

struct MtlsServer {
    addr: std::net::SocketAddr,
    refusals: tokio::sync::broadcast::Receiver<ephemos::server::Refused>,
    service: WhoAmI,
    _task: tokio::task::JoinHandle<()>,
}

async fn mtls_server(identity: Identity, clients: ServerAuthorization) -> MtlsServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = ephemos::server::incoming(listener, identity, clients)
        .await
        .unwrap();
    let refusals = incoming.refusals();
    let service = WhoAmI::default();
    let routes = EchoService::new(service.clone());
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(routes)
            .serve_with_incoming(incoming)
            .await;
    });
    MtlsServer {
        addr,
        refusals,
        service,
        _task: task,
    }
}

fn client(
    addr: std::net::SocketAddr,
    identity: Identity,
    authorization: ServerAuthorization,
) -> EchoClient<Channel> {
    let channel = Channel::mtls(Address::from(addr), identity, authorization)
        .connection(quick())
        .connect_lazy()
        .unwrap();
    EchoClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_identities_authenticate_each_other() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        exactly("spiffe://example.org/ephemos/client"),
    )
    .await;
    let client_identity = Identity::dev(&id("spiffe://example.org/ephemos/client")).unwrap();
    let mut client = client(
        server.addr,
        client_identity.clone(),
        exactly("spiffe://example.org/echo"),
    );
    let reply = client
        .unary(request("hi"))
        .await
        .expect("mTLS call")
        .into_inner();
    assert_eq!(
        reply.server, "spiffe://example.org/ephemos/client",
        "the server saw the client's verified ID"
    );
    assert_eq!(
        client_identity.spiffe_id().await.unwrap(),
        id("spiffe://example.org/ephemos/client")
    );
    // Members of the trust domain are accepted too.
    let mut member = self::client(
        server.addr,
        Identity::dev(&id("spiffe://example.org/ephemos/client")).unwrap(),
        members_of("example.org"),
    );
    member.unary(request("again")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_the_wrong_id_is_refused_with_its_id_and_the_rule() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://example.org/impostor")).unwrap(),
        ServerAuthorization::Any,
    )
    .await;
    let mut client = client(
        server.addr,
        Identity::dev(&id("spiffe://example.org/ephemos/client")).unwrap(),
        exactly("spiffe://example.org/payments"),
    );
    let status = client.unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let message = status.message();
    assert!(
        message.contains("`spiffe://example.org/impostor`"),
        "names the peer: {message}"
    );
    assert!(
        message.contains("is not `spiffe://example.org/payments`"),
        "names the rule: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_the_server_does_not_allow_is_refused_on_both_sides() {
    let mut server = mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        exactly("spiffe://example.org/trusted"),
    )
    .await;
    let mut client = client(
        server.addr,
        Identity::dev(&id("spiffe://example.org/stranger")).unwrap(),
        ServerAuthorization::Any,
    );
    let status = client.unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("refused the client's certificate"),
        "{status:?}"
    );
    let refused = tokio::time::timeout(MS(5000), server.refusals.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        refused
            .reason
            .contains("`spiffe://example.org/stranger` is not `spiffe://example.org/trusted`"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_trust_domain_does_not_chain_to_the_bundle() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://elsewhere.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await;
    let mut client = client(
        server.addr,
        Identity::dev(&id("spiffe://example.org/ephemos/client")).unwrap(),
        ServerAuthorization::Any,
    );
    let status = client.unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("no bundle for trust domain elsewhere.org"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_never_a_fallback() {
    // A TLS client against a plaintext server fails; it does not quietly go plaintext.
    let plain = ephemos_test_support::EchoServer::start("plain").await;
    let mut client = client(
        plain.addr(),
        Identity::dev(&id("spiffe://example.org/c")).unwrap(),
        ServerAuthorization::Any,
    );
    let status = client.unary(request("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("TLS"), "{status:?}");
    assert_eq!(plain.calls(), 0);
}

/// A certificate's serial number.
fn serial(der: &[u8]) -> Vec<u8> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).unwrap();
    certificate.raw_serial().to_vec()
}

fn distinct_callers(server: &MtlsServer) -> usize {
    let callers = server.service.callers.lock().unwrap();
    callers
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Calls from 4 workers until `stop`, each call bounded; the number of calls made.
fn keep_calling(
    client: &EchoClient<Channel>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Result<usize, Status>>> {
    (0..4)
        .map(|worker| {
            let (mut client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut calls = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut call = Request::new(request(&format!("{worker}")));
                    call.set_timeout(Duration::from_secs(10));
                    client.unary(call).await?;
                    calls += 1;
                }
                Ok(calls)
            })
        })
        .collect()
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "not true after 10 s: {what}"
        );
        tokio::time::sleep(MS(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_client_svid_replaces_connections_without_failing_a_call() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await;
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    let me = id("spiffe://example.org/rotating");
    let first = ca.mint(&me, Duration::from_secs(3600)).unwrap();
    let first_serial = serial(&first.svid.chain[0]);
    let agent = LocalAgent::new(first);
    let client = client(
        server.addr,
        Identity::local(agent.clone()),
        exactly("spiffe://example.org/echo"),
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = keep_calling(&client, &stop);
    until("calls flow on one connection", || {
        distinct_callers(&server) == 1
    })
    .await;
    let second = ca.mint(&me, Duration::from_secs(3600)).unwrap();
    let second_serial = serial(&second.svid.chain[0]);
    assert_ne!(first_serial, second_serial);
    agent.rotate(second);
    until("a second connection after the rotation", || {
        distinct_callers(&server) == 2
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for worker in workers {
        total += worker
            .await
            .unwrap()
            .expect("no call fails during the rotation");
    }
    assert!(total > 4, "calls kept flowing ({total})");
    // The server saw the old certificate on the first connection and the new one on the
    // second, and nothing else.
    let serials = server.service.serials.lock().unwrap().clone();
    let first_addr = serials[0].0;
    for (addr, seen) in &serials {
        let expected = if *addr == first_addr {
            &first_serial
        } else {
            &second_serial
        };
        assert_eq!(seen, expected, "the certificate seen on {addr}");
    }
    assert!(
        serials.iter().any(|(_, s)| *s == second_serial),
        "the new SVID was used"
    );
}

/// A server, and an mTLS channel of `size` connections to it, warmed up, whose SVID
/// the returned function rotates.
async fn rotating_channel(size: u32) -> (MtlsServer, Channel, impl Fn()) {
    let server = echo_server().await;
    let (channel, rotate) = rotating_channel_to(server.addr, size, quick()).await;
    (server, channel, rotate)
}

/// The server the rotating channels go to: `spiffe://example.org/echo`, any client.
async fn echo_server() -> MtlsServer {
    mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await
}

/// An mTLS channel of `size` connections to `addr` (the server of
/// [`rotating_channel`], or something in front of it), warmed up, whose SVID the
/// returned function rotates.
async fn rotating_channel_to(
    addr: std::net::SocketAddr,
    size: u32,
    connection: ephemos::config::model::ConnectionConfig,
) -> (Channel, impl Fn()) {
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    let me = id("spiffe://example.org/rotating");
    let agent = LocalAgent::new(ca.mint(&me, Duration::from_secs(3600)).unwrap());
    let channel = Channel::mtls(
        Address::from(addr),
        Identity::local(agent.clone()),
        exactly("spiffe://example.org/echo"),
    )
    .connection(connection)
    .pool(ephemos::config::model::PoolConfig {
        size,
        max_size: size,
        warm: true,
        ..ephemos::config::Preset::Production.pool_config()
    })
    .connect_lazy()
    .unwrap();
    until("every connection READY", || common::all_ready(&channel)).await;
    let rotate = move || agent.rotate(ca.mint(&me, Duration::from_secs(3600)).unwrap());
    (channel, rotate)
}

/// A TCP front for a server: the first connection is forwarded until the test cuts
/// it; every later one is accepted and never answered (a server that hangs).
struct FirstOnly {
    addr: std::net::SocketAddr,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    cut: Arc<tokio::sync::Notify>,
    _task: tokio::task::JoinHandle<()>,
}

impl FirstOnly {
    async fn start(upstream: std::net::SocketAddr) -> FirstOnly {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (counter, cut_first) = (accepted.clone(), cut.clone());
        let task = tokio::spawn(async move {
            let mut hanging = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                    hanging.push(client);
                    continue;
                }
                let cut = cut_first.clone();
                tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        FirstOnly {
            addr,
            accepted,
            cut,
            _task: task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes the first connection, as a network failure would.
    fn cut_first(&self) {
        self.cut.notify_one();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_connection_is_watched_while_its_successor_is_made() {
    let server = echo_server().await;
    let front = FirstOnly::start(server.addr).await;
    let connection = ephemos::config::model::ConnectionConfig {
        connect_timeout: Duration::from_secs(30),
        ..quick()
    };
    let (channel, rotate) = rotating_channel_to(front.addr, 1, connection).await;
    rotate();
    until("the successor being made (its server hangs)", || {
        front.accepted() == 2
    })
    .await;
    front.cut_first();
    // The old connection's loss is acted on now, not when the successor's attempt
    // gives up (30 s): the subchannel goes IDLE.
    common::wait_for(
        &channel,
        ephemos::ConnectivityState::Idle,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_replaces_the_connection_before_the_old_one_drains() {
    let (server, channel, rotate) = rotating_channel(1).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = keep_calling(&EchoClient::new(channel.clone()), &stop);
    until("calls flow", || distinct_callers(&server) == 1).await;
    let before = channel.stats();
    rotate();
    until("the new connection carries calls", || {
        distinct_callers(&server) == 2
    })
    .await;
    tokio::time::sleep(MS(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker
            .await
            .unwrap()
            .expect("no call fails during the rotation");
    }
    let after = channel.stats();
    // Make-before-break: the new connection was READY before the old one stopped
    // taking calls, so no call waited for a connection.
    assert_eq!(after.pool_misses, before.pool_misses, "{after}");
    assert!(after.pool_hits > before.pool_hits);
    assert_eq!(after.connections[0].connects, 2, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_replaces_a_pools_connections_at_different_times() {
    let (_server, channel, rotate) = rotating_channel(4).await;
    rotate();
    until("every connection replaced", || {
        channel.stats().connections.iter().all(|c| c.connects == 2)
    })
    .await;
    let ages: Vec<Duration> = channel
        .stats()
        .connections
        .iter()
        .map(|c| c.age.expect("connected"))
        .collect();
    let (min, max) = (ages.iter().min().unwrap(), ages.iter().max().unwrap());
    // Spread over two seconds (half a second per connection): four replacements in
    // the same 50 ms would be a burst.
    assert!(
        *max - *min > MS(50),
        "replaced within {:?} of each other: {ages:?}",
        *max - *min
    );
    EchoClient::new(channel.clone())
        .unary(request("after"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_replaced_before_its_certificate_expires() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await;
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    // Past 90% of its life already, 4 s left, and nobody renews it: the connection is
    // replaced when half of what is left has passed, before it expires.
    let short = ca
        .mint_with(
            &id("spiffe://example.org/short"),
            Duration::from_secs(4),
            |p| {
                p.not_before = time::OffsetDateTime::now_utc() - time::Duration::seconds(100);
            },
        )
        .unwrap();
    let client = client(
        server.addr,
        Identity::local(LocalAgent::new(short)),
        ServerAuthorization::Any,
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = keep_calling(&client, &stop);
    until("a second connection before the certificate expires", || {
        distinct_callers(&server) >= 2
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker
            .await
            .unwrap()
            .expect("no call fails while the connection is replaced");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_stats_show_both_identities_the_certificates_end_and_the_servers_settings() {
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    let lifetime = Duration::from_secs(3 * 3600);
    let server_svid = ca.mint(&id("spiffe://example.org/echo"), lifetime).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = ephemos::server::incoming(
        listener,
        Identity::local(LocalAgent::new(server_svid)),
        ServerAuthorization::Any,
    )
    .await
    .unwrap();
    let _task = tokio::spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(7)
            .initial_stream_window_size(123_456)
            .add_service(EchoService::new(WhoAmI::default()))
            .serve_with_incoming(incoming),
    );
    let channel = Channel::mtls(
        Address::from(addr),
        Identity::dev(&id("spiffe://example.org/ephemos/client")).unwrap(),
        exactly("spiffe://example.org/echo"),
    )
    .connection(quick())
    .connect_lazy()
    .unwrap();
    EchoClient::new(channel.clone())
        .unary(request("hi"))
        .await
        .unwrap();
    let stats = channel.stats();
    let connection = &stats.connections[0];
    assert_eq!(
        connection.client_id,
        Some(id("spiffe://example.org/ephemos/client"))
    );
    assert_eq!(connection.server_id, Some(id("spiffe://example.org/echo")));
    let expiry = connection
        .server_certificate_expiry
        .expect("an expiry over TLS");
    let expected = std::time::SystemTime::now() + lifetime;
    let off = expiry
        .duration_since(expected)
        .unwrap_or_else(|e| e.duration());
    assert!(
        off < Duration::from_secs(120),
        "expiry {expiry:?}, expected about {expected:?}"
    );
    assert!(
        connection.server_settings.contains(&(3, 7)),
        "{:?}",
        connection.server_settings
    );
    assert!(connection.server_settings.contains(&(4, 123_456)));
    assert_eq!(ephemos::http2_setting_name(4), Some("INITIAL_WINDOW_SIZE"));
}

/// A server over mTLS that records each call's metadata; the client's channel.
async fn recording_server_and_channel(
    propagate: bool,
) -> (
    ephemos_test_support::EchoService,
    Channel,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = ephemos::server::incoming(
        listener,
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await
    .unwrap();
    let recording = ephemos_test_support::EchoService::named("echo");
    let routes = EchoService::new(recording.clone());
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(routes)
            .serve_with_incoming(incoming)
            .await;
    });
    let channel = Channel::mtls(
        Address::from(addr),
        Identity::dev(&id("spiffe://example.org/caller")).unwrap(),
        exactly("spiffe://example.org/echo"),
    )
    .connection(quick())
    .propagate_identity(propagate)
    // Whatever an application writes under the name, the connection's ID replaces it.
    .interceptor(|_, metadata| {
        metadata.insert(
            ephemos::interceptor::CALLER_ID_HEADER,
            "spiffe://example.org/forged".parse().unwrap(),
        );
        Ok(())
    })
    .connect_lazy()
    .unwrap();
    (recording, channel, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_propagation_sends_the_id_the_connection_presented() {
    let (server, channel, _task) = recording_server_and_channel(true).await;
    let mut client = EchoClient::new(channel);
    for _ in 0..2 {
        client.unary(request("hi")).await.unwrap();
    }
    let seen: Vec<_> = server
        .metadata()
        .iter()
        .map(|m| {
            m.get_all(ephemos::interceptor::CALLER_ID_HEADER)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        seen,
        vec![vec!["spiffe://example.org/caller".to_owned()]; 2],
        "counted at the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_propagation_the_header_is_the_applications_own() {
    let (server, channel, _task) = recording_server_and_channel(false).await;
    EchoClient::new(channel).unary(request("hi")).await.unwrap();
    let metadata = server.metadata();
    assert_eq!(
        metadata[0]
            .get(ephemos::interceptor::CALLER_ID_HEADER)
            .map(|v| v.to_str().unwrap()),
        Some("spiffe://example.org/forged")
    );
}

#[tokio::test]
async fn a_plaintext_channel_cannot_propagate_an_identity() {
    let result = Channel::plaintext(Address::from(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        1,
    ))))
    .propagate_identity(true)
    .connect_lazy();
    let error = result.expect_err("plaintext has no identity to send");
    assert!(
        matches!(
            error,
            ephemos::BuildError::PropagationWithoutIdentity { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_frees_its_port() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let identity = Identity::dev(&id("spiffe://example.org/s")).unwrap();
    let incoming = ephemos::server::incoming(listener, identity, ServerAuthorization::Any)
        .await
        .unwrap();
    drop(incoming);
    until("the port is free again", || {
        std::net::TcpListener::bind(addr).is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outlives_its_identity_and_keeps_reloading() {
    // As in `ephemos::server::incoming`, which keeps only the source of the identity.
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str| {
        let material = ca
            .mint(
                &id(&format!("spiffe://example.org/{name}")),
                Duration::from_secs(3600),
            )
            .unwrap();
        let paths = material.write_pem_files(dir.path(), "svid").unwrap();
        (paths.cert, paths.key, paths.bundle)
    };
    let (cert, key, bundle) = write("first");
    let identity = Identity::files(cert, key, bundle);
    let source = identity.x509_source().await.unwrap();
    drop(identity);
    write("second");
    until("the files are reloaded", || {
        source.svid().unwrap().spiffe_id().to_string() == "spiffe://example.org/second"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_api_source_works_against_a_spire_like_agent() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await;
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    let agent = LocalAgent::new(
        ca.mint(
            &id("spiffe://example.org/workload"),
            Duration::from_secs(3600),
        )
        .unwrap(),
    );
    let (agent_addr, _agent_task) = agent.serve_tcp().await.unwrap();
    let identity =
        Identity::workload_api(Some(&format!("tcp://{agent_addr}")), Duration::from_secs(5));
    let mut client = client(server.addr, identity, members_of("example.org"));
    let reply = client
        .unary(request("hi"))
        .await
        .expect("mTLS with the Workload API's SVID");
    assert_eq!(reply.into_inner().server, "spiffe://example.org/workload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_workload_api_is_a_clear_error_after_the_initial_sync_timeout() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    // The sync timeout is longer than the connect timeout: it, not the attempt's
    // deadline, bounds the wait for an SVID, and the error names the endpoint.
    let identity = Identity::workload_api(Some(&format!("tcp://{closed}")), MS(1200));
    let mut settings = quick();
    settings.connect_timeout = MS(300);
    let channel = Channel::mtls(Address::from(closed), identity, ServerAuthorization::Any)
        .connection(settings)
        .connect_lazy()
        .unwrap();
    let started = std::time::Instant::now();
    let error = channel.connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Identity(_)), "{error:?}");
    assert!(
        error.to_string().contains(&format!("tcp://{closed}")),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_source_reads_pem_files_and_reloads_them() {
    let server = mtls_server(
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
    )
    .await;
    let ca = DevCa::shared(&TrustDomain::parse("example.org").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |material: &ephemos::identity::X509Material| {
        let paths = material.write_pem_files(dir.path(), "svid").unwrap();
        (paths.cert, paths.key, paths.bundle)
    };
    let (cert, key, bundle) = write(
        &ca.mint(
            &id("spiffe://example.org/from-files"),
            Duration::from_secs(3600),
        )
        .unwrap(),
    );
    let mut client = client(
        server.addr,
        Identity::files(cert, key, bundle),
        members_of("example.org"),
    );
    let reply = client
        .unary(request("hi"))
        .await
        .expect("mTLS with the files' SVID");
    assert_eq!(reply.into_inner().server, "spiffe://example.org/from-files");

    // New files, new SVID: the connection is replaced and the server sees the new ID.
    write(
        &ca.mint(
            &id("spiffe://example.org/renamed"),
            Duration::from_secs(3600),
        )
        .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client
            .unary(request("again"))
            .await
            .expect("no call fails while reloading");
        if reply.into_inner().server == "spiffe://example.org/renamed" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the files were not reloaded"
        );
        tokio::time::sleep(MS(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_handshakes_are_bounded_in_number_and_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ephemos::server::HandshakeLimits {
        max_in_progress: 2,
        timeout: Duration::from_millis(500),
    };
    let incoming = ephemos::server::incoming_with_limits(
        listener,
        Identity::dev(&id("spiffe://example.org/echo")).unwrap(),
        ServerAuthorization::Any,
        limits,
    )
    .await
    .unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EchoService::new(WhoAmI::default()))
            .serve_with_incoming(incoming),
    );

    // Two clients connect and never say a word: they hold both handshake slots.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let mut client = client(
        addr,
        Identity::dev(&id("spiffe://example.org/c")).unwrap(),
        exactly("spiffe://example.org/echo"),
    );
    client.unary(request("waited")).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "the third handshake did not wait for a slot ({waited:?})"
    );
    // The stalled ones were closed at their timeout.
    for mut socket in stalled {
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut socket, &mut buf),
        )
        .await
        .expect("closed by the server");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}
