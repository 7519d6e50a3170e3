//! The one error type of the framework, the same whichever backend ran.

use std::time::Duration;

/// Everything that can go wrong in a parallelizer, whichever backend ran.
///
/// Errors that started on another rank carry that rank, so main can tell
/// which participant failed and why.
///
/// ```
/// use parallelizer_core::{from_config, Error};
/// match from_config("warp:4") {
///     Err(Error::UnknownParallelizer { name, known }) => {
///         assert_eq!(name, "warp");
///         assert!(known.contains(&"threads".to_string()));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or spec could not be used; the message says what was
    /// wrong and what is accepted.
    #[error("invalid parallelizer configuration: {0}")]
    Config(String),

    /// A mode or name that no backend and no registration knows.
    #[error("unknown parallelizer `{name}`; known modes: {}", .known.join(", "))]
    UnknownParallelizer {
        /// The name that was asked for.
        name: String,
        /// The names that would have worked.
        known: Vec<String>,
    },

    /// A rank outside `0..nprocs` was addressed.
    #[error("invalid rank {rank}: this parallelizer has ranks 0..{nprocs}")]
    InvalidRank {
        /// The rank that was addressed.
        rank: usize,
        /// The number of ranks.
        nprocs: usize,
    },

    /// A task had to cross a process boundary but was not registered by name.
    #[error(
        "task `{task}` is not registered, so it cannot run in another process; \
         add `#[parallelizer::task]` to the fn and pass the fn itself (not a closure \
         or a fn pointer), or use the `serial` or `threads` mode"
    )]
    TaskNotRegistered {
        /// The type name of what was passed.
        task: String,
    },

    /// A task panicked on some rank.
    #[error("rank {rank} panicked: {message}")]
    WorkerPanicked {
        /// The rank whose task panicked.
        rank: usize,
        /// The panic message.
        message: String,
    },

    /// A task returned an error on some rank.
    #[error("task failed on rank {rank}: {message}")]
    TaskFailed {
        /// The rank whose task failed.
        rank: usize,
        /// The task's error, rendered with `Display`.
        message: String,
    },

    /// A worker process died (killed or exited) while it was needed.
    #[error("worker rank {rank} died ({status})")]
    WorkerDied {
        /// The rank of the dead worker.
        rank: usize,
        /// How it ended, e.g. `killed by signal 9` or `exited with status 3`.
        status: String,
    },

    /// A blocking operation waited longer than the configured timeout.
    #[error("{op} timed out after {after:?} waiting for rank {rank}")]
    Timeout {
        /// The operation that waited (`receive`, `gather`, ...).
        op: &'static str,
        /// The rank it waited for.
        rank: usize,
        /// The configured timeout.
        after: Duration,
    },

    /// A message could not be encoded or decoded, or held another type than
    /// the receiver asked for.
    #[error("codec error: {0}")]
    Codec(String),

    /// The ranks did not issue the collectives the contract expects
    /// (McUtils `CallerContract`), or a collective was called where it cannot
    /// pair up.
    #[error("contract violation: {0}")]
    ContractViolation(String),

    /// This rank was released from a collective because another rank failed.
    #[error("aborted because rank {by_rank} failed")]
    Aborted {
        /// The rank whose failure aborted the region.
        by_rank: usize,
    },

    /// An operating-system error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// An error reported by the MPI library.
    #[error("MPI error: {0}")]
    Mpi(String),
}

/// `Result` with the framework's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this error only reports that another rank failed first.
    ///
    /// ```
    /// # use parallelizer_core::Error;
    /// assert!(Error::Aborted { by_rank: 2 }.is_secondary());
    /// assert!(!Error::WorkerPanicked { rank: 2, message: "boom".into() }.is_secondary());
    /// ```
    pub fn is_secondary(&self) -> bool {
        matches!(self, Error::Aborted { .. })
    }
}
