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

mod plan;
mod world;

/// The rsmpi crate this backend is built on, for programs that also call
/// MPI directly (same version, so one `Universe`). Initialize it before the
/// first `from_config("mpi")` to keep ownership of MPI, or use
/// `rsmpi::topology::SimpleCommunicator::world()` after.
pub use mpi as rsmpi;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::entry::WorkerHook;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg, decode_serde, encode_serde};
use crate::op::{Op, Tag};
use crate::parallelizer::{Core, Job, NativePod, Parallelizer, PodType, Region, check_rank};
use crate::registry::FromConfig;
use crate::runtime::set_current;
use crate::task::{initializer_region, task_by_id};

use world::{Comm, Datatype, REGIONS, World};

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
    /// Largest single MPI call, in bytes.
    limit_bytes: usize,
    grace: Duration,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Every rank runs `main`.
    Spmd,
    /// Rank 0 of a served job: dispatches regions to the workers.
    Main,
    /// A rank serving rank 0's regions.
    Worker,
}

/// Dispatch header kinds (first word of the header broadcast).
const SHUTDOWN: u64 = 0;
const REGION: u64 = 1;

/// The piece size of the backend's own broadcasts on the control
/// communicator, the same on every rank whatever the configurations.
const CTRL_LIMIT: usize = 1 << 30;

/// Failure kinds in the end-of-region report.
const FAILED: u8 = 0;
const PANICKED: u8 = 1;

