//! `processes`: ranks are copies of the current executable, started by the
//! parallelizer, talking over private Unix sockets (Linux only).
//!
//! The outermost `enter` re-executes `std::env::current_exe()` `nprocs - 1`
//! times with the same arguments (for a `#[parallelizer::test]`, with
//! `--exact NAME`), giving each child a socket to every other rank and a
//! private launch environment. A child joins in one of two ways:
//!
//! - **guard** (`#[parallelizer::main]` / `#[parallelizer::test]`, the
//!   default): `worker_entry()` sees the launch environment and serves
//!   registered tasks by id until main shuts it down; the body of `main`
//!   never runs in a worker. `run(f, args)` on main sends `f`'s dense task id
//!   and the serialized args; every rank runs `f` with its own handle.
//! - **SPMD** (no guard): the child runs `main` from the top; when it builds
//!   the same `processes` parallelizer it becomes that rank (`in_region()`
//!   is always true), and `run(closure, args)` runs the closure on every
//!   rank, as under `mpirun`.
//!
//! Failures (README, "Failure: nothing hangs, nothing is lost"): a panic or `Err` on any rank
//! is that rank's error on main and aborts the region on every rank; a dead
//! worker is seen as EOF plus `waitpid` (`WorkerDied`); every blocking
//! receive honours `Config::timeout`; workers get `PR_SET_PDEATHSIG` and
//! exit on EOF from main. After a region in which a worker died, stalled or
//! corrupted its stream, the whole pool is reaped and the next `run` (or
//! `enter`) starts fresh workers.
//!
//! Options (`Config::option`): `shm_threshold` (bytes; broadcasts at least
//! this large go through a memfd, default 1 MiB),
//! `max_frame` (largest in-band frame, default 16 GiB), `start_timeout`
//! (seconds main waits for workers to join, default 60), `grace` (seconds
//! main waits for the other ranks to wind down after a failure before
//! killing them, default 2), `prefix_output` (relay worker stdout/stderr
//! line by line with a `[rank N] ` prefix, default true; false inherits).

mod launch;
mod shm;
mod wire;
mod worker;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::{Msg, decode_serde};
use crate::op::{Op, Tag};
use crate::outcome::panic_message;
use crate::parallelizer::{Core, Parallelizer, Region, check_rank};
use crate::registry::FromConfig;
use crate::runtime::set_current;
use crate::task::task_by_path;

use launch::LaunchInfo;
use wire::{Endpoint, Header, Kind};

/// The first message of every worker: who it is and whether it started well.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Hello {
    rank: u32,
    pid: u32,
    token: [u8; 16],
    spmd: bool,
    init: Option<Error>,
}

