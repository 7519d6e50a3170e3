//! Main's view of a pool of workers: starting it (launch, then every
//! worker's Hello), its child processes and how they ended, the end of a
//! shipped region (every worker's Done report, or its death, or a deadline),
//! and shutting it down and reaping it.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::task::check_initializer;
use crate::trace::WORKER;

use super::endpoint::Endpoint;
use super::launch::{self, Hello};
use super::opts::Opts;
use super::protocol::{Link, Obituary};
use super::rank::lock;

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
    /// how it ended, or `None` if it is still running (or not ours).
    fn wait(&self, rank: usize, within: Duration) -> Option<String> {
        let mut children = lock(&self.children);
        let child = children.get_mut(rank)?.as_mut()?;
        let until = Instant::now() + within;
        // A worker told to shut down exits within microseconds to a few
        // milliseconds: poll fast at first, then back off to 5 ms.
        let mut pause = Duration::from_micros(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(describe(status)),
                Ok(None) => {}
                Err(_) => return Some("already reaped".into()),
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
        if let Some(known) = self.known(rank) {
            return Some(known);
        }
        let status = self.wait(rank, within)?;
        let status = match cut {
            Some(cut) => format!("{status}; {cut}"),
            None => status,
        };
        tracing::warn!(target: WORKER, rank, status = %status, "worker process lost");
        *lock(&self.statuses).get_mut(rank)? = Some(status.clone());
        Some(status)
    }

    fn known(&self, rank: usize) -> Option<String> {
        lock(&self.statuses).get(rank).cloned().flatten()
    }
}

/// How a process ended, in words.
fn describe(status: ExitStatus) -> String {
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

/// A running pool: main's link to the workers and the workers themselves.
pub(super) struct Session {
    link: Arc<Mutex<Link>>,
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
                link: Arc::new(Mutex::new(Link::new(ep, opts, config.timeout, None))),
                workers: Arc::new(Workers::new(vec![None])),
                spmd: false,
                relays: Vec::new(),
            });
        }
        if let Some(path) = &config.initializer {
            check_initializer(path)?;
        }
        let launched = launch::launch(nprocs, config, opts.prefix_output())?;
        let workers = Arc::new(Workers::new(launched.children));
        let ep = Endpoint::new(0, launched.socks, opts.max_frame());
        let obituary: Arc<dyn Obituary> = workers.clone();
        let mut link = Link::new(ep, opts, config.timeout, Some(obituary));
        // During start-up a worker that leaves is reported by the hello loop
        // (and an SPMD worker may legitimately be done before the others join).
        link.set_eof_fails_region(false);
        let mut session = Session {
            link: Arc::new(Mutex::new(link)),
            workers,
            spmd: false,
            relays: launched.relays,
        };
        let hellos = await_hellos(
            &mut lock(&session.link),
            &launched.token,
            opts.start_timeout(),
        );
        match hellos {
            Ok(spmd) => {
                for (rank, pid) in session.workers.pids.iter().enumerate() {
                    if let Some(pid) = pid {
                        tracing::info!(target: WORKER, rank, pid, spmd, "worker process ready");
                    }
                }
                lock(&session.link).set_eof_fails_region(!spmd);
                session.spmd = spmd;
                Ok(session)
            }
            Err(e) => {
                session.shutdown(Duration::ZERO);
                Err(e)
            }
        }
    }

    /// Main's link to the workers.
    pub(super) fn link(&self) -> &Arc<Mutex<Link>> {
        &self.link
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
        let mut link = lock(&self.link);
        link.refresh();
        (1..link.nprocs()).all(|r| !link.is_closed(r) && !link.is_broken(r))
    }

    /// Shuts the pool down: Shutdown frames (served workers), close the
    /// sockets, wait up to `grace` for the workers to exit, then SIGKILL and
    /// reap the rest.
    pub(super) fn shutdown(self, grace: Duration) {
        let mut link = lock(&self.link);
        let nprocs = link.nprocs();
        if !self.spmd {
            for r in 1..nprocs {
                if link.is_writable(r) {
                    let _ = link.send_shutdown(r);
                }
            }
        }
        link.close_all();
        drop(link);
        let until = Instant::now() + grace;
        let left: Vec<usize> = (1..nprocs)
            .filter(|&r| {
                let within = until.saturating_duration_since(Instant::now());
                match self.workers.wait(r, within) {
                    Some(status) => {
                        tracing::info!(target: WORKER, rank = r, status = %status, "worker process reaped");
                        false
                    }
                    None => true,
                }
            })
            .collect();
        let left_ranks = left.clone();
        let mut children = lock(&self.workers.children);
        let left = children
            .iter_mut()
            .enumerate()
            .filter(|(r, _)| left.contains(r))
            .filter_map(|(_, c)| c.as_mut());
        launch::kill_and_reap(left);
        drop(children);
        for rank in left_ranks {
            tracing::info!(target: WORKER, rank, "worker process killed and reaped after the grace period");
        }
        // Let the last lines of output through (a grandchild holding a pipe
        // open must not hold us up).
        launch::wait_relays(&self.relays, Duration::from_millis(500));
    }
}

