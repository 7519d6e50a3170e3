//! The MPI handles the backend owns and the rules for calling MPI: every
//! MPI call of the backend goes through [`call`], here, in `calls.rs` and in
//! `ulfm.rs`, which hold all of the backend's `unsafe` code but the exit
//! handling in `world.rs`.
//!
//! Conventions that every `// SAFETY:` comment of the backend relies on:
//!
//! - **Handles are valid.** A [`Comm`] is only made by [`Comm::world`],
//!   [`dup_returning_errors`], [`Comm::from_raw`] (a ULFM shrink) or
//!   [`create_group`]. The world's, its duplicates and the shrunk ones are
//!   never freed (not even when a failure replaces one), so they name a
//!   live communicator until `MPI_Finalize`; a group's communicator and its
//!   duplicate are owned by the group's handle, which alone holds them and
//!   hands them to the region they were made in to free ([`free`]) once
//!   both are done with them (`fate.rs`), so no copy outlives them. A
//!   [`Datatype`] is only made from a
//!   built-in datatype that rsmpi declares equivalent to a Rust type
//!   ([`Datatype::of`]) or borrowed from a [`Contiguous`] that is alive for
//!   its lifetime `'a`; it is committed and its extent is
//!   [`Datatype::size`] bytes.
//! - **Buffers fit the counts.** Every buffer handed to MPI is a Rust slice
//!   of exactly `count * ty.size()` bytes (checked or sliced to that length
//!   before the call), so MPI reads or writes inside it. What MPI writes
//!   into a rank's buffer is bounded by that rank's own receive count: a
//!   longer message, or a collective whose ranks disagree on the counts,
//!   is an `MPI_ERR_TRUNCATE` error, not a write past the buffer (the
//!   backend's own callers agree on counts through a header first; a user
//!   calling the public `NativePod` methods with mismatched lengths relies
//!   on this behaviour of Open MPI and MPICH).
//! - **MPI may be called now.** Every call goes through [`call`], which
//!   first takes a [`Gate`]: MPI is not finalized yet, and MPI's thread
//!   level allows a call from this thread now (under
//!   `MPI_THREAD_MULTIPLE`, which Open MPI and MPICH provide, any thread
//!   at any time; under `SERIALIZED` one call at a time, under a lock; under
//!   `FUNNELED` and `SINGLE` only on MPI's main thread). The exit handler
//!   marks MPI finalized before `MPI_Finalize`; a thread that is still
//!   inside a call when the process exits races with it, as in any MPI
//!   program that exits while communicating.
//!
//! Errors come back as codes: the backend's communicators use
//! `MPI_ERRORS_RETURN` ([`dup_returning_errors`]), and [`call`] turns a
//! code into an error with MPI's error string ([`mpi_error`], the one place
//! the backend builds an `Error::Mpi`). This is also what the ULFM
//! extension needs (a failed peer is an error code on the communicator).
//! rsmpi's safe calls ignore MPI's return codes, which is why the backend
//! calls the C API; rsmpi's safe accessors are used for the built-in
//! handles (`MPI_COMM_WORLD`, the datatypes, `MPI_MIN`).

use std::cell::Cell;
use std::ffi::c_int;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use mpi::datatype::{Equivalence, SystemDatatype};
use mpi::environment::Threading;
use mpi::ffi;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{AsRaw, Communicator};

use crate::error::{Error, Result};

/// A communicator the backend owns (or `MPI_COMM_WORLD`), with this
/// process's rank in it and its size, which the calls check buffers and
/// counts against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Comm {
    raw: ffi::MPI_Comm,
    rank: usize,
    size: usize,
}

// SAFETY: `Comm` carries only the handle's value, which Rust code never
// dereferences: it is an opaque name (a pointer in Open MPI, an `int` in
// MPICH) of a communicator object that the MPI library owns. The handles
// of this type are never freed (module docs), so a copy moved to
// or read on another thread never names a freed object. Whether MPI may be
// *called* on one thread while another calls it is MPI's thread level, a
// property of the call, not of the handle: every call checks it (`gate`).
unsafe impl Send for Comm {}
// SAFETY: as for `Send`: a shared `&Comm` only lets a thread copy the
// handle value (and two integers), which are immutable.
unsafe impl Sync for Comm {}

