//! How a region ends when something goes wrong: the region running on this
//! rank ([`Current`]), its deadline watchdog, and the end-of-region
//! agreement, in the two failure modes of the world (`ulfm.rs`).
//!
//! # With ULFM
//!
//! A rank whose task failed or panicked revokes the region's communicator
//! (`MPIX_Comm_revoke`): every rank blocked in a call on it, or calling it
//! later, gets `MPI_ERR_REVOKED` and is released with
//! [`Error::Aborted`]; a rank that dies (killed, or `exit` inside the
//! region) releases the others the same way through MPI's failure detector
//! (`MPI_ERR_PROC_FAILED`). Every rank then takes part in one agreement
//! ([`Current::conclude`]): `MPIX_Comm_agree` on whether everyone is fine (the
//! fast path of a region that went well is this one call); if not,
//! `MPIX_Comm_shrink` makes a fresh communicator of the live ranks, on which
//! they exchange what happened to each (fine, released, failed, late), the
//! lowest failed rank broadcasts its error itself (unless a rank died: the
//! death is the region's error, the others' failures may be its effect),
//! and the fresh
//! communicator replaces the revoked one for the next region. A rank that
//! died is [`Error::WorkerDied`] and the job goes on without it: the
//! parallelizer has one rank fewer, and the ranks above the dead one move
//! down by one (as `MPI_Comm_shrink` numbers them).
//!
//! With a deadline (`Config::timeout`), a watchdog thread wakes each rank
//! when it passes: a rank whose task is still running outside MPI is late:
//! its watchdog takes part in the agreement on its behalf (the task goes on
//! until it returns; its next MPI call fails at once), so main gets
//! [`Error::Timeout`] naming the late rank at the deadline. A rank blocked
//! in MPI revokes the communicator, which releases it and everyone else.
//!
//! # Without ULFM
//!
//! The ranks agree on the lowest failed rank with a non-blocking
//! all-reduce on the control communicator. If every rank reaches the end
//! of the region, the failed rank broadcasts its error and every rank
//! returns it. A failed rank that the others do not join within
//! `abort_grace_ms` prints its rank and error on stderr and ends the job
//! with `MPI_Abort`: they are blocked waiting for it. At a deadline, a late
//! rank does the same; a rank still blocked in MPI a grace period after the
//! deadline too.

use std::cell::RefCell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::handles::{self, Comm};
use super::world::{self, Comms, World};
use super::{Mpi, Role, agree, bcast_framed, calls, ulfm};
use crate::error::{Error, Result};
use crate::msg::{Msg, decode_serde, encode_serde};
use crate::op::Op;
use crate::outcome::{Outcome, resume_unwinding};

/// The piece size of the backend's own broadcasts, the same on every rank
/// whatever the configurations.
pub(super) const CTRL_LIMIT: usize = 1 << 30;

/// What a rank reports in the agreement.
const FINE: u64 = 0;
/// Released by another rank's failure (its own errors do not count).
const RELEASED: u64 = 1;
/// Its task failed or panicked.
const FAILED: u64 = 2;
/// Still running its task at the deadline.
const LATE: u64 = 3;

/// How a region ended, the same on every rank that took part.
#[derive(Debug, Clone)]
pub(super) enum Verdict {
    /// Nobody failed.
    Fine,
    /// Rank `rank` (numbered as in the region) failed with `error`;
    /// `own` says whether its task failed (rather than being late, dead, or
    /// only released).
    Failed {
        rank: usize,
        error: Error,
        own: bool,
    },
}

