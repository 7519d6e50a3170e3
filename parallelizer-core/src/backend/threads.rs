//! `threads`: ranks are persistent threads of this process (rank 0 is the
//! caller); messages are moved through channels, never serialized.
//!
//! Each region gets a fresh fabric of channels, so nothing left over from a
//! failed region can reach the next one. A rank that fails aborts the
//! fabric: every rank blocked in a receive wakes up with `Error::Aborted`,
//! and a rank that waits for one that already finished gets an error instead
//! of waiting forever.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select, unbounded};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};
use crate::outcome::panic_message;
use crate::parallelizer::{Core, Parallelizer, Region, RegionTask, check_rank};
use crate::registry::{FromConfig, rank_of};
use crate::runtime::set_current;
use crate::task::initializer_region;

/// Ranks as threads of this process: `nprocs - 1` persistent worker threads
/// plus the calling thread as rank 0. Workers park between regions and are
/// joined when the outermost enter guard drops.
///
/// Default `nprocs`: `std::thread::available_parallelism()`.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// let par = from_config("threads:4").unwrap();
/// let _entered = par.enter().unwrap(); // threads stay up across regions
/// for _ in 0..3 {
///     let ids = par.run(|p: &dyn Parallelizer, ()| p.gather(p.id()).unwrap(), ()).unwrap();
///     assert_eq!(ids, Some(vec![0, 1, 2, 3]));
/// }
/// ```
#[crate::parallelizer(name = "threads", crate = "crate")]
pub struct Threads {
    core: Core,
    nprocs: usize,
    pool: Mutex<Option<Pool>>,
    /// One region at a time per parallelizer.
    region: Mutex<()>,
}

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    jobs: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Threads {
    /// A threads parallelizer of `nprocs` ranks (`None`: one per core).
    pub fn new(config: Config) -> Result<Threads> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let nprocs = config.nprocs_or(cores)?;
        Ok(Threads {
            core: Core::new(config),
            nprocs,
            pool: Mutex::new(None),
            region: Mutex::new(()),
        })
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Option<Pool>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the worker threads are running (between enter and the
    /// outermost drop).
    pub fn is_running(&self) -> bool {
        self.pool().is_some()
    }
}

impl FromConfig for Threads {
    fn from_config(config: &Config) -> Result<Threads> {
        Threads::new(config.clone())
    }
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("nprocs", &self.nprocs)
            .field("running", &self.is_running())
            .finish()
    }
}

