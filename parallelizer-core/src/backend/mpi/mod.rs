//! `mpi` (cargo feature `mpi`): ranks are MPI processes started by
//! `mpirun`/`srun`; COMM_WORLD's rank and size are [`id`](Parallelizer::id)
//! and [`nprocs`](Parallelizer::nprocs), rank 0 is main.
//!
//! # Two ways to run
//!
//! - **Served** (the documented default): `fn main` carries
//!   `#[parallelizer::main]`, which calls [`worker_entry`](crate::worker_entry)
//!   first. When the process was started by an MPI launcher (one of
//!   `OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`, `PMIX_RANK`, `MV2_COMM_WORLD_SIZE`
//!   is set) and COMM_WORLD has more than one rank, every rank initializes
//!   MPI there; ranks other than 0 never run the body: they serve the
//!   registered tasks that rank 0 dispatches (the task id in a header sent
//!   down a tree of point-to-point messages, then a broadcast of the
//!   configuration and arguments if there are any; every rank runs the task),
//!   the mpi4py.futures / schwimmbad model. When rank 0 exits, its exit
//!   handler sends a shutdown header and every rank finalizes MPI. Set
//!   `PARALLELIZER_MPI_SERVE=0` to run such a program SPMD instead.
//! - **SPMD**: without the guard (or with one rank), every rank runs `main`;
//!   `from_config("mpi")` on every rank joins the same parallelizer,
//!   [`in_region`](Parallelizer::in_region) is true everywhere and
//!   `run(closure)` runs the closure on every rank, each rank getting its
//!   own result.
//!
//! A binary started without a launcher is a single rank (MPI singleton
//! initialization). If the host program initialized MPI itself, the
//! backend uses it and leaves finalization to the host; otherwise
//! `MPI_Finalize` runs in an exit handler (see `world.rs`).
//!
//! MPI is initialized with `MPI_THREAD_MULTIPLE` (Open MPI and MPICH
//! provide it), so any thread of a rank may communicate. The environment
//! variable `PARALLELIZER_MPI_THREAD_LEVEL` (`serialized`, `funneled`,
//! `single`; mpi4py's `rc.thread_level`) asks for less, as does a host
//! program that initialized MPI itself. Open MPI 4.1 takes no lock inside
//! its calls only at `SINGLE` (a raw 8 B ping-pong took 0.25–0.29 µs one
//! way there against 0.32–0.39 µs at the other three levels, on a 2-core
//! AMD EPYC VM). The backend keeps to the level: under `SERIALIZED` its calls take turns (one
//! thread blocked in a receive holds up the others' calls), under
//! `FUNNELED` and `SINGLE` a call from another thread than MPI's main
//! thread is an [`Error::Mpi`]. Below `MULTIPLE` a failure ends the job
//! even under ULFM, whose release of blocked ranks revokes communicators
//! from another thread.
//!
//! # Messages
//!
//! Collectives are MPI collectives on a private duplicate of COMM_WORLD:
//! `MPI_Bcast`, `MPI_Scatterv`/`MPI_Gatherv` with the uneven split of
//! [`chunk_sizes`](crate::chunk_sizes), `MPI_Barrier`. Plain data (the
//! `*_pod` calls) travels in its native MPI datatype with no serialization;
//! anything else is encoded with the serde codec after an exchange of
//! sizes, so `Vec<String>` and nested structs work. Calls above
//! `max_message_bytes` (option; 1 GiB by default, MPI counts being C
//! `int`s) are split into rounds transparently.
//!
//! # Failure
//!
//! Every region ends with an agreement among the ranks on how it ended
//! (`fate.rs`). How far the job survives a failure depends on the MPI
//! library, which the backend inspects at run time (`ulfm.rs`; one binary
//! works with both; rank 0 prints the mode at start-up, see
//! [`Mpi::fault_tolerant`]):
//!
//! - **With the ULFM extension** (Open MPI 5 started with `mpirun --with-ft
//!   ulfm`): a panic or `Err` on any rank revokes the region's
//!   communicator and those of the groups it made in the region
//!   (`group.rs`), which releases every rank blocked with it; the ranks
//!   agree, main gets that rank's [`Error::WorkerPanicked`] or
//!   [`Error::TaskFailed`] (its error itself), and the next region runs on a
//!   fresh communicator. A rank that dies is [`Error::WorkerDied`] and the
//!   job goes on with the survivors: [`nprocs`](Parallelizer::nprocs) drops
//!   and the ranks above the dead one move down. The configured `timeout`
//!   is the deadline of each `run`: [`Error::Timeout`] names the rank still
//!   running its task, which finishes it before the next region starts.
//! - **Without** (Open MPI 4.1, MPICH): if a task failed on some rank and
//!   every rank still reaches the end of the region, they all return that
//!   rank's error. If the others do not arrive within `abort_grace_ms`
//!   (option, default 1000) they are blocked waiting for the failed rank, so
//!   it prints its rank and message on stderr and calls `MPI_Abort`, which
//!   ends the whole job (rsmpi issue 197). A late rank does the same at the
//!   deadline, and so does a panic on the main thread outside any region.
//!
//! Option `verify` makes mismatched collectives and waits for a rank that
//! has finished its task errors instead of hangs (`verify.rs`); it checks
//! the region's own collectives, not those of its groups. In SPMD, a
//! region started while some rank has already returned from `main` fails
//! at once naming that rank. MPI errors are [`Error::Mpi`] with MPI's error
//! string.
//!
//! # Options
//!
//! `Config::initializer` (a registered task) runs once on every rank at
//! the outermost `enter`, like the other backends. Backend options:
//!
//! - `threads_per_rank`: rayon threads per rank for `map`, `map_with` and
//!   `starmap` (hybrid MPI + threads); default 1, or the environment
//!   variable `PARALLELIZER_THREADS_PER_RANK`.
//! - `max_message_bytes`: the largest single MPI call (see above); every
//!   rank must use the same value (they do when they build the same
//!   `Config`; served workers get main's).
//! - `abort_grace_ms`: see Failure.
//! - `verify` (`true`/`false`, default false): collectives first exchange
//!   which call they are (one small `MPI_Allgather` each), see Failure.
//!
//! # Modules
//!
//! - this file: the [`Mpi`] parallelizer (construction, options, how
//!   messages are framed);
//! - `messages`: point-to-point messages and the collectives on one
//!   communicator;
//! - `group`: a group's handle on its own communicator, tied to its region;
//! - `serve`: the region protocol (dispatch, the serving loop, the
//!   shutdown, the worker hook, the SPMD entry and exit);
//! - `fate`: how a region ends (the region running here, the agreement
//!   with or without ULFM, the deadline watchdog);
//! - `ulfm`: the fault-tolerance extension, found at run time;
//! - `verify`: the `verify` option;
//! - `world`: process-global MPI state (initialization, communicators,
//!   regions running here, panic hook, finalization at exit);
//! - `datatype`: plain data in native MPI datatypes (the `NativePod` calls);
//! - `reduce`: reductions (`NativeReduce`: `MPI_Reduce`, `MPI_Allreduce`,
//!   `MPI_Scan` with MPI's ops, `MPI_Allgatherv`) and the message-level
//!   reductions with any combine;
//! - `handles`: the communicators and datatypes the backend owns, and when
//!   and how MPI may be called (thread level, error codes);
//! - `calls`: the MPI calls that move data, over the checked C API
//!   (`handles`, `calls`, `reduce` and `ulfm` hold the backend's `unsafe`
//!   code, but for `world`'s exit handling);
//! - `plan`: how calls larger than one MPI message are split.

