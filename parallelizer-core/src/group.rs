//! Groups of ranks (McUtils `comm=`, MPI communicators): a rank's handle in
//! a group ([`GroupRank`]), a parallelizer that runs its regions on some of
//! another's ranks ([`Group`]), and the registered task that carries a
//! group's region to ranks in other processes.
//!
//! A group's ranks are renumbered from 0 in member order. Its messages live
//! in a namespace of their own, the group id: every message a group's
//! handle sends is tagged with it (the region protocol puts it in each
//! packet's header and keeps one set of mailboxes per group), so a group's
//! calls never take its parent's messages, nor the parent its group's.
//! Members agree on the id without talking: a group made by `split` takes
//! it from the parent's id, the split's call number and the color; one made
//! by `subgroup` inside a region from the parent's id, the members and how
//! many groups of the same members the parent made before. The regions of
//! a [`Group`] made outside a region use the namespace of the region itself
//! (nothing else talks in it), so they work on every backend.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::attach::Nested;
use crate::error::{Error, Result, Wait};
use crate::msg::{Encoding, Msg};
use crate::op::Tag;
use crate::parallelizer::{Core, Job, LocalTask, Parallelizer, Region, check_rank};
use crate::registry::rank_of;
use crate::runtime::{self, set_current};
use crate::segment::SharedMemory;
use crate::task::{TASKS, TaskEntry, TaskKind, task_by_id};

/// The path under which the group task is registered; tasks under
/// `parallelizer_core::` are the framework's own.
pub(crate) const GROUP_TASK_PATH: &str = "parallelizer_core::group::region";

/// The registered task of a group's region: ranks in other processes run
/// it with [`GroupArgs`], and it runs the real task on the members' group
/// handles.
#[linkme::distributed_slice(TASKS)]
#[linkme(crate = linkme)]
static GROUP_TASK: TaskEntry = TaskEntry {
    path: GROUP_TASK_PATH,
    // No fn item type has this name, so `run(f)` never finds this entry.
    type_name: || "<parallelizer_core::group::region>",
    kind: TaskKind::Region(run_registered),
};

/// What a group's region sends to every rank: the members, the group's
/// namespace, and the real task (its registration, if any) and arguments.
#[derive(Debug, Serialize, Deserialize)]
struct GroupArgs {
    members: Vec<usize>,
    group: u64,
    /// The dense id of the real task's registration (`u32::MAX`: none).
    task: u32,
    /// The arguments, with their attachments (shared arrays).
    args: Nested,
    type_name: Option<String>,
}

impl GroupArgs {
    /// The real task's arguments.
    fn inner_args(&self) -> Msg {
        let msg = Msg::from_wire(
            Encoding::Serde,
            self.args.bytes.clone(),
            self.args.attached.clone(),
        );
        match &self.type_name {
            Some(name) => msg.sent_as(name),
            None => msg,
        }
    }
}

/// The worker side of the group task, registered: a member runs the real
/// registered task on its group handle; the others sit the region out.
fn run_registered(par: &dyn Parallelizer, args: Msg) -> Result<()> {
    let ga: GroupArgs = args.into_value()?;
    if !ga.members.contains(&par.id()) {
        return Ok(());
    }
    let entry = task_by_id(ga.task)?;
    let group = join(par, &ga.members, ga.group, 0)?;
    let _current = set_current(group.clone());
    entry
        .invoke(&*group, ga.inner_args())
        .map_err(|e| to_parent_rank(e, &ga.members))
}

/// The region that runs `region`'s task on the ranks `members` (of the
/// parallelizer running the region) as group handles in namespace `group`,
/// each stamped with `family`; the other ranks sit it out.
pub(crate) fn region_of(
    region: Region,
    members: Arc<[usize]>,
    group: u64,
    family: u64,
) -> Result<Region> {
    let (task, args) = region.into_parts();
    let wire = GroupArgs {
        members: members.to_vec(),
        group,
        task: task.id().unwrap_or(u32::MAX),
        args: {
            let (bytes, attached) = args.to_wire()?;
            Nested { bytes, attached }
        },
        type_name: args.type_name().map(str::to_string),
    };
    let wrap = |inner: LocalTask| -> LocalTask {
        let members = members.clone();
        Arc::new(move |p: &dyn Parallelizer, msg: Msg| {
            let ga: GroupArgs = msg.into_value()?;
            if !members.contains(&p.id()) {
                if p.on_main() {
                    return Err(not_a_member(p.id(), &members));
                }
                return Ok(Msg::local(()));
            }
            let group = join(p, &members, group, family)?;
            let _current = set_current(group.clone());
            inner(&*group, ga.inner_args()).map_err(|e| to_parent_rank(e, &members))
        })
    };
    let task = task.wrapped(GROUP_TASK.id(), wrap);
    Ok(Region::new(task, Msg::new(wire)))
}

