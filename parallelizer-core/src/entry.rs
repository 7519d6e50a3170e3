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
/// parallelizer_core::worker_entry();
/// ```
pub fn worker_entry() {
    for hook in inventory::iter::<WorkerHook> {
        if let Some(code) = (hook.serve)() {
            std::process::exit(code);
        }
    }
}

/// Called by `#[parallelizer::test]` first thing in the test, with the
/// test's path `concat!(module_path!(), "::", name)` (crate name first): a
/// worker launched for that test serves; every other process records the
/// test as this thread's [`current_test`] and returns.
pub fn test_worker_entry(test_path: &str) {
    crate::runtime::set_current_test(test_path);
    worker_entry();
}

/// The libtest name of the `#[parallelizer::test]` running on this thread
/// (its path without the crate name, e.g. `tests::gathers`), which a
/// process backend passes to the re-executed test binary as
/// `--exact NAME`. `None` outside such a test.
///
/// ```
/// assert_eq!(parallelizer_core::backend::current_test(), None);
/// parallelizer_core::__private::test_worker_entry("my_crate::tests::gathers");
/// assert_eq!(parallelizer_core::backend::current_test().as_deref(), Some("tests::gathers"));
/// ```
pub fn current_test() -> Option<String> {
    crate::runtime::current_test_path().map(|path| {
        path.split_once("::")
            .map_or(&path[..], |(_, rest)| rest)
            .to_string()
    })
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
