//! Reductions: `reduce`, `allreduce`, `scan` and `allgather`. Built-in ops
//! on plain numbers run natively where the backend has them (MPI's
//! `MPI_Reduce`, `MPI_Allreduce`, `MPI_Scan`, `MPI_Allgather(v)`); anything
//! else combines values in rank order along a tree of messages.

use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::native::{NativeReduce, Reach};
use crate::op::{Op, Tag};
use crate::parallelizer::{Parallelizer, PodType};
use crate::plain::vec_ops;
use crate::reduce::{Reduce, ReduceOp, Shape, numeric, numeric_bytes, numeric_from_bytes, vec_len};

use super::{Contract, Pairing};

impl dyn Parallelizer {
    /// Every rank's `value` combined with `op`, on main (`None` on
    /// workers): mpi4py's `reduce`. `op` is a built-in [`Reduce`] op
    /// (numbers, and element-wise on `Vec`s of numbers of the same length
    /// on every rank) or any associative `Fn(T, T) -> T`, applied in rank
    /// order. Built-in ops on numbers are `MPI_Reduce` on MPI; one number
    /// on threads and processes is a post per rank in memory they share,
    /// which main reads; elsewhere values meet along a binomial tree (`log2 nprocs` rounds),
    /// not all at main.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer, Reduce};
    /// let par = from_config("threads:4").unwrap();
    /// let total = par.run(|p: &dyn Parallelizer, ()| {
    ///     p.reduce(p.id() as f64, Reduce::Sum).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(total, Some(6.0));
    /// ```
    pub fn reduce<T: Data, O: ReduceOp<T>>(&self, value: T, op: O) -> Result<Option<T>> {
        self.reduce_as(value, &op, Contract::Check)
    }

    pub(super) fn reduce_as<T: Data, O: ReduceOp<T> + ?Sized>(
        &self,
        mut value: T,
        op: &O,
        contract: Contract,
    ) -> Result<Option<T>> {
        builtin_defined::<T>(op.builtin())?;
        let Pairing::Ranks(tag) = self.prologue(Op::Reduce, contract)? else {
            return Ok(Some(value));
        };
        self.traced(
            Op::Reduce,
            |_| None,
            || {
                if let Some(done) =
                    self.native_reduction(&mut value, op.builtin(), Reach::Main, tag)
                {
                    done?;
                    return Ok(self.on_main().then_some(value));
                }
                if let Some(all) = self.small_values(&mut value, tag) {
                    let all = all?;
                    return self.on_main().then(|| fold(op, all)).transpose();
                }
                self.check_lengths(&value, op.builtin(), tag)?;
                let combine = combiner(op, Msg::new::<T>);
                self.reduce_msg(Msg::new(value), &combine, tag)?
                    .map(Msg::into_value)
                    .transpose()
            },
        )
    }

    /// Every rank's `value` combined with `op`, on every rank (mpi4py's
    /// `allreduce`; `reduce` says which ops). Built-in ops
    /// on numbers are `MPI_Allreduce` on MPI; one number on threads and
    /// processes is a post per rank in memory they share (no message);
    /// elsewhere recursive doubling.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer, Reduce};
    /// let par = from_config("threads:3").unwrap();
    /// let norms = par.run(|p: &dyn Parallelizer, ()| {
    ///     let mine = vec![p.id() as f64; 2];
    ///     let sum = p.allreduce(mine, Reduce::Sum).unwrap();
    ///     p.gather(sum).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(norms.unwrap(), vec![vec![3.0, 3.0]; 3]);
    /// ```
    pub fn allreduce<T: Data + Clone, O: ReduceOp<T>>(&self, value: T, op: O) -> Result<T> {
        self.allreduce_as(value, &op, Op::Allreduce)
    }

    fn allreduce_as<T: Data + Clone, O: ReduceOp<T> + ?Sized>(
        &self,
        mut value: T,
        op: &O,
        name: Op,
    ) -> Result<T> {
        builtin_defined::<T>(op.builtin())?;
        let Pairing::Ranks(tag) = self.prologue(name, Contract::Check)? else {
            return Ok(value);
        };
        self.traced(
            name,
            |_| None,
            || {
                if let Some(done) = self.native_reduction(&mut value, op.builtin(), Reach::All, tag)
                {
                    return done.map(|()| value);
                }
                if let Some(all) = self.small_values(&mut value, tag) {
                    return fold(op, all?);
                }
                self.check_lengths(&value, op.builtin(), tag)?;
                let combine = combiner(op, Msg::cloneable::<T>);
                self.allreduce_msg(Msg::cloneable(value), &combine, tag)?
                    .into_value()
            },
        )
    }

