//! The backend's errors: every error of the backend is built by one of
//! these functions, by `handles::mpi_error` (a failed MPI call) or by the
//! option checks of `Mpi::with_role`.

use std::time::Duration;

use crate::error::Error;
use crate::op::Op;

/// A collective called with data on the wrong ranks.
pub(super) fn missing(op: Op) -> Error {
    Error::ContractViolation(format!(
        "main must pass Some(data) to {op}; workers pass None"
    ))
}

/// Arguments that do not fit the collective (a wrong number of chunks, a
/// buffer shorter than the counts).
pub(super) fn contract_error(detail: String) -> Error {
    Error::ContractViolation(detail)
}

/// A message between the ranks that breaks the backend's protocol (an
/// unknown tag or dispatch kind, an inconsistent header).
pub(super) fn protocol_error(detail: String) -> Error {
    Error::Protocol(detail)
}

/// A point-to-point receive from `rank` that waited `after` in vain.
pub(super) fn receive_timeout(rank: usize, after: Duration) -> Error {
    Error::Timeout {
        op: Op::Receive,
        rank,
        after,
    }
}
