//! The labels of a call's metrics: its method (A66: the name only for methods a
//! generated client calls, `other` for anything else, so a caller cannot make the label
//! set grow without bound) and the names of status codes.

use std::sync::Arc;

use http::Request;
use tonic::Code;

use super::Telemetry;
use super::keys::MethodKeys;

/// What a call's metrics are labelled with, carried in its requests' extensions (the
/// retry layer keeps it for every attempt): its method's metric keys.
#[derive(Debug, Clone)]
pub(crate) struct CallLabels {
    /// The keys of `package.Service/Method`, or of `other`.
    pub(crate) keys: Arc<MethodKeys>,
}

impl CallLabels {
    /// The labels of `request`: tonic's generated clients mark their requests with a
    /// `tonic::GrpcMethod`; a request without one is `other`.
    pub(crate) fn of<B>(request: &Request<B>, telemetry: &Telemetry) -> CallLabels {
        let keys = if request
            .extensions()
            .get::<tonic::GrpcMethod<'_>>()
            .is_some()
        {
            let path = request.uri().path();
            telemetry
                .keys
                .method(path.strip_prefix('/').unwrap_or(path))
        } else {
            telemetry.keys.other()
        };
        CallLabels { keys }
    }

    /// The labels a request carries, or `other` for one that carries none (a layer
    /// used on its own).
    pub(crate) fn from_request<B>(request: &Request<B>, telemetry: &Telemetry) -> CallLabels {
        request
            .extensions()
            .get::<CallLabels>()
            .cloned()
            .unwrap_or_else(|| CallLabels {
                keys: telemetry.keys.other(),
            })
    }

    /// The `grpc.method` label's value.
    #[cfg(test)]
    pub(crate) fn method(&self) -> &str {
        self.keys.method()
    }
}

/// A status code's name, as gRPC writes it (`OK`, `DEADLINE_EXCEEDED`).
pub(crate) fn status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The code in a `grpc-status` header or trailer (UNKNOWN when it is not a number).
pub(crate) fn code_of(value: &http::HeaderValue) -> Code {
    std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_grpcs_name() {
        for (number, name) in [
            (0, "OK"),
            (4, "DEADLINE_EXCEEDED"),
            (14, "UNAVAILABLE"),
            (16, "UNAUTHENTICATED"),
        ] {
            assert_eq!(status_name(Code::from_i32(number)), name);
        }
    }

    #[test]
    fn only_a_generated_clients_method_is_named() {
        let telemetry = Telemetry::new(&Arc::from("t"));
        let mut request = Request::new(());
        *request.uri_mut() = "/echo.Echo/Unary".parse().unwrap();
        assert_eq!(CallLabels::of(&request, &telemetry).method(), "other");
        request
            .extensions_mut()
            .insert(tonic::GrpcMethod::new("echo.Echo", "Unary"));
        assert_eq!(
            CallLabels::of(&request, &telemetry).method(),
            "echo.Echo/Unary"
        );
        // Made once, then shared by the method's calls.
        assert!(Arc::ptr_eq(
            &CallLabels::of(&request, &telemetry).keys,
            &CallLabels::of(&request, &telemetry).keys
        ));
    }
}
