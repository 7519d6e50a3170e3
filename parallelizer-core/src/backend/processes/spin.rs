//! How long a rank waiting on its rings spins before it sleeps.
//!
//! A reply within the spin costs no system call; a sleeping rank is woken
//! through its doorbell. On a virtual machine that wake-up can take
//! hundreds of microseconds (the host must run a halted vCPU again), longer
//! than the usual spin: then the peer, waiting for the reply, falls asleep
//! too, and every message pays a wake-up. Two ranks stayed in that state
//! for whole benchmark runs (an 8-byte ping-pong at 211 µs one way instead
//! of 1.2–2 µs). So a rank whose sleep a peer ended after a short while
//! spins about twice that long from then on (up to [`LONGEST`]), and the
//! budget shrinks back towards [`SPIN`] while waits end in the spin.
//! While another thread of the process computes alongside the waiting one
//! (a dynamically scheduled map's main), a wait does not spin at all, not
//! even the few yields before a spin's first look at the clock: under
//! EEVDF each yield pushed the waiting thread further behind the computing
//! one, and a dynamic map's scheduler took milliseconds to take a worker's
//! result.
//!
//! A lender whose borrowers copy a large loan knows when their replies are
//! due ([`Spin::expect_replies`]). Where every rank has a core, it spins
//! until then; where ranks share cores and the replies are [`REST_FROM`]
//! or more away, it sleeps at once: even a yielding spin takes turns on
//! the core a borrower copies on.

use std::time::{Duration, Instant};

/// The shortest spin, and the budget a rank starts with.
const SPIN: Duration = Duration::from_micros(50);

/// The longest spin: a sleep that a peer ended after longer than this says
/// the peer was busy, not slow to wake, and teaches nothing.
const LONGEST: Duration = Duration::from_millis(1);

/// Where ranks share cores, a lender expecting its borrowers' replies this
/// far off or further sleeps at once: a wake-up's tens of microseconds are
/// small beside it. `processes:4` on 2 cores, alternated runs, medians of
/// 200 calls: a `broadcast_into` of 8 MB took 1.16-1.88 ms sleeping (20
/// runs, median 1.43) against 1.28-2.78 ms spinning (16 runs, median 1.62,
/// 5 of them over 2.1 ms); one of 800 KB (replies due within 0.4 ms)
/// 157 µs sleeping against 92-172 µs spinning, so it still spins.
const REST_FROM: Duration = Duration::from_millis(1);

/// The spin budget of one rank's waits, and the replies it expects.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spin {
    budget: Duration,
    /// Replies are expected by then, and whether waits until then sleep
    /// at once ([`Spin::expect_replies`]).
    replies_by: Option<(Instant, bool)>,
}

impl Default for Spin {
    fn default() -> Spin {
        Spin {
            budget: SPIN,
            replies_by: None,
        }
    }
}

/// What one wait does before it sleeps ([`Spin::plan`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    spin_until: Option<Instant>,
    rests: bool,
}

impl Plan {
    /// Until when the wait spins; `None`: it sleeps after one look at the
    /// rings.
    pub(super) fn spin_until(self) -> Option<Instant> {
        self.spin_until
    }
}

impl Spin {
    /// Replies are expected within `within` (borrowers copying a loan):
    /// where every rank has a core (`uncrowded`), waits until then spin
    /// rather than sleep; where ranks share cores, waits until then sleep
    /// at once if that is [`REST_FROM`] or more away, and are unchanged if
    /// it is nearer.
    pub(super) fn expect_replies(&mut self, within: Duration, uncrowded: bool) {
        let by = Instant::now() + within;
        self.replies_by = match uncrowded {
            true => Some((by, false)),
            false => (within >= REST_FROM).then_some((by, true)),
        };
    }

    /// What a wait that starts at `now` does.
    pub(super) fn plan(&self, now: Instant) -> Plan {
        self.plan_with(now, self.budget())
    }

    fn plan_with(&self, now: Instant, budget: Duration) -> Plan {
        let (by, rests) = match self.replies_by {
            Some((by, rests)) if now < by => (Some(by), rests),
            _ => (None, false),
        };
        let spin_until =
            (!rests && !budget.is_zero()).then(|| (now + budget).max(by.unwrap_or(now)));
        Plan { spin_until, rests }
    }