/// Ranks as OS processes: copies of the current executable over private
/// Unix sockets. See the [module docs](self).
///
/// Default `nprocs`: `std::thread::available_parallelism()`.
///
/// This program has no guard, so each worker runs it from the top and joins
/// at `from_config` (SPMD): the closure runs on every rank.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// let par = from_config("processes:3").unwrap();
/// let ids = par.run(|p: &dyn Parallelizer, ()| p.gather((p.id(), p.pid())).unwrap(), ()).unwrap();
/// if par.on_main() {
///     let ids = ids.unwrap();
///     assert_eq!(ids.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
///     assert!(ids[0].1 != ids[1].1 && ids[1].1 != ids[2].1, "three processes");
/// } else {
///     assert_eq!(ids, None);
/// }
/// ```
#[crate::parallelizer(name = "processes", crate = "crate")]
pub struct Processes {
    core: Core,
    nprocs: usize,
    role: Role,
    opts: Opts,
    pool: Mutex<Option<Pool>>,
    /// One region at a time per parallelizer.
    region: Mutex<()>,
    next_region: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Opts {
    shm_threshold: usize,
    max_frame: u64,
    start_timeout: Duration,
    grace: Duration,
    prefix_output: bool,
}

enum Role {
    /// This process launched the workers.
    Main,
    /// This process is a worker that reached `from_config` (SPMD).
    SpmdWorker {
        rank: usize,
        ep: Arc<Mutex<Endpoint>>,
    },
}

struct Pool {
    ep: Arc<Mutex<Endpoint>>,
    pids: Vec<Option<i32>>,
    spmd: bool,
    relays: Vec<std::sync::mpsc::Receiver<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Opts {
    fn from_config(config: &Config) -> Result<Opts> {
        let secs = |key: &str, default: f64| -> Result<Duration> {
            let s = config.parsed_option::<f64>(key)?.unwrap_or(default);
            Duration::try_from_secs_f64(s)
                .map_err(|_| Error::Config(format!("option `{key}` must be non-negative seconds")))
        };
        Ok(Opts {
            shm_threshold: config.parsed_option("shm_threshold")?.unwrap_or(1 << 20),
            max_frame: config
                .parsed_option("max_frame")?
                .unwrap_or(wire::DEFAULT_MAX_FRAME),
            start_timeout: secs("start_timeout", 60.0)?,
            grace: secs("grace", 2.0)?,
            prefix_output: config.parsed_option("prefix_output")?.unwrap_or(true),
        })
    }

    fn apply(&self, ep: &mut Endpoint, config: &Config) {
        ep.timeout = config.timeout;
        ep.shm_threshold = self.shm_threshold;
        ep.max_frame = self.max_frame;
    }
}

impl Processes {
    /// A processes parallelizer of `nprocs` ranks (`None`: one per core). In
    /// a process launched as a worker by a `processes` main (SPMD, no
    /// guard), this joins as that worker rank instead.
    pub fn new(config: Config) -> Result<Processes> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let nprocs = config.nprocs_or(cores)?;
        let opts = Opts::from_config(&config)?;
        let role = match LaunchInfo::from_this_process() {
            None => Role::Main,
            Some(info) => {
                let info = info?;
                if info.nprocs as usize != nprocs {
                    return Err(Error::Config(format!(
                        "this process is worker rank {} of a {}-rank processes launch, \
                         but builds `{config}`; every rank must build the same parallelizer",
                        info.rank, info.nprocs
                    )));
                }
                let mut ep = worker::join(&info, true, &opts)?;
                opts.apply(&mut ep, &config);
                ep.eof_fails_region = false;
                Role::SpmdWorker {
                    rank: info.rank as usize,
                    ep: Arc::new(Mutex::new(ep)),
                }
            }
        };
        Ok(Processes {
            core: Core::new(config),
            nprocs,
            role,
            opts,
            pool: Mutex::new(None),
            region: Mutex::new(()),
            next_region: AtomicU64::new(0),
        })
    }

    /// Whether worker processes are running (main), or this is a worker.
    pub fn is_running(&self) -> bool {
        match self.role {
            Role::Main => lock(&self.pool).is_some(),
            Role::SpmdWorker { .. } => true,
        }
    }

    /// The pids of the running worker processes (main; empty otherwise).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.pool)
            .as_ref()
            .map(|p| p.pids.iter().flatten().map(|&p| p as u32).collect())
            .unwrap_or_default()
    }

    /// The endpoint collectives use outside `run` in SPMD mode.
    fn spmd_ep(&self) -> Option<Arc<Mutex<Endpoint>>> {
        match &self.role {
            Role::SpmdWorker { ep, .. } => Some(ep.clone()),
            Role::Main => lock(&self.pool)
                .as_ref()
                .filter(|p| p.spmd)
                .map(|p| p.ep.clone()),
        }
    }

