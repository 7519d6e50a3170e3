//! Main's items of primitive numbers in a pool-style map across processes.
//!
//! The messages of the chunks cut from them share them: a worker's chunk
//! goes onto the wire from main's vector, with no copy into a vector of its
//! own first. An item-wise map whose results are numbers of the items'
//! size and alignment also writes its results over them (`in_place`):
//! chunk k's results go where chunk k's items were, which have left by
//! then (sent, or copied out for main's own share), and the map's result is
//! main's vector itself, so no fresh memory is faulted in for it.
//!
//! Why: once a program drops a map's result, glibc may hand the top of its
//! heap back to the kernel, and the next map's result was then faulted in
//! page by page on main, on the map's critical path (the fine map, 1e6 f64,
//! on `processes:2`: about 690 page faults and 5.8-8.2 ms a call against
//! 4.5-4.8 ms without them, after the suite's baselines had left glibc in
//! that state).
//!
//! A part is only ever read through [`Parts::part`], never the whole
//! vector, so reading one part while another is written is sound.

use std::any::{Any, TypeId};
use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::msg::{Data, Msg, Parts};
use crate::plain::{PlainOps, cast, vec_ops};

/// Calls `$m!` with the primitive number types that travel as raw bytes.
macro_rules! numbers {
    ($m:ident) => {
        $m!(f64 f32 u64 i64 u32 i32 u16 i16 u8 i8 u128 i128 usize isize)
    };
}
pub(super) use numbers;

/// Main's items of primitive numbers, shared by the messages of the
/// chunks cut from them.
#[derive(Clone)]
pub(super) struct SharedItems {
    bytes: Arc<dyn Items>,
    ops: &'static dyn PlainOps,
}

/// A vector of numbers, whose elements are reached through a pointer taken
/// once ([`Numbers::base`]) rather than through the vector, so that parts
/// can be read and written at once; the vector is taken back whole once
/// nothing shares it.
struct Numbers<P> {
    vec: Vec<P>,
    base: *mut u8,
}

// SAFETY: `Numbers` owns its vector (of `Send` numbers); `base` points
// into that vector's allocation, which moves with it.
unsafe impl<P: Send> Send for Numbers<P> {}
// SAFETY: `&Numbers` only reads parts through `base` (`Parts::part`); the
// writes over parts go through `SharedItems::base`, made by `in_place`
// only where no part is read at the same time (the module docs).
unsafe impl<P: Sync> Sync for Numbers<P> {}

impl<P: bytemuck::Pod> Numbers<P> {
    fn new(mut vec: Vec<P>) -> Numbers<P> {
        // Not a reference to the elements (`Vec::as_mut_ptr`'s guarantee),
        // so the pointer stays valid beside later uses of the vector.
        let base = vec.as_mut_ptr().cast::<u8>();
        Numbers { vec, base }
    }
}

/// [`Numbers`] of any type: parts to send, a pointer to write through, a
/// vector to take back.
trait Items: Parts {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn base(&self) -> *mut u8;
    /// The vector's allocation (pointer, length and capacity in bytes),
    /// given up by the `Numbers`, which are left empty.
    fn take_allocation(&mut self) -> (*mut u8, usize, usize);
}

impl<P: bytemuck::Pod + Send + Sync> Parts for Numbers<P> {
    fn len(&self) -> usize {
        std::mem::size_of_val(self.vec.as_slice())
    }

    fn part(&self, range: Range<usize>) -> &[u8] {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "a part {range:?} of {} bytes",
            self.len()
        );
        // SAFETY: `range` lies within the vector's elements (asserted),
        // initialized numbers, behind `base` for as long as `self` lives;
        // nothing writes them while the part is read (`in_place` writes a
        // chunk's results only after its items were read for the last time).
        unsafe { std::slice::from_raw_parts(self.base.add(range.start), range.len()) }
    }
}

