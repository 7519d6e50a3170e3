//! The worker entry that `#[parallelizer::main]` and `#[parallelizer::test]`
//! insert before the body: in a process that a backend launched as a worker
//! it serves tasks and exits, never running the body (Python's
//! `if __name__ == "__main__":`). In any other process it returns at once.
//!
//! Backends plug in through [`WorkerHook`]s; each hook checks its own marker
//! (an environment variable, an MPI rank) and must be cheap when absent.

/// Called first thing by `#[parallelizer::main]`. Returns at once unless
/// this process is a worker launched by a backend, in which case it serves
/// until main shuts it down and then exits the process.
///
/// ```
/// // In a normal process this returns immediately.
/// parallelizer_core::worker::worker_entry();
/// ```
pub fn worker_entry() {
    for hook in inventory::iter::<WorkerHook> {
        if let Some(code) = (hook.serve)() {
            std::process::exit(code);
        }
    }
}

/// Called by `#[parallelizer::test]` with the test's path
/// (`concat!(module_path!(), "::", name)`): a worker launched for that test
/// serves; every other process returns, remembering the test's libtest name
/// (the path without the crate) so that backends which re-execute the test
/// binary can select this test alone (`--exact NAME`).
///
/// ```
/// parallelizer_core::worker::test_worker_entry("my_tests::inner::it_works");
/// assert_eq!(parallelizer_core::worker::current_test().as_deref(), Some("inner::it_works"));
/// ```
pub fn test_worker_entry(test_path: &str) {
    let name = test_path
        .split_once("::")
        .map_or(test_path, |(_, rest)| rest)
        .to_string();
    TEST_NAME.with(|t| *t.borrow_mut() = Some(name));
    worker_entry();
}

thread_local! {
    static TEST_NAME: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The libtest name of the test running on this thread, if it called
/// [`test_worker_entry`].
pub fn current_test() -> Option<String> {
    TEST_NAME.with(|t| t.borrow().clone())
}

/// A backend's worker loop, run by [`worker_entry`] in launched workers.
/// `serve` returns `None` if the environment is not its own, else the exit
/// code after serving.
#[derive(Debug)]
pub struct WorkerHook {
    /// Serves if this process is one of the backend's workers.
    pub serve: fn() -> Option<i32>,
}

inventory::collect!(WorkerHook);
