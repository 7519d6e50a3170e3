//! The process-global MPI state: initialization (once), the two
//! communicators the backend owns, finalization at exit, the panic hook
//! that turns a stray panic into `MPI_Abort`, and thin checked wrappers of
//! the MPI calls the backend makes.
//!
//! Lifetime of MPI: the first use (the worker hook under `mpirun`, or the
//! first `from_config("mpi")`) calls `MPI_Init_thread` through rsmpi,
//! unless the host program already initialized MPI, in which case the host
//! keeps ownership and finalizes it itself. When this crate initialized
//! MPI, the rsmpi `Universe` lives in a process-global slot and an `atexit`
//! handler drops it, which calls `MPI_Finalize`, when the process exits
//! (return from `main` or `std::process::exit`); in the served model that
//! handler first tells the serving workers to shut down.

use std::ffi::{c_int, c_void};
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mpi::environment::{Threading, Universe};
use mpi::ffi;

use super::plan::{pieces, rounds, starts};
use crate::error::{Error, Result};
use crate::outcome::panic_message;

/// A communicator handle. Open MPI's handles are pointers to objects that
/// live until freed; the backend never frees its own, so the handle may be
/// shared between threads (MPI itself is initialized with
/// `MPI_THREAD_MULTIPLE` when the library offers it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Comm(pub ffi::MPI_Comm);
unsafe impl Send for Comm {}
unsafe impl Sync for Comm {}

/// A datatype handle, shareable for the same reason as [`Comm`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Datatype(pub ffi::MPI_Datatype);
unsafe impl Send for Datatype {}
unsafe impl Sync for Datatype {}

/// MPI as this process sees it.
#[derive(Debug)]
pub(crate) struct World {
    pub rank: usize,
    pub size: usize,
    /// Collectives and messages of user code (a duplicate of COMM_WORLD, so
    /// the backend's traffic never mixes with the host program's).
    pub data: Comm,
    /// Dispatch headers and the end-of-region agreement.
    pub ctrl: Comm,
    /// Whether ranks other than 0 serve tasks that rank 0 dispatches
    /// (`#[parallelizer::main]` under an MPI launcher).
    pub served: AtomicBool,
    /// Whether rank 0 has told the serving workers to stop.
    pub shut_down: AtomicBool,
    /// The threading level MPI provides.
    pub threading: Threading,
}

static WORLD: OnceLock<std::result::Result<World, String>> = OnceLock::new();
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);
/// Regions running on this rank; a panic while one runs is handled by the
/// region (agreement, else abort). A panic on the main thread outside any
/// region aborts the job: it would end this rank while the others may be
/// waiting for it, and `MPI_Finalize` in the exit handler would wait for
/// them in turn.
pub(crate) static REGIONS: AtomicUsize = AtomicUsize::new(0);

/// Initializes MPI (once per process) and the backend's communicators.
/// Collective: on first use, every rank must call it.
pub(crate) fn world() -> Result<&'static World> {
    WORLD
        .get_or_init(init)
        .as_ref()
        .map_err(|e| Error::Mpi(e.clone()))
}

/// The world if MPI is already set up by this crate, without initializing.
pub(crate) fn world_if_initialized() -> Option<&'static World> {
    WORLD.get().and_then(|w| w.as_ref().ok())
}

fn init() -> std::result::Result<World, String> {
    if mpi::environment::is_initialized() && mpi::environment::is_finalized() {
        return Err("MPI was already finalized in this process".into());
    }
    let threading = match mpi::initialize_with_threading(Threading::Multiple) {
        Some((universe, threading)) => {
            *UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()) = Some(universe);
            register_atexit();
            threading
        }
        // The host program initialized MPI and will finalize it.
        None => mpi::environment::threading_support(),
    };
    let world = unsafe { ffi::RSMPI_COMM_WORLD };
    let (mut rank, mut size) = (0, 0);
    let dup = || -> std::result::Result<Comm, String> {
        let mut comm = unsafe { ffi::RSMPI_COMM_NULL };
        check(
            unsafe { ffi::MPI_Comm_dup(world, &mut comm) },
            "MPI_Comm_dup",
        )
        .map_err(|e| e.to_string())?;
        // Errors come back as codes (mapped to Error::Mpi) instead of
        // killing the job inside the library.
        check(
            unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) },
            "MPI_Comm_set_errhandler",
        )
        .map_err(|e| e.to_string())?;
        Ok(Comm(comm))
    };
    unsafe {
        ffi::MPI_Comm_rank(world, &mut rank);
        ffi::MPI_Comm_size(world, &mut size);
    }
    let (data, ctrl) = (dup()?, dup()?);
    install_panic_hook();
    Ok(World {
        rank: rank as usize,
        size: size as usize,
        data,
        ctrl,
        served: AtomicBool::new(false),
        shut_down: AtomicBool::new(false),
        threading,
    })
}

