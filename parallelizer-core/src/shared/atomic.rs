//! Atomic access to the elements of a shared array: the atomic types of
//! integer elements, and element-wise relaxed atomic copies for any plain
//! type.

use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32,
    AtomicU64, AtomicUsize, Ordering,
};

use bytemuck::Pod;

/// Element types with an atomic counterpart of the same size and alignment
/// (`u64` and `AtomicU64`, ...), for [`SharedArray::atomics`](crate::SharedArray::atomics).
///
/// # Safety
///
/// `Atomic` must have the size of `Self`, an alignment no larger than
/// `Self`'s size, and `atomic` must return a reference to the atomic at `p`.
pub unsafe trait AtomicElement: Pod {
    /// The atomic type.
    type Atomic: Sync + 'static;
    /// The atomic at `p`.
    ///
    /// # Safety
    ///
    /// `p` must be valid, aligned for `Self::Atomic`, and only accessed
    /// atomically for the lifetime `'a`.
    unsafe fn atomic<'a>(p: *mut Self) -> &'a Self::Atomic;
}

macro_rules! atomic_elements {
    ($($t:ty => $a:ty),* $(,)?) => {$(
        // SAFETY: the std atomic of a primitive integer has its size, and
        // an alignment equal to that size; `from_ptr` takes the caller's
        // promises (valid, aligned, only atomic access).
        unsafe impl AtomicElement for $t {
            type Atomic = $a;
            unsafe fn atomic<'a>(p: *mut Self) -> &'a $a {
                const { assert!(std::mem::size_of::<$t>() == std::mem::size_of::<$a>()) };
                const { assert!(std::mem::align_of::<$a>() <= std::mem::size_of::<$t>()) };
                // SAFETY: this fn's contract.
                unsafe { <$a>::from_ptr(p) }
            }
        }
    )*};
}

atomic_elements! {
    u8 => AtomicU8, i8 => AtomicI8, u16 => AtomicU16, i16 => AtomicI16,
    u32 => AtomicU32, i32 => AtomicI32, u64 => AtomicU64, i64 => AtomicI64,
    usize => AtomicUsize, isize => AtomicIsize,
}

/// The width of the atomic units an element is copied in: the largest of
/// 8, 4, 2, 1 that divides its size (and so, as elements sit at multiples
/// of their size from 128-aligned data, divides their address).
fn unit<T>() -> usize {
    let size = std::mem::size_of::<T>();
    [8, 4, 2]
        .into_iter()
        .find(|&u| size.is_multiple_of(u))
        .unwrap_or(1)
}

/// Loads the element at `p`, unit by unit, with relaxed atomic loads.
///
/// # Safety
///
/// `p` must be a valid element of a shared array's data, under an atomic
/// borrow (every rank accesses it only atomically).
pub(super) unsafe fn atomic_load<T: Pod>(p: *const T) -> T {
    let mut out = T::zeroed();
    let bytes = bytemuck::bytes_of_mut(&mut out);
    let src = p.cast::<u8>();
    let u = unit::<T>();
    for at in (0..bytes.len()).step_by(u) {
        // SAFETY: `src + at` is inside the element and aligned to `u` (see
        // `unit`); every rank accesses it only atomically (caller).
        let word = unsafe { load_unit(src.add(at), u) };
        bytes[at..at + u].copy_from_slice(&word.to_ne_bytes()[..u]);
    }
    out
}

/// Stores `value` at `p`, unit by unit, with relaxed atomic stores.
///
/// # Safety
///
/// As for [`atomic_load`].
pub(super) unsafe fn atomic_store<T: Pod>(p: *mut T, value: T) {
    let bytes = bytemuck::bytes_of(&value);
    let dst = p.cast::<u8>();
    let u = unit::<T>();
    for at in (0..bytes.len()).step_by(u) {
        let mut word = [0u8; 8];
        word[..u].copy_from_slice(&bytes[at..at + u]);
        // SAFETY: as in `atomic_load`.
        unsafe { store_unit(dst.add(at), u, u64::from_ne_bytes(word)) };
    }
}

/// One relaxed atomic load of `u` bytes at `p`, in the low bytes (native
/// order) of the result.
///
/// # Safety
///
/// `p` must be valid for `u` bytes, aligned to `u`, and accessed only
/// atomically meanwhile.
unsafe fn load_unit(p: *const u8, u: usize) -> u64 {
    let p = p.cast_mut();
    // SAFETY: in every arm, the caller's promises for the atomic of width `u`.
    let v: [u8; 8] = unsafe {
        match u {
            8 => AtomicU64::from_ptr(p.cast())
                .load(Ordering::Relaxed)
                .to_ne_bytes(),
            4 => widen(
                &AtomicU32::from_ptr(p.cast())
                    .load(Ordering::Relaxed)
                    .to_ne_bytes(),
            ),
            2 => widen(
                &AtomicU16::from_ptr(p.cast())
                    .load(Ordering::Relaxed)
                    .to_ne_bytes(),
            ),
            _ => widen(&[AtomicU8::from_ptr(p).load(Ordering::Relaxed)]),
        }
    };
    u64::from_ne_bytes(v)
}

/// One relaxed atomic store of the low `u` bytes (native order) of `v`.
///
/// # Safety
///
/// As for [`load_unit`].
unsafe fn store_unit(p: *mut u8, u: usize, v: u64) {
    let b = v.to_ne_bytes();
    // SAFETY: in every arm, the caller's promises for the atomic of width `u`.
    unsafe {
        match u {
            8 => AtomicU64::from_ptr(p.cast()).store(v, Ordering::Relaxed),
            4 => AtomicU32::from_ptr(p.cast()).store(
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                Ordering::Relaxed,
            ),
            2 => AtomicU16::from_ptr(p.cast())
                .store(u16::from_ne_bytes([b[0], b[1]]), Ordering::Relaxed),
            _ => AtomicU8::from_ptr(p).store(b[0], Ordering::Relaxed),
        }
    }
}

/// `bytes` in the low bytes of 8.
fn widen(bytes: &[u8]) -> [u8; 8] {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_divide_sizes() {
        assert_eq!(unit::<f64>(), 8);
        assert_eq!(unit::<[f32; 3]>(), 4);
        assert_eq!(unit::<[u8; 6]>(), 2);
        assert_eq!(unit::<[u8; 3]>(), 1);
        assert_eq!(unit::<[u64; 3]>(), 8);
    }

    #[test]
    fn elements_copy_unit_by_unit() {
        let mut words = [0u64; 4];
        let p = words.as_mut_ptr().cast::<[u16; 3]>();
        // SAFETY: the words outlive the calls, are only accessed here, and
        // element 1 of [u16; 3] sits at byte 6, aligned to its unit of 2.
        unsafe {
            atomic_store(p.add(1), [1, 2, 3]);
            assert_eq!(atomic_load(p.add(1)), [1, 2, 3]);
            assert_eq!(atomic_load(p), [0, 0, 0]);
        }
    }
}
