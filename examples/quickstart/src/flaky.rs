//! The quickstart's Greeter: it answers UNAVAILABLE to every third attempt, so the
//! client's retries show.

use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::{Request, Response, Status};

use crate::pb::greeter_server::Greeter as GreeterService;
use crate::pb::{HelloReply, HelloRequest};

/// A server that answers UNAVAILABLE to every third attempt, so retries show.
#[derive(Default)]
pub(crate) struct Flaky {
    calls: AtomicUsize,
}

#[tonic::async_trait]
impl GreeterService for Flaky {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let caller = ephemos::server::peer_id(&request)
            .map(ToString::to_string)
            .unwrap_or_default();
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(3) {
            return Err(Status::unavailable(format!(
                "attempt {n}: pretending to be overloaded"
            )));
        }
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("hello {name} (you are {caller})"),
        }))
    }
}
