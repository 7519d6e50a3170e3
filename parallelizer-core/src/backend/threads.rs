//! `threads`: ranks are persistent threads of this process (rank 0 is the
//! caller); messages are moved through channels, never serialized.
//!
//! Each region gets a fresh mesh of [`Channels`], so nothing left over from
//! a failed region can reach the next one, and runs the region protocol of
//! [`LinkRank`]: a failed rank releases the others, mismatched calls and
//! waits that can never end are errors, `Config::timeout` is the deadline of
//! the whole region.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::link::{Channels, Event, Limits, LinkRank};
use crate::msg::Msg;
use crate::parallelizer::{Core, Parallelizer, Region};
use crate::registry::{FromConfig, rank_of};
use crate::runtime::run_as;
use crate::segment::{HEAP, SharedMemory};
use crate::task::initializer_region;
use crate::trace::WORKER;

/// Ranks as threads of this process: `nprocs - 1` persistent worker threads
/// plus the calling thread as rank 0. Workers park between regions and are
/// joined when the outermost enter guard drops.
///
/// Default `nprocs`: `std::thread::available_parallelism()`.
///
/// A rank that is still running its task when the region's deadline passes
/// (`Config::timeout`) cannot be stopped from outside: `run` returns
/// `Error::Timeout` at the deadline, the thread is left to finish on its own
/// and a fresh thread takes its place in the pool.
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
    regions: AtomicU64,
}

type Job = Box<dyn FnOnce() + Send>;

/// How long a worker thread that finished a job keeps looking for the next
/// one before it parks. Back-to-back regions then start without waking a
/// parked thread: on a virtual machine an idle core's wake-up costs tens of
/// microseconds, ten times a whole empty region (the processes backend's
/// workers spin as long, for the same reason).
const LINGER: Duration = Duration::from_micros(50);

/// The next job, looked for (yielding the core) for [`LINGER`] before
/// parking; `None` once the pool is dropped.
fn next_job(jobs: &Receiver<Job>) -> Option<Job> {
    let until = Instant::now() + LINGER;
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}

/// The worker threads: rank `r` is `threads[r - 1]`.
struct Pool {
    threads: Vec<PoolThread>,
}

struct PoolThread {
    jobs: Sender<Job>,
    handle: JoinHandle<()>,
}

impl PoolThread {
    fn start(rank: usize) -> Result<PoolThread> {
        let (jobs, rx) = unbounded::<Job>();
        let handle = std::thread::Builder::new()
            .name(format!("parallelizer-rank-{rank}"))
            .spawn(move || {
                while let Some(job) = next_job(&rx) {
                    job();
                }
            })?;
        tracing::info!(target: WORKER, rank, "worker thread started");
        Ok(PoolThread { jobs, handle })
    }
}

impl Threads {
    /// A threads parallelizer of `nprocs` ranks (`None`: one per core).
    pub fn new(config: Config) -> Result<Threads> {
        let nprocs = config.nprocs_or(crate::runtime::cores())?;
        config.options().finish()?;
        Ok(Threads {
            core: Core::new(config),
            nprocs,
            pool: Mutex::new(None),
            region: Mutex::new(()),
            regions: AtomicU64::new(0),
        })
    }

    fn pool(&self) -> MutexGuard<'_, Option<Pool>> {
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
    /// The ranks are threads of this process: shared arrays are heap memory.
    fn shared_memory(&self) -> Result<&dyn SharedMemory> {
        Ok(&HEAP)
    }

    fn initialize(&self) -> Result<()> {
        let mut pool = self.pool();
        if pool.is_some() {
            return Ok(());
        }
        let threads = (1..self.nprocs)
            .map(PoolThread::start)
            .collect::<Result<Vec<_>>>()?;
        *pool = Some(Pool { threads });
        drop(pool);
        // McUtils `initialization_function`: once on every rank, main included,
        // before any region; a failure is the enter's error.
        let init = match initializer_region(self.core.config()) {
            Ok(None) => return Ok(()),
            Ok(Some(region)) => self.run_region(region),
            Err(e) => Err(e),
        };
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
        for (i, t) in pool.threads.into_iter().enumerate() {
            drop(t.jobs);
            // Jobs catch every panic, so a thread ends when its queue closes.
            let _ = t.handle.join();
            tracing::info!(target: WORKER, rank = i + 1, "worker thread joined");
        }
        Ok(())
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // `run` on this parallelizer from inside one of its own regions: every
        // rank runs it on its handle (SPMD), instead of waiting for itself.
        if let Some(rank) = rank_of(self) {
            return rank.run_region(region);
        }
        let _one_region = self.region.lock().unwrap_or_else(|e| e.into_inner());
        let jobs: Vec<Sender<Job>> = match &*self.pool() {
            Some(pool) => pool.threads.iter().map(|t| t.jobs.clone()).collect(),
            None => {
                return Err(Error::ContractViolation(
                    "the threads parallelizer is not running; use `run` or `enter` first".into(),
                ));
            }
        };
        let nprocs = self.nprocs;
        let region_id = self.regions.fetch_add(1, Ordering::Relaxed);
        let limits = Limits::from_config(self.core.config());
        let (task, main_args) = region.into_parts();
        // Workers get their own copy of the (small) arguments, encoded once;
        // values that travel by reference (shared arrays) ride along as
        // attachments.
        let (worker_args, attached) = if nprocs > 1 {
            main_args.to_wire()?
        } else {
            Default::default()
        };
        let args_type = main_args.type_name().map(str::to_string);
        // The ranks' events go to the subscriber that is the default here.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let mut ranks = Channels::mesh(nprocs)
            .into_iter()
            .enumerate()
            .map(|(id, t)| Arc::new(LinkRank::new(&self.core, id, nprocs, region_id, limits, t)));
        let main = ranks.next().expect("nprocs >= 1");
        for (rank, job) in ranks.zip(&jobs) {
            let task = task.clone();
            let mut args =
                Msg::from_wire(main_args.encoding(), worker_args.clone(), attached.clone());
            if let Some(name) = &args_type {
                args = args.sent_as(name);
            }
            let id = rank.id();
            let dispatch = dispatch.clone();
            let run = move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let handle: Arc<dyn Parallelizer> = rank.clone();
                    let outcome = run_as(&handle, |p| task.run(p, args));
                    rank.finish_worker(outcome);
                })
            };
            if job.send(Box::new(run)).is_err() {
                main.deliver(Event::Gone {
                    rank: id,
                    error: Error::WorkerDied {
                        rank: id,
                        status: "its thread exited".into(),
                    },
                });
            }
        }
        let handle: Arc<dyn Parallelizer> = main.clone();
        let outcome = run_as(&handle, |p| task.run(p, main_args));
        let finish = main.finish_main(outcome);
        if !finish.unfinished.is_empty() {
            self.replace(&finish.unfinished);
        }
        finish.result
    }
}

impl Threads {
    /// Gives up on the threads of `ranks`, still busy with a region that is
    /// over, and starts fresh ones in their place.
    fn replace(&self, ranks: &[usize]) {
        let mut pool = self.pool();
        let Some(pool) = pool.as_mut() else { return };
        for &rank in ranks.iter().filter(|&&r| r > 0) {
            tracing::warn!(
                target: WORKER,
                rank,
                "worker thread still busy after its region ended: left to finish, replaced"
            );
            if let Ok(fresh) = PoolThread::start(rank) {
                // The old thread ends when its task returns and its queue,
                // dropped here, closes; nobody joins it.
                drop(std::mem::replace(&mut pool.threads[rank - 1], fresh));
            }
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        let _ = self.finalize();
    }
}
