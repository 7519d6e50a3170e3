//! `processes`: ranks are copies of the current executable, started by the
//! parallelizer, talking over private Unix sockets (Linux only).
//!
//! The outermost `enter` re-executes `std::env::current_exe()` `nprocs - 1`
//! times with the same arguments (for a `#[parallelizer::test]`, with
//! `--exact NAME`), giving each child a socket to every other rank and a
//! private boot socket on its standard input (`boot`). A child joins in one
//! of two ways:
//!
//! - **guard** (`#[parallelizer::main]` / `#[parallelizer::test]`, the
//!   default): `worker_entry()` sees the launch and serves registered tasks
//!   by id until main shuts it down; the body of `main` never runs in a
//!   worker. `run(f, args)` on main sends `f`'s dense task id and the
//!   serialized args; every rank runs `f` with its own handle.
//! - **SPMD** (no guard): the child runs `main` from the top; when it builds
//!   the same `processes` parallelizer it becomes that rank (`in_region()`
//!   is always true), and `run(closure, args)` runs the closure on every
//!   rank, as under `mpirun` (`spmd`).
//!
//! # The protocol
//!
//! **Sockets.** Before spawning, main creates one `AF_UNIX` stream
//! socketpair per pair of ranks, close-on-exec, and sends each child its own
//! ends over its boot socket (`SCM_RIGHTS`), so every rank holds a private
//! socket to every other and there is no listening socket anyone could
//! connect to; nothing runs in a child before `exec`, so it is spawned with
//! `posix_spawn`. Main raises
//! its descriptor limit if it must (or says how many descriptors are
//! needed). Every socket is non-blocking, and a rank that waits polls all
//! of its sockets: it drains whatever any peer sends (no write-write
//! deadlock) and sees aborts and deaths at once (`endpoint`).
//!
//! **Frames.** Everything on a socket is a frame: a 44-byte header (magic,
//! frame kind, packet kind, operation, encoding, flags, sequence number,
//! region, group id, payload length, type-name length), the body's type
//! name, and the payload (`frame` has the layout). Kinds: `Hello`, `Run`,
//! `Packet`, `Shutdown`, `Broken`. A `Packet` frame is one packet of the
//! region protocol (`crate::link`): data of a call, or an abort, a Done
//! report, a wait report. Its group id is the message namespace of a group
//! made inside a region (`split`, `subgroup`; 0 for the region's own
//! calls): the receiving rank's `LinkRank` keeps one set of per-peer
//! mailboxes per group, so a group's messages never match its parent's.
//! Plain data is written straight from the caller's slice, and plain data
//! of 8-byte elements is received into words its `Vec<T>` takes over; a
//! broadcast of `shm_threshold` bytes or more has its bytes in a
//! sealed memfd passed with the header as `SCM_RIGHTS` (`shm`). Lengths
//! are checked against `max_frame` before anything is allocated, buffers
//! grow only as bytes arrive, and a memfd is checked (size, seals, no hole)
//! before it is mapped. A stream that is not frames is `Error::Codec`.
//!
//! **Shared memory.** Frames without a descriptor do not use the socket:
//! main also creates, before spawning, a memfd with a single-producer,
//! single-consumer ring for every ordered pair of ranks and an eventfd
//! doorbell per rank, which every worker inherits and maps (`ring`). A
//! frame is copied into the ring to its peer byte for byte as it would be
//! written to the socket (same header; a frame larger than the ring
//! streams through it), and the peer parses it with the same reader. A
//! waiting rank spins on its rings for 50 µs, then sleeps on its sockets
//! and its doorbell, which a writer rings only if it said it sleeps: busy
//! ranks make no system call per message, idle ones use no CPU, and a dead
//! peer is still EOF on its socket at once. Frames with a descriptor go on
//! the socket after the ring to that peer is empty, counted in the ring's
//! control block, so each peer's frames arrive in the order they were sent.
//!
//! **Point-to-point plain data** (`send_slice`, `send_pod`, the generic
//! `send` of a vector of numbers) is one frame written straight from the
//! caller's buffer into the ring, which it streams through in 64 KiB
//! pieces while the receiver copies them out. A `receive_into` of 4 KiB or
//! more posts the caller's buffer first (`crate::link`'s landings, as
//! MPI's posted receive): the frame that fits it is read straight into it,
//! so a message is copied twice, both copies at once, with no message
//! buffer in between (1 MiB: 73-82 µs one way, against 122-139 µs for one
//! `process_vm_readv`, which is slow on virtual machines). Each peer can
//! have a receive posted at once: a dynamic map's main posts every
//! worker's next slot in the map's result so.
//!
//! **Large plain data in collectives.** A plain buffer of 64 KiB or more
//! (the `_into` collectives, and the generic ones on vectors of numbers)
//! is not copied into a message at all: the sender lends it for the call
//! (`crate::link`'s `remote` loans) — a small note with its process id and
//! the buffer's address goes through the ring, each receiver copies the
//! bytes straight out of the sender's memory into its own buffer with one
//! `process_vm_readv` (Linux cross-memory attach, as Open MPI's
//! shared-memory transport does) and acknowledges, and the sender returns
//! when every receiver has. One copy, made by the receivers in parallel,
//! with no shared buffer in between and no fresh pages to fault in. Such a
//! call waits for its receivers, as on threads. A sender that waits for a
//! single receiver with nothing else to do (a broadcast or scatter to one
//! worker, a worker's part of a gather) writes part of a copy of 2 MiB or
//! more into the receiver's buffer itself, with `process_vm_writev`, while
//! the receiver copies the rest (`link/push.rs`). Every rank allows main and main's descendants to
//! read it (`PR_SET_PTRACER`, for systems whose Yama `ptrace_scope` is 1);
//! where the system forbids the read anyway, the receiver refuses the
//! loan, gets the bytes as a message instead, and the pool lends no more.
//!
//! **Handshake.** Workers start with `posix_spawn` (no fork of a large
//! parent). The launch information (rank, nprocs, the socket descriptors, a
//! random 16-byte token, the configuration) comes over a boot socket on
//! the child's standard input, descriptors as `SCM_RIGHTS` (`boot`); the
//! environment variable only names main's pid, and a worker honours it only
//! if the boot socket's peer is that process and it is its parent. A
//! joining worker reads the launch information, adopts its sockets, runs the
//! `Config::initializer` if any, and sends main a `Hello`: rank, pid, the
//! token, whether it runs SPMD, and the initializer's error. Main waits up
//! to `start_timeout` for every Hello; a wrong token or rank, an initializer
//! error or a worker that exits first fails `enter()` (`session`). Then main
//! runs the initializer itself (at every outermost `enter`).
//!
//! **Regions.** Every rank runs the region protocol of `crate::link` over a
//! `Port` (`port`), its transport for one region: main numbers regions,
//! sends each worker `Run` (task id + serialized args), runs the task
//! itself and ends the region with `finish_main`; each worker runs the task
//! and reports with `finish_worker` (`serve` is its loop). So messages
//! carry their operation and sequence number (a mismatch fails at once), a
//! failed rank releases the others, a wait that can never end is
//! `Error::Deadlock` (no timeout needed), and `Config::timeout` is the
//! deadline of the whole region, its error naming the late rank, at the
//! deadline. A `run` on the parallelizer inside one of its own regions runs
//! on the rank handle.
//!
//! **Death.** A worker that dies is EOF (or a reset) on its sockets; main
//! reaps it through its `std::process::Child` within a second and reports
//! `WorkerDied` with its exit status (and, if its stream was cut inside a
//! frame, where). Workers arm `PR_SET_PDEATHSIG(SIGKILL)` as they start
//! (and exit if main is already gone) and leave their loop on EOF from
//! main, so none outlives it.
//! After a region in which a worker died, did not finish by the deadline
//! (it is killed) or can no longer read a peer (it says so with `Broken`),
//! the next `run` (or `enter`) starts fresh workers.
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
//! giving up on them, default 2), `prefix_output` (relay worker
//! stdout/stderr line by line with a `[rank N] ` prefix, default true;
//! false inherits), `rings` (frames through shared-memory rings, default
//! true; false: sockets only), `lend` (large plain buffers lent across
//! processes, default true; false: they travel as messages).