fn register_atexit() {
    unsafe extern "C" {
        fn atexit(f: extern "C" fn()) -> c_int;
    }
    unsafe {
        atexit(at_exit);
    }
}

/// Runs when the process exits: rank 0 of a served job releases the
/// workers, then `MPI_Finalize` (the rsmpi `Universe` drop).
extern "C" fn at_exit() {
    if let Some(world) = world_if_initialized() {
        if REGIONS.load(Ordering::SeqCst) > 0 {
            // `exit` inside a region: the other ranks may be waiting for
            // this one in a collective, and MPI_Finalize would wait for them.
            report_and_abort(
                world,
                "exited inside a parallel region, while other ranks may wait for it",
                1,
            );
        }
        if world.rank == 0 && world.served.load(Ordering::SeqCst) {
            if let Err(e) = super::shutdown_workers(world) {
                eprintln!("parallelizer: rank 0 could not shut the MPI workers down: {e}");
            }
        }
    }
    let universe = UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(universe);
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        previous(info);
        if REGIONS.load(Ordering::SeqCst) > 0 {
            // The region catches it and lets the ranks agree, or aborts.
            return;
        }
        if std::thread::current().name() != Some("main") {
            // Other threads' panics belong to their owners (the threads
            // backend, rayon, a `join`); only the main thread's panic ends
            // the process, and with it this rank.
            return;
        }
        if let Some(world) = world_if_initialized() {
            let message = panic_message(info.payload());
            report_and_abort(world, &format!("panicked: {message}"), 101);
        }
    }));
}

/// Prints `rank R of N <what>` on stderr and ends the whole job with
/// `MPI_Abort` (rsmpi issue 197: without it the other ranks wait forever).
pub(crate) fn report_and_abort(world: &World, what: &str, code: c_int) -> ! {
    eprintln!(
        "parallelizer: MPI rank {} of {} {what}; aborting the MPI job (MPI_Abort)",
        world.rank, world.size
    );
    unsafe {
        ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::abort()
}

/// `Ok` for `MPI_SUCCESS`, else [`Error::Mpi`] with MPI's error string.
pub(crate) fn check(code: c_int, call: &str) -> Result<()> {
    if code == ffi::MPI_SUCCESS as c_int {
        return Ok(());
    }
    let mut buf = vec![0u8; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    let text = if unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr().cast(), &mut len) }
        == ffi::MPI_SUCCESS as c_int
    {
        String::from_utf8_lossy(&buf[..len.max(0) as usize]).into_owned()
    } else {
        format!("error code {code}")
    };
    Err(Error::Mpi(format!("{call} failed: {text}")))
}

fn int(n: usize, what: &str) -> Result<c_int> {
    c_int::try_from(n).map_err(|_| Error::Mpi(format!("{what} {n} does not fit an MPI count")))
}

/// `MPI_UINT8_T`, the element type of encoded messages.
pub(crate) fn byte_type() -> Datatype {
    Datatype(unsafe { ffi::RSMPI_UINT8_T })
}

/// `MPI_UINT64_T`, for lengths.
pub(crate) fn u64_type() -> Datatype {
    Datatype(unsafe { ffi::RSMPI_UINT64_T })
}

