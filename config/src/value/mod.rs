//! The value types of the model and their parsers: durations, byte sizes, addresses,
//! SPIFFE IDs, gRPC status codes.
//!
//! Each parser takes a string and returns the value or an [`InvalidValue`] that says what
//! is wrong and how to write it. They know nothing of TOML or JSON, so the file reader,
//! the service-config parser and the attribute macro share them.

mod address;
mod byte_size;
mod duration;
mod proto_duration;
mod spiffe_id;
mod status_code;

pub use address::Address;
pub use byte_size::{format_byte_size, parse_byte_size};
pub use duration::{format_duration, parse_duration, parse_optional_duration};
pub use proto_duration::{format_proto_duration, parse_proto_duration};
pub use spiffe_id::{SpiffeId, TrustDomain};
pub use status_code::Code;

use std::fmt;
use std::time::Duration;

/// The longest duration a service config can hold: grpc-go keeps durations as
/// nanoseconds in an `i64` (about 292 years) and rejects longer ones.
pub const MAX_DURATION: Duration = Duration::from_secs(9_223_372_036);

/// Why a string is not a valid value, and how to write one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// What is wrong with the input, shown under the caret.
    pub problem: String,
    /// How to write a valid value.
    pub help: String,
}

impl InvalidValue {
    pub(crate) fn new(problem: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            help: help.into(),
        }
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.problem, self.help)
    }
}

impl std::error::Error for InvalidValue {}
