//! The other half of `tests/dead_strip.rs`: this binary (`it`) has the same
//! dev-dependency but never names it, so rustc does not link it and its
//! registrations are absent. This is why a crate of registrations must be
//! named once (`use that_crate as _;`). If this test starts failing, rustc
//! has begun linking unnamed dependencies and the requirement can go.

#[test]
fn an_unnamed_dependency_is_not_linked() {
    assert!(!parallelizer::modes().contains(&"stripped".to_string()));
    assert!(
        parallelizer::backend::task_by_path("parallelizer_linked_fixture::stripped_task").is_err()
    );
}