    /// Each rank's inclusive prefix: the values of ranks `0..=id` combined
    /// with `op` (mpi4py's `scan`). `MPI_Scan` for built-in ops on numbers
    /// on MPI; one number on threads and processes is a post per rank in
    /// memory they share; elsewhere `log2 nprocs` rounds of messages.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer, Reduce};
    /// let par = from_config("threads:4").unwrap();
    /// let offsets = par.run(|p: &dyn Parallelizer, ()| {
    ///     let count = 10 * (p.id() as u64 + 1);
    ///     p.gather(p.scan(count, Reduce::Sum).unwrap()).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(offsets.unwrap(), [10, 30, 60, 100]);
    /// ```
    pub fn scan<T: Data + Clone, O: ReduceOp<T>>(&self, mut value: T, op: O) -> Result<T> {
        builtin_defined::<T>(op.builtin())?;
        let Pairing::Ranks(tag) = self.prologue(Op::Scan, Contract::Check)? else {
            return Ok(value);
        };
        self.traced(
            Op::Scan,
            |_| None,
            || {
                if let Some(done) =
                    self.native_reduction(&mut value, op.builtin(), Reach::Prefix, tag)
                {
                    return done.map(|()| value);
                }
                if let Some(all) = self.small_values(&mut value, tag) {
                    let mut all = all?;
                    all.truncate(self.id() + 1);
                    return fold(&op, all);
                }
                self.check_lengths(&value, op.builtin(), tag)?;
                let combine = combiner(&op, Msg::cloneable::<T>);
                self.scan_msg(Msg::cloneable(value), &combine, tag)?
                    .into_value()
            },
        )
    }

