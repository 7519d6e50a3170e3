//! The worker side: joining main, and the serve loop that
//! `#[parallelizer::main]` runs in a launched worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Config;
use crate::entry::WorkerHook;
use crate::error::{Error, Result};
use crate::link::{Limits, LinkRank};
use crate::msg::{Encoding, Msg};
use crate::outcome::Outcome;
use crate::parallelizer::{Core, Parallelizer, Region};
use crate::runtime::run_as;
use crate::task::{initializer, task_by_id};

use super::endpoint::Endpoint;
use super::faults::with_port;
use super::frame::{Frame, Kind};
use super::launch::LaunchInfo;
use super::opts::Opts;
use super::port::{Control, Net};

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
            JoinError::InitializerFailed => Error::Launch("the worker initializer failed".into()),
            JoinError::Failed(e) => e,
        }
    }
}

/// Connects to main: adopts the inherited sockets, runs the initializer,
/// sends the Hello.
pub(super) fn join(info: &LaunchInfo, spmd: bool, opts: &Opts) -> Result<Arc<Net>, JoinError> {
    static JOINED: AtomicBool = AtomicBool::new(false);
    if JOINED.swap(true, Ordering::SeqCst) {
        return Err(JoinError::Failed(Error::Config(format!(
            "this process already joined as processes worker rank {}; a worker cannot \
             build a second processes parallelizer (nor start workers of its own)",
            info.rank()
        ))));
    }
    if opts.prefix_output() {
        crate::runtime::set_output_relayed();
    }
    let ep = Endpoint::new(info.rank(), info.adopt_sockets()?, opts.max_frame())
        .with_rings(info.adopt_rings()?);
    let net = Net::new(ep, opts.transfer(), None);
    let init = run_initializer(info.config(), info.rank(), info.nprocs());
    let mut hello = Vec::new();
    crate::msg::encode_serde(&info.hello(spmd, init.as_ref()), &mut hello)?;
    net.send_control(0, (Kind::Hello, 0), "", (&[&hello], &[]), None)?;
    if init.is_some() {
        return Err(JoinError::InitializerFailed);
    }
    Ok(net)
}

/// A rank's handle in its initializer, where no other rank listens.
struct InitRank {
    core: Core,
    id: usize,
    nprocs: usize,
}

impl InitRank {
    fn alone(&self, op: &str) -> Error {
        Error::ContractViolation(format!(
            "`{op}` in the initializer, where no other rank takes part"
        ))
    }
}

impl Parallelizer for InitRank {
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
        true
    }
    fn send_msg(&self, _: Msg, _: usize, tag: crate::op::Tag) -> Result<()> {
        Err(self.alone(tag.op().name()))
    }
    fn recv_msg(&self, _: usize, tag: crate::op::Tag) -> Result<Msg> {
        Err(self.alone(tag.op().name()))
    }
    fn run_region(&self, _: Region) -> Result<Msg> {
        Err(self.alone("run"))
    }
}

/// Runs `Config::initializer` once on rank `id` of `nprocs` with its
/// arguments (a worker as it joins, main once its workers are up), where no
/// other rank listens; its error, if any.
pub(super) fn run_initializer(config: &Config, id: usize, nprocs: usize) -> Option<Error> {
    let (entry, args) = match initializer(config) {
        Ok(found) => found?,
        Err(e) => return Some(e),
    };
    let handle: Arc<dyn Parallelizer> = Arc::new(InitRank {
        core: Core::new(config.clone()),
        id,
        nprocs,
    });
    run_as(&handle, |p| entry.invoke(p, args)).failure(id)
}

/// The region protocol's limits on this rank. A worker blocked writing a
/// frame too large for its ring to a late peer gives up at its deadline or
/// when main says it passed, and main hears of it within [`SETTLE`].
pub(super) fn limits(config: &Config, opts: &Opts) -> Limits {
    Limits {
        grace: opts.grace(),
        settle: SETTLE,
        ..Limits::from_config(config)
    }
}

/// How long after telling the ranks the deadline passed main names the
/// late rank ([`Limits::settle`]); as long as the MPI backend gives a rank
/// between two calls.
const SETTLE: Duration = Duration::from_millis(50);

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
    let net = match join(&info, false, &opts) {
        Ok(net) => net,
        // Main has the reason from the Hello.
        Err(JoinError::InitializerFailed) => return 1,
        Err(JoinError::Failed(e)) => {
            // Main sees EOF.
            eprintln!("parallelizer: worker rank {rank} cannot join: {e}");
            return 1;
        }
    };
    let limits = limits(info.config(), &opts);
    let core = Core::new(info.into_config());
    loop {
        match net.next_control(None) {
            // Main is gone: nothing left to serve.
            Err(_) | Ok(None) | Ok(Some(Control::Closed(0))) => return 0,
            Ok(Some(Control::Frame(0, frame))) => match frame.header().kind() {
                Kind::Shutdown => return 0,
                Kind::Run => run_one(&net, &core, limits, frame),
                _ => {}
            },
            Ok(Some(_)) => {}
        }
    }
}

/// Runs one region on this worker and reports its end to main.
fn run_one(net: &Arc<Net>, core: &Core, limits: Limits, frame: Frame) {
    let region = frame.header().region();
    // Its own sends give up at its deadline too, so that a send blocked on
    // a late peer is reported (`Limits::settle`); the region began here
    // after it began on main, so that deadline is never the earlier.
    let port = net.port(region, limits.deadline(), limits.timeout);
    let rank = Arc::new(LinkRank::new(
        core,
        net.rank(),
        net.nprocs(),
        region,
        limits,
        port,
    ));
    let outcome = match frame.into_run() {
        None => Outcome::Failed(Error::Protocol("a Run frame without a task id".into())),
        Some((id, args)) => with_port(net, region, || {
            let handle: Arc<dyn Parallelizer> = rank.clone();
            run_as(&handle, |p| {
                let entry = task_by_id(id)?;
                let traced = crate::trace::region(entry.path, p.mode(), p.id(), p.nprocs());
                let done = entry.invoke(p, args);
                traced.end(&done);
                done?;
                Ok(Msg::from_bytes(Encoding::Serde, Vec::new()))
            })
        }),
    };
    if net.any_unreadable() {
        // Before the Done report, so main has it when the region ends.
        let _ = net.send_control(0, (Kind::Broken, region), "", (&[], &[]), None);
    }
    rank.finish_worker(rank.transport().blame(outcome));
}
