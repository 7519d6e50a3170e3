//! The end of a region without ULFM: every rank's status word, reduced to
//! the smallest over point-to-point messages, polled with a deadline.
//!
//! A dissemination exchange (in round `k` each rank sends its running
//! minimum to the rank `2^k` after it and takes the one from `2^k` before
//! it; the minimum is idempotent, so after `⌈log2 P⌉` rounds every rank
//! has everyone's) instead of `MPI_Iallreduce`: Open MPI runs non-blocking
//! collectives through libnbc's schedules, which took 0.56–0.64 µs on 2
//! ranks where these messages take 0.31 µs, and every region ends with one.

use std::ffi::c_int;
use std::time::Instant;

use mpi::ffi;

use super::calls::nonblocking;
use super::handles::{Comm, call, int, u64_type};
use crate::error::Result;

/// The tag of the agreement's messages on the control communicator (whose
/// only other point-to-point messages are dispatch headers, `announce.rs`).
const TAG_AGREE: c_int = 7;

/// The smallest `mine` over all ranks of `comm`, or `None` if `deadline`
/// passed before every rank took part (the caller then ends the job: a
/// message may still arrive in memory this leaks).
pub(crate) fn agree_min(comm: Comm, mine: u64, deadline: Option<Instant>) -> Result<Option<u64>> {
    let (rank, size) = (comm.rank(), comm.size());
    let mut min = mine;
    let mut distance = 1;
    while distance < size {
        let to = (rank + distance) % size;
        let from = (rank + size - distance) % size;
        match swap(comm, min, to, from, deadline)? {
            Some(theirs) => min = min.min(theirs),
            None => return Ok(None),
        }
        distance *= 2;
    }
    Ok(Some(min))
}

/// Sends `word` to `to` and receives one from `from`, both non-blocking and
/// polled until done or `deadline` (`None`).
fn swap(
    comm: Comm,
    word: u64,
    to: usize,
    from: usize,
    deadline: Option<Instant>,
) -> Result<Option<u64>> {
    let (to, from) = (
        int(to, "MPI_Isend", "rank")?,
        int(from, "MPI_Irecv", "rank")?,
    );
    let ty = u64_type().raw();
    // [sent, received].
    let words = nonblocking(
        vec![word, 0],
        deadline,
        "MPI_Testall",
        |words, [send, recv]| {
            // The send first: the partner may be waiting for it already.
            call("MPI_Isend", || {
                // SAFETY: `words` is a heap buffer of two u64 that `nonblocking`
                // keeps alive until both requests complete; the send reads
                // only the first; `send` is a valid out-parameter.
                unsafe {
                    ffi::MPI_Isend(
                        words.cast_const().cast(),
                        1,
                        ty,
                        to,
                        TAG_AGREE,
                        comm.raw(),
                        send,
                    )
                }
            })?;
            call("MPI_Irecv", || {
                // SAFETY: as above; the receive writes only the second word.
                unsafe {
                    ffi::MPI_Irecv(
                        words.add(1).cast(),
                        1,
                        ty,
                        from,
                        TAG_AGREE,
                        comm.raw(),
                        recv,
                    )
                }
            })
        },
    )?;
    Ok(words.map(|w| w[1]))
}
