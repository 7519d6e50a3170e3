//! Which CPU a rank's thread runs on, and moving it off a CPU another rank
//! of the pool runs on.
//!
//! The scheduler tends to wake a sleeping thread on the CPU of the thread
//! that woke it, and moves one of two busy threads apart only at its next
//! balancing, milliseconds later: a worker woken by a region's start can
//! share main's CPU for a whole short region while another CPU idles. A
//! rank that finds itself there moves to another CPU of its affinity mask,
//! then gets its mask back, so the user's threads keep every CPU they had.
//! Waking a thread on an idle CPU of a VM costs tens of microseconds more
//! than on the waker's, so a rank moves only once the work shows it
//! worthwhile: a pool-style map's worker that computed a chunk on main's
//! CPU (`api/map/shared.rs`), or two ranks of the processes backend waiting
//! on one CPU (`backend/processes/cpu.rs`).

use std::time::{Duration, Instant};

/// A rank moves off a shared CPU at most once in this long: a machine
/// busier than the pool should not make its ranks chase each other. (A
/// worker woken by a region's start lands on main's CPU again, so a region
/// that exchanges messages wants one move; 20 ms let short regions, a
/// millisecond apart, run their ping-pongs at 3.5-5.5 µs one way on one CPU
/// where a move gave 1.2-1.8 µs.)
pub(crate) const MOVE_EVERY: Duration = Duration::from_millis(1);

/// When a rank's thread last moved off a shared CPU: its moves at most one
/// per [`MOVE_EVERY`].
#[derive(Debug, Default)]
pub(crate) struct Moves {
    moved_at: Option<Instant>,
}

impl Moves {
    /// Moves the calling thread (which runs on `cpu`) to another CPU of its
    /// affinity mask, at most once per [`MOVE_EVERY`]; whether it moved.
    pub(crate) fn move_off(&mut self, cpu: usize) -> bool {
        let now = Instant::now();
        if !self.may_move(now) {
            return false;
        }
        self.moved_at = Some(now);
        move_off(cpu)
    }

    /// Whether [`MOVE_EVERY`] has passed at `now` since the last move.
    fn may_move(&self, now: Instant) -> bool {
        self.moved_at
            .is_none_or(|at| now.saturating_duration_since(at) >= MOVE_EVERY)
    }
}

/// Moves the calling thread off `cpu` to another CPU of its affinity mask
/// if it runs there; whether it moved.
pub(crate) fn leave(cpu: usize) -> bool {
    current() == Some(cpu) && move_off(cpu)
}

/// The CPU the calling thread runs on (glibc reads it from the thread's
/// `rseq` area: no system call); `None` where it is not known.
pub(crate) fn current() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_getcpu` takes no arguments and touches no memory
        // of ours; it returns -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Moves the calling thread off `cpu` to another CPU of its affinity mask
/// and gives it its mask back; whether it moved.
#[cfg(target_os = "linux")]
fn move_off(cpu: usize) -> bool {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let Ok(mask) = sched_getaffinity(None) else {
        return false;
    };
    if !mask.is_set(cpu) || mask.count() < 2 {
        return false;
    }
    let mut elsewhere: CpuSet = mask;
    elsewhere.unset(cpu);
    // Leaving `cpu` out of the mask migrates the thread at once; the whole
    // mask back leaves it where it now runs.
    let moved = sched_setaffinity(None, &elsewhere).is_ok();
    let _ = sched_setaffinity(None, &mask);
    moved
}

#[cfg(not(target_os = "linux"))]
fn move_off(_cpu: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use rustix::thread::sched_getaffinity;

    #[test]
    fn a_thread_leaves_the_cpu_it_runs_on_keeps_its_mask_and_waits_to_move_again() {
        let mask = sched_getaffinity(None).unwrap();
        let here = current().expect("Linux knows the CPU");
        if mask.count() < 2 {
            assert!(!Moves::default().move_off(here), "nowhere to move to");
            return;
        }
        // The scheduler may move the thread between two reads of its CPU
        // (or back after the move); a try counts only if it saw the move.
        for _ in 0..5 {
            let mut moves = Moves::default();
            let cpu = current().unwrap();
            if !moves.move_off(cpu) || current() == Some(cpu) {
                continue;
            }
            assert_eq!(sched_getaffinity(None).unwrap(), mask, "its mask is back");
            let at = moves.moved_at.expect("the move was recorded");
            assert!(
                !moves.may_move(at + MOVE_EVERY / 2),
                "no second move so soon"
            );
            assert!(moves.may_move(at + MOVE_EVERY));
            return;
        }
        panic!("the thread never moved off its CPU");
    }

    #[test]
    fn a_thread_leaves_only_the_cpu_it_runs_on() {
        let mask = sched_getaffinity(None).unwrap();
        if mask.count() < 2 {
            return;
        }
        // As above, a try counts only if the scheduler left the thread
        // where it was: then leaving another CPU does nothing.
        for _ in 0..5 {
            let cpu = current().unwrap();
            let other = (0..1024).find(|&c| mask.is_set(c) && c != cpu).unwrap();
            if leave(other) || current() != Some(cpu) {
                continue;
            }
            if leave(cpu) && current() != Some(cpu) {
                assert_eq!(sched_getaffinity(None).unwrap(), mask, "its mask is back");
                return;
            }
        }
        panic!("the thread never left its CPU");
    }
}
