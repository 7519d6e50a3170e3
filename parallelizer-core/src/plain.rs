//! Plain data: element types that move between ranks as their raw bytes,
//! with no codec.
//!
//! The primitive numbers (`f64`, `i32`, `u8`, ...) are plain data, and so
//! is any `bytemuck::Pod` type a program registers with
//! [`plain_data!`](crate::plain_data). The generic calls find out at run
//! time, by `TypeId` (the way the `castaway` crate specializes, here with
//! `std::any::Any` only), whether a `Vec<T>` they were given holds plain
//! data; if so they take the plain path by themselves: `send(Vec<f64>)`
//! sends the vector's bytes, and `broadcast`, `scatter` and `gather` of
//! such a vector use the backend's native collectives on its memory.
//!
//! Also here: the receive buffers of plain-data calls ([`PlainBuf`]); their
//! fresh memory comes from [`crate::pages`].

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::op::Op;
use crate::pages::{advise_spare, fresh_buffer};

/// The element type of a plain-data collective, as a backend with native
/// datatypes sees it (it picks the matching MPI datatype, or a contiguous
/// block of `size` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodType {
    /// `TypeId` of the element type.
    pub id: TypeId,
    /// Its type name, for messages.
    pub name: &'static str,
    /// The type name of a `Vec` of it, which messages of plain data carry
    /// (`Msg::sent_as`) so that a receiver of another type is told.
    pub vec_name: &'static str,
    /// `size_of` the element type, in bytes.
    pub size: usize,
}

impl PodType {
    /// The description of `T`.
    ///
    /// ```
    /// # use parallelizer_core::backend::PodType;
    /// assert_eq!(PodType::of::<f64>().size, 8);
    /// ```
    pub fn of<T: bytemuck::Pod>() -> PodType {
        PodType {
            id: TypeId::of::<T>(),
            name: type_name::<T>(),
            vec_name: type_name::<Vec<T>>(),
            size: std::mem::size_of::<T>(),
        }
    }

    /// The error for plain data of this type that arrived as `sent` (the
    /// type name of a `Vec` of other elements).
    pub(crate) fn mismatch(&self, sent: &str) -> Error {
        Error::Codec(format!(
            "type mismatch: expected plain data {} but the sender sent {sent}",
            self.vec_name
        ))
    }

    /// `elements` of this type, in bytes.
    pub fn bytes(&self, elements: usize) -> usize {
        elements * self.size
    }

    /// The number of whole elements in `bytes` bytes.
    pub fn elements(&self, bytes: usize) -> usize {
        bytes / self.size.max(1)
    }

    /// Whether `bytes` bytes are a whole number of elements (for a
    /// zero-sized type: none at all), as a receiver checks what arrived.
    ///
    /// ```
    /// # use parallelizer_core::backend::PodType;
    /// assert!(PodType::of::<f64>().whole(16));
    /// assert!(!PodType::of::<f64>().whole(12));
    /// assert!(!PodType::of::<()>().whole(1));
    /// ```
    pub fn whole(&self, bytes: usize) -> bool {
        self.bytes(self.elements(bytes)) == bytes
    }
}

/// A rank's buffer in a plain-data call, as the backend sees it: the raw
/// bytes of a `[T]` whose length is fixed (the caller's slice), or of a
/// `Vec<T>` that the call resizes to what arrives.
pub trait PlainBuf {
    /// The buffer's bytes as they are.
    fn bytes(&mut self) -> &mut [u8];

    /// Makes the buffer exactly `elements` elements long and returns its
    /// bytes (what they hold is unspecified; the call overwrites them). A
    /// buffer of fixed length that is another length returns
    /// [`Error::Length`]; the backend then still takes its part in the call
    /// (into a scratch buffer) before it returns that error.
    fn fit(&mut self, elements: usize) -> Result<&mut [u8]>;

    /// The bytes of a buffer whose length is fixed (the caller's slice),
    /// into which a backend may receive before it knows what arrives;
    /// `None` (the default) for a buffer that is fitted to what arrives.
    fn fixed(&mut self) -> Option<&mut [u8]> {
        None
    }

