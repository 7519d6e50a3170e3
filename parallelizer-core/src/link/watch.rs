//! Main's view of a region: how each rank stands (running, waiting for
//! whom, done, gone), the region's first failure, and the two things only
//! that view can decide — that the ranks are deadlocked, and which rank was
//! late when the deadline passed.
//!
//! Deadlock detection costs nothing while ranks make progress: a rank only
//! reports a wait after it has lasted a while ([`Limits::patience`]). A
//! wait of rank `r` on rank `t` is *hopeless* when `t` has sent `r` no data
//! packet that `r` has not received yet, and `t` has finished its task, is
//! gone, or is itself in a hopeless wait. Any hopeless wait is a deadlock
//! (it can never end); the verdict is confirmed once more after a short
//! interval, so that reports still on their way cannot fake one.
//!
//! [`Limits::patience`]: super::Limits

use std::time::{Duration, Instant};

use crate::error::{Error, Wait};
use crate::op::Tag;
use crate::outcome::FirstFailure;

/// How one rank stands, as main knows it.
#[derive(Debug, Clone)]
enum Stand {
    /// Running its task (or waiting for less long than the patience).
    Running,
    /// Waiting for a message from `on`.
    Blocked {
        on: usize,
        tag: Tag,
        got: u64,
        sent: Vec<u64>,
        epoch: u64,
    },
    /// Finished its task, having sent `sent` data packets to each rank;
    /// `released`: because another rank's failure released it (its report
    /// says `Aborted`), a failure whose own report may still be on its way.
    Done { sent: Vec<u64>, released: bool },
    /// Can no longer be heard (died, or its stream broke).
    Gone,
}

/// A suspected deadlock: the waits, and when they were first seen.
#[derive(Debug)]
struct Suspect {
    since: Instant,
    waits: Vec<(usize, u64)>,
}

/// Main's view of the ranks of one region.
#[derive(Debug)]
pub(crate) struct Watch {
    stands: Vec<Stand>,
    first: FirstFailure,
    /// When the first failure was recorded.
    failed_at: Option<Instant>,
    /// The region's deadline, and the timeout.
    deadline: Option<(Instant, Duration)>,
    /// How long after the ranks were told the deadline passed the late
    /// rank is named ([`Limits::settle`](super::Limits); zero: at the
    /// deadline, nobody told).
    settle: Duration,
    /// When the ranks were told the deadline passed ([`Watch::expiring`]).
    told: Option<Instant>,
    suspect: Option<Suspect>,
}

/// How long a deadlock must be seen unchanged before it is declared.
const CONFIRM: Duration = Duration::from_millis(50);

impl Watch {
    /// The view of `nprocs` ranks in a region that starts now, with the
    /// deadline `timeout` from now, judged `settle` after the ranks were
    /// told it passed ([`Limits::settle`](super::Limits)).
    pub(crate) fn new(nprocs: usize, timeout: Option<Duration>, settle: Duration) -> Watch {
        Watch {
            stands: vec![Stand::Running; nprocs],
            first: FirstFailure::default(),
            failed_at: None,
            deadline: timeout.map(|t| (Instant::now() + t, t)),
            settle,
            told: None,
            suspect: None,
        }
    }

    /// Records a failure; true if it is the region's first.
    pub(crate) fn fail(&mut self, rank: usize, error: Error) -> bool {
        let first = self.first.record(rank, error);
        if first {
            self.failed_at = Some(Instant::now());
        }
        first
    }

    pub(crate) fn failed(&self) -> Option<(usize, &Error)> {
        self.first.get()
    }

    pub(crate) fn failed_at(&self) -> Option<Instant> {
        self.failed_at
    }

    pub(crate) fn into_failure(self) -> Option<(usize, Error)> {
        self.first.into_inner()
    }

    pub(crate) fn blocked(
        &mut self,
        rank: usize,
        on: usize,
        tag: Tag,
        got: u64,
        sent: Vec<u64>,
        epoch: u64,
    ) {
        if !matches!(self.stands[rank], Stand::Done { .. } | Stand::Gone) {
            self.stands[rank] = Stand::Blocked {
                on,
                tag,
                got,
                sent,
                epoch,
            };
        }
    }

