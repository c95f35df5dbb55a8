//! The echo gRPC server: one method of each call kind, counting the calls it serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Generated code of `proto/echo.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("echo.v1");
}

use pb::echo_server::{Echo, EchoServer as GeneratedServer};
use pb::{EchoReply, EchoRequest};

/// The service implementation; `name` is returned in every reply.
#[derive(Clone)]
pub struct EchoService {
    name: String,
    calls: Arc<AtomicUsize>,
    timeouts: Arc<Mutex<Vec<Option<String>>>>,
    metadata: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
    peers: Peers,
}

/// Calls served per client connection (its remote address), as the server saw them.
type Peers = Arc<Mutex<HashMap<SocketAddr, usize>>>;

impl EchoService {
    /// A service answering as `name` (to serve it on an incoming stream of one's own).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            calls: Arc::default(),
            timeouts: Arc::default(),
            metadata: Arc::default(),
            peers: Arc::default(),
        }
    }

    /// Calls this service has received (on whatever incoming stream it serves).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The metadata of each call this service received, in order.
    pub fn metadata(&self) -> Vec<tonic::metadata::MetadataMap> {
        self.metadata.lock().unwrap().clone()
    }

    /// Counts a call (and the connection it came on) and records the `grpc-timeout` it
    /// carried.
    fn enter<T>(&self, request: &Request<T>) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(peer) = request.remote_addr() {
            *self.peers.lock().unwrap().entry(peer).or_default() += 1;
        }
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.timeouts.lock().unwrap().push(timeout);
        self.metadata
            .lock()
            .unwrap()
            .push(request.metadata().clone());
    }

    fn reply(&self, request: &EchoRequest) -> EchoReply {
        EchoReply {
            message: request.message.clone(),
            server: self.name.clone(),
            padding: vec![0; request.reply_padding as usize],
        }
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.enter(&request);
        Ok(Response::new(self.reply(request.get_ref())))
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        self.enter(&request);
        let request = request.into_inner();
        let replies: Vec<Result<EchoReply, Status>> = (0..request.count)
            .map(|i| {
                let mut reply = self.reply(&request);
                reply.message = format!("{} {i}", request.message);
                Ok(reply)
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.enter(&request);
        let mut stream = request.into_inner();
        let mut messages = Vec::new();
        while let Some(item) = stream.next().await {
            messages.push(item?.message);
        }
        Ok(Response::new(EchoReply {
            message: messages.join(","),
            server: self.name.clone(),
            padding: Default::default(),
        }))
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        self.enter(&request);
        let service = self.clone();
        let stream = request
            .into_inner()
            .map(move |item| item.map(|request| service.reply(&request)));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A running echo server; dropping it (or [`EchoServer::stop`]) shuts it down.
pub struct EchoServer {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    timeouts: Arc<Mutex<Vec<Option<String>>>>,
    metadata: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
    peers: Peers,
    accepted: Arc<AtomicUsize>,
    health: Option<tonic_health::server::HealthReporter>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EchoServer {
    /// Starts a server named `name` on `127.0.0.1:0`.
    pub async fn start(name: &str) -> EchoServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name).await
    }

    /// Starts a server on a given address (to restart one on the same port).
    pub async fn start_on(addr: SocketAddr, name: &str) -> EchoServer {
        Self::start_serving(addr, name, false, None).await
    }

    /// Starts a server that also serves `grpc.health.v1.Health` (tonic-health), SERVING
    /// for the whole server (`""`) until [`EchoServer::set_serving`] says otherwise.
    pub async fn start_with_health(name: &str) -> EchoServer {
        Self::start_serving("127.0.0.1:0".parse().unwrap(), name, true, None).await
    }

    /// Starts a server that lets each connection carry at most `streams` calls at once
    /// (its SETTINGS_MAX_CONCURRENT_STREAMS).
    pub async fn start_limited(name: &str, streams: u32) -> EchoServer {
        Self::start_serving("127.0.0.1:0".parse().unwrap(), name, false, Some(streams)).await
    }

    async fn start_serving(
        addr: SocketAddr,
        name: &str,
        health: bool,
        max_concurrent_streams: Option<u32>,
    ) -> EchoServer {
        let listener = bind_retrying(addr).await;
        let addr = listener.local_addr().unwrap();
        let service = EchoService::named(name);
        let (calls, timeouts, peers) = (
            service.calls.clone(),
            service.timeouts.clone(),
            service.peers.clone(),
        );
        let metadata = service.metadata.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let incoming = TcpListenerStream::new(listener).map(move |stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            stream
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = GeneratedServer::new(service)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let (reporter, health_service) = match health {
            true => {
                let (reporter, service) = tonic_health::server::health_reporter();
                (Some(reporter), Some(service))
            }
            false => (None, None),
        };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .max_concurrent_streams(max_concurrent_streams)
                .add_service(server)
                .add_optional_service(health_service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        EchoServer {
            addr,
            calls,
            timeouts,
            metadata,
            peers,
            accepted,
            health: reporter,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Starts a server on a unix socket at `path`.
    pub async fn start_unix(path: &std::path::Path, name: &str) -> EchoServer {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let service = EchoService::named(name);
        let (calls, timeouts, peers) = (
            service.calls.clone(),
            service.timeouts.clone(),
            service.peers.clone(),
        );
        let metadata = service.metadata.clone();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(GeneratedServer::new(service))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        EchoServer {
            addr: "0.0.0.0:0".parse().unwrap(),
            calls,
            timeouts,
            metadata,
            peers,
            accepted: Arc::default(),
            health: None,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Calls served so far, counted by the server.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Sets what the health service says of the whole server (`""`): SERVING or
    /// NOT_SERVING; every Watch stream hears it at once.
    ///
    /// # Panics
    /// If the server was not started with [`EchoServer::start_with_health`].
    pub async fn set_serving(&self, serving: bool) {
        let status = match serving {
            true => tonic_health::ServingStatus::Serving,
            false => tonic_health::ServingStatus::NotServing,
        };
        self.health
            .as_ref()
            .expect("started with a health service")
            .set_service_status("", status)
            .await;
    }

    /// TCP connections accepted so far, counted by the server.
    pub fn connections_accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Calls served per client connection (keyed by the connection's remote address),
    /// counted by the server: how many connections a client used and how it spread
    /// its calls over them.
    pub fn calls_per_connection(&self) -> HashMap<SocketAddr, usize> {
        self.peers.lock().unwrap().clone()
    }

    /// The `grpc-timeout` header of each call served, in order (`None` without one).
    pub fn timeouts(&self) -> Vec<Option<String>> {
        self.timeouts.lock().unwrap().clone()
    }

    /// The request metadata of each call served, in order, as the server received it.
    pub fn metadata(&self) -> Vec<tonic::metadata::MetadataMap> {
        self.metadata.lock().unwrap().clone()
    }

    /// Starts a graceful shutdown: the server sends GOAWAY, stops accepting, and lets
    /// calls in flight finish. The returned future resolves when it has stopped.
    pub fn stop_gracefully(mut self) -> impl std::future::Future<Output = ()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self.task.take();
        async move {
            if let Some(task) = task {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
            }
        }
    }

    /// Stops the server and waits until it has, closing every connection.
    pub async fn stop(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            // Graceful shutdown waits for open connections; do not let a test hang on one.
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds, retrying briefly: a port just released can take a moment to be free again.
pub(crate) async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let mut last = None;
    for _ in 0..100 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr}: {last:?}");
}
