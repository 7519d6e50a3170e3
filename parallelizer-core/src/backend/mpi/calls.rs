//! The MPI calls that move data: blocking and non-blocking collectives and
//! point-to-point messages (`calls/point.rs`), each a safe function over a
//! checked call of the C API (see `handles.rs` for the conventions the
//! `// SAFETY:` comments rely on: valid handles, buffers that fit the
//! counts, calls under the gate). Calls larger than `limit` elements are
//! split ([`pieces`], [`rounds`]).

use std::ffi::{c_int, c_void};
use std::time::Instant;

use mpi::ffi;

use super::contract_error;
use super::handles::{Comm, Datatype, c_ints, call, int, u64_type};
use super::plan::{pieces, rounds, starts};
use super::wait::poll_until;
use crate::error::Result;

// ---------------------------------------------------------------------------
// Blocking collectives

/// Broadcasts `buf` (elements of `ty`, the same length on every rank) from
/// `root`, in calls of at most `limit` elements.
pub(crate) fn bcast(
    comm: Comm,
    ty: Datatype<'_>,
    buf: &mut [u8],
    root: usize,
    limit: usize,
) -> Result<()> {
    let size = ty.size();
    let root = int(root, "MPI_Bcast", "root")?;
    for piece in pieces(buf.len() / size.max(1), limit) {
        let bytes = &mut buf[piece.start * size..piece.end * size];
        let count = int(piece.len(), "MPI_Bcast", "count")?;
        call("MPI_Bcast", || {
            // SAFETY: `bytes` holds exactly `count` elements of `ty`, read on
            // the root and written elsewhere (conventions in `handles.rs`).
            unsafe { ffi::MPI_Bcast(bytes.as_mut_ptr().cast(), count, ty.raw(), root, comm.raw()) }
        })?;
    }
    Ok(())
}

/// Scatter-v from rank 0: `send` (main only) holds the chunks of `counts`
/// elements (one count per rank) back to back; `recv` receives
/// `counts[rank]` elements. Split into rounds of at most `limit` elements
/// ([`rounds`]).
pub(crate) fn scatterv(
    comm: Comm,
    ty: Datatype<'_>,
    send: Option<&[u8]>,
    counts: &[usize],
    recv: &mut [u8],
    limit: usize,
) -> Result<()> {
    let (size, rank) = (ty.size(), comm.rank());
    let total = counts.iter().sum::<usize>() * size;
    if counts.len() != comm.size() {
        return Err(contract_error(format!(
            "scatter: {} counts for {} ranks",
            counts.len(),
            comm.size()
        )));
    }
    if rank == 0 && send.is_none_or(|s| s.len() < total) {
        return Err(contract_error(
            "scatter: main's buffer is shorter than the counts".into(),
        ));
    }
    let own_start = starts(counts)[rank];
    for round in rounds(counts, limit) {
        let c = c_ints(&round.counts, "MPI_Scatterv", "count")?;
        let d = c_ints(&round.displs, "MPI_Scatterv", "displacement")?;
        let own = round.own(rank, own_start);
        let out = &mut recv[own.start * size..own.end * size];
        // An empty slice's pointer is 1 (its alignment), which Open MPI
        // reads as MPI_IN_PLACE, refused on ranks other than the root.
        let mut spare = 0u64;
        let out: *mut c_void = if out.is_empty() {
            (&raw mut spare).cast()
        } else {
            out.as_mut_ptr().cast()
        };
        // Main's window of the round: `round.base` plus at most `limit`
        // elements, inside `send` (checked above); null elsewhere.
        let window: *const c_void = match send {
            Some(s) if rank == 0 => s[round.base * size..].as_ptr().cast(),
            _ => std::ptr::null(),
        };
        call("MPI_Scatterv", || {
            // SAFETY: `c` and `d` have one entry per rank of `comm` (checked
            // above). On main, `window` points into `send` with every
            // `d[r] + c[r]` elements of the round inside it (the round lies
            // within the counts' total); other ranks' send arguments are
            // ignored by MPI. `out` points to exactly `c[rank]` elements
            // (to `spare`, never touched, when that is 0).
            unsafe {
                ffi::MPI_Scatterv(
                    window,
                    c.as_ptr(),
                    d.as_ptr(),
                    ty.raw(),
                    out,
                    c[rank],
                    ty.raw(),
                    0,
                    comm.raw(),
                )
            }
        })?;
    }
    Ok(())
}

