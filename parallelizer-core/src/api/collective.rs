//! Collectives: `broadcast`, `scatter`, `gather`, `wait`, and the plain-data
//! forms that move raw bytes (on MPI, native datatypes on the caller's
//! buffers). Vectors of plain data ([`is_plain`](crate::is_plain)) take the
//! plain-data path of the `*_pod` calls by themselves.

use std::any::Any;

use crate::error::Result;
use crate::msg::{Data, Msg};
use crate::op::Op;
use crate::parallelizer::{NativePod, Parallelizer, PodType};
use crate::plain::{PlainBuf, PlainOps, vec_ops};
use crate::split::{chunk_sizes, concat, split};

use super::{Contract, Pairing, all_bytes, main_data, msg_bytes};

impl dyn Parallelizer {
    /// Main's value on every rank. Main passes `Some`, workers `None`.
    /// `Clone` lets the threads backend hand each rank a copy without
    /// serializing.
    ///
    /// A `Vec` of plain data (`Vec<f64>`, ...) travels as its raw bytes in
    /// the backend's native broadcast (`MPI_Bcast` of `MPI_DOUBLE`), as
    /// with `broadcast_pod`.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let sum = par.run(|p: &dyn Parallelizer, ()| {
    ///     let v = p.broadcast(p.on_main().then(|| vec![1, 2, 3])).unwrap();
    ///     p.gather(v.iter().sum::<i32>()).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(sum, Some(vec![6; 4]));
    /// ```
    pub fn broadcast<T: Data + Clone>(&self, value: Option<T>) -> Result<T> {
        self.broadcast_as(value, Contract::Check)
    }

    pub(super) fn broadcast_as<T: Data + Clone>(
        &self,
        value: Option<T>,
        contract: Contract,
    ) -> Result<T> {
        let Pairing::Ranks(tag) = self.prologue(Op::Broadcast, contract)? else {
            return main_data(value, Op::Broadcast);
        };
        if let (Some(ops), Some(native)) = (vec_ops::<T>(), self.native_pod()) {
            let mut v = self.main_or_empty(value, ops, Op::Broadcast)?;
            let ty = ops.pod_type();
            self.traced(
                Op::Broadcast,
                |&bytes| Some(bytes),
                || {
                    let buf = ops.buf(&mut v);
                    native.broadcast_pod(ty, buf, tag)?;
                    Ok(buf.bytes().len())
                },
            )?;
            return Ok(v);
        }
        let msg = self.main_msg(value, Op::Broadcast, Msg::cloneable)?;
        self.traced(Op::Broadcast, msg_bytes, || self.broadcast_msg(msg, tag))?
            .into_value()
    }

