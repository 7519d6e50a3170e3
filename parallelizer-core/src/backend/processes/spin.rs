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

use std::time::Duration;

/// The shortest spin, and the budget a rank starts with.
pub(super) const SPIN: Duration = Duration::from_micros(50);

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
    /// How long the next wait spins before it sleeps.
    pub(super) fn budget(&self) -> Duration {
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
    /// was soon, spinning about twice as long would have caught it.
    pub(super) fn slept(&mut self, slept: Duration) {
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
        assert_eq!(spin.budget(), SPIN);
        spin.slept(Duration::from_micros(10));
        assert_eq!(spin.budget(), SPIN, "never below SPIN");
        spin.slept(Duration::from_micros(211));
        assert_eq!(spin.budget(), Duration::from_micros(422));
        spin.slept(Duration::from_micros(100));
        assert_eq!(
            spin.budget(),
            Duration::from_micros(422),
            "a shorter sleep keeps it"
        );
        spin.slept(Duration::from_micros(700));
        assert_eq!(spin.budget(), LONGEST, "capped");
        spin.slept(Duration::from_millis(50));
        assert_eq!(spin.budget(), LONGEST, "a long sleep teaches nothing");
        let mut hits = 0;
        while spin.budget() > SPIN {
            spin.hit();
            hits += 1;
        }
        assert!(
            (20..80).contains(&hits),
            "{hits} quick replies to shrink back"
        );
        assert_eq!(spin.budget(), SPIN);
    }
}
