//! How a failed HTTP/2 exchange becomes a gRPC status (PROTOCOL-HTTP2.md "Errors",
//! statuscodes.md), and whether the server can have processed the call.
//!
//! Only the server's own refusals mean "unprocessed": its GOAWAY, whose last-stream-id is
//! below the stream (h2 gives those streams a *remote* GOAWAY error; streams the server
//! kept that are cut later get an I/O error), or its RST_STREAM REFUSED_STREAM. A GOAWAY
//! or reset the client raised itself (a response it refused, a protocol error) may
//! follow a request the server already ran, and is never replayed.

use std::error::Error as StdError;

use tonic::{Code, Status};

use crate::error::{describe, find};

/// A failed exchange, as the layers above need it.
#[derive(Debug)]
pub(crate) struct TransportFailure {
    /// The status the call ends with if it is not retried.
    pub(crate) status: Status,
    /// The server refused the stream before processing it (gRFC A6: it may be sent again).
    pub(crate) unprocessed: bool,
}

/// Who raised an HTTP/2 error.
fn raised_by(error: &h2::Error) -> &'static str {
    if error.is_remote() {
        "by the server"
    } else if error.is_library() {
        "by the client"
    } else {
        "by the caller"
    }
}

/// `NAME (0xN)`: an HTTP/2 error code as RFC 9113 names it.
pub(crate) fn reason_name(reason: h2::Reason) -> String {
    format!("{reason:?} (0x{:x})", u32::from(reason))
}

/// Classifies an error of a request that was sent (or began to be).
pub(crate) fn classify(target: &str, error: &(dyn StdError + 'static)) -> TransportFailure {
    let failed = |code, message: String| TransportFailure {
        status: crate::error::status(code, target, message),
        unprocessed: false,
    };
    if let Some(status) = find::<Status>(error) {
        return TransportFailure {
            status: status.clone(),
            unprocessed: false,
        };
    }
    let Some(h2) = find::<h2::Error>(error) else {
        return failed(
            Code::Unavailable,
            format!("connection failed: {}", describe(error)),
        );
    };
    if h2.is_io() {
        return failed(
            Code::Unavailable,
            format!("connection lost: {}", describe(error)),
        );
    }
    let Some(reason) = h2.reason() else {
        return failed(Code::Internal, format!("HTTP/2 error: {h2}"));
    };
    let name = reason_name(reason);
    if h2.is_go_away() {
        if h2.is_remote() {
            return TransportFailure {
                status: crate::error::status(
                    Code::Unavailable,
                    target,
                    format!(
                        "the server's GOAWAY {name} refused the call before processing it ({h2})"
                    ),
                ),
                unprocessed: true,
            };
        }
        let code = if reason == h2::Reason::NO_ERROR {
            Code::Unavailable
        } else {
            // The client found the server breaking HTTP/2 (flow control, framing).
            Code::Internal
        };
        return failed(
            code,
            format!(
                "connection closed {} with GOAWAY {name} ({h2})",
                raised_by(h2)
            ),
        );
    }
    if h2.is_reset() && h2.is_remote() && reason == h2::Reason::REFUSED_STREAM {
        return TransportFailure {
            status: crate::error::status(
                Code::Unavailable,
                target,
                format!("the server refused the stream before processing it: RST_STREAM {name}"),
            ),
            unprocessed: true,
        };
    }
    let code = if !h2.is_remote() {
        if reason == h2::Reason::CANCEL {
            Code::Cancelled
        } else {
            // The client refused what the server sent (a header list over its limit,
            // a protocol violation): statuscodes.md's INTERNAL.
            Code::Internal
        }
    } else {
        match reason {
            h2::Reason::CANCEL => Code::Cancelled,
            h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
            h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
            _ => Code::Internal,
        }
    };
    failed(
        code,
        format!("stream reset {} with {name} ({h2})", raised_by(h2)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_raised_here_is_cancelled_and_not_replayed() {
        let error = h2::Error::from(h2::Reason::CANCEL);
        let failure = classify("t", &error);
        assert_eq!(failure.status.code(), Code::Cancelled);
        assert!(!failure.unprocessed);
    }

    #[test]
    fn io_errors_are_unavailable_and_may_have_been_processed() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let failure = classify("t", &io);
        assert_eq!(failure.status.code(), Code::Unavailable);
        assert!(!failure.unprocessed);
    }
}