impl Parallelizer for Threads {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        0
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        false
    }

    fn initialize(&self) -> Result<()> {
        let mut pool = self.pool();
        if pool.is_some() {
            return Ok(());
        }
        let mut jobs = Vec::with_capacity(self.nprocs - 1);
        let mut threads = Vec::with_capacity(self.nprocs - 1);
        for rank in 1..self.nprocs {
            let (tx, rx) = unbounded::<Job>();
            let handle = std::thread::Builder::new()
                .name(format!("parallelizer-rank-{rank}"))
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })?;
            jobs.push(tx);
            threads.push(handle);
        }
        *pool = Some(Pool { jobs, threads });
        drop(pool);
        let Some(path) = &self.core.config().initializer else {
            return Ok(());
        };
        // McUtils `initialization_function`: once on every rank, main included,
        // before any region; a failure is the enter's error.
        let init = initializer_region(path).and_then(|region| self.run_region(region));
        if let Err(e) = init {
            self.finalize()?;
            return Err(e);
        }
        Ok(())
    }

    fn finalize(&self) -> Result<()> {
        let Some(pool) = self.pool().take() else {
            return Ok(());
        };
        drop(pool.jobs);
        for t in pool.threads {
            // Jobs catch every panic, so a thread only ends when its queue closes.
            let _ = t.join();
        }
        Ok(())
    }

    fn send_msg(&self, _: Msg, _: usize, _tag: Tag) -> Result<()> {
        Err(outside_region("send"))
    }

    fn recv_msg(&self, _: usize, _tag: Tag) -> Result<Msg> {
        Err(outside_region("receive"))
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // `run` on this parallelizer from inside one of its own regions: every
        // rank runs it on its handle (SPMD), instead of waiting for itself.
        if let Some(rank) = rank_of(self) {
            return rank.run_region(region);
        }
        let _one_region = self.region.lock().unwrap_or_else(|e| e.into_inner());
        let jobs: Vec<Sender<Job>> = match &*self.pool() {
            Some(pool) => pool.jobs.clone(),
            None => {
                return Err(Error::ContractViolation(
                    "the threads parallelizer is not running; use `run` or `enter` first".into(),
                ));
            }
        };
        let nprocs = self.nprocs;
        let (fabric, alive) = Fabric::new(nprocs, self.core.config().timeout);
        let fabric = Arc::new(fabric);
        let (task, main_args) = region.into_parts();
        // Workers get their own copy of the (small) arguments, encoded once.
        let worker_args = if nprocs > 1 {
            main_args.to_bytes()?
        } else {
            Vec::new()
        };
        let (done_tx, done_rx) = unbounded::<usize>();

        let mut alive = alive.into_iter();
        let main_token = alive.next().expect("nprocs >= 1");
        for ((job, rank), token) in jobs.iter().zip(1..nprocs).zip(alive) {
            let handle = Arc::new(ThreadRank::new(self, rank, fabric.clone()));
            let args = Msg::from_bytes(Encoding::Serde, worker_args.clone());
            let (task, done_tx) = (task.clone(), done_tx.clone());
            let run = move || {
                let _ = handle.execute(&task, args);
                drop(token); // ranks waiting on this one learn it is gone
                let _ = done_tx.send(rank);
            };
            if job.send(Box::new(run)).is_err() {
                fabric.fail(
                    rank,
                    Error::WorkerDied {
                        rank,
                        status: "its thread exited".into(),
                    },
                );
            }
        }
        drop(done_tx);

        let main = Arc::new(ThreadRank::new(self, 0, fabric.clone()));
        let outcome = main.execute(&task, main_args);
        drop(main_token);

        // Every worker reports once; the fabric guarantees that none waits
        // forever on a failed or finished rank.
        for _ in 1..nprocs {
            if done_rx.recv().is_err() {
                break;
            }
        }

        match (outcome, fabric.first_failure()) {
            (Ok(value), None) => Ok(value),
            // Main panicked because another rank failed first (say, an
            // `unwrap` of `Aborted`): report the cause, not the symptom.
            (Err(Some(_)), Some((rank, e))) if rank != 0 => Err(e),
            (Err(Some(panic)), _) => resume_unwind(panic),
            (_, Some((_, e))) => Err(e),
            (_, None) => Err(Error::Aborted { by_rank: 0 }),
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        let _ = self.finalize();
    }
}

fn outside_region(op: &str) -> Error {
    Error::ContractViolation(format!(
        "`{op}` on the threads parallelizer outside a region; call it inside `run`"
    ))
}

/// The channels of one region.
struct Fabric {
    /// `inbox[to][from]`.
    inbox: Vec<Vec<Receiver<Msg>>>,
    /// `outbox[from][to]`.
    outbox: Vec<Vec<Sender<Msg>>>,
    /// Disconnects when rank `i` has finished its task.
    finished: Vec<Receiver<()>>,
    /// Disconnects when the region is aborted.
    abort_rx: Receiver<()>,
    abort_tx: Mutex<Option<Sender<()>>>,
    failure: OnceLock<(usize, Mutex<Option<Error>>)>,
    timeout: Option<Duration>,
}

impl Fabric {
    /// The fabric and one "alive" token per rank: dropping token `i` tells
    /// the ranks waiting on rank `i` that it finished.
    fn new(nprocs: usize, timeout: Option<Duration>) -> (Fabric, Vec<Sender<()>>) {
        let mut inbox: Vec<Vec<Receiver<Msg>>> =
            (0..nprocs).map(|_| Vec::with_capacity(nprocs)).collect();
        let mut outbox: Vec<Vec<Sender<Msg>>> =
            (0..nprocs).map(|_| Vec::with_capacity(nprocs)).collect();
        for to_box in inbox.iter_mut() {
            for from_box in outbox.iter_mut() {
                let (tx, rx) = unbounded();
                from_box.push(tx);
                to_box.push(rx);
            }
        }
        let (tokens, finished): (Vec<_>, Vec<_>) =
            (0..nprocs).map(|_| crossbeam_channel::bounded(0)).unzip();
        let (abort_tx, abort_rx) = crossbeam_channel::bounded(0);
        let fabric = Fabric {
            inbox,
            outbox,
            finished,
            abort_rx,
            abort_tx: Mutex::new(Some(abort_tx)),
            failure: OnceLock::new(),
            timeout,
        };
        (fabric, tokens)
    }

