//! The one error type of the framework, the same whichever backend ran.
//!
//! `Error` is `Clone` and serializable, so an error that happened on a worker
//! process crosses to main as itself, and every backend reports a failure
//! with the same variant.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::op::Op;

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
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or spec could not be used; the message says what was
    /// wrong and what is accepted.
    #[error("invalid parallelizer configuration: {0}")]
    Config(String),

    /// A mode or name that no backend and no registration knows. The
    /// message suggests the nearest known name for a likely typo
    /// (`thread` → "did you mean `threads`?").
    #[error(
        "unknown parallelizer `{name}`{}; known modes: {}",
        crate::names::did_you_mean_mode(.name, .known),
        .known.join(", ")
    )]
    UnknownParallelizer {
        /// The name that was asked for.
        name: String,
        /// The names that would have worked.
        known: Vec<String>,
    },

    /// A rank outside `0..nprocs` was addressed, or a group's members
    /// list a rank twice (then `rank < nprocs`).
    #[error("{}", invalid_rank(*.rank, *.nprocs))]
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

    /// The configured deadline passed before the operation finished.
    #[error("{op} timed out after {after:?}: rank {rank} was late")]
    Timeout {
        /// The operation the deadline bounded (`run`, a pool-style `map`, ...).
        op: Op,
        /// The rank that had not finished.
        rank: usize,
        /// The configured timeout.
        after: Duration,
    },

    /// Every rank that could still make progress was waiting for another
    /// one that never would: a cycle of waits, or a wait for a rank that had
    /// finished its task (mismatched collectives).
    #[error("deadlock: {}", Wait::list(.waits))]
    Deadlock {
        /// Every blocked rank and what it waited for.
        waits: Vec<Wait>,
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

    /// Workers could not be started, or did not join (a spawn that failed,
    /// a handshake that was refused, a launcher that is gone).
    #[error("could not start the workers: {0}")]
    Launch(String),

    /// The ranks disagree about the protocol itself: an unknown task id or
    /// frame kind, which means they do not run the same executable.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// An operating-system error.
    #[error("I/O error: {message}")]
    Io {
        /// The error, rendered.
        message: String,
        /// The OS error code (`errno`), if it came from the OS.
        os_code: Option<i32>,
    },

    /// An error reported by the MPI library.
    #[error("MPI error: {0}")]
    Mpi(String),

    /// A feature this backend does not provide (yet); the error names the
    /// backend and the backends that do.
    #[error(
        "{feature} is not available on the `{mode}` backend; it works on: {}",
        .supported.join(", ")
    )]
    Unsupported {
        /// The backend's mode name.
        mode: String,
        /// The feature that was asked for (`"shared memory"`).
        feature: String,
        /// The modes that provide it.
        supported: Vec<String>,
    },

    /// A buffer of a plain-data call (`broadcast_into`, `receive_into`, a
    /// reduction of vectors, ...) does not have the length the call needs.
    /// The rank whose buffer is wrong gets this error after it took its
    /// part in the call, so that no other rank waits for it.
    #[error(
        "{op}: the buffer of rank {rank} holds {actual} elements but the call needs {expected}"
    )]
    Length {
        /// The call.
        op: Op,
        /// The rank whose buffer has the wrong length.
        rank: usize,
        /// The length the call needs (main's, or the message's).
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },

    /// A message longer than the buffer of fixed length given to receive
    /// it. MPI cuts such a message to the buffer and drops the rest, so how
    /// long it was is unknown (`receive_into` on MPI; where the length is
    /// known, the error is [`Error::Length`]).
    #[error(
        "{op}: rank {from} sent more than the {actual} elements the buffer of rank {rank} holds"
    )]
    Overflow {
        /// The call.
        op: Op,
        /// The receiving rank.
        rank: usize,
        /// The sending rank.
        from: usize,
        /// The buffer's length.
        actual: usize,
    },
}