/// Broadcasts `buf` (`len` elements of `size` bytes, the same `len` on every
/// rank) from `root`, in pieces of at most `limit` elements.
pub(crate) fn bcast(
    comm: Comm,
    ty: Datatype,
    size: usize,
    buf: &mut [u8],
    root: usize,
    limit: usize,
) -> Result<()> {
    let len = buf.len() / size.max(1);
    for piece in pieces(len, limit) {
        let bytes = &mut buf[piece.start * size..piece.end * size];
        let count = int(piece.len(), "broadcast count")?;
        check(
            unsafe {
                ffi::MPI_Bcast(
                    bytes.as_mut_ptr().cast(),
                    count,
                    ty.0,
                    root as c_int,
                    comm.0,
                )
            },
            "MPI_Bcast",
        )?;
    }
    Ok(())
}

/// Scatter-v from rank 0: `send` (main only) holds the chunks of `counts`
/// back to back; `recv` receives `counts[rank]` elements. Split into rounds
/// of at most `limit` elements.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatterv(
    comm: Comm,
    ty: Datatype,
    size: usize,
    rank: usize,
    send: Option<&[u8]>,
    counts: &[usize],
    recv: &mut [u8],
    limit: usize,
) -> Result<()> {
    let own_start = starts(counts)[rank];
    if rank == 0 && send.is_none_or(|s| s.len() < counts.iter().sum::<usize>() * size) {
        return Err(Error::ContractViolation(
            "scatter: main's buffer is shorter than the counts".into(),
        ));
    }
    for round in rounds(counts, limit) {
        let c = c_ints(&round.counts, "scatter count")?;
        let d = c_ints(&round.displs, "scatter displacement")?;
        let own = round.own(rank, own_start);
        let out = &mut recv[own.start * size..own.end * size];
        let sendptr: *const c_void = match send {
            Some(s) if rank == 0 => s[round.base * size..].as_ptr().cast(),
            _ => std::ptr::null(),
        };
        check(
            unsafe {
                ffi::MPI_Scatterv(
                    sendptr,
                    c.as_ptr(),
                    d.as_ptr(),
                    ty.0,
                    out.as_mut_ptr().cast(),
                    c[rank],
                    ty.0,
                    0,
                    comm.0,
                )
            },
            "MPI_Scatterv",
        )?;
    }
    Ok(())
}

/// `values` as MPI counts or displacements, naming `what` if one overflows.
fn c_ints(values: &[usize], what: &str) -> Result<Vec<c_int>> {
    values.iter().map(|&n| int(n, what)).collect()
}

/// Gather-v to rank 0: every rank sends `send` (`counts[rank]` elements);
/// main receives all chunks back to back into `recv`. Split into rounds of
/// at most `limit` elements.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gatherv(
    comm: Comm,
    ty: Datatype,
    size: usize,
    rank: usize,
    send: &[u8],
    counts: &[usize],
    mut recv: Option<&mut [u8]>,
    limit: usize,
) -> Result<()> {
    let own_start = starts(counts)[rank];
    for round in rounds(counts, limit) {
        let c = c_ints(&round.counts, "gather count")?;
        let d = c_ints(&round.displs, "gather displacement")?;
        let own = round.own(rank, own_start);
        let mine = &send[own.start * size..own.end * size];
        let recvptr: *mut c_void = match recv.as_deref_mut() {
            Some(r) if rank == 0 => r[round.base * size..].as_mut_ptr().cast(),
            _ => std::ptr::null_mut(),
        };
        check(
            unsafe {
                ffi::MPI_Gatherv(
                    mine.as_ptr().cast(),
                    c[rank],
                    ty.0,
                    recvptr,
                    c.as_ptr(),
                    d.as_ptr(),
                    ty.0,
                    0,
                    comm.0,
                )
            },
            "MPI_Gatherv",
        )?;
    }
    Ok(())
}

/// `MPI_Allgather` of `n` u64 per rank.
pub(crate) fn allgather_u64(comm: Comm, mine: &[u64], nprocs: usize) -> Result<Vec<u64>> {
    let mut all = vec![0u64; mine.len() * nprocs];
    let n = int(mine.len(), "allgather count")?;
    check(
        unsafe {
            ffi::MPI_Allgather(
                mine.as_ptr().cast(),
                n,
                u64_type().0,
                all.as_mut_ptr().cast(),
                n,
                u64_type().0,
                comm.0,
            )
        },
        "MPI_Allgather",
    )?;
    Ok(all)
}

/// `MPI_Barrier`.
pub(crate) fn barrier(comm: Comm) -> Result<()> {
    check(unsafe { ffi::MPI_Barrier(comm.0) }, "MPI_Barrier")
}

