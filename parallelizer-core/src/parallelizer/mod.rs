//! The object-safe `Parallelizer` trait that every backend implements, and
//! the state they all share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use crate::config::Config;
use crate::contract::CallerContract;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::{Op, Tag};
use crate::tree::Combine;

pub use crate::native::{NativePod, NativeReduce, Posted, Reach};
pub use crate::plain::{PlainBuf, PodType};
use crate::trace;

pub use crate::any_source::AnySource;

/// A group of `nprocs()` ranks that can run SPMD regions and exchange messages. Rank 0 is main.
///
/// Backends implement identity, the two transport calls and
/// [`run_region`](Parallelizer::run_region); the collectives have default
/// implementations built from `send_msg`/`recv_msg` (McUtils'
/// `SendRecieveParallelizer`) that a backend may override with native ones.
/// Users call the typed API on `dyn Parallelizer` (`broadcast`, `map`,
/// `run`, ...), not these methods.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// let par = from_config("threads:3").unwrap();
/// let ids = par.run(|p: &dyn Parallelizer, ()| p.gather(p.id()).unwrap(), ()).unwrap();
/// assert_eq!(ids, Some(vec![0, 1, 2]));
/// ```
pub trait Parallelizer: Send + Sync + 'static {
    /// The state every parallelizer carries (configuration, nesting depth,
    /// contract).
    fn core(&self) -> &Core;

    /// This rank's id, `0..nprocs`; 0 is main.
    fn id(&self) -> usize;

    /// The number of ranks, main included.
    fn nprocs(&self) -> usize;

    /// This rank's id among all the ranks of the parallelizer its groups
    /// were made from (MPI: its rank in `MPI_COMM_WORLD`); [`id`](Parallelizer::id)
    /// outside a group.
    fn world_rank(&self) -> usize {
        self.id()
    }

    /// The backend name this parallelizer was built as.
    fn mode(&self) -> &str {
        &self.core().config().mode
    }

    /// Whether this rank is main (rank 0).
    fn on_main(&self) -> bool {
        self.id() == 0
    }

    /// The OS process id of this rank.
    fn pid(&self) -> u32 {
        std::process::id()
    }

    /// Whether collectives called here pair up with the other ranks: true
    /// inside a region (and always for single-rank and SPMD-launched
    /// backends), false on main outside a region.
    fn in_region(&self) -> bool;

    /// Starts the backend's resources (threads, worker processes). Called by
    /// the outermost `enter`.
    fn initialize(&self) -> Result<()> {
        Ok(())
    }

    /// Releases what [`initialize`](Parallelizer::initialize) started.
    fn finalize(&self) -> Result<()> {
        Ok(())
    }

    /// Delivers `msg`, a message of the call `tag`, to rank `to`. Only rank
    /// handles inside a region are asked; the default is the error for a
    /// parallelizer outside a region.
    fn send_msg(&self, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        let _ = (msg, to);
        Err(outside_region(self.mode(), tag.op()))
    }

    /// Blocks for the next message of the call `tag` from rank `from`. Must
    /// return [`Error::Aborted`] when another rank failed. The default is the
    /// error for a parallelizer outside a region.
    fn recv_msg(&self, from: usize, tag: Tag) -> Result<Msg> {
        let _ = from;
        Err(outside_region(self.mode(), tag.op()))
    }

    /// Blocks for the next message of the call `tag` from whichever rank of
    /// `from` sends one first, until `until` (`Ok(None)` when it passes
    /// first; a time already past looks once, without waiting): how main
    /// hands the next chunk of a dynamically scheduled map to the rank that
    /// finished one. A rank of `from` that finished or went away without
    /// sending is an error, as in `recv_msg`.
    ///
    /// Implemented by backends whose [`any_source`](Parallelizer::any_source)
    /// is not [`AnySource::Unsupported`]; the default is that error (maps
    /// then split the data statically, as `scatter` does).
    fn recv_any_msg(
        &self,
        from: &[usize],
        tag: Tag,
        until: Option<Instant>,
    ) -> Result<Option<(usize, Msg)>> {
        let _ = (from, until);
        Err(Error::ContractViolation(format!(
            "`{}` needs a receive from any rank, which the `{}` backend does not offer",
            tag.op(),
            self.mode()
        )))
    }

    /// Whether [`recv_any_msg`](Parallelizer::recv_any_msg) works here, and
    /// whether a send may wait for its receiver; decides how maps schedule
    /// their chunks.
    fn any_source(&self) -> AnySource {
        AnySource::Unsupported
    }

    /// [`send_msg`](Parallelizer::send_msg) that returns before the
    /// receiver takes `msg`, which stays on its way until
    /// [`flush_posted`](Parallelizer::flush_posted): how a map queues a
    /// rank's next chunk where a send waits for its receiver
    /// ([`AnySource::Posted`]). The default is `send_msg`.
    fn post_msg(&self, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        self.send_msg(msg, to, tag)
    }

    /// Waits until every message this handle posted
    /// ([`post_msg`](Parallelizer::post_msg)) was taken by its receiver, or
    /// failed with it (a dead receiver, a revoked communicator: the region
    /// reports that failure, not this call); an error if the wait gives up
    /// at the region's deadline. The default has nothing to wait for.
    fn flush_posted(&self) -> Result<()> {
        Ok(())
    }

    /// `send_msg` in the message namespace of group `group`, whose
    /// messages only calls of the same group take (see
    /// [`group_handle`](Parallelizer::group_handle)). The default handles
    /// group 0, the handle's own messages, and refuses others: a backend
    /// whose packets carry a group id (the region protocol of `link`)
    /// implements it.
    fn send_msg_in(&self, group: u64, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        if group == 0 {
            return self.send_msg(msg, to, tag);
        }
        Err(no_namespaces(self.mode(), tag.op()))
    }

    /// `recv_msg` in the message namespace of group `group`; see
    /// [`send_msg_in`](Parallelizer::send_msg_in).
    fn recv_msg_in(&self, group: u64, from: usize, tag: Tag) -> Result<Msg> {
        if group == 0 {
            return self.recv_msg(from, tag);
        }
        Err(no_namespaces(self.mode(), tag.op()))
    }

    /// The message namespace of this handle's calls: 0 for the ranks of a
    /// region, the group's id for a group's handle.
    fn group_id(&self) -> u64 {
        0
    }

    /// This rank's handle in the group of `members` (ranks of this handle,
    /// in group-rank order, this rank among them) whose messages use the
    /// namespace `group`. Every member calls it with the same arguments;
    /// non-members do not. `Ok(None)`, the default, lets the framework make
    /// the group on [`send_msg_in`](Parallelizer::send_msg_in) and
    /// [`recv_msg_in`](Parallelizer::recv_msg_in); a backend with native
    /// groups (MPI communicators) returns its own handle.
    fn group_handle(&self, members: &[usize], group: u64) -> Result<Option<Arc<dyn Parallelizer>>> {
        let _ = (members, group);
        Ok(None)
    }

    /// Runs `region` on every rank and returns main's result. On a rank
    /// handle (inside a region) it runs the task on this rank only, as every
    /// rank does (SPMD).
    fn run_region(&self, region: Region) -> Result<Msg>;

    /// Broadcast from main: main passes `Some`, workers `None`; every rank
    /// returns the value.
    fn broadcast_msg(&self, msg: Option<Msg>, tag: Tag) -> Result<Msg> {
        collective::broadcast(self, msg, tag)
    }

    /// Scatter from main: main passes one message per rank; every rank
    /// returns its own.
    fn scatter_msg(&self, chunks: Option<Vec<Msg>>, tag: Tag) -> Result<Msg> {
        collective::scatter(self, chunks, tag)
    }

    /// Gather to main: `Some` of every rank's message in rank order on main,
    /// `None` on workers.
    fn gather_msg(&self, msg: Msg, tag: Tag) -> Result<Option<Vec<Msg>>> {
        collective::gather(self, msg, tag)
    }

    /// Blocks until every rank has reached the barrier.
    fn barrier(&self, tag: Tag) -> Result<()> {
        collective::barrier(self, tag)
    }

    /// Reduction to main: every rank passes its value; main returns them
    /// all combined with `combine` (in rank order), workers `None`. The
    /// default is a binomial tree of `send_msg`/`recv_msg`.
    fn reduce_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Option<Msg>> {
        collective::reduce(self, msg, combine, tag)
    }

    /// Every rank's value combined, on every rank. The default is
    /// recursive doubling of `send_msg`/`recv_msg`.
    fn allreduce_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Msg> {
        collective::allreduce(self, msg, combine, tag)
    }

    /// Each rank's inclusive prefix: the values of ranks `0..=id` combined.
    /// The default is the Hillis–Steele prefix of `send_msg`/`recv_msg`.
    fn scan_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Msg> {
        collective::scan(self, msg, combine, tag)
    }

    /// Native collectives on plain data in the caller's buffers (MPI
    /// datatypes; lent or copied bytes on the region protocol), used by the
    /// `*_into` and `*_pod` calls, and by the generic calls on vectors of
    /// plain data; `None` (the default) sends plain data as [`Msg`] bytes.
    fn native_pod(&self) -> Option<&dyn NativePod> {
        None
    }

    /// Every rank's `bytes` (a number of type `ty`), to `each` in rank
    /// order, on every rank: the exchange behind the reductions and the
    /// all-gather of one number, through memory every rank reads where the
    /// backend has it (the threads' and processes' board,
    /// [`Board`](crate::backend::Board)).
    /// `None` (the default) when it has none or `bytes` do not fit a post:
    /// the caller then exchanges messages. The length must depend on the
    /// type only, so that every rank decides alike.
    fn exchange_small(
        &self,
        ty: PodType,
        bytes: &[u8],
        tag: Tag,
        each: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
    ) -> Option<Result<()>> {
        let _ = (ty, bytes, tag, each);
        None
    }

    /// Native reductions with built-in ops (MPI's); `None` (the default)
    /// reduces through [`reduce_msg`](Parallelizer::reduce_msg) and its
    /// siblings.
    fn native_reduce(&self) -> Option<&dyn NativeReduce> {
        None
    }

    /// How many threads this rank may use for the items of its chunk in
    /// `map`, `map_with` and `starmap` (hybrid ranks + threads); 1, the
    /// default, applies `f` sequentially.
    fn threads_per_rank(&self) -> usize {
        1
    }

    /// Memory for [`SharedArray`](crate::SharedArray)s; by default none ([`Error::Unsupported`]).
    fn shared_memory(&self) -> Result<&dyn crate::segment::SharedMemory> {
        Err(Error::no_shared_memory(self.mode()))
    }

    /// Runs `jobs` to completion, concurrently on this rank's threads when
    /// [`threads_per_rank`](Parallelizer::threads_per_rank) is above 1. The
    /// default runs them one after the other on the caller.
    fn run_jobs(&self, jobs: Vec<Job<'_>>) {
        for job in jobs {
            job();
        }
    }
}

