//! Main's view of a pool of workers: starting it (launch, then every
//! worker's Hello), its child processes and how they ended, and shutting it
//! down and reaping it.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::task::check_initializer;
use crate::trace::WORKER;

use super::endpoint::Endpoint;
use super::frame::Kind;
use super::launch::{self, Hello};
use super::opts::Opts;
use super::port::{Control, Net, Obituary};

/// Locks `m`, poisoned or not: what it guards is consistent after every call.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The worker processes of a pool, by rank (`None` for rank 0).
struct Workers {
    children: Mutex<Vec<Option<Child>>>,
    pids: Vec<Option<u32>>,
    /// How each lost worker ended, as first reported.
    statuses: Mutex<Vec<Option<String>>>,
}

impl Workers {
    fn new(children: Vec<Option<Child>>) -> Workers {
        let pids = children.iter().map(|c| c.as_ref().map(Child::id)).collect();
        Workers {
            statuses: Mutex::new(vec![None; children.len()]),
            children: Mutex::new(children),
            pids,
        }
    }

    /// Waits up to `within` for rank `rank`'s process to end and reaps it;
    /// its exit status, or `None` if it is still running (or not ours).
    fn wait(&self, rank: usize, within: Duration) -> Option<ExitStatus> {
        let mut children = lock(&self.children);
        let child = children.get_mut(rank)?.as_mut()?;
        let until = Instant::now() + within;
        // A worker told to shut down exits within microseconds to a few
        // milliseconds: poll fast at first, then back off to 5 ms.
        let mut pause = Duration::from_micros(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => {}
                Err(_) => return None,
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

impl Obituary for Workers {
    fn ended(&self, rank: usize, within: Duration, cut: Option<&str>) -> Option<String> {
        if let Some(known) = lock(&self.statuses).get(rank).cloned().flatten() {
            return Some(known);
        }
        let status = describe(self.wait(rank, within)?);
        let status = match cut {
            Some(cut) => format!("{status}; {cut}"),
            None => status,
        };
        tracing::warn!(target: WORKER, rank, status = %status, "worker process lost");
        *lock(&self.statuses).get_mut(rank)? = Some(status.clone());
        Some(status)
    }
}

/// How a process ended, in words.
pub(super) fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGTERM => " (SIGTERM)",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        format!("ended with wait status {:#x}", status.into_raw())
    }
}

/// A running pool: main's sockets to the workers and the workers themselves.
pub(super) struct Session {
    net: Arc<Net>,
    workers: Arc<Workers>,
    /// The workers run `main` (SPMD) rather than serve tasks.
    spmd: bool,
    relays: Vec<mpsc::Receiver<()>>,
}

impl Session {
    /// Starts ranks `1..nprocs` and waits for each one's Hello.
    pub(super) fn start(nprocs: usize, config: &Config, opts: &Opts) -> Result<Session> {
        if nprocs == 1 {
            let ep = Endpoint::new(0, vec![None], opts.max_frame());
            return Ok(Session {
                net: Net::new(ep, opts.transfer(), None),
                workers: Arc::new(Workers::new(vec![None])),
                spmd: false,
                relays: Vec::new(),
            });
        }
        if let Some(path) = &config.initializer {
            check_initializer(path)?;
        }
        let launched = launch::launch(nprocs, config, opts.prefix_output(), opts.rings())?;
        let workers = Arc::new(Workers::new(launched.children));
        let ep = Endpoint::new(0, launched.socks, opts.max_frame()).with_rings(launched.rings);
        let obituary: Arc<dyn Obituary> = workers.clone();
        let mut session = Session {
            net: Net::new(ep, opts.transfer(), Some(obituary)),
            workers,
            spmd: false,
            relays: launched.relays,
        };
        match await_hellos(&session.net, &launched.token, opts.start_timeout()) {
            Ok(spmd) => {
                for (rank, pid) in session.workers.pids.iter().enumerate() {
                    if let Some(pid) = pid {
                        tracing::info!(target: WORKER, rank, pid, spmd, "worker process ready");
                    }
                }
                session.spmd = spmd;
                Ok(session)
            }
            Err(e) => {
                session.shutdown(Duration::ZERO);
                Err(e)
            }
        }
    }

    /// Main's sockets to the workers.
    pub(super) fn net(&self) -> &Arc<Net> {
        &self.net
    }

    /// Whether the workers run `main` (SPMD) rather than serve tasks.
    pub(super) fn is_spmd(&self) -> bool {
        self.spmd
    }