impl Comm {
    /// `MPI_COMM_WORLD` (asks MPI for the rank and size).
    pub(crate) fn world() -> Result<Comm> {
        let _gate = gate("MPI_Comm_rank", true)?;
        let world = SimpleCommunicator::world();
        Ok(Comm {
            raw: world.as_raw(),
            rank: world.rank() as usize,
            size: world.size() as usize,
        })
    }

    /// A communicator just made by MPI (a shrink), with this process's
    /// rank in it and its size.
    pub(crate) fn from_raw(raw: ffi::MPI_Comm) -> Result<Comm> {
        let (mut rank, mut size): (c_int, c_int) = (0, 0);
        call("MPI_Comm_rank", || {
            // SAFETY: `raw` is a live communicator; `rank` is a valid
            // out-parameter.
            unsafe { ffi::MPI_Comm_rank(raw, &mut rank) }
        })?;
        call("MPI_Comm_size", || {
            // SAFETY: as above.
            unsafe { ffi::MPI_Comm_size(raw, &mut size) }
        })?;
        let count = |n: c_int| usize::try_from(n).map_err(|_| mpi_error("MPI_Comm_size", n));
        Ok(Comm {
            raw,
            rank: count(rank)?,
            size: count(size)?,
        })
    }

    /// The raw handle, for a call.
    pub(crate) fn raw(self) -> ffi::MPI_Comm {
        self.raw
    }

    /// This process's rank in the communicator.
    pub(crate) fn rank(self) -> usize {
        self.rank
    }

    /// The number of ranks in the communicator.
    pub(crate) fn size(self) -> usize {
        self.size
    }
}

/// A committed datatype of `size`-byte elements, valid for `'a`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Datatype<'a> {
    raw: ffi::MPI_Datatype,
    size: usize,
    handle: PhantomData<&'a Contiguous>,
}

impl Datatype<'static> {
    /// The built-in MPI datatype of `T` (`MPI_DOUBLE` for `f64`, ...);
    /// rsmpi's `unsafe impl Equivalence` promises that it describes `T`.
    pub(crate) fn of<T: Equivalence<Out = SystemDatatype>>() -> Self {
        Datatype {
            raw: T::equivalent_datatype().as_raw(),
            size: std::mem::size_of::<T>(),
            handle: PhantomData,
        }
    }
}

impl Datatype<'_> {
    /// The size (and extent) of one element, in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The raw handle, for a call.
    pub(crate) fn raw(&self) -> ffi::MPI_Datatype {
        self.raw
    }
}

/// `MPI_UINT8_T`, the element type of encoded messages.
pub(crate) fn byte_type() -> Datatype<'static> {
    Datatype::of::<u8>()
}

/// `MPI_UINT64_T`, for headers and lengths.
pub(crate) fn u64_type() -> Datatype<'static> {
    Datatype::of::<u64>()
}

/// A derived datatype: a contiguous block of `size` bytes, committed, freed
/// on drop.
#[derive(Debug)]
pub(crate) struct Contiguous {
    raw: ffi::MPI_Datatype,
    size: usize,
}

impl Contiguous {
    /// `MPI_Type_contiguous(size, MPI_UINT8_T)`, committed.
    pub(crate) fn bytes(size: usize) -> Result<Contiguous> {
        let count = int(size, "MPI_Type_contiguous", "element size")?;
        let mut raw = MaybeUninit::<ffi::MPI_Datatype>::uninit();
        call("MPI_Type_contiguous", || {
            // SAFETY: the old type is the built-in MPI_UINT8_T; `raw` is a
            // valid place for the new handle.
            unsafe { ffi::MPI_Type_contiguous(count, byte_type().raw, raw.as_mut_ptr()) }
        })?;
        // SAFETY: MPI_Type_contiguous succeeded, so it wrote the new handle.
        let mut raw = unsafe { raw.assume_init() };
        let committed = call("MPI_Type_commit", || {
            // SAFETY: `raw` is the uncommitted type just created.
            unsafe { ffi::MPI_Type_commit(&mut raw) }
        });
        let derived = Contiguous { raw, size };
        committed.map(|()| derived)
    }

