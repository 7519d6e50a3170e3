//! `SharedArray<T>`: an array in shared memory, and the views a rank
//! borrows from it.

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Range};

use bytemuck::Pod;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attach::explain;
use crate::error::{Error, Result};
use crate::parallelizer::Parallelizer;
use crate::segment::{Access, SEGMENT_ALIGN, Segment};
use crate::split::chunk_sizes;

use super::atomic::{AtomicElement, atomic_load, atomic_store};
use super::owned::{Array, bad_index, elements, flat};
use super::{Elem, Plan, Share, fmt_shape};

/// An n-dimensional array of plain data (`bytemuck::Pod`), row-major, in
/// memory that every rank of a parallelizer can address (McUtils'
/// `SharedMemoryNDarray`): one allocation on `threads`, a memfd every
/// process maps on `processes` and the `mpi` ranks of one node. Clones
/// and handles sent to other ranks are handles to the same memory.
///
/// Every access goes through a borrow that the array's borrow table (in
/// the shared memory itself) grants only when no rank holds a conflicting
/// one, so the safe API has no data races:
///
/// - [`read`](SharedArray::read): `&[T]` of the whole array, shared with
///   other readers;
/// - [`chunk_mut`](SharedArray::chunk_mut) / [`rows_mut`](SharedArray::rows_mut)
///   / [`write`](SharedArray::write): `&mut [T]` of this rank's rows (like
///   rayon's `par_chunks_mut`), of any rows, or of all of it, exclusive
///   over those rows;
/// - [`get`](SharedArray::get), [`set`](SharedArray::set) and
///   [`atomics`](SharedArray::atomics): element-wise atomic access (counters).
///
/// A conflicting borrow is an error at once, not a wait: ranks that write
/// and then read separate the two phases with a barrier (`wait()`) and
/// drop their views before it. The `unsafe`
/// [`as_mut_slice_unchecked`](SharedArray::as_mut_slice_unchecked) skips
/// the table, for experts who synchronize otherwise.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer, SharedArray};
/// let par = from_config("threads:3").unwrap();
/// let sums = par.run(|p: &dyn Parallelizer, ()| {
///     // Every rank calls it (collective); main's shape is used.
///     let a = SharedArray::<f64>::zeros(p, &[6, 2]).unwrap();
///     {
///         let mut mine = a.chunk_mut(p).unwrap(); // rows 2r..2r+2 of rank r
///         mine.fill(p.id() as f64 + 1.0);
///     }
///     p.wait().unwrap(); // every rank wrote its rows
///     let total: f64 = a.read().unwrap().iter().sum();
///     p.wait().unwrap(); // every rank read before anyone writes again
///     total
/// }, ()).unwrap();
/// assert_eq!(sums, 4.0 * (1.0 + 2.0 + 3.0));
/// ```
pub struct SharedArray<T> {
    seg: Segment,
    shape: Vec<usize>,
    _t: PhantomData<T>,
}

