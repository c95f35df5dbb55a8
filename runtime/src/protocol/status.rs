//! The status a server sends (`grpc-status`, `grpc-message`, `grpc-status-details-bin`),
//! made safe before tonic reads it.
//!
//! tonic 0.14 panics in the caller's task on a `grpc-status-details-bin` that is not
//! base64, and reads `grpc-status: abc` as UNKNOWN with no message. A server must not be
//! able to panic a client, and "error parsing returned status" is UNKNOWN with a message
//! that says what the server sent (statuscodes.md): such headers are rewritten here.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderMap, HeaderValue};

/// The decoder tonic uses for `-bin` status details (tonic's `util::base64::STANDARD`):
/// whatever it rejects, tonic would panic on.
const TONIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

use super::names::{GRPC_MESSAGE, GRPC_STATUS, GRPC_STATUS_DETAILS};

/// Whether `value` is a gRPC status code (0 to 16, in decimal).
fn is_status_code(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 2
        && value.iter().all(u8::is_ascii_digit)
        && value.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 16
}

/// Rewrites a status the caller could not read safely as UNKNOWN, saying what the server
/// sent; leaves a valid status (or a map without one) as it is.
pub(crate) fn sanitize(headers: &mut HeaderMap) {
    let Some(code) = headers.get(&GRPC_STATUS) else {
        return;
    };
    let problem = if !is_status_code(code.as_bytes()) {
        format!(
            "the server sent an invalid grpc-status {:?}",
            String::from_utf8_lossy(code.as_bytes())
        )
    } else if headers
        .get(&GRPC_STATUS_DETAILS)
        .is_some_and(|details| TONIC_BASE64.decode(details.as_bytes()).is_err())
    {
        format!(
            "the server sent grpc-status {} with a grpc-status-details-bin that is not base64",
            String::from_utf8_lossy(code.as_bytes())
        )
    } else {
        return;
    };
    let message = match headers.get(&GRPC_MESSAGE) {
        Some(original) => format!(
            "{problem}; its message: {}",
            percent_decode(original.as_bytes())
        ),
        None => problem,
    };
    headers.insert(GRPC_STATUS, HeaderValue::from_static("2"));
    headers.remove(&GRPC_STATUS_DETAILS);
    if let Ok(value) = HeaderValue::from_str(&percent_encode(&message)) {
        headers.insert(GRPC_MESSAGE, value);
    }
}

/// `grpc-message` encoding (PROTOCOL-HTTP2.md): bytes outside 0x20..=0x7E, and `%`, as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The text of a `grpc-message`, for quoting it (invalid escapes are kept as they are).
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn a_valid_status_is_left_alone() {
        let mut h = headers(&[
            ("grpc-status", "14"),
            ("grpc-message", "busy"),
            ("grpc-status-details-bin", "CAE"),
        ]);
        let before = h.clone();
        sanitize(&mut h);
        assert_eq!(h, before);
        assert_eq!(
            tonic::Status::from_header_map(&h).unwrap().code(),
            tonic::Code::Unavailable
        );
    }

    #[test]
    fn details_that_would_panic_tonic_become_unknown_with_a_message() {
        let mut h = headers(&[
            ("grpc-status", "13"),
            ("grpc-message", "boom%20100%25"),
            ("grpc-status-details-bin", "!!not base64!!"),
        ]);
        sanitize(&mut h);
        let status = tonic::Status::from_header_map(&h).unwrap();
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert_eq!(
            status.message(),
            "the server sent grpc-status 13 with a grpc-status-details-bin that is not base64; its message: boom 100%"
        );
    }

    #[test]
    fn a_status_that_is_not_a_code_says_what_was_sent() {
        for bad in ["abc", "17", "", "-1", "999"] {
            let mut h = HeaderMap::new();
            h.insert("grpc-status", HeaderValue::from_str(bad).unwrap());
            sanitize(&mut h);
            let status = tonic::Status::from_header_map(&h).unwrap();
            assert_eq!(status.code(), tonic::Code::Unknown, "{bad}");
            assert_eq!(
                status.message(),
                format!("the server sent an invalid grpc-status {bad:?}")
            );
        }
    }

    #[test]
    fn codes_zero_to_sixteen_are_valid() {
        assert!((0..=16).all(|c| is_status_code(c.to_string().as_bytes())));
        assert!(is_status_code(b"00"));
        assert!(!is_status_code(b"+1"));
    }

    #[test]
    fn percent_encoding_round_trips_through_tonic() {
        let text = "déjà 100% \u{7f}";
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("2"));
        h.insert(
            "grpc-message",
            HeaderValue::from_str(&percent_encode(text)).unwrap(),
        );
        assert_eq!(tonic::Status::from_header_map(&h).unwrap().message(), text);
    }
}