mod agree;
mod announce;
mod calls;
mod datatype;
mod fate;
mod group;
mod handles;
mod held;
mod messages;
mod part;
mod plan;
mod posted;
mod reduce;
mod serve;
mod ulfm;
mod verify;
mod wait;
mod wire;
mod world;

/// The rsmpi crate this backend is built on, for programs that also call
/// MPI directly (same version, so one `Universe`). Initialize it before the
/// first `from_config("mpi")` to keep ownership of MPI, or use
/// `rsmpi::topology::SimpleCommunicator::world()` after.
pub use mpi as rsmpi;

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::{Op, Tag};
use crate::parallelizer::{
    AnySource, Core, Job, NativePod, NativeReduce, Parallelizer, Region, check_rank,
};
use crate::registry::FromConfig;
use crate::task::initializer_region;
use crate::tree::Combine;

use handles::Comm;
use std::sync::Arc;
use wire::{
    TAG_BODY, TAG_HEADER, TAG_POD, TAG_POD8, TAG_SERDE, arrived, bcast_framed, bcast_words,
    describe, described, lengths, wire,
};
use world::World;

/// The MPI backend; see the [module docs](self).
///
/// ```no_run
/// // mpirun -n 4 target/release/examples/mpi
/// let par = parallelizer_core::from_config("mpi").unwrap();
/// println!("rank {} of {}", par.id(), par.nprocs());
/// ```
#[crate::parallelizer(name = "mpi", crate = "crate")]
pub struct Mpi {
    core: Core,
    world: &'static World,
    role: Role,
    /// A group's own communicator (`Role::Group`); the other handles use
    /// the region's, or outside a region the world's data communicator,
    /// which a failure under ULFM replaces (`data_call`).
    comm: Comm,
    /// The communicator of the point-to-point parts of plain-data
    /// scatters and gathers, apart from the user's messages: a group's
    /// duplicate of its own (`Role::Group`); the other handles use the
    /// region's, or the world's (`plain_call`).
    plain: Comm,
    /// The group id of a group's handle (0 otherwise).
    group: u64,
    /// The region a group's handle was made in (`group.rs`).
    region: Option<Arc<fate::Current>>,
    /// Largest single MPI call, in bytes.
    limit_bytes: usize,
    grace: Duration,
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Option `verify`: collectives exchange their calls first (`verify.rs`).
    verify: bool,
    /// The configuration as a served main sends it to the workers, encoded
    /// on its first dispatch (`serve.rs`: 80 ns a region otherwise).
    wire_config: std::sync::OnceLock<Vec<u8>>,
    /// Messages posted and maybe still on their way (`posted.rs`).
    posted: posted::Posted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Every rank runs `main`.
    Spmd,
    /// Rank 0 of a served job: dispatches regions to the workers.
    Main,
    /// A rank serving rank 0's regions.
    Worker,
    /// A rank's handle in a group (made inside a region, or for a region
    /// of a group made on main): its own communicator, freed on drop.
    Group,
}