impl<T: Pod> Clone for SharedArray<T> {
    fn clone(&self) -> SharedArray<T> {
        SharedArray {
            seg: self.seg.clone(),
            shape: self.shape.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Pod> SharedArray<T> {
    /// The array of `shape` in `seg`, whose data must be exactly its size.
    pub(crate) fn from_segment(seg: Segment, shape: Vec<usize>) -> Result<SharedArray<T>> {
        let need = elements(&shape)?
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| Error::Config(format!("array shape {shape:?} is too large")))?;
        if std::mem::align_of::<T>() > SEGMENT_ALIGN {
            return Err(Error::Config(format!(
                "{} is aligned to {} bytes; shared arrays hold types aligned to at most {}",
                type_name::<T>(),
                std::mem::align_of::<T>(),
                SEGMENT_ALIGN
            )));
        }
        if seg.layout().data_len() != need {
            return Err(Error::Codec(format!(
                "shared memory of {} bytes cannot hold a {} array of {} ({need} bytes)",
                seg.layout().data_len(),
                fmt_shape(&shape),
                type_name::<T>()
            )));
        }
        Ok(SharedArray {
            seg,
            shape,
            _t: PhantomData,
        })
    }

    /// A zeroed shared array of `shape`. On main outside a region this rank
    /// allocates it; inside a region every rank calls it (collectively) and
    /// gets a handle to the same memory, of main's shape.
    ///
    /// ```
    /// # use parallelizer_core::{from_config, SharedArray};
    /// let par = from_config("serial").unwrap();
    /// let a = SharedArray::<u32>::zeros(&*par, &[4]).unwrap();
    /// assert_eq!(a.unshare().unwrap().as_slice(), [0; 4]);
    /// ```
    pub fn zeros(par: &dyn Parallelizer, shape: &[usize]) -> Result<SharedArray<T>> {
        let plan = Plan::Array {
            elem: Elem::of::<T>(),
            shape: shape.to_vec(),
        };
        let (plan, segs) = super::create(par, plan, |_| Ok(()))?;
        super::build_array(plan, segs)
    }

    /// A shared array holding a copy of main's `array` (the same as
    /// `par.share(array)`).
    pub fn from_array(par: &dyn Parallelizer, array: Array<T>) -> Result<SharedArray<T>> {
        par.share(array)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of rows: the length of the first axis (1 for a 0-d array).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row.
    fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Whether both handles are to the same memory.
    pub fn same_memory(&self, other: &SharedArray<T>) -> bool {
        self.seg.same_memory(&other.seg)
    }

    /// The segment, for the map.
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    fn ptr(&self) -> *mut T {
        self.seg.data().as_ptr().cast::<T>()
    }

    /// Borrows elements `range` for `access`.
    fn borrow(&self, access: Access, range: Range<usize>) -> Result<Borrow<'_, T>> {
        let slot = self
            .seg
            .table()
            .acquire(access, range.start as u64..range.end as u64)?;
        Ok(Borrow { array: self, slot })
    }

    /// A view of the whole array for reading, shared with the other
    /// readers of every rank. An error while some rank writes or uses
    /// atomics on any element.
    ///
    /// ```
    /// # use parallelizer_core::{from_config, Array, Parallelizer};
    /// let par = from_config("serial").unwrap();
    /// let a = par.share(Array::from(vec![1u8, 2, 3])).unwrap();
    /// let view = a.read().unwrap();
    /// assert_eq!(&*view, [1, 2, 3]);
    /// assert!(a.write().is_err(), "no writer while it is read");
    /// ```
    pub fn read(&self) -> Result<ReadGuard<'_, T>> {
        let borrow = self.borrow(Access::Read, 0..self.len())?;
        // SAFETY: the data holds `len()` initialized (zeroed or written)
        // elements of the Pod type `T` (any bytes are a valid `T`),
        // aligned (128-aligned data, checked in `from_segment`), and the
        // read borrow keeps every writer and atomic user of every rank out
        // of these elements while the view lives (the borrow lives in it).
        let data = unsafe { std::slice::from_raw_parts(self.ptr(), self.len()) };
        Ok(ReadGuard { borrow, data })
    }

    /// A mutable view of the rows `rows` of the first axis, exclusive: an
    /// error while any rank borrows one of their elements.
    ///
    /// ```
    /// # use parallelizer_core::{from_config, SharedArray};
    /// let par = from_config("serial").unwrap();
    /// let a = SharedArray::<i32>::zeros(&*par, &[4, 2]).unwrap();
    /// let mut top = a.rows_mut(0..2).unwrap();
    /// let bottom = a.rows_mut(2..4).unwrap(); // disjoint: fine
    /// assert!(a.rows_mut(1..3).is_err()); // overlaps both
    /// top.copy_from_slice(&[1, 2, 3, 4]);
    /// drop((top, bottom));
    /// assert_eq!(a.get(&[1, 1]).unwrap(), 4);
    /// ```
    pub fn rows_mut(&self, rows: Range<usize>) -> Result<WriteGuard<'_, T>> {
        if rows.start > rows.end || rows.end > self.rows() {
            return Err(Error::ContractViolation(format!(
                "rows {}..{} of an array of shape {}",
                rows.start,
                rows.end,
                fmt_shape(&self.shape)
            )));
        }
        let row = self.row_len();
        let range = rows.start * row..rows.end * row;
        let borrow = self.borrow(Access::Write, range.clone())?;
        // SAFETY: `range` lies inside the `len()` initialized, aligned
        // elements of the Pod type `T`, and the write borrow keeps every
        // other borrow of every rank (and of this process: other views)
        // out of these elements while the view lives.
        let data = unsafe {
            std::slice::from_raw_parts_mut(self.ptr().add(range.start), range.end - range.start)
        };
        Ok(WriteGuard {
            _borrow: borrow,
            rows,
            data,
        })
    }