    /// Starts the workers unless they run; a pool that lost a worker is
    /// reaped and replaced.
    fn ensure_pool(&self) -> Result<()> {
        let mut pool = lock(&self.pool);
        if let Some(p) = pool.as_ref() {
            if p.spmd {
                // SPMD workers run their own `main`: they cannot be replaced,
                // and a lost one fails the receives that wait for it.
                return Ok(());
            }
            let mut ep = lock(&p.ep);
            ep.refresh()?;
            let healthy = (1..self.nprocs).all(|r| !ep.is_closed(r) && !ep.broken[r]);
            drop(ep);
            if healthy {
                return Ok(());
            }
            let p = pool.take().expect("checked");
            shutdown(p, Duration::from_millis(200));
        }
        *pool = Some(self.start_pool()?);
        Ok(())
    }

    fn start_pool(&self) -> Result<Pool> {
        let config = self.core.config();
        if self.nprocs == 1 {
            let mut ep = Endpoint::new(0, 1, vec![None]);
            self.opts.apply(&mut ep, config);
            return Ok(Pool {
                ep: Arc::new(Mutex::new(ep)),
                pids: vec![None],
                spmd: false,
                relays: Vec::new(),
            });
        }
        if let Some(path) = &config.initializer {
            task_by_path(path)?;
        }
        let launched = launch::launch(self.nprocs, config, self.opts.prefix_output)?;
        let mut ep = Endpoint::new(0, self.nprocs, launched.fds);
        ep.pids = launched.pids.clone();
        self.opts.apply(&mut ep, config);
        // During start-up a worker that leaves is reported by the hello loop
        // (and an SPMD worker may legitimately be done before the others join).
        ep.eof_fails_region = false;
        let pool = Pool {
            ep: Arc::new(Mutex::new(ep)),
            pids: launched.pids,
            spmd: false,
            relays: launched.relays,
        };
        match self.await_hellos(&pool, &launched.token) {
            Ok(spmd) => {
                lock(&pool.ep).eof_fails_region = !spmd;
                Ok(Pool { spmd, ..pool })
            }
            Err(e) => {
                shutdown(pool, Duration::ZERO);
                Err(e)
            }
        }
    }

    /// Waits for every worker's Hello; returns whether they run SPMD.
    fn await_hellos(&self, pool: &Pool, token: &[u8; 16]) -> Result<bool> {
        let n = self.nprocs;
        let deadline = Instant::now() + self.opts.start_timeout;
        let mut hellos: Vec<Option<Hello>> = (0..n).map(|_| None).collect();
        let mut ep = lock(&pool.ep);
        loop {
            while let Some((from, frame)) = ep.control.pop_front() {
                if frame.header.kind != Kind::Hello {
                    continue;
                }
                let hello: Hello = decode_serde(&frame.bytes()?)?;
                if hello.token != *token || hello.rank as usize != from {
                    return Err(Error::Launch(format!(
                        "rank {from} sent a hello with a wrong token or rank"
                    )));
                }
                if let Some(init) = hello.init {
                    return Err(init.on_rank(from));
                }
                hellos[from] = Some(hello);
            }
            let missing: Vec<usize> = (1..n).filter(|&r| hellos[r].is_none()).collect();
            let Some(&first) = missing.first() else {
                break;
            };
            if let Some(&dead) = missing.iter().find(|&&r| ep.is_closed(r)) {
                let status = match ep.peer_error(dead) {
                    Error::WorkerDied { status, .. } => status,
                    other => other.to_string(),
                };
                return Err(Error::WorkerDied {
                    rank: dead,
                    status: format!(
                        "{status} before joining; does `main` start with \
                         `#[parallelizer::main]` (or `parallelizer::worker_entry()`), or reach \
                         the same `from_config(\"processes:{n}\")`?"
                    ),
                });
            }
            let arrived = ep.wait_until(Some(deadline), |ep| {
                !ep.control.is_empty() || missing.iter().any(|&r| ep.is_closed(r))
            })?;
            if !arrived {
                return Err(Error::Timeout {
                    op: Op::StartUp,
                    rank: first,
                    after: self.opts.start_timeout,
                });
            }
        }
        let spmd: Vec<bool> = hellos.iter().flatten().map(|h| h.spmd).collect();
        if spmd.iter().any(|&s| s != spmd[0]) {
            return Err(Error::Launch(
                "some workers serve tasks (#[parallelizer::main]) and others run main (SPMD); \
                 all ranks must run the same program"
                    .into(),
            ));
        }
        Ok(spmd[0])
    }

