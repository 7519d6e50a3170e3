//! The no-guard mode (SPMD): a worker runs `main` from the top and joins
//! when it builds the same `processes` parallelizer; `run(closure, args)`
//! then runs the closure on every rank, each from its own `main`, and the
//! collectives called on the parallelizer itself pair up between the ranks'
//! programs.
//!
//! Every rank runs the same region protocol as under the guard:
//!
//! - **Regions.** Each `run` is a region numbered by the rank itself (1, 2,
//!   ... in call order: the ranks of an SPMD program make the same `run`
//!   calls), with its own [`LinkRank`]; main settles it (`finish_main`) and
//!   each worker reports to main (`finish_worker`) and returns its own
//!   value, or the error of the rank that failed first.
//! - **The ambient region** (number 0) holds the calls made on the
//!   parallelizer outside any `run`: one `LinkRank` for the life of the
//!   program. A failure in it is final: every later ambient call fails with
//!   that rank's error (not `Aborted`), as MPI's would. It has no deadline
//!   (`Config::timeout` bounds each `run`); deadlocks and deaths are found
//!   as in a region.
//! - **A worker's end.** When a worker's parallelizer is dropped — its
//!   `main` returned, or is unwinding from a panic — it reports its end of
//!   the ambient region to main: done, or `WorkerPanicked` with the panic's
//!   message (remembered by a panic hook this mode installs on workers).
//!   A worker that exits without dropping it is seen by EOF and its exit
//!   status. Either way the next call on main that involves it fails with
//!   that error.
//! - **Main's end.** Main's drop waits for the workers to finish (up to 10
//!   s). If one of them failed and main never returned an error naming it,
//!   main's process exits with that worker's exit status after the
//!   worker's own output (as `mpirun` does), so a failure is never lost.

use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::link::{Limits, LinkRank};
use crate::msg::{Encoding, Msg};
use crate::outcome::{Outcome, panic_message, resume_unwinding};
use crate::parallelizer::{Core, Parallelizer, Region};
use crate::runtime::run_as;

use super::faults::with_port;
use super::launch::LaunchInfo;
use super::opts::Opts;
use super::port::{Net, Port};
use super::serve;
use super::session::{describe, lock};

/// One rank's part in an SPMD program: its sockets, the ambient region and
/// the count of regions.
pub(super) struct Spmd {
    net: Arc<Net>,
    ambient: Arc<LinkRank<Port>>,
    limits: Limits,
    regions: AtomicU64,
    /// Main: the workers named by an error main returned to its caller.
    reported: Mutex<Vec<bool>>,
}

impl Spmd {
    /// This rank's part, over `net`, in the program whose parallelizer has
    /// the state `core`.
    pub(super) fn new(core: &Core, net: Arc<Net>, limits: Limits) -> Arc<Spmd> {
        // The ambient region lasts as long as the program: no deadline.
        let ambient_limits = Limits {
            timeout: None,
            ..limits
        };
        let (rank, nprocs) = (net.rank(), net.nprocs());
        let port = net.port(0, None, None);
        let ambient = LinkRank::new(core, rank, nprocs, 0, ambient_limits, port);
        Arc::new(Spmd {
            net,
            ambient: Arc::new(ambient),
            limits,
            regions: AtomicU64::new(0),
            reported: Mutex::new(vec![false; nprocs]),
        })
    }

    /// The handle of the ambient region.
    pub(super) fn ambient(&self) -> &LinkRank<Port> {
        &self.ambient
    }

    /// The result of a call in the ambient region: a release is replaced
    /// by its cause, the error of the rank that failed.
    pub(super) fn ambient_result<T>(&self, r: Result<T>) -> Result<T> {
        let r = r.map_err(|e| match e {
            Error::Aborted { .. } => self.ambient.failure().map_or(e, |(_, cause)| cause),
            other => other,
        });
        self.note(r)
    }