    /// Whether [`abandon`](PlainBuf::abandon) can give this buffer's memory up.
    /// A receive into a buffer that can asks the sending process to write
    /// part of a large copy into it itself; `false` (the default) keeps
    /// every other process's hands off the buffer.
    fn can_abandon(&self) -> bool {
        false
    }

    /// Gives this buffer's memory up for good (it is never freed, and the
    /// buffer is left empty): what a receive does when it ends early (an
    /// error elsewhere, a deadline) while the sending process may still be
    /// writing into it. Called only where [`can_abandon`](PlainBuf::can_abandon)
    /// says so.
    ///
    /// ```
    /// use parallelizer_core::backend::PlainBuf;
    /// let mut buf = vec![1.0f64; 4];
    /// assert!(buf.can_abandon());
    /// buf.abandon();
    /// assert!(buf.is_empty());
    /// ```
    fn abandon(&mut self) {}
}

/// The caller's slice as a [`PlainBuf`] of fixed length, for call `op` on
/// rank `rank` (named in the length error).
pub(crate) struct Fixed<'a> {
    pub bytes: &'a mut [u8],
    pub size: usize,
    pub op: Op,
    pub rank: usize,
}

impl PlainBuf for Fixed<'_> {
    fn bytes(&mut self) -> &mut [u8] {
        self.bytes
    }

    fn fit(&mut self, elements: usize) -> Result<&mut [u8]> {
        fixed_fits(self.op, self.rank, self.size, self.bytes.len(), elements)?;
        Ok(self.bytes)
    }

    fn fixed(&mut self) -> Option<&mut [u8]> {
        Some(self.bytes)
    }
}

/// That a buffer of fixed length, `bytes` bytes of `size`-byte elements,
/// holds `elements` of them; else the length error of call `op` on rank
/// `rank`.
pub(crate) fn fixed_fits(
    op: Op,
    rank: usize,
    size: usize,
    bytes: usize,
    elements: usize,
) -> Result<()> {
    let actual = bytes / size.max(1);
    if actual != elements {
        return Err(Error::Length {
            op,
            rank,
            expected: elements,
            actual,
        });
    }
    Ok(())
}

impl<T: bytemuck::Pod> PlainBuf for Vec<T> {
    fn bytes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self)
    }

    fn fit(&mut self, elements: usize) -> Result<&mut [u8]> {
        if self.capacity() < elements {
            // Old contents are not kept: a fresh (zeroed, untouched)
            // allocation instead of a reallocation that copies them.
            *self = fresh_buffer(elements);
        } else {
            self.resize(elements, T::zeroed());
        }
        Ok(bytemuck::cast_slice_mut(self))
    }

    fn can_abandon(&self) -> bool {
        true
    }

    fn abandon(&mut self) {
        std::mem::forget(std::mem::take(self));
    }
}

/// The end of a vector as a receive buffer: what arrives goes after the
/// elements it holds (a map's results behind main's own), on fresh memory
/// advised onto huge pages as [`fresh_buffer`]'s.
struct Tail<'a, T> {
    vec: &'a mut Vec<T>,
    base: usize,
}

impl<T: bytemuck::Pod> PlainBuf for Tail<'_, T> {
    fn bytes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.vec[self.base..])
    }

    fn fit(&mut self, elements: usize) -> Result<&mut [u8]> {
        self.vec.truncate(self.base);
        self.vec.reserve_exact(elements);
        advise_spare(self.vec);
        self.vec.resize(self.base + elements, T::zeroed());
        Ok(bytemuck::cast_slice_mut(&mut self.vec[self.base..]))
    }
}

// ---------------------------------------------------------------------------
// The registry of plain element types