    /// Rank `rank` stopped waiting (its wait number `epoch`).
    pub(crate) fn resumed(&mut self, rank: usize, epoch: u64) {
        if matches!(self.stands[rank], Stand::Blocked { epoch: e, .. } if e == epoch) {
            self.stands[rank] = Stand::Running;
        }
    }

    /// Rank `rank` finished its task; `released` if another rank's failure
    /// ended it.
    pub(crate) fn done(&mut self, rank: usize, sent: Vec<u64>, released: bool) {
        if !matches!(self.stands[rank], Stand::Gone) {
            self.stands[rank] = Stand::Done { sent, released };
        }
    }

    pub(crate) fn gone(&mut self, rank: usize) {
        self.stands[rank] = Stand::Gone;
    }

    pub(crate) fn is_over(&self, rank: usize) -> bool {
        matches!(self.stands[rank], Stand::Done { .. } | Stand::Gone)
    }

    /// Whether a wait on `rank` can be judged hopeless from its end: it
    /// finished on its own, or is gone. A rank released by another's failure
    /// is not: the failure that released it is the region's error, and its
    /// report, on another stream, may reach main after this rank's.
    pub(crate) fn ended_for_good(&self, rank: usize) -> bool {
        matches!(
            self.stands[rank],
            Stand::Done {
                released: false,
                ..
            } | Stand::Gone
        )
    }

    /// The ranks that have not finished nor gone.
    pub(crate) fn unfinished(&self) -> Vec<usize> {
        (0..self.stands.len())
            .filter(|&r| !self.is_over(r))
            .collect()
    }