/// Gather-v to rank 0: every rank sends `send` (`counts[rank]` elements,
/// one count per rank); main receives all chunks back to back into `recv`.
/// Split into rounds of at most `limit` elements ([`rounds`]).
pub(crate) fn gatherv(
    comm: Comm,
    ty: Datatype<'_>,
    send: &[u8],
    counts: &[usize],
    mut recv: Option<&mut [u8]>,
    limit: usize,
) -> Result<()> {
    let (size, rank) = (ty.size(), comm.rank());
    let total = counts.iter().sum::<usize>() * size;
    if counts.len() != comm.size() {
        return Err(contract_error(format!(
            "gather: {} counts for {} ranks",
            counts.len(),
            comm.size()
        )));
    }
    if rank == 0 && recv.as_deref().is_none_or(|r| r.len() < total) {
        return Err(contract_error(
            "gather: main's buffer is shorter than the counts".into(),
        ));
    }
    let own_start = starts(counts)[rank];
    for round in rounds(counts, limit) {
        let c = c_ints(&round.counts, "MPI_Gatherv", "count")?;
        let d = c_ints(&round.displs, "MPI_Gatherv", "displacement")?;
        let own = round.own(rank, own_start);
        let mine = &send[own.start * size..own.end * size];
        // Not an empty slice's pointer, 1, which Open MPI reads as
        // MPI_IN_PLACE (see `scatterv`).
        let spare = 0u64;
        let mine: *const c_void = if mine.is_empty() {
            (&raw const spare).cast()
        } else {
            mine.as_ptr().cast()
        };
        let window: *mut c_void = match recv.as_deref_mut() {
            Some(r) if rank == 0 => r[round.base * size..].as_mut_ptr().cast(),
            _ => std::ptr::null_mut(),
        };
        call("MPI_Gatherv", || {
            // SAFETY: `c` and `d` have one entry per rank of `comm` (checked
            // above). `mine` points to exactly `c[rank]` elements (to
            // `spare`, never read, when that is 0). On main,
            // `window` points into `recv` with every `d[r] + c[r]` elements
            // of the round inside it (checked above); other ranks' receive
            // arguments are ignored by MPI.
            unsafe {
                ffi::MPI_Gatherv(
                    mine,
                    c[rank],
                    ty.raw(),
                    window,
                    c.as_ptr(),
                    d.as_ptr(),
                    ty.raw(),
                    0,
                    comm.raw(),
                )
            }
        })?;
    }
    Ok(())
}

/// `MPI_Allgather` of `mine.len()` u64 per rank: every rank's words, in
/// rank order.
pub(crate) fn allgather_u64(comm: Comm, mine: &[u64]) -> Result<Vec<u64>> {
    let mut all = vec![0u64; mine.len() * comm.size()];
    let n = int(mine.len(), "MPI_Allgather", "count")?;
    let ty = u64_type().raw();
    call("MPI_Allgather", || {
        // SAFETY: `mine` holds `n` u64 and `all` `n` per rank of `comm`.
        unsafe {
            ffi::MPI_Allgather(
                mine.as_ptr().cast(),
                n,
                ty,
                all.as_mut_ptr().cast(),
                n,
                ty,
                comm.raw(),
            )
        }
    })?;
    Ok(all)
}

/// `MPI_Barrier`.
pub(crate) fn barrier(comm: Comm) -> Result<()> {
    call("MPI_Barrier", || {
        // SAFETY: `comm` is live (conventions in `handles.rs`); no buffers.
        unsafe { ffi::MPI_Barrier(comm.raw()) }
    })
}

// ---------------------------------------------------------------------------
// Non-blocking collectives, waited for by polling

/// Starts `N` non-blocking operations on `words` (on the heap, where MPI
/// may use them while this rank polls): `start(buffer, requests)` makes
/// the calls, each writing one request (the others stay
/// `MPI_REQUEST_NULL`). Then polls them all to completion or `deadline`
/// (`MPI_Testall`; a failure is named `name`). Returns the words once
/// every operation completed; `None` if the deadline passed first. While
/// one may be pending (a later call failed, the deadline passed, or
/// polling failed), the buffer is leaked, as MPI may still use it; the
/// callers then end the job. A boxed slice, not a `Vec`: the words move in
/// and out without a reallocation (the agreement at the end of every
/// region goes through here).
pub(super) fn nonblocking<const N: usize>(
    words: Box<[u64]>,
    deadline: Option<Instant>,
    name: &str,
    start: impl FnOnce(*mut u64, &mut [ffi::MPI_Request; N]) -> Result<()>,
) -> Result<Option<Box<[u64]>>> {
    let len = words.len();
    // From here on only MPI and the raw pointer touch the buffer.
    let buf: *mut [u64] = Box::into_raw(words);
    // SAFETY: reads a constant of rsmpi's C shim.
    let null = unsafe { ffi::RSMPI_REQUEST_NULL };
    let mut requests = [null; N];
    if let Err(e) = start(buf.cast(), &mut requests) {
        if requests.iter().all(|r| *r == null) {
            // SAFETY: nothing is pending on the buffer: take it back.
            drop(unsafe { Box::from_raw(buf) });
        }
        return Err(e);
    }
    let done = poll_until(deadline, || test_all(&mut requests, name))?;
    if !done {
        return Ok(None);
    }
    // SAFETY: every operation completed: MPI no longer uses the buffer,
    // which `Box::into_raw` above made, with `len` words.
    let words = unsafe { Box::from_raw(buf) };
    debug_assert_eq!(words.len(), len);
    Ok(Some(words))
}