    /// Splits main's vector into contiguous chunks, one per rank (the first
    /// `n % nprocs` ranks get one more item), and returns this rank's chunk.
    /// Vectors of plain data take the plain path (as `scatter_pod`); main's
    /// chunk is then the start of its own vector, not a copy.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let lens = par.run(|p: &dyn Parallelizer, ()| {
    ///     let chunk = p.scatter(p.on_main().then(|| (0..10).collect::<Vec<i32>>())).unwrap();
    ///     p.gather(chunk.len()).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(lens, Some(vec![3, 3, 2, 2]));
    /// ```
    pub fn scatter<T: Data>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        self.scatter_as(data, Contract::Check)
    }

    pub(super) fn scatter_as<T: Data>(
        &self,
        data: Option<Vec<T>>,
        contract: Contract,
    ) -> Result<Vec<T>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Scatter, contract)? else {
            return main_data(data, Op::Scatter);
        };
        if let (Some(ops), Some(native)) = (vec_ops::<Vec<T>>(), self.native_pod()) {
            let data = self.main_only(data, Op::Scatter)?;
            return self.traced(
                Op::Scatter,
                |v: &Vec<T>| Some(ops.bytes(v).len()),
                || self.plain_scatter(native, ops, data, tag),
            );
        }
        let chunks = self.main_chunks(data, Msg::new)?;
        self.traced(Op::Scatter, msg_bytes, || self.scatter_msg(chunks, tag))?
            .into_value()
    }

    /// Every rank's value on main, main's first, then ranks 1.. in order;
    /// `None` on workers. Vectors of plain data travel as raw bytes (on
    /// MPI, one native gather-v into one buffer).
    pub fn gather<T: Data>(&self, value: T) -> Result<Option<Vec<T>>> {
        self.gather_as(value, Contract::Check)
    }

    pub(super) fn gather_as<T: Data>(
        &self,
        value: T,
        contract: Contract,
    ) -> Result<Option<Vec<T>>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Gather, contract)? else {
            return Ok(Some(vec![value]));
        };
        // In one process the values move as they are; elsewhere plain
        // vectors go through the native gather.
        let native = self.native_pod().filter(|n| !n.in_process());
        if let (Some(ops), Some(native)) = (vec_ops::<T>(), native) {
            let mine = ops.bytes(&value).len();
            return self.traced(
                Op::Gather,
                |all: &Option<Vec<T>>| match all {
                    Some(all) => all.iter().map(|v| Some(ops.bytes(v).len())).sum(),
                    None => Some(mine),
                },
                || self.plain_gather(native, ops, value, tag),
            );
        }
        self.traced(Op::Gather, all_bytes, || {
            self.gather_msg(Msg::new(value), tag)
        })?
        .map(|all| all.into_iter().map(Msg::into_value).collect())
        .transpose()
    }

    /// `broadcast` of plain data as raw bytes, no codec
    /// (mpi4py's `Bcast`); workers' vectors are allocated for what arrives
    /// (`broadcast_into` reuses the caller's).
    pub fn broadcast_pod<T: bytemuck::Pod + Send>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Broadcast, Contract::Check)? else {
            return main_data(data, Op::Broadcast);
        };
        if let Some(native) = self.native_pod() {
            let mut v = self.main_only(data, Op::Broadcast)?.unwrap_or_default();
            let sent = self.traced(
                Op::Broadcast,
                |&bytes| bytes,
                || {
                    native.broadcast_pod(PodType::of::<T>(), &mut v, tag)?;
                    Ok(pod_bytes(&v))
                },
            );
            return sent.map(|_| v);
        }
        let msg = self.main_msg(data, Op::Broadcast, Msg::pod)?;
        self.traced(Op::Broadcast, msg_bytes, || self.broadcast_msg(msg, tag))?
            .into_pod()
    }

    /// `scatter` of plain data as raw bytes (mpi4py's `Scatterv`).
    pub fn scatter_pod<T: bytemuck::Pod + Send>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Scatter, Contract::Check)? else {
            return main_data(data, Op::Scatter);
        };
        if let Some(native) = self.native_pod() {
            let data = self.main_only(data, Op::Scatter)?;
            let ops: &dyn PlainOps = <T as crate::plain::HasOps>::OPS;
            return self.traced(
                Op::Scatter,
                |v: &Vec<T>| pod_bytes(v),
                || self.plain_scatter(native, ops, data, tag),
            );
        }
        let chunks = self.main_chunks(data, Msg::pod)?;
        self.traced(Op::Scatter, msg_bytes, || self.scatter_msg(chunks, tag))?
            .into_pod()
    }

    /// Every rank's plain data concatenated in rank order on main, `None` on
    /// workers (mpi4py's `Gatherv`); the inverse of `scatter_pod`.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let back = par.run(|p: &dyn Parallelizer, ()| {
    ///     let data = p.on_main().then(|| (0..10).map(f64::from).collect::<Vec<_>>());
    ///     let mine: Vec<f64> = p.scatter_pod(data).unwrap().iter().map(|x| x * x).collect();
    ///     p.gather_pod(mine).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(back.unwrap()[9], 81.0);
    /// ```
    pub fn gather_pod<T: bytemuck::Pod + Send>(&self, data: Vec<T>) -> Result<Option<Vec<T>>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Gather, Contract::Check)? else {
            return Ok(Some(data));
        };
        if let Some(native) = self.native_pod() {
            let ty = PodType::of::<T>();
            let mut all = self.on_main().then(Vec::<T>::new);
            let recv = all.as_mut().map(|v| v as &mut dyn crate::plain::PlainBuf);
            let mine = std::mem::size_of_val(&data[..]);
            let sent = self.traced(
                Op::Gather,
                |_: &Vec<usize>| Some(mine),
                || native.gather_pod(ty, bytemuck::cast_slice(&data), recv, true, tag),
            );
            return sent.map(|_| all);
        }
        let parts = self
            .traced(Op::Gather, all_bytes, || {
                self.gather_msg(Msg::pod(data), tag)
            })?
            .map(|all| {
                all.into_iter()
                    .map(Msg::into_pod)
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        Ok(parts.map(concat))
    }

    /// `broadcast` as one step of the call `op` (`share`, ...): not counted
    /// against the contract, and errors name `op`.
    pub(crate) fn broadcast_internal<T: Data + Clone>(
        &self,
        op: Op,
        value: Option<T>,
    ) -> Result<T> {
        let Pairing::Ranks(tag) = self.prologue(op, Contract::Skip)? else {
            return main_data(value, op);
        };
        let msg = self.main_msg(value, op, Msg::cloneable)?;
        self.traced(op, msg_bytes, || self.broadcast_msg(msg, tag))?
            .into_value()
    }

    /// A barrier as one step of the call `op`.
    pub(crate) fn wait_internal(&self, op: Op) -> Result<()> {
        let Pairing::Ranks(tag) = self.prologue(op, Contract::Skip)? else {
            return Ok(());
        };
        self.traced(op, |_| None, || self.barrier(tag))
    }

    /// Blocks until every rank has called `wait` (a barrier).
    pub fn wait(&self) -> Result<()> {
        let Pairing::Ranks(tag) = self.prologue(Op::Wait, Contract::Check)? else {
            return Ok(());
        };
        self.traced(Op::Wait, |_| None, || self.barrier(tag))
    }

    /// Main's data (which main must pass), `None` on workers.
    fn main_only<T>(&self, data: Option<T>, op: Op) -> Result<Option<T>> {
        if self.on_main() {
            main_data(data, op).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Main's vector of plain data (which main must pass), an empty one on
    /// workers (filled by the call).
    fn main_or_empty<T: 'static>(&self, data: Option<T>, ops: &dyn PlainOps, op: Op) -> Result<T> {
        match self.main_only(data, op)? {
            Some(v) => Ok(v),
            None => Ok(*ops
                .empty()
                .downcast::<T>()
                .expect("the ops of T's elements")),
        }
    }

    /// Main's data as the message `wrap` makes, `None` on workers.
    fn main_msg<T>(&self, data: Option<T>, op: Op, wrap: fn(T) -> Msg) -> Result<Option<Msg>> {
        Ok(self.main_only(data, op)?.map(wrap))
    }

    /// Main's vector split into one message per rank ([`chunk_sizes`]),
    /// `None` on workers.
    fn main_chunks<T>(
        &self,
        data: Option<Vec<T>>,
        wrap: fn(Vec<T>) -> Msg,
    ) -> Result<Option<Vec<Msg>>> {
        let nprocs = self.nprocs();
        Ok(self
            .main_only(data, Op::Scatter)?
            .map(|data| split(data, nprocs).into_iter().map(wrap).collect()))
    }

    /// Scatter of a vector of plain data through the native plane: main's
    /// chunk stays in place (its vector, truncated); workers receive into
    /// fresh vectors.
    fn plain_scatter<T: 'static>(
        &self,
        native: &dyn NativePod,
        ops: &dyn PlainOps,
        data: Option<Vec<T>>,
        tag: crate::op::Tag,
    ) -> Result<Vec<T>> {
        let ty = ops.pod_type();
        match data {
            Some(mut data) => {
                native.scatter_pod(ty, Some(ops.bytes(&data)), None, tag)?;
                data.truncate(chunk_sizes(data.len(), self.nprocs())[0]);
                Ok(data)
            }
            None => {
                let mut mine: Vec<T> = Vec::new();
                native.scatter_pod(ty, None, Some(ops.buf(&mut mine)), tag)?;
                Ok(mine)
            }
        }
    }

    /// Gather of vectors of plain data through the native plane, each
    /// worker's into a vector of its own on main (main's own is not
    /// copied).
    fn plain_gather<T: 'static>(
        &self,
        native: &dyn NativePod,
        ops: &dyn PlainOps,
        value: T,
        tag: crate::op::Tag,
    ) -> Result<Option<Vec<T>>> {
        let ty = ops.pod_type();
        if !self.on_main() {
            native.gather_pod_parts(ty, ops.bytes(&value), None, tag)?;
            return Ok(None);
        }
        // Each worker's part straight into a vector of its own; main's own
        // value is the first, as it is.
        let mut others: Vec<Box<dyn Any + Send>> =
            (1..self.nprocs()).map(|_| ops.empty()).collect();
        let mut bufs: Vec<&mut dyn PlainBuf> =
            others.iter_mut().map(|v| ops.buf(&mut **v)).collect();
        native.gather_pod_parts(ty, ops.bytes(&value), Some(&mut bufs), tag)?;
        let mut all = Vec::with_capacity(self.nprocs());
        all.push(value);
        for part in others {
            all.push(*part.downcast::<T>().expect("the ops of T's elements"));
        }
        Ok(Some(all))
    }
}

/// The bytes of plain data, for the trace of a call.
fn pod_bytes<T: bytemuck::Pod>(data: &[T]) -> Option<usize> {
    Some(std::mem::size_of_val(data))
}
