//! `processes`: ranks are copies of the current executable, started by the
//! parallelizer, talking over private Unix sockets (Linux only).
//!
//! The outermost `enter` re-executes `std::env::current_exe()` `nprocs - 1`
//! times with the same arguments (for a `#[parallelizer::test]`, with
//! `--exact NAME`), giving each child a socket to every other rank and a
//! private launch environment. A child joins in one of two ways:
//!
//! - **guard** (`#[parallelizer::main]` / `#[parallelizer::test]`, the
//!   default): `worker_entry()` sees the launch environment and serves
//!   registered tasks by id until main shuts it down; the body of `main`
//!   never runs in a worker. `run(f, args)` on main sends `f`'s dense task id
//!   and the serialized args; every rank runs `f` with its own handle.
//! - **SPMD** (no guard): the child runs `main` from the top; when it builds
//!   the same `processes` parallelizer it becomes that rank (`in_region()`
//!   is always true), and `run(closure, args)` runs the closure on every
//!   rank, as under `mpirun`.
//!
//! # The protocol
//!
//! **Sockets.** Before spawning, main creates one `AF_UNIX` stream
//! socketpair per pair of ranks, close-on-exec; each child clears the flag
//! on its own ends only, so every rank holds a private socket to every other
//! and there is no listening socket anyone could connect to. Every socket is
//! non-blocking, and a rank that waits polls all of its sockets: it drains
//! whatever any peer sends (no write-write deadlock) and sees aborts and
//! deaths at once (`endpoint`).
//!
//! **Frames.** Everything on a socket is a frame: a 32-byte header (magic,
//! kind, encoding, alignment flag, region number, payload length, group id)
//! and the payload (`frame`). The group id is the message namespace of a
//! group made inside a region (`split`, `subgroup`); each rank keeps one set
//! of per-peer inboxes per group (`inbox`). The length is checked against `max_frame` before
//! anything is allocated, and a payload buffer grows only as bytes arrive.
//! Kinds: `Hello`, `Run`, `Data`, `Shm`, `Abort`, `Done`, `Shutdown`. A
//! `Data` frame carries one message: serde bytes, or plain data written
//! straight from the caller's slice (8-byte plain data is received into
//! words its `Vec<T>` takes over). A `Shm` frame has no payload: its bytes
//! are in a sealed memfd passed with the header as `SCM_RIGHTS` (`shm`;
//! broadcasts of `shm_threshold` bytes or more). A stream that is not
//! frames is `Error::Codec` for the reading rank.
//!
//! **Handshake.** The launch environment (one variable: rank, nprocs,
//! main's pid, the socket descriptors, a random 16-byte token, the
//! configuration) is only honoured by a process whose parent is main
//! (`launch`). A joining worker adopts its sockets, runs the
//! `Config::initializer` if any, and sends main a `Hello`: rank, pid, the
//! token, whether it runs SPMD, and the initializer's error. Main waits up
//! to `start_timeout` for every Hello; a wrong token or rank, an initializer
//! error or a worker that exits first fails `enter()` (`session`).
//!
//! **Regions.** Main numbers regions; every frame carries its region, and
//! frames of an older region are dropped (`protocol`). To run a task main
//! sends each worker `Run` (task id + serialized args), runs the task
//! itself, then waits for every worker's `Done` report (its error, if any,
//! and whether it can still read all its peers) (`serve` is the worker's
//! loop). A rank that fails records itself as the region's first failure
//! and sends `Abort` (who failed and why) to the others; a worker tells the
//! other workers and reports the cause to main in its `Done`, and main
//! relays an abort it learns to every worker. A rank blocked in a receive
//! returns `Error::Aborted` as soon as an `Abort` arrives. Main settles the
//! region as the first failure (or its own value); after a failure the
//! other ranks get `grace` to finish before they are killed.
//!
//! **Death.** A worker that dies is EOF (or a reset) on its sockets; main
//! reaps it through its `std::process::Child` within a second and reports
//! `WorkerDied` with its exit status (and, if its stream was cut inside a
//! frame, where). Workers get `PR_SET_PDEATHSIG(SIGKILL)` in the child
//! before exec and leave their loop on EOF from main, so none outlives it.
//! Every blocking receive, and every send that waits for a peer to read,
//! honours `Config::timeout`; main also waits at most that long for the
//! workers to finish a region. A region in which a worker died, stalled or
//! lost a peer marks the pool broken: it is reaped, and the next `run` (or
//! `enter`) starts fresh workers.
//!
//! **Shutdown.** The outermost guard's drop sends served workers
//! `Shutdown`, closes main's sockets (EOF for SPMD workers, which finish
//! their own `main`), waits up to `grace` for the workers to exit, then
//! SIGKILLs and reaps the rest and lets their last output through.
//!
//! Options (`Config::option`): `shm_threshold` (bytes; broadcasts at least
//! this large go through a memfd, default 1 MiB),
//! `max_frame` (largest in-band frame, default 16 GiB), `start_timeout`
//! (seconds main waits for workers to join, default 60), `grace` (seconds
//! main waits for the other ranks to wind down after a failure before
//! killing them, default 2), `prefix_output` (relay worker stdout/stderr
//! line by line with a `[rank N] ` prefix, default true; false inherits).
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod endpoint;
mod frame;
mod inbox;
mod launch;
mod opts;
mod protocol;
mod rank;
mod serve;
mod session;
mod shm;
mod spmd;
mod trace;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::parallelizer::{Core, Parallelizer, Region, check_rank};
use crate::registry::FromConfig;

