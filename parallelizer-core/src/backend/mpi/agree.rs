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
use std::mem::MaybeUninit;
use std::time::Instant;

use mpi::ffi;

use super::calls::poll_until;
use super::handles::{Comm, call, int, u64_type};
use crate::error::Result;

/// The tag of the agreement's messages on the control communicator, which
/// carries no other point-to-point message.
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
    // [sent, received], on the heap: MPI owns both until the requests end.
    let words: *mut [u64; 2] = Box::into_raw(Box::new([word, 0]));
    let mut requests = [MaybeUninit::<ffi::MPI_Request>::uninit(); 2];
    let [send_req, recv_req] = &mut requests;
    call("MPI_Irecv", || {
        // SAFETY: `words` is a live heap allocation of two u64 that stays
        // alive until both requests complete (leaked otherwise); the
        // receive writes only the second; `recv_req` is an out-parameter.
        unsafe {
            ffi::MPI_Irecv(
                (&raw mut (*words)[1]).cast(),
                1,
                u64_type().raw(),
                from,
                TAG_AGREE,
                comm.raw(),
                recv_req.as_mut_ptr(),
            )
        }
    })?;
    let sent = call("MPI_Isend", || {
        // SAFETY: as above; the send reads only the first word.
        unsafe {
            ffi::MPI_Isend(
                (&raw const (*words)[0]).cast(),
                1,
                u64_type().raw(),
                to,
                TAG_AGREE,
                comm.raw(),
                send_req.as_mut_ptr(),
            )
        }
    });
    // On error the receive may still write into `words`: left to MPI.
    sent?;
    // SAFETY: both calls succeeded, so both wrote their request handles.
    let mut requests = requests.map(|r| unsafe { r.assume_init() });
    let done = poll_until(deadline, || {
        let mut done: c_int = 0;
        call("MPI_Testall", || {
            // SAFETY: two active requests (MPI_Testall sets both to
            // MPI_REQUEST_NULL once it says done, and polling stops then);
            // MPI_STATUSES_IGNORE is a predefined constant of rsmpi's shim.
            unsafe {
                ffi::MPI_Testall(
                    2,
                    requests.as_mut_ptr(),
                    &mut done,
                    ffi::RSMPI_STATUSES_IGNORE,
                )
            }
        })?;
        Ok(done != 0)
    })?;
    if !done {
        return Ok(None);
    }
    // SAFETY: both requests completed: MPI no longer uses `words`, which
    // `Box::into_raw` above made.
    let words = unsafe { Box::from_raw(words) };
    Ok(Some(words[1]))
}
