//! Shared memory (McUtils' `SharedMemory.py`): [`SharedArray`], an
//! n-dimensional array of plain data that every rank of a parallelizer
//! addresses directly, and [`SharedMap`], string keys to values kept by
//! value and arrays kept in shared memory; `par.share(value)` makes either.
//!
//! # Where the memory is
//!
//! Each backend provides it ([`Parallelizer::shared_memory`]): `serial` and
//! `threads` one heap allocation that the rank threads share; `processes` a
//! memfd that every process maps read-write, its descriptor passed over the
//! ranks' Unix sockets; `mpi` a memfd too, which the ranks of the node open
//! through the sender's `/proc/PID/fd/FD` (a token that carries its node: a
//! rank on another node gets an error naming both nodes). Not an
//! `MPI_Win_allocate_shared` window: a window is created by every rank
//! together, which main cannot do alone outside a region.
//!
//! # Who allocates
//!
//! - On main outside a region (`par.share(v)` before `run`, McUtils' way),
//!   main allocates; the ranks of a later region get handles with the
//!   region's arguments (or any message).
//! - Inside a region, `p.share(v)` and [`SharedArray::zeros`] are
//!   collective: every rank calls them, the object holds main's value (the
//!   others' are dropped), and every rank gets a handle to the same memory.
//!
//! # Why the safe API has no data races
//!
//! Every segment of shared memory starts with a borrow table, kept in the
//! shared memory itself so that every rank's process sees the same table,
//! and every safe access to the elements happens under a borrow from it:
//! a read borrow (`&[T]` of the whole array, shared with other readers), a
//! write borrow (`&mut [T]` of some rows, exclusive over them; this rank's
//! rows with [`SharedArray::chunk_mut`], as rayon's `par_chunks_mut` hands
//! out disjoint chunks), or an atomic borrow (element-wise atomic loads,
//! stores and read-modify-writes, shared with other atomic users). The
//! table grants a borrow only when no rank holds a conflicting one (an
//! overlapping range, unless both only read or both only use atomics) and
//! otherwise returns an error at once; acquiring and releasing go through
//! one lock word with acquire/release ordering, so whatever a rank did
//! under a borrow happens before whatever another rank does under a
//! borrow it acquires later. References into the memory exist only while
//! their borrow does (the views hold it), the elements are `bytemuck::Pod`
//! (every bit pattern is a value, so memory written by another rank is
//! always a valid `T`), and the layout read from shared memory is checked
//! once and never trusted again. Barriers (`wait()`) are what order the
//! phases of a program (write your rows, wait, read everything, wait); a
//! missing barrier shows up as a borrow error, never as a race. A borrow
//! held by a process that died is taken back. The one way around the
//! table is the `unsafe` [`SharedArray::as_mut_slice_unchecked`].
//!
//! # When it is released
//!
//! Handles are reference counted in each process: heap memory is freed and
//! a memfd unmapped and closed when the last handle in this process drops
//! (the kernel frees the memfd when no process maps it; a process that
//! exits or is killed releases its mappings), so nothing is ever left in
//! `/dev/shm`.

mod array;
mod atomic;
mod map;
mod owned;

use std::any::type_name;

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::op::Op;
use crate::parallelizer::Parallelizer;
use crate::segment::{Layout, Segment, Segments};

pub use array::{Atomics, ReadGuard, SharedArray, WriteGuard};
pub use atomic::AtomicElement;
pub use map::{MapValue, Owned, OwnedArray, OwnedMap, SharedMap};
pub use owned::Array;

/// An element type, by name, size and alignment: what a shared array's
/// handle carries so a receiver checks it reads the type that was sent.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elem {
    name: String,
    size: usize,
    align: usize,
}

impl Elem {
    fn of<T: Pod>() -> Elem {
        Elem {
            name: type_name::<T>().to_string(),
            size: std::mem::size_of::<T>(),
            align: std::mem::align_of::<T>(),
        }
    }

    /// An error unless this is `T`.
    fn expect<T: Pod>(&self) -> Result<()> {
        if *self != Elem::of::<T>() {
            return Err(Error::Codec(format!(
                "a shared array of {} read as an array of {}",
                self.name,
                type_name::<T>()
            )));
        }
        Ok(())
    }
}

/// What `share` makes, without the data: the shapes and element types of
/// the arrays (in order) and the values. Main's plan is what every rank
/// builds from in a collective `share`.
#[doc(hidden)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Plan {
    /// An array.
    Array {
        /// Its element type.
        elem: Elem,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A value kept by value.
    Value(MapValue),
    /// A map, by key.
    Map(Vec<(String, Plan)>),
}

impl Plan {
    /// The segments the plan needs, in order.
    fn layouts(&self, nprocs: usize, out: &mut Vec<Layout>) -> Result<()> {
        match self {
            Plan::Array { elem, shape } => {
                let bytes = owned::elements(shape)?
                    .checked_mul(elem.size)
                    .ok_or_else(|| Error::Config(format!("array shape {shape:?} is too large")))?;
                out.push(Layout::for_ranks(bytes, nprocs));
            }
            Plan::Value(_) => {}
            Plan::Map(entries) => {
                for (_, p) in entries {
                    p.layouts(nprocs, out)?;
                }
            }
        }
        Ok(())
    }
}