/// Polls `ready` until it says yes (`Ok(true)`) or `deadline` passes
/// (`Ok(false)`), yielding at first and then sleeping briefly, so that idle
/// ranks leave the cores to working ones.
fn poll_until(deadline: Option<Instant>, mut ready: impl FnMut() -> Result<bool>) -> Result<bool> {
    let mut spins = 0u32;
    loop {
        if ready()? {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        spins += 1;
        if spins < 2000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Waits for `request` by polling. `Ok(false)` when `deadline` passed first
/// (the request is then left pending: callers abort the job).
fn wait(request: &mut ffi::MPI_Request, deadline: Option<Instant>, call: &str) -> Result<bool> {
    poll_until(deadline, || {
        let mut done: c_int = 0;
        check(
            unsafe { ffi::MPI_Test(request, &mut done, ffi::RSMPI_STATUS_IGNORE) },
            call,
        )?;
        Ok(done != 0)
    })
}

/// Non-blocking broadcast of a few u64 from rank 0, waited for by polling
/// (dispatch headers: idle workers sleep instead of spinning in MPI).
pub(crate) fn ibcast_u64(comm: Comm, buf: &mut [u64]) -> Result<()> {
    let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
    check(
        unsafe {
            ffi::MPI_Ibcast(
                buf.as_mut_ptr().cast(),
                int(buf.len(), "broadcast count")?,
                u64_type().0,
                0,
                comm.0,
                &mut request,
            )
        },
        "MPI_Ibcast",
    )?;
    wait(&mut request, None, "MPI_Ibcast")?;
    Ok(())
}

/// The smallest `mine` over all ranks (non-blocking all-reduce), or `None`
/// if `deadline` passed before every rank took part.
pub(crate) fn agree_min(comm: Comm, mine: u64, deadline: Option<Instant>) -> Result<Option<u64>> {
    // Both buffers must outlive the request, which stays pending (and the
    // job is aborted) when the deadline passes: leak them in that case.
    let bufs = Box::new([mine, 0u64]);
    let bufs = Box::leak(bufs);
    let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
    check(
        unsafe {
            ffi::MPI_Iallreduce(
                (&bufs[0] as *const u64).cast(),
                (&mut bufs[1] as *mut u64).cast(),
                1,
                u64_type().0,
                ffi::RSMPI_MIN,
                comm.0,
                &mut request,
            )
        },
        "MPI_Iallreduce",
    )?;
    if !wait(&mut request, deadline, "MPI_Iallreduce")? {
        return Ok(None);
    }
    let min = bufs[1];
    // Completed: the buffers are ours again.
    drop(unsafe { Box::from_raw(bufs as *mut [u64; 2]) });
    Ok(Some(min))
}

/// Tag of message headers (encoding, length) of point-to-point messages
/// too large for one MPI message.
pub(crate) const TAG_HEADER: c_int = 1;
/// Tag of the pieces of such a message.
pub(crate) const TAG_BODY: c_int = 2;
/// Tag of a whole plain-data message in one MPI message (its size comes
/// from the probe, so no header travels).
pub(crate) const TAG_POD: c_int = 3;
/// Tag of a whole serde message in one MPI message.
pub(crate) const TAG_SERDE: c_int = 4;
/// Tag of a whole plain-data message of 8-byte-aligned elements (`f64`,
/// `u64`, ...), received into 8-byte words the receiver's `Vec<T>` takes over.
pub(crate) const TAG_POD8: c_int = 5;

/// Sends `buf` to `to` as exactly one MPI message of bytes (also when empty).
pub(crate) fn send_one(comm: Comm, buf: &[u8], to: usize, tag: c_int) -> Result<()> {
    check(
        unsafe {
            ffi::MPI_Send(
                buf.as_ptr().cast(),
                int(buf.len(), "send count")?,
                byte_type().0,
                to as c_int,
                tag,
                comm.0,
            )
        },
        "MPI_Send",
    )
}

/// Receives the one-message body of `count` bytes that [`probe_any`] found
/// into a fresh `Vec<W>` (bytes, or 8-byte words for plain data the
/// receiver's `Vec<f64>` can take over) that is written once, not zeroed
/// first. `count` is a whole number of `W`s.
pub(crate) fn recv_exact<W: bytemuck::Pod>(
    comm: Comm,
    from: usize,
    tag: c_int,
    count: usize,
) -> Result<Vec<W>> {
    let n = count / std::mem::size_of::<W>();
    let mut body: Vec<W> = Vec::with_capacity(n);
    check(
        unsafe {
            ffi::MPI_Recv(
                body.as_mut_ptr().cast(),
                int(count, "receive count")?,
                byte_type().0,
                from as c_int,
                tag,
                comm.0,
                ffi::RSMPI_STATUS_IGNORE,
            )
        },
        "MPI_Recv",
    )?;
    // SAFETY: MPI_Recv wrote exactly `count` bytes (the probed size), which
    // are `n` whole elements of a type valid for any bit pattern.
    unsafe { body.set_len(n) };
    Ok(body)
}

/// Waits for the next point-to-point message from `from`, whatever its tag:
/// `Some((tag, bytes))`, or `None` if `deadline` passed first. Without a
/// deadline it blocks inside MPI.
pub(crate) fn probe_any(
    comm: Comm,
    from: usize,
    deadline: Option<Instant>,
) -> Result<Option<(c_int, usize)>> {
    let mut status: ffi::MPI_Status = unsafe { std::mem::zeroed() };
    match deadline {
        None => check(
            unsafe { ffi::MPI_Probe(from as c_int, ffi::RSMPI_ANY_TAG, comm.0, &mut status) },
            "MPI_Probe",
        )?,
        Some(deadline) => {
            let arrived = poll_until(Some(deadline), || {
                let mut flag: c_int = 0;
                check(
                    unsafe {
                        ffi::MPI_Iprobe(
                            from as c_int,
                            ffi::RSMPI_ANY_TAG,
                            comm.0,
                            &mut flag,
                            &mut status,
                        )
                    },
                    "MPI_Iprobe",
                )?;
                Ok(flag != 0)
            })?;
            if !arrived {
                return Ok(None);
            }
        }
    }
    let mut count: c_int = 0;
    check(
        unsafe { ffi::MPI_Get_count(&status, byte_type().0, &mut count) },
        "MPI_Get_count",
    )?;
    Ok(Some((status.MPI_TAG, count as usize)))
}

/// Blocking send of `buf` (`size`-byte elements) to `to`, in pieces.
pub(crate) fn send(
    comm: Comm,
    ty: Datatype,
    size: usize,
    buf: &[u8],
    to: usize,
    tag: c_int,
    limit: usize,
) -> Result<()> {
    for piece in pieces(buf.len() / size.max(1), limit) {
        let bytes = &buf[piece.start * size..piece.end * size];
        check(
            unsafe {
                ffi::MPI_Send(
                    bytes.as_ptr().cast(),
                    int(piece.len(), "send count")?,
                    ty.0,
                    to as c_int,
                    tag,
                    comm.0,
                )
            },
            "MPI_Send",
        )?;
    }
    Ok(())
}

/// Blocking receive of exactly `buf.len()` bytes from `from`, in pieces.
#[allow(clippy::too_many_arguments)]
pub(crate) fn recv(
    comm: Comm,
    ty: Datatype,
    size: usize,
    buf: &mut [u8],
    from: usize,
    tag: c_int,
    limit: usize,
) -> Result<()> {
    for piece in pieces(buf.len() / size.max(1), limit) {
        let bytes = &mut buf[piece.start * size..piece.end * size];
        check(
            unsafe {
                ffi::MPI_Recv(
                    bytes.as_mut_ptr().cast(),
                    int(piece.len(), "receive count")?,
                    ty.0,
                    from as c_int,
                    tag,
                    comm.0,
                    ffi::RSMPI_STATUS_IGNORE,
                )
            },
            "MPI_Recv",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Initializes MPI in the test process (a singleton without `mpirun`).
    #[test]
    fn mpi_errors_carry_the_mpi_error_string() {
        let world = world().expect("MPI singleton");
        let mut buf = [0u64; 1];
        let err = bcast(
            world.data,
            u64_type(),
            8,
            bytemuck::cast_slice_mut(&mut buf),
            world.size + 5,
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
}