    /// Runs a region by shipping the registered task to every worker.
    fn run_shipped(&self, ep: Arc<Mutex<Endpoint>>, region: Region) -> Result<Msg> {
        let task_id = region.task().require_id()?;
        let nprocs = self.nprocs;
        let region_id = self.next_region.fetch_add(1, Ordering::SeqCst) + 1;
        let (task, args) = region.into_parts();
        let args_bytes = if nprocs > 1 {
            args.to_bytes()?
        } else {
            Vec::new()
        };
        {
            let mut e = lock(&ep);
            e.begin_region(region_id);
            let id = task_id.to_le_bytes();
            for r in 1..nprocs {
                let h = Header::new(Kind::Run, region_id, (4 + args_bytes.len()) as u64);
                if let Err(err) = e.write_frame(r, h, &[&id, &args_bytes], None, true) {
                    e.record_failure(r, Some(err));
                }
            }
        }

        let handle = Arc::new(ProcRank::new(self, 0, ep.clone()));
        let outcome = run_guarded(&handle, || task.run(&*handle, args));

        let mut e = lock(&ep);
        let main_error = match &outcome {
            Ok(_) => None,
            Err(Failure::Error(err)) if err.is_secondary() => None,
            Err(_) => Some(()),
        };
        if main_error.is_some() {
            e.record_failure(0, None);
        }
        // Every worker reports the end of the region (Done) or is gone.
        let timeout_deadline = e.timeout.map(|t| Instant::now() + t);
        let mut abort_seen: Option<Instant> = None;
        let all_done = |ep: &Endpoint| (1..nprocs).all(|r| ep.done[r].is_some() || ep.is_closed(r));
        loop {
            if abort_seen.is_none() && e.aborted_by().is_some() {
                abort_seen = Some(Instant::now());
            }
            let deadline = match (timeout_deadline, abort_seen) {
                (t, None) => t,
                (None, Some(a)) => Some(a + self.opts.grace),
                (Some(t), Some(a)) => Some(t.min(a + self.opts.grace)),
            };
            let was_aborted = abort_seen.is_some();
            let finished = e.wait_until(deadline, |ep| {
                all_done(ep) || (!was_aborted && ep.aborted_by().is_some())
            })?;
            if all_done(&e) {
                break;
            }
            if finished {
                continue; // aborted meanwhile: now wait with the grace period
            }
            // Deadline: the stragglers are killed with the pool.
            let late = (1..nprocs)
                .find(|&r| e.done[r].is_none() && !e.is_closed(r))
                .unwrap_or(1);
            if !was_aborted {
                let after = e.timeout.unwrap_or_default();
                e.record_failure(
                    late,
                    Some(Error::Timeout {
                        op: Op::Run,
                        rank: late,
                        after,
                    }),
                );
            }
            break;
        }
        let broken = (1..nprocs).any(|r| e.done[r].is_none() || e.is_closed(r) || e.broken[r]);
        let failure = e.take_failure();
        let statuses = e.statuses.clone();
        drop(e);
        if broken {
            if let Some(pool) = lock(&self.pool).take() {
                shutdown(pool, Duration::from_millis(200));
            }
        }
        settle(outcome, failure, &statuses)
    }