    /// A mutable view of this rank's rows: the first axis split over the
    /// ranks of `par` as `scatter` splits a vector (chunk `id` of
    /// [`chunk_sizes`](crate::chunk_sizes)), so the ranks' views are
    /// disjoint.
    pub fn chunk_mut(&self, par: &dyn Parallelizer) -> Result<WriteGuard<'_, T>> {
        let sizes = chunk_sizes(self.rows(), par.nprocs());
        let start: usize = sizes[..par.id()].iter().sum();
        self.rows_mut(start..start + sizes[par.id()])
    }

    /// A mutable view of the whole array, exclusive.
    pub fn write(&self) -> Result<WriteGuard<'_, T>> {
        self.rows_mut(0..self.rows())
    }

    /// The element at `index` (one coordinate per axis), read atomically
    /// (word by word for elements larger than 8 bytes, which a concurrent
    /// `set` may then be seen half done). An error while a rank reads or
    /// writes that element through a view.
    pub fn get(&self, index: &[usize]) -> Result<T> {
        let i = flat(&self.shape, index).ok_or_else(|| bad_index(&self.shape, index))?;
        let _b = self.borrow(Access::Atomic, i..i + 1)?;
        // SAFETY: element `i` is inside the data, aligned, and under an
        // atomic borrow: every rank accesses it only atomically now.
        Ok(unsafe { atomic_load(self.ptr().add(i)) })
    }

    /// Writes `value` at `index` atomically (as [`get`](SharedArray::get)
    /// reads). An error while a rank reads or writes that element through
    /// a view.
    ///
    /// ```
    /// # use parallelizer_core::{from_config, SharedArray};
    /// let par = from_config("serial").unwrap();
    /// let a = SharedArray::<f64>::zeros(&*par, &[10, 5, 5]).unwrap();
    /// a.set(&[1, 0, 0], 5.0).unwrap();
    /// assert_eq!(a.get(&[1, 0, 0]).unwrap(), 5.0);
    /// assert!(a.get(&[10, 0, 0]).is_err());
    /// ```
    pub fn set(&self, index: &[usize], value: T) -> Result<()> {
        let i = flat(&self.shape, index).ok_or_else(|| bad_index(&self.shape, index))?;
        let _b = self.borrow(Access::Atomic, i..i + 1)?;
        // SAFETY: as in `get`.
        unsafe { atomic_store(self.ptr().add(i), value) };
        Ok(())
    }

    /// Atomic access to every element (counters, flags), shared with the
    /// other atomic users of every rank.
    ///
    /// ```
    /// # use parallelizer_core::{from_config, Parallelizer, SharedArray};
    /// use std::sync::atomic::Ordering;
    /// let par = from_config("threads:4").unwrap();
    /// let n = par.run(|p: &dyn Parallelizer, ()| {
    ///     let counter = SharedArray::<u64>::zeros(p, &[1]).unwrap();
    ///     counter.atomics().unwrap().at(0).fetch_add(1, Ordering::Relaxed);
    ///     p.wait().unwrap();
    ///     counter.get(&[0]).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(n, 4);
    /// ```
    pub fn atomics(&self) -> Result<Atomics<'_, T>>
    where
        T: AtomicElement,
    {
        let borrow = self.borrow(Access::Atomic, 0..self.len())?;
        Ok(Atomics { borrow })
    }

    /// An owned copy of the array (McUtils `unshare`).
    pub fn unshare(&self) -> Result<Array<T>> {
        let view = self.read()?;
        Array::new(self.shape.clone(), view.to_vec())
    }

    /// Overwrites every element with `data` (row-major), in place: every
    /// handle sees the new values.
    pub fn assign(&self, data: &[T]) -> Result<()> {
        if data.len() != self.len() {
            return Err(Error::ContractViolation(format!(
                "{} elements do not fit an array of shape {}",
                data.len(),
                fmt_shape(&self.shape)
            )));
        }
        self.write()?.copy_from_slice(data);
        Ok(())
    }

    /// A pointer to the first element, for code that synchronizes by
    /// other means; using it is `unsafe` (see
    /// [`as_mut_slice_unchecked`](SharedArray::as_mut_slice_unchecked)).
    pub fn as_ptr(&self) -> *mut T {
        self.ptr()
    }

    /// The whole array as a mutable slice, without a borrow: the raw view
    /// for experts (an MPI-style code that orders its accesses with its own
    /// barriers and fences).
    ///
    /// # Safety
    ///
    /// While the slice lives, no other access to an element it covers may
    /// happen concurrently from any rank, thread or view, except other
    /// unchecked accesses that the caller orders so that no element is
    /// written while another access to it is in flight. The borrow table is
    /// not consulted, so the safe views of other ranks cannot see this one.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice_unchecked(&self) -> &mut [T] {
        // SAFETY: the data is `len()` initialized, aligned elements of the
        // Pod type `T`; the caller promises the absence of conflicting
        // accesses (this fn's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len()) }
    }
}

impl<T: Pod> fmt::Debug for SharedArray<T> {
    /// `SharedArray((10, 5, 5), dtype=f64)`, as McUtils prints its arrays.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SharedArray({}, dtype={})",
            fmt_shape(&self.shape),
            type_name::<T>()
        )
    }
}

