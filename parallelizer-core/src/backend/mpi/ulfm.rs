//! The ULFM fault-tolerance extension (`MPIX_Comm_revoke`,
//! `MPIX_Comm_agree`, `MPIX_Comm_shrink`), found at run time.
//!
//! Open MPI 5 builds the extension in; Open MPI 4.1 (Debian's) has none, and
//! the same source must build and run against both. So nothing here is
//! linked: the three functions are looked up with `dlsym` in the MPI library
//! the process really loaded (which need not be the one it was built
//! against when two Open MPIs share the soname `libmpi.so.40`), and the
//! extension counts as active only if, in addition, the library was started
//! with fault tolerance on (Open MPI's MCA parameter `mpi_ft_enable`, which
//! `mpirun --with-ft ulfm` sets, read through the MPI tool interface): with
//! the functions but without that switch, a revoke is never delivered and a
//! dead rank still ends the job, so the backend keeps its abort fallback.
//! `PARALLELIZER_MPI_ULFM=0` forces the fallback.
//!
//! The error classes of a revoked communicator and a failed peer are Open
//! MPI 5's (see `handles::is_release`); they are only consulted when the
//! extension is active, which requires Open MPI's `mpi_ft_enable`.

use std::ffi::{CStr, c_int, c_void};
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use mpi::ffi;

use super::handles::{self, Comm, call, is_release, set_errors_return};
use crate::error::Result;

type RevokeFn = unsafe extern "C" fn(ffi::MPI_Comm) -> c_int;
type AgreeFn = unsafe extern "C" fn(ffi::MPI_Comm, *mut c_int) -> c_int;
type ShrinkFn = unsafe extern "C" fn(ffi::MPI_Comm, *mut ffi::MPI_Comm) -> c_int;
type IsRevokedFn = unsafe extern "C" fn(ffi::MPI_Comm, *mut c_int) -> c_int;

/// The extension's functions in the loaded MPI library.
#[derive(Clone, Copy)]
struct Functions {
    revoke: RevokeFn,
    agree: AgreeFn,
    shrink: ShrinkFn,
    is_revoked: IsRevokedFn,
}

/// How failures are handled in this process: what the backend found at
/// initialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultMode {
    /// ULFM is active: a failure revokes the region's communicator, the
    /// ranks agree, and the job goes on.
    Ulfm,
    /// No usable ULFM: a failure that leaves ranks blocked ends the job
    /// with `MPI_Abort`; the string says why ULFM is not used.
    Abort(String),
}

impl FaultMode {
    /// Whether ULFM is active.
    pub(crate) fn is_ulfm(&self) -> bool {
        matches!(self, FaultMode::Ulfm)
    }
}

impl std::fmt::Display for FaultMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultMode::Ulfm => f.write_str("ULFM (a failure is an error, the job goes on)"),
            FaultMode::Abort(why) => write!(f, "abort (a failure ends the job: {why})"),
        }
    }
}

static FUNCTIONS: OnceLock<Option<Functions>> = OnceLock::new();