/// Waits for every worker's Hello; returns whether they run SPMD.
fn await_hellos(link: &mut Link, token: &[u8; 16], start_timeout: Duration) -> Result<bool> {
    let n = link.nprocs();
    let deadline = Instant::now() + start_timeout;
    let mut hellos: Vec<Option<bool>> = vec![None; n];
    loop {
        while let Some((from, frame)) = link.pop_control() {
            if frame.header().kind() == super::frame::Kind::Hello {
                hellos[from] = Some(Hello::check(frame, from, token)?);
            }
        }
        let missing: Vec<usize> = (1..n).filter(|&r| hellos[r].is_none()).collect();
        let Some(&first) = missing.first() else {
            break;
        };
        if let Some(&dead) = missing.iter().find(|&&r| link.is_closed(r)) {
            let status = match link.peer_error(dead) {
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
        let arrived = link.wait_until(Some(deadline), |link| {
            link.has_control() || missing.iter().any(|&r| link.is_closed(r))
        })?;
        if !arrived {
            return Err(Error::Timeout {
                op: Op::StartUp,
                rank: first,
                after: start_timeout,
            });
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

/// Main: starts region `region` and sends every worker its Run frame (a
/// worker that cannot be told fails the region).
pub(super) fn ship(link: &mut Link, region: u64, task: u32, args: &[u8]) {
    link.begin_region(region);
    for r in 1..link.nprocs() {
        if let Err(err) = link.send_run(r, task, args) {
            link.record_failure(r, Some(err));
        }
    }
}

/// How a shipped region ended on the workers.
pub(super) struct RegionEnd {
    /// The region's first failure: its rank and, when known, its cause.
    pub(super) failure: Option<(usize, Option<Error>)>,
    /// How lost workers ended, by rank.
    pub(super) statuses: Vec<Option<String>>,
    /// A worker died, stalled or lost a peer: the pool must be replaced.
    pub(super) broken: bool,
}

/// Main, after its own task: waits until every worker has reported Done or
/// is gone. After a failure the others get `grace` to wind down; past
/// that, or past the region's timeout, the stragglers are left to be killed
/// with the pool.
pub(super) fn finish(link: &mut Link, main_failed: bool, grace: Duration) -> Result<RegionEnd> {
    let nprocs = link.nprocs();
    if main_failed {
        link.record_failure(0, None);
    }
    let timeout_deadline = link.timeout().map(|t| Instant::now() + t);
    let mut abort_seen: Option<Instant> = None;
    let all_done = |link: &Link| (1..nprocs).all(|r| link.is_done(r) || link.is_closed(r));
    loop {
        if abort_seen.is_none() && link.aborted_by().is_some() {
            abort_seen = Some(Instant::now());
        }
        let deadline = match (timeout_deadline, abort_seen) {
            (t, None) => t,
            (None, Some(a)) => Some(a + grace),
            (Some(t), Some(a)) => Some(t.min(a + grace)),
        };
        let was_aborted = abort_seen.is_some();
        let finished = link.wait_until(deadline, |link| {
            all_done(link) || (!was_aborted && link.aborted_by().is_some())
        })?;
        if all_done(link) {
            break;
        }
        if finished {
            continue; // aborted meanwhile: now wait with the grace period
        }
        // Deadline: the stragglers are killed with the pool.
        let late = (1..nprocs)
            .find(|&r| !link.is_done(r) && !link.is_closed(r))
            .unwrap_or(1);
        if !was_aborted {
            let after = link.timeout().unwrap_or_default();
            link.record_failure(
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
    let broken = (1..nprocs).any(|r| !link.is_done(r) || link.is_closed(r) || link.is_broken(r));
    Ok(RegionEnd {
        failure: link.take_failure(),
        statuses: link.statuses(),
        broken,
    })
}
