//! The worker side: joining main, and the serve loop that
//! `#[parallelizer::main]` runs in a launched worker.

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::entry::WorkerHook;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg, encode_serde};
use crate::parallelizer::Core;
use crate::task::{task_by_id, task_by_path};

use super::launch::LaunchInfo;
use super::wire::{DoneNote, Endpoint, Header, Kind};
use super::{Failure, Hello, Opts, ProcRank, lock, run_guarded};

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

/// Connects to main: adopts the inherited sockets, runs the initializer,
/// sends the Hello.
pub(super) fn join(info: &LaunchInfo, spmd: bool, opts: &Opts) -> Result<Endpoint> {
    static JOINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if JOINED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::Config(format!(
            "this process already joined as processes worker rank {}; a worker cannot \
             build a second processes parallelizer (nor start workers of its own)",
            info.rank
        )));
    }
    let rank = info.rank as usize;
    let nprocs = info.nprocs as usize;
    let mut ep = Endpoint::new(rank, nprocs, info.adopt_fds()?);
    opts.apply(&mut ep, &info.config);
    let ep = Arc::new(Mutex::new(ep));
    let init = run_initializer(&info.config, rank, nprocs, &ep);
    let failed = init.is_some();
    let hello = Hello {
        rank: info.rank,
        pid: std::process::id(),
        token: info.token,
        spmd,
        init,
    };
    let mut body = Vec::new();
    encode_serde(&hello, &mut body)?;
    let mut ep = Arc::try_unwrap(ep)
        .map_err(|_| Error::Config("the initializer kept its parallelizer handle".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    ep.write_frame(
        0,
        Header::new(Kind::Hello, 0, body.len() as u64),
        &[&body],
        None,
        false,
    )?;
    if failed {
        return Err(Error::Config("the worker initializer failed".into()));
    }
    Ok(ep)
}

/// Runs `Config::initializer` once on this worker; its error, if any.
fn run_initializer(
    config: &Config,
    rank: usize,
    nprocs: usize,
    ep: &Arc<Mutex<Endpoint>>,
) -> Option<Error> {
    let path = config.initializer.as_ref()?;
    let entry = match task_by_path(path) {
        Ok(e) => e,
        Err(e) => return Some(e),
    };
    let handle = Arc::new(ProcRank {
        core: Core::new(config.clone()),
        id: rank,
        nprocs,
        ep: ep.clone(),
        init_only: true,
    });
    let outcome = run_guarded(&handle, || entry.invoke(&*handle, Msg::new(())));
    drop(handle);
    match outcome {
        Ok(()) => None,
        Err(Failure::Error(e)) => Some(e),
        Err(Failure::Panic(_, message)) => Some(Error::WorkerPanicked { rank, message }),
    }
}

/// Serves regions until main says Shutdown or goes away; the exit code.
fn serve(info: LaunchInfo) -> i32 {
    let opts = match Opts::from_config(&info.config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("parallelizer: worker rank {}: {e}", info.rank);
            return 2;
        }
    };
    let ep = match join(&info, false, &opts) {
        Ok(ep) => ep,
        Err(e) => {
            // Main has the reason (the Hello carries it) or sees EOF.
            if !matches!(e, Error::Config(ref m) if m.contains("initializer failed")) {
                eprintln!("parallelizer: worker rank {} cannot join: {e}", info.rank);
            }
            return 1;
        }
    };
    let rank = info.rank as usize;
    let nprocs = info.nprocs as usize;
    let config = Arc::new(info.config);
    let ep = Arc::new(Mutex::new(ep));
    loop {
        let next = lock(&ep).next_control(None);
        match next {
            // Main is gone: nothing left to serve.
            Err(_) | Ok(None) => return 0,
            Ok(Some((0, frame))) => match frame.header.kind {
                Kind::Shutdown => return 0,
                Kind::Run => run_one(&ep, &config, rank, nprocs, frame),
                _ => {}
            },
            Ok(Some(_)) => {}
        }
    }
}

/// Runs one region on this worker and reports its end to main.
fn run_one(
    ep: &Arc<Mutex<Endpoint>>,
    config: &Arc<Config>,
    rank: usize,
    nprocs: usize,
    frame: super::wire::Frame,
) {
    let region = frame.header.region;
    lock(ep).begin_region(region);
    let handle = Arc::new(ProcRank {
        core: Core::shared(config.clone()),
        id: rank,
        nprocs,
        ep: ep.clone(),
        init_only: false,
    });
    let outcome = run_guarded(&handle, || {
        let body = frame.bytes()?;
        if body.len() < 4 {
            return Err(Error::Codec("a Run frame without a task id".into()));
        }
        let id = u32::from_le_bytes(body[..4].try_into().expect("4 bytes"));
        let entry = task_by_id(id)?;
        entry.invoke(
            &*handle,
            Msg::from_bytes(Encoding::Serde, body[4..].to_vec()),
        )
    });
    drop(handle);
    let error = match outcome {
        Ok(()) => None,
        Err(Failure::Error(e)) => Some(e),
        Err(Failure::Panic(_, message)) => Some(Error::WorkerPanicked { rank, message }),
    };
    let mut e = lock(ep);
    // A task that fails because another rank aborted the region (say, it
    // wrapped `Aborted` in its own error type) reports the abort, not a
    // failure of its own.
    let error = match (error, e.take_failure()) {
        (None, _) => None,
        (Some(_), Some((by_rank, _))) if by_rank != rank => Some(Error::Aborted { by_rank }),
        // This rank's transport saw the failure first (a corrupt stream):
        // report that, not what the task made of it.
        (Some(_), Some((_, Some(cause)))) => Some(cause),
        (Some(err), _) => Some(err),
    };
    if let Some(err) = &error {
        if !err.is_secondary() {
            e.record_failure(rank, None);
            e.broadcast_abort(Some(err), false);
        }
    }
    let report = DoneNote {
        error: error.clone(),
        broken: e.any_unreadable(),
    };
    let mut body = Vec::new();
    if encode_serde(&report, &mut body).is_ok() {
        let h = Header::new(Kind::Done, region, body.len() as u64);
        let _ = e.write_frame(0, h, &[&body], None, false);
    }
}