    /// The pids of the worker processes.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.workers.pids.iter().flatten().copied().collect()
    }

    /// Whether every worker is still there and can read its peers.
    pub(super) fn is_healthy(&self) -> bool {
        self.net.refresh();
        (1..self.net.nprocs()).all(|r| !self.net.is_closed(r) && !self.net.is_broken(r))
    }

    /// Kills the pool at once (a region left workers running past its
    /// end): closes the sockets, SIGKILLs and reaps every worker. Their last
    /// output is relayed in the background.
    pub(super) fn kill(self) {
        self.net.close_all();
        let mut children = lock(&self.workers.children);
        for (rank, child) in children.iter_mut().enumerate() {
            if let Some(child) = child {
                let _ = child.kill();
                let _ = child.wait();
                tracing::info!(target: WORKER, rank, "worker process killed: it ran past its region's end");
            }
        }
    }

    /// Shuts the pool down: Shutdown frames (served workers), close the
    /// sockets, wait up to `grace` for the workers to exit, then SIGKILL and
    /// reap the rest. How each worker ended, by rank.
    pub(super) fn shutdown(self, grace: Duration) -> Vec<Option<ExitStatus>> {
        let nprocs = self.net.nprocs();
        if !self.spmd {
            // A worker that does not read in time is killed below anyway.
            let until = Instant::now() + grace.max(Duration::from_millis(100));
            for r in 1..nprocs {
                let _ = self
                    .net
                    .send_control(r, (Kind::Shutdown, 0), "", (&[], &[]), Some(until));
            }
        }
        self.net.close_all();
        let until = Instant::now() + grace;
        let mut statuses: Vec<Option<ExitStatus>> = (0..nprocs)
            .map(|r| {
                let within = until.saturating_duration_since(Instant::now());
                match self.workers.wait(r, within) {
                    Some(status) => {
                        tracing::info!(target: WORKER, rank = r, status = %describe(status), "worker process reaped");
                        Some(status)
                    }
                    None => None,
                }
            })
            .collect();
        let mut children = lock(&self.workers.children);
        for (r, child) in children.iter_mut().enumerate() {
            if let (Some(child), None) = (child.as_mut(), statuses[r]) {
                let _ = child.kill();
                statuses[r] = child.wait().ok();
                tracing::info!(target: WORKER, rank = r, "worker process killed and reaped after the grace period");
            }
        }
        drop(children);
        // Let the last lines of output through (a grandchild holding a pipe
        // open must not hold us up).
        launch::wait_relays(&self.relays, Duration::from_millis(500));
        statuses
    }
}

/// Waits for every worker's Hello; returns whether they run SPMD.
fn await_hellos(net: &Net, token: &[u8; 16], start_timeout: Duration) -> Result<bool> {
    let n = net.nprocs();
    let deadline = Instant::now() + start_timeout;
    let mut hellos: Vec<Option<bool>> = vec![None; n];
    let take = |hellos: &mut Vec<Option<bool>>, control: Option<Control>| -> Result<()> {
        if let Some(Control::Frame(from, frame)) = control {
            if frame.header().kind() == Kind::Hello {
                hellos[from] = Some(Hello::check(frame, from, token)?);
            }
        }
        Ok(())
    };
    loop {
        // What arrived before a worker left counts (its Hello, with the
        // initializer's error): take everything already read first.
        while let Some(control) = net.next_control(Some(Instant::now()))? {
            take(&mut hellos, Some(control))?;
        }
        let missing: Vec<usize> = (1..n).filter(|&r| hellos[r].is_none()).collect();
        let Some(&first) = missing.first() else {
            break;
        };
        if let Some(&dead) = missing.iter().find(|&&r| net.is_closed(r)) {
            let status = match net.peer_error(dead) {
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
        match net.next_control(Some(deadline))? {
            None => {
                return Err(Error::Timeout {
                    op: Op::StartUp,
                    rank: first,
                    after: start_timeout,
                });
            }
            // A closed peer is seen at the top of the loop.
            control => take(&mut hellos, control)?,
        }
    }
    let spmd: Vec<bool> = hellos.into_iter().flatten().collect();
    if spmd.iter().any(|&s| s != spmd[0]) {
        return Err(Error::Launch(
            "some workers serve tasks (#[parallelizer::main]) and others run main (SPMD); \
             all ranks must run the same program"
                .into(),
        ));
    }
    Ok(spmd[0])
}