    /// Main: remembers the rank an error names, so that its failure is
    /// known to have reached the caller.
    fn note<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let rank = match e {
                Error::WorkerPanicked { rank, .. }
                | Error::TaskFailed { rank, .. }
                | Error::WorkerDied { rank, .. } => Some(*rank),
                Error::Aborted { by_rank } => Some(*by_rank),
                _ => None,
            };
            if let Some(r) = rank {
                if let Some(seen) = lock(&self.reported).get_mut(r) {
                    *seen = true;
                }
            }
        }
        r
    }

    /// Runs a `run` region on this rank: the closure here, the other ranks
    /// run theirs from their own `main`.
    pub(super) fn run(&self, core: &Core, region: Region) -> Result<Msg> {
        let id = self.regions.fetch_add(1, Ordering::SeqCst) + 1;
        let (me, nprocs) = (self.net.rank(), self.net.nprocs());
        // Only main's sends give up at the deadline: each rank begins the
        // region on its own, and a worker that began long before main (still
        // at work before its `run`) would give up on a region main has just
        // begun. A worker's send blocked on a late peer gives up when main
        // says the deadline passed (`Limits::settle`).
        let deadline = match me {
            0 => self.limits.deadline(),
            _ => None,
        };
        let port = self.net.port(id, deadline, self.limits.timeout);
        let rank = Arc::new(LinkRank::new(core, me, nprocs, id, self.limits, port));
        let handle: Arc<dyn Parallelizer> = rank.clone();
        let (task, args) = region.into_parts();
        let outcome = with_port(&self.net, id, || {
            run_as(&handle, |p| task.run_here(p, args))
        });
        if me == 0 {
            return self.note(rank.finish_main(outcome).result);
        }
        let report = match &outcome {
            Outcome::Done(_) => Outcome::Done(Msg::from_bytes(Encoding::Serde, Vec::new())),
            Outcome::Failed(e) => Outcome::Failed(e.clone()),
            Outcome::Panicked(p) => Outcome::Failed(Error::WorkerPanicked {
                rank: me,
                message: panic_message(&**p),
            }),
        };
        let report = rank.transport().blame(report);
        rank.finish_worker(report);
        let cause = || rank.failure().filter(|(by, _)| *by != me).map(|(_, e)| e);
        match outcome {
            Outcome::Panicked(p) => resume_unwinding(p),
            Outcome::Failed(e) if e.is_secondary() => Err(cause().unwrap_or(e)),
            Outcome::Failed(e) => Err(e),
            // Another rank failed during the region: that is the result.
            Outcome::Done(v) => cause().map_or(Ok(v), Err),
        }
    }

    /// A worker's end of the program (its parallelizer is dropped): reports
    /// its end of the ambient region to main, then closes its sockets.
    pub(super) fn leave(&self) {
        let me = self.net.rank();
        let outcome = if std::thread::panicking() {
            let message = lock(last_panic()).take();
            Outcome::Failed(Error::WorkerPanicked {
                rank: me,
                message: message.unwrap_or_else(|| "a panic (see its output)".into()),
            })
        } else {
            Outcome::Done(Msg::from_bytes(Encoding::Serde, Vec::new()))
        };
        self.ambient.finish_worker(outcome);
        self.net.close_all();
    }

    /// Main, once the workers are reaped: if one failed and no error naming
    /// it reached main's caller, says so and exits with its status.
    pub(super) fn check_exits(&self, statuses: &[Option<ExitStatus>]) {
        if std::thread::panicking() {
            return; // main fails anyway
        }
        let reported = lock(&self.reported).clone();
        let failed: Vec<(usize, ExitStatus)> = statuses
            .iter()
            .enumerate()
            .filter_map(|(r, s)| s.filter(|s| !s.success()).map(|s| (r, s)))
            .filter(|(r, _)| !reported[*r])
            .collect();
        let Some((_, first)) = failed.first() else {
            return;
        };
        for (r, status) in &failed {
            eprintln!(
                "parallelizer: worker rank {r} {}, and main made no call that would have told it",
                describe(*status)
            );
        }
        let code = match (
            first.code(),
            std::os::unix::process::ExitStatusExt::signal(first),
        ) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 1,
        };
        eprintln!("parallelizer: main exits with status {code}, as mpirun would");
        std::process::exit(code);
    }
}

/// The message of this process's last panic (an SPMD worker's).
fn last_panic() -> &'static Mutex<Option<String>> {
    static LAST: OnceLock<Mutex<Option<String>>> = OnceLock::new();
    LAST.get_or_init(|| Mutex::new(None))
}

/// Remembers each panic's message before the previous hook runs, so that a
/// worker unwinding out of its `main` can tell main why.
fn remember_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        *lock(last_panic()) = Some(panic_message(info.payload()));
        previous(info);
    }));
}

/// Joins main as worker `info.rank()` of an SPMD program that builds a
/// `processes` parallelizer of `nprocs` ranks from `config`.
pub(super) fn join(
    info: &LaunchInfo,
    nprocs: usize,
    config: &Config,
    opts: &Opts,
) -> Result<Arc<Spmd>> {
    if info.nprocs() != nprocs {
        return Err(Error::Config(format!(
            "this process is worker rank {} of a {}-rank processes launch, \
             but builds `processes:{nprocs}`; every rank must build the same parallelizer",
            info.rank(),
            info.nprocs()
        )));
    }
    let net = serve::join(info, true, opts).map_err(serve::JoinError::into_error)?;
    remember_panics();
    let core = Core::new(config.clone());
    Ok(Spmd::new(&core, net, serve::limits(config, opts)))
}
