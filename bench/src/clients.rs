//! The clients compared: raw tonic as a careful user hand-rolls it (one
//! `tonic::transport::Channel`, or N independent Channels picked round-robin; over mTLS
//! with a connector of rustls configured by spiffe-rustls, the same X.509-SVID rules
//! ephemos applies) and ephemos channels built from a `connections.toml` target (the
//! default `production` preset; the same without a retry policy; and `high_throughput`
//! with its pool).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ephemos::Channel;
use ephemos_test_support::pb::echo_client::EchoClient;
use ephemos_test_support::pb::{EchoReply, EchoRequest};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel as TonicChannel, Endpoint, Uri};
use tonic::{Request, Status};

/// Which client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One tonic Channel.
    RawOne,
    /// N tonic Channels, round-robin.
    RawRoundRobin,
    /// ephemos, `production` preset.
    Ephemos,
    /// ephemos, `high_throughput` preset (its pool).
    EphemosHighThroughput,
    /// ephemos, `production` preset with `retry = false`: no retry policy (so no
    /// request is kept past its first attempt), no recorder: what the layers cost when
    /// nothing asks them to do anything.
    EphemosNoPolicy,
}

impl Kind {
    /// Every kind, in the order a round runs them.
    pub(crate) const ALL: [Kind; 5] = [
        Kind::RawOne,
        Kind::Ephemos,
        Kind::EphemosNoPolicy,
        Kind::RawRoundRobin,
        Kind::EphemosHighThroughput,
    ];

    /// Its name in the output.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::RawOne => "tonic",
            Kind::RawRoundRobin => "tonic_round_robin",
            Kind::Ephemos => "ephemos",
            Kind::EphemosHighThroughput => "ephemos_high_throughput",
            Kind::EphemosNoPolicy => "ephemos_no_policy",
        }
    }
}

/// Where the server listens and what a client needs to reach it.
pub(crate) struct Server {
    pub(crate) plain: std::net::SocketAddr,
    pub(crate) tls: std::net::SocketAddr,
    pub(crate) dir: std::path::PathBuf,
}

/// A client of one kind, cheap to clone (one per caller task).
#[derive(Clone)]
pub(crate) enum Client {
    /// Over tonic Channels (one, or several round-robin).
    Raw(Arc<[EchoClient<TonicChannel>]>, Arc<AtomicUsize>),
    /// Over an ephemos Channel.
    Ephemos(EchoClient<Channel>),
}

impl Client {
    /// One unary call.
    pub(crate) async fn unary(&self, request: EchoRequest) -> Result<EchoReply, Status> {
        match self {
            Client::Raw(clients, next) => {
                let mut client = pick(clients, next);
                client
                    .unary(Request::new(request))
                    .await
                    .map(|r| r.into_inner())
            }
            Client::Ephemos(client) => client
                .clone()
                .unary(Request::new(request))
                .await
                .map(|r| r.into_inner()),
        }
    }

    /// One server-streaming call, read to its end; the number of replies.
    pub(crate) async fn server_stream(&self, request: EchoRequest) -> Result<usize, Status> {
        let mut stream = match self {
            Client::Raw(clients, next) => pick(clients, next)
                .server_stream(Request::new(request))
                .await?
                .into_inner(),
            Client::Ephemos(client) => client
                .clone()
                .server_stream(Request::new(request))
                .await?
                .into_inner(),
        };
        let mut replies = 0;
        while stream.message().await?.is_some() {
            replies += 1;
        }
        Ok(replies)
    }
}

fn pick(clients: &[EchoClient<TonicChannel>], next: &AtomicUsize) -> EchoClient<TonicChannel> {
    clients[next.fetch_add(1, Ordering::Relaxed) % clients.len()].clone()
}

/// The pool size of the `high_throughput` preset: the N of the round-robin baseline.
pub(crate) fn high_throughput_pool_size() -> usize {
    ephemos::config::Preset::HighThroughput.pool_config().size as usize
}

/// A new client of `kind`, connected (its first connection READY).
pub(crate) async fn connect(
    kind: Kind,
    server: &Server,
    mtls: bool,
) -> Result<Client, Box<dyn std::error::Error>> {
    match kind {
        Kind::RawOne => Ok(Client::Raw(
            Arc::from(vec![raw(server, mtls).await?]),
            Arc::default(),
        )),
        Kind::RawRoundRobin => {
            let mut clients = Vec::new();
            for _ in 0..high_throughput_pool_size() {
                clients.push(raw(server, mtls).await?);
            }
            Ok(Client::Raw(Arc::from(clients), Arc::default()))
        }
        Kind::Ephemos | Kind::EphemosHighThroughput | Kind::EphemosNoPolicy => {
            let (preset, retry) = match kind {
                Kind::EphemosHighThroughput => ("high_throughput", true),
                Kind::EphemosNoPolicy => ("production", false),
                _ => ("production", true),
            };
            let channel = ephemos_channel(server, mtls, preset, retry)?;
            channel.connect().await?;
            Ok(Client::Ephemos(
                EchoClient::new(channel).max_decoding_message_size(8 << 20),
            ))
        }
    }
}

fn ephemos_channel(
    server: &Server,
    mtls: bool,
    preset: &str,
    retry: bool,
) -> Result<Channel, Box<dyn std::error::Error>> {
    let file = |name: &str| server.dir.join(name).display().to_string();
    let (address, identity) = if mtls {
        (
            server.tls,
            format!(
                r#"{{ source = "files", cert = "{}", key = "{}", bundle = "{}" }}
server_id = "spiffe://example.org/bench-server""#,
                file("client.pem"),
                file("client.key"),
                file("client-bundle.pem")
            ),
        )
    } else {
        (server.plain, "\"plaintext\"".to_owned())
    };
    let toml = format!(
        r#"
[targets.bench]
service = "echo.v1.Echo"
address = "{address}"
preset = "{preset}"
trust_domain = "example.org"
max_message_size = "8MiB"
retry = {retry}
identity = {identity}
"#
    );
    let checked = ephemos::config::check_str("bench.toml", toml);
    if checked.diagnostics.has_errors() {
        return Err(format!("{:?}", checked.diagnostics).into());
    }
    let target = checked.target("bench").ok_or("no target")?;
    Ok(Channel::from_target(&target.config).connect_lazy()?)
}

async fn raw(
    server: &Server,
    mtls: bool,
) -> Result<EchoClient<TonicChannel>, Box<dyn std::error::Error>> {
    let channel = if mtls {
        raw_mtls(server.tls, &server.dir).await?
    } else {
        Endpoint::from_shared(format!("http://{}", server.plain))?
            .connect()
            .await?
    };
    Ok(EchoClient::new(channel).max_decoding_message_size(8 << 20))
}

/// tonic over SPIFFE mTLS as a user hand-rolls it: spiffe-rustls's client config from
/// the same PEM files, a tokio-rustls connector, and `connect_with_connector`.
async fn raw_mtls(
    addr: std::net::SocketAddr,
    dir: &Path,
) -> Result<TonicChannel, Box<dyn std::error::Error>> {
    let identity = ephemos::identity::Identity::files(
        dir.join("client.pem"),
        dir.join("client.key"),
        dir.join("client-bundle.pem"),
    );
    let source = identity.x509_source().await?;
    let config = spiffe_rustls::mtls_client(source)
        .authorize(spiffe_rustls::authorizer::exact([
            "spiffe://example.org/bench-server",
        ])?)
        .with_alpn_protocols([b"h2"])
        .build()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let name = rustls::pki_types::ServerName::try_from("bench-server")
                    .map_err(std::io::Error::other)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?;
    Ok(channel)
}
