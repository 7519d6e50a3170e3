//! A call that must come back: run on a thread of its own, with a limit.

use std::time::{Duration, Instant};

/// Runs `f` on a thread of its own and fails the test if it has not
/// returned after `limit` (a hang); its value and how long it took. A
/// panic of `f` is the test's. Enter the parallelizer on the test's thread
/// first: workers are started for the test that thread runs.
pub fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => (v, start.elapsed()),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(handle.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("no answer after {limit:?}: it hangs")
        }
    }
}