/// This rank's handle in the group of `members` of `par` in namespace
/// `group`, in the regions of the parallelizer whose id is `family` (0:
/// none): the backend's own (MPI: a communicator), else a [`GroupRank`].
pub(crate) fn join(
    par: &dyn Parallelizer,
    members: &[usize],
    group: u64,
    family: u64,
) -> Result<Arc<dyn Parallelizer>> {
    if let Some(native) = par.group_handle(members, group)? {
        native.core().join_family(family);
        return Ok(native);
    }
    let core = Core::for_group(par.core().config_arc().clone(), family);
    let parent = arc_of(par).ok_or_else(|| {
        Error::ContractViolation(format!(
            "cannot make a group of rank {}: its handle is neither the rank's current handle \
             nor in an `Arc` built by `backend::new`",
            par.id()
        ))
    })?;
    Ok(GroupRank::handle(parent, members, group, core))
}

/// The `Arc` that `par` lives in: the one it was built in, or the rank
/// handle this thread runs.
fn arc_of(par: &dyn Parallelizer) -> Option<Arc<dyn Parallelizer>> {
    par.core().this().or_else(|| runtime::current_as(par))
}

/// Checks a list of members of a parallelizer of `nprocs` ranks: not
/// empty, every rank in range, none twice.
pub(crate) fn check_members(members: &[usize], nprocs: usize) -> Result<()> {
    if members.is_empty() {
        return Err(Error::ContractViolation(
            "a group needs at least one member".into(),
        ));
    }
    for (i, &rank) in members.iter().enumerate() {
        if rank >= nprocs || members[..i].contains(&rank) {
            return Err(Error::InvalidRank { rank, nprocs });
        }
    }
    Ok(())
}

/// The error for a rank that is not among `members`.
pub(crate) fn not_a_member(rank: usize, members: &[usize]) -> Error {
    Error::ContractViolation(format!(
        "rank {rank} is not a member of the group {members:?}: inside a region only the \
         members call `subgroup` (`split` is the form every rank calls)"
    ))
}

/// A well-mixed, nonzero 64-bit id from `parts` (splitmix64 steps): the id
/// of a group, which its members compute alike. Two live groups of one
/// rank collide with a chance of about 2^-64 per pair.
pub(crate) fn group_id(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h ^= p;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h.max(1)
}

/// `members` as one number, for [`group_id`].
pub(crate) fn members_hash(members: &[usize]) -> u64 {
    let parts: Vec<u64> = members.iter().map(|&m| m as u64).collect();
    group_id(&parts)
}

/// A rank's handle in a group: the ranks `members` of its parent handle,
/// renumbered from 0 in that order, talking in namespace `group` through
/// the parent's [`send_msg_in`](Parallelizer::send_msg_in) and
/// [`recv_msg_in`](Parallelizer::recv_msg_in). The collectives are the
/// defaults built from those.
pub struct GroupRank {
    core: Core,
    parent: Arc<dyn Parallelizer>,
    members: Arc<[usize]>,
    id: usize,
    group: u64,
}

impl GroupRank {
    /// `parent`'s handle in the group of `members` (which holds
    /// `parent.id()`), in namespace `group`, with state `core`.
    pub(crate) fn handle(
        parent: Arc<dyn Parallelizer>,
        members: &[usize],
        group: u64,
        core: Core,
    ) -> Arc<dyn Parallelizer> {
        let id = members
            .iter()
            .position(|&m| m == parent.id())
            .expect("the caller checked membership");
        let handle: Arc<dyn Parallelizer> = Arc::new(GroupRank {
            core,
            parent,
            members: members.into(),
            id,
            group,
        });
        handle.core().bind_handle(Arc::downgrade(&handle));
        handle
    }
}

impl Parallelizer for GroupRank {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        self.id
    }
    fn nprocs(&self) -> usize {
        self.members.len()
    }
    fn world_rank(&self) -> usize {
        self.parent.world_rank()
    }
    fn mode(&self) -> &str {
        self.parent.mode()
    }
    fn pid(&self) -> u32 {
        self.parent.pid()
    }
    fn in_region(&self) -> bool {
        true
    }
    fn shared_memory(&self) -> Result<&dyn SharedMemory> {
        self.parent.shared_memory()
    }
    fn send_msg(&self, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        self.send_msg_in(self.group, msg, to, tag)
    }
    fn recv_msg(&self, from: usize, tag: Tag) -> Result<Msg> {
        self.recv_msg_in(self.group, from, tag)
    }
    fn send_msg_in(&self, group: u64, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        self.parent.send_msg_in(group, msg, self.members[to], tag)
    }
    fn recv_msg_in(&self, group: u64, from: usize, tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        self.parent.recv_msg_in(group, self.members[from], tag)
    }
    fn group_id(&self) -> u64 {
        self.group
    }
    fn run_region(&self, region: Region) -> Result<Msg> {
        // A `run` inside a group's region: every member runs it itself,
        // with the group's handle as `current()` (on `serial`, where a
        // group is made and run outside any region, nothing else sets it).
        let _current = self.core.this().map(set_current);
        region.run_here(self)
    }
    fn threads_per_rank(&self) -> usize {
        self.parent.threads_per_rank()
    }
    fn run_jobs(&self, jobs: Vec<Job<'_>>) {
        self.parent.run_jobs(jobs)
    }
}