mod boot;
mod cpu;
mod endpoint;
#[cfg(test)]
mod endpoint_tests;
mod faults;
mod frame;
#[doc(hidden)]
pub mod fuzz;
mod launch;
mod opts;
mod port;
mod posts;
mod reader;
mod ring;
mod serve;
mod session;
mod shared;
mod shm;
mod sock;
mod spin;
mod spmd;
mod trace;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::link::{Event, LinkRank};
use crate::msg::Msg;
use crate::op::{Op, Tag};
use crate::parallelizer::{Core, Parallelizer, Region, check_rank};
use crate::registry::{FromConfig, rank_of};
use crate::runtime::run_as;
use crate::segment::SharedMemory;

use faults::with_port;
use frame::Kind;
use launch::LaunchInfo;
use opts::Opts;
use port::Net;
use session::{Session, lock};
use spmd::Spmd;

#[doc(hidden)]
pub use faults::{__frame_header, __inject_raw, __inject_sparse_memfd, __refuse_peer_reads};

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
    pool: Mutex<Option<Pool>>,
    /// One region at a time per parallelizer.
    region: Mutex<()>,
    next_region: AtomicU64,
}

enum Role {
    /// This process launched the workers.
    Main,
    /// This process is a worker that reached `from_config` (SPMD).
    SpmdWorker(Arc<Spmd>),
}

