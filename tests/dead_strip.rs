//! Registrations in a separate crate that this binary never calls by name
//! are still found.
//!
//! rustc only links a dependency that the crate mentions: a crate listed in
//! Cargo.toml but never named is not linked at all, and its registrations
//! are lost. Naming it once (`use other_crate as _;`) is enough; rustc then
//! keeps its `#[used]` registration statics (inventory's constructor and
//! linkme's section entries) even though nothing references them.

// The one documented requirement: name the crate once. Nothing from it is
// called or referenced below.
use parallelizer_linked_fixture as _;

fn found() -> (bool, bool, bool) {
    let backend = parallelizer::modes().contains(&"stripped".to_string());
    let task =
        parallelizer::backend::task_by_path("parallelizer_linked_fixture::stripped_task").is_ok();
    let nested =
        parallelizer::backend::task_by_path("parallelizer_linked_fixture::inner::nested_task")
            .is_ok();
    (backend, task, nested)
}

#[test]
fn registrations_of_an_unreferenced_crate_are_found() {
    assert_eq!(found(), (true, true, true), "(backend, task, nested task)");
    // And they work: build the backend by name, run the task by path.
    let par = parallelizer::from_config("stripped").unwrap();
    assert_eq!(par.mode(), "stripped");
    let task =
        parallelizer::backend::task_by_path("parallelizer_linked_fixture::stripped_task").unwrap();
    task.invoke(&*par, parallelizer::backend::Msg::new(21u64))
        .unwrap();
}