impl std::fmt::Debug for GroupRank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupRank")
            .field("id", &self.id)
            .field("members", &self.members)
            .field("group", &self.group)
            .finish()
    }
}

/// A parallelizer whose regions run on the ranks `members` of `root`
/// (McUtils `comm=[...]`), renumbered from 0; made on main outside a region
/// by `subgroup`. Main is its rank 0. Entering it enters `root` (starting
/// its workers); the other ranks of `root` sit its regions out.
pub(crate) struct Group {
    core: Core,
    root: Arc<dyn Parallelizer>,
    members: Arc<[usize]>,
}

impl Group {
    /// The group of `members` (checked, main first) of `root`.
    pub(crate) fn new(root: Arc<dyn Parallelizer>, members: &[usize]) -> Group {
        Group {
            core: Core::shared(root.core().config_arc().clone()),
            root,
            members: members.into(),
        }
    }

    /// `e`, whose ranks are `root`'s, with the members' ranks in the group.
    fn to_group_rank(&self, e: Error) -> Error {
        let map = |r: usize| self.members.iter().position(|&m| m == r).unwrap_or(r);
        match e {
            Error::WorkerPanicked { rank, message } => Error::WorkerPanicked {
                rank: map(rank),
                message,
            },
            Error::TaskFailed { rank, message } => Error::TaskFailed {
                rank: map(rank),
                message,
            },
            Error::WorkerDied { rank, status } => Error::WorkerDied {
                rank: map(rank),
                status,
            },
            Error::Timeout { op, rank, after } => Error::Timeout {
                op,
                rank: map(rank),
                after,
            },
            Error::Aborted { by_rank } => Error::Aborted {
                by_rank: map(by_rank),
            },
            Error::Deadlock { waits } => Error::Deadlock {
                waits: waits
                    .into_iter()
                    .map(|w| Wait {
                        rank: map(w.rank),
                        on: map(w.on),
                        ..w
                    })
                    .collect(),
            },
            other => other,
        }
    }
}

impl Parallelizer for Group {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        0
    }
    fn nprocs(&self) -> usize {
        self.members.len()
    }
    fn mode(&self) -> &str {
        self.root.mode()
    }
    fn pid(&self) -> u32 {
        self.root.pid()
    }
    fn in_region(&self) -> bool {
        false
    }
    fn shared_memory(&self) -> Result<&dyn SharedMemory> {
        self.root.shared_memory()
    }
    fn initialize(&self) -> Result<()> {
        hold(&*self.root)
    }
    fn finalize(&self) -> Result<()> {
        release(&*self.root)
    }
    fn run_region(&self, region: Region) -> Result<Msg> {
        if let Some(rank) = rank_of(self) {
            // `run` on the group inside one of its own regions.
            return rank.run_region(region);
        }
        let region = region_of(region, self.members.clone(), 0, self.core.uid())?;
        self.root
            .run_region(region)
            .map_err(|e| self.to_group_rank(e))
    }
    fn threads_per_rank(&self) -> usize {
        self.root.threads_per_rank()
    }
    fn run_jobs(&self, jobs: Vec<Job<'_>>) {
        self.root.run_jobs(jobs)
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("mode", &self.root.mode())
            .field("members", &self.members)
            .finish()
    }
}

/// Enters `par` for a group that lives in it: initializes it at the
/// outermost enter, as an enter guard would (without making it the
/// default; the group is).
fn hold(par: &dyn Parallelizer) -> Result<()> {
    let core = par.core();
    if core.enter_depth() == 0 {
        if let Err(e) = par.initialize() {
            core.leave_depth();
            return Err(e);
        }
    }
    Ok(())
}

/// Undoes [`hold`].
fn release(par: &dyn Parallelizer) -> Result<()> {
    if par.core().leave_depth() == 0 {
        par.finalize()
    } else {
        Ok(())
    }
}

/// A `TaskFailed` a group's task reported with its group rank, with the
/// rank in the parent instead, as every other failure is reported.
fn to_parent_rank(e: Error, members: &[usize]) -> Error {
    match e {
        Error::TaskFailed { rank, message } => Error::TaskFailed {
            rank: members.get(rank).copied().unwrap_or(rank),
            message,
        },
        other => other,
    }
}