/// A unit of work for [`Parallelizer::run_jobs`].
pub type Job<'a> = Box<dyn FnOnce() + Send + 'a>;

/// State shared by every parallelizer: its configuration, how deeply it is
/// entered, its contract and its place in the registry.
///
/// A backend builds one with [`Core::new`] and returns it from
/// [`Parallelizer::core`].
pub struct Core {
    config: Arc<Config>,
    depth: AtomicUsize,
    contract: Option<Mutex<CallerContract>>,
    this: OnceLock<Weak<dyn Parallelizer>>,
    uid: OnceLock<u64>,
    /// Collective calls made so far (the next call's sequence number).
    calls: AtomicU64,
    /// Whether this is the state of a rank's handle inside a region.
    rank: bool,
    /// Subgroups made of this handle so far, by their members' hash: the
    /// number of the next one (see `subgroup`).
    subgroups: Mutex<HashMap<u64, u64>>,
}

impl Core {
    /// The state of a parallelizer built from `config`.
    ///
    /// ```
    /// # use parallelizer_core::{Config, backend::Core};
    /// let core = Core::new(Config::new("serial"));
    /// assert_eq!(core.config().mode, "serial");
    /// ```
    pub fn new(config: Config) -> Core {
        Core::shared(Arc::new(config))
    }