    /// How long the next wait spins before it sleeps: zero (it sleeps
    /// after one look at the rings) while another thread of this process
    /// computes alongside the waiting one
    /// (`runtime::computing_alongside`), which needs the core.
    pub(super) fn budget(&self) -> Duration {
        if crate::runtime::computing_alongside() {
            return Duration::ZERO;
        }
        self.learned()
    }

    /// The spin this rank learned (what [`budget`](Self::budget) is when no
    /// thread computes alongside).
    fn learned(&self) -> Duration {
        self.budget
    }

    /// A wait ended while it spun: the budget shrinks by a sixteenth
    /// towards [`SPIN`], so a rank that learned a long spin gives it up
    /// after a few dozen quick replies.
    pub(super) fn hit(&mut self) {
        if self.budget > SPIN {
            self.budget = (self.budget - self.budget / 16).max(SPIN);
        }
    }

    /// A sleep ended by a peer (not by a deadline) after `slept`, in a wait
    /// that went as `plan`: if that was soon, spinning about twice as long
    /// would have caught it. A sleep the rank chose without spinning (while
    /// a thread computes alongside, or resting for late replies) teaches
    /// nothing: it would raise the budget after every dynamic map.
    pub(super) fn slept(&mut self, plan: Plan, slept: Duration) {
        if !plan.rests && !crate::runtime::computing_alongside() {
            self.learn(slept);
        }
    }

    /// What a sleep of `slept` ended by a peer teaches.
    fn learn(&mut self, slept: Duration) {
        if slept < LONGEST {
            self.budget = self.budget.max((slept * 2).clamp(SPIN, LONGEST));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_sleep_lengthens_the_spin_and_quick_replies_shorten_it_again() {
        let mut spin = Spin::default();
        assert_eq!(spin.learned(), SPIN);
        spin.learn(Duration::from_micros(10));
        assert_eq!(spin.learned(), SPIN, "never below SPIN");
        spin.learn(Duration::from_micros(211));
        assert_eq!(spin.learned(), Duration::from_micros(422));
        spin.learn(Duration::from_micros(100));
        assert_eq!(
            spin.learned(),
            Duration::from_micros(422),
            "a shorter sleep keeps it"
        );
        spin.learn(Duration::from_micros(700));
        assert_eq!(spin.learned(), LONGEST, "capped");
        spin.learn(Duration::from_millis(50));
        assert_eq!(spin.learned(), LONGEST, "a long sleep teaches nothing");
        let mut hits = 0;
        while spin.learned() > SPIN {
            spin.hit();
            hits += 1;
        }
        assert!(
            (20..80).contains(&hits),
            "{hits} quick replies to shrink back"
        );
        assert_eq!(spin.learned(), SPIN);
    }

    #[test]
    fn expected_replies_lengthen_the_spin_or_on_shared_cores_skip_it() {
        let (near, far) = (Duration::from_micros(400), Duration::from_millis(2));
        let plan = |spin: &Spin| spin.plan_with(Instant::now(), SPIN).spin_until;
        let spins_past = |spin: &Spin, after: Duration| {
            plan(spin).is_some_and(|until| until >= Instant::now() + after)
        };
        let mut spin = Spin::default();
        assert!(plan(&spin).is_some() && !spins_past(&spin, near / 2));
        spin.expect_replies(far, true);
        assert!(
            spins_past(&spin, far / 2),
            "each core its rank: spin until due"
        );
        spin.expect_replies(near, false);
        assert!(
            plan(&spin).is_some() && !spins_past(&spin, near / 2),
            "near: unchanged"
        );
        spin.expect_replies(far, false);
        let rest = spin.plan_with(Instant::now(), SPIN);
        assert_eq!(rest.spin_until, None, "far on shared cores: sleep at once");
        spin.slept(rest, Duration::from_micros(300));
        assert_eq!(spin.learned(), SPIN, "a rest teaches nothing");
        let later = Instant::now() + far;
        assert!(
            spin.plan_with(later, SPIN).spin_until.is_some(),
            "once due, spins again"
        );
    }
}