    /// The datatype, for as long as `self` lives.
    pub(crate) fn datatype(&self) -> Datatype<'_> {
        Datatype {
            raw: self.raw,
            size: self.size,
            handle: PhantomData,
        }
    }
}

impl Drop for Contiguous {
    fn drop(&mut self) {
        // A failure (MPI already finalized, wrong thread) leaks the handle.
        let _ = call("MPI_Type_free", || {
            // SAFETY: `raw` was created by `Contiguous::bytes` and is freed
            // once, here; no `Datatype` borrowed from it outlives `self`.
            unsafe { ffi::MPI_Type_free(&mut self.raw) }
        });
    }
}

/// The error of a failed MPI call or of arguments MPI cannot take. The one
/// place the backend builds an [`Error::Mpi`].
pub(crate) fn mpi_error(call: &str, detail: impl std::fmt::Display) -> Error {
    Error::Mpi(format!("{call} failed: {detail}"))
}

/// `Ok` for `MPI_SUCCESS`, else the error with MPI's error string. Called
/// while the call's [`Gate`] is held.
#[inline]
fn check(code: c_int, call: &str) -> Result<()> {
    if code == ffi::MPI_SUCCESS as c_int {
        return Ok(());
    }
    failed(code, call)
}

/// The error of `call`, which returned `code` (not `MPI_SUCCESS`); out of
/// line, so that the calls that succeed stay small.
#[cold]
#[inline(never)]
fn failed(code: c_int, call: &str) -> Result<()> {
    if is_release(code) {
        // A revoked communicator or a failed peer (ULFM only): the region
        // notices on its way out (see `fate.rs`).
        RELEASED.store(true, Ordering::SeqCst);
    }
    let mut buf = vec![0u8; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: `buf` has room for MPI_MAX_ERROR_STRING characters and the
    // terminator, as MPI_Error_string requires; it may be called with any
    // code.
    let found = unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr().cast(), &mut len) };
    Err(if found == ffi::MPI_SUCCESS as c_int {
        let len = usize::try_from(len).unwrap_or(0).min(buf.len());
        mpi_error(call, String::from_utf8_lossy(&buf[..len]))
    } else {
        mpi_error(call, format_args!("error code {code}"))
    })
}

/// The error of `call`, which found its communicator revoked (ULFM) while
/// it polled: what MPI returns to a call the revoke released, recorded as
/// such a release (see [`take_released`]).
pub(crate) fn revoked(call: &str) -> Error {
    RELEASED.store(true, Ordering::SeqCst);
    mpi_error(call, "MPI_ERR_REVOKED: the communicator was revoked")
}

/// `n` as an MPI count, or the error of `call` naming `what`.
#[inline]
pub(crate) fn int(n: usize, call: &str, what: &str) -> Result<c_int> {
    match c_int::try_from(n) {
        Ok(n) => Ok(n),
        Err(_) => Err(too_large(n, call, what)),
    }
}

/// The error of [`int`].
#[cold]
#[inline(never)]
fn too_large(n: usize, call: &str, what: &str) -> Error {
    mpi_error(call, format_args!("{what} {n} exceeds an MPI count"))
}

/// `values` as MPI counts or displacements.
pub(crate) fn c_ints(values: &[usize], call: &str, what: &str) -> Result<Vec<c_int>> {
    values.iter().map(|&n| int(n, call, what)).collect()
}

// ---------------------------------------------------------------------------
// When MPI may be called

const LEVEL_UNKNOWN: u8 = 0;
const LEVEL_MAIN_ONLY: u8 = 1;
const LEVEL_SERIALIZED: u8 = 2;
const LEVEL_MULTIPLE: u8 = 3;

/// MPI's thread level, recorded by [`set_thread_level`]; unknown only
/// while the world is being set up, on the thread that set it up.
static LEVEL: AtomicU8 = AtomicU8::new(LEVEL_UNKNOWN);
/// Set just before `MPI_Finalize`: later calls fail instead of calling in.
static FINALIZED: AtomicBool = AtomicBool::new(false);
/// One MPI call at a time under `MPI_THREAD_SERIALIZED`.
static SERIAL: Mutex<()> = Mutex::new(());
/// Set when a call failed because a peer failed or the communicator was
/// revoked (ULFM); taken by the region (see [`take_released`]).
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Whether the ULFM extension is active (set once by `ulfm::detect`).
static ULFM: AtomicBool = AtomicBool::new(false);

