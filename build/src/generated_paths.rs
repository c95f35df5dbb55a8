//! Generated code that names tonic, prost and tonic-prost through `::ephemos::__private`,
//! so a user's crate depends on `ephemos` (and `ephemos-build`) only.
//!
//! prost-build has options for its paths (`prost_path`, `prost_types_path`) and
//! tonic-prost-build for its codec (`codec_path`); tonic's own code generator writes
//! `tonic::...` with no option to change it, so those paths are rewritten in the files it
//! wrote. Left as they are: RPCs whose request or response is a well-known type other
//! than `Empty` (tonic-prost-build writes `::prost_types::...` for them): a crate with
//! such RPCs also depends on `prost-types`.

use std::path::Path;

/// Where generated code finds each crate.
pub(crate) const PROST: &str = "::ephemos::__private::prost";
pub(crate) const PROST_TYPES: &str = "::ephemos::__private::prost_types";
pub(crate) const CODEC: &str = "::ephemos::__private::ProstCodec";
const TONIC: &str = "::ephemos::__private::tonic::";

/// `tonic::` at the start of a path (not `::tonic::`, not `my_tonic::`) becomes
/// `::ephemos::__private::tonic::`.
pub(crate) fn rewrite_tonic_paths(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 8);
    let mut rest = code;
    while let Some(at) = rest.find("tonic::") {
        let before = rest[..at].chars().next_back();
        out.push_str(&rest[..at]);
        let starts_path = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        out.push_str(if starts_path { TONIC } else { "tonic::" });
        rest = &rest[at + "tonic::".len()..];
    }
    out.push_str(rest);
    out
}

/// Rewrites the file tonic-prost-build wrote for each package.
pub(crate) fn rewrite_files(out_dir: &Path, packages: &[String]) -> std::io::Result<()> {
    for package in packages {
        let name = if package.is_empty() { "_" } else { package };
        let path = out_dir.join(format!("{name}.rs"));
        let Ok(code) = std::fs::read_to_string(&path) else {
            continue;
        };
        let rewritten = rewrite_tonic_paths(&code);
        if rewritten != code {
            std::fs::write(&path, rewritten)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_that_start_with_tonic_are_rewritten() {
        assert_eq!(
            rewrite_tonic_paths(
                "use tonic::codegen::*; x: tonic::Status, ::tonic::A, my_tonic::B, <tonic::C>"
            ),
            "use ::ephemos::__private::tonic::codegen::*; x: ::ephemos::__private::tonic::Status, \
             ::tonic::A, my_tonic::B, <::ephemos::__private::tonic::C>"
        );
    }
}
