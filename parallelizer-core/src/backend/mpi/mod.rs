#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]
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
//!   registered tasks that rank 0 dispatches (a broadcast of the task id,
//!   the configuration and the arguments; then every rank runs the task),
//!   the mpi4py.futures / schwimmbad model. When rank 0 exits, its exit
//!   handler broadcasts a shutdown and every rank finalizes MPI. Set
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
//! provide it), so any thread of a rank may communicate. If the library
//! provides less, the backend keeps to it: under `MPI_THREAD_SERIALIZED`
//! its calls take turns, under `FUNNELED` a call from another thread than
//! MPI's main thread is an [`Error::Mpi`].
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
//! Every region ends with an agreement among the ranks (a non-blocking
//! all-reduce on a control communicator). If a task failed or panicked on
//! some rank and every rank still reaches the end of the region, they all
//! learn of it: main gets [`Error::WorkerPanicked`] or
//! [`Error::TaskFailed`] with that rank and message. If the other ranks do
//! not arrive within `abort_grace_ms` (option, default 1000) they are
//! blocked waiting for the failed rank, so it prints its rank and message
//! on stderr and calls `MPI_Abort`, which ends the whole job with a
//! non-zero status (rsmpi issue 197). A panic outside any region aborts the
//! job the same way when it happens on the main thread (panics of other
//! threads belong to whoever joins them). MPI errors are [`Error::Mpi`]
//! with MPI's error string. Collectives do not honour the configured
//! `timeout` (MPI has no cancellable collectives); point-to-point
//! `receive` does.
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
//!
//! # Modules
//!
//! - this file: the [`Mpi`] parallelizer (construction, options, messages);
//! - `serve`: the region protocol (dispatch, settle, the serving loop, the
//!   shutdown, the worker hook);
//! - `world`: process-global MPI state (initialization, communicators,
//!   regions running here, panic hook, finalization at exit);
//! - `datatype`: plain data in native MPI datatypes (the `NativePod` calls);
//! - `reduce`: reductions (`NativeReduce`: `MPI_Reduce`, `MPI_Allreduce`,
//!   `MPI_Scan` with MPI's ops, `MPI_Allgatherv`) and the message-level
//!   reductions with any combine;
//! - `handles`: the communicators and datatypes the backend owns, and when
//!   and how MPI may be called (thread level, error codes);
//! - `calls`: the MPI calls that move data, over the checked C API
//!   (`handles`, `calls` and `reduce` hold the backend's `unsafe` code, but
//!   for `world`'s `atexit` registration);
//! - `plan`: how calls larger than one MPI message are split.

mod calls;
mod datatype;
mod handles;
mod plan;
mod reduce;
mod serve;
mod wire;
mod world;

/// The rsmpi crate this backend is built on, for programs that also call
/// MPI directly (same version, so one `Universe`). Initialize it before the
/// first `from_config("mpi")` to keep ownership of MPI, or use
/// `rsmpi::topology::SimpleCommunicator::world()` after.
pub use mpi as rsmpi;

use std::ffi::c_int;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};
use crate::parallelizer::{
    AnySource, Core, Job, NativePod, NativeReduce, Parallelizer, Region, check_rank,
};
use crate::registry::FromConfig;
use crate::task::initializer_region;
use crate::tree::Combine;

use handles::{Comm, byte_type, u64_type};
use std::sync::Arc;
use wire::{
    Header, TAG_BODY, TAG_HEADER, TAG_POD, TAG_POD8, TAG_SERDE, arrived, bcast_framed, bcast_words,
    describe, lengths, wire,
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
    /// The communicator of this handle's messages and collectives: the
    /// world's data communicator, or a group's own.
    comm: Comm,
    /// The communicator of the point-to-point parts of plain-data
    /// scatters and gathers, apart from the user's messages on `comm`: the
    /// world's control communicator, or a duplicate of a group's own.
    plain: Comm,
    /// The group id of a group's handle (0 otherwise).
    group: u64,
    /// Largest single MPI call, in bytes.
    limit_bytes: usize,
    grace: Duration,
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
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
            if world.rank == 0 {
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
        if let Some(n) = config.nprocs.filter(|&n| n != world.size) {
            return Err(Error::Config(format!(
                "`{config}` asks for {n} ranks but the MPI job has {} (the launcher decides: \
                 `mpirun -n {n} ...`); leave NPROCS out for mode `mpi`",
                world.size
            )));
        }
        let mut o = config.options();
        let threads: usize = o.get("threads_per_rank", 1)?;
        let limit_bytes = o
            .get::<usize>("max_message_bytes", 1 << 30)?
            .clamp(1, i32::MAX as usize);
        let grace = Duration::from_millis(o.get("abort_grace_ms", 1000)?);
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
            let rank = world.rank;
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
        Ok(Mpi {
            core: Core::new(config),
            world,
            role,
            comm: world.data,
            plain: world.ctrl,
            group: 0,
            limit_bytes,
            grace,
            threads,
            pool,
        })
    }

    /// Whether this process serves rank 0's tasks (served model, rank > 0).
    pub fn is_serving_worker(&self) -> bool {
        self.role == Role::Worker
    }

    /// The MPI threading level the library provides.
    pub fn threading(&self) -> mpi::environment::Threading {
        self.world.threading
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
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("role", &self.role)
            .field("threads_per_rank", &self.threads)
            .finish()
    }
}