/// `MPI_ERR_PROC_FAILED` of Open MPI 5.
const ERR_PROC_FAILED: c_int = 75;
/// `MPI_ERR_PROC_FAILED_PENDING` of Open MPI 5.
const ERR_PROC_FAILED_PENDING: c_int = 76;
/// `MPI_ERR_REVOKED` of Open MPI 5.
const ERR_REVOKED: c_int = 77;

/// Records that the ULFM extension is active in this process.
pub(crate) fn set_ulfm_active() {
    ULFM.store(true, Ordering::SeqCst);
}

/// Whether the ULFM extension is active in this process (found, and fault
/// tolerance on in this run).
pub(crate) fn ulfm_active() -> bool {
    ULFM.load(Ordering::SeqCst)
}

/// Whether `code`, a failed call's return code, says that a peer failed or
/// that the communicator was revoked (ULFM only; the classes are Open MPI
/// 5's, and ULFM counts as active only on an Open MPI that has them).
pub(crate) fn is_release(code: c_int) -> bool {
    if !ulfm_active() {
        return false;
    }
    matches!(
        error_class(code),
        ERR_PROC_FAILED | ERR_PROC_FAILED_PENDING | ERR_REVOKED
    )
}

/// The error class of `code`, a failed call's return code.
fn error_class(code: c_int) -> c_int {
    let mut class: c_int = code;
    // SAFETY: MPI_Error_class may be called with any code; `class` is a
    // valid out-parameter.
    unsafe { ffi::MPI_Error_class(code, &mut class) };
    class
}

/// Whether a call failed because a peer failed or a communicator was
/// revoked since the last time this was asked; clears the flag.
pub(crate) fn take_released() -> bool {
    RELEASED.swap(false, Ordering::SeqCst)
}

/// Records the thread level MPI provides; the world does it right after
/// initialization, before its first call.
pub(crate) fn set_thread_level(level: Threading) {
    let level = match level {
        Threading::Multiple => LEVEL_MULTIPLE,
        Threading::Serialized => LEVEL_SERIALIZED,
        Threading::Funneled | Threading::Single => LEVEL_MAIN_ONLY,
    };
    LEVEL.store(level, Ordering::SeqCst);
}

/// Records that MPI is about to be finalized: no call starts after this.
pub(crate) fn set_finalized() {
    FINALIZED.store(true, Ordering::SeqCst);
}

/// Leave for this thread to call MPI now (see the module docs); held for
/// the duration of the call.
struct Gate {
    _serial: Option<MutexGuard<'static, ()>>,
}

/// The gate of `call`; `wait` says whether to wait for another thread's
/// call under `MPI_THREAD_SERIALIZED` (else an error).
#[inline]
fn gate(call: &str, wait: bool) -> Result<Gate> {
    if !FINALIZED.load(Ordering::SeqCst)
        && matches!(LEVEL.load(Ordering::SeqCst), LEVEL_MULTIPLE | LEVEL_UNKNOWN)
    {
        return Ok(Gate { _serial: None });
    }
    gate_slow(call, wait)
}

/// [`gate`] when MPI is finalized or runs below `MPI_THREAD_MULTIPLE`.
#[cold]
#[inline(never)]
fn gate_slow(call: &str, wait: bool) -> Result<Gate> {
    if FINALIZED.load(Ordering::SeqCst) {
        return Err(mpi_error(call, "MPI is already finalized"));
    }
    match LEVEL.load(Ordering::SeqCst) {
        LEVEL_MULTIPLE | LEVEL_UNKNOWN => Ok(Gate { _serial: None }),
        LEVEL_SERIALIZED if wait => Ok(Gate {
            _serial: Some(SERIAL.lock().unwrap_or_else(PoisonError::into_inner)),
        }),
        LEVEL_SERIALIZED => match SERIAL.try_lock() {
            Ok(guard) => Ok(Gate {
                _serial: Some(guard),
            }),
            Err(TryLockError::Poisoned(e)) => Ok(Gate {
                _serial: Some(e.into_inner()),
            }),
            Err(TryLockError::WouldBlock) => Err(mpi_error(
                call,
                "another thread is inside MPI (MPI_THREAD_SERIALIZED)",
            )),
        },
        _ => {
            if is_mpi_main()? {
                Ok(Gate { _serial: None })
            } else {
                Err(mpi_error(
                    call,
                    "MPI runs at MPI_THREAD_FUNNELED or SINGLE (PARALLELIZER_MPI_THREAD_LEVEL, \
                     or the host program's choice): call it from the thread that initialized MPI",
                ))
            }
        }
    }
}