impl<P: bytemuck::Pod + Send + Sync> Items for Numbers<P> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn base(&self) -> *mut u8 {
        self.base
    }

    fn take_allocation(&mut self) -> (*mut u8, usize, usize) {
        let size = std::mem::size_of::<P>();
        let vec = std::mem::ManuallyDrop::new(std::mem::take(&mut self.vec));
        self.base = self.vec.as_mut_ptr().cast::<u8>();
        (
            vec.as_ptr().cast_mut().cast::<u8>(),
            vec.len() * size,
            vec.capacity() * size,
        )
    }
}

impl SharedItems {
    /// `items` shared, if they are primitive numbers; if not, `items`.
    pub(super) fn new<T: Data>(items: Vec<T>) -> std::result::Result<SharedItems, Vec<T>> {
        macro_rules! as_pod {
            ($($p:ty)*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$p>() {
                    let (Ok(v), Some(ops)) = (cast::<Vec<T>, Vec<$p>>(items), vec_ops::<Vec<$p>>())
                    else {
                        unreachable!("the TypeIds are equal, and every number is plain")
                    };
                    return Ok(SharedItems { bytes: Arc::new(Numbers::new(v)), ops });
                }
            )*};
        }
        numbers!(as_pod);
        Err(items)
    }

    /// Items `range` as a message of the form `wire::to_msg` gives a vector
    /// of them, sharing the bytes.
    pub(super) fn msg(&self, range: Range<usize>) -> Msg {
        let ty = self.ops.pod_type();
        let bytes = ty.bytes(range.start)..ty.bytes(range.end);
        let parts: Arc<dyn Parts> = self.bytes.clone();
        Msg::plain_slice(parts, bytes, self.ops)
    }

    /// The first `len` items: the vector itself, cut there, once no
    /// message shares it any more; else a copy of them.
    pub(super) fn into_front<T: Data>(mut self, len: usize) -> Result<Vec<T>> {
        let own = Arc::get_mut(&mut self.bytes)
            .and_then(|items| items.as_any_mut().downcast_mut::<Numbers<T>>());
        if let Some(numbers) = own {
            let mut items = std::mem::take(&mut numbers.vec);
            items.truncate(len);
            return Ok(items);
        }
        let ty = self.ops.pod_type();
        self.copy_as(0..ty.bytes(len))
    }

    /// A copy of `bytes` of the items as a vector of `X`, a plain type.
    fn copy_as<X: 'static>(&self, bytes: Range<usize>) -> Result<Vec<X>> {
        let ops = vec_ops::<Vec<X>>()
            .ok_or_else(|| Error::Protocol("shared numbers copied into no plain type".into()))?;
        let copy = ops.vec_from_bytes(self.bytes.part(bytes));
        Ok(*copy
            .downcast::<Vec<X>>()
            .map_err(|_| Error::Protocol("the plain ops of another type".into()))?)
    }

    /// Where results of type `R` can be written over the items, one per
    /// item at its index: `R` is plain, of the items' size and alignment
    /// (so a vector of the items' allocation is a valid `Vec<R>`).
    pub(super) fn results_fit<R: 'static>(&self) -> Option<*mut R> {
        let r = vec_ops::<Vec<R>>()?;
        let (size, align) = (std::mem::size_of::<R>(), std::mem::align_of::<R>());
        let fits = r.pod_type().size == size
            && self.ops.pod_type().size == size
            && self.ops.align() == align;
        fits.then(|| self.bytes.base().cast::<R>())
    }

    /// The first `len` results written over the items
    /// ([`results_fit`](Self::results_fit)): the items' vector itself once
    /// nothing shares it any more, else a copy.
    ///
    /// # Safety
    ///
    /// `results_fit::<R>()` is `Some`, and the first `len` elements were
    /// written with results (or are items: any bytes are a valid number).
    pub(super) unsafe fn into_results<R: Data>(mut self, len: usize) -> Result<Vec<R>> {
        let size = std::mem::size_of::<R>();
        if len * size > self.bytes.len() {
            return Err(Error::Protocol(format!(
                "{len} results over {} items",
                self.bytes.len() / size.max(1)
            )));
        }
        if let Some(items) = Arc::get_mut(&mut self.bytes) {
            let (ptr, _, cap) = items.take_allocation();
            // SAFETY: the allocation of a `Vec<P>` with room for `cap`
            // bytes, whose first `len * size` are initialized (checked
            // above); `R` has `P`'s size and alignment (the caller's
            // contract), so its layout is that of a `Vec<R>` of `cap / size`
            // elements, and the first `len` are valid `R`s, plain numbers.
            return Ok(unsafe { Vec::from_raw_parts(ptr.cast::<R>(), len, cap / size) });
        }
        self.copy_as(0..len * size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Encoding;

    #[test]
    fn shared_numbers_travel_as_a_vector_of_them_would() {
        let shared = SharedItems::new((0..10u32).collect()).unwrap_or_else(|_| panic!("u32"));
        let m = shared.msg(3..6);
        assert_eq!(m.encoding(), Encoding::Pod);
        assert_eq!(m.type_name(), Msg::pod(vec![0u32]).type_name());
        let wire =
            Msg::from_bytes(Encoding::Pod, m.to_bytes().unwrap()).sent_as("alloc::vec::Vec<u32>");
        assert_eq!(wire.into_pod::<u32>().unwrap(), [3, 4, 5]);
        assert_eq!(shared.msg(8..10).into_pod::<u32>().unwrap(), [8, 9]);
        assert!(shared.msg(0..2).into_pod::<u64>().is_err());
        assert!(SharedItems::new(vec![(1u8, 2u8)]).is_err());
    }

    #[test]
    fn the_front_of_shared_numbers_is_taken_back_or_copied_while_shared() {
        let items: Vec<u32> = (0..10).collect();
        let at = items.as_ptr();
        let shared = SharedItems::new(items).unwrap_or_else(|_| panic!("u32"));
        let held = shared.msg(5..10);
        let copy = shared.clone().into_front::<u32>(3).unwrap();
        assert_eq!(copy, [0, 1, 2]);
        assert_ne!(copy.as_ptr(), at, "a message still shares the items");
        drop(held);
        let front = shared.into_front::<u32>(3).unwrap();
        assert_eq!(front, [0, 1, 2]);
        assert_eq!(front.as_ptr(), at, "the vector itself, cut");
    }

    #[test]
    fn results_of_the_items_size_are_written_over_them_and_taken_back() {
        let items: Vec<f64> = (0..8).map(f64::from).collect();
        let at = items.as_ptr();
        let shared = SharedItems::new(items).unwrap_or_else(|_| panic!("f64"));
        assert!(shared.results_fit::<u32>().is_none(), "another size");
        assert!(shared.results_fit::<String>().is_none(), "not plain");
        let base = shared.results_fit::<u64>().expect("u64 fits over f64");
        let held = shared.msg(4..8);
        for i in 0..4 {
            // SAFETY: slots 0..4 of the 8, whose items nobody reads now.
            unsafe { base.add(i).write(10 * i as u64) };
        }
        assert_eq!(
            shared.msg(4..8).into_pod::<f64>().unwrap(),
            [4.0, 5.0, 6.0, 7.0]
        );
        // Still shared: a copy.
        // SAFETY: `u64` fits; the first 4 were written.
        let copy = unsafe { shared.clone().into_results::<u64>(4) }.unwrap();
        assert_eq!(copy, [0, 10, 20, 30]);
        drop(held);
        // SAFETY: `u64` fits; more results than items is refused before
        // anything is read or taken.
        assert!(unsafe { shared.clone().into_results::<u64>(9) }.is_err());
        // SAFETY: as above.
        let results = unsafe { shared.into_results::<u64>(4) }.unwrap();
        assert_eq!(results, [0, 10, 20, 30]);
        assert_eq!(
            results.as_ptr().cast::<f64>(),
            at,
            "the items' vector itself"
        );
    }
}