    /// When main looks at the deadline next, if there is one: at the
    /// deadline, then (with a settling time) that long after the ranks
    /// were told it passed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.judged().or(self.deadline.map(|(d, _)| d))
    }

    /// When the late rank is named: at the deadline without a settling
    /// time, else that long after the ranks were told (`None` before).
    fn judged(&self) -> Option<Instant> {
        let (deadline, _) = self.deadline?;
        match self.settle.is_zero() {
            true => Some(deadline),
            false => self.told.map(|told| told + self.settle),
        }
    }

    /// Whether the ranks are to be told now that the deadline passed (once,
    /// and only with a settling time): a rank blocked sending to a late
    /// peer then gives up and reports, so that the late peer is the one
    /// still running when the rank is named.
    pub(crate) fn expiring(&mut self, now: Instant) -> bool {
        let due = self.told.is_none()
            && !self.settle.is_zero()
            && self.deadline.is_some_and(|(d, _)| now >= d);
        if due {
            self.told = Some(now);
        }
        due
    }

    /// The timeout error if the deadline has passed (with a settling time:
    /// that long after the ranks were told so): it names the late rank, the
    /// first that is neither finished nor waiting (main if every other rank
    /// is).
    pub(crate) fn overdue(&self, op: crate::op::Op, now: Instant) -> Option<Error> {
        let (_, after) = self.deadline?;
        if self.judged().is_none_or(|judged| now < judged) {
            return None;
        }
        let late = (1..self.stands.len())
            .find(|&r| matches!(self.stands[r], Stand::Running))
            .unwrap_or(0);
        Some(Error::Timeout {
            op,
            rank: late,
            after,
        })
    }

    /// Whether the wait of `rank` can never end; `None` when it is not
    /// waiting.
    fn hopeless_edge(&self, rank: usize) -> Option<bool> {
        let Stand::Blocked { on, got, .. } = &self.stands[rank] else {
            return None;
        };
        let sent_to_rank = |sent: &Vec<u64>| sent.get(rank).copied().unwrap_or(0);
        Some(match &self.stands[*on] {
            Stand::Running | Stand::Done { released: true, .. } => false,
            Stand::Gone => true,
            Stand::Done { sent, .. } | Stand::Blocked { sent, .. } => sent_to_rank(sent) <= *got,
        })
    }

    /// The hopeless waits, largest set first: a wait is hopeless when its
    /// edge is, and the rank waited on is finished, gone, or hopeless too
    /// (the greatest fixed point, so that cycles of waits count).
    fn hopeless(&self) -> Vec<usize> {
        let n = self.stands.len();
        let mut dead: Vec<bool> = (0..n)
            .map(|r| self.hopeless_edge(r) == Some(true))
            .collect();
        loop {
            let mut changed = false;
            for r in 0..n {
                if !dead[r] {
                    continue;
                }
                let Stand::Blocked { on, .. } = &self.stands[r] else {
                    continue;
                };
                let target_ok = match &self.stands[*on] {
                    Stand::Done { released, .. } => !released,
                    Stand::Gone => true,
                    Stand::Blocked { .. } => dead[*on],
                    Stand::Running => false,
                };
                if !target_ok {
                    dead[r] = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        (0..n).filter(|&r| dead[r]).collect()
    }

    /// The deadlock error once hopeless waits have been seen unchanged for
    /// a confirmation interval; meanwhile, when to look again.
    pub(crate) fn deadlock(&mut self, now: Instant) -> Verdict {
        let dead = self.hopeless();
        if dead.is_empty() {
            self.suspect = None;
            return Verdict::Clear;
        }
        let waits: Vec<(usize, u64)> = dead
            .iter()
            .map(|&r| match &self.stands[r] {
                Stand::Blocked { epoch, .. } => (r, *epoch),
                _ => (r, 0),
            })
            .collect();
        match &self.suspect {
            Some(s) if s.waits == waits => {
                if now >= s.since + CONFIRM {
                    Verdict::Deadlock(self.deadlock_error(&dead))
                } else {
                    Verdict::Recheck(s.since + CONFIRM)
                }
            }
            _ => {
                self.suspect = Some(Suspect { since: now, waits });
                Verdict::Recheck(now + CONFIRM)
            }
        }
    }

    fn deadlock_error(&self, dead: &[usize]) -> Error {
        let waits = dead
            .iter()
            .filter_map(|&r| match &self.stands[r] {
                Stand::Blocked { on, tag, .. } => Some(Wait {
                    rank: r,
                    on: *on,
                    op: tag.op(),
                    finished: matches!(self.stands[*on], Stand::Done { .. }),
                }),
                _ => None,
            })
            .collect();
        Error::Deadlock { waits }
    }
}

/// What the deadlock check found.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// No wait is hopeless.
    Clear,
    /// Some are; look again at this time to confirm.
    Recheck(Instant),
    /// Confirmed.
    Deadlock(Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    fn blocked(w: &mut Watch, r: usize, on: usize, got: u64, sent: Vec<u64>, epoch: u64) {
        w.blocked(r, on, Tag::new(Op::Gather, 0), got, sent, epoch);
    }

    fn confirm(w: &mut Watch) -> Verdict {
        let t = Instant::now();
        assert!(matches!(w.deadlock(t), Verdict::Recheck(_)));
        w.deadlock(t + CONFIRM)
    }

    #[test]
    fn a_wait_on_a_finished_rank_is_a_deadlock_unless_a_packet_is_on_its_way() {
        let mut w = Watch::new(3, None, Duration::ZERO);
        w.done(2, vec![0, 1, 0], false);
        blocked(&mut w, 1, 2, 0, vec![0, 0, 0], 1);
        // Rank 2 sent rank 1 a packet that has not arrived yet.
        assert!(matches!(w.deadlock(Instant::now()), Verdict::Clear));
        blocked(&mut w, 1, 2, 1, vec![0, 0, 0], 2);
        match confirm(&mut w) {
            Verdict::Deadlock(Error::Deadlock { waits }) => {
                assert_eq!(
                    waits,
                    [Wait {
                        rank: 1,
                        on: 2,
                        op: Op::Gather,
                        finished: true
                    }]
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cycles_are_deadlocks_and_running_ranks_break_them() {
        let mut w = Watch::new(3, None, Duration::ZERO);
        blocked(&mut w, 0, 1, 0, vec![0, 0, 0], 1);
        blocked(&mut w, 1, 0, 0, vec![0, 0, 0], 1);
        assert!(matches!(confirm(&mut w), Verdict::Deadlock(_)));
        // A chain ending at a running rank is not hopeless.
        let mut w = Watch::new(3, None, Duration::ZERO);
        blocked(&mut w, 0, 1, 0, vec![0, 0, 0], 1);
        blocked(&mut w, 1, 2, 0, vec![0, 0, 0], 1);
        assert!(matches!(w.deadlock(Instant::now()), Verdict::Clear));
        // A resumed rank clears the suspicion.
        let mut w = Watch::new(2, None, Duration::ZERO);
        blocked(&mut w, 0, 1, 0, vec![0, 0], 1);
        blocked(&mut w, 1, 0, 0, vec![0, 0], 4);
        assert!(matches!(w.deadlock(Instant::now()), Verdict::Recheck(_)));
        w.resumed(1, 4);
        assert!(matches!(
            w.deadlock(Instant::now() + CONFIRM),
            Verdict::Clear
        ));
    }

    #[test]
    fn a_wait_on_a_rank_released_by_another_failure_is_not_a_deadlock() {
        // Rank 2 failed and released rank 1, whose report came first; rank
        // 3 waits on rank 1 and main on rank 3: the failure, not a
        // deadlock, is what ends the region.
        let mut w = Watch::new(4, None, Duration::ZERO);
        w.done(1, vec![0; 4], true);
        blocked(&mut w, 3, 1, 0, vec![0; 4], 1);
        assert!(!w.ended_for_good(1) && w.is_over(1));
        assert!(matches!(w.deadlock(Instant::now()), Verdict::Clear));
        assert!(matches!(
            w.deadlock(Instant::now() + CONFIRM),
            Verdict::Clear
        ));
        // Once rank 1 is gone, the wait is hopeless after all.
        w.gone(1);
        assert!(w.ended_for_good(1));
        assert!(matches!(confirm(&mut w), Verdict::Deadlock(_)));
    }

    #[test]
    fn the_late_rank_is_named_once_the_settling_time_has_passed_since_the_ranks_were_told() {
        let settle = Duration::from_secs(60);
        let mut w = Watch::new(2, Some(Duration::ZERO), settle);
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        assert!(w.overdue(Op::Run, later).is_none(), "nobody was told yet");
        assert_eq!(
            w.deadline(),
            w.deadline.map(|(d, _)| d),
            "look at the deadline"
        );
        assert!(w.expiring(now), "the deadline passed: tell the ranks");
        assert!(!w.expiring(later), "once");
        assert_eq!(
            w.deadline(),
            Some(now + settle),
            "then after the settling time"
        );
        assert!(w.overdue(Op::Run, now + settle / 2).is_none());
        let err = w.overdue(Op::Run, now + settle).unwrap();
        assert!(
            matches!(err, Error::Timeout { rank: 1, after, .. } if after == Duration::ZERO),
            "{err}"
        );
    }

    #[test]
    fn without_a_settling_time_the_late_rank_is_named_at_the_deadline_and_nobody_is_told() {
        let mut w = Watch::new(2, Some(Duration::ZERO), Duration::ZERO);
        let now = Instant::now();
        assert!(!w.expiring(now));
        assert!(w.overdue(Op::Run, now).is_some());
    }

    #[test]
    fn the_late_rank_is_the_one_still_running() {
        let mut w = Watch::new(4, Some(Duration::ZERO), Duration::ZERO);
        w.done(1, vec![0; 4], false);
        blocked(&mut w, 2, 0, 0, vec![0; 4], 1);
        let err = w.overdue(Op::Run, Instant::now()).unwrap();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    rank: 3,
                    op: Op::Run,
                    ..
                }
            ),
            "{err}"
        );
    }
}
