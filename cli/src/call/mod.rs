//! `ephemos call`: calls one method of a target with a JSON request, through an
//! `ephemos::Channel` built from the target's resolved settings, so the call has the
//! service's own method policy (timeout, retries or hedging), pool and identity.
//!
//! Messages are dynamic: the target's protos are compiled here with protox and the
//! request is read from JSON into a `prost_reflect::DynamicMessage`. With `--repeat N
//! --concurrency C` it is a small load: C callers share N calls, an indicatif progress
//! bar shows them on a terminal, and a summary gives statuses, retries and latency
//! percentiles.

mod codec;
mod histogram;
mod output;
mod schema;
mod summary;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ephemos::Channel;
use http::uri::PathAndQuery;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{GrpcMethod, Request, Status};

use codec::DynamicCodec;
use output::Outcome;
use summary::{Finished, Summary, Tally};

use crate::Format;

/// What `ephemos call` was asked to do.
pub(crate) struct CallArgs {
    /// The `connections.toml` to read.
    pub(crate) file: PathBuf,
    /// The target's name.
    pub(crate) target: String,
    /// The profile, if any.
    pub(crate) profile: Option<crate::target::Profile>,
    /// `pkg.Service/Method`, or `Method` of the target's service.
    pub(crate) method: String,
    /// The request as JSON, or `@FILE`.
    pub(crate) data: String,
    /// The protos that define the method.
    pub(crate) protos: Vec<PathBuf>,
    /// Where their imports are.
    pub(crate) includes: Vec<PathBuf>,
    /// `key: value` metadata for every call.
    pub(crate) headers: Vec<String>,
    /// A deadline for each call, besides the method's own timeout.
    pub(crate) timeout: Option<Duration>,
    /// How many calls (at least 1).
    pub(crate) repeat: u64,
    /// How many at once (at least 1).
    pub(crate) concurrency: u64,
    /// Output.
    pub(crate) format: Format,
    /// Colour in diagnostics.
    pub(crate) color: bool,
}

/// One method, ready to call.
struct Call {
    method: MethodDescriptor,
    path: PathAndQuery,
    names: (&'static str, &'static str),
    requests: Vec<DynamicMessage>,
    metadata: MetadataMap,
    timeout: Option<Duration>,
}

/// Runs the calls; the text to print and whether every call was OK.
pub(crate) fn run(args: CallArgs) -> Result<(String, bool), String> {
    let checked = crate::target::load_clean(&args.file, args.color)?;
    let resolved =
        crate::target::select(&checked, &args.file, &args.target, args.profile.as_ref())?;
    let pool = schema::compile(&args.protos, &args.includes)?;
    let method = schema::find_method(&pool, &args.method, resolved.config.service.as_deref())?;
    let requests = schema::requests(&method, &args.data)?;
    let service = method.parent_service().full_name().to_owned();
    let call = Call {
        path: PathAndQuery::try_from(format!("/{service}/{}", method.name()))
            .map_err(|e| format!("the method's path is not valid: {e}"))?,
        // The method's names, for the metrics' grpc.method label (the process makes
        // one call kind, so keeping them for its life costs one string each).
        names: (
            Box::leak(service.into_boxed_str()),
            Box::leak(method.name().to_owned().into_boxed_str()),
        ),
        metadata: metadata(&args.headers)?,
        method,
        requests,
        timeout: args.timeout,
    };
    let runtime = crate::runtime()?;
    let channel = {
        let _entered = runtime.enter();
        Channel::from_target(&resolved.config)
            .connect_lazy()
            .map_err(|e| e.to_string())?
    };
    if args.repeat == 1 {
        let outcome = runtime.block_on(call.once(&channel));
        return Ok(single(outcome, args.format));
    }
    let (tally, wall) = runtime.block_on(load(
        Arc::new(call),
        channel.clone(),
        args.repeat,
        args.concurrency,
        args.format == Format::Text,
    ));
    let summary = Summary::new(tally, wall, &channel.stats());
    let text = match args.format {
        Format::Text => summary.text(),
        Format::Json => format!("{}\n", summary.json()),
    };
    Ok((text, summary.all_ok()))
}

/// The output of one call: its responses, then its status when it failed.
fn single(outcome: Outcome, format: Format) -> (String, bool) {
    let text = match format {
        Format::Text => outcome.text(),
        Format::Json => format!("{}\n", outcome.json()),
    };
    (text, outcome.status.is_ok())
}

