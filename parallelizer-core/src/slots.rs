//! A vector filled by the ranks of one process in parts: each rank moves
//! the results of its own part into place, so nobody concatenates them
//! afterwards. The counterpart of [`crate::parts::Parts`] (which hands a
//! vector out in parts) for a pool-style map on threads, whose main spent
//! 1.4–2.1 ms alone concatenating 8 MB of results into fresh memory.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A part's state: nobody wrote it, a thread is moving its items in, they
/// are in place.
const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const FILLED: u8 = 2;

/// A vector of consecutive parts of fixed lengths, each filled once, by
/// any thread ([`Slots::fill`]); taken whole once every part is
/// ([`Slots::take_vec`]). Filled parts of a vector never taken are dropped
/// with the `Slots`.
pub(crate) struct Slots<T> {
    ptr: *mut T,
    cap: usize,
    /// Where each part starts, and the end: `parts + 1` entries.
    bounds: Vec<usize>,
    /// Each part's state ([`EMPTY`], [`WRITING`], [`FILLED`]): a part is
    /// claimed before its items are copied and counts as filled only after.
    state: Vec<AtomicU8>,
    /// Whether the vector was taken (its items and buffer are its own).
    taken: AtomicBool,
}

// SAFETY: `Slots` owns its items as a `Vec<T>` does, so moving it to
// another thread is sound when `T: Send`.
unsafe impl<T: Send> Send for Slots<T> {}
// SAFETY: through `&Slots` a thread can only write a part that no other
// thread has claimed (an atomic compare-exchange decides), moving its items
// in by value; they are read only once every part's state says `FILLED`
// (stored with `Release` after the copy, loaded with `Acquire`).
unsafe impl<T: Send> Sync for Slots<T> {}

impl<T> Slots<T> {
    /// Room for consecutive parts of `counts` items, none filled yet.
    pub(crate) fn new(counts: &[usize]) -> Slots<T> {
        let mut buf = Vec::<T>::with_capacity(counts.iter().sum());
        crate::pages::advise_spare(&mut buf);
        let mut buf = ManuallyDrop::new(buf);
        let mut bounds = Vec::with_capacity(counts.len() + 1);
        let mut at = 0;
        for &c in counts {
            bounds.push(at);
            at += c;
        }
        bounds.push(at);
        Slots {
            ptr: buf.as_mut_ptr(),
            cap: buf.capacity(),
            bounds,
            state: counts.iter().map(|_| AtomicU8::new(EMPTY)).collect(),
            taken: AtomicBool::new(false),
        }
    }

    /// Claims part `i` for one writer if there is such a part, nobody
    /// claimed it yet, and `fits` its length: its state, start and length.
    fn claim(
        &self,
        i: usize,
        fits: impl FnOnce(usize) -> bool,
    ) -> Option<(&AtomicU8, usize, usize)> {
        let (state, &start, &end) = (
            self.state.get(i)?,
            self.bounds.get(i)?,
            self.bounds.get(i + 1)?,
        );
        let claimed = fits(end - start)
            && state
                .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        claimed.then_some((state, start, end - start))
    }

    /// Moves `items` into part `i`. They come back if there is no such
    /// part, it has another length, or it is filled already.
    pub(crate) fn fill(&self, i: usize, mut items: Vec<T>) -> Result<(), Vec<T>> {
        let Some((state, start, _)) = self.claim(i, |len| items.len() == len) else {
            return Err(items);
        };
        // SAFETY: part `i` starts at `start` of the buffer and is as long as
        // `items` (`claim` checked it; `new` made room for every part); only
        // this call writes it (it claimed the part); the items are moved
        // (bitwise) into place and then forgotten by setting the vector's
        // length to 0, so each is owned once.
        unsafe {
            std::ptr::copy_nonoverlapping(items.as_ptr(), self.ptr.add(start), items.len());
            items.set_len(0);
        }
        state.store(FILLED, Ordering::Release);
        Ok(())
    }