/// The region running on this rank (one top-level region per process at a
/// time), shared by the task's thread, the data calls and the watchdog.
#[derive(Debug)]
pub(super) struct Current {
    world: &'static World,
    /// The deadline of the region's `run`, if it has one.
    timeout: Option<Duration>,
    /// When that deadline passes on this rank.
    pub deadline: Option<Instant>,
    /// The region's communicator (the world's data communicator when the
    /// region started): calls of the region never use a replacement.
    pub comm: Comm,
    /// The region's communicator of plain-data parts (the world's when the
    /// region started), revoked with `comm`.
    pub plain: Comm,
    /// Data calls in progress on this rank (counted with a deadline only).
    calls: AtomicUsize,
    /// Whether this rank's task has returned.
    finished: AtomicBool,
    /// Whether a receive of this rank gave up at the deadline (without
    /// ULFM): the rank was waiting in MPI then, not late, even if the
    /// watchdog looks only after the receive returned.
    waited_past: AtomicBool,
    /// The agreed ending, once there is one.
    verdict: OnceLock<Verdict>,
    /// One agreement per region: whoever comes first runs it.
    concluding: Mutex<()>,
    /// `verify`: this rank's collectives so far.
    pub verified: AtomicU64,
    /// `verify`: the deadlock or mismatch found, the region's error.
    pub verify_failure: OnceLock<Error>,
    /// `verify`: the finished rank whose failure released this one.
    pub released_by: OnceLock<usize>,
    /// `verify`: the ranks whose end-of-task note a receive already took.
    notes: Mutex<Vec<usize>>,
    /// The communicators of the groups made in the region on this rank
    /// (`group.rs`), revoked with the region's on a failure.
    groups: Mutex<Groups>,
    /// Set (and signalled) when the region is over, for the watchdog.
    over: Mutex<bool>,
    wake: Condvar,
}

/// The region running on this rank, if any.
static CURRENT: Mutex<Option<Arc<Current>>> = Mutex::new(None);

/// How many times the region running on this rank changed (one region
/// started or ended): a thread's copy of [`CURRENT`] taken at this count
/// is still the region running.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's copy of [`CURRENT`] and the [`GENERATION`] it was
    /// taken at (none yet: `u64::MAX`).
    static CACHED: RefCell<(u64, Option<Arc<Current>>)> = const { RefCell::new((u64::MAX, None)) };
}

/// The region running on this rank, if any. Every data call asks, so a
/// thread keeps a copy and takes the lock only when a region started or
/// ended since (with the busy count kept for deadlines only and smaller
/// layers, that took an 8-byte MPI ping-pong from 1.23× to 1.18× raw
/// rsmpi's in one job).
pub(super) fn current() -> Option<Arc<Current>> {
    let now = GENERATION.load(Ordering::Acquire);
    CACHED
        .try_with(|cached| match cached.try_borrow_mut() {
            Ok(mut slot) => {
                if slot.0 != now {
                    *slot = current_at();
                }
                slot.1.clone()
            }
            // Only this function borrows it, and never twice.
            Err(_) => current_at().1,
        })
        // This thread is ending (its thread-locals are gone).
        .unwrap_or_else(|_| current_at().1)
}

/// The region running on this rank and the [`GENERATION`] it belongs to.
fn current_at() -> (u64, Option<Arc<Current>>) {
    let cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    (GENERATION.load(Ordering::Acquire), cur.clone())
}

/// Makes `cur` the region running on this rank.
fn set_current(cur: Option<Arc<Current>>) {
    let mut slot = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    *slot = cur;
    GENERATION.fetch_add(1, Ordering::Release);
}

