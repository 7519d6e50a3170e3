//! The process-global MPI state: initialization (once), the two
//! communicators the backend owns, the count of regions running here, the
//! panic hook that turns a stray panic into `MPI_Abort`, and finalization
//! at exit.
//!
//! Lifetime of MPI: the first use (the worker hook under `mpirun`, or the
//! first `from_config("mpi")`) calls `MPI_Init_thread` through rsmpi,
//! unless the host program already initialized MPI, in which case the host
//! keeps ownership and finalizes it itself. When this crate initialized
//! MPI, the rsmpi `Universe` lives in a process-global slot and an `atexit`
//! handler drops it, which calls `MPI_Finalize`, when the process exits
//! (return from `main` or `std::process::exit`). Whoever must talk to the
//! other ranks before that (the served model's shutdown) registers a
//! [`before_finalize`] callback: this module knows nothing of the protocol.

use std::ffi::c_int;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use mpi::environment::{Threading, Universe};

use super::calls;
use super::handles::{self, Comm};
use super::ulfm::{self, FaultMode};
use crate::config::LogLevel;
use crate::error::{Error, Result};
use crate::outcome::panic_message;

/// MPI as this process sees it.
#[derive(Debug)]
pub(crate) struct World {
    /// The backend's communicators; replaced when a failure revokes them
    /// (ULFM), never freed.
    comms: RwLock<Comms>,
    /// This rank and the number of ranks in `comms.data`, kept beside it:
    /// `id()` and `nprocs()` are asked on every call, and a lock costs more
    /// than the rest of a small call's bookkeeping.
    rank: AtomicUsize,
    size: AtomicUsize,
    /// The threading level MPI provides.
    pub threading: Threading,
    /// How failures are handled (ULFM or abort), found at initialization.
    pub faults: FaultMode,
    /// The MPI library, as `MPI_Get_library_version` names it.
    pub library: String,
    /// Set when a region ended with a late rank (ULFM): the next region
    /// waits for every rank first.
    pub resync: AtomicBool,
    /// Set when a rank of the job died (ULFM): MPI_Finalize is skipped at
    /// exit.
    pub lost: AtomicBool,
}

/// The three communicators the backend owns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comms {
    /// Collectives and messages of user code (a duplicate of COMM_WORLD, so
    /// the backend's traffic never mixes with the host program's), and the
    /// end-of-region agreement under ULFM.
    pub data: Comm,
    /// Dispatch headers, region entry, and the end-of-region agreement
    /// without ULFM.
    pub ctrl: Comm,
    /// The point-to-point parts of plain-data scatters and gathers, apart
    /// from the user's messages on `data`; revoked with `data` on a failure
    /// (ULFM) and replaced with it.
    pub plain: Comm,
}

impl World {
    /// The current communicators.
    pub(crate) fn comms(&self) -> Comms {
        *self.comms.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The communicator of user messages.
    pub(crate) fn data(&self) -> Comm {
        self.comms().data
    }

    /// The control communicator.
    pub(crate) fn ctrl(&self) -> Comm {
        self.comms().ctrl
    }

    /// The communicator of plain-data parts.
    pub(crate) fn plain(&self) -> Comm {
        self.comms().plain
    }

    /// This process's rank (in the current communicators: a rank above one
    /// that died moves down when the job shrinks).
    pub(crate) fn rank(&self) -> usize {
        self.rank.load(Ordering::Relaxed)
    }

    /// The number of ranks (fewer than COMM_WORLD's once ranks died).
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Installs the communicators that replace revoked ones (ULFM).
    pub(crate) fn replace(&self, comms: Comms) {
        let mut held = self.comms.write().unwrap_or_else(|e| e.into_inner());
        *held = comms;
        self.rank.store(comms.data.rank(), Ordering::Relaxed);
        self.size.store(comms.data.size(), Ordering::Relaxed);
    }
}

static WORLD: OnceLock<Result<World>> = OnceLock::new();
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);
/// Runs in the exit handler before `MPI_Finalize` (see [`before_finalize`]).
static BEFORE_FINALIZE: OnceLock<fn(&World)> = OnceLock::new();
/// Whether this process is rank 0 of a served job (see
/// [`report_and_abort`]).
static SERVED_MAIN: AtomicBool = AtomicBool::new(false);

/// Records that this process is rank 0 of a served job.
pub(crate) fn set_served_main() {
    SERVED_MAIN.store(true, Ordering::SeqCst);
}

/// Runs at exit inside a region under ULFM (see [`on_exit_in_region`]).
static EXIT_IN_REGION: OnceLock<fn(&World)> = OnceLock::new();
/// Regions running on this rank; a panic while one runs is handled by the
/// region (agreement, else abort). A panic on the main thread outside any
/// region aborts the job: it would end this rank while the others may be
/// waiting for it, and `MPI_Finalize` in the exit handler would wait for
/// them in turn.
static REGIONS: AtomicUsize = AtomicUsize::new(0);

/// Initializes MPI (once per process) and the backend's communicators.
/// Collective: on first use, every rank must call it.
pub(crate) fn world() -> Result<&'static World> {
    WORLD.get_or_init(init).as_ref().map_err(Error::clone)
}