thread_local! {
    /// Whether this thread is MPI's main thread, once asked.
    static MPI_MAIN: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether this thread is the one that initialized MPI (asked of MPI once
/// per thread: it never changes, and the gate asks before every call under
/// `FUNNELED` and `SINGLE`).
fn is_mpi_main() -> Result<bool> {
    if let Some(main) = MPI_MAIN.get() {
        return Ok(main);
    }
    let mut main: c_int = 0;
    // SAFETY: MPI_Is_thread_main may be called from any thread at any
    // thread level; `main` is a valid out-parameter.
    let code = unsafe { ffi::MPI_Is_thread_main(&mut main) };
    check(code, "MPI_Is_thread_main")?;
    MPI_MAIN.set(Some(main != 0));
    Ok(main != 0)
}

/// Makes one MPI call (`f` returns its code) under its gate and checks the
/// code.
#[inline]
pub(crate) fn call(name: &str, f: impl FnOnce() -> c_int) -> Result<()> {
    let _gate = gate(name, true)?;
    check(f(), name)
}

/// [`call`] for a receive whose message may be longer than its buffer:
/// `Ok(true)` when MPI cut it to the buffer (`MPI_ERR_TRUNCATE`; the rest
/// is dropped), any other failure an error.
#[inline]
pub(crate) fn call_or_truncated(name: &str, f: impl FnOnce() -> c_int) -> Result<bool> {
    let _gate = gate(name, true)?;
    let code = f();
    if code != ffi::MPI_SUCCESS as c_int && error_class(code) == ffi::MPI_ERR_TRUNCATE as c_int {
        return Ok(true);
    }
    check(code, name).map(|()| false)
}

// ---------------------------------------------------------------------------
// Communicators and the job

/// A duplicate of `parent` whose errors come back as codes
/// (`MPI_ERRORS_RETURN`) instead of ending the job inside the library.
/// Collective over `parent`.
pub(crate) fn dup_returning_errors(parent: Comm) -> Result<Comm> {
    let mut comm = MaybeUninit::<ffi::MPI_Comm>::uninit();
    call("MPI_Comm_dup", || {
        // SAFETY: `parent` is a live communicator; `comm` is a valid place
        // for the new handle.
        unsafe { ffi::MPI_Comm_dup(parent.raw, comm.as_mut_ptr()) }
    })?;
    // SAFETY: MPI_Comm_dup succeeded, so it wrote the new handle.
    let comm = unsafe { comm.assume_init() };
    set_errors_return(comm)?;
    // A duplicate has its parent's group, so the same ranks.
    Ok(Comm {
        raw: comm,
        ..parent
    })
}

/// Makes errors on `comm`, a communicator just created, come back as codes.
pub(crate) fn set_errors_return(comm: ffi::MPI_Comm) -> Result<()> {
    call("MPI_Comm_set_errhandler", || {
        // SAFETY: `comm` is a live communicator just created;
        // MPI_ERRORS_RETURN is a predefined error handler (read from rsmpi's
        // C shim, where it is a `const` initialized from MPI's macro).
        unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) }
    })
}