impl Current {
    /// A region on `comms` (the world's when it starts), with a deadline
    /// `timeout` from now if there is one.
    fn new(world: &'static World, timeout: Option<Duration>, comms: Comms) -> Current {
        Current {
            world,
            timeout,
            deadline: timeout.map(|t| Instant::now() + t),
            comm: comms.data,
            plain: comms.plain,
            calls: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            waited_past: AtomicBool::new(false),
            verdict: OnceLock::new(),
            concluding: Mutex::new(()),
            verified: AtomicU64::new(0),
            verify_failure: OnceLock::new(),
            released_by: OnceLock::new(),
            notes: Mutex::new(Vec::new()),
            groups: Mutex::new(Groups::default()),
            over: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// The agreement of the ranks on how the region `cur` ended (ULFM): run
    /// once per region, by whichever of this rank's threads comes first
    /// (the task's at the end or in a released call, or the watchdog for a
    /// late rank); the others wait for its verdict. `status` is this rank's
    /// report and `error` its own failure.
    pub(super) fn conclude(&self, status: u64, error: Option<Error>) -> Verdict {
        let _one = self.concluding.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = self.verdict() {
            return v.clone();
        }
        let verdict = self.agree(status, error).unwrap_or_else(|e| {
            world::report_and_abort(
                self.world,
                &format!("could not agree after a failure: {e}"),
                1,
            )
        });
        self.verdict.set(verdict.clone()).ok();
        verdict
    }

    fn agree(&self, status: u64, error: Option<Error>) -> Result<Verdict> {
        let comm = self.comm;
        if status != FINE {
            // Release everyone blocked with this rank, in the region's
            // communicator or a group's (revoking twice is allowed).
            self.revoke_all()?;
        }
        let (all_fine, lost) = ulfm::agree(comm, c_int::from(status == FINE))?;
        if all_fine == 1 && !lost {
            return Ok(Verdict::Fine);
        }
        // Some rank failed, was late, or died: a fresh communicator of the
        // live ranks (this works on the revoked one), then what happened.
        let fresh = ulfm::shrink(comm)?;
        // Every rank enters this exchange before any can leave it, so no
        // rank revokes `fresh` while another is still creating it.
        let reports = calls::allgather_u64(fresh, &[comm.rank() as u64, status])?;
        let reports: Vec<(usize, u64)> = reports.chunks(2).map(|r| (r[0] as usize, r[1])).collect();
        let first = |wanted: u64| {
            reports
                .iter()
                .enumerate()
                .filter(|(_, r)| r.1 == wanted)
                .min_by_key(|(_, r)| r.0)
                .map(|(new_rank, r)| (new_rank, r.0))
        };
        let dead: Vec<usize> = (0..comm.size())
            .filter(|r| !reports.iter().any(|(old, _)| old == r))
            .collect();
        let timeout = self.timeout.unwrap_or_default();
        // A death comes first: the ranks it left waiting may have failed
        // with the MPI error it caused (Open MPI's barrier says
        // MPI_ERR_OTHER, not that a process failed).
        let own = dead.is_empty() && first(FAILED).is_some();
        let (rank, error) = if let Some(&rank) = dead.first() {
            let status = "its MPI process ended (killed, or it exited inside the region); \
                          the job goes on without it"
                .to_string();
            (rank, Error::WorkerDied { rank, status })
        } else if let Some((root, rank)) = first(FAILED) {
            // The failed rank tells everyone its error, as itself.
            let mut bytes = Vec::new();
            if let Some(e) = error.filter(|_| rank == comm.rank()) {
                encode_serde(&self.reported(e, rank), &mut bytes)?;
            }
            let body = (rank == comm.rank()).then_some(bytes);
            let got = bcast_framed(fresh, root, &mut [0], body, CTRL_LIMIT)?;
            (rank, decode_serde::<Error>(&got)?)
        } else if let Some((_, rank)) = first(LATE) {
            let error = Error::Timeout {
                op: Op::Run,
                rank,
                after: timeout,
            };
            (rank, error)
        } else {
            // Everyone was released and nobody failed: the deadline passed
            // while every rank waited in MPI for another.
            let rank = first(RELEASED).map_or(0, |(_, r)| r);
            let error = Error::Timeout {
                op: Op::Run,
                rank,
                after: timeout,
            };
            (rank, error)
        };
        let ctrl = if dead.is_empty() {
            self.world.ctrl()
        } else {
            // The control communicator has the dead rank too.
            self.world.lost.store(true, Ordering::SeqCst);
            handles::dup_returning_errors(fresh)?
        };
        // The plain-data parts' was revoked with the region's.
        let plain = handles::dup_returning_errors(fresh)?;
        // No rank may revoke them while another is still making them.
        calls::barrier(plain)?;
        self.world.replace(Comms {
            data: fresh,
            ctrl,
            plain,
        });
        if first(LATE).is_some() {
            // The late ranks are still in their tasks: the next region
            // starts when they are back (see `run_settled`).
            self.world.resync.store(true, Ordering::SeqCst);
        }
        Ok(Verdict::Failed { rank, error, own })
    }

    /// The agreed ending, if the ranks have agreed.
    pub(super) fn verdict(&self) -> Option<&Verdict> {
        self.verdict.get()
    }

    /// `error` of this rank, `rank`, as the others get it: where it
    /// happened, unless it is the region's own (a `verify` finding, the same
    /// on every rank).
    fn reported(&self, error: Error, rank: usize) -> Error {
        if self.verify_failure.get() == Some(&error) {
            error
        } else {
            error.on_rank(rank)
        }
    }

    /// `verify`: records that the note of `rank` was taken by a receive.
    pub(super) fn take_note(&self, rank: usize) {
        let mut taken = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if !taken.contains(&rank) {
            taken.push(rank);
        }
    }

    /// `verify`: whether a receive took the note of `rank`.
    pub(super) fn note_taken(&self, rank: usize) -> bool {
        let taken = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        taken.contains(&rank)
    }

    /// Revokes the region's communicator and those of the groups made in
    /// it on this rank (ULFM), which releases every rank blocked in a call
    /// on any of them: a failure inside a group's collective reaches the
    /// members blocked there, and through the region's communicator every
    /// other rank. The region's error, if any, is the call's.
    pub(super) fn revoke_all(&self) -> Result<()> {
        let region = ulfm::revoke(self.comm);
        let _ = ulfm::revoke(self.plain);
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &(group, _) in &groups.comms {
            // Best effort: the region's revoke alone releases the members
            // through their agreement once they are out of the group's call.
            let _ = ulfm::revoke(group);
        }
        region
    }

    /// Records `comm`, a group's communicator made in this region on this
    /// rank, so that [`revoke_all`](Current::revoke_all) revokes it too.
    pub(super) fn add_group(&self, comm: Comm) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.comms.push((comm, false));
    }

    /// The handle of `comm` (see [`add_group`](Current::add_group)) is
    /// gone. While the region runs, the communicator stays until its end
    /// (a rank whose task fails drops its group handles while it unwinds,
    /// before it revokes them for the members still blocked in them);
    /// afterwards it is freed at once. Under the lock of the revokes, so
    /// none sees it freed.
    pub(super) fn free_group(&self, comm: Comm) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if groups.closed {
            groups.comms.retain(|&(g, _)| g != comm);
            handles::free(comm);
        } else if let Some(entry) = groups.comms.iter_mut().find(|(g, _)| *g == comm) {
            entry.1 = true;
        }
    }