use frame::{Header, Kind};
use launch::LaunchInfo;
use opts::Opts;
use protocol::Link;
use rank::{ProcRank, lock, run_guarded, settle};
use session::Session;

/// Ranks as OS processes: copies of the current executable over private
/// Unix sockets. See the [module docs](self).
///
/// Default `nprocs`: `std::thread::available_parallelism()`.
///
/// This program has no guard, so each worker runs it from the top and joins
/// at `from_config` (SPMD): the closure runs on every rank.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// let par = from_config("processes:3").unwrap();
/// let ids = par.run(|p: &dyn Parallelizer, ()| p.gather((p.id(), p.pid())).unwrap(), ()).unwrap();
/// if par.on_main() {
///     let ids = ids.unwrap();
///     assert_eq!(ids.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
///     assert!(ids[0].1 != ids[1].1 && ids[1].1 != ids[2].1, "three processes");
/// } else {
///     assert_eq!(ids, None);
/// }
/// ```
#[crate::parallelizer(name = "processes", crate = "crate")]
pub struct Processes {
    core: Core,
    nprocs: usize,
    role: Role,
    opts: Opts,
    pool: Mutex<Option<Session>>,
    /// One region at a time per parallelizer.
    region: Mutex<()>,
    next_region: AtomicU64,
}

enum Role {
    /// This process launched the workers.
    Main,
    /// This process is a worker that reached `from_config` (SPMD).
    SpmdWorker { rank: usize, link: Arc<Mutex<Link>> },
}

impl Processes {
    /// A processes parallelizer of `nprocs` ranks (`None`: one per core). In
    /// a process launched as a worker by a `processes` main (SPMD, no
    /// guard), this joins as that worker rank instead.
    pub fn new(config: Config) -> Result<Processes> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let nprocs = config.nprocs_or(cores)?;
        let opts = Opts::from_config(&config)?;
        let role = match LaunchInfo::from_this_process() {
            None => Role::Main,
            Some(info) => {
                let info = info?;
                Role::SpmdWorker {
                    rank: info.rank(),
                    link: spmd::join(&info, nprocs, &config, &opts)?,
                }
            }
        };
        Ok(Processes {
            core: Core::new(config),
            nprocs,
            role,
            opts,
            pool: Mutex::new(None),
            region: Mutex::new(()),
            next_region: AtomicU64::new(0),
        })
    }

    /// Whether worker processes are running (main), or this is a worker.
    pub fn is_running(&self) -> bool {
        match self.role {
            Role::Main => lock(&self.pool).is_some(),
            Role::SpmdWorker { .. } => true,
        }
    }

    /// The pids of the running worker processes (main; empty otherwise).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.pool)
            .as_ref()
            .map(Session::pids)
            .unwrap_or_default()
    }

    /// The link collectives use outside `run` in SPMD mode.
    fn spmd_link(&self) -> Option<Arc<Mutex<Link>>> {
        match &self.role {
            Role::SpmdWorker { link, .. } => Some(link.clone()),
            Role::Main => lock(&self.pool)
                .as_ref()
                .filter(|s| s.is_spmd())
                .map(|s| s.link().clone()),
        }
    }

    /// Starts the workers unless they run; a pool that lost a worker is
    /// reaped and replaced.
    fn ensure_pool(&self) -> Result<()> {
        let mut pool = lock(&self.pool);
        if let Some(s) = pool.as_ref() {
            // SPMD workers run their own `main`: they cannot be replaced,
            // and a lost one fails the receives that wait for it.
            if s.is_spmd() || s.is_healthy() {
                return Ok(());
            }
            let s = pool.take().expect("checked");
            s.shutdown(Duration::from_millis(200));
        }
        *pool = Some(Session::start(self.nprocs, self.core.config(), &self.opts)?);
        Ok(())
    }

    /// Runs a region by shipping the registered task to every worker.
    fn run_shipped(&self, link: Arc<Mutex<Link>>, region: Region) -> Result<Msg> {
        let task_id = region.task().require_id()?;
        let region_id = self.next_region.fetch_add(1, Ordering::SeqCst) + 1;
        let (task, args) = region.into_parts();
        let args_bytes = if self.nprocs > 1 {
            args.to_bytes()?
        } else {
            Vec::new()
        };
        session::ship(&mut lock(&link), region_id, task_id, &args_bytes);
        let handle = Arc::new(ProcRank::new(
            Core::for_rank(&self.core),
            link.clone(),
            false,
        ));
        let outcome = run_guarded(&handle, || task.run(&*handle, args));
        let main_failed = outcome.as_ref().is_err_and(|f| f.is_primary());
        let end = session::finish(&mut lock(&link), main_failed, self.opts.grace())?;
        if end.broken {
            if let Some(pool) = lock(&self.pool).take() {
                pool.shutdown(Duration::from_millis(200));
            }
        }
        settle(outcome, end.failure, &end.statuses)
    }
}