/// The world if MPI is already set up by this crate, without initializing.
fn world_if_initialized() -> Option<&'static World> {
    WORLD.get().and_then(|w| w.as_ref().ok())
}

fn init() -> Result<World> {
    if mpi::environment::is_initialized() && mpi::environment::is_finalized() {
        return Err(handles::mpi_error(
            "MPI_Init_thread",
            "MPI was already finalized in this process",
        ));
    }
    let asked = thread_level(std::env::var(THREAD_LEVEL_VAR).ok().as_deref())?;
    let threading = match mpi::initialize_with_threading(asked) {
        Some((universe, threading)) => {
            *UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()) = Some(universe);
            register_atexit();
            threading
        }
        // The host program initialized MPI and will finalize it.
        None => mpi::environment::threading_support(),
    };
    handles::set_thread_level(threading);
    let world = Comm::world()?;
    let data = handles::dup_returning_errors(world)?;
    let ctrl = handles::dup_returning_errors(world)?;
    let plain = handles::dup_returning_errors(world)?;
    // No rank may revoke a communicator another rank is still creating
    // (Open MPI 5 crashes in MPI_Comm_dup then): all are made before any
    // region starts.
    calls::barrier(ctrl)?;
    let faults = if threading == Threading::Multiple {
        ulfm::detect()
    } else {
        // ULFM releases blocked ranks by revoking communicators from a
        // watchdog thread while the rank's own thread is inside MPI.
        FaultMode::Abort(format!(
            "MPI provides {} and ULFM needs MPI_THREAD_MULTIPLE",
            level_name(threading)
        ))
    };
    let library = ulfm::library_version();
    install_panic_hook();
    if world.rank() == 0 && world.size() > 1 && log_mode() {
        say(format_args!(
            "parallelizer: MPI backend on {library}, {} ranks; failures: {faults}",
            world.size()
        ));
    }
    Ok(World {
        comms: RwLock::new(Comms { data, ctrl, plain }),
        rank: AtomicUsize::new(data.rank()),
        size: AtomicUsize::new(data.size()),
        threading,
        faults,
        library,
        resync: AtomicBool::new(false),
        lost: AtomicBool::new(false),
    })
}

/// The environment variable that picks the thread level the backend asks
/// MPI for (mpi4py's `mpi4py.rc.thread_level`).
pub(crate) const THREAD_LEVEL_VAR: &str = "PARALLELIZER_MPI_THREAD_LEVEL";

/// The thread level [`THREAD_LEVEL_VAR`] asks for: `multiple` by default
/// (any thread may call MPI at any time, which the ULFM watchdog needs),
/// or `serialized`, `funneled`, `single` (Open MPI 4.1 takes no lock
/// inside its calls only at `single`). The backend keeps to the level
/// (`handles::gate`).
fn thread_level(value: Option<&str>) -> Result<Threading> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "multiple") => Ok(Threading::Multiple),
        Some("serialized") => Ok(Threading::Serialized),
        Some("funneled") => Ok(Threading::Funneled),
        Some("single") => Ok(Threading::Single),
        Some(other) => Err(Error::Config(format!(
            "{THREAD_LEVEL_VAR}={other:?}: expected multiple (the default), serialized, funneled \
             or single"
        ))),
    }
}

/// MPI's name of a thread level.
fn level_name(level: Threading) -> &'static str {
    match level {
        Threading::Multiple => "MPI_THREAD_MULTIPLE",
        Threading::Serialized => "MPI_THREAD_SERIALIZED",
        Threading::Funneled => "MPI_THREAD_FUNNELED",
        Threading::Single => "MPI_THREAD_SINGLE",
    }
}

/// Prints `line` and a newline on stderr in one write: the ranks of a job
/// share the launcher's stderr, and `eprintln!` writes each piece of its
/// format apart, so two ranks' lines could interleave mid-line (a rank's
/// start-up line cut a failing rank's message in two in CI). A pipe takes
/// a write of up to 4 KiB whole.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    let mut text = line.to_string();
    text.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
}

/// Whether to print the failure mode at start-up: at the `normal` log
/// level and above (`PARALLELIZER_LOG`, see [`LogLevel`]).
fn log_mode() -> bool {
    crate::config::Config::new("mpi").verbosity() >= LogLevel::NORMAL
}

/// Registers `hook` to run at exit before `MPI_Finalize`, while the other
/// ranks can still be reached (once per process; a second call is
/// ignored).
pub(crate) fn before_finalize(hook: fn(&World)) {
    let _ = BEFORE_FINALIZE.set(hook);
}

/// Registers `hook` to run when the process exits inside a region under
/// ULFM, before it leaves without finalizing (once per process).
pub(crate) fn on_exit_in_region(hook: fn(&World)) {
    let _ = EXIT_IN_REGION.set(hook);
}

/// The number of regions running in this process.
pub(crate) fn regions() -> usize {
    REGIONS.load(Ordering::SeqCst)
}

/// Counts a region as running on this rank while the guard lives.
pub(crate) fn in_region() -> crate::runtime::Counted {
    crate::runtime::Counted::new(&REGIONS)
}