    /// Every rank's `value`, in rank order, on every rank (mpi4py's
    /// `allgather`). Plain numbers and vectors of plain data are
    /// `MPI_Allgather(v)` on MPI; one number on threads and processes is a
    /// post per rank in memory they share; elsewhere recursive doubling.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let seen = par.run(|p: &dyn Parallelizer, ()| {
    ///     let all = p.allgather(format!("r{}", p.id())).unwrap();
    ///     p.gather(all.join(",")).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(seen.unwrap(), vec!["r0,r1,r2"; 3]);
    /// ```
    pub fn allgather<T: Data + Clone>(&self, value: T) -> Result<Vec<T>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Allgather, Contract::Check)? else {
            return Ok(vec![value]);
        };
        self.traced(Op::Allgather, |_| None, || self.allgather_here(value, tag))
    }

    /// `allgather` after its prologue.
    fn allgather_here<T: Data + Clone>(&self, mut value: T, tag: Tag) -> Result<Vec<T>> {
        if let Some(all) = self.small_values(&mut value, tag) {
            return all;
        }
        if let Some(native) = self.native_reduce() {
            if let Some(ops) = vec_ops::<Vec<T>>() {
                // A number (or plain element): one element per rank.
                let mine = vec![value];
                let mut all: Vec<T> = Vec::new();
                let got =
                    native.allgather_pod(ops.pod_type(), ops.bytes(&mine), ops.buf(&mut all), tag);
                return got.map(|_| all);
            }
            if let Some(ops) = vec_ops::<T>() {
                // A vector of plain data per rank, lengths may differ.
                let mut all = ops.empty();
                let got = native.allgather_pod(
                    ops.pod_type(),
                    ops.bytes(&value),
                    ops.buf(&mut *all),
                    tag,
                );
                let counts = got?;
                return Ok(ops
                    .split(all, &counts)
                    .into_iter()
                    .map(|part| *part.downcast::<T>().expect("the ops of T's elements"))
                    .collect());
            }
        }
        let concat = |a: Vec<T>, mut b: Vec<T>| {
            let mut a = a;
            a.append(&mut b);
            a
        };
        let combine = combiner(&concat, Msg::cloneable::<Vec<T>>);
        let all = self.allreduce_msg(Msg::cloneable(vec![value]), &combine, tag);
        all?.into_value()
    }

    /// The native reduction of `value` in place, if the backend has one,
    /// `op` is built in and `value` is a number or a vector of numbers;
    /// `None` otherwise (the caller goes through messages).
    fn native_reduction<T: 'static>(
        &self,
        value: &mut T,
        op: Option<Reduce>,
        reach: Reach,
        tag: Tag,
    ) -> Option<Result<()>> {
        let (op, native) = (op?, self.native_reduce()?);
        let (ty, shape) = numeric::<T>()?;
        let bytes = numeric_bytes(value)?;
        Some((|| {
            if shape == Shape::Vector {
                self.same_lengths(Some(native), ty.elements(bytes.len()), tag)?;
            }
            native.reduce_pod(ty, op, bytes, reach, tag)
        })())
    }

    /// Every rank's `value`, in rank order, through the backend's small
    /// exchange ([`Parallelizer::exchange_small`]: on threads and
    /// processes, posts in memory they share instead of messages), for the reductions and the
    /// all-gather of one number. `None` for anything but a number, or on a
    /// backend without one.
    fn small_values<T: 'static>(&self, value: &mut T, tag: Tag) -> Option<Result<Vec<T>>> {
        let (ty, Shape::Scalar) = numeric::<T>()? else {
            return None;
        };
        let mut all = Vec::with_capacity(self.nprocs());
        let mut push = |_: usize, bytes: &[u8]| -> Result<()> {
            all.push(numeric_from_bytes::<T>(bytes).expect("a number of T's size (checked)"));
            Ok(())
        };
        let done = self.exchange_small(ty, numeric_bytes(value)?, tag, &mut push)?;
        Some(done.map(|()| all))
    }

    /// Before a built-in element-wise reduction through messages: the same
    /// check of the vectors' lengths as the native one makes, so that a
    /// wrong length is an error on every rank, not a failure half-way.
    fn check_lengths<T: 'static>(&self, value: &T, op: Option<Reduce>, tag: Tag) -> Result<()> {
        match (op, vec_len(value)) {
            (Some(_), Some(len)) => self.same_lengths(None, len, tag),
            _ => Ok(()),
        }
    }

    /// An error on every rank unless every rank's vector has `len`
    /// elements (an element-wise reduction needs it): one small all-reduce
    /// of the lengths, native when the backend has it.
    fn same_lengths(&self, native: Option<&dyn NativeReduce>, len: usize, tag: Tag) -> Result<()> {
        let main = if self.on_main() { len } else { 0 };
        let mut words = [len as u64, !(len as u64), main as u64];
        match native {
            Some(native) => {
                let bytes = bytemuck::cast_slice_mut(&mut words);
                native.reduce_pod(PodType::of::<u64>(), Reduce::Max, bytes, Reach::All, tag)?;
            }
            None => {
                let combine = combiner(&Reduce::Max, Msg::cloneable::<Vec<u64>>);
                let all = self.allreduce_msg(Msg::cloneable(words.to_vec()), &combine, tag)?;
                words.copy_from_slice(&all.into_value::<Vec<u64>>()?);
            }
        }
        let (max, min, main) = (words[0], !words[1], words[2] as usize);
        if max == min {
            return Ok(());
        }
        let op = tag.op();
        if len != main {
            return Err(Error::Length {
                op,
                rank: self.id(),
                expected: main,
                actual: len,
            });
        }
        Err(Error::ContractViolation(format!(
            "{op}: the ranks' vectors have {min} to {max} elements; every rank must pass main's \
             length ({main})"
        )))
    }
}

/// `values` (one per rank, in rank order; at least one) combined with `op`
/// in that order.
fn fold<T, O: ReduceOp<T> + ?Sized>(op: &O, values: Vec<T>) -> Result<T> {
    let mut values = values.into_iter();
    let first = values.next().expect("a value per rank, this rank's too");
    values.try_fold(first, |a, b| op.combine(a, b))
}

/// An error unless a built-in op (if `op` is one) is defined on `T`.
fn builtin_defined<T: 'static>(op: Option<Reduce>) -> Result<()> {
    op.map_or(Ok(()), crate::reduce::check::<T>)
}

/// The message-level combine of `op` on values of `T`, each result
/// wrapped by `wrap`.
fn combiner<'a, T: Data, O: ReduceOp<T> + ?Sized>(
    op: &'a O,
    wrap: fn(T) -> Msg,
) -> impl Fn(Msg, Msg) -> Result<Msg> + Sync + 'a {
    move |a: Msg, b: Msg| {
        let (a, b) = (a.into_value::<T>()?, b.into_value::<T>()?);
        Ok(wrap(op.combine(a, b)?))
    }
}