    /// Runs a region SPMD: this rank runs the closure; the other ranks run
    /// theirs from their own `main`.
    fn run_spmd(&self, ep: Arc<Mutex<Endpoint>>, region: Region) -> Result<Msg> {
        let handle = Arc::new(ProcRank::new(self, self.id(), ep.clone()));
        let (task, args) = region.into_parts();
        let outcome = run_guarded(&handle, || task.run_here(&*handle, args));
        let mut e = lock(&ep);
        match outcome {
            // Another rank failed during the region: that is the result.
            Ok(v) => match e.take_failure() {
                Some((by_rank, Some(cause))) if by_rank != self.id() => Err(cause),
                _ => Ok(v),
            },
            Err(Failure::Error(err)) if err.is_secondary() || e.aborted_by().is_some() => {
                match e.take_failure() {
                    Some((_, Some(cause))) => Err(cause),
                    _ => Err(err),
                }
            }
            Err(Failure::Error(err)) => {
                e.record_failure(self.id(), None);
                e.broadcast_abort(Some(&err), true);
                Err(err)
            }
            Err(Failure::Panic(panic, message)) => {
                let err = Error::WorkerPanicked {
                    rank: self.id(),
                    message,
                };
                e.record_failure(self.id(), None);
                e.broadcast_abort(Some(&err), true);
                drop(e);
                resume_unwind(panic)
            }
        }
    }
}

/// A rank's failure: an error, or a panic with its payload and message.
enum Failure {
    Error(Error),
    Panic(Box<dyn std::any::Any + Send>, String),
}

