//! Small agreements on the control communicator: every rank's words,
//! reduced element-wise to the smallest over point-to-point messages,
//! polled with a deadline. The end of a region without ULFM agrees on its
//! lowest failed rank (`fate.rs`); the start of an SPMD region on whether
//! a rank has left (`serve.rs`).
//!
//! A dissemination exchange (in round `k` each rank sends its running
//! minimum to the rank `2^k` after it and takes the one from `2^k` before
//! it; the minimum is idempotent, so after `⌈log2 P⌉` rounds every rank
//! has everyone's) instead of `MPI_Iallreduce`: Open MPI runs non-blocking
//! collectives through libnbc's schedules, which took 0.56–0.64 µs on 2
//! ranks where these messages take 0.31 µs, and every region ends with one
//! (an empty SPMD region, whose start was an `MPI_Iallreduce` too, took
//! 3.3–3.7 µs on 2 ranks with it and 2.2–2.6 µs with this).

use std::ffi::c_int;
use std::time::Instant;

use mpi::ffi;

use super::calls::nonblocking;
use super::handles::{Comm, call, int, u64_type};
use crate::error::Result;

/// The tag of the agreements' messages on the control communicator (whose
/// only other point-to-point messages are dispatch headers, `announce.rs`).
/// Every rank makes the same agreements in the same order, so the messages
/// of one never meet another's.
const TAG_AGREE: c_int = 7;

/// The element-wise smallest `mine` over all ranks of `comm`, or `None` if
/// `deadline` passed before every rank took part (the caller then ends the
/// job: a message may still arrive in memory this leaks).
pub(crate) fn agree_min<const N: usize>(
    comm: Comm,
    mine: [u64; N],
    deadline: Option<Instant>,
) -> Result<Option<[u64; N]>> {
    let (rank, size) = (comm.rank(), comm.size());
    let mut min = mine;
    let mut distance = 1;
    while distance < size {
        let to = (rank + distance) % size;
        let from = (rank + size - distance) % size;
        match swap(comm, min, to, from, deadline)? {
            Some(theirs) => {
                for (m, t) in min.iter_mut().zip(theirs) {
                    *m = (*m).min(t);
                }
            }
            None => return Ok(None),
        }
        distance *= 2;
    }
    Ok(Some(min))
}

/// Sends `words` to `to` and receives as many from `from`, both
/// non-blocking and polled until done or `deadline` (`None`). One
/// allocation: both halves of one buffer.
fn swap<const N: usize>(
    comm: Comm,
    words: [u64; N],
    to: usize,
    from: usize,
    deadline: Option<Instant>,
) -> Result<Option<[u64; N]>> {
    let (count, to, from) = (
        int(N, "MPI_Isend", "count")?,
        int(to, "MPI_Isend", "rank")?,
        int(from, "MPI_Irecv", "rank")?,
    );
    let ty = u64_type().raw();
    // The N words sent, then the N received.
    let mut both = vec![0; 2 * N].into_boxed_slice();
    both[..N].copy_from_slice(&words);
    let both = nonblocking(both, deadline, "MPI_Testall", |both, [send, recv]| {
        // The send first: the partner may be waiting for it already.
        call("MPI_Isend", || {
            // SAFETY: `both` is a heap buffer of 2N u64 that `nonblocking`
            // keeps alive until both requests complete; the send reads only
            // the first N; `send` is a valid out-parameter.
            unsafe {
                ffi::MPI_Isend(
                    both.cast_const().cast(),
                    count,
                    ty,
                    to,
                    TAG_AGREE,
                    comm.raw(),
                    send,
                )
            }
        })?;
        call("MPI_Irecv", || {
            // SAFETY: as above; the receive writes only the last N words
            // (`add(N)` stays inside the buffer).
            unsafe {
                ffi::MPI_Irecv(
                    both.add(N).cast(),
                    count,
                    ty,
                    from,
                    TAG_AGREE,
                    comm.raw(),
                    recv,
                )
            }
        })
    })?;
    Ok(both.map(|w| {
        let mut theirs = [0; N];
        theirs.copy_from_slice(&w[N..]);
        theirs
    }))
}
