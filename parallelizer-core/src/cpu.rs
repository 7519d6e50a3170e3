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
//! CPU ([`OffMain`]: `api/map/shared.rs`, `api/map_reduce.rs`), or two
//! ranks of the processes backend waiting on one CPU
//! (`backend/processes/cpu.rs`).

use std::time::{Duration, Instant};

use crate::runtime::cores;

/// A worker that has computed this long on main's CPU moves off it: after
/// an idle stretch the scheduler woke the worker there for several maps in
/// a row (a fine map on `threads:2` then took 8-9 ms instead of 4-5), while
/// a move costs about the wake-up of an idle CPU, tens of microseconds, too
/// much for a map that short.
const MOVE_AFTER: Duration = Duration::from_micros(200);

/// The CPU main computes a pool-style map on, for its workers to watch
/// ([`OffMain`]); `None` where ranks share cores anyway (`nprocs` above
/// the cores) or the CPU is not known.
pub(crate) fn main_cpu(nprocs: usize) -> Option<usize> {
    (nprocs <= cores()).then(current).flatten()
}

/// A worker of a pool-style map on threads, computing chunk after chunk:
/// if it still runs on main's CPU once it has computed [`MOVE_AFTER`], it
/// moves off it (once).
#[derive(Debug)]
pub(crate) struct OffMain {
    main_cpu: Option<usize>,
    since: Instant,
}

impl OffMain {
    /// Watches the calling thread, a worker (`on_main` false) of a map whose
    /// main computes on `main_cpu` ([`main_cpu`]); main itself never moves.
    pub(crate) fn new(main_cpu: Option<usize>, on_main: bool) -> OffMain {
        OffMain {
            main_cpu: main_cpu.filter(|_| !on_main),
            since: Instant::now(),
        }
    }

    /// Between two chunks: moves off main's CPU if it is time.
    pub(crate) fn check(&mut self) {
        if let Some(cpu) = self.main_cpu {
            if self.since.elapsed() >= MOVE_AFTER {
                self.main_cpu = None;
                leave(cpu);
            }
        }
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

/// Moves the calling thread (which runs on `cpu`) to another CPU of its
/// affinity mask and gives it its mask back; whether it moved.
#[cfg(target_os = "linux")]
pub(crate) fn move_off(cpu: usize) -> bool {
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
pub(crate) fn move_off(_cpu: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use rustix::thread::sched_getaffinity;

    #[test]
    fn a_thread_leaves_only_the_cpu_it_runs_on() {
        let mask = sched_getaffinity(None).unwrap();
        if mask.count() < 2 {
            return;
        }
        // The scheduler may move the thread between two reads of its CPU
        // (or back after the move): a try counts only if it saw the thread
        // stay, then leaving another CPU did nothing and leaving its own
        // moved it.
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

    #[test]
    fn a_worker_leaves_main_s_cpu_once_it_has_computed_there_and_main_never_does() {
        let mask = sched_getaffinity(None).unwrap();
        let cpu = current().unwrap();
        // Main, and a worker that has not computed long yet: no move.
        let mut main = OffMain::new(Some(cpu), true);
        main.since -= MOVE_AFTER;
        main.check();
        assert!(main.main_cpu.is_none(), "main never watches");
        let mut fresh = OffMain::new(Some(cpu), false);
        fresh.check();
        assert!(fresh.main_cpu.is_some(), "still watching");
        if mask.count() < 2 {
            return;
        }
        for _ in 0..5 {
            let cpu = current().unwrap();
            let mut worker = OffMain::new(Some(cpu), false);
            worker.since -= MOVE_AFTER;
            worker.check();
            assert!(worker.main_cpu.is_none(), "one move at most");
            if current() != Some(cpu) {
                assert_eq!(sched_getaffinity(None).unwrap(), mask, "its mask is back");
                return;
            }
        }
        panic!("the worker never left main's CPU");
    }
}
