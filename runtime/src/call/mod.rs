//! The contracts between the runtime's layers (docs/design.md section 5): what the facade
//! puts in a request's extensions once per call ([`CallOptions`]), and what an attempt's
//! outcome tells the retry layer ([`AttemptError`]).

mod options;
mod outcome;

pub(crate) use options::CallOptions;
pub(crate) use outcome::{AttemptError, SubchannelId};