/// What `par.share(value)` accepts (McUtils `parallelizer.share(obj)`):
/// an [`Array`] (gives a [`SharedArray`]), an [`OwnedMap`] (gives a
/// [`SharedMap`]), or a plain struct or number (`bytemuck::Pod`; gives a
/// 0-dimensional [`SharedArray`], one shared element).
///
/// The methods are the machinery of `share`, not an API.
pub trait Share: Sized {
    /// What the value becomes.
    type Shared;
    #[doc(hidden)]
    fn plan(&self) -> Result<Plan>;
    #[doc(hidden)]
    fn fill(&self, segs: &mut dyn Iterator<Item = &Segment>) -> Result<()>;
    #[doc(hidden)]
    fn build(plan: Plan, segs: &mut dyn Iterator<Item = Segment>) -> Result<Self::Shared>;
    #[doc(hidden)]
    fn bind(_shared: &mut Self::Shared, _par: &dyn Parallelizer) {}
}

impl<T: Pod> Share for T {
    type Shared = SharedArray<T>;
    fn plan(&self) -> Result<Plan> {
        Ok(Plan::Array {
            elem: Elem::of::<T>(),
            shape: Vec::new(),
        })
    }
    fn fill(&self, segs: &mut dyn Iterator<Item = &Segment>) -> Result<()> {
        let seg = segs.next().ok_or_else(short)?;
        SharedArray::<T>::from_segment(seg.clone(), Vec::new())?.assign(std::slice::from_ref(self))
    }
    fn build(plan: Plan, segs: &mut dyn Iterator<Item = Segment>) -> Result<SharedArray<T>> {
        build_array(plan, segs.collect())
    }
}

/// The error of a plan that does not match its segments (a bug, or ranks
/// that disagree).
fn short() -> Error {
    Error::Protocol("shared memory does not match the plan it was allocated for".into())
}

/// The one array of `plan` in `segs`.
fn build_array<T: Pod>(plan: Plan, segs: Vec<Segment>) -> Result<SharedArray<T>> {
    match (plan, <[Segment; 1]>::try_from(segs)) {
        (Plan::Array { elem, shape }, Ok([seg])) => {
            elem.expect::<T>()?;
            SharedArray::from_segment(seg, shape)
        }
        _ => Err(short()),
    }
}

/// Allocates the memory of `plan` and has `fill` write main's data into it:
/// on this rank alone (one rank, or main outside a region), or with every
/// rank of the region (main's plan is broadcast, every rank gets handles to
/// the same memory, and a barrier ends it so no rank reads before main
/// wrote). Returns the plan every rank builds from and the segments.
fn create(
    par: &dyn Parallelizer,
    plan: Plan,
    fill: impl FnOnce(&[Segment]) -> Result<()>,
) -> Result<(Plan, Vec<Segment>)> {
    let nprocs = par.nprocs();
    let memory = par.shared_memory()?;
    if nprocs == 1 || !par.in_region() {
        let mut layouts = Vec::new();
        plan.layouts(nprocs, &mut layouts)?;
        let segs = memory.allocate(&layouts)?;
        fill(&segs)?;
        return Ok((plan, segs));
    }
    let plan = par.broadcast_internal(Op::Share, par.on_main().then_some(plan))?;
    let mut layouts = Vec::new();
    plan.layouts(nprocs, &mut layouts)?;
    // Main allocates for every rank and hands out the handles.
    let mine = par.on_main().then(|| memory.allocate(&layouts));
    let segs = par
        .broadcast_internal(Op::Share, mine.transpose()?.map(Segments))?
        .0;
    let filled = if par.on_main() { fill(&segs) } else { Ok(()) };
    par.wait_internal(Op::Share)?;
    filled?;
    Ok((plan, segs))
}

impl dyn Parallelizer {
    /// Puts `value` in shared memory (McUtils `parallelizer.share(obj)`):
    /// an [`Array`] becomes a [`SharedArray`], an [`OwnedMap`] a
    /// [`SharedMap`], a plain struct a one-element `SharedArray`. On main
    /// outside a region, main allocates; inside a region every rank calls it
    /// and gets a handle to main's value.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Array, Parallelizer};
    /// let par = from_config("threads:2").unwrap();
    /// let a = Array::new([10, 5, 5], (0..250).map(f64::from).collect()).unwrap();
    /// let shared = par.share(a.clone()).unwrap();
    /// assert_eq!(format!("{shared:?}"), "SharedArray((10, 5, 5), dtype=f64)");
    /// assert_eq!(shared.unshare().unwrap(), a);
    /// ```
    pub fn share<V: Share>(&self, value: V) -> Result<V::Shared> {
        let collective = self.nprocs() > 1 && self.in_region();
        let plan = if collective && !self.on_main() {
            // Workers build from main's plan; theirs is not needed.
            Plan::Map(Vec::new())
        } else {
            value.plan()?
        };
        let (plan, segs) = create(self, plan, |segs| value.fill(&mut segs.iter()))?;
        let mut segs = segs.into_iter();
        let mut shared = V::build(plan, &mut segs)?;
        if segs.next().is_some() {
            return Err(short());
        }
        V::bind(&mut shared, self);
        Ok(shared)
    }
}

/// A shape as Python prints a tuple: `(10, 5, 5)`, `(4,)`, `()`.
fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_as_tuples() {
        assert_eq!(fmt_shape(&[10, 5, 5]), "(10, 5, 5)");
        assert_eq!(fmt_shape(&[4]), "(4,)");
        assert_eq!(fmt_shape(&[]), "()");
    }
}
