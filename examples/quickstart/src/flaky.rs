//! The quickstart's Greeter: it answers UNAVAILABLE to the first attempt of every third
//! call, so the
//! client's retries show.

use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::{Request, Response, Status};

use crate::pb::greeter_server::Greeter as GreeterService;
use crate::pb::{HelloReply, HelloRequest};

/// A server that answers UNAVAILABLE to the first attempt of every third call, so
/// retries show; a retry (it carries `grpc-previous-rpc-attempts`) always succeeds, so
/// a policy of two attempts or more loses no call, however many run at once.
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
        let first_attempt = request
            .metadata()
            .get("grpc-previous-rpc-attempts")
            .is_none();
        if first_attempt {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n.is_multiple_of(3) {
                return Err(Status::unavailable(format!(
                    "call {n}: pretending to be overloaded (a retry succeeds)"
                )));
            }
        }
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("hello {name} (you are {caller})"),
        }))
    }
}