impl Mpi {
    /// Joins MPI (initializing it on first use) with `config`'s options.
    /// `config.nprocs`, if set, must equal the number of ranks the launcher
    /// started.
    pub fn new(config: Config) -> Result<Mpi> {
        let world = world::world()?;
        let role = if world.served.load(Ordering::SeqCst) {
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
        let threads = config
            .parsed_option::<usize>("threads_per_rank")?
            .unwrap_or(1);
        if threads == 0 {
            return Err(Error::Config(
                "option `threads_per_rank` of mode `mpi` must be at least 1".into(),
            ));
        }
        let limit_bytes = config
            .parsed_option::<usize>("max_message_bytes")?
            .unwrap_or(1 << 30)
            .clamp(1, i32::MAX as usize);
        let grace = Duration::from_millis(
            config
                .parsed_option::<u64>("abort_grace_ms")?
                .unwrap_or(1000),
        );
        let pool = if threads > 1 {
            let rank = world.rank;
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |i| format!("parallelizer-mpi-{rank}-{i}"))
                    .build()
                    .map_err(|e| Error::Config(format!("threads_per_rank = {threads}: {e}")))?,
            )
        } else {
            None
        };
        Ok(Mpi {
            core: Core::new(config),
            world,
            role,
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

    /// Runs `f` as this rank's part of a region: counted (so a panic is
    /// left to the region), current, panics caught.
    fn execute(&self, f: impl FnOnce() -> Result<Msg>) -> std::thread::Result<Result<Msg>> {
        REGIONS.fetch_add(1, Ordering::SeqCst);
        let outcome = {
            let _current = self.core.this().map(set_current);
            catch_unwind(AssertUnwindSafe(f))
        };
        REGIONS.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    /// The end of a region on every rank: agree on whether some rank
    /// failed; if so every rank returns that rank's error (a failed rank
    /// that the others do not join within the grace period aborts the job).
    fn settle(&self, outcome: std::thread::Result<Result<Msg>>) -> Result<Msg> {
        let world = self.world;
        let failure: Option<(u8, String)> = match &outcome {
            Ok(Ok(_)) => None,
            Ok(Err(Error::TaskFailed { message, .. })) => Some((FAILED, message.clone())),
            Ok(Err(e)) => Some((FAILED, e.to_string())),
            Err(panic) => Some((PANICKED, crate::outcome::panic_message(&**panic))),
        };
        let mine = if failure.is_some() {
            world.rank as u64
        } else {
            u64::MAX
        };
        let deadline = failure.as_ref().map(|_| Instant::now() + self.grace);
        let agreed = match world::agree_min(world.ctrl, mine, deadline) {
            Ok(Some(v)) => v,
            Ok(None) => {
                let (kind, message) = failure.expect("only failed ranks have a deadline");
                let what = if kind == PANICKED {
                    "panicked"
                } else {
                    "failed"
                };
                world::report_and_abort(
                    world,
                    &format!(
                        "{what}: {message}\n  (the other ranks did not finish the region within \
                         {:?}: they are waiting for this one)",
                        self.grace
                    ),
                    if kind == PANICKED { 101 } else { 1 },
                )
            }
            Err(e) => world::report_and_abort(world, &format!("could not agree: {e}"), 1),
        };
        if agreed == u64::MAX {
            return match outcome {
                Ok(result) => result,
                Err(_) => unreachable!("a panicked rank reports itself"),
            };
        }
        // Every rank finished the region: the first failed rank tells the
        // others what went wrong.
        let failed = agreed as usize;
        let report = if failed == world.rank {
            let mut bytes = Vec::new();
            encode_serde(failure.as_ref().expect("this rank failed"), &mut bytes)?;
            Some(bytes)
        } else {
            None
        };
        let bytes = Mpi::bcast_bytes(world.ctrl, report, failed)?;
        let (kind, message): (u8, String) = decode_serde(&bytes)?;
        if failed == world.rank {
            match outcome {
                // Served main resumes its own panic, as the threads backend
                // does; the workers are back in their loop, so exiting is clean.
                Err(panic) if self.role == Role::Main => resume_unwind(panic),
                Ok(Err(e)) => return Err(e),
                _ => {}
            }
        }
        Err(if kind == PANICKED {
            Error::WorkerPanicked {
                rank: failed,
                message,
            }
        } else {
            Error::TaskFailed {
                rank: failed,
                message,
            }
        })
    }

    /// Broadcast of a byte vector from `root` on the control communicator:
    /// length, then the bytes.
    fn bcast_bytes(comm: Comm, data: Option<Vec<u8>>, root: usize) -> Result<Vec<u8>> {
        let mut len = [data.as_ref().map_or(0, |d| d.len()) as u64];
        world::bcast(
            comm,
            world::u64_type(),
            8,
            bytemuck::cast_slice_mut(&mut len),
            root,
            1,
        )?;
        let mut buf = data.unwrap_or_else(|| vec![0; len[0] as usize]);
        world::bcast(comm, world::byte_type(), 1, &mut buf, root, CTRL_LIMIT)?;
        Ok(buf)
    }

    fn dispatch(&self, region: Region) -> Result<Msg> {
        // One region at a time in this process, whichever handle runs it.
        static DISPATCH: Mutex<()> = Mutex::new(());
        let _one = DISPATCH.lock().unwrap_or_else(|e| e.into_inner());
        let task_id = region.task().require_id()?;
        let (task, args) = region.into_parts();
        let mut payload = Vec::new();
        encode_serde(self.core.config(), &mut payload)?;
        let config_len = payload.len();
        args.encode_into(&mut payload)?;
        let mut header = [
            REGION,
            u64::from(task_id),
            config_len as u64,
            (payload.len() - config_len) as u64,
        ];
        world::ibcast_u64(self.world.ctrl, &mut header)?;
        world::bcast(
            self.world.ctrl,
            world::byte_type(),
            1,
            &mut payload,
            0,
            CTRL_LIMIT,
        )?;
        let outcome = self.execute(|| task.run_here(self, args));
        self.settle(outcome)
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
            .field("rank", &self.world.rank)
            .field("size", &self.world.size)
            .field("role", &self.role)
            .field("threads_per_rank", &self.threads)
            .finish()
    }
}

fn encoding_tag(e: Encoding) -> u64 {
    match e {
        Encoding::Pod => 1,
        _ => 0,
    }
}

fn encoding_of(tag: u64) -> Encoding {
    if tag == 1 {
        Encoding::Pod
    } else {
        Encoding::Serde
    }
}

/// The wire bytes of `msg`, borrowed for plain data.
fn wire(msg: &Msg) -> Result<std::borrow::Cow<'_, [u8]>> {
    Ok(match msg.pod_bytes() {
        Some(b) => std::borrow::Cow::Borrowed(b),
        None => std::borrow::Cow::Owned(msg.to_bytes()?),
    })
}

impl Parallelizer for Mpi {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        self.world.rank
    }
    fn nprocs(&self) -> usize {
        self.world.size
    }
    fn in_region(&self) -> bool {
        self.role != Role::Main || REGIONS.load(Ordering::SeqCst) > 0
    }

    /// Runs the configured worker initializer once on every rank (main
    /// included), as a region, at the outermost `enter`; its failure on any
    /// rank is the enter's error. MPI itself is process-wide: started on
    /// first use, finalized at exit, not here.
    fn initialize(&self) -> Result<()> {
        let Some(path) = &self.core.config().initializer else {
            return Ok(());
        };
        if REGIONS.load(Ordering::SeqCst) > 0 {
            // Entered inside a region: the ranks are already running.
            return Ok(());
        }
        self.run_region(initializer_region(path)?).map(drop)
    }

    fn send_msg(&self, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let bytes = wire(&msg)?;
        let comm = self.world.data;
        if bytes.len() <= self.limit(1) {
            // One MPI message; the receiver learns its size from the probe.
            let tag = match msg.encoding() {
                Encoding::Pod if msg.pod_align() == 8 && bytes.len() % 8 == 0 => world::TAG_POD8,
                Encoding::Pod => world::TAG_POD,
                _ => world::TAG_SERDE,
            };
            return world::send_one(comm, &bytes, to, tag);
        }
        // Too large for one MPI message: a header, then the pieces.
        let header = [encoding_tag(msg.encoding()), bytes.len() as u64];
        world::send(
            comm,
            world::u64_type(),
            8,
            bytemuck::cast_slice(&header),
            to,
            world::TAG_HEADER,
            2,
        )?;
        world::send(
            comm,
            world::byte_type(),
            1,
            &bytes,
            to,
            world::TAG_BODY,
            self.limit(1),
        )
    }

    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let comm = self.world.data;
        let timeout = self.core.config().timeout;
        let Some((tag, count)) = world::probe_any(comm, from, timeout.map(|t| Instant::now() + t))?
        else {
            return Err(Error::Timeout {
                op: Op::Receive,
                rank: from,
                after: timeout.unwrap_or_default(),
            });
        };
        match tag {
            world::TAG_POD => Ok(Msg::from_bytes(
                Encoding::Pod,
                world::recv_exact::<u8>(comm, from, tag, count)?,
            )),
            world::TAG_POD8 if count % 8 == 0 => {
                let words = world::recv_exact::<u64>(comm, from, tag, count)?;
                Ok(Msg::from_words(words, count))
            }
            world::TAG_SERDE => Ok(Msg::from_bytes(
                Encoding::Serde,
                world::recv_exact::<u8>(comm, from, tag, count)?,
            )),
            world::TAG_HEADER => {
                let mut header = [0u64; 2];
                world::recv(
                    comm,
                    world::u64_type(),
                    8,
                    bytemuck::cast_slice_mut(&mut header),
                    from,
                    world::TAG_HEADER,
                    2,
                )?;
                let mut body = vec![0u8; header[1] as usize];
                world::recv(
                    comm,
                    world::byte_type(),
                    1,
                    &mut body,
                    from,
                    world::TAG_BODY,
                    self.limit(1),
                )?;
                Ok(Msg::from_bytes(encoding_of(header[0]), body))
            }
            other => Err(Error::Mpi(format!(
                "unexpected point-to-point message (tag {other}) from rank {from}: \
                 is another library using the parallelizer's communicator?"
            ))),
        }
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // Regions are counted per process: a handle built inside a task
        // (rather than the one the task got) is inside the region too.
        let top = REGIONS.load(Ordering::SeqCst) == 0;
        match (self.role, top) {
            // Inside a region every rank runs a nested `run` itself.
            (_, false) => {
                let (task, args) = region.into_parts();
                task.run_here(self, args)
            }
            (Role::Main, true) => self.dispatch(region),
            (Role::Spmd | Role::Worker, true) => {
                let (task, args) = region.into_parts();
                let outcome = self.execute(|| task.run_here(self, args));
                self.settle(outcome)
            }
        }
    }

    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        let comm = self.world.data;
        if self.world.size == 1 {
            return msg.ok_or_else(|| missing("broadcast"));
        }
        let (enc, bytes) = match &msg {
            Some(m) if self.on_main() => (encoding_tag(m.encoding()), Some(wire(m)?.into_owned())),
            None if !self.on_main() => (0, None),
            _ => return Err(missing("broadcast")),
        };
        let mut header = [enc, bytes.as_ref().map_or(0, |b| b.len() as u64)];
        world::bcast(
            comm,
            world::u64_type(),
            8,
            bytemuck::cast_slice_mut(&mut header),
            0,
            2,
        )?;
        let mut buf = bytes.unwrap_or_else(|| vec![0; header[1] as usize]);
        world::bcast(comm, world::byte_type(), 1, &mut buf, 0, self.limit(1))?;
        match msg {
            Some(m) => Ok(m),
            None => Ok(Msg::from_bytes(encoding_of(header[0]), buf)),
        }
    }

    fn scatter_msg(&self, chunks: Option<Vec<Msg>>, _tag: Tag) -> Result<Msg> {
        let (rank, size) = (self.world.rank, self.world.size);
        let comm = self.world.data;
        // Main encodes the workers' chunks back to back; its own stays a value.
        let mut own = None;
        let mut send = Vec::new();
        let mut header = vec![0u64; 2 * size];
        if rank == 0 {
            let chunks = chunks.ok_or_else(|| missing("scatter"))?;
            if chunks.len() != size {
                return Err(Error::ContractViolation(format!(
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
                header[2 * (i + 1)] = encoding_tag(chunk.encoding());
                header[2 * (i + 1) + 1] = (send.len() - before) as u64;
            }
        } else if chunks.is_some() {
            return Err(missing("scatter"));
        }
        let words = header.len();
        world::bcast(
            comm,
            world::u64_type(),
            8,
            bytemuck::cast_slice_mut(&mut header),
            0,
            words,
        )?;
        let counts: Vec<usize> = (0..size).map(|r| header[2 * r + 1] as usize).collect();
        let mut mine = vec![0u8; counts[rank]];
        world::scatterv(
            comm,
            world::byte_type(),
            1,
            rank,
            (rank == 0).then_some(&send[..]),
            &counts,
            &mut mine,
            self.limit(1),
        )?;
        match own {
            Some(m) => Ok(m),
            None => Ok(Msg::from_bytes(encoding_of(header[2 * rank]), mine)),
        }
    }

    fn gather_msg(&self, msg: Msg, _tag: Tag) -> Result<Option<Vec<Msg>>> {
        let (rank, size) = (self.world.rank, self.world.size);
        let comm = self.world.data;
        // Main's own message stays a value and is not sent.
        let bytes = if rank == 0 {
            Vec::new()
        } else {
            wire(&msg)?.into_owned()
        };
        let header = world::allgather_u64(
            comm,
            &[encoding_tag(msg.encoding()), bytes.len() as u64],
            size,
        )?;
        let counts: Vec<usize> = (0..size).map(|r| header[2 * r + 1] as usize).collect();
        let mut all = (rank == 0).then(|| vec![0u8; counts.iter().sum()]);
        world::gatherv(
            comm,
            world::byte_type(),
            1,
            rank,
            &bytes,
            &counts,
            all.as_deref_mut(),
            self.limit(1),
        )?;
        let Some(all) = all else { return Ok(None) };
        let mut out = Vec::with_capacity(size);
        out.push(msg);
        let mut at = counts[0];
        for r in 1..size {
            out.push(Msg::from_bytes(
                encoding_of(header[2 * r]),
                all[at..at + counts[r]].to_vec(),
            ));
            at += counts[r];
        }
        Ok(Some(out))
    }

    fn barrier(&self, _tag: Tag) -> Result<()> {
        if self.world.size == 1 {
            return Ok(());
        }
        world::barrier(self.world.data)
    }

    fn native_pod(&self) -> Option<&dyn NativePod> {
        Some(self)
    }

    fn threads_per_rank(&self) -> usize {
        self.threads
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

fn missing(op: &str) -> Error {
    Error::ContractViolation(format!(
        "main must pass Some(data) to {op}; workers pass None"
    ))
}

/// The native MPI datatype of `ty`, or a contiguous block of its bytes
/// (committed; the caller frees it).
struct PodDatatype {
    ty: Datatype,
    derived: bool,
}

impl PodDatatype {
    fn new(ty: PodType) -> Result<PodDatatype> {
        use mpi::ffi;
        use std::any::TypeId;
        let native = unsafe {
            [
                (TypeId::of::<f64>(), ffi::RSMPI_DOUBLE),
                (TypeId::of::<f32>(), ffi::RSMPI_FLOAT),
                (TypeId::of::<i8>(), ffi::RSMPI_INT8_T),
                (TypeId::of::<i16>(), ffi::RSMPI_INT16_T),
                (TypeId::of::<i32>(), ffi::RSMPI_INT32_T),
                (TypeId::of::<i64>(), ffi::RSMPI_INT64_T),
                (TypeId::of::<u8>(), ffi::RSMPI_UINT8_T),
                (TypeId::of::<u16>(), ffi::RSMPI_UINT16_T),
                (TypeId::of::<u32>(), ffi::RSMPI_UINT32_T),
                (TypeId::of::<u64>(), ffi::RSMPI_UINT64_T),
            ]
        };
        if let Some((_, dt)) = native.iter().find(|(id, _)| *id == ty.id) {
            return Ok(PodDatatype {
                ty: Datatype(*dt),
                derived: false,
            });
        }
        let mut dt = unsafe { ffi::RSMPI_DATATYPE_NULL };
        let count = i32::try_from(ty.size)
            .map_err(|_| Error::Mpi(format!("{} is too large for one datatype", ty.name)))?;
        world::check(
            unsafe { ffi::MPI_Type_contiguous(count, ffi::RSMPI_UINT8_T, &mut dt) },
            "MPI_Type_contiguous",
        )?;
        world::check(unsafe { ffi::MPI_Type_commit(&mut dt) }, "MPI_Type_commit")?;
        Ok(PodDatatype {
            ty: Datatype(dt),
            derived: true,
        })
    }
}

impl Drop for PodDatatype {
    fn drop(&mut self) {
        if self.derived {
            unsafe {
                mpi::ffi::MPI_Type_free(&mut self.ty.0);
            }
        }
    }
}

impl NativePod for Mpi {
    fn broadcast_pod(&self, ty: PodType, buf: &mut [u8]) -> Result<()> {
        if ty.size == 0 || self.world.size == 1 {
            return Ok(());
        }
        let dt = PodDatatype::new(ty)?;
        world::bcast(self.world.data, dt.ty, ty.size, buf, 0, self.limit(ty.size))
    }

    fn all_counts(&self, mine: usize) -> Result<Vec<usize>> {
        let all = world::allgather_u64(self.world.data, &[mine as u64], self.world.size)?;
        Ok(all.into_iter().map(|n| n as usize).collect())
    }

    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        counts: &[usize],
        recv: &mut [u8],
    ) -> Result<()> {
        if ty.size == 0 {
            return Ok(());
        }
        let dt = PodDatatype::new(ty)?;
        world::scatterv(
            self.world.data,
            dt.ty,
            ty.size,
            self.world.rank,
            send,
            counts,
            recv,
            self.limit(ty.size),
        )
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        counts: &[usize],
        recv: Option<&mut [u8]>,
    ) -> Result<()> {
        if ty.size == 0 {
            return Ok(());
        }
        let dt = PodDatatype::new(ty)?;
        world::gatherv(
            self.world.data,
            dt.ty,
            ty.size,
            self.world.rank,
            send,
            counts,
            recv,
            self.limit(ty.size),
        )
    }
}

/// Rank 0 of a served job tells the workers to stop (once).
fn shutdown_workers(world: &World) -> Result<()> {
    if world.shut_down.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut header = [SHUTDOWN, 0, 0, 0];
    world::ibcast_u64(world.ctrl, &mut header)
}

/// Whether an MPI launcher started this process.
fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MV2_COMM_WORLD_SIZE",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The worker hook: under an MPI launcher with more than one rank, every
/// rank joins MPI; rank 0 returns to run `main`, the others serve.
fn serve_hook() -> Option<i32> {
    if !launched_by_mpi() || std::env::var("PARALLELIZER_MPI_SERVE").is_ok_and(|v| v == "0") {
        return None;
    }
    if std::env::var_os("PARALLELIZER_PROCESSES_LAUNCH").is_some() {
        // A worker of the processes backend started from an MPI rank
        // inherits the launcher's variables but is no MPI process.
        return None;
    }
    let world = match world::world() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("parallelizer: cannot join the MPI job: {e}");
            return Some(1);
        }
    };
    if world.size == 1 {
        return None;
    }
    world.served.store(true, Ordering::SeqCst);
    if world.rank == 0 {
        return None;
    }
    Some(serve(world))
}

inventory::submit! {
    WorkerHook { serve: serve_hook }
}

/// The loop of a serving worker: run what rank 0 dispatches until it shuts
/// the job down.
fn serve(world: &'static World) -> i32 {
    let fatal = |e: Error| -> ! { world::report_and_abort(world, &format!("serving: {e}"), 1) };
    // Handles by main's encoded configuration (each may own a thread pool).
    let mut handles: Vec<(Vec<u8>, Arc<Mpi>)> = Vec::new();
    loop {
        let mut header = [0u64; 4];
        if let Err(e) = world::ibcast_u64(world.ctrl, &mut header) {
            fatal(e)
        }
        match header[0] {
            SHUTDOWN => return 0,
            REGION => {}
            other => fatal(Error::Protocol(format!("unknown dispatch kind {other}"))),
        }
        let (config_len, args_len) = (header[2] as usize, header[3] as usize);
        let mut payload = vec![0u8; config_len + args_len];
        if let Err(e) = world::bcast(
            world.ctrl,
            world::byte_type(),
            1,
            &mut payload,
            0,
            CTRL_LIMIT,
        ) {
            fatal(e)
        }
        let args = payload.split_off(config_len);
        let handle = match handles.iter().find(|(bytes, _)| *bytes == payload) {
            Some((_, handle)) => handle.clone(),
            None => {
                let built = decode_serde::<Config>(&payload)
                    .and_then(|config| Mpi::with_role(config, world, Role::Worker));
                match built {
                    Ok(mpi) => {
                        let handle = Arc::new(mpi);
                        let as_dyn: Arc<dyn Parallelizer> = handle.clone();
                        handle
                            .core
                            .bind(Arc::downgrade(&as_dyn), crate::runtime::next_uid());
                        if handles.len() == 16 {
                            handles.remove(0);
                        }
                        handles.push((payload, handle.clone()));
                        handle
                    }
                    // Main built the same configuration, so this cannot
                    // happen short of different binaries.
                    Err(e) => fatal(e),
                }
            }
        };
        let task = header[1] as u32;
        let outcome = handle.execute(|| {
            let entry = task_by_id(task)?;
            entry
                .invoke(&*handle, Msg::from_bytes(Encoding::Serde, args))
                .map(|()| Msg::local(()))
        });
        // A failure was agreed with main, which reports it.
        let _ = handle.settle(outcome);
    }
}
