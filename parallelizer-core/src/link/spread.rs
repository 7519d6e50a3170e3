//! One large copy out of a loan spread over the cores that would otherwise
//! idle through it.
//!
//! A lender waits while its borrowers copy: a broadcast on 2 ranks of a
//! 2-core machine copies 80 MB on one core while the other sleeps. Where the machine has more cores than ranks
//! copying at once, a copy of twice [`SPREAD_FROM`] bytes or more is cut
//! into parts (one per free core, each of at least `SPREAD_FROM`), and
//! scoped threads copy all but the first while the borrower copies that.
//! Parts are cut on 2 MiB boundaries of the destination, so two threads
//! never fault in the same huge page.
//!
//! Only copies into memory that is already there, a buffer the caller
//! passed (`broadcast_into`, or the vector of a `gather_into` on threads
//! that holds the parts already: `gather.rs`), are spread. Fresh memory (a
//! generic call's result) is not: on the test VMs, whose host backs guest
//! memory on demand and takes back what the guest frees (virtio-balloon free
//! page reporting, in 2 MiB blocks), two threads faulting in fresh pages at
//! once fell into states lasting seconds where the copy took 2-4 times as long
//! as on one thread (a generic 1e7 broadcast on `threads:2`: 80-100 ms
//! against 20-25 ms; on `processes:2` in four samples out of ten).
//!
//! Measured on 1e7 f64 (80 MB) on 2 ranks, medians of 12, builds with and
//! without alternated: `broadcast_into` on `threads:2` 10.8-16.7 ms against
//! 14.2-18.4 ms on one thread, on `processes:2` 11.3-13.3 ms against
//! 13.3-17.2 ms (one noisier batch: 14.7-16.9 against 14.7-20.2 ms).

use std::sync::{Mutex, PoisonError};

use crate::runtime::cores;

/// Copies smaller than this stay on one thread: a thread's start (tens of
/// microseconds, more when its core must first be woken) must be small
/// beside the copy (about 1 ms per 8 MB here).
const SPREAD_FROM: usize = 8 << 20;

/// The most threads one copy uses.
const MOST: usize = 8;

/// Parts begin on multiples of this in the destination (a huge page).
const ALIGN: usize = crate::pages::HUGE_PAGE;

/// How many threads a copy may use: `1 +` the cores left free while
/// `copiers` ranks of this machine copy at once (the caller's own thread
/// is among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spread {
    threads: usize,
}

impl Spread {
    /// One thread: the copy stays on the caller's.
    pub(crate) const ONE: Spread = Spread { threads: 1 };

    /// A copy made while `copiers` ranks (at least this one) copy at once.
    pub(crate) fn among(copiers: usize) -> Spread {
        Spread::of(cores(), copiers)
    }

    fn of(cores: usize, copiers: usize) -> Spread {
        let free = cores.saturating_sub(copiers.max(1));
        Spread {
            threads: (1 + free).min(MOST),
        }
    }

    /// Whether a copy of `len` bytes runs on more than one thread.
    pub(crate) fn spreads(self, len: usize) -> bool {
        parts(len, self.threads) > 1
    }