fn register_atexit() {
    // SAFETY: `at_exit` is an `extern "C" fn()` that stays valid for the
    // life of the process; registering a handler has no other requirement.
    // (The C `int` result is non-zero only when the table of handlers is
    // full, in which case MPI is not finalized at exit, as with a host
    // that never finalizes.)
    unsafe {
        libc::atexit(at_exit);
    }
}

/// Runs when the process exits: the registered [`before_finalize`] hook,
/// then `MPI_Finalize` (the rsmpi `Universe` drop).
extern "C" fn at_exit() {
    if let Some(world) = world_if_initialized() {
        if regions() > 0 {
            // `exit` inside a region: the other ranks may be waiting for
            // this one in a collective, and MPI_Finalize would wait for them.
            // Under ULFM the region's communicator is revoked first (which
            // releases them) and the rank ends as failed (see
            // `report_and_abort`); the others agree it died.
            if let Some(hook) = EXIT_IN_REGION.get().filter(|_| world.faults.is_ulfm()) {
                hook(world);
            }
            report_and_abort(
                world,
                "exited inside a parallel region, while other ranks may wait for it",
                1,
            );
        }
        if let Some(hook) = BEFORE_FINALIZE.get() {
            hook(world);
        }
    }
    let universe = UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if universe.is_some() {
        handles::set_finalized();
        if let Some(world) = world_if_initialized().filter(|w| w.faults.is_ulfm()) {
            if world.lost.load(Ordering::SeqCst) {
                // Open MPI 5's MPI_Finalize often never returns once a rank
                // of the job has failed: leave without it (the launcher
                // takes the process's exit status as it is).
                std::mem::forget(universe);
                return;
            }
            finalize_watchdog();
        }
    }
    drop(universe);
}

/// How long `MPI_Finalize` may take under ULFM before the process leaves
/// without it.
const FINALIZE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Under ULFM, should Open MPI 5's `MPI_Finalize` not return (as it often
/// does not once a rank of the job failed, which is why it is skipped then),
/// a thread ends the process, with status 1 and a message, if it is still
/// finalizing after [`FINALIZE_LIMIT`].
fn finalize_watchdog() {
    let _ = std::thread::Builder::new()
        .name("parallelizer-mpi-finalize".into())
        .spawn(|| {
            std::thread::sleep(FINALIZE_LIMIT);
            say(format_args!(
                "parallelizer: MPI_Finalize did not return within {FINALIZE_LIMIT:?} (a rank of \
                 the job failed earlier); leaving without it"
            ));
            // SAFETY: `_exit` ends the process at once, without running
            // the exit handlers (this one is running).
            unsafe { libc::_exit(1) }
        });
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        previous(info);
        if regions() > 0 {
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
///
/// Under ULFM (Open MPI 5 with fault tolerance on), `MPI_Abort` ends only
/// this process, and the others are not told: instead the backend's
/// communicators are revoked (whoever waits on them is released with an
/// error) and this process ends with SIGKILL, which the others' MPI
/// reports as a failed rank.
pub(crate) fn report_and_abort(world: &World, what: &str, code: c_int) -> ! {
    let (rank, size) = (world.rank(), world.size());
    if world.faults.is_ulfm() {
        say(format_args!(
            "parallelizer: MPI rank {rank} of {size} {what}; ending this rank (the others are \
             told it failed)"
        ));
        let comms = world.comms();
        let _ = ulfm::revoke(comms.data);
        let _ = ulfm::revoke(comms.plain);
        let _ = ulfm::revoke(comms.ctrl);
        // Rank 0 of a served job is the program: its workers end when it
        // does (they find the control communicator revoked), so it exits
        // with its status, which becomes the job's. Any other rank ends by
        // a signal, the only way Open MPI 5 tells the others that it failed
        // (and lets them finalize without it).
        // SAFETY: kill(2) of this process with a constant signal; `_exit`
        // ends it at once. No Rust state is used after either.
        unsafe {
            if !(SERVED_MAIN.load(Ordering::SeqCst) && regions() == 0) {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            libc::_exit(code)
        }
    }
    say(format_args!(
        "parallelizer: MPI rank {rank} of {size} {what}; aborting the MPI job (MPI_Abort)"
    ));
    handles::abort_job(code);
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_level_is_multiple_unless_asked_and_a_bad_one_is_named() {
        assert_eq!(thread_level(None).unwrap(), Threading::Multiple);
        assert_eq!(thread_level(Some("")).unwrap(), Threading::Multiple);
        assert_eq!(
            thread_level(Some(" Serialized ")).unwrap(),
            Threading::Serialized
        );
        assert_eq!(thread_level(Some("funneled")).unwrap(), Threading::Funneled);
        assert_eq!(thread_level(Some("single")).unwrap(), Threading::Single);
        let err = thread_level(Some("many")).unwrap_err().to_string();
        assert!(
            err.contains("PARALLELIZER_MPI_THREAD_LEVEL=\"many\"") && err.contains("serialized"),
            "{err}"
        );
        assert_eq!(level_name(Threading::Serialized), "MPI_THREAD_SERIALIZED");
    }
}
