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

use std::time::Duration;

/// The shortest spin, and the budget a rank starts with.
const SPIN: Duration = Duration::from_micros(50);

/// The longest spin: a sleep that a peer ended after longer than this says
/// the peer was busy, not slow to wake, and teaches nothing.
const LONGEST: Duration = Duration::from_millis(1);

/// The spin budget of one rank's waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spin {
    budget: Duration,
}

impl Default for Spin {
    fn default() -> Spin {
        Spin { budget: SPIN }
    }
}

impl Spin {
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

    /// A sleep ended by a peer (not by a deadline) after `slept`: if that
    /// was soon, spinning about twice as long would have caught it. A sleep
    /// the rank chose without spinning (while a thread computes alongside)
    /// teaches nothing: it would raise the budget after every dynamic map.
    pub(super) fn slept(&mut self, slept: Duration) {
        if !crate::runtime::computing_alongside() {
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
}