thread_local! {
    static CURRENT_EP: RefCell<Vec<Arc<Mutex<Endpoint>>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` as rank `handle`: current() is the handle, panics are caught.
fn run_guarded<T>(handle: &Arc<ProcRank>, f: impl FnOnce() -> Result<T>) -> Result<T, Failure> {
    CURRENT_EP.with(|c| c.borrow_mut().push(handle.ep.clone()));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _current = set_current(handle.clone());
        f()
    }));
    CURRENT_EP.with(|c| c.borrow_mut().pop());
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
fn settle(
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

/// Shuts a pool down: Shutdown frames, close the sockets, wait up to
/// `grace` for the workers to exit, then SIGKILL and reap the rest.
fn shutdown(pool: Pool, grace: Duration) {
    let mut ep = lock(&pool.ep);
    if !pool.spmd {
        for r in 1..ep.nprocs {
            if ep.is_writable(r) {
                let h = Header::new(Kind::Shutdown, ep.region, 0);
                let _ = ep.write_frame(r, h, &[], None, false);
            }
        }
    }
    let statuses = ep.statuses.clone();
    ep.close_all();
    drop(ep);
    let until = Instant::now() + grace;
    let mut left: Vec<Option<i32>> = Vec::new();
    for (r, pid) in pool.pids.iter().enumerate() {
        let Some(pid) = *pid else { continue };
        if statuses.get(r).is_some_and(|s| s.is_some()) {
            continue; // already reaped
        }
        let within = until.saturating_duration_since(Instant::now());
        if launch::wait_status(pid, within).is_none() {
            left.push(Some(pid));
        }
    }
    launch::kill_and_reap(&left);
    // Let the last lines of output through (a grandchild holding a pipe open
    // must not hold us up).
    launch::wait_relays(&pool.relays, Duration::from_millis(500));
}

impl FromConfig for Processes {
    fn from_config(config: &Config) -> Result<Processes> {
        Processes::new(config.clone())
    }
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processes")
            .field("id", &self.id())
            .field("nprocs", &self.nprocs)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Parallelizer for Processes {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        match self.role {
            Role::Main => 0,
            Role::SpmdWorker { rank, .. } => rank,
        }
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        self.spmd_ep().is_some()
    }

    fn initialize(&self) -> Result<()> {
        match self.role {
            Role::Main => self.ensure_pool(),
            Role::SpmdWorker { .. } => Ok(()),
        }
    }

    fn finalize(&self) -> Result<()> {
        let mut pool = lock(&self.pool);
        // SPMD workers run their own `main`; they are reaped when this
        // parallelizer is dropped.
        if pool.as_ref().is_some_and(|p| !p.spmd) {
            let p = pool.take().expect("checked");
            drop(pool);
            shutdown(p, self.opts.grace);
        }
        Ok(())
    }

    fn send_msg(&self, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let ep = self.spmd_ep().ok_or_else(|| outside_region("send"))?;
        lock(&ep).send_msg(msg, to)
    }

    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let ep = self.spmd_ep().ok_or_else(|| outside_region("receive"))?;
        lock(&ep).recv(from)?.into_msg()
    }

    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        let ep = self.spmd_ep().ok_or_else(|| outside_region("broadcast"))?;
        broadcast(self.id(), &ep, msg)
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        if let Role::SpmdWorker { ep, .. } = &self.role {
            return self.run_spmd(ep.clone(), region);
        }
        let _one_region = lock(&self.region);
        self.ensure_pool()?;
        let (ep, spmd) = {
            let pool = lock(&self.pool);
            let p = pool.as_ref().expect("ensured");
            (p.ep.clone(), p.spmd)
        };
        if spmd {
            self.run_spmd(ep, region)
        } else {
            self.run_shipped(ep, region)
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(pool) = lock(&self.pool).take() {
            // SPMD workers finish their own `main` after main's drop.
            let grace = if pool.spmd {
                Duration::from_secs(10)
            } else {
                self.opts.grace
            };
            shutdown(pool, grace);
        }
    }
}

fn outside_region(op: &str) -> Error {
    Error::ContractViolation(format!(
        "`{op}` on the processes parallelizer outside a region; call it inside `run`"
    ))
}

fn broadcast(me: usize, ep: &Mutex<Endpoint>, msg: Option<Msg>) -> Result<Msg> {
    if me != 0 {
        return lock(ep).recv(0)?.into_msg();
    }
    let msg = msg.ok_or_else(|| {
        Error::ContractViolation("main must pass Some(data) to broadcast; workers pass None".into())
    })?;
    lock(ep).broadcast(&msg)?;
    Ok(msg)
}

/// One rank's handle inside a region (main or worker).
pub(crate) struct ProcRank {
    core: Core,
    id: usize,
    nprocs: usize,
    ep: Arc<Mutex<Endpoint>>,
    /// The worker initializer's handle: no other rank is listening.
    init_only: bool,
}

impl ProcRank {
    fn new(parent: &Processes, id: usize, ep: Arc<Mutex<Endpoint>>) -> ProcRank {
        ProcRank {
            core: Core::for_rank(&parent.core),
            id,
            nprocs: parent.nprocs,
            ep,
            init_only: false,
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
        lock(&self.ep).send_msg(msg, to)
    }
    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        self.check("receive")?;
        check_rank(self, from)?;
        lock(&self.ep).recv(from)?.into_msg()
    }
    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        self.check("broadcast")?;
        broadcast(self.id, &self.ep, msg)
    }
    fn run_region(&self, region: Region) -> Result<Msg> {
        // Inside a region every rank runs a nested `run` itself (SPMD).
        let (task, args) = region.into_parts();
        task.run_here(self, args)
    }
}

/// Fault injection for the backend's own tests: raw bytes written to rank
/// `to` from the rank running on this thread, outside the framing. Not a
/// public API.
#[doc(hidden)]
pub fn __inject_raw(to: usize, bytes: &[u8]) -> Result<()> {
    let ep = CURRENT_EP
        .with(|c| c.borrow().last().cloned())
        .ok_or_else(|| Error::ContractViolation("inject_raw outside a processes region".into()))?;
    lock(&ep).write_raw(to, bytes)
}

/// A frame header announcing `len` payload bytes, for fault-injection tests.
#[doc(hidden)]
pub fn __frame_header(len: u64) -> Vec<u8> {
    Header::new(Kind::Data, u64::MAX / 2, len).encode().to_vec()
}