/// Runs `repeat` calls, `concurrency` at a time; what they came to (in memory that
/// does not grow with `repeat`) and how long they took.
async fn load(
    call: Arc<Call>,
    channel: Channel,
    repeat: u64,
    concurrency: u64,
    progress: bool,
) -> (Tally, Duration) {
    let bar = ProgressBar::with_draw_target(
        Some(repeat),
        if progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} calls {per_sec} {msg}") {
        bar.set_style(style);
    }
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(repeat))
        .map(|_| {
            let (call, channel, next, tally, bar) = (
                call.clone(),
                channel.clone(),
                next.clone(),
                tally.clone(),
                bar.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < repeat {
                    let begun = Instant::now();
                    let status = call.once(&channel).await.status;
                    let done = Finished {
                        status: match &status {
                            Ok(()) => "OK",
                            Err(status) => status_name(status),
                        },
                        message: status.err().map(|s| s.message().to_owned()),
                        took: begun.elapsed(),
                    };
                    if done.message.is_some() {
                        bar.set_message(format!("last error: {}", done.status));
                    }
                    if let Ok(mut tally) = tally.lock() {
                        tally.add(done);
                    }
                    bar.inc(1);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    let tally = std::mem::replace(
        &mut *tally.lock().unwrap_or_else(|e| e.into_inner()),
        Tally::new(),
    );
    (tally, wall)
}

impl Call {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        *request.metadata_mut() = self.metadata.clone();
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        request
            .extensions_mut()
            .insert(GrpcMethod::new(self.names.0, self.names.1));
        request
    }

    /// One call of the method: the responses it got and how it ended.
    async fn once(&self, channel: &Channel) -> Outcome {
        let mut grpc = tonic::client::Grpc::new(channel.clone())
            .max_decoding_message_size(channel.max_recv_message_size());
        if let Err(e) = grpc.ready().await {
            return Outcome::failed(Status::unavailable(format!(
                "the channel is not ready: {e}"
            )));
        }
        let codec = DynamicCodec::new(self.method.output());
        let path = self.path.clone();
        let first = || {
            self.requests
                .first()
                .cloned()
                .unwrap_or_else(|| DynamicMessage::new(self.method.input()))
        };
        let stream = || futures_util::stream::iter(self.requests.clone());
        let result = match (
            self.method.is_client_streaming(),
            self.method.is_server_streaming(),
        ) {
            (false, false) => grpc
                .unary(self.request(first()), path, codec)
                .await
                .map(|r| Response::One(r.into_inner())),
            (false, true) => grpc
                .server_streaming(self.request(first()), path, codec)
                .await
                .map(|r| Response::Many(r.into_inner())),
            (true, false) => grpc
                .client_streaming(self.request(stream()), path, codec)
                .await
                .map(|r| Response::One(r.into_inner())),
            (true, true) => grpc
                .streaming(self.request(stream()), path, codec)
                .await
                .map(|r| Response::Many(r.into_inner())),
        };
        match result {
            Err(status) => Outcome::failed(status),
            Ok(Response::One(response)) => Outcome {
                responses: vec![response],
                status: Ok(()),
            },
            Ok(Response::Many(stream)) => collect(stream).await,
        }
    }
}

/// What a call's response was: one message, or a stream of them.
enum Response {
    One(DynamicMessage),
    Many(tonic::Streaming<DynamicMessage>),
}

/// Reads a response stream to its end, keeping the messages that came before a failure.
async fn collect(mut stream: tonic::Streaming<DynamicMessage>) -> Outcome {
    let mut responses = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(message)) => responses.push(message),
            Ok(None) => {
                break Outcome {
                    responses,
                    status: Ok(()),
                };
            }
            Err(status) => {
                break Outcome {
                    responses,
                    status: Err(status),
                };
            }
        }
    }
}

/// `key: value` pairs as metadata (`-bin` keys take base64 values, as gRPC sends them).
fn metadata(headers: &[String]) -> Result<MetadataMap, String> {
    let mut map = MetadataMap::new();
    for header in headers {
        let (key, value) = header
            .split_once(':')
            .ok_or_else(|| format!("-H `{header}`: write `key: value`"))?;
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if key.ends_with("-bin") {
            return Err(format!(
                "-H `{header}`: binary metadata is not supported yet; send an ASCII key"
            ));
        }
        let name = MetadataKey::from_bytes(key.as_bytes())
            .map_err(|_| format!("-H `{header}`: `{key}` is not a valid metadata key"))?;
        let value = MetadataValue::try_from(value)
            .map_err(|_| format!("-H `{header}`: the value must be printable ASCII"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A status's code as gRPC names it (`UNAVAILABLE`).
fn status_name(status: &Status) -> &'static str {
    crate::grpc_code::name(status.code())
}