/// The message of [`Error::InvalidRank`].
fn invalid_rank(rank: usize, nprocs: usize) -> String {
    if rank < nprocs {
        format!(
            "invalid rank {rank}: listed twice; a group's members are distinct ranks of 0..{nprocs}"
        )
    } else {
        format!("invalid rank {rank}: this parallelizer has ranks 0..{nprocs}")
    }
}

/// `Result` with the framework's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io {
            message: e.to_string(),
            os_code: e.raw_os_error(),
        }
    }
}

/// One blocked rank of an [`Error::Deadlock`]: who waited for whom, in which
/// operation.
///
/// ```
/// # use parallelizer_core::{Op, Wait};
/// let w = Wait { rank: 1, on: 2, op: Op::Broadcast, finished: true };
/// assert_eq!(w.to_string(), "rank 1 waits for rank 2 in broadcast (rank 2 has finished its task)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// The blocked rank.
    pub rank: usize,
    /// The rank it waits for.
    pub on: usize,
    /// The operation it is blocked in.
    pub op: Op,
    /// Whether the awaited rank had already finished its task.
    pub finished: bool,
}

impl Wait {
    fn list(waits: &[Wait]) -> String {
        let all: Vec<String> = waits.iter().map(Wait::to_string).collect();
        all.join("; ")
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rank {} waits for rank {} in {}",
            self.rank, self.on, self.op
        )?;
        if self.finished {
            write!(f, " (rank {} has finished its task)", self.on)?;
        }
        Ok(())
    }
}

impl Error {
    /// The [`Error::Unsupported`] of a backend without shared memory.
    pub(crate) fn no_shared_memory(mode: &str) -> Error {
        Error::Unsupported {
            mode: mode.to_string(),
            feature: "shared memory (SharedArray, SharedMap, share)".to_string(),
            // The modes whose ranks can share memory today.
            supported: [
                "serial",
                "threads",
                "processes (Linux)",
                "mpi (Linux, one node)",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

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

    /// This error as reported by rank `rank` to another rank: errors that
    /// carry no rank of their own (codec, contract, protocol, I/O, MPI)
    /// say where they happened; the others are returned as they are.
    ///
    /// ```
    /// # use parallelizer_core::Error;
    /// let e = Error::Codec("bad frame".into()).on_rank(2);
    /// assert_eq!(e.to_string(), "codec error: on rank 2: bad frame");
    /// let p = Error::WorkerPanicked { rank: 2, message: "x".into() };
    /// assert_eq!(p.clone().on_rank(2), p);
    /// ```
    pub fn on_rank(self, rank: usize) -> Error {
        let at = |m: String| format!("on rank {rank}: {m}");
        match self {
            Error::Codec(m) => Error::Codec(at(m)),
            Error::ContractViolation(m) => Error::ContractViolation(at(m)),
            Error::Protocol(m) => Error::Protocol(at(m)),
            Error::Mpi(m) => Error::Mpi(at(m)),
            Error::Io { message, os_code } => Error::Io {
                message: at(message),
                os_code,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_processes_as_themselves() {
        let all = [
            Error::Timeout {
                op: Op::Gather,
                rank: 2,
                after: Duration::from_millis(1500),
            },
            Error::Deadlock {
                waits: vec![Wait {
                    rank: 0,
                    on: 1,
                    op: Op::Gather,
                    finished: false,
                }],
            },
            Error::from(std::io::Error::from_raw_os_error(24)),
            Error::WorkerDied {
                rank: 3,
                status: "killed by signal 9".into(),
            },
        ];
        for e in all {
            let bytes = postcard::to_stdvec(&e).unwrap();
            assert_eq!(postcard::from_bytes::<Error>(&bytes).unwrap(), e);
        }
        let io = Error::from(std::io::Error::from_raw_os_error(24));
        assert!(
            matches!(
                io,
                Error::Io {
                    os_code: Some(24),
                    ..
                }
            ),
            "{io}"
        );
    }
}