/// What the generic calls need to do with a `Vec<T>` of a plain element
/// type `T` that they only know as `dyn Any`. One implementation per
/// element type ([`Ops`]), found by `TypeId`.
pub(crate) trait PlainOps: Send + Sync {
    /// The element type.
    fn pod_type(&self) -> PodType;
    /// `TypeId` of `Vec<T>`.
    fn vec_id(&self) -> TypeId;
    /// `type_name` of `Vec<T>`.
    fn vec_name(&self) -> &'static str;
    /// `align_of::<T>()`.
    fn align(&self) -> usize;
    /// The bytes of a `Vec<T>`.
    fn bytes<'a>(&self, vec: &'a dyn Any) -> &'a [u8];
    /// A `Vec<T>` as a resizable receive buffer.
    fn buf<'a>(&self, vec: &'a mut dyn Any) -> &'a mut dyn PlainBuf;
    /// The end of a `Vec<T>` as a receive buffer: what arrives is appended
    /// to the elements it holds.
    fn tail<'a>(&self, vec: &'a mut dyn Any) -> Box<dyn PlainBuf + 'a>;
    /// A copy of a `Vec<T>`.
    fn clone_vec(&self, vec: &dyn Any) -> Box<dyn Any + Send>;
    /// An empty `Vec<T>`.
    fn empty(&self) -> Box<dyn Any + Send>;
    /// A `Vec<T>` split into consecutive parts of `counts` elements (which
    /// add up to its length); the first part keeps the allocation.
    fn split(&self, vec: Box<dyn Any + Send>, counts: &[usize]) -> Vec<Box<dyn Any + Send>>;
    /// A `Vec<T>` holding `bytes` (copied).
    fn vec_from_bytes(&self, bytes: &[u8]) -> Box<dyn Any + Send>;
    /// A `Vec<T>` made of `bytes`, taken over when its allocation fits `T`.
    fn vec_from_owned(&self, bytes: Vec<u8>) -> Box<dyn Any + Send>;
    /// A `Vec<T>` made of the first `len` bytes of `words`, taken over when
    /// the allocation fits `T`.
    fn vec_from_words(&self, words: Vec<u64>, len: usize) -> Box<dyn Any + Send>;
}

/// [`PlainOps`] of the element type `T`.
pub(crate) struct Ops<T>(PhantomData<fn() -> T>);

fn vec_of<T: 'static>(vec: &dyn Any) -> &Vec<T> {
    vec.downcast_ref::<Vec<T>>()
        .expect("the registry gave the ops of another element type")
}

fn vec_of_mut<T: 'static>(vec: &mut dyn Any) -> &mut Vec<T> {
    vec.downcast_mut::<Vec<T>>()
        .expect("the registry gave the ops of another element type")
}

impl<T: bytemuck::Pod + Send> PlainOps for Ops<T> {
    fn pod_type(&self) -> PodType {
        PodType::of::<T>()
    }
    fn vec_id(&self) -> TypeId {
        TypeId::of::<Vec<T>>()
    }
    fn vec_name(&self) -> &'static str {
        type_name::<Vec<T>>()
    }
    fn align(&self) -> usize {
        std::mem::align_of::<T>()
    }
    fn bytes<'a>(&self, vec: &'a dyn Any) -> &'a [u8] {
        bytemuck::cast_slice(vec_of::<T>(vec))
    }
    fn buf<'a>(&self, vec: &'a mut dyn Any) -> &'a mut dyn PlainBuf {
        vec_of_mut::<T>(vec)
    }
    fn tail<'a>(&self, vec: &'a mut dyn Any) -> Box<dyn PlainBuf + 'a> {
        let vec = vec_of_mut::<T>(vec);
        let base = vec.len();
        Box::new(Tail { vec, base })
    }
    fn clone_vec(&self, vec: &dyn Any) -> Box<dyn Any + Send> {
        Box::new(vec_of::<T>(vec).clone())
    }
    fn empty(&self) -> Box<dyn Any + Send> {
        Box::new(Vec::<T>::new())
    }
    fn split(&self, vec: Box<dyn Any + Send>, counts: &[usize]) -> Vec<Box<dyn Any + Send>> {
        let mut rest = *vec
            .downcast::<Vec<T>>()
            .expect("the registry gave the ops of another element type");
        let mut parts: Vec<Box<dyn Any + Send>> = Vec::with_capacity(counts.len());
        for &count in counts.iter().skip(1).rev() {
            let at = rest.len().saturating_sub(count);
            parts.push(Box::new(rest.split_off(at)));
        }
        if !counts.is_empty() {
            parts.push(Box::new(rest));
        }
        parts.reverse();
        parts
    }
    fn vec_from_bytes(&self, bytes: &[u8]) -> Box<dyn Any + Send> {
        let mut v: Vec<T> = fresh_buffer(bytes.len() / std::mem::size_of::<T>().max(1));
        let n = std::mem::size_of_val(v.as_slice());
        bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(&bytes[..n]);
        Box::new(v)
    }
    fn vec_from_owned(&self, bytes: Vec<u8>) -> Box<dyn Any + Send> {
        match bytemuck::allocation::try_cast_vec::<u8, T>(bytes) {
            Ok(v) => Box::new(v),
            Err((_, bytes)) => self.vec_from_bytes(&bytes),
        }
    }
    fn vec_from_words(&self, words: Vec<u64>, len: usize) -> Box<dyn Any + Send> {
        let n = len / std::mem::size_of::<T>().max(1);
        match bytemuck::allocation::try_cast_vec::<u64, T>(words) {
            Ok(mut v) => {
                v.truncate(n);
                Box::new(v)
            }
            Err((_, words)) => self.vec_from_bytes(&bytemuck::cast_slice::<u64, u8>(&words)[..len]),
        }
    }
}