/// The address of `name` in the libraries this process loaded.
fn symbol(name: &CStr) -> *mut c_void {
    // SAFETY: `name` is a NUL-terminated string; RTLD_DEFAULT searches the
    // global scope of the process, and dlsym has no other requirement.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// The three functions, if the loaded MPI library exports them.
fn lookup() -> Option<Functions> {
    let revoke = symbol(c"MPIX_Comm_revoke");
    let agree = symbol(c"MPIX_Comm_agree");
    let shrink = symbol(c"MPIX_Comm_shrink");
    let is_revoked = symbol(c"MPIX_Comm_is_revoked");
    if [revoke, agree, shrink, is_revoked]
        .iter()
        .any(|f| f.is_null())
    {
        return None;
    }
    // SAFETY: the three symbols are the ULFM functions of the MPI library
    // (the `MPIX_` prefix is reserved to MPI implementations), whose C
    // signatures (`mpi-ext.h` of Open MPI 5) these types declare:
    // `int MPIX_Comm_revoke(MPI_Comm)`, `int MPIX_Comm_agree(MPI_Comm, int*)`,
    // `int MPIX_Comm_shrink(MPI_Comm, MPI_Comm*)`,
    // `int MPIX_Comm_is_revoked(MPI_Comm, int*)`; `MPI_Comm` is the same
    // handle type rsmpi's bindings use for that library.
    unsafe {
        Some(Functions {
            revoke: std::mem::transmute::<*mut c_void, RevokeFn>(revoke),
            agree: std::mem::transmute::<*mut c_void, AgreeFn>(agree),
            shrink: std::mem::transmute::<*mut c_void, ShrinkFn>(shrink),
            is_revoked: std::mem::transmute::<*mut c_void, IsRevokedFn>(is_revoked),
        })
    }
}

/// Finds out how failures are handled in this process. Called once, after
/// `MPI_Init`, by the world.
pub(crate) fn detect() -> FaultMode {
    if std::env::var("PARALLELIZER_MPI_ULFM").is_ok_and(|v| v.trim() == "0") {
        let _ = FUNCTIONS.set(None);
        return FaultMode::Abort("PARALLELIZER_MPI_ULFM=0".into());
    }
    let Some(functions) = lookup() else {
        let _ = FUNCTIONS.set(None);
        return FaultMode::Abort(format!(
            "{} has no ULFM extension (MPIX_Comm_revoke/agree/shrink)",
            library_version()
        ));
    };
    if !ft_enabled() {
        let _ = FUNCTIONS.set(None);
        return FaultMode::Abort(format!(
            "{} has ULFM, but fault tolerance is off in this run (start with \
             `mpirun --with-ft ulfm`)",
            library_version()
        ));
    }
    let _ = FUNCTIONS.set(Some(functions));
    handles::set_ulfm_active();
    FaultMode::Ulfm
}

fn functions() -> Option<Functions> {
    FUNCTIONS.get().copied().flatten()
}

/// The first line of `MPI_Get_library_version` ("Open MPI v5.0.11, ...").
pub(crate) fn library_version() -> String {
    let mut buf = vec![0u8; ffi::MPI_MAX_LIBRARY_VERSION_STRING as usize + 1];
    let mut len: c_int = 0;
    let got = call("MPI_Get_library_version", || {
        // SAFETY: `buf` has room for MPI_MAX_LIBRARY_VERSION_STRING
        // characters and the terminator; may be called at any time.
        unsafe { ffi::MPI_Get_library_version(buf.as_mut_ptr().cast(), &mut len) }
    });
    if got.is_err() {
        return "this MPI library".into();
    }
    let len = usize::try_from(len).unwrap_or(0).min(buf.len());
    let text = String::from_utf8_lossy(&buf[..len]);
    let first = text.lines().next().unwrap_or("").trim();
    first.split(", package").next().unwrap_or(first).to_string()
}

/// Open MPI's `mpi_ft_enable`, read through the MPI tool interface
/// (`MPI_T_cvar_read`); false where the variable does not exist.
fn ft_enabled() -> bool {
    let mut provided: c_int = 0;
    let level = ffi::MPI_THREAD_SINGLE as c_int;
    // SAFETY: MPI_T_init_thread may be called at any time, any number of
    // times (each matched by MPI_T_finalize below); `provided` is a valid
    // out-parameter.
    if unsafe { ffi::MPI_T_init_thread(level, &mut provided) } != ffi::MPI_SUCCESS as c_int {
        return false;
    }
    let mut index: c_int = 0;
    // SAFETY: the name is NUL-terminated; `index` is a valid out-parameter.
    let found = unsafe { ffi::MPI_T_cvar_get_index(c"mpi_ft_enable".as_ptr(), &mut index) };
    let mut on = false;
    if found == ffi::MPI_SUCCESS as c_int {
        let mut handle = MaybeUninit::<ffi::MPI_T_cvar_handle>::uninit();
        let mut count: c_int = 0;
        // SAFETY: `index` names an existing control variable; a variable
        // bound to no MPI object takes a null object handle; `handle` and
        // `count` are valid out-parameters.
        let alloc = unsafe {
            ffi::MPI_T_cvar_handle_alloc(
                index,
                std::ptr::null_mut(),
                handle.as_mut_ptr(),
                &mut count,
            )
        };
        if alloc == ffi::MPI_SUCCESS as c_int {
            // SAFETY: the allocation succeeded, so it wrote the handle.
            let mut handle = unsafe { handle.assume_init() };
            // A boolean variable is one C `int` (or `bool`); 8 zeroed words
            // hold any count of up to 64 bytes.
            let mut value = [0u64; 8];
            if (1..=8).contains(&count) {
                // SAFETY: `value` is larger than `count` elements of any
                // scalar type a boolean MCA variable has.
                let read = unsafe { ffi::MPI_T_cvar_read(handle, value.as_mut_ptr().cast()) };
                on = read == ffi::MPI_SUCCESS as c_int && value[0] != 0;
            }
            // SAFETY: `handle` was allocated above and is freed once.
            unsafe { ffi::MPI_T_cvar_handle_free(&mut handle) };
        }
    }
    // SAFETY: matches the MPI_T_init_thread above.
    unsafe { ffi::MPI_T_finalize() };
    on
}

/// The functions, or the error for a caller that runs only under ULFM.
fn active(call_name: &str) -> Result<Functions> {
    functions().ok_or_else(|| {
        handles::mpi_error(
            call_name,
            "the ULFM extension is not active in this process",
        )
    })
}

/// `MPIX_Comm_revoke`: every pending and later operation on `comm`, on
/// every rank, fails with `MPI_ERR_REVOKED`. Local, non-blocking. Revoking
/// a revoked communicator is allowed.
pub(crate) fn revoke(comm: Comm) -> Result<()> {
    let f = active("MPIX_Comm_revoke")?;
    call("MPIX_Comm_revoke", || {
        // SAFETY: `comm` is a live communicator (the backend's are never
        // freed; a group's is revoked only while its region holds it,
        // under the lock its handle frees it with: `fate::Current`);
        // `f.revoke` is MPIX_Comm_revoke of the loaded library.
        unsafe { (f.revoke)(comm.raw()) }
    })
}

/// `MPIX_Comm_is_revoked`: whether some rank revoked `comm` (false where
/// ULFM is not active). Local.
pub(crate) fn is_revoked(comm: Comm) -> bool {
    let Some(f) = functions() else {
        return false;
    };
    let mut flag: c_int = 0;
    let asked = call("MPIX_Comm_is_revoked", || {
        // SAFETY: `comm` is live; `flag` is a valid out-parameter.
        unsafe { (f.is_revoked)(comm.raw(), &mut flag) }
    });
    asked.is_ok() && flag != 0
}

/// `MPIX_Comm_agree`: the bitwise AND of every live rank's `flag`, the
/// same on every rank that returns, also on a revoked communicator. The
/// second value says whether some rank of `comm` has failed (the call then
/// returns `MPI_ERR_PROC_FAILED`, with the flag still agreed).
pub(crate) fn agree(comm: Comm, flag: c_int) -> Result<(c_int, bool)> {
    let f = active("MPIX_Comm_agree")?;
    let mut flag = flag;
    let mut code: c_int = 0;
    let result = call("MPIX_Comm_agree", || {
        // SAFETY: `comm` is live; `flag` is a valid in/out parameter.
        code = unsafe { (f.agree)(comm.raw(), &mut flag) };
        code
    });
    match result {
        Ok(()) => Ok((flag, false)),
        Err(_) if is_release(code) => Ok((flag, true)),
        Err(e) => Err(e),
    }
}

/// `MPIX_Comm_shrink`: a new communicator of the live ranks of `comm`
/// (revoked or not), in their order, returning errors as codes.
/// Collective over the live ranks.
pub(crate) fn shrink(comm: Comm) -> Result<Comm> {
    let f = active("MPIX_Comm_shrink")?;
    let mut raw = MaybeUninit::<ffi::MPI_Comm>::uninit();
    call("MPIX_Comm_shrink", || {
        // SAFETY: `comm` is live; `raw` is a valid place for the new handle.
        unsafe { (f.shrink)(comm.raw(), raw.as_mut_ptr()) }
    })?;
    // SAFETY: MPIX_Comm_shrink succeeded, so it wrote the new handle.
    let raw = unsafe { raw.assume_init() };
    set_errors_return(raw)?;
    Comm::from_raw(raw)
}
