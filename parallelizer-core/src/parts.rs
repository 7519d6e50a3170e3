//! A vector handed to the ranks of one process in parts, without copying:
//! each rank moves the items of its own part out of the one buffer.
//! What a pool-style `map_reduce` on threads does instead of scattering
//! (which would copy every worker's chunk).

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The items of a `Vec<T>`, split into consecutive parts that can each be
/// taken once, by any thread ([`Parts::take`]). Items of parts never taken
/// are dropped with the `Parts`, and the buffer is freed then.
pub(crate) struct Parts<T> {
    ptr: *mut T,
    cap: usize,
    /// Where each part starts, and the end: `parts + 1` entries.
    bounds: Vec<usize>,
    taken: Vec<AtomicBool>,
}

// SAFETY: `Parts` owns its items as a `Vec<T>` does, so moving it to
// another thread is sound when `T: Send`.
unsafe impl<T: Send> Send for Parts<T> {}
// SAFETY: through `&Parts` a thread can only take a part that no other
// thread has taken (an atomic swap decides), and then moves its items out
// by value: each item is accessed by one thread only, which `T: Send`
// allows.
unsafe impl<T: Send> Sync for Parts<T> {}

impl<T> Parts<T> {
    /// `items` in consecutive parts of `counts` items (which must add up to
    /// at most `items.len()`; items past them are dropped).
    pub(crate) fn new(items: Vec<T>, counts: &[usize]) -> Parts<T> {
        let mut items = ManuallyDrop::new(items);
        let (ptr, len, cap) = (items.as_mut_ptr(), items.len(), items.capacity());
        let mut bounds = Vec::with_capacity(counts.len() + 1);
        let mut at = 0;
        for &c in counts {
            bounds.push(at.min(len));
            at += c;
        }
        bounds.push(at.min(len));
        let parts = Parts {
            ptr,
            cap,
            bounds,
            taken: counts.iter().map(|_| AtomicBool::new(false)).collect(),
        };
        // Items past the parts belong to nobody: dropped now.
        let end = *parts.bounds.last().expect("one bound at least");
        // SAFETY: `end..len` are initialized items of the buffer that no
        // part covers, dropped once here and never read again.
        unsafe { drop_range(ptr, end, len) };
        parts
    }

    /// Part `i`, to move its items out; `None` if it was taken already or
    /// there is no such part.
    pub(crate) fn take(self: &Arc<Self>, i: usize) -> Option<Part<T>> {
        let flag = self.taken.get(i)?;
        if flag.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Part {
            next: self.bounds[i],
            end: self.bounds[i + 1],
            parts: self.clone(),
        })
    }
}

impl<T> Parts<T> {
    /// The items back as a vector, if no part was ever taken (a region
    /// that never ran); otherwise `None`, and they are dropped.
    pub(crate) fn into_vec(self) -> Option<Vec<T>> {
        if self.taken.iter().any(|f| f.load(Ordering::Acquire)) {
            return None;
        }
        let mut this = ManuallyDrop::new(self);
        // Its own fields, taken out to be dropped as usual (what is left
        // holds no allocation).
        let bounds = std::mem::take(&mut this.bounds);
        drop(std::mem::take(&mut this.taken));
        let len = *bounds.last().expect("one bound at least");
        // SAFETY: no part was taken, so the items `0..len` (the parts,
        // back to back from 0) are all initialized and owned by `this`,
        // whose `Drop` will not run (ManuallyDrop); `ptr` and `cap` come
        // from the `Vec<T>` that `new` took, and the items past `len` were
        // dropped there, so this vector owns exactly what is left.
        Some(unsafe { Vec::from_raw_parts(this.ptr, len, this.cap) })
    }
}

/// Drops the items at `from..to` of the buffer at `ptr`.
///
/// # Safety
///
/// The items must be initialized, owned by the caller, and not be read or
/// dropped again.
unsafe fn drop_range<T>(ptr: *mut T, from: usize, to: usize) {
    if from < to {
        // SAFETY: the caller's contract: `from..to` are initialized items
        // of the buffer (so inside it) that nobody else accesses.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(ptr.add(from), to - from))
        };
    }
}

impl<T> Drop for Parts<T> {
    fn drop(&mut self) {
        for (i, flag) in self.taken.iter().enumerate() {
            if !flag.load(Ordering::Acquire) {
                // SAFETY: an untaken part's items are initialized and no
                // `Part` exists for them; this is the last reference (drop).
                unsafe { drop_range(self.ptr, self.bounds[i], self.bounds[i + 1]) };
            }
        }
        // SAFETY: `ptr` and `cap` come from a `Vec<T>` whose ownership
        // `new` took (ManuallyDrop); every item was moved out or dropped,
        // so a vector of length 0 frees the buffer and nothing else.
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.cap) });
    }
}

/// One part's items, moved out one by one (an iterator); the items not
/// taken are dropped with it.
pub(crate) struct Part<T> {
    parts: Arc<Parts<T>>,
    next: usize,
    end: usize,
}

impl<T> Part<T> {
    /// The number of items left.
    pub(crate) fn len(&self) -> usize {
        self.end - self.next
    }
}

impl<T> Iterator for Part<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: `next` is inside this part, which only this `Part` owns
        // (taken once), and the item has not been moved out yet (`next`
        // only grows): read it once, by value.
        let item = unsafe { std::ptr::read(self.parts.ptr.add(self.next)) };
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl<T> Drop for Part<T> {
    fn drop(&mut self) {
        // SAFETY: `next..end` are this part's items not moved out yet.
        unsafe { drop_range(self.parts.ptr, self.next, self.end) };
        self.next = self.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_is_taken_once_and_every_item_dropped_once() {
        let items: Vec<Arc<u32>> = (0..10).map(Arc::new).collect();
        let probe = items[9].clone();
        let parts = Arc::new(Parts::new(items, &[4, 3, 2]));
        let first: Vec<u32> = parts.take(0).unwrap().map(|x| *x).collect();
        assert_eq!(first, [0, 1, 2, 3]);
        assert!(parts.take(0).is_none() && parts.take(3).is_none());
        let mut second = parts.take(1).unwrap();
        assert_eq!(second.len(), 3);
        assert_eq!(*second.next().unwrap(), 4);
        drop(second); // 5 and 6 dropped unread
        // Part 2 never taken, item 9 past every part: dropped with `parts`.
        assert_eq!(Arc::strong_count(&probe), 1);
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let parts = parts.clone();
                std::thread::spawn(move || parts.take(i).map(|p| p.count()))
            })
            .collect();
        let counts: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(counts, [None, None, Some(2)]);
        drop(parts);
    }

    #[test]
    fn untaken_parts_come_back_whole_and_taken_ones_do_not() {
        let items: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let parts = Parts::new(items.clone(), &[3, 2, 1]);
        // Item 6 is past the parts: dropped by `new`, not given back.
        assert_eq!(parts.into_vec(), Some(items[..6].to_vec()));
        let parts = Arc::new(Parts::new(items, &[3, 4]));
        drop(parts.take(1));
        let parts = Arc::try_unwrap(parts).ok().unwrap();
        assert_eq!(parts.into_vec(), None);
    }
}
