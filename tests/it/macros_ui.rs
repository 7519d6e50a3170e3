//! Compile-fail cases (with reviewed `.stderr` snapshots) and pass cases of
//! every attribute. Regenerate snapshots with `TRYBUILD=overwrite cargo test
//! --test it macros_ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