impl FromConfig for Processes {
    fn from_config(config: &Config) -> Result<Processes> {
        Processes::new(config.clone())
    }
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processes")
            .field("id", &self.id())
            .field("nprocs", &self.nprocs)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Parallelizer for Processes {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        match self.role {
            Role::Main => 0,
            Role::SpmdWorker { rank, .. } => rank,
        }
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        self.spmd_link().is_some()
    }

    /// Main: starts the workers (each runs `Config::initializer` as it
    /// joins), then runs the initializer on main, once per outermost
    /// enter. A worker in SPMD mode ran it when it joined.
    fn initialize(&self) -> Result<()> {
        if let Role::SpmdWorker { .. } = self.role {
            return Ok(());
        }
        self.ensure_pool()?;
        let link = match lock(&self.pool).as_ref() {
            Some(s) => s.link().clone(),
            None => return Ok(()),
        };
        match serve::run_initializer(self.core.config(), &link) {
            None => Ok(()),
            Some(e) => {
                self.finalize()?;
                Err(e)
            }
        }
    }

    fn finalize(&self) -> Result<()> {
        let mut pool = lock(&self.pool);
        // SPMD workers run their own `main`; they are reaped when this
        // parallelizer is dropped.
        if pool.as_ref().is_some_and(|s| !s.is_spmd()) {
            let s = pool.take().expect("checked");
            drop(pool);
            s.shutdown(self.opts.grace());
        }
        Ok(())
    }

    fn send_msg(&self, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let link = self.spmd_link().ok_or_else(|| outside_region("send"))?;
        lock(&link).send(msg, to)
    }

    fn send_msg_in(&self, group: u64, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let link = self.spmd_link().ok_or_else(|| outside_region("send"))?;
        lock(&link).send_in(group, msg, to)
    }

    fn recv_msg_in(&self, group: u64, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let link = self.spmd_link().ok_or_else(|| outside_region("receive"))?;
        lock(&link).recv_in(group, from)?.into_msg()
    }

    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let link = self.spmd_link().ok_or_else(|| outside_region("receive"))?;
        lock(&link).recv(from)?.into_msg()
    }

    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        let link = self
            .spmd_link()
            .ok_or_else(|| outside_region("broadcast"))?;
        rank::broadcast(&link, msg)
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        if let Role::SpmdWorker { link, .. } = &self.role {
            return spmd::run(Core::for_rank(&self.core), link.clone(), region);
        }
        let _one_region = lock(&self.region);
        self.ensure_pool()?;
        let (link, is_spmd) = {
            let pool = lock(&self.pool);
            let s = pool.as_ref().expect("ensured");
            (s.link().clone(), s.is_spmd())
        };
        if is_spmd {
            spmd::run(Core::for_rank(&self.core), link, region)
        } else {
            self.run_shipped(link, region)
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(pool) = lock(&self.pool).take() {
            // SPMD workers finish their own `main` after main's drop.
            let grace = if pool.is_spmd() {
                Duration::from_secs(10)
            } else {
                self.opts.grace()
            };
            pool.shutdown(grace);
        }
    }
}

fn outside_region(op: &str) -> Error {
    Error::ContractViolation(format!(
        "`{op}` on the processes parallelizer outside a region; call it inside `run`"
    ))
}

/// Fault injection for the backend's own tests: raw bytes written to rank
/// `to` from the rank running on this thread, outside the framing. Not a
/// public API.
#[doc(hidden)]
pub fn __inject_raw(to: usize, bytes: &[u8]) -> Result<()> {
    let link = rank::current_link()
        .ok_or_else(|| Error::ContractViolation("inject_raw outside a processes region".into()))?;
    lock(&link).write_raw(to, bytes)
}

/// A frame header announcing `len` payload bytes, for fault-injection tests.
#[doc(hidden)]
pub fn __frame_header(len: u64) -> Vec<u8> {
    Header::new(Kind::Data, u64::MAX / 2, len).encode().to_vec()
}