impl Mpi {
    /// Joins MPI (initializing it on first use) with `config`'s options.
    /// `config.nprocs`, if set, must equal the number of ranks the launcher
    /// started.
    pub fn new(config: Config) -> Result<Mpi> {
        let world = world::world()?;
        let role = if serve::served() {
            if world.rank() == 0 {
                Role::Main
            } else {
                Role::Worker
            }
        } else {
            Role::Spmd
        };
        Mpi::with_role(config, world, role)
    }

    fn with_role(mut config: Config, world: &'static World, role: Role) -> Result<Mpi> {
        if !config.options.contains_key("threads_per_rank") {
            // A batch script sets it like OMP_NUM_THREADS; kept in the
            // configuration, which served workers receive from main.
            if let Ok(n) = std::env::var("PARALLELIZER_THREADS_PER_RANK") {
                config = config.option("threads_per_rank", n.trim());
            }
        }
        if let Some(n) = config.nprocs.filter(|&n| n != world.size()) {
            return Err(Error::Config(format!(
                "`{config}` asks for {n} ranks but the MPI job has {} (the launcher decides: \
                 `mpirun -n {n} ...`); leave NPROCS out for mode `mpi`",
                world.size()
            )));
        }
        let mut o = config.options();
        let threads: usize = o.get("threads_per_rank", 1)?;
        let limit_bytes = o
            .get::<usize>("max_message_bytes", 1 << 30)?
            .clamp(1, i32::MAX as usize);
        let grace = Duration::from_millis(o.get("abort_grace_ms", 1000)?);
        let verify = o.get("verify", false)?;
        o.finish()?;
        if threads == 0 {
            return Err(Error::Config(
                "option `threads_per_rank` of mode `mpi` must be at least 1".into(),
            ));
        }
        // Shared arrays' handles arrive as tokens naming the sender's memfd.
        #[cfg(target_os = "linux")]
        crate::segment::set_token_resolver(crate::segment::resolve);
        let pool = if threads > 1 {
            let rank = world.rank();
            Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |i| format!("parallelizer-mpi-{rank}-{i}"))
                    .build()
                    .map_err(|e| Error::Config(format!("threads_per_rank = {threads}: {e}")))?,
            ))
        } else {
            None
        };
        if role == Role::Spmd {
            // At exit, an SPMD rank tells ranks that start a region without
            // it that it has left (see `serve::leave`).
            world::before_finalize(serve::leave);
        }
        Ok(Mpi {
            core: Core::new(config),
            world,
            role,
            comm: world.data(),
            plain: world.plain(),
            group: 0,
            region: None,
            limit_bytes,
            grace,
            threads,
            pool,
            verify,
            wire_config: std::sync::OnceLock::new(),
            posted: Default::default(),
        })
    }

    /// Whether this process serves rank 0's tasks (served model, rank > 0).
    pub fn is_serving_worker(&self) -> bool {
        self.role == Role::Worker
    }

    /// Whether a failure is an error and the job goes on (the ULFM
    /// extension is active: Open MPI 5 started with `mpirun --with-ft
    /// ulfm`), rather than the end of the job (`MPI_Abort`). See the
    /// module docs, Failure.
    pub fn fault_tolerant(&self) -> bool {
        self.world.faults.is_ulfm()
    }

    /// The MPI library the process loaded (`MPI_Get_library_version`'s
    /// first line).
    pub fn library(&self) -> &str {
        &self.world.library
    }

    /// Runs `f`, a call that moves user data, on the communicator of the
    /// region running here (a group's handle: its group's, `group.rs`;
    /// outside a region, the world's). Once the ranks
    /// agreed that the region failed, the call fails at once with
    /// [`Error::Aborted`]; a call released by ULFM (a revoked communicator,
    /// a failed peer) brings this rank into that agreement (`fate.rs`).
    fn data_call<R>(&self, f: impl FnOnce(Comm) -> Result<R>) -> Result<R> {
        let (comm, _, cur) = self.call_comms();
        self.checked_call(comm, cur.as_deref(), f)
    }

    /// [`data_call`](Mpi::data_call) for a receive: `f` also gets when the
    /// receive gives up ([`recv_deadline`](Mpi::recv_deadline)), from the
    /// same look at the region.
    fn receive_call<R>(&self, f: impl FnOnce(Comm, Option<Instant>) -> Result<R>) -> Result<R> {
        let (comm, _, cur) = self.call_comms();
        let deadline = self.recv_deadline(cur.as_deref());
        self.checked_call(comm, cur.as_deref(), |comm| f(comm, deadline))
    }

    /// [`data_call`](Mpi::data_call) on the communicator of plain-data
    /// parts (the region's, a group's, or outside a region the world's).
    fn plain_call<R>(&self, f: impl FnOnce(Comm) -> Result<R>) -> Result<R> {
        let (_, plain, cur) = self.call_comms();
        self.checked_call(plain, cur.as_deref(), f)
    }

    /// `f` on `comm`, under the checks of the region `cur` (see
    /// [`data_call`](Mpi::data_call)).
    fn checked_call<R>(
        &self,
        comm: Comm,
        cur: Option<&fate::Current>,
        f: impl FnOnce(Comm) -> Result<R>,
    ) -> Result<R> {
        let Some(cur) = cur else {
            return f(comm);
        };
        if let Some(v) = cur.verdict() {
            return Err(v.release());
        }
        let result = {
            let _busy = cur.busy();
            f(comm)
        };
        result.map_err(|e| self.failed_call(cur, comm, e))
    }

    /// [`data_call`](Mpi::data_call) for the collective `op`, checked first
    /// against the other ranks' calls when option `verify` is on.
    fn collective_call<R>(&self, op: Op, f: impl FnOnce(Comm) -> Result<R>) -> Result<R> {
        self.data_call(|comm| {
            if self.verify {
                if let Some(cur) = fate::current() {
                    self.verify_call(&cur, comm, op)?;
                }
            }
            f(comm)
        })
    }

    /// The MPI threading level the library provides.
    pub fn threading(&self) -> mpi::environment::Threading {
        self.world.threading
    }

    /// Whether [`post_msg`](Parallelizer::post_msg) posts (see
    /// [`any_source`](Parallelizer::any_source)).
    fn posts(&self) -> bool {
        !self.verify || self.world.faults.is_ulfm()
    }

    fn limit(&self, size: usize) -> usize {
        (self.limit_bytes / size.max(1)).max(1)
    }
}

