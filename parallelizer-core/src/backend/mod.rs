//! The built-in backends, one per module. Each registers itself by mode name
//! with `#[parallelizer(name = ...)]`, exactly as a user backend does.

#[cfg(feature = "mpi")]
pub mod mpi;
pub mod serial;
pub mod threads;

#[cfg(feature = "mpi")]
pub use mpi::Mpi;
pub use serial::Serial;
pub use threads::Threads;
