//! The worker side: joining main, and the serve loop that
//! `#[parallelizer::main]` runs in a launched worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::entry::WorkerHook;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::parallelizer::{Core, Parallelizer};
use crate::task::{initializer, task_by_id};

use super::endpoint::Endpoint;
use super::frame::{Frame, Kind};
use super::launch::LaunchInfo;
use super::opts::Opts;
use super::protocol::Link;
use super::rank::{ProcRank, lock, run_guarded};

inventory::submit! {
    WorkerHook { serve: serve_if_launched }
}

/// The hook `worker_entry()` runs: serves if this process was launched as a
/// processes worker, else returns `None` at once.
fn serve_if_launched() -> Option<i32> {
    let info = match LaunchInfo::from_this_process()? {
        Ok(info) => info,
        Err(e) => {
            eprintln!("parallelizer: cannot join as a processes worker: {e}");
            return Some(2);
        }
    };
    Some(serve(info))
}

/// Why a worker could not join.
pub(super) enum JoinError {
    /// The worker initializer failed; main has its error (from the Hello).
    InitializerFailed,
    /// Anything else.
    Failed(Error),
}

impl From<Error> for JoinError {
    fn from(e: Error) -> JoinError {
        JoinError::Failed(e)
    }
}

impl JoinError {
    pub(super) fn into_error(self) -> Error {
        match self {
            JoinError::InitializerFailed => Error::Config("the worker initializer failed".into()),
            JoinError::Failed(e) => e,
        }
    }
}

/// Connects to main: adopts the inherited sockets, runs the initializer,
/// sends the Hello. `timeout` bounds the link's blocking calls.
pub(super) fn join(
    info: &LaunchInfo,
    spmd: bool,
    opts: &Opts,
    timeout: Option<Duration>,
) -> Result<Link, JoinError> {
    static JOINED: AtomicBool = AtomicBool::new(false);
    if JOINED.swap(true, Ordering::SeqCst) {
        return Err(JoinError::Failed(Error::Config(format!(
            "this process already joined as processes worker rank {}; a worker cannot \
             build a second processes parallelizer (nor start workers of its own)",
            info.rank()
        ))));
    }
    let config = info.config();
    if opts.prefix_output() {
        crate::runtime::set_output_relayed();
    }
    let ep = Endpoint::new(info.rank(), info.adopt_sockets()?, opts.max_frame());
    let link = Arc::new(Mutex::new(Link::new(ep, opts, timeout, None)));
    let init = run_initializer(config, &link);
    let hello = info.hello(spmd, init.as_ref());
    let mut link = Arc::try_unwrap(link)
        .map_err(|_| Error::Config("the initializer kept its parallelizer handle".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    link.send_note(0, Kind::Hello, &hello)?;
    if init.is_some() {
        return Err(JoinError::InitializerFailed);
    }
    Ok(link)
}

/// Runs `Config::initializer` once on this rank (a worker as it joins, or
/// main once its workers are up), where no other rank listens; its error,
/// if any.
pub(super) fn run_initializer(config: &Config, link: &Arc<Mutex<Link>>) -> Option<Error> {
    let (entry, args) = match initializer(config) {
        Ok(found) => found?,
        Err(e) => return Some(e),
    };
    let handle = Arc::new(ProcRank::new(Core::new(config.clone()), link.clone(), true));
    let rank = handle.id();
    let outcome = run_guarded(&handle, || entry.invoke(&*handle, args));
    drop(handle);
    outcome.err().map(|f| f.into_error(rank))
}

/// Serves regions until main says Shutdown or goes away; the exit code.
fn serve(info: LaunchInfo) -> i32 {
    super::trace::forward_if_asked();
    let rank = info.rank();
    let opts = match Opts::from_config(info.config()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("parallelizer: worker rank {rank}: {e}");
            return 2;
        }
    };
    let link = match join(&info, false, &opts, info.config().timeout) {
        Ok(link) => Arc::new(Mutex::new(link)),
        // Main has the reason from the Hello.
        Err(JoinError::InitializerFailed) => return 1,
        Err(JoinError::Failed(e)) => {
            // Main sees EOF.
            eprintln!("parallelizer: worker rank {rank} cannot join: {e}");
            return 1;
        }
    };
    let config = Arc::new(info.into_config());
    loop {
        let next = lock(&link).next_control(None);
        match next {
            // Main is gone: nothing left to serve.
            Err(_) | Ok(None) => return 0,
            Ok(Some((0, frame))) => match frame.header().kind() {
                Kind::Shutdown => return 0,
                Kind::Run => run_one(&link, &config, frame),
                _ => {}
            },
            Ok(Some(_)) => {}
        }
    }
}

/// Runs one region on this worker and reports its end to main.
fn run_one(link: &Arc<Mutex<Link>>, config: &Arc<Config>, frame: Frame) {
    lock(link).begin_region(frame.header().region());
    let handle = Arc::new(ProcRank::new(
        Core::shared(config.clone()),
        link.clone(),
        false,
    ));
    let rank = handle.id();
    let outcome = run_guarded(&handle, || {
        let body = frame.bytes()?;
        if body.len() < 4 {
            return Err(Error::Codec("a Run frame without a task id".into()));
        }
        let id = u32::from_le_bytes(body[..4].try_into().expect("4 bytes"));
        let entry = task_by_id(id)?;
        let traced = crate::trace::region(entry.path, handle.mode(), rank, handle.nprocs());
        let done = entry.invoke(
            &*handle,
            Msg::from_bytes(Encoding::Serde, body[4..].to_vec()),
        );
        traced.end(&done);
        done
    });
    drop(handle);
    let error = outcome.err().map(|f| f.into_error(rank));
    let mut link = lock(link);
    // A task that fails because another rank aborted the region (say, it
    // wrapped `Aborted` in its own error type) reports the abort, not a
    // failure of its own.
    let error = match (error, link.take_failure()) {
        (None, _) => None,
        (Some(_), Some((by_rank, _))) if by_rank != rank => Some(Error::Aborted { by_rank }),
        // This rank's transport saw the failure first (a corrupt stream):
        // report that, not what the task made of it.
        (Some(_), Some((_, Some(cause)))) => Some(cause),
        (Some(err), _) => Some(err),
    };
    if let Some(err) = &error {
        if !err.is_secondary() {
            link.record_failure(rank, None);
            link.broadcast_abort(Some(err), false);
        }
    }
    link.send_done(error.as_ref());
}