/// The communicator of the ranks `members` of `parent`, numbered in that
/// order, whose errors come back as codes; this rank must be one of them.
/// Collective over the members only (`MPI_Comm_create_group`, MPI 3.0):
/// each calls it with the same members and `tag`, which tells concurrent
/// creations apart. Freed with [`free`].
pub(crate) fn create_group(parent: Comm, members: &[usize], tag: c_int) -> Result<Comm> {
    let Some(rank) = members.iter().position(|&m| m == parent.rank) else {
        return Err(mpi_error(
            "MPI_Comm_create_group",
            format_args!("rank {} is not in the group {members:?}", parent.rank),
        ));
    };
    if let Some(&bad) = members.iter().find(|&&m| m >= parent.size) {
        return Err(mpi_error(
            "MPI_Group_incl",
            format_args!("rank {bad} is not below the size {}", parent.size),
        ));
    }
    let ranks = c_ints(members, "MPI_Group_incl", "rank")?;
    let n = int(ranks.len(), "MPI_Group_incl", "group size")?;
    let mut all = MaybeUninit::<ffi::MPI_Group>::uninit();
    call("MPI_Comm_group", || {
        // SAFETY: `parent` is a live communicator; `all` is a valid place
        // for the group handle.
        unsafe { ffi::MPI_Comm_group(parent.raw, all.as_mut_ptr()) }
    })?;
    // SAFETY: MPI_Comm_group succeeded, so it wrote the handle.
    let mut all = unsafe { all.assume_init() };
    let mut some = MaybeUninit::<ffi::MPI_Group>::uninit();
    let included = call("MPI_Group_incl", || {
        // SAFETY: `all` is the live group just made; `ranks` holds `n`
        // distinct ranks below its size (checked above and by the caller);
        // `some` is a valid place for the new handle.
        unsafe { ffi::MPI_Group_incl(all, n, ranks.as_ptr(), some.as_mut_ptr()) }
    });
    let _ = call("MPI_Group_free", || {
        // SAFETY: `all` was made above and is freed once, here.
        unsafe { ffi::MPI_Group_free(&mut all) }
    });
    included?;
    // SAFETY: MPI_Group_incl succeeded, so it wrote the handle.
    let mut some = unsafe { some.assume_init() };
    let mut comm = MaybeUninit::<ffi::MPI_Comm>::uninit();
    let created = call("MPI_Comm_create_group", || {
        // SAFETY: `parent` is live and this rank is in `some`, a group of
        // its ranks; `comm` is a valid place for the new handle.
        unsafe { ffi::MPI_Comm_create_group(parent.raw, some, tag, comm.as_mut_ptr()) }
    });
    let _ = call("MPI_Group_free", || {
        // SAFETY: `some` was made above and is freed once, here.
        unsafe { ffi::MPI_Group_free(&mut some) }
    });
    created?;
    // SAFETY: MPI_Comm_create_group succeeded for a member, so it wrote a
    // communicator handle (not MPI_COMM_NULL).
    let comm = unsafe { comm.assume_init() };
    let made = Comm {
        raw: comm,
        rank,
        size: members.len(),
    };
    let returning = call("MPI_Comm_set_errhandler", || {
        // SAFETY: `comm` is the live communicator just created;
        // MPI_ERRORS_RETURN is a predefined error handler.
        unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) }
    });
    if let Err(e) = returning {
        free(made);
        return Err(e);
    }
    Ok(made)
}

/// Frees a communicator made by [`create_group`] (or a duplicate of one
/// made by [`dup_returning_errors`]); its owner calls this
/// once, when no copy of it is in use any more. A failure (MPI finalized,
/// a call from the wrong thread) leaks it.
pub(crate) fn free(comm: Comm) {
    let mut raw = comm.raw;
    let _ = call("MPI_Comm_free", || {
        // SAFETY: `raw` names a group's communicator (or its duplicate),
        // which its owner frees once, after its last use (module docs).
        unsafe { ffi::MPI_Comm_free(&mut raw) }
    });
}

/// `MPI_Abort` on `MPI_COMM_WORLD`: ends every rank of the job. Returns only
/// if MPI cannot be called now (finalized, another thread inside MPI, not
/// MPI's main thread); the caller then ends this process, which the
/// launcher treats as the job's failure.
pub(crate) fn abort_job(code: c_int) {
    if let Ok(_gate) = gate("MPI_Abort", false) {
        // SAFETY: COMM_WORLD is live until MPI_Finalize, which has not
        // started (the gate); MPI_Abort takes any error code.
        unsafe { ffi::MPI_Abort(SimpleCommunicator::world().as_raw(), code) };
    }
}
