//! The bodies a channel sends and returns: tonic's request body with the send-size limit,
//! and hyper's response body with the receive-size limit, gRPC error mapping, and the
//! call's in-flight guard.

mod request;
mod response;

pub(crate) use request::{OversizeFlag, RequestBody, RequestSource};
pub use response::ResponseBody;
