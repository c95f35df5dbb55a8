//! The compile errors a user sees, one file per kind of mistake, with `.stderr`
//! snapshots; and clients that must compile, one per preset and one inline.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/unknown_*.rs");
    cases.compile_fail("tests/ui/bad_duration.rs");
    cases.compile_fail("tests/ui/out_of_range.rs");
    cases.compile_fail("tests/ui/retry_and_hedging.rs");
    cases.compile_fail("tests/ui/address_and_target.rs");
    cases.compile_fail("tests/ui/toml_error.rs");
    cases.compile_fail("tests/ui/missing_toml.rs");
    cases.compile_fail("tests/ui/wrong_shape.rs");
    cases.compile_fail("tests/ui/implied_target.rs");
    cases.compile_fail("tests/ui/derive_deref.rs");
    cases.compile_fail("tests/ui/generic_without_default.rs");
    cases.compile_fail("tests/ui/profile_error.rs");
    cases.compile_fail("tests/ui/bad_interceptor.rs");
    cases.pass("tests/ui/pass_*.rs");
}