    /// The region is over on this rank (its ranks agreed): frees the group
    /// communicators whose handles are gone; live handles free theirs.
    fn close_groups(&self) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.closed = true;
        groups.comms.retain(|&(comm, dropped)| {
            if dropped {
                handles::free(comm);
            }
            !dropped
        });
    }

    /// A receive gave up at the region's deadline: noted while the call
    /// still counts as in progress, so the watchdog never finds the rank
    /// between that receive and its next call and calls it late.
    pub(super) fn note_waited_past(&self) {
        self.waited_past.store(true, Ordering::SeqCst);
    }

    /// Counts a data call in progress while the guard lives. Only a region
    /// with a deadline counts: its watchdog alone reads the count, and a
    /// call saves two atomic operations without it.
    pub(super) fn busy(&self) -> Busy<'_> {
        let counted = self.timeout.is_some();
        if counted {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
        Busy(self, counted)
    }
}

/// The group communicators of a region on this rank (see
/// [`Current::add_group`]).
#[derive(Debug, Default)]
struct Groups {
    /// Each communicator, and whether its handle is gone.
    comms: Vec<(Comm, bool)>,
    /// Whether the region is over (its handles free their own).
    closed: bool,
}

/// A data call in progress (see [`Current::busy`]).
pub(super) struct Busy<'a>(&'a Current, bool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.calls.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Verdict {
    /// What a released rank's calls return after this verdict.
    pub(super) fn release(&self) -> Error {
        match self {
            Verdict::Failed { rank, .. } => Error::Aborted { by_rank: *rank },
            Verdict::Fine => Error::Mpi("the region's communicator was revoked".into()),
        }
    }
}

/// Ends the region `cur` when dropped: clears the current region, frees
/// the group communicators whose handles are gone and stops the watchdog.
struct Ending(Arc<Current>);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.close_groups();
        set_current(None);
        // Only a watchdog (a region with a deadline) waits for this, and a
        // wake-up is a system call even when nobody waits.
        if self.0.timeout.is_some() {
            *self.0.over.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.0.wake.notify_all();
        }
    }
}