/// The [`PlainOps`] of a plain element type, as a constant (what a
/// registration holds).
pub(crate) trait HasOps {
    const OPS: &'static dyn PlainOps;
}

impl<T: bytemuck::Pod + Send> HasOps for T {
    const OPS: &'static dyn PlainOps = &Ops::<T>(PhantomData);
}

/// A plain element type registered with [`plain_data!`](crate::plain_data).
/// Built by the macro; not a public API.
#[doc(hidden)]
pub struct PlainEntry {
    ops: &'static dyn PlainOps,
}

impl PlainEntry {
    /// The registration of `T`.
    pub const fn of<T: bytemuck::Pod + Send>() -> PlainEntry {
        PlainEntry { ops: T::OPS }
    }
}

inventory::collect!(PlainEntry);

/// Declares `bytemuck::Pod` types as plain data: vectors of them then take
/// the plain path in the generic calls (`send`, `broadcast`, `scatter`,
/// `gather`, `map`, ...) as the primitive numbers do — their raw bytes
/// travel, with no serialization, and MPI moves them as a contiguous
/// datatype. The type must still be `Serialize + Deserialize` (the generic
/// calls accept any `Data`); the `_pod` and `_into` calls need no
/// registration.
///
/// ```
/// use parallelizer_core::{from_config, plain_data, Parallelizer};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize,
///          bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
/// plain_data!(Point);
///
/// let par = from_config("threads:2").unwrap();
/// let got = par.run(|p: &dyn Parallelizer, ()| {
///     p.broadcast(p.on_main().then(|| vec![Point { x: 1.0, y: 2.0 }])).unwrap()
/// }, ()).unwrap();
/// assert_eq!(got, [Point { x: 1.0, y: 2.0 }]);
/// assert!(parallelizer_core::is_plain::<Vec<Point>>());
/// ```
#[macro_export]
macro_rules! plain_data {
    ($($t:ty),+ $(,)?) => {
        $(
            $crate::__private::inventory::submit! {
                $crate::__private::PlainEntry::of::<$t>()
            }
        )+
    };
}

/// The plain element types every binary knows: the primitive numbers.
fn builtin() -> [&'static dyn PlainOps; 14] {
    [
        f64::OPS,
        f32::OPS,
        i8::OPS,
        i16::OPS,
        i32::OPS,
        i64::OPS,
        i128::OPS,
        isize::OPS,
        u8::OPS,
        u16::OPS,
        u32::OPS,
        u64::OPS,
        u128::OPS,
        usize::OPS,
    ]
}