/// Receives `buf.len()` u64 from `from` (tag `tag`) with a polled
/// `MPI_Irecv`, so that a rank waiting long sleeps instead of spinning.
pub(crate) fn irecv_u64(comm: Comm, buf: &mut [u64], from: usize, tag: c_int) -> Result<()> {
    let count = int(buf.len(), "MPI_Irecv", "count")?;
    let from = int(from, "MPI_Irecv", "rank")?;
    let ty = u64_type().raw();
    let words = vec![0; buf.len()].into_boxed_slice();
    let words = nonblocking(words, None, "MPI_Irecv", |words, [request]| {
        call("MPI_Irecv", || {
            // SAFETY: `words` is a heap buffer of `count` u64 that
            // `nonblocking` keeps alive until the request completes;
            // `request` is a valid out-parameter.
            unsafe { ffi::MPI_Irecv(words.cast(), count, ty, from, tag, comm.raw(), request) }
        })
    })?
    .expect("no deadline: polled to completion");
    buf.copy_from_slice(&words);
    Ok(())
}

mod point;

pub(crate) use point::{
    isend_raw, isend_static, probe_any, recv, recv_any_tag, recv_exact, recv_one, send, send_all,
    send_one, test_all,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::mpi::handles::{self, byte_type};
    use crate::backend::mpi::world::world;
    use crate::error::Error;
    use std::time::Duration;

    /// Initializes MPI in the test process (a singleton without `mpirun`).
    #[test]
    fn mpi_errors_carry_the_mpi_error_string() {
        let world = world().expect("MPI singleton");
        let mut buf = [0u64; 1];
        let err = bcast(
            world.data(),
            u64_type(),
            bytemuck::cast_slice_mut(&mut buf),
            world.size() + 5,
            1,
        )
        .unwrap_err();
        match err {
            Error::Mpi(text) => {
                eprintln!("{text}");
                assert!(text.starts_with("MPI_Bcast failed: "), "{text}");
                assert!(text.to_lowercase().contains("root"), "{text}");
            }
            other => panic!("expected Error::Mpi, got {other:?}"),
        }
    }

    /// A buffer or count vector that does not fit the communicator is an
    /// error before MPI sees it (MPI would read or write past it).
    #[test]
    fn arguments_that_do_not_fit_the_communicator_never_reach_mpi() {
        let world = world().expect("MPI singleton");
        let comm = world.data();
        assert_eq!((comm.rank(), comm.size()), (world.rank(), world.size()));
        let mut recv = [0u8; 4];
        let wrong_counts = vec![4; world.size() + 1];
        let err = scatterv(
            comm,
            byte_type(),
            Some(&[0; 64]),
            &wrong_counts,
            &mut recv,
            8,
        );
        assert!(matches!(err, Err(Error::ContractViolation(_))), "{err:?}");
        let err = gatherv(
            comm,
            byte_type(),
            &[0; 4],
            &wrong_counts,
            Some(&mut [0; 64]),
            8,
        );
        assert!(matches!(err, Err(Error::ContractViolation(_))), "{err:?}");
        if world.rank() == 0 {
            let counts = vec![4; world.size()];
            let err = scatterv(comm, byte_type(), Some(&[0; 3]), &counts, &mut recv, 8);
            assert!(matches!(err, Err(Error::ContractViolation(_))), "{err:?}");
            let err = gatherv(comm, byte_type(), &[0; 4], &counts, Some(&mut [0; 3]), 8);
            assert!(matches!(err, Err(Error::ContractViolation(_))), "{err:?}");
        }
        let err = recv_exact::<u64>(comm, world.rank(), 99, 12, 12);
        assert!(matches!(err, Err(Error::Mpi(_))), "{err:?}");
    }

    /// Under ULFM (`mpirun --with-ft ulfm -n 1`, pass B of `.ci/mpi.sh`):
    /// a receive waiting for a message that never comes returns, as a
    /// release, when another thread of the rank revokes its communicator,
    /// as a region's deadline watchdog does (`fate.rs`); later receives and
    /// probes on it fail at once. Without ULFM there is nothing to revoke.
    #[test]
    fn a_receive_returns_when_another_thread_revokes_its_communicator() {
        let world = world().expect("MPI singleton");
        if !super::super::handles::ulfm_active() {
            eprintln!("skipped: ULFM is not active in this process");
            return;
        }
        let comm = handles::dup_returning_errors(world.data()).unwrap();
        let revoker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            super::super::ulfm::revoke(comm).unwrap();
        });
        let mut into = [0u8; 8];
        let took = recv_any_tag(comm, &mut into, 0);
        revoker.join().unwrap();
        match took {
            Err(Error::Mpi(text)) => assert!(text.contains("REVOKED"), "{text}"),
            other => panic!("expected the release of a revoked communicator, got {other:?}"),
        }
        assert!(
            handles::take_released(),
            "a release is recorded for the region"
        );
        let mut words = [0u8; 16];
        let err = recv(comm, byte_type(), &mut words, 0, 5, 16).unwrap_err();
        assert!(err.to_string().contains("REVOKED"), "{err}");
        let err = probe_any(comm, 0, None).unwrap_err();
        assert!(err.to_string().contains("REVOKED"), "{err}");
        handles::take_released();
        handles::free(comm);
    }

    /// Every kind of call once on the singleton: collectives over one rank,
    /// a split broadcast, the polled non-blocking calls, a message to self.
    #[test]
    fn each_call_works_on_a_single_rank() {
        let world = world().expect("MPI singleton");
        if world.size() != 1 {
            return;
        }
        let comm = world.data();
        let mut buf: Vec<u8> = (0..10).collect();
        bcast(comm, byte_type(), &mut buf, 0, 3).unwrap();
        assert_eq!(buf, (0..10).collect::<Vec<u8>>());
        let mut words = [5u64, 6];
        send(comm, u64_type(), bytemuck::cast_slice(&words), 0, 9, 2).unwrap();
        words = [0, 0];
        irecv_u64(comm, &mut words, 0, 9).unwrap();
        assert_eq!(words, [5, 6]);
        assert_eq!(
            super::super::agree::agree_min(world.ctrl(), [7, 3], None).unwrap(),
            Some([7, 3])
        );
        assert_eq!(allgather_u64(comm, &[1, 2]).unwrap(), [1, 2]);
        let mut got = [0u8; 5];
        scatterv(comm, byte_type(), Some(&[1, 2, 3, 4, 5]), &[5], &mut got, 2).unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        let mut all = [0u8; 5];
        gatherv(comm, byte_type(), &got, &[5], Some(&mut all), 2).unwrap();
        assert_eq!(all, got);
        barrier(comm).unwrap();
        let sent: Vec<u64> = vec![u64::MAX, 1, 2];
        send_one(comm, bytemuck::cast_slice(&sent), 0, 77).unwrap();
        let (tag, count) = probe_any(comm, 0, None).unwrap().unwrap();
        assert_eq!((tag, count), (77, 24));
        assert_eq!(recv_exact::<u64>(comm, 0, tag, count, count).unwrap(), sent);
        // A body in pieces (16 + 8 bytes) into one fresh vector.
        send(comm, byte_type(), bytemuck::cast_slice(&sent), 0, 78, 16).unwrap();
        assert_eq!(recv_exact::<u64>(comm, 0, 78, 24, 16).unwrap(), sent);
        // Any tag, into a buffer: one that fits, then one that is cut.
        send_one(comm, &[1, 2, 3], 0, 79).unwrap();
        let mut into = [0u8; 4];
        let took = recv_any_tag(comm, &mut into, 0).unwrap();
        assert_eq!(
            (took.tag, took.len, &into[..3]),
            (79, Some(3), &[1, 2, 3][..])
        );
        send_one(comm, &[9; 6], 0, 80).unwrap();
        let took = recv_any_tag(comm, &mut into, 0).unwrap();
        assert_eq!((took.tag, took.len, into), (80, None, [9; 4]));
        let deadline = Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(probe_any(comm, 0, deadline).unwrap(), None);
    }
}
