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

/// Called by `#[parallelizer::test]` with the test's path: a worker
/// launched for that test serves; every other process returns.
pub fn test_worker_entry(test_path: &str) {
    let _ = test_path;
    worker_entry();
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
