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
}