/// The wire form of a [`SharedArray`] (and of a map's arrays).
#[derive(Serialize, Deserialize)]
pub(super) struct ArrayHandle {
    pub(super) seg: Segment,
    pub(super) shape: Vec<usize>,
    pub(super) elem: Elem,
}

impl<T: Pod> Serialize for SharedArray<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        ArrayHandle {
            seg: self.seg.clone(),
            shape: self.shape.clone(),
            elem: Elem::of::<T>(),
        }
        .serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for SharedArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<SharedArray<T>, D::Error> {
        let h = ArrayHandle::deserialize(d)?;
        h.elem
            .expect::<T>()
            .map_err(|e| D::Error::custom(explain(e)))?;
        SharedArray::from_segment(h.seg, h.shape).map_err(|e| D::Error::custom(explain(e)))
    }
}

impl<T: Pod> Share for Array<T> {
    type Shared = SharedArray<T>;
    fn plan(&self) -> Result<Plan> {
        Ok(Plan::Array {
            elem: Elem::of::<T>(),
            shape: self.shape().to_vec(),
        })
    }
    fn fill(&self, segs: &mut dyn Iterator<Item = &Segment>) -> Result<()> {
        let seg = segs.next().ok_or_else(super::short)?;
        SharedArray::<T>::from_segment(seg.clone(), self.shape().to_vec())?.assign(self.as_slice())
    }
    fn build(plan: Plan, segs: &mut dyn Iterator<Item = Segment>) -> Result<SharedArray<T>> {
        match plan {
            Plan::Array { shape, .. } => {
                SharedArray::from_segment(segs.next().ok_or_else(super::short)?, shape)
            }
            _ => Err(super::short()),
        }
    }
}

/// A borrow of a shared array's elements, released when dropped.
struct Borrow<'a, T> {
    array: &'a SharedArray<T>,
    slot: usize,
}

impl<T> Drop for Borrow<'_, T> {
    fn drop(&mut self) {
        self.array.seg.table().release(self.slot);
    }
}

/// A read view of a whole [`SharedArray`] (from
/// [`read`](SharedArray::read)): derefs to `&[T]`, row-major.
pub struct ReadGuard<'a, T> {
    // Declared (and so dropped) after `data`: the borrow outlives the view.
    data: &'a [T],
    borrow: Borrow<'a, T>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.data
    }
}

impl<T: Pod> ReadGuard<'_, T> {
    /// The element at `index` (one coordinate per axis), if it is inside.
    pub fn at(&self, index: &[usize]) -> Option<&T> {
        flat(&self.borrow.array.shape, index).map(|i| &self.data[i])
    }
}

/// A mutable view of some rows of a [`SharedArray`] (from
/// [`chunk_mut`](SharedArray::chunk_mut), [`rows_mut`](SharedArray::rows_mut)
/// or [`write`](SharedArray::write)): derefs to `&mut [T]`, row-major.
pub struct WriteGuard<'a, T> {
    data: &'a mut [T],
    rows: Range<usize>,
    _borrow: Borrow<'a, T>,
}

impl<T> WriteGuard<'_, T> {
    /// The rows of the first axis this view covers.
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.data
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.data
    }
}

/// Atomic access to the elements of a [`SharedArray`] (from
/// [`atomics`](SharedArray::atomics)).
pub struct Atomics<'a, T> {
    borrow: Borrow<'a, T>,
}

impl<T: AtomicElement> Atomics<'_, T> {
    /// The atomic at flat (row-major) position `i`, for as long as this
    /// view (and so its borrow) lives.
    ///
    /// # Panics
    ///
    /// If `i` is not below the array's length.
    pub fn at(&self, i: usize) -> &T::Atomic {
        let array = self.borrow.array;
        assert!(i < array.len(), "index {i} of {} elements", array.len());
        // SAFETY: element `i` is inside the data; its address is aligned
        // for `T::Atomic` (the data is 128-aligned and `T`'s size equals
        // its atomic's size and alignment, see `AtomicElement`); the
        // returned reference lives no longer than `self`, whose atomic
        // borrow keeps every non-atomic access of every rank out of the
        // elements.
        unsafe { T::atomic(array.ptr().add(i)) }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.borrow.array.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: fmt::Debug> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadGuard").field(&self.data).finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for WriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteGuard")
            .field("rows", &self.rows)
            .field("data", &self.data)
            .finish()
    }
}

impl<T> fmt::Debug for Atomics<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Atomics")
            .field("len", &self.borrow.array.shape.iter().product::<usize>())
            .finish()
    }
}
