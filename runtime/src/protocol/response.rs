//! Whether a response head is a gRPC response (PROTOCOL-HTTP2.md), and what the caller
//! gets when it is not: a proxy's `503` page or an HTTP server's `404` is mapped by the
//! HTTP status (grpc/grpc `doc/http-grpc-status-mapping.md`, as grpc-go does), and its
//! body is never read as gRPC messages.

use http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use tonic::{Code, Status};

/// A response whose head carries `grpc-status` is Trailers-Only: the call ended with it,
/// and it is not a commit (gRFC A6).
pub(crate) fn is_trailers_only(headers: &HeaderMap) -> bool {
    headers.contains_key(&super::names::GRPC_STATUS)
}

/// The gRPC code for an HTTP status of a response without `grpc-status`.
fn code_of_http_status(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 431 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// `application/grpc`, `application/grpc+proto`, `application/grpc;...` (grpc-go's
/// `ContentSubtype`).
fn is_grpc_content_type(value: &[u8]) -> bool {
    const BASE: &[u8] = b"application/grpc";
    value.len() >= BASE.len()
        && value[..BASE.len()].eq_ignore_ascii_case(BASE)
        && matches!(value.get(BASE.len()), None | Some(b'+' | b';'))
}

/// Checks a response head: `Ok` for a gRPC response (its status headers made safe for
/// tonic), else the status the call fails with.
pub(crate) fn check_head(
    target: &str,
    status: StatusCode,
    headers: &mut HeaderMap,
) -> Result<(), Status> {
    if is_trailers_only(headers) {
        // "If grpc-status was provided, it must be used" (http-grpc-status-mapping.md).
        crate::protocol::status::sanitize(headers);
        return Ok(());
    }
    let content_type = headers.get(CONTENT_TYPE);
    let grpc = content_type.is_some_and(|v| is_grpc_content_type(v.as_bytes()));
    if status == StatusCode::OK && grpc {
        return Ok(());
    }
    let shown = content_type.map_or_else(
        || "no content-type".to_owned(),
        |v| format!("content-type {:?}", String::from_utf8_lossy(v.as_bytes())),
    );
    let reason = status.canonical_reason().unwrap_or("unknown");
    let message = if status == StatusCode::OK {
        format!("the server's response is not gRPC: HTTP 200 with {shown}")
    } else {
        format!(
            "the server answered HTTP {} ({reason}) with {shown} and no grpc-status: not a gRPC response",
            status.as_u16()
        )
    };
    Err(crate::error::status(
        code_of_http_status(status),
        target,
        message,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, content_type: Option<&'static str>) -> Result<(), Status> {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, http::HeaderValue::from_static(ct));
        }
        check_head("t", StatusCode::from_u16(status).unwrap(), &mut headers)
    }

    #[test]
    fn http_statuses_map_by_the_grpc_table() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (431, Code::Internal),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (500, Code::Unknown),
            (302, Code::Unknown),
        ];
        for (http, grpc) in table {
            let status = check(http, Some("text/html")).unwrap_err();
            assert_eq!(status.code(), grpc, "HTTP {http}");
            assert!(
                status.message().contains(&format!("HTTP {http}")),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_200_is_grpc_only_with_a_grpc_content_type() {
        assert!(check(200, Some("application/grpc")).is_ok());
        assert!(check(200, Some("application/grpc+proto")).is_ok());
        assert!(check(200, Some("Application/GRPC;charset=x")).is_ok());
        for other in [Some("application/grpcx"), Some("text/html"), None] {
            let status = check(200, other).unwrap_err();
            assert_eq!(status.code(), Code::Unknown, "{other:?}");
        }
    }

    #[test]
    fn a_trailers_only_status_is_used_whatever_the_http_status() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert!(check_head("t", StatusCode::SERVICE_UNAVAILABLE, &mut headers).is_ok());
    }
}