impl Parallelizer for Mpi {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        self.comm.rank()
    }
    fn nprocs(&self) -> usize {
        self.comm.size()
    }
    fn world_rank(&self) -> usize {
        self.world.rank
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
        let comm = self.comm;
        if bytes.len() <= self.limit(1) {
            // One MPI message; the receiver learns its size from the probe.
            let tag = match msg.encoding() {
                Encoding::Pod if msg.pod_align() == 8 && bytes.len() % 8 == 0 => TAG_POD8,
                Encoding::Pod => TAG_POD,
                _ => TAG_SERDE,
            };
            return calls::send_one(comm, &bytes, to, tag);
        }
        // Too large for one MPI message: a header, then the pieces.
        let header = describe(msg.encoding(), bytes.len());
        let header = bytemuck::cast_slice(&header);
        calls::send(comm, u64_type(), header, to, TAG_HEADER, 2)?;
        calls::send(comm, byte_type(), &bytes, to, TAG_BODY, self.limit(1))
    }

    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let comm = self.comm;
        let timeout = self.core.config().timeout;
        let Some((tag, count)) = calls::probe_any(comm, from, timeout.map(|t| Instant::now() + t))?
        else {
            return Err(receive_timeout(from, timeout.unwrap_or_default()));
        };
        self.recv_probed(from, tag, count)
    }

    /// Polls each rank of `from` in turn (a probe of one source never
    /// returns a message of another, which could not be left for later),
    /// yielding and then sleeping briefly between rounds so that the rank's
    /// own work keeps its core: main's wait for the result of a map's chunk.
    fn recv_any_msg(
        &self,
        from: &[usize],
        _tag: Tag,
        until: Option<Instant>,
    ) -> Result<Option<(usize, Msg)>> {
        for &r in from {
            check_rank(self, r)?;
        }
        let comm = self.comm;
        let timeout = self.core.config().timeout;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut rounds = 0u32;
        loop {
            for &r in from {
                if let Some((tag, count)) = calls::probe_any(comm, r, Some(Instant::now()))? {
                    return self.recv_probed(r, tag, count).map(|m| Some((r, m)));
                }
            }
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(None);
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(receive_timeout(from[0], timeout.unwrap_or_default()));
            }
            rounds += 1;
            if rounds < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// A send waits for its receiver once a message is past MPI's eager
    /// limit: a map keeps one chunk in flight per rank.
    fn any_source(&self) -> AnySource {
        AnySource::Unbuffered
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
                let (task, args) = region.into_parts();
                self.run_settled(|| task.run_here(self, args))
            }
        }
    }

    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        let comm = self.comm;
        if self.comm.size() == 1 {
            return msg.ok_or_else(|| missing(Op::Broadcast));
        }
        let (mut header, body) = match &msg {
            Some(m) if self.on_main() => {
                let bytes = wire(m)?.into_owned();
                (describe(m.encoding(), bytes.len()), Some(bytes))
            }
            None if !self.on_main() => ([0; 2], None),
            _ => return Err(missing(Op::Broadcast)),
        };
        let limit = self.limit(1);
        let bytes = bcast_framed(comm, 0, &mut header, body, limit, Header::Blocking)?;
        match msg {
            Some(m) => Ok(m),
            None => Ok(arrived(&header, bytes)),
        }
    }

    fn scatter_msg(&self, chunks: Option<Vec<Msg>>, _tag: Tag) -> Result<Msg> {
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let comm = self.comm;
        // Main encodes the workers' chunks back to back; its own stays a value.
        let mut own = None;
        let mut send = Vec::new();
        let mut header = vec![0u64; 2 * size];
        if rank == 0 {
            let chunks = chunks.ok_or_else(|| missing(Op::Scatter))?;
            if chunks.len() != size {
                return Err(contract_error(format!(
                    "scatter needs one chunk per rank: {} chunks for {size} ranks",
                    chunks.len()
                )));
            }
            let mut chunks = chunks.into_iter();
            own = chunks.next();
            for (i, chunk) in chunks.enumerate() {
                let before = send.len();
                match chunk.pod_bytes() {
                    Some(b) => send.extend_from_slice(b),
                    None => chunk.encode_into(&mut send)?,
                }
                let desc = describe(chunk.encoding(), send.len() - before);
                header[2 * (i + 1)..2 * (i + 2)].copy_from_slice(&desc);
            }
        } else if chunks.is_some() {
            return Err(missing(Op::Scatter));
        }
        bcast_words(comm, &mut header, 0)?;
        let counts = lengths(&header);
        let mut mine = vec![0u8; counts[rank]];
        let send = (rank == 0).then_some(&send[..]);
        let limit = self.limit(1);
        calls::scatterv(comm, byte_type(), send, &counts, &mut mine, limit)?;
        match own {
            Some(m) => Ok(m),
            None => Ok(arrived(&header[2 * rank..], mine)),
        }
    }

    fn gather_msg(&self, msg: Msg, _tag: Tag) -> Result<Option<Vec<Msg>>> {
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let comm = self.comm;
        // Main's own message stays a value and is not sent.
        let bytes = if rank == 0 {
            Vec::new()
        } else {
            wire(&msg)?.into_owned()
        };
        let header = calls::allgather_u64(comm, &describe(msg.encoding(), bytes.len()))?;
        let counts = lengths(&header);
        let mut all = (rank == 0).then(|| vec![0u8; counts.iter().sum()]);
        let limit = self.limit(1);
        calls::gatherv(
            comm,
            byte_type(),
            &bytes,
            &counts,
            all.as_deref_mut(),
            limit,
        )?;
        let Some(all) = all else { return Ok(None) };
        let mut out = Vec::with_capacity(size);
        out.push(msg);
        let mut at = counts[0];
        for r in 1..size {
            out.push(arrived(&header[2 * r..], all[at..at + counts[r]].to_vec()));
            at += counts[r];
        }
        Ok(Some(out))
    }

    fn barrier(&self, _tag: Tag) -> Result<()> {
        if self.comm.size() == 1 {
            return Ok(());
        }
        calls::barrier(self.comm)
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
        Some(self)
    }

    fn native_reduce(&self) -> Option<&dyn NativeReduce> {
        Some(self)
    }

    fn threads_per_rank(&self) -> usize {
        self.threads
    }

    fn group_id(&self) -> u64 {
        self.group
    }

    /// A group's handle on a communicator of its own
    /// (`MPI_Comm_create_group` among the members).
    fn group_handle(&self, members: &[usize], group: u64) -> Result<Option<Arc<dyn Parallelizer>>> {
        // Any tag up to 32767 (the least MPI_TAG_UB) tells concurrent
        // creations apart; every member derives the same from the id.
        let tag = (group % 32768) as c_int;
        let comm = handles::create_group(self.comm, members, tag)?;
        // Collective over the members too, which all make the group now.
        let plain = match handles::dup_returning_errors(comm) {
            Ok(plain) => plain,
            Err(e) => {
                handles::free(comm);
                return Err(e);
            }
        };
        let handle: Arc<dyn Parallelizer> = Arc::new(Mpi {
            core: Core::for_group(self.core.config_arc().clone(), 0),
            world: self.world,
            role: Role::Group,
            comm,
            plain,
            group,
            limit_bytes: self.limit_bytes,
            grace: self.grace,
            threads: self.threads,
            pool: self.pool.clone(),
        });
        handle.core().bind_handle(Arc::downgrade(&handle));
        Ok(Some(handle))
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

impl Mpi {
    /// The message whose probe found MPI tag `tag` and `count` bytes from
    /// rank `from`.
    fn recv_probed(&self, from: usize, tag: c_int, count: usize) -> Result<Msg> {
        let comm = self.comm;
        match tag {
            TAG_POD => Ok(Msg::from_bytes(
                Encoding::Pod,
                calls::recv_exact::<u8>(comm, from, tag, count)?,
            )),
            TAG_POD8 if count.is_multiple_of(8) => {
                let words = calls::recv_exact::<u64>(comm, from, tag, count)?;
                Ok(Msg::from_words(words, count))
            }
            TAG_SERDE => Ok(Msg::from_bytes(
                Encoding::Serde,
                calls::recv_exact::<u8>(comm, from, tag, count)?,
            )),
            TAG_HEADER => {
                let mut header = [0u64; 2];
                let words = bytemuck::cast_slice_mut(&mut header);
                calls::recv(comm, u64_type(), words, from, TAG_HEADER, 2)?;
                let mut body = vec![0u8; header[1] as usize];
                calls::recv(comm, byte_type(), &mut body, from, TAG_BODY, self.limit(1))?;
                Ok(arrived(&header, body))
            }
            other => Err(protocol_error(format!(
                "unexpected point-to-point message (tag {other}) from rank {from}: \
                 is another library using the parallelizer's communicator?"
            ))),
        }
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        if self.role == Role::Group {
            // This handle alone holds its group's communicators.
            handles::free(self.plain);
            handles::free(self.comm);
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