impl Mpi {
    /// Runs `f` as this rank's part of a top-level region and ends the
    /// region with the other ranks: everyone returns the same failure, or
    /// its own result.
    pub(super) fn run_settled(&self, f: impl FnOnce() -> Result<Msg>) -> Result<Msg> {
        if self.world.resync.swap(false, Ordering::SeqCst) {
            // The last region ended with a rank late (under ULFM): it was
            // still running its task; wait for it before this region's clock
            // starts.
            calls::barrier(self.world.ctrl())?;
        }
        handles::take_released();
        let timeout = self.core.config().timeout;
        let comms = self.world.comms();
        let cur = Arc::new(Current::new(self.world, timeout, comms));
        set_current(Some(cur.clone()));
        world::on_exit_in_region(revoke_current);
        let ending = Ending(cur.clone());
        if let Some(timeout) = timeout {
            self.watch(cur.clone(), Instant::now() + timeout, timeout);
        }
        let outcome = {
            // Counted (so a panic is left to the region) and current.
            let _region = world::in_region();
            let _current = self.core.this().map(crate::runtime::set_current);
            Outcome::catch(f)
        };
        cur.finished.store(true, Ordering::SeqCst);
        let outcome = self.verify_end(&cur, outcome);
        let result = if self.world.faults.is_ulfm() {
            self.settle_ulfm(&cur, outcome)
        } else {
            self.settle_abort(&cur, outcome)
        };
        drop(ending);
        result
    }

    /// The error of a data call on `comm` (the region's communicator or a
    /// group's) that failed: under ULFM, a release (a revoked communicator,
    /// a failed peer) brings this rank into the agreement at once, and the
    /// call returns [`Error::Aborted`] naming the rank that failed.
    pub(super) fn failed_call(&self, cur: &Current, comm: Comm, error: Error) -> Error {
        if !self.world.faults.is_ulfm() {
            return error;
        }
        // Not every call reports a revoked communicator with its error
        // class (Open MPI's barrier says MPI_ERR_OTHER): ask.
        let revoked = |c: Comm| ulfm::is_revoked(c);
        if !(handles::take_released() || revoked(cur.comm) || (comm != cur.comm && revoked(comm))) {
            return error;
        }
        cur.conclude(RELEASED, None).release()
    }

    /// The end of a region under ULFM.
    fn settle_ulfm(&self, cur: &Current, outcome: Outcome<Msg>) -> Result<Msg> {
        let rank = cur.comm.rank();
        let verdict = match cur.verdict() {
            Some(v) => v.clone(),
            None => {
                let (status, error) = match &outcome {
                    Outcome::Done(_) => (FINE, None),
                    _ if handles::take_released() => (RELEASED, None),
                    failed => (FAILED, failed.failure(rank)),
                };
                cur.conclude(status, error)
            }
        };
        match verdict {
            Verdict::Fine => outcome.into_result(rank),
            Verdict::Failed {
                rank: failed,
                own: true,
                ..
            } if failed == rank => self.own_failure(outcome, rank),
            Verdict::Failed { error, .. } => Err(error),
        }
    }

    /// This rank failed first: served main resumes its own panic, as the
    /// threads backend does (the workers are back in their loop, so
    /// unwinding is clean); every other rank returns the error.
    fn own_failure(&self, outcome: Outcome<Msg>, rank: usize) -> Result<Msg> {
        match outcome {
            Outcome::Panicked(panic) if self.role == Role::Main => resume_unwinding(panic),
            other => other.into_result(rank),
        }
    }