    /// Like [`Core::new`], sharing an existing configuration.
    pub fn shared(config: Arc<Config>) -> Core {
        let contract = (!config.contract.is_empty())
            .then(|| Mutex::new(CallerContract::new(config.contract.iter().cloned())));
        Core {
            config,
            depth: AtomicUsize::new(0),
            contract,
            this: OnceLock::new(),
            uid: OnceLock::new(),
            calls: AtomicU64::new(0),
            rank: false,
            subgroups: Mutex::new(HashMap::new()),
        }
    }

    /// The state of one rank's handle inside a region of the parallelizer
    /// whose state is `parent`: the same configuration and the same
    /// [`uid`](Core::uid) (a rank handle is that parallelizer as one rank
    /// sees it), with a contract of its own.
    pub fn for_rank(parent: &Core) -> Core {
        let mut core = Core::shared(parent.config.clone());
        core.rank = true;
        if let Some(&uid) = parent.uid.get() {
            let _ = core.uid.set(uid);
        }
        core
    }

    /// The state of a group's handle of one rank: `config` (its parent's),
    /// the id `family` of the parallelizer whose regions the group lives in
    /// (0 for none), a contract and call numbers of its own.
    pub fn for_group(config: Arc<Config>, family: u64) -> Core {
        let mut core = Core::shared(config);
        core.rank = true;
        if family != 0 {
            let _ = core.uid.set(family);
        }
        core
    }