impl FromConfig for Mpi {
    fn from_config(config: &Config) -> Result<Mpi> {
        Mpi::new(config.clone())
    }
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.id())
            .field("size", &self.nprocs())
            .field("role", &self.role)
            .field("threads_per_rank", &self.threads)
            .field("verify", &self.verify)
            .field("library", &self.world.library)
            .field("failures", &self.world.faults.to_string())
            .finish()
    }
}

impl Parallelizer for Mpi {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        match self.role {
            Role::Group => self.comm.rank(),
            _ => self.world.rank(),
        }
    }
    fn nprocs(&self) -> usize {
        match self.role {
            Role::Group => self.comm.size(),
            _ => self.world.size(),
        }
    }
    fn world_rank(&self) -> usize {
        self.world.rank()
    }
    fn in_region(&self) -> bool {
        self.role != Role::Main || world::regions() > 0
    }

    /// Memfds that the ranks of one node open through `/proc/PID/fd` (MPI
    /// ranks have no socket to pass descriptors on); see `segment::memfd`.
    /// Ranks on other nodes get an error naming the cause when a handle
    /// reaches them.
    #[cfg(target_os = "linux")]
    fn shared_memory(&self) -> Result<&dyn crate::segment::SharedMemory> {
        Ok(&crate::segment::MEMFD_BY_TOKEN)
    }

    /// Runs the configured worker initializer once on every rank (main
    /// included), as a region, at the outermost `enter`; its failure on any
    /// rank is the enter's error. MPI itself is process-wide: started on
    /// first use, finalized at exit, not here.
    fn initialize(&self) -> Result<()> {
        if world::regions() > 0 || self.role == Role::Group {
            // Entered inside a region: the ranks are already running.
            return Ok(());
        }
        match initializer_region(self.core.config())? {
            Some(region) => self.run_region(region).map(drop),
            None => Ok(()),
        }
    }

    fn send_msg(&self, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let bytes = wire(&msg)?;
        self.data_call(|comm| self.send_bytes(comm, &msg, &bytes, to))
    }

    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        self.receive_call(|comm, deadline| self.recv_bytes(comm, from, deadline))
    }

    /// Polls each rank of `from` in turn (`messages.rs`): main's wait for
    /// the result of a map's chunk.
    fn recv_any_msg(
        &self,
        from: &[usize],
        _tag: Tag,
        until: Option<Instant>,
    ) -> Result<Option<(usize, Msg)>> {
        for &r in from {
            check_rank(self, r)?;
        }
        self.receive_call(|comm, deadline| self.recv_any_on(comm, from, until, deadline))
    }

    /// A send waits for its receiver once a message is past MPI's eager
    /// limit, a posted one does not (`posted.rs`): a map queues ahead. Not
    /// under option `verify` without ULFM, where a region may fail and the
    /// job go on on the same communicator: a chunk queued for a rank that
    /// failed would wait there for the next region's receive.
    fn any_source(&self) -> AnySource {
        if self.posts() {
            AnySource::Posted
        } else {
            AnySource::Unbuffered
        }
    }

    fn post_msg(&self, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        if !self.posts() {
            return self.send_msg(msg, to, tag);
        }
        check_rank(self, to)?;
        self.data_call(|comm| self.post_on(comm, msg, to))
    }

    fn flush_posted(&self) -> Result<()> {
        self.receive_call(|_, deadline| match self.posted.flush(deadline)? {
            None => Ok(()),
            Some(to) => Err(self.gave_up(to)),
        })
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // Regions are counted per process: a handle built inside a task
        // (rather than the one the task got) is inside the region too.
        let top = world::regions() == 0;
        match (self.role, top) {
            // Inside a region (and in a group's) every rank runs a nested
            // `run` itself.
            (_, false) | (Role::Group, _) => region.run_here(self),
            (Role::Main, true) => self.dispatch(region),
            (Role::Spmd | Role::Worker, true) => {
                if self.role == Role::Spmd {
                    serve::enter_spmd(self.world)?;
                }
                let (task, args) = region.into_parts();
                self.run_settled(|| task.run_here(self, args))
            }
        }
    }

    fn broadcast_msg(&self, msg: Option<Msg>, tag: Tag) -> Result<Msg> {
        self.collective_call(tag.op(), |comm| self.broadcast_on(comm, msg))
    }

    fn scatter_msg(&self, chunks: Option<Vec<Msg>>, tag: Tag) -> Result<Msg> {
        self.collective_call(tag.op(), |comm| self.scatter_on(comm, chunks))
    }

    fn gather_msg(&self, msg: Msg, tag: Tag) -> Result<Option<Vec<Msg>>> {
        self.collective_call(tag.op(), |comm| self.gather_on(comm, msg))
    }

    fn barrier(&self, tag: Tag) -> Result<()> {
        self.collective_call(tag.op(), |comm| {
            if comm.size() == 1 {
                return Ok(());
            }
            calls::barrier(comm)
        })
    }

    fn reduce_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Option<Msg>> {
        self.reduce_at_main(msg, combine, tag)
    }

    fn allreduce_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Msg> {
        self.allreduce_at_main(msg, combine, tag)
    }

    fn scan_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Msg> {
        self.scan_at_main(msg, combine, tag)
    }

    fn native_pod(&self) -> Option<&dyn NativePod> {
        // With `verify`, plain data goes through the checked message calls.
        (!self.verify).then_some(self as &dyn NativePod)
    }

    fn native_reduce(&self) -> Option<&dyn NativeReduce> {
        // With `verify`, reductions go through the checked message calls.
        (!self.verify).then_some(self as &dyn NativeReduce)
    }

    fn threads_per_rank(&self) -> usize {
        self.threads
    }

    fn group_id(&self) -> u64 {
        self.group
    }

    /// A group's handle on a communicator of its own
    /// (`MPI_Comm_create_group` among the members), tied to the region
    /// (`group.rs`).
    fn group_handle(&self, members: &[usize], group: u64) -> Result<Option<Arc<dyn Parallelizer>>> {
        self.group_of(members, group).map(Some)
    }

    fn run_jobs(&self, jobs: Vec<Job<'_>>) {
        match &self.pool {
            Some(pool) => pool.scope(|s| {
                for job in jobs {
                    s.spawn(move |_| job());
                }
            }),
            None => jobs.into_iter().for_each(|job| job()),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors: every error of the backend is built by one of these functions,
// by `handles::mpi_error` (a failed MPI call) or by the option checks of
// `Mpi::with_role`.

/// A collective called with data on the wrong ranks.
fn missing(op: Op) -> Error {
    Error::ContractViolation(format!(
        "main must pass Some(data) to {op}; workers pass None"
    ))
}

/// Arguments that do not fit the collective (a wrong number of chunks, a
/// buffer shorter than the counts).
fn contract_error(detail: String) -> Error {
    Error::ContractViolation(detail)
}

/// A message between the ranks that breaks the backend's protocol (an
/// unknown tag or dispatch kind, an inconsistent header).
fn protocol_error(detail: String) -> Error {
    Error::Protocol(detail)
}

/// A point-to-point receive from `rank` that waited `after` in vain.
fn receive_timeout(rank: usize, after: Duration) -> Error {
    Error::Timeout {
        op: Op::Receive,
        rank,
        after,
    }
}
