//! The built-in backends, one per module. Each registers itself by mode name
//! with `#[parallelizer(name = ...)]`, exactly as a user backend does.

#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(target_os = "linux")]
pub mod processes;
pub mod serial;
pub mod threads;

#[cfg(feature = "mpi")]
pub use mpi::Mpi;
#[cfg(target_os = "linux")]
pub use processes::Processes;
pub use serial::Serial;
pub use threads::Threads;

/// The message of a panic payload (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}
