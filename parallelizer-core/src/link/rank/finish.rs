//! The end of a region: a worker's report to main, and main's wait for
//! every report (or the deadline, or the grace after a failure) that
//! settles `run`'s result.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Op;
use crate::outcome::{Outcome, settle};

use super::super::Transport;
use super::super::packet::{AbortNote, DoneNote, Kind};
use super::super::watch::Watch;
use super::LinkRank;

/// How a region ended on main: main's result, and the ranks that had not
/// finished when main gave up on them (a backend replaces them: their
/// threads may still be running the task, their processes must be killed).
#[derive(Debug)]
pub struct Finish {
    /// `run`'s result on main.
    pub result: Result<Msg>,
    /// Ranks that neither finished nor went away.
    pub unfinished: Vec<usize>,
}

impl<T: Transport> LinkRank<T> {
    /// The region's first failure as this rank knows it: main's record of
    /// it, or on a worker the cause an abort carried. What a backend reports
    /// instead of [`Error::Aborted`] when no `finish_main` settles the
    /// region (a call outside a region, SPMD).
    pub fn failure(&self) -> Option<(usize, Error)> {
        let st = self.lock();
        if let Some((rank, e)) = st.watch.as_ref().and_then(Watch::failed) {
            return Some((rank, e.clone()));
        }
        let abort = st.abort.as_ref()?;
        Some((abort.by_rank, abort.cause.clone()?))
    }

    /// A worker's end of the region: releases the other ranks if its task
    /// failed, and reports to main.
    pub fn finish_worker(&self, outcome: Outcome<Msg>) {
        let mut st = self.lock();
        let mut error = outcome.failure(self.id);
        if let (Some(_), Some(abort)) = (&error, &st.abort) {
            if abort.by_rank != self.id {
                // A failure caused by another rank's (say, a task that
                // wrapped `Aborted` in its own error): report the release.
                error = Some(Error::Aborted {
                    by_rank: abort.by_rank,
                });
            }
        }
        let dead = st.hit_gone.filter(|&r| r != 0);
        if let (Some(e), Some(dead), None) = (&error, dead, &st.abort) {
            if !e.is_secondary() {
                // A failure caused by the death of a peer this rank waited
                // for (say, a task that wrapped `WorkerDied` in its own
                // error): main learns of the death itself, which is the
                // region's error.
                error = Some(Error::Aborted { by_rank: dead });
            }
        }
        if let Some(e) = error.as_ref().filter(|e| !e.is_secondary()) {
            let note = AbortNote {
                by_rank: self.id,
                cause: Some(e.clone()),
            };
            for r in 1..self.nprocs {
                if r != self.id && st.gone[r].is_none() {
                    self.post(r, Kind::Abort, note.clone());
                }
            }
            st.abort.get_or_insert(note);
        }
        let sent = st.sent.clone();
        drop(st);
        self.post(0, Kind::Done, DoneNote { error, sent });
    }

    /// Main's end of the region: waits until every worker has reported or
    /// is gone (after a failure, at most the grace period; never past the
    /// deadline) and settles main's result.
    pub fn finish_main(&self, outcome: Outcome<Msg>) -> Finish {
        {
            let mut st = self.lock();
            let symptom = st.watch.as_ref().is_some_and(|w| w.failed().is_some());
            if outcome.is_own_failure() && !symptom {
                if let Some(e) = outcome.failure(0) {
                    self.fail(&mut st, 0, e);
                }
            }
            let sent = st.sent.clone();
            if let Some(w) = st.watch.as_mut() {
                w.done(0, sent, false);
            }
        }
        loop {
            let until = {
                let mut st = self.lock();
                let now = Instant::now();
                let Some(w) = st.watch.as_mut() else { break };
                if (1..self.nprocs).all(|r| w.is_over(r)) {
                    break;
                }
                if let Some(late) = w.overdue(Op::Run, now) {
                    if let Error::Timeout { rank, .. } = late {
                        self.fail(&mut st, rank, late);
                    }
                    break; // at the deadline, not after a grace period
                }
                let grace_end = w.failed_at().map(|t| t + self.limits.grace);
                if grace_end.is_some_and(|g| now >= g) {
                    break;
                }
                let watch_next = self.watch_while_waiting(&mut st, now);
                [grace_end, watch_next].into_iter().flatten().min()
            };
            if let Err(e) = self.pump(until) {
                let mut st = self.lock();
                self.fail(&mut st, 0, e);
                break;
            }
        }
        let mut st = self.lock();
        let watch = st.watch.take();
        let unfinished = watch.as_ref().map_or_else(Vec::new, Watch::unfinished);
        let first = watch.and_then(Watch::into_failure);
        Finish {
            result: settle(outcome, first),
            unfinished,
        }
    }
}
