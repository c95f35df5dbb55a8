//! An echo server whose handlers fail on command, for the retry tests: each call takes
//! the next [`Answer`] of a script, and the server records every call it received (the
//! method, when, `grpc-previous-rpc-attempts`, `grpc-timeout`, and the request messages
//! it read), so tests count attempts at the server.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::echo::pb::echo_server::{Echo, EchoServer as GeneratedServer};
use crate::echo::pb::{EchoReply, EchoRequest};

/// What the server does with one call.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Answers as the echo server does.
    Succeed,
    /// Fails with this status before sending anything (a Trailers-Only response),
    /// after reading the request messages that have arrived (client streams: the first).
    Fail(Code, &'static str),
    /// Reads the whole request stream, then fails (client streams; others as `Fail`).
    FailAfterAll(Code, &'static str),
    /// Fails with `grpc-retry-pushback-ms` set to this value.
    FailWithPushback(Code, &'static str),
    /// Sends response headers and one message, then fails (server streaming only).
    HeadersThenFail(Code),
    /// Never answers (unary only); the call is marked cancelled when the client resets
    /// it.
    Hang,
}

/// One call the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method's name (`Unary`, `ClientStream`, ...).
    pub method: &'static str,
    /// When it arrived.
    pub at: Instant,
    /// Its `grpc-previous-rpc-attempts` header.
    pub previous_attempts: Option<String>,
    /// Its `grpc-timeout` header.
    pub timeout: Option<String>,
    /// The `message` of each request message the handler read.
    pub messages: Vec<String>,
    /// Whether the client cancelled it while its handler was running.
    pub cancelled: bool,
    /// Whether the handler ran it to the end and answered OK (client streams: the
    /// request stream ended with END_STREAM, not a reset).
    pub completed: bool,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Shared {
    fn enter<T>(&self, method: &'static str, request: &Request<T>) -> (Answer, usize) {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut received = self.received.lock().unwrap();
        received.push(Received {
            method,
            at: Instant::now(),
            previous_attempts: header("grpc-previous-rpc-attempts"),
            timeout: header("grpc-timeout"),
            messages: Vec::new(),
            cancelled: false,
            completed: false,
        });
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Succeed);
        (answer, received.len() - 1)
    }

    fn record(&self, index: usize, message: String) {
        self.received.lock().unwrap()[index].messages.push(message);
    }

    fn complete(&self, index: usize) {
        self.received.lock().unwrap()[index].completed = true;
    }
}

fn failure(answer: &Answer) -> Option<Status> {
    match answer {
        Answer::Fail(code, message) | Answer::FailAfterAll(code, message) => {
            Some(Status::new(*code, *message))
        }
        Answer::FailWithPushback(code, pushback) => {
            let mut status = Status::new(*code, "failing, with pushback");
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", pushback.parse().unwrap());
            Some(status)
        }
        Answer::Succeed | Answer::HeadersThenFail(_) | Answer::Hang => None,
    }
}

/// Marks a call cancelled when its handler is dropped before it finished.
struct CancelGuard {
    shared: Shared,
    index: usize,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.shared.received.lock().unwrap()[self.index].cancelled = true;
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

fn reply(message: String) -> EchoReply {
    EchoReply {
        message,
        server: "failing".into(),
        padding: Vec::new(),
    }
}

#[tonic::async_trait]
impl Echo for Shared {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let (answer, index) = self.enter("Unary", &request);
        self.record(index, request.get_ref().message.clone());
        if let Answer::Hang = answer {
            let _guard = CancelGuard {
                shared: self.clone(),
                index,
            };
            std::future::pending::<()>().await;
        }
        match failure(&answer) {
            Some(status) => Err(status),
            None => Ok(Response::new(reply(request.into_inner().message))),
        }
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let (answer, index) = self.enter("ServerStream", &request);
        let message = request.into_inner().message;
        self.record(index, message.clone());
        if let Some(status) = failure(&answer) {
            return Err(status);
        }
        let mut items = vec![Ok(reply(message))];
        if let Answer::HeadersThenFail(code) = answer {
            items.push(Err(Status::new(code, "failed after the response headers")));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        let (answer, index) = self.enter("ClientStream", &request);
        let mut stream = request.into_inner();
        if let Some(status) = failure(&answer) {
            let read_all = matches!(answer, Answer::FailAfterAll(..));
            while let Some(Ok(item)) = stream.next().await {
                self.record(index, item.message);
                if !read_all {
                    break;
                }
            }
            return Err(status);
        }
        let mut messages = Vec::new();
        while let Some(item) = stream.next().await {
            let message = item?.message;
            self.record(index, message.clone());
            messages.push(message);
        }
        self.complete(index);
        Ok(Response::new(reply(messages.join(","))))
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        let (answer, index) = self.enter("Bidi", &request);
        if let Some(status) = failure(&answer) {
            return Err(status);
        }
        // Echoes each message; the call is complete when the request stream ends
        // with END_STREAM (a reset ends it with an error).
        let mut stream = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = self.clone();
        tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(request) => {
                        shared.record(index, request.message.clone());
                        let _ = tx.send(Ok(reply(request.message)));
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status));
                        return;
                    }
                }
            }
            shared.complete(index);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        )))
    }
}

/// A running failing server; dropping it stops it.
pub struct FailingServer {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FailingServer {
    /// Starts a server on `127.0.0.1:0` that answers calls with `script`, in order, and
    /// succeeds once the script is used up.
    pub async fn start(script: impl IntoIterator<Item = Answer>) -> FailingServer {
        let listener = crate::echo::bind_retrying("127.0.0.1:0".parse().unwrap()).await;
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            received: Arc::default(),
        };
        let service = GeneratedServer::new(shared.clone());
        let task = tokio::spawn(async move {
            // HTTP/2's default 64 KiB windows, so a large request takes several round
            // trips (the replay tests rely on it).
            let _ = tonic::transport::Server::builder()
                .initial_stream_window_size(65_535)
                .initial_connection_window_size(65_535)
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        FailingServer { addr, shared, task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends answers to the script.
    pub fn answer(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// Every call received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// How many calls it received.
    pub fn calls(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }
}

impl Drop for FailingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
