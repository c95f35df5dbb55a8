//! A SPIFFE Workload API server living in this process: it serves X.509 material (from
//! the dev CA or from files) to the real `spiffe` client, so every identity source
//! reaches rustls the same way, through `spiffe::X509Source` and `spiffe-rustls`.
//!
//! In the runtime it is reached over an in-memory pipe (no socket another process could
//! read a private key from); tests also serve it on `tcp://127.0.0.1` to stand in for a
//! SPIRE agent. Like SPIRE, it refuses requests without the `workload.spiffe.io: true`
//! header, and streams new material as soon as it changes.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::X509Material;

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

use pb::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use pb::{
    JwtBundlesRequest, JwtBundlesResponse, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid, X509svidRequest,
    X509svidResponse,
};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Workload API service over a watch of the current material.
#[derive(Clone)]
struct WorkloadApi {
    material: watch::Receiver<Arc<X509Material>>,
}

fn check_security_header<T>(request: &Request<T>) -> Result<(), Status> {
    match request.metadata().get("workload.spiffe.io") {
        Some(value) if value == "true" => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}

fn svid_response(material: &X509Material) -> X509svidResponse {
    let svid = &material.svid;
    let own = svid.spiffe_id.trust_domain();
    X509svidResponse {
        svids: vec![X509svid {
            spiffe_id: svid.spiffe_id.to_string(),
            x509_svid: svid.chain.concat(),
            x509_svid_key: svid.private_key.clone(),
            bundle: material.bundle_der(&own).unwrap_or_default(),
            hint: String::new(),
        }],
        crl: Vec::new(),
        federated_bundles: material
            .bundles
            .iter()
            .filter(|(td, _)| *td != own)
            .map(|(td, certs)| (format!("spiffe://{td}"), certs.concat()))
            .collect(),
    }
}

fn bundles_response(material: &X509Material) -> X509BundlesResponse {
    X509BundlesResponse {
        crl: Vec::new(),
        bundles: material
            .bundles
            .iter()
            .map(|(td, certs)| (format!("spiffe://{td}"), certs.concat()))
            .collect::<HashMap<_, _>>(),
    }
}

/// The current material, then each new one, for as long as the client listens.
fn updates<T: Send + 'static>(
    mut material: watch::Receiver<Arc<X509Material>>,
    render: fn(&X509Material) -> T,
) -> ResponseStream<T> {
    Box::pin(async_stream(move |tx| async move {
        loop {
            let current = material.borrow_and_update().clone();
            if tx.send(Ok(render(&current))).is_err() {
                return;
            }
            tokio::select! {
                changed = material.changed() => if changed.is_err() { return },
                // The client went away: do not wait for a rotation to notice.
                () = tx.closed() => return,
            }
        }
    }))
}

/// A stream fed by a task (no `async-stream` macro needed for one loop).
fn async_stream<T, F, Fut>(body: F) -> impl Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::UnboundedSender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(body(tx));
    UnboundedReceiverStream::new(rx)
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApi {
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        check_security_header(&request)?;
        Ok(Response::new(updates(self.material.clone(), svid_response)))
    }

    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_security_header(&request)?;
        Ok(Response::new(updates(
            self.material.clone(),
            bundles_response,
        )))
    }

    async fn fetch_jwtsvid(
        &self,
        _: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        Err(Status::unimplemented(
            "this in-process agent serves X.509 material only",
        ))
    }

    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;

    async fn fetch_jwt_bundles(
        &self,
        _: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        Err(Status::unimplemented(
            "this in-process agent serves X.509 material only",
        ))
    }

    async fn validate_jwtsvid(
        &self,
        _: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        Err(Status::unimplemented(
            "this in-process agent serves X.509 material only",
        ))
    }
}

/// A running in-process agent; `rotate` hands it new material, which every client
/// receives at once. The server task stops when the last handle is dropped.
#[derive(Clone)]
pub struct LocalAgent {
    material: Arc<watch::Sender<Arc<X509Material>>>,
    pipes: mpsc::UnboundedSender<tokio::io::DuplexStream>,
    /// The server's end of the pipes until the server task starts (on first use, inside
    /// a runtime: creating an agent needs none).
    pending: Arc<Mutex<Option<mpsc::UnboundedReceiver<tokio::io::DuplexStream>>>>,
}

impl std::fmt::Debug for LocalAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAgent")
            .field("spiffe_id", &self.material.borrow().svid.spiffe_id)
            .finish()
    }
}

impl LocalAgent {
    /// An agent serving `material` over in-memory pipes; its server starts when first
    /// used.
    pub fn new(material: X509Material) -> LocalAgent {
        let (material, _) = watch::channel(Arc::new(material));
        let (pipes, incoming) = mpsc::unbounded_channel::<tokio::io::DuplexStream>();
        LocalAgent {
            material: Arc::new(material),
            pipes,
            pending: Arc::new(Mutex::new(Some(incoming))),
        }
    }