    /// Copies `src` into `dst`, which is as long, as [`copy`](Self::copy)
    /// spreads it.
    pub(crate) fn copy_from(self, dst: &mut [u8], src: &[u8]) {
        assert_eq!(dst.len(), src.len(), "a copy between slices of one length");
        let copied = self.copy(dst, |at, piece| {
            piece.copy_from_slice(&src[at..at + piece.len()]);
            Ok::<(), std::convert::Infallible>(())
        });
        match copied {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// Copies into `dst` by calling `part(offset, piece)` for disjoint
    /// pieces that cover it, concurrently where [`Spread`] allows and the
    /// copy is large enough; the first error is returned, after every part
    /// ended.
    pub(crate) fn copy<E: Send>(
        self,
        dst: &mut [u8],
        part: impl Fn(usize, &mut [u8]) -> Result<(), E> + Sync,
    ) -> Result<(), E> {
        let cuts = cuts(dst.as_ptr() as usize, dst.len(), self.threads);
        if cuts.len() <= 2 {
            return part(0, dst);
        }
        // Each piece in a slot of its own, taken by whichever thread copies
        // it: the helper, or this thread if the helper could not start.
        let mut slots = Vec::with_capacity(cuts.len() - 1);
        let mut rest = dst;
        for w in cuts.windows(2) {
            let (piece, tail) = rest.split_at_mut(w[1] - w[0]);
            slots.push((w[0], Mutex::new(Some(piece))));
            rest = tail;
        }
        let part = &part;
        std::thread::scope(|s| {
            let ((at, first), others) = slots.split_first().expect("at least two pieces");
            let mut helpers = Vec::new();
            let mut here = Vec::new();
            for (at, slot) in others {
                let started =
                    std::thread::Builder::new().spawn_scoped(s, move || part(*at, take(slot)));
                match started {
                    Ok(h) => helpers.push(h),
                    // The system is out of threads: copied here instead.
                    Err(_) => here.push((*at, slot)),
                }
            }
            let mut result = part(*at, take(first));
            for (at, slot) in here {
                result = result.and(part(at, take(slot)));
            }
            helpers.into_iter().fold(result, |result, h| {
                // A helper that panicked: its panic is the borrower's.
                let theirs = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                result.and(theirs)
            })
        })
    }
}

/// The piece in `slot`, which only one thread takes.
fn take<'a>(slot: &Mutex<Option<&'a mut [u8]>>) -> &'a mut [u8] {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .expect("each piece is taken once")
}

/// Into how many parts a copy of `len` bytes on at most `threads` threads
/// is cut: none under [`SPREAD_FROM`] bytes.
fn parts(len: usize, threads: usize) -> usize {
    threads.min(len / SPREAD_FROM).max(1)
}

/// The offsets that cut `len` bytes at address `addr` into at most
/// `threads` parts of about [`SPREAD_FROM`] bytes or more each (the last
/// may be up to [`ALIGN`] shorter), on `ALIGN` boundaries of the address:
/// `[0, .., len]`.
fn cuts(addr: usize, len: usize, threads: usize) -> Vec<usize> {
    let parts = parts(len, threads);
    let mut cuts = vec![0];
    for i in 1..parts {
        let even = addr + len / parts * i;
        let cut = even.next_multiple_of(ALIGN) - addr;
        if cut > *cuts.last().expect("starts with 0") && cut < len {
            cuts.push(cut);
        }
    }
    cuts.push(len);
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_cores_make_helpers_and_busy_ones_do_not() {
        assert_eq!(Spread::of(2, 1).threads, 2);
        assert_eq!(Spread::of(2, 2).threads, 1);
        assert_eq!(Spread::of(2, 3).threads, 1);
        assert_eq!(Spread::of(1, 0).threads, 1);
        assert_eq!(Spread::of(64, 1).threads, MOST);
    }

    #[test]
    fn cuts_fall_on_huge_pages_and_parts_are_never_small() {
        let mb = 1 << 20;
        assert_eq!(cuts(0, 80 * mb, 2), [0, 40 * mb, 80 * mb]);
        // Unaligned start: the cut moves up to the next 2 MiB of the address.
        assert_eq!(cuts(mb, 80 * mb, 2), [0, 41 * mb, 80 * mb]);
        assert_eq!(cuts(0, 80 * mb, 3), [0, 28 * mb, 54 * mb, 80 * mb]);
        assert_eq!(cuts(0, 12 * mb, 2), [0, 12 * mb], "two parts under 8 MiB");
        assert_eq!(cuts(0, 7 * mb, 8), [0, 7 * mb]);
        assert_eq!(cuts(0, 0, 2), [0, 0]);
    }

    #[test]
    fn every_byte_is_copied_once_and_the_first_error_wins() {
        let src: Vec<u8> = (0..(20usize << 20)).map(|i| i as u8).collect();
        let mut dst = vec![0u8; src.len()];
        let calls = std::sync::atomic::AtomicUsize::new(0);
        Spread::of(4, 1)
            .copy(&mut dst, |at, piece| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                piece.copy_from_slice(&src[at..at + piece.len()]);
                Ok::<(), String>(())
            })
            .unwrap();
        assert!(dst == src);
        assert_eq!(calls.into_inner(), 2, "20 MiB: two parts of 8 MiB or more");
        let err = Spread::of(4, 1).copy(&mut dst, |at, _| Err(at));
        assert_eq!(err, Err(0));
    }
}