    /// Records the region's first real failure and releases every rank.
    fn fail(&self, rank: usize, error: Error) {
        if error.is_secondary() {
            return;
        }
        let _ = self.failure.set((rank, Mutex::new(Some(error))));
        self.abort_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn aborted_by(&self) -> Option<usize> {
        self.failure.get().map(|(rank, _)| *rank)
    }

    fn first_failure(&self) -> Option<(usize, Error)> {
        let (rank, slot) = self.failure.get()?;
        slot.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|e| (*rank, e))
    }
}

/// One rank's handle inside a threads region.
struct ThreadRank {
    core: Core,
    id: usize,
    nprocs: usize,
    fabric: Arc<Fabric>,
}

impl ThreadRank {
    fn new(parent: &Threads, id: usize, fabric: Arc<Fabric>) -> ThreadRank {
        ThreadRank {
            core: Core::for_rank(&parent.core),
            id,
            nprocs: parent.nprocs,
            fabric,
        }
    }

    /// Runs this rank's part of the region. A failure aborts the fabric,
    /// which keeps the error; the `Err` returned here carries a panic's
    /// payload so that main can resume its own panic.
    fn execute(
        self: &Arc<Self>,
        task: &RegionTask,
        args: Msg,
    ) -> std::result::Result<Msg, Option<Panic>> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _current = set_current(self.clone());
            task.run(&**self, args)
        }));
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.fabric.fail(self.id, e);
                Err(None)
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                self.fabric.fail(
                    self.id,
                    Error::WorkerPanicked {
                        rank: self.id,
                        message,
                    },
                );
                Err(Some(panic))
            }
        }
    }
}

type Panic = Box<dyn std::any::Any + Send>;

impl Parallelizer for ThreadRank {
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

    fn send_msg(&self, msg: Msg, to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        if let Some(by_rank) = self.fabric.aborted_by() {
            return Err(Error::Aborted { by_rank });
        }
        // The receivers live as long as the fabric, so this cannot fail.
        let _ = self.fabric.outbox[self.id][to].send(msg);
        Ok(())
    }

    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let fabric = &*self.fabric;
        let aborted = || Error::Aborted {
            by_rank: fabric.aborted_by().unwrap_or(from),
        };
        if fabric.aborted_by().is_some() {
            return Err(aborted());
        }
        let inbox = &fabric.inbox[self.id][from];
        if let Ok(msg) = inbox.try_recv() {
            return Ok(msg);
        }
        let finished = || {
            // The peer may have sent just before finishing.
            inbox.try_recv().map_err(|_| {
                Error::ContractViolation(format!(
                    "rank {} waited for a message from rank {from}, which finished its task \
                     without sending it (do all ranks call the same collectives?)",
                    self.id
                ))
            })
        };
        match fabric.timeout {
            None => select! {
                recv(inbox) -> msg => msg.map_err(|_| aborted()),
                recv(fabric.abort_rx) -> _ => Err(aborted()),
                recv(fabric.finished[from]) -> _ => finished(),
            },
            Some(after) => select! {
                recv(inbox) -> msg => msg.map_err(|_| aborted()),
                recv(fabric.abort_rx) -> _ => Err(aborted()),
                recv(fabric.finished[from]) -> _ => finished(),
                default(after) => Err(Error::Timeout { op: Op::Receive, rank: from, after }),
            },
        }
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // Inside a region every rank runs a nested `run` itself (SPMD).
        let (task, args) = region.into_parts();
        task.run_here(self, args)
    }
}
