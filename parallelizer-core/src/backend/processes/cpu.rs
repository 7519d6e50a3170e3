//! Where a waiting rank runs, and whether it may poll without yielding.
//!
//! Where every rank has a core, a wait starts with a short busy spin on the
//! rings (`endpoint`): a yield is a system call, which a reply may wait out.
//! That is only right while no peer shares the CPU: the scheduler wakes a
//! sleeping rank on the CPU of the rank that woke it, and an exchange of a
//! few hundred messages ends before it moves one of them. On a shared CPU
//! the spin keeps off the CPU the very peer it waits for (an 8 B ping-pong
//! right after a region started took 8.3–10.8 µs one way with the spin, 2–5
//! µs yielding, 1.1–1.5 µs on two CPUs). So each rank records in the rings
//! the CPU it waits on, and of two ranks found waiting on one CPU the
//! higher moves to another CPU of its affinity mask, then gets its mask
//! back, so the user's threads keep every CPU they had (`crate::cpu`).

use std::time::{Duration, Instant};

use crate::cpu::current;

use super::ring::Rings;

/// A rank moves off a shared CPU at most once in this long: a machine
/// busier than the pool should not make its ranks chase each other. (A
/// worker woken by a region's start lands on main's CPU again, so a region
/// that exchanges messages wants one move; 20 ms let short regions, a
/// millisecond apart, run their ping-pongs at 3.5-5.5 µs one way on one CPU
/// where a move gave 1.2-1.8 µs.)
const MOVE_EVERY: Duration = Duration::from_millis(1);

/// Whether this rank's waits may spin without yielding, and when it last
/// moved off a shared CPU.
#[derive(Debug, Default)]
pub(super) struct Placement {
    uncrowded: bool,
    moved_at: Option<Instant>,
}

impl Placement {
    /// Whether every rank of the pool has a core of its own.
    pub(super) fn is_uncrowded(&self) -> bool {
        self.uncrowded
    }

    /// Every rank of the pool has a core of its own (`port`).
    pub(super) fn set_uncrowded(&mut self, uncrowded: bool) {
        self.uncrowded = uncrowded;
    }

    /// Whether the wait rank `rank` is starting may begin with a busy spin:
    /// every rank has a core, and no other rank was last seen waiting on
    /// this rank's CPU, or this rank was the higher of the two and moved.
    pub(super) fn may_spin(&mut self, rings: &Rings, rank: usize) -> bool {
        if !self.uncrowded {
            return false;
        }
        let Some(cpu) = current() else {
            return false;
        };
        match rings.sharing(cpu) {
            None => true,
            Some(peer) if peer < rank => self.move_off(cpu),
            Some(_) => false,
        }
    }

    /// Moves the calling thread to another CPU of its affinity mask, at
    /// most once per [`MOVE_EVERY`]; whether it moved.
    fn move_off(&mut self, cpu: usize) -> bool {
        let now = Instant::now();
        if !self.may_move(now) {
            return false;
        }
        self.moved_at = Some(now);
        crate::cpu::move_off(cpu)
    }

    /// Whether [`MOVE_EVERY`] has passed at `now` since the last move.
    fn may_move(&self, now: Instant) -> bool {
        self.moved_at
            .is_none_or(|at| now.saturating_duration_since(at) >= MOVE_EVERY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::processes::ring::pair;
    use rustix::thread::sched_getaffinity;

    #[test]
    fn the_lowest_other_rank_waiting_on_a_cpu_is_found() {
        let (zero, one) = pair(3);
        assert_eq!(zero.sharing(5), None);
        assert_eq!(one.sharing(4), None);
        assert_eq!(one.sharing(5), Some(0));
        assert_eq!(zero.sharing(5), Some(1));
        // Rank 1 moved on: rank 0 waits alone on 5.
        assert_eq!(one.sharing(6), None);
        assert_eq!(zero.sharing(5), None);
    }

    #[test]
    fn only_the_higher_of_two_uncrowded_ranks_on_one_cpu_moves_and_keeps_its_mask() {
        let (zero, one) = pair(2);
        let mut crowded = Placement::default();
        assert!(!crowded.may_spin(&one, 1), "a crowded pool never spins");
        let Ok(mask) = sched_getaffinity(None) else {
            return;
        };
        if mask.count() < 2 {
            // Nowhere to move to: such a rank must not spin.
            let cpu = current().unwrap();
            zero.sharing(cpu);
            let mut placement = Placement::default();
            placement.set_uncrowded(true);
            assert!(!placement.may_spin(&one, 1));
            return;
        }
        // The scheduler may move the thread between two reads of its CPU
        // (or back after the move); a try counts only if it saw the move.
        for _ in 0..5 {
            let mut lower = Placement::default();
            lower.set_uncrowded(true);
            let mut higher = Placement::default();
            higher.set_uncrowded(true);
            let cpu = current().unwrap();
            one.sharing(cpu);
            if lower.may_spin(&zero, 0) {
                continue;
            }
            zero.sharing(cpu);
            if !higher.may_spin(&one, 1) || current() == Some(cpu) {
                continue;
            }
            assert_eq!(sched_getaffinity(None).unwrap(), mask, "its mask is back");
            let at = higher.moved_at.expect("the move was recorded");
            assert!(
                !higher.may_move(at + MOVE_EVERY / 2),
                "no second move so soon"
            );
            assert!(higher.may_move(at + MOVE_EVERY));
            return;
        }
        panic!("rank 1 never moved off the CPU it shared with rank 0");
    }
}
