//! How an attempt failed, as the pool reports it to the retry layer: whether the server
//! can have processed it decides what may be sent again (gRFC A6).

use std::sync::atomic::{AtomicU64, Ordering};

use http::Request;
use tonic::Status;

use crate::retry::AttemptBody;

/// Names one subchannel for as long as the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubchannelId(u64);

impl SubchannelId {
    /// A new, never used identifier.
    pub(crate) fn next() -> SubchannelId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SubchannelId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Why an attempt produced no response.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// It never left the client (the connection was closing and hyper handed it back):
    /// send it again, as it is, any number of times within the deadline.
    Unsent(Box<Request<AttemptBody>>),
    /// The server refused it before processing it: its GOAWAY excluded the stream, or it
    /// reset the stream with REFUSED_STREAM. One transparent retry (gRFC A6), on another
    /// connection where there is one.
    Refused {
        /// The status if it is not sent again.
        status: Status,
        /// The connection that refused it.
        subchannel: SubchannelId,
    },
    /// No connection could take it: the pick failed fast (every connection in
    /// TRANSIENT_FAILURE and none READY within `connect_timeout`, the pool shut down, a
    /// name that does not resolve) or the deadline passed while it waited for one.
    /// Nothing was sent; the call ends with this status, not retried: a retry would pick
    /// against the same failing channel (gRFC A62's fail fast, kept under a retry
    /// policy). A pick that fails moments after a connection was READY is `Failed`.
    NoConnection(Status),
    /// It failed with this status; the server may have processed it.
    Failed(Status),
}

impl AttemptError {
    /// The code the attempt ended with (UNAVAILABLE for one never sent).
    pub(crate) fn code(&self) -> tonic::Code {
        match self {
            AttemptError::Unsent(_) => tonic::Code::Unavailable,
            AttemptError::Refused { status, .. }
            | AttemptError::NoConnection(status)
            | AttemptError::Failed(status) => status.code(),
        }
    }

    /// The status of an attempt that is not sent again.
    pub(crate) fn into_status(self) -> Status {
        match self {
            AttemptError::Unsent(_) => Status::unavailable("the attempt could not be sent"),
            AttemptError::Refused { status, .. }
            | AttemptError::NoConnection(status)
            | AttemptError::Failed(status) => status,
        }
    }
}