/// Main's running pool, and its part of the SPMD program if the workers
/// run one.
struct Pool {
    session: Session,
    spmd: Option<Arc<Spmd>>,
}

impl Processes {
    /// A processes parallelizer of `nprocs` ranks (`None`: one per core). In
    /// a process launched as a worker by a `processes` main (SPMD, no
    /// guard), this joins as that worker rank instead.
    pub fn new(config: Config) -> Result<Processes> {
        let nprocs = config.nprocs_or(crate::runtime::cores())?;
        let opts = Opts::from_config(&config)?;
        let role = match LaunchInfo::from_this_process() {
            None => Role::Main,
            Some(info) => Role::SpmdWorker(spmd::join(&info?, nprocs, &config, &opts)?),
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
            Role::SpmdWorker(_) => true,
        }
    }

    /// The pids of the running worker processes (main; empty otherwise).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.pool)
            .as_ref()
            .map(|p| p.session.pids())
            .unwrap_or_default()
    }

    /// This rank's part in an SPMD program, if the ranks run one.
    fn spmd(&self) -> Option<Arc<Spmd>> {
        match &self.role {
            Role::SpmdWorker(s) => Some(s.clone()),
            Role::Main => lock(&self.pool).as_ref().and_then(|p| p.spmd.clone()),
        }
    }

    /// Starts the workers unless they run; a pool that lost a worker is
    /// reaped and replaced.
    fn ensure_pool(&self) -> Result<()> {
        let mut pool = lock(&self.pool);
        if let Some(p) = pool.as_ref() {
            // SPMD workers run their own `main`: they cannot be replaced,
            // and a lost one fails the calls that need it.
            if p.spmd.is_some() || p.session.is_healthy() {
                return Ok(());
            }
            let p = pool.take().expect("checked");
            p.session.shutdown(Duration::from_millis(200));
        }
        let session = Session::start(self.nprocs, self.core.config(), &self.opts)?;
        let limits = serve::limits(self.core.config(), &self.opts);
        let spmd = session
            .is_spmd()
            .then(|| Spmd::new(&self.core, session.net().clone(), limits));
        *pool = Some(Pool { session, spmd });
        Ok(())
    }

    /// Runs a region by shipping the registered task to every worker.
    fn run_shipped(&self, net: Arc<Net>, region: Region) -> Result<Msg> {
        let task_id = region.task().require_id()?;
        let id = self.next_region.fetch_add(1, Ordering::SeqCst) + 1;
        let (task, args) = region.into_parts();
        // Shared arrays in the arguments go as their memfds' descriptors.
        let ((args_bytes, attached), args_type) = match self.nprocs {
            1 => (Default::default(), String::new()),
            _ => (args.to_wire()?, args.type_name().unwrap_or("").to_string()),
        };
        let fds = shared::descriptors(&attached)?;
        let limits = serve::limits(self.core.config(), &self.opts);
        let deadline = limits.deadline();
        let port = net.port(id, deadline, limits.timeout);
        let main = Arc::new(LinkRank::new(&self.core, 0, self.nprocs, id, limits, port));
        let task_id = task_id.to_le_bytes();
        for r in 1..self.nprocs {
            let run = [task_id.as_slice(), &args_bytes];
            let sent = net.send_control(r, (Kind::Run, id), &args_type, (&run, &fds), deadline);
            if let Err(error) = sent {
                main.deliver(Event::Gone { rank: r, error });
            }
        }
        let handle: Arc<dyn Parallelizer> = main.clone();
        let outcome = with_port(&net, id, || run_as(&handle, |p| task.run(p, args)));
        let finish = main.finish_main(outcome);
        if !finish.unfinished.is_empty() {
            // Still running a region that is over: killed now (the result
            // is due at the deadline), replaced at the next run.
            if let Some(pool) = lock(&self.pool).take() {
                pool.session.kill();
            }
        }
        finish.result
    }

    /// The SPMD part for a call in the ambient region, or the error for a
    /// call outside a region.
    fn ambient(&self, op: Op) -> Result<Arc<Spmd>> {
        self.spmd().ok_or_else(|| {
            Error::ContractViolation(format!(
                "`{op}` on the processes parallelizer outside a region; call it inside `run`"
            ))
        })
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
        match &self.role {
            Role::Main => 0,
            Role::SpmdWorker(s) => s.ambient().id(),
        }
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        self.spmd().is_some()
    }

    /// Memfds every process maps (main allocates; handles travel with
    /// their descriptors).
    fn shared_memory(&self) -> Result<&dyn SharedMemory> {
        Ok(&shared::MEMFD)
    }

    /// Main: starts the workers (each runs `Config::initializer` as it
    /// joins), then runs the initializer on main, once per outermost
    /// enter. A worker in SPMD mode ran it when it joined.
    fn initialize(&self) -> Result<()> {
        if let Role::SpmdWorker(_) = self.role {
            return Ok(());
        }
        self.ensure_pool()?;
        match serve::run_initializer(self.core.config(), 0, self.nprocs) {
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
        if pool.as_ref().is_some_and(|p| p.spmd.is_none()) {
            let p = pool.take().expect("checked");
            drop(pool);
            p.session.shutdown(self.opts.grace());
        }
        Ok(())
    }

    fn send_msg(&self, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let s = self.ambient(tag.op())?;
        s.ambient_result(s.ambient().send_msg(msg, to, tag))
    }

    fn send_msg_in(&self, group: u64, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let s = self.ambient(tag.op())?;
        s.ambient_result(s.ambient().send_msg_in(group, msg, to, tag))
    }

    fn recv_msg_in(&self, group: u64, from: usize, tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let s = self.ambient(tag.op())?;
        s.ambient_result(s.ambient().recv_msg_in(group, from, tag))
    }

    fn recv_msg(&self, from: usize, tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let s = self.ambient(tag.op())?;
        s.ambient_result(s.ambient().recv_msg(from, tag))
    }

    fn broadcast_msg(&self, msg: Option<Msg>, tag: Tag) -> Result<Msg> {
        let s = self.ambient(tag.op())?;
        s.ambient_result(s.ambient().broadcast_msg(msg, tag))
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // `run` on this parallelizer from inside one of its own regions: every
        // rank runs it on its handle (SPMD), instead of waiting for itself.
        if let Some(rank) = rank_of(self) {
            return rank.run_region(region);
        }
        if let Role::SpmdWorker(s) = &self.role {
            return s.run(&self.core, region);
        }
        let _one_region = lock(&self.region);
        self.ensure_pool()?;
        let (net, spmd) = {
            let pool = lock(&self.pool);
            let p = pool.as_ref().expect("ensured");
            (p.session.net().clone(), p.spmd.clone())
        };
        match spmd {
            Some(s) => s.run(&self.core, region),
            None => self.run_shipped(net, region),
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Role::SpmdWorker(s) = &self.role {
            s.leave();
        }
        if let Some(pool) = lock(&self.pool).take() {
            match pool.spmd {
                // SPMD workers finish their own `main` after main's drop;
                // a failure of theirs is not lost.
                Some(s) => s.check_exits(&pool.session.shutdown(Duration::from_secs(10))),
                None => drop(pool.session.shutdown(self.opts.grace())),
            }
        }
    }
}