    fn ensure_started(&self) {
        let Some(incoming) = self.pending.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let service = SpiffeWorkloadApiServer::new(WorkloadApi {
            material: self.material.subscribe(),
        });
        tokio::spawn(async move {
            let incoming = UnboundedReceiverStream::new(incoming).map(Ok::<_, io::Error>);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
    }

    /// A handle that does not keep the agent running.
    pub(crate) fn downgrade(&self) -> WeakAgent {
        WeakAgent {
            material: Arc::downgrade(&self.material),
            pipes: self.pipes.downgrade(),
            pending: Arc::downgrade(&self.pending),
        }
    }

    /// The agent, if it still runs.
    pub(crate) fn upgrade(weak: &WeakAgent) -> Option<LocalAgent> {
        Some(LocalAgent {
            material: weak.material.upgrade()?,
            pipes: weak.pipes.upgrade()?,
            pending: weak.pending.upgrade()?,
        })
    }

    /// Replaces the material (an SVID rotation, a new bundle).
    pub fn rotate(&self, material: X509Material) {
        self.material.send_replace(Arc::new(material));
    }

    /// The material served now.
    pub fn material(&self) -> Arc<X509Material> {
        self.material.borrow().clone()
    }

    /// Also serves the agent on `tcp://127.0.0.1:PORT`, to stand in for a SPIRE agent in
    /// tests. Any local process can then fetch the private key, so this exists only with
    /// the `testing` feature. The server stops when the returned guard is dropped.
    #[cfg(feature = "testing")]
    pub async fn serve_tcp(&self) -> std::io::Result<(std::net::SocketAddr, AbortOnDrop)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service = SpiffeWorkloadApiServer::new(WorkloadApi {
            material: self.material.subscribe(),
        });
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        Ok((addr, AbortOnDrop(task)))
    }

    /// A Workload API client factory for `spiffe::X509Source` that reaches this agent
    /// through an in-memory pipe.
    pub(crate) fn client_factory(&self) -> ClientFactory {
        self.ensure_started();
        // The connector keeps the agent (and so its renewal or reload task) alive for as
        // long as the Workload API client, and so the X509Source, that uses it.
        let agent = self.clone();
        Arc::new(move || {
            let agent = agent.clone();
            Box::pin(async move {
                let connector = tower::service_fn(move |_: http::Uri| {
                    let (client, server) = tokio::io::duplex(64 * 1024);
                    let sent = agent.pipes.send(server);
                    async move {
                        sent.map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::NotConnected,
                                "the in-process agent stopped",
                            )
                        })?;
                        Ok::<_, io::Error>(TokioIo::new(client))
                    }
                });
                let channel = tonic::transport::Endpoint::from_static("http://in-process.agent")
                    .connect_with_connector_lazy(connector);
                let endpoint = spiffe::transport::Endpoint::Tcp {
                    host: std::net::Ipv4Addr::LOCALHOST.into(),
                    port: 0,
                };
                Ok(spiffe::WorkloadApiClient::new_with_channel(
                    endpoint, channel,
                ))
            })
        })
    }
}

/// Stops a task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A [`LocalAgent`] that may have stopped.
pub(crate) struct WeakAgent {
    material: std::sync::Weak<watch::Sender<Arc<X509Material>>>,
    pipes: mpsc::WeakUnboundedSender<tokio::io::DuplexStream>,
    pending: std::sync::Weak<Mutex<Option<mpsc::UnboundedReceiver<tokio::io::DuplexStream>>>>,
}

/// What `spiffe::X509SourceBuilder::client_factory` takes.
pub(crate) type ClientFactory = Arc<
    dyn Fn() -> Pin<
            Box<
                dyn Future<Output = Result<spiffe::WorkloadApiClient, spiffe::WorkloadApiError>>
                    + Send,
            >,
        > + Send
        + Sync,
>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ephemos_config::value::{SpiffeId, TrustDomain};

    use super::*;
    use crate::identity::DevCa;

    fn api() -> WorkloadApi {
        let ca = DevCa::new(TrustDomain::parse("example.org").unwrap()).unwrap();
        let id = SpiffeId::parse("spiffe://example.org/w").unwrap();
        let (_, material) =
            watch::channel(Arc::new(ca.mint(&id, Duration::from_secs(60)).unwrap()));
        WorkloadApi { material }
    }

    #[tokio::test]
    async fn requests_without_the_security_header_are_refused() {
        let status = api()
            .fetch_x509svid(Request::new(X509svidRequest {}))
            .await
            .err()
            .expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "security header missing from request");

        let mut request = Request::new(X509svidRequest {});
        request
            .metadata_mut()
            .insert("workload.spiffe.io", "true".parse().unwrap());
        let mut stream = api()
            .fetch_x509svid(request)
            .await
            .expect("served")
            .into_inner();
        let response = stream.next().await.unwrap().unwrap();
        assert_eq!(response.svids[0].spiffe_id, "spiffe://example.org/w");
        assert!(!response.svids[0].bundle.is_empty());
    }
}
