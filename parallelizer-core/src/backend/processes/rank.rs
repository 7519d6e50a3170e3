//! A rank's handle inside a region ([`ProcRank`]), running a task as that
//! rank ([`run_guarded`]), and main's result of a region ([`settle`]).

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::outcome::panic_message;
use crate::parallelizer::{Core, Parallelizer, Region, check_rank};
use crate::runtime::set_current;

use super::protocol::Link;

/// Locks `m`, poisoned or not: a panic caught in a task leaves a link (or
/// the pool) in a usable state, since each call leaves it consistent.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One rank's handle inside a region (main or worker).
pub(super) struct ProcRank {
    core: Core,
    id: usize,
    nprocs: usize,
    link: Arc<Mutex<Link>>,
    /// The worker initializer's handle: no other rank is listening.
    init_only: bool,
}

impl ProcRank {
    /// Rank `link.rank()`'s handle with state `core`; `init_only` for the
    /// worker initializer.
    pub(super) fn new(core: Core, link: Arc<Mutex<Link>>, init_only: bool) -> ProcRank {
        let (id, nprocs) = {
            let link = lock(&link);
            (link.rank(), link.nprocs())
        };
        ProcRank {
            core,
            id,
            nprocs,
            link,
            init_only,
        }
    }

    fn check(&self, op: &str) -> Result<()> {
        if self.init_only {
            return Err(Error::ContractViolation(format!(
                "`{op}` in the worker initializer, where no other rank takes part"
            )));
        }
        Ok(())
    }
}

impl Parallelizer for ProcRank {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        self.id
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        !self.init_only
    }
    fn send_msg(&self, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        self.check("send")?;
        check_rank(self, to)?;
        lock(&self.link).send(msg, to)
    }
    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        self.check("receive")?;
        check_rank(self, from)?;
        lock(&self.link).recv(from)?.into_msg()
    }
    fn send_msg_in(&self, group: u64, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        self.check("send")?;
        check_rank(self, to)?;
        lock(&self.link).send_in(group, msg, to)
    }
    fn recv_msg_in(&self, group: u64, from: usize, _tag: Tag) -> Result<Msg> {
        self.check("receive")?;
        check_rank(self, from)?;
        lock(&self.link).recv_in(group, from)?.into_msg()
    }
    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        self.check("broadcast")?;
        broadcast(&self.link, msg)
    }
    fn run_region(&self, region: Region) -> Result<Msg> {
        // Inside a region every rank runs a nested `run` itself (SPMD).
        let (task, args) = region.into_parts();
        task.run_here(self, args)
    }
}

/// A broadcast on rank `link.rank()`: main sends `msg`, the others receive it.
pub(super) fn broadcast(link: &Mutex<Link>, msg: Option<Msg>) -> Result<Msg> {
    let mut link = lock(link);
    if link.rank() != 0 {
        return link.recv(0)?.into_msg();
    }
    let msg = msg.ok_or_else(|| {
        Error::ContractViolation("main must pass Some(data) to broadcast; workers pass None".into())
    })?;
    link.broadcast(&msg)?;
    Ok(msg)
}

/// A rank's failure: an error, or a panic with its payload and message.
pub(super) enum Failure {
    Error(Error),
    Panic(Box<dyn std::any::Any + Send>, String),
}

impl Failure {
    /// The error a worker reports for it (a panic's payload stays here).
    pub(super) fn into_error(self, rank: usize) -> Error {
        match self {
            Failure::Error(e) => e,
            Failure::Panic(_, message) => Error::WorkerPanicked { rank, message },
        }
    }

    /// Whether this rank failed on its own account (not only released by
    /// another rank's failure).
    pub(super) fn is_primary(&self) -> bool {
        !matches!(self, Failure::Error(e) if e.is_secondary())
    }
}

thread_local! {
    /// The links of the ranks running on this thread, innermost last.
    static CURRENT_LINK: RefCell<Vec<Arc<Mutex<Link>>>> = const { RefCell::new(Vec::new()) };
}

/// The link of the rank running on this thread, if any.
pub(super) fn current_link() -> Option<Arc<Mutex<Link>>> {
    CURRENT_LINK.with(|c| c.borrow().last().cloned())
}

/// Runs `f` as rank `handle`: `current()` is the handle, panics are caught.
pub(super) fn run_guarded<T>(
    handle: &Arc<ProcRank>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T, Failure> {
    CURRENT_LINK.with(|c| c.borrow_mut().push(handle.link.clone()));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _current = set_current(handle.clone());
        f()
    }));
    CURRENT_LINK.with(|c| c.borrow_mut().pop());
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::Error(e)),
        Err(panic) => {
            let message = panic_message(&*panic);
            Err(Failure::Panic(panic, message))
        }
    }
}

/// Main's result of a region: main's value, or the first failure (a worker's
/// error, or main's own panic resumed), as the threads backend does.
pub(super) fn settle(
    outcome: Result<Msg, Failure>,
    failure: Option<(usize, Option<Error>)>,
    statuses: &[Option<String>],
) -> Result<Msg> {
    let fix = |e: Error| match e {
        Error::WorkerDied { rank, status } => Error::WorkerDied {
            rank,
            status: statuses.get(rank).cloned().flatten().unwrap_or(status),
        },
        other => other,
    };
    match (outcome, failure) {
        (Ok(v), None) => Ok(v),
        (Err(Failure::Panic(p, _)), None | Some((0, _))) => resume_unwind(p),
        (Err(Failure::Error(e)), None | Some((0, _))) => Err(fix(e)),
        (_, Some((_, Some(cause)))) => Err(fix(cause)),
        (_, Some((rank, None))) => Err(Error::Aborted { by_rank: rank }),
    }
}