/// Every plain element type by the `TypeId` of its `Vec`.
fn registry() -> &'static HashMap<TypeId, &'static dyn PlainOps> {
    static ALL: OnceLock<HashMap<TypeId, &'static dyn PlainOps>> = OnceLock::new();
    ALL.get_or_init(|| {
        let registered = inventory::iter::<PlainEntry>.into_iter().map(|e| e.ops);
        builtin()
            .into_iter()
            .chain(registered)
            .map(|ops| (ops.vec_id(), ops))
            .collect()
    })
}

/// The ops of `V` if `V` is `Vec<T>` of a plain element type `T`.
pub(crate) fn vec_ops<V: 'static>() -> Option<&'static dyn PlainOps> {
    let id = TypeId::of::<V>();
    // The primitive numbers without the registry (the comparisons fold at
    // compile time): most plain vectors are of these.
    macro_rules! direct {
        ($($t:ty),*) => {$(
            if id == TypeId::of::<Vec<$t>>() {
                return Some(<$t>::OPS);
            }
        )*};
    }
    direct!(f64, f32, i32, i64, u8, u32, u64, usize);
    registry().get(&id).copied()
}

/// Whether `V` is a `Vec` of plain data, which the generic calls move as
/// raw bytes: `Vec` of a primitive number, or of a type registered with
/// [`plain_data!`](crate::plain_data).
///
/// ```
/// use parallelizer_core::is_plain;
/// assert!(is_plain::<Vec<f64>>() && is_plain::<Vec<u8>>());
/// assert!(!is_plain::<Vec<String>>() && !is_plain::<f64>());
/// ```
pub fn is_plain<V: 'static>() -> bool {
    vec_ops::<V>().is_some()
}

/// `value` as a `U`, if `T` is `U` (a no-op move); else `value` back.
pub(crate) fn cast<T: 'static, U: 'static>(value: T) -> std::result::Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(u) => Ok(u.take().expect("just filled")),
        None => Err(slot.expect("not taken")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_numbers_are_plain_and_others_are_not() {
        assert!(vec_ops::<Vec<f64>>().is_some());
        assert!(vec_ops::<Vec<i16>>().is_some());
        assert!(vec_ops::<Vec<u128>>().is_some());
        assert!(vec_ops::<Vec<String>>().is_none());
        assert!(vec_ops::<Vec<Vec<f64>>>().is_none());
        assert!(vec_ops::<f64>().is_none());
        assert_eq!(vec_ops::<Vec<i16>>().unwrap().pod_type().size, 2);
    }

    #[test]
    fn ops_view_and_rebuild_vectors() {
        let ops = vec_ops::<Vec<u32>>().unwrap();
        let v: Vec<u32> = vec![1, 2, 3];
        assert_eq!(ops.bytes(&v).len(), 12);
        let back = ops.vec_from_bytes(ops.bytes(&v));
        assert_eq!(*back.downcast::<Vec<u32>>().unwrap(), v);
        let words = vec![u64::from_le_bytes([1, 0, 0, 0, 2, 0, 0, 0]), 0];
        let taken = ops.vec_from_words(words, 8);
        assert_eq!(*taken.downcast::<Vec<u32>>().unwrap(), [1, 2]);
        assert_eq!(cast::<u8, u8>(5), Ok(5));
        assert_eq!(cast::<u8, u16>(5), Err(5));
    }

    #[test]
    fn fixed_buffers_name_both_lengths() {
        let mut raw = [0u8; 16];
        let mut fixed = Fixed {
            bytes: &mut raw,
            size: 8,
            op: Op::Broadcast,
            rank: 2,
        };
        assert_eq!(fixed.fit(2).unwrap().len(), 16);
        let err = fixed.fit(3).unwrap_err();
        assert_eq!(
            err,
            Error::Length {
                op: Op::Broadcast,
                rank: 2,
                expected: 3,
                actual: 2
            }
        );
        let mut v: Vec<f64> = vec![1.0; 2];
        assert_eq!(v.fit(5).unwrap().len(), 40);
        assert_eq!(v.len(), 5);
        let big: Vec<f64> = crate::plain_buffer(1 << 20);
        assert_eq!(big.len(), 1 << 20);
    }
}
