//! Whether fresh memory a call allocates for its result goes on
//! transparent huge pages.
//!
//! Faulting in 80 MB as 40 huge pages instead of 20,000 small ones halves
//! the cost of fresh memory, so large results are advised onto huge pages
//! (`plain.rs`). Not always, though: where the kernel hands free memory back
//! to the hypervisor (a virtio balloon with free page reporting, as
//! Firecracker's and many cloud VMs'), it reports free blocks of huge-page
//! size, and a huge page then comes from memory the host has let go of.
//! Measured on such a VM (320 MB written into fresh memory, five or six
//! times each): right after the same amount was freed, huge pages took
//! 96-111 ms and small ones 195-241 ms; once the freed memory had lain 3 s
//! or more (reported), huge pages took 378-985 ms while small ones still
//! took 206-246 ms (after 1 s, four tries of six were slow). A generic
//! `broadcast` of 1e7 `f64` on `threads:2` took 24-32 ms in a tight loop on
//! huge pages (49-64 ms on small ones), but up to 243 ms (median 176 ms)
//! with 1.5 s between two calls (small: 45-74 ms).
//!
//! So on such a machine a call advises its fresh memory onto huge pages only
//! when this process took fresh memory for a result less than [`RECENT`]
//! (250 ms) before: calls that follow each other closely, whose caller
//! frees one result before the next arrives, recycle memory the host still
//! backs. A call after a longer pause (work between two calls) stays on
//! small pages. Buffers made with [`plain_buffer`](crate::plain_buffer),
//! allocated once and reused, are always advised.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Fresh memory taken less than this long (in microseconds) after the last
/// (see the module docs) goes on huge pages where free memory is reported:
/// memory freed 0.2 s before was still backed in every try, 0.5 s before
/// in five of six, 1 s before in two of six, 3 s before in none. A window
/// of 1 s kept the pool-style coarse map on `processes:2` (0.8 s a call,
/// each result dropped before the next) on huge pages, 782-787 ms against
/// 814-898 ms on small ones (three alternated pairs), but a suite run with
/// it put the same map on `threads:4` at 955 ms against 750 ms in the run
/// before (huge pages' slow faults, the split of the report at dc21be7:
/// 1.23 s on `threads:2` there): a loop of calls this far apart is on
/// small pages, slower by a few percent and never by half.
const RECENT: u64 = 250_000;

/// Whether fresh memory of a call's result, about to be allocated now, is
/// to be advised onto transparent huge pages.
pub(crate) fn fresh_on_huge_pages() -> bool {
    if !free_memory_reported() {
        return true;
    }
    static LAST: Recency = Recency::new();
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = BASE.get_or_init(Instant::now);
    let now = u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX);
    LAST.recent(now)
}

/// When this process last took fresh memory for a result.
struct Recency {
    /// Microseconds since a base, plus one; 0: never.
    last: AtomicU64,
}

impl Recency {
    const fn new() -> Recency {
        Recency {
            last: AtomicU64::new(0),
        }
    }

    /// Fresh memory is taken at `now` (microseconds since the base):
    /// whether the last was taken less than [`RECENT`] before.
    fn recent(&self, now: u64) -> bool {
        let last = self.last.swap(now.saturating_add(1), Ordering::Relaxed);
        last != 0 && now.saturating_sub(last - 1) < RECENT
    }
}

/// Whether this machine's kernel reports free memory to a hypervisor
/// (found once).
fn free_memory_reported() -> bool {
    static REPORTED: OnceLock<bool> = OnceLock::new();
    *REPORTED.get_or_init(find_reporting_balloon)
}

/// The virtio device id of a memory balloon.
const BALLOON: &str = "0x0005";
/// The balloon's feature bit of free page reporting
/// (`VIRTIO_BALLOON_F_REPORTING`).
const REPORTING: usize = 5;

/// A virtio balloon bound to its driver that negotiated free page
/// reporting (sysfs lists a device's negotiated features as one `0`/`1`
/// per bit, bit 0 first).
#[cfg(target_os = "linux")]
fn find_reporting_balloon() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return false;
    };
    devices.flatten().any(|dev| {
        let dir = dev.path();
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        reports(
            &read("device"),
            &read("features"),
            dir.join("driver").exists(),
        )
    })
}

#[cfg(not(target_os = "linux"))]
fn find_reporting_balloon() -> bool {
    false
}

/// Whether a virtio device of id `device` with negotiated `features`
/// (bound to a driver or not) is a balloon that reports free memory.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn reports(device: &str, features: &str, bound: bool) -> bool {
    bound && device.trim() == BALLOON && features.trim().as_bytes().get(REPORTING) == Some(&b'1')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bound_balloon_with_the_reporting_bit_reports() {
        // This VM's balloon: bits 1, 2, 5 and 7.
        let features = "0110010100000000000000000000000010000000\n";
        assert!(reports("0x0005\n", features, true));
        assert!(!reports("0x0005\n", features, false), "no driver");
        assert!(!reports("0x0002\n", features, true), "a block device");
        assert!(!reports("0x0005", "01100001", true), "bit 5 off");
        assert!(!reports("0x0005", "0110", true), "too few bits");
        assert!(!reports("", "", true));
    }

    #[test]
    fn memory_is_recent_only_within_the_window_after_the_last() {
        let r = Recency::new();
        assert!(!r.recent(0), "nothing was taken before");
        assert!(r.recent(10), "10 us after");
        assert!(r.recent(10 + RECENT - 1));
        assert!(!r.recent(10 + 2 * RECENT), "a pause");
        assert!(r.recent(10 + 2 * RECENT + 5), "then close again");
    }
}
