//! Status codes as gRPC names them (`DEADLINE_EXCEEDED`, not tonic's `DeadlineExceeded`):
//! the one naming every output of the command uses, text and JSON alike.

use ephemos_config::value::Code as GrpcCode;

/// The name gRPC gives `code` (`UNAVAILABLE`).
pub(crate) fn name(code: tonic::Code) -> &'static str {
    GrpcCode::from_number(code as i64).map_or("UNKNOWN", GrpcCode::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_grpcs_upper_case_name() {
        assert_eq!(name(tonic::Code::Ok), "OK");
        assert_eq!(name(tonic::Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(name(tonic::Code::Unauthenticated), "UNAUTHENTICATED");
    }
}