    /// The end of a region without ULFM: agree on the lowest failed rank
    /// (a failed rank waits for the others at most `abort_grace_ms`, then
    /// aborts the job).
    fn settle_abort(&self, cur: &Current, outcome: Outcome<Msg>) -> Result<Msg> {
        let world = self.world;
        let rank = world.rank();
        let failure = outcome.failure(rank).filter(|e| !e.is_secondary());
        let (mine, deadline) = match failure {
            Some(_) => (rank as u64, Some(Instant::now() + self.grace)),
            None => (u64::MAX, None),
        };
        let failed = match agree::agree_min(world.ctrl(), [mine], deadline) {
            Ok(Some([u64::MAX])) => return outcome.into_result(rank),
            Ok(Some([r])) => r as usize,
            Ok(None) => {
                let failure = failure.expect("only failed ranks have a deadline");
                world::report_and_abort(
                    world,
                    &format!(
                        "{}\n  (the other ranks did not finish the region within {:?}: they \
                         are waiting for this one)",
                        describe(&failure),
                        self.grace
                    ),
                    exit_code(&failure),
                )
            }
            Err(e) => world::report_and_abort(world, &format!("could not agree: {e}"), 1),
        };
        // Every rank finished the region: the first failed rank tells the
        // others what went wrong.
        let report = match &failure {
            Some(e) if failed == rank => {
                let mut bytes = Vec::new();
                encode_serde(&cur.reported(e.clone(), rank), &mut bytes)?;
                Some(bytes)
            }
            _ => None,
        };
        let ctrl = world.ctrl();
        let bytes = bcast_framed(ctrl, failed, &mut [0], report, CTRL_LIMIT)?;
        let reported: Error = decode_serde(&bytes)?;
        if failed == rank {
            return self.own_failure(outcome, rank);
        }
        Err(reported)
    }

    /// Starts the watchdog of a region with a deadline.
    fn watch(&self, cur: Arc<Current>, deadline: Instant, timeout: Duration) {
        let (world, grace, ulfm) = (self.world, self.grace, self.world.faults.is_ulfm());
        let spawned = std::thread::Builder::new()
            .name("parallelizer-mpi-deadline".into())
            .spawn(move || {
                if !sleep_until(&cur, deadline) {
                    return;
                }
                let late = || {
                    cur.calls.load(Ordering::SeqCst) == 0
                        && !cur.finished.load(Ordering::SeqCst)
                        && !cur.waited_past.load(Ordering::SeqCst)
                };
                // A rank that left its last call just at the deadline (say,
                // a gather a peer joined when its own receive gave up at
                // its deadline, a moment earlier) is returning, not late:
                // it gets a moment to finish before it is called late.
                if late() && !sleep_until(&cur, deadline + LATE_SLACK) {
                    return;
                }
                let late = late();
                if ulfm {
                    if late {
                        cur.conclude(LATE, None);
                    } else if cur.verdict().is_none() {
                        let _ = cur.revoke_all();
                    }
                    return;
                }
                let rank = world.rank();
                if late {
                    let late = Error::Timeout {
                        op: Op::Run,
                        rank,
                        after: timeout,
                    };
                    world::report_and_abort(world, &format!("is late: {late}"), 1);
                }
                if sleep_until(&cur, deadline + grace) {
                    world::report_and_abort(
                        world,
                        &format!(
                            "is still waiting for the other ranks {grace:?} after the run's \
                             deadline of {timeout:?}"
                        ),
                        1,
                    );
                }
            });
        if let Err(e) = spawned {
            world::say(format_args!(
                "parallelizer: no deadline watchdog for this MPI region: {e}"
            ));
        }
    }
}

/// How long after the deadline a rank that is between MPI calls may still
/// return from its task before its watchdog calls it late.
const LATE_SLACK: Duration = Duration::from_millis(50);

/// `exit` inside a region (ULFM): revokes the region's communicator and its
/// groups', so the ranks blocked with this one are released and agree that
/// it is gone.
fn revoke_current(_: &World) {
    if let Some(cur) = current() {
        let _ = cur.revoke_all();
    }
}

/// Sleeps until `until` or the end of the region; true if the region is
/// still running at `until`.
fn sleep_until(cur: &Current, until: Instant) -> bool {
    let mut over = cur.over.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if *over {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        over = cur
            .wake
            .wait_timeout(over, until - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// `panicked: message` or `failed: error`, for stderr before an abort.
fn describe(error: &Error) -> String {
    match error {
        Error::WorkerPanicked { message, .. } => format!("panicked: {message}"),
        Error::TaskFailed { message, .. } => format!("failed: {message}"),
        other => format!("failed: {other}"),
    }
}

/// The exit status of a job this failure aborts.
fn exit_code(error: &Error) -> c_int {
    if matches!(error, Error::WorkerPanicked { .. }) {
        101
    } else {
        1
    }
}

#[cfg(test)]
#[path = "fate_tests.rs"]
mod tests;