    /// Fills part `i` with the items `write` pushes into the [`Filler`] it
    /// gets, straight into place (a map's results, with no vector of their
    /// own). `Err` with the number pushed if there is no such part, it is
    /// filled already, or `write` pushed fewer items than the part holds
    /// (pushes past its end are dropped); the items pushed are dropped
    /// then, and if `write` panics.
    pub(crate) fn fill_with(
        &self,
        i: usize,
        write: impl FnOnce(&mut Filler<'_, T>),
    ) -> Result<(), usize> {
        let Some((state, start, len)) = self.claim(i, |_| true) else {
            return Err(0);
        };
        // SAFETY: `start` is inside the buffer (`new` made room for every
        // part, and `start + len <= cap`).
        let at = unsafe { self.ptr.add(start) };
        let mut filler = Filler {
            at,
            len,
            written: 0,
            _slots: std::marker::PhantomData,
        };
        write(&mut filler);
        // The filler must still be this part's (`write` could have swapped
        // it with another part's) and full.
        if filler.at != at || filler.written != filler.len {
            // A part left claimed and unfilled: `take_vec` never returns,
            // and `Drop` leaves it alone; the filler drops what it holds.
            return Err(filler.written);
        }
        std::mem::forget(filler);
        state.store(FILLED, Ordering::Release);
        Ok(())
    }

    /// The vector, once every part is filled: the items and the buffer
    /// are its own from then on. `None` before, and after it was taken.
    /// Through `&self`, so that a thread that filled the last part may
    /// still hold a reference.
    pub(crate) fn take_vec(&self) -> Option<Vec<T>> {
        if !self
            .state
            .iter()
            .all(|s| s.load(Ordering::Acquire) == FILLED)
            || self.taken.swap(true, Ordering::AcqRel)
        {
            return None;
        }
        let len = *self.bounds.last().expect("one bound at least");
        // SAFETY: every part was filled (its copy is done and visible: the
        // `Release` store after it, the `Acquire` load above), and
        // the parts lie back to back from 0, so items `0..len` are
        // initialized; ownership of them and of the buffer (`ptr` and `cap`
        // from the `Vec<T>` that `new` made) passes to this vector once
        // (the swap above), and `Drop` leaves both alone after it.
        Some(unsafe { Vec::from_raw_parts(self.ptr, len, self.cap) })
    }
}

/// One part of a [`Slots`] being filled in place, item by item
/// ([`Slots::fill_with`]).
pub(crate) struct Filler<'a, T> {
    /// The part's first item.
    at: *mut T,
    len: usize,
    /// Items `0..written` of the part are initialized.
    written: usize,
    _slots: std::marker::PhantomData<&'a Slots<T>>,
}

impl<T> Filler<'_, T> {
    /// Puts `item` in the part's next place; past the part's end, drops it.
    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        if self.written < self.len {
            // SAFETY: place `written` lies inside the part (below `len`),
            // which only this filler writes (`fill_with` claimed it), and
            // holds no item yet (`written` only grows).
            unsafe { self.at.add(self.written).write(item) };
            self.written += 1;
        }
    }
}

