//! Memory for plain data on transparent huge pages: the buffers of
//! [`plain_buffer`](crate::plain_buffer), laid wholly on huge pages, and
//! the fresh memory a call allocates for its result, and whether that goes
//! on huge pages.
//!
//! Faulting in 80 MB as 40 huge pages instead of 20,000 small ones halves
//! the cost of fresh memory, so large results are advised onto huge pages.
//! Not always, though: where the kernel hands free memory back
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

/// Fresh allocations of at least this many bytes are advised onto
/// transparent huge pages: one huge page, not numpy's 4 MiB, so the 4 MB
/// chunks of a million `f64` on two ranks are covered too (a generic gather
/// of them on `processes:2` took 0.6-1.8 ms instead of 1.8-2.9 ms).
const HUGE_FROM: usize = HUGE_PAGE;

/// A zeroed `Vec<T>` of `len` elements for plain data about to be
/// received: the memory comes fresh from the allocator (`calloc`, so large
/// buffers are untouched pages) and, from 2 MiB on, is advised onto
/// transparent huge pages (`madvise(MADV_HUGEPAGE)` on Linux, as numpy does
/// for its arrays): filling 80 MB then faults 40 huge pages instead of
/// 20,000 small ones, which at about 2 µs each cost more than moving the
/// data. Its capacity is rounded up (by less than 2 MiB, never touched) so
/// that the whole buffer can be on huge pages, not only the 2 MiB pages
/// that lie inside it: an 8 MB `broadcast_into` on `mpi:2` then took 0.6
/// times as long. Use it for the large buffers you pass to `broadcast_into`,
/// `scatter_into`, `gather_into` and `receive_into`, made once and reused.
/// (On a VM whose kernel hands free memory back to the hypervisor, a huge
/// page of memory freed a while ago faults in slower than small pages:
/// the buffer's first fill may then cost more; the calls' own results
/// avoid it, see the README's "Fresh memory and huge pages".)
///
/// ```
/// let buf: Vec<f64> = parallelizer_core::plain_buffer(1 << 20);
/// assert_eq!(buf.len(), 1 << 20);
/// assert!(buf.iter().all(|&x| x == 0.0));
/// ```
pub fn plain_buffer<T: bytemuck::Pod>(len: usize) -> Vec<T> {
    let mut v: Vec<T> = bytemuck::zeroed_vec(huge_capacity::<T>(len));
    v.truncate(len);
    on_huge_pages(v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
    v
}

/// [`plain_buffer`] for a call's result, fresh memory of one call rather
/// than a buffer made once: advised onto huge pages where that pays
/// ([`crate::pages`]), and allocated to the element: on whole huge pages as
/// [`plain_buffer`]'s, the generic rows of `mpirun -n 2 suite --mpi-par`
/// gained nothing above the noise (three jobs of each build, alternated).
pub(crate) fn fresh_buffer<T: bytemuck::Pod>(len: usize) -> Vec<T> {
    let v: Vec<T> = bytemuck::zeroed_vec(len);
    let bytes: &[u8] = bytemuck::cast_slice(&v);
    advise_fresh(bytes.as_ptr() as usize, bytes.len());
    v
}

/// Puts the `bytes` at `start`, a fresh allocation of [`huge_capacity`]
/// bytes, on huge pages. The advice, on the 2 MiB pages the buffer touches
/// (so that it splits a mapping only on 2 MiB boundaries: a huge page never
/// spans two mappings), serves the pages still to be faulted in; the pages
/// already there go on huge pages now (`MADV_COLLAPSE`, which keeps their
/// contents; khugepaged would, some seconds later, if at all):
/// - where glibc mapped the allocation on its own, on a 2 MiB boundary, the
///   first 4 KiB page, which glibc's header write faulted in before the
///   advice (an 8 MB buffer then had all its 4 huge pages, 3 without it);
/// - where the allocation is a chunk of glibc's heap (its mmap threshold
///   rises up to 32 MiB as a program frees large vectors), every 2 MiB page
///   it touches, its neighbours' bytes in the first and the last included:
///   `calloc` may have cleared the chunk, so its pages may be there, on
///   4 KiB pages. In the `p2p` binary, whose earlier rows free 16 MiB
///   vectors, both ranks' 16 MiB `plain_buffer`s were such chunks (at
///   0x1631c0 and 0x36430 in their 2 MiB pages). An 8 MB one made after
///   freeing a 20 MiB vector had 4 huge pages of the 5 it touches (the
///   fifth stayed small, likely past the heap's top) where it had 3, and its
///   `MPI_Bcast` on 2 ranks took 315-434 µs against 401-613 µs (three jobs
///   of each build, alternated).
fn on_huge_pages(start: usize, bytes: usize) {
    #[cfg(target_os = "linux")]
    if bytes >= HUGE_FROM {
        // Glibc's own mapping of the allocation is these 2 MiB pages.
        let (head, tail) = (
            start / HUGE_PAGE * HUGE_PAGE,
            (start + bytes).next_multiple_of(HUGE_PAGE),
        );
        advise_pages(head, tail - head, HUGE_PAGE, Advice::HugePages);
        let faulted = if start - head < PAGE {
            head + HUGE_PAGE
        } else {
            tail
        };
        // One 2 MiB page at a time: one outside the heap's mapping (past
        // its top) fails alone.
        for page in (head..faulted).step_by(HUGE_PAGE) {
            advise_pages(page, HUGE_PAGE, HUGE_PAGE, Advice::Collapse);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}

/// The capacity to allocate for `len` elements of `T` that are to be on
/// huge pages: rounded up so that the allocation, with the 16 bytes glibc
/// puts ahead of a chunk it maps on its own (from its mmap threshold,
/// 128 KiB to 32 MiB), is a mapping of whole 2 MiB pages, which Linux (from
/// 6.7) places on a 2 MiB boundary. Every byte of the buffer can then be on
/// a huge page, where an allocation of the exact size starts and ends inside
/// a 2 MiB page that is only partly its own, and those two stay on 4 KiB
/// pages: up to 4 MB of an 8 MB buffer. An 8 MB `MPI_Bcast` on 2 ranks
/// (raw rsmpi, one job, the kinds of buffer alternated) took 300-340 µs
/// on whole huge pages against 500-840 µs on a buffer of the exact size,
/// mpi4py's into numpy's (allocated to the byte too) 420-780 µs. Elsewhere
/// (a chunk from the allocator's heap, another allocator or kernel) the
/// extra capacity, under 2 MiB, costs at most its clearing by `calloc`.
fn huge_capacity<T>(len: usize) -> usize {
    /// What the capacity leaves for the allocator's header and rounding.
    const SLACK: usize = 64;
    let size = std::mem::size_of::<T>();
    match len.checked_mul(size) {
        Some(bytes) if cfg!(target_os = "linux") && size > 0 && bytes >= HUGE_FROM => {
            match bytes
                .checked_add(SLACK)
                .map(|b| b.next_multiple_of(HUGE_PAGE))
            {
                Some(whole) => (whole - SLACK) / size,
                None => len,
            }
        }
        _ => len,
    }
}

/// Advises the spare capacity of `vec` (fresh memory about to be written
/// for a call's result) onto transparent huge pages, as [`advise_huge`],
/// where that pays ([`crate::pages`]).
pub(crate) fn advise_spare<T>(vec: &mut Vec<T>) {
    let spare = vec.spare_capacity_mut();
    advise_fresh(spare.as_ptr() as usize, std::mem::size_of_val(spare));
}

/// [`advise_huge`] for the `len` bytes at `start`, fresh memory of a call's
/// result, where that pays: only allocations large enough to be advised
/// count as fresh memory taken ([`crate::pages`]).
fn advise_fresh(start: usize, len: usize) {
    if len >= HUGE_FROM && fresh_on_huge_pages() {
        advise_huge(start, len);
    }
}

/// The size of a transparent huge page (x86-64, and aarch64 with 4 KiB
/// pages).
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// The size of a small page (x86-64, and aarch64's default).
#[cfg(target_os = "linux")]
const PAGE: usize = 4096;

/// Advises the whole 2 MiB pages inside the `len` bytes at `start` (memory
/// of one allocation of this process) onto transparent huge pages, if they
/// are enough to matter. Advice only: failures are ignored (the kernel may
/// not offer huge pages at all).
pub(crate) fn advise_huge(start: usize, len: usize) {
    #[cfg(target_os = "linux")]
    if len >= HUGE_FROM {
        advise_pages(start, len, HUGE_PAGE, Advice::HugePages);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len, HUGE_FROM);
}

/// Faults in the whole pages inside `bytes` (memory of this process)
/// before another process writes them with `process_vm_writev`
/// (`link/push.rs`): writes into pages that are not there yet made that
/// process fault them in itself, which on the test VM fell into states where
/// it moved 0.8 GB/s instead of 5 (`MADV_POPULATE_WRITE`; where the kernel
/// lacks it, before Linux 5.14, the writer faults them in as before).
pub(crate) fn populate(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    advise_pages(bytes.as_ptr() as usize, bytes.len(), PAGE, Advice::Populate);
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// What [`advise_pages`] asks of the kernel: only advice that never changes
/// the contents of a page or the mapping.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Advice {
    /// `MADV_HUGEPAGE`: serve future faults with huge pages.
    HugePages,
    /// `MADV_POPULATE_WRITE`: fault the pages in now, writable.
    Populate,
    /// `MADV_COLLAPSE` (Linux 6.1): put the pages, those already there
    /// copied, on huge pages now (glibc only: other C libraries' `libc`
    /// bindings lack the constant).
    Collapse,
}

/// `madvise` with `advice` on the whole `align`-sized pages inside the
/// `len` bytes at `start`: the pages of one allocation of this process
/// ([`Advice::Populate`] only those), with for the others at most the rest
/// of the 2 MiB pages its first and last bytes lie on, mapped or not.
/// Advice only: failures are ignored (on addresses not mapped, `madvise`
/// fails with `ENOMEM` and advises the mapped ones).
#[cfg(target_os = "linux")]
pub(crate) fn advise_pages(start: usize, len: usize, align: usize, advice: Advice) {
    let (lo, hi) = (start.next_multiple_of(align), (start + len) / align * align);
    if hi <= lo {
        return;
    }
    let advice = match advice {
        Advice::HugePages => libc::MADV_HUGEPAGE,
        Advice::Populate => libc::MADV_POPULATE_WRITE,
        #[cfg(target_env = "gnu")]
        Advice::Collapse => libc::MADV_COLLAPSE,
        #[cfg(not(target_env = "gnu"))]
        Advice::Collapse => return,
    };
    // SAFETY: `madvise` reads and writes no memory of ours; these advices
    // only change how pages are backed (huge pages, contents kept) or fault
    // in the allocation's own pages (as a write would), never the contents
    // of a page or which addresses are mapped, whoever's bytes lie on them.
    unsafe {
        libc::madvise(lo as *mut libc::c_void, hi - lo, advice);
    }
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

    #[test]
    fn large_buffers_are_allocated_in_whole_huge_pages() {
        // Small ones (and zero-sized elements) are allocated to the element.
        assert_eq!(huge_capacity::<f64>(1000), 1000);
        assert_eq!(huge_capacity::<()>(1 << 30), 1 << 30);
        assert_eq!(huge_capacity::<u8>(usize::MAX), usize::MAX);
        for (len, size) in [(1_000_000, 8), (262_144, 8), (3 << 20, 1), (1 << 21, 12)] {
            let cap = match size {
                1 => huge_capacity::<u8>(len),
                8 => huge_capacity::<f64>(len),
                _ => huge_capacity::<[u32; 3]>(len),
            };
            assert!(cap >= len, "{len} x {size} B: capacity {cap}");
            if cfg!(target_os = "linux") {
                // With glibc's header, the mapping is whole 2 MiB pages,
                // and less than one more than the elements need.
                let mapped = (cap * size + 64).next_multiple_of(4096);
                assert!(
                    mapped.is_multiple_of(HUGE_PAGE),
                    "{len} x {size} B: {mapped}"
                );
                assert!(mapped - len * size <= HUGE_PAGE + 64, "{len} x {size} B");
            }
        }
        let big: Vec<f64> = plain_buffer(1_000_000);
        assert_eq!(big.len(), 1_000_000);
        assert!(big.iter().all(|&x| x == 0.0));
        let fresh: Vec<u16> = fresh_buffer(3 << 20);
        assert_eq!(fresh.len(), 3 << 20);
    }

    #[test]
    fn buffers_from_the_heap_keep_their_neighbours_bytes() {
        // A freed vector of 20 MiB raises glibc's mmap threshold, so the
        // next buffers come from its heap, beside other allocations whose
        // 2 MiB pages are collapsed with theirs.
        let big = vec![1u8; 20 << 20];
        drop(std::hint::black_box(big));
        let before: Vec<u64> = (0..4096).collect();
        let buf: Vec<f64> = plain_buffer(1_000_000);
        let after: Vec<u64> = (0..4096).map(|i| i * 3).collect();
        assert_eq!(buf.len(), 1_000_000);
        assert!(buf.iter().all(|&x| x == 0.0));
        assert!(before.iter().enumerate().all(|(i, &x)| x == i as u64));
        assert!(after.iter().enumerate().all(|(i, &x)| x == 3 * i as u64));
    }
}