    /// Makes a group's handle (built by its backend) part of the regions
    /// of the parallelizer whose id is `family` (nothing for 0, or when it
    /// has an id already).
    pub(crate) fn join_family(&self, family: u64) {
        if family != 0 {
            let _ = self.uid.set(family);
        }
    }

    /// The number of the next subgroup of this handle whose members hash
    /// to `members`: the members of a group count the subgroups they make
    /// alike, so they agree on each one's message namespace.
    pub(crate) fn next_subgroup(&self, members: u64) -> u64 {
        let mut made = self.subgroups.lock().unwrap_or_else(|e| e.into_inner());
        let n = made.entry(members).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// The configuration this parallelizer was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, shareable.
    pub fn config_arc(&self) -> &Arc<Config> {
        &self.config
    }

    /// A process-unique id of this parallelizer (McUtils `uid`), given when
    /// it is put in its `Arc` by [`new`](crate::backend::new) or [`crate::from_config`];
    /// 0 before. Its rank handles carry the same id.
    pub fn uid(&self) -> u64 {
        self.uid.get().copied().unwrap_or(0)
    }

    /// How many `enter` guards are alive.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    /// Whether at least one enter guard is alive (McUtils' `with`
    /// counter). The user API's `is_active()` is also true on rank handles.
    pub fn is_active(&self) -> bool {
        self.depth() > 0
    }

    /// Whether this is the state of a rank's handle inside a region
    /// ([`Core::for_rank`]).
    pub fn is_rank(&self) -> bool {
        self.rank
    }

    pub(crate) fn enter_depth(&self) -> usize {
        self.depth.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn leave_depth(&self) -> usize {
        self.depth.fetch_sub(1, Ordering::SeqCst) - 1
    }

    /// The tag of this handle's next call of `op`: collectives are numbered
    /// in call order; point-to-point calls are not (the backend orders them
    /// per pair).
    pub fn next_tag(&self, op: Op) -> Tag {
        if matches!(op, Op::Send | Op::Receive) {
            Tag::p2p(op)
        } else {
            Tag::new(op, self.calls.fetch_add(1, Ordering::Relaxed))
        }
    }

    /// Checks `call` against the contract, if there is one.
    #[inline]
    pub fn check_contract(&self, rank: usize, call: &str) -> Result<()> {
        match &self.contract {
            None => Ok(()),
            Some(c) => check_with(c, rank, call),
        }
    }

    /// Records the `Arc` this parallelizer lives in, so that `enter` and
    /// `run` can make it the default, and its id. Done by [`new`](crate::backend::new).
    pub(crate) fn bind(&self, this: Weak<dyn Parallelizer>, uid: u64) {
        let _ = self.this.set(this);
        let _ = self.uid.set(uid);
    }

    /// Records the `Arc` a rank's handle lives in (its id stays its
    /// parallelizer's), so that groups can be made of it.
    pub(crate) fn bind_handle(&self, this: Weak<dyn Parallelizer>) {
        let _ = self.this.set(this);
    }

    /// The `Arc` this parallelizer lives in, if it was built through
    /// [`new`](crate::backend::new) or [`crate::from_config`].
    pub fn this(&self) -> Option<Arc<dyn Parallelizer>> {
        self.this.get().and_then(Weak::upgrade)
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .field("depth", &self.depth())
            .field("uid", &self.uid())
            .finish()
    }
}

/// The part of a task that runs in this process: decode the args, call the
/// task, wrap its result.
pub type LocalTask = Arc<dyn Fn(&dyn Parallelizer, Msg) -> Result<Msg> + Send + Sync>;

/// One SPMD region: the task every rank runs and its arguments.
#[derive(Debug)]
pub struct Region {
    task: RegionTask,
    args: Msg,
}

impl Region {
    /// A region that runs `task` with `args` (the same for every rank).
    pub fn new(task: RegionTask, args: Msg) -> Region {
        Region { task, args }
    }

    /// The task every rank runs.
    pub fn task(&self) -> &RegionTask {
        &self.task
    }

    /// The task and the arguments.
    pub fn into_parts(self) -> (RegionTask, Msg) {
        (self.task, self.args)
    }

    /// Runs the region's task as rank `par` at the top of the region
    /// ([`RegionTask::run`]): what a single-rank backend's `run_region` does.
    pub fn run_on(self, par: &dyn Parallelizer) -> Result<Msg> {
        self.task.run(par, self.args)
    }

    /// Runs main's form of the task on rank `par` ([`RegionTask::run_here`]):
    /// a `run` nested inside a region.
    pub fn run_here(self, par: &dyn Parallelizer) -> Result<Msg> {
        self.task.run_here(par, self.args)
    }
}

/// The task of a [`Region`]; cheap to clone, shareable between rank threads.
///
/// It carries two forms of the task: what main runs (the closure whose value
/// `run` returns) and what a worker rank runs at the top of a region (for a
/// `#[parallelizer::task]`, its registration: the value is dropped and an
/// `Err` is reported, so a registered task behaves the same whether its
/// ranks are threads or processes). Ranks in other processes can only run
/// a registered task, by its dense id.
#[derive(Clone)]
pub struct RegionTask {
    name: &'static str,
    id: Option<u32>,
    main: LocalTask,
    worker: LocalTask,
}

impl RegionTask {
    /// An unregistered task (a closure): every rank runs `local`.
    pub fn new(name: &'static str, local: LocalTask) -> RegionTask {
        RegionTask {
            name,
            id: None,
            worker: local.clone(),
            main: local,
        }
    }

    /// A registered task: main runs `main`, workers `worker`; ranks in
    /// other processes look it up by the dense `id`.
    pub fn registered(
        name: &'static str,
        id: u32,
        main: LocalTask,
        worker: LocalTask,
    ) -> RegionTask {
        RegionTask {
            name,
            id: Some(id),
            main,
            worker,
        }
    }

    /// This task with both forms wrapped by `wrap`, registered as `id` if
    /// it is registered at all (the task that ranks in other processes run
    /// in its place, e.g. a group's region around it).
    pub(crate) fn wrapped(&self, id: u32, wrap: impl Fn(LocalTask) -> LocalTask) -> RegionTask {
        RegionTask {
            name: self.name,
            id: self.id.map(|_| id),
            main: wrap(self.main.clone()),
            worker: wrap(self.worker.clone()),
        }
    }

    /// The task's name (its type name or registered path), for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The dense id of the task's registration, if it has one.
    pub fn id(&self) -> Option<u32> {
        self.id
    }

    /// The registration's id, or [`Error::TaskNotRegistered`] naming the
    /// task: what a backend whose ranks live in other processes needs.
    pub fn require_id(&self) -> Result<u32> {
        self.id.ok_or_else(|| Error::TaskNotRegistered {
            task: self.name.to_string(),
        })
    }

    /// Runs the task as rank `par` at the top of a region: main's form on
    /// main, the worker form on workers.
    pub fn run(&self, par: &dyn Parallelizer, args: Msg) -> Result<Msg> {
        let traced = trace::region(self.name, par.mode(), par.id(), par.nprocs());
        let result = if par.on_main() {
            (self.main)(par, args)
        } else {
            (self.worker)(par, args)
        };
        traced.end(&result);
        result
    }

    /// Runs main's form on this rank whichever it is: a `run` nested in a
    /// region, or an SPMD region where every rank gets its own result.
    pub fn run_here(&self, par: &dyn Parallelizer, args: Msg) -> Result<Msg> {
        let traced = trace::region(self.name, par.mode(), par.id(), par.nprocs());
        let result = (self.main)(par, args);
        traced.end(&result);
        result
    }
}

impl std::fmt::Debug for RegionTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionTask")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish()
    }
}

/// [`Core::check_contract`] with a contract: out of line, so that calls
/// without one stay small.
#[inline(never)]
fn check_with(contract: &Mutex<CallerContract>, rank: usize, call: &str) -> Result<()> {
    contract
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(rank, call)
}

/// Checks that `rank` addresses a rank of `par`.
#[inline]
pub fn check_rank<P: Parallelizer + ?Sized>(par: &P, rank: usize) -> Result<()> {
    let nprocs = par.nprocs();
    if rank >= nprocs {
        return Err(Error::InvalidRank { rank, nprocs });
    }
    Ok(())
}

pub mod collective;

/// The error for a group's message on a backend that cannot keep groups'
/// messages apart.
fn no_namespaces(mode: &str, op: Op) -> Error {
    Error::ContractViolation(format!(
        "`{op}` in a group made inside a region: the `{mode}` backend cannot keep a \
         group's messages apart from its parent's (its messages carry no group id)"
    ))
}

/// The error for a message-level call on a parallelizer (not a rank handle)
/// outside a region, where no other rank takes part.
fn outside_region(mode: &str, op: Op) -> Error {
    Error::ContractViolation(format!(
        "`{op}` on the `{mode}` parallelizer outside a region; call it inside `run`"
    ))
}