impl<T> Drop for Filler<'_, T> {
    /// A part not filled to its end (or a `write` that panicked): the
    /// items pushed are dropped, as the part never counts as filled.
    fn drop(&mut self) {
        // SAFETY: items `0..written` of the part are initialized and owned
        // by this filler alone (the part is claimed and never marked
        // filled), dropped once here.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.at, self.written))
        };
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        if *self.taken.get_mut() {
            return;
        }
        for (i, state) in self.state.iter_mut().enumerate() {
            if *state.get_mut() == FILLED {
                let (start, end) = (self.bounds[i], self.bounds[i + 1]);
                // SAFETY: a filled part's items are initialized, owned by
                // the `Slots` and dropped once, here (the last reference).
                unsafe {
                    std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                        self.ptr.add(start),
                        end - start,
                    ));
                }
            }
        }
        // SAFETY: `ptr` and `cap` come from the `Vec<T>` that `new` made;
        // its items were dropped above, so a vector of length 0 frees the
        // buffer and nothing else.
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.cap) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn parts_filled_from_threads_make_the_vector_in_order() {
        let slots = Arc::new(Slots::<String>::new(&[3, 0, 2, 4]));
        let threads: Vec<_> = [(2, 3..5), (0, 0..3), (3, 5..9), (1, 3..3)]
            .into_iter()
            .map(|(i, range)| {
                let slots = slots.clone();
                std::thread::spawn(move || slots.fill(i, range.map(|x| x.to_string()).collect()))
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().is_ok());
        }
        let all = slots.take_vec().unwrap();
        assert_eq!(all, (0..9).map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(slots.take_vec().is_none(), "taken once");
        drop(slots);
    }

    #[test]
    fn a_vector_taken_while_parts_are_filled_holds_every_item() {
        // `take_vec` polled while threads fill: it may only succeed once
        // every part's items are in place, not once every part is claimed.
        for _ in 0..100 {
            let counts = [5000, 5000, 5000, 5000];
            let slots = Arc::new(Slots::<u64>::new(&counts));
            let threads: Vec<_> = (0..counts.len())
                .map(|i| {
                    let slots = slots.clone();
                    std::thread::spawn(move || {
                        let at = (i * 5000) as u64;
                        slots.fill(i, (at..at + 5000).collect()).is_ok()
                    })
                })
                .collect();
            let all = loop {
                if let Some(all) = slots.take_vec() {
                    break all;
                }
                std::hint::spin_loop();
            };
            assert_eq!(all, (0..20_000).collect::<Vec<u64>>());
            for t in threads {
                assert!(t.join().unwrap());
            }
        }
    }

    #[test]
    fn parts_filled_in_place_make_the_vector_and_short_or_panicking_fills_leak_nothing() {
        let probe = Arc::new(0u8);
        let slots = Arc::new(Slots::new(&[2, 3, 1]));
        assert!(
            slots
                .fill_with(1, |f| (0..4).for_each(|_| f.push(probe.clone())))
                .is_ok()
        );
        assert_eq!(Arc::strong_count(&probe), 4, "the fourth push was dropped");
        assert_eq!(slots.fill_with(1, |_| ()), Err(0), "filled already");
        assert_eq!(slots.fill_with(7, |_| ()), Err(0), "no such part");
        assert_eq!(slots.fill_with(0, |f| f.push(probe.clone())), Err(1));
        assert_eq!(
            Arc::strong_count(&probe),
            4,
            "the short part's item dropped"
        );
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            slots.fill_with(2, |f| {
                f.push(probe.clone());
                panic!("f panicked");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(
            Arc::strong_count(&probe),
            4,
            "the panicked part's item dropped"
        );
        assert!(slots.take_vec().is_none(), "parts 0 and 2 never filled");
        drop(slots);
        assert_eq!(
            Arc::strong_count(&probe),
            1,
            "part 1's items dropped with the slots"
        );

        let slots = Slots::new(&[3, 2]);
        assert!(
            slots
                .fill_with(1, |f| [3, 4].into_iter().for_each(|x| f.push(x)))
                .is_ok()
        );
        assert!(slots.fill(0, vec![0, 1, 2]).is_ok());
        assert_eq!(slots.take_vec(), Some(vec![0, 1, 2, 3, 4]));
    }

    #[test]
    fn a_wrong_length_or_a_second_fill_comes_back_and_nothing_leaks() {
        let probe = Arc::new(0u8);
        let slots = Slots::new(&[2, 2]);
        let two = || vec![probe.clone(), probe.clone()];
        assert_eq!(slots.fill(0, vec![probe.clone()]).unwrap_err().len(), 1);
        assert_eq!(slots.fill(5, two()).unwrap_err().len(), 2);
        assert!(slots.fill(0, two()).is_ok());
        assert_eq!(slots.fill(0, two()).unwrap_err().len(), 2);
        assert_eq!(Arc::strong_count(&probe), 3);
        // Part 1 never filled: no vector, and part 0's items are dropped.
        assert!(slots.take_vec().is_none());
        drop(slots);
        assert_eq!(Arc::strong_count(&probe), 1);
    }
}
