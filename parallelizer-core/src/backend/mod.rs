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
