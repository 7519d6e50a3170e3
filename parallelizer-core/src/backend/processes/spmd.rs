//! The no-guard mode (SPMD): a worker runs `main` from the top and joins
//! when it builds the same `processes` parallelizer; `run(closure, args)`
//! then runs the closure on every rank, each from its own `main`.

use std::panic::resume_unwind;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::parallelizer::{Core, Parallelizer, Region};

use super::launch::LaunchInfo;
use super::opts::Opts;
use super::protocol::Link;
use super::rank::{Failure, ProcRank, lock, run_guarded};
use super::serve;

/// Joins main as worker `info.rank()` of an SPMD program that builds a
/// `processes` parallelizer of `nprocs` ranks from `config`.
pub(super) fn join(
    info: &LaunchInfo,
    nprocs: usize,
    config: &Config,
    opts: &Opts,
) -> Result<Arc<Mutex<Link>>> {
    if info.nprocs() != nprocs {
        return Err(Error::Config(format!(
            "this process is worker rank {} of a {}-rank processes launch, \
             but builds `{config}`; every rank must build the same parallelizer",
            info.rank(),
            info.nprocs()
        )));
    }
    let mut link =
        serve::join(info, true, opts, config.timeout).map_err(serve::JoinError::into_error)?;
    // A rank ends by returning from `main`: only a receive from it fails.
    link.set_eof_fails_region(false);
    Ok(Arc::new(Mutex::new(link)))
}

/// Runs a region SPMD: this rank runs the closure; the other ranks run
/// theirs from their own `main`. A failure is final for the group.
pub(super) fn run(core: Core, link: Arc<Mutex<Link>>, region: Region) -> Result<Msg> {
    let handle = Arc::new(ProcRank::new(core, link.clone(), false));
    let me = handle.id();
    let (task, args) = region.into_parts();
    let outcome = run_guarded(&handle, || task.run_here(&*handle, args));
    let mut link = lock(&link);
    match outcome {
        // Another rank failed during the region: that is the result.
        Ok(v) => match link.take_failure() {
            Some((by_rank, Some(cause))) if by_rank != me => Err(cause),
            _ => Ok(v),
        },
        Err(Failure::Error(err)) if err.is_secondary() || link.aborted_by().is_some() => {
            match link.take_failure() {
                Some((_, Some(cause))) => Err(cause),
                _ => Err(err),
            }
        }
        Err(Failure::Error(err)) => {
            fail(&mut link, &err);
            Err(err)
        }
        Err(Failure::Panic(panic, message)) => {
            fail(&mut link, &Error::WorkerPanicked { rank: me, message });
            drop(link);
            resume_unwind(panic)
        }
    }
}

/// This rank failed with `err`: the region is aborted on every rank.
fn fail(link: &mut Link, err: &Error) {
    let me = link.rank();
    link.record_failure(me, None);
    link.broadcast_abort(Some(err), true);
}
