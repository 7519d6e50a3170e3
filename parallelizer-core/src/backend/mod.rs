//! The built-in backends, one per module. Each registers itself by mode name
//! with `#[parallelizer(name = ...)]`, exactly as a user backend does.

pub mod serial;
pub mod threads;

pub use serial::Serial;
pub use threads::Threads;
