//! Collectives: `broadcast`, `scatter`, `gather`, `wait`, and the plain-data
//! forms that move raw bytes (on MPI, native datatypes on the caller's
//! buffers).

use crate::error::Result;
use crate::msg::{Data, Msg};
use crate::op::Op;
use crate::parallelizer::{NativePod, Parallelizer, PodType};
use crate::split::{chunk_sizes, concat, split};

use super::{Contract, Pairing, all_bytes, main_data, msg_bytes};

impl dyn Parallelizer {
    /// Main's value on every rank. Main passes `Some`, workers `None`.
    /// `Clone` lets the threads backend hand each rank a copy without
    /// serializing.
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
        let msg = self.main_msg(value, Op::Broadcast, Msg::cloneable)?;
        self.traced(Op::Broadcast, msg_bytes, || self.broadcast_msg(msg, tag))?
            .into_value()
    }

    /// Splits main's vector into contiguous chunks, one per rank (the first
    /// `n % nprocs` ranks get one more item), and returns this rank's chunk.
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
        let chunks = self.main_chunks(data, Msg::new)?;
        self.traced(Op::Scatter, msg_bytes, || self.scatter_msg(chunks, tag))?
            .into_value()
    }

    /// Every rank's value on main, main's first, then ranks 1.. in order;
    /// `None` on workers.
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
        self.traced(Op::Gather, all_bytes, || {
            self.gather_msg(Msg::new(value), tag)
        })?
        .map(|all| all.into_iter().map(Msg::into_value).collect())
        .transpose()
    }

    /// `broadcast` of plain data as raw bytes, no codec
    /// (mpi4py's `Bcast`).
    pub fn broadcast_pod<T: bytemuck::Pod + Send>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        let Pairing::Ranks(tag) = self.prologue(Op::Broadcast, Contract::Check)? else {
            return main_data(data, Op::Broadcast);
        };
        if let Some(native) = self.native_pod() {
            let data = self.main_only(data, Op::Broadcast)?;
            return self.traced(
                Op::Broadcast,
                |v: &Vec<T>| pod_bytes(v),
                || native_broadcast(native, data),
            );
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
            return self.traced(
                Op::Scatter,
                |v: &Vec<T>| pod_bytes(v),
                || native_scatter(native, self.id(), self.nprocs(), data),
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
            let mine = std::mem::size_of_val(&data[..]);
            return self.traced(
                Op::Gather,
                |all: &Option<Vec<T>>| all.as_deref().map_or(Some(mine), pod_bytes),
                || native_gather(native, self.on_main(), data),
            );
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
}

/// The bytes of plain data.
fn pod_bytes<T: bytemuck::Pod>(data: &[T]) -> Option<usize> {
    Some(std::mem::size_of_val(data))
}

/// `broadcast_pod` on a backend with native plain-data collectives: the
/// length, then the data straight into a buffer of `T`.
fn native_broadcast<T: bytemuck::Pod + Send>(
    native: &dyn NativePod,
    data: Option<Vec<T>>,
) -> Result<Vec<T>> {
    let mut len = [data.as_ref().map_or(0, |d| d.len()) as u64];
    native.broadcast_pod(PodType::of::<u64>(), bytemuck::cast_slice_mut(&mut len))?;
    let mut buf = data.unwrap_or_else(|| vec![T::zeroed(); len[0] as usize]);
    native.broadcast_pod(PodType::of::<T>(), bytemuck::cast_slice_mut(&mut buf))?;
    Ok(buf)
}

/// `scatter_pod` on a backend with native plain-data collectives: the
/// length, then one scatter-v of the chunks of [`chunk_sizes`].
fn native_scatter<T: bytemuck::Pod + Send>(
    native: &dyn NativePod,
    id: usize,
    nprocs: usize,
    data: Option<Vec<T>>,
) -> Result<Vec<T>> {
    let mut len = [data.as_ref().map_or(0, |d| d.len()) as u64];
    native.broadcast_pod(PodType::of::<u64>(), bytemuck::cast_slice_mut(&mut len))?;
    let counts = chunk_sizes(len[0] as usize, nprocs);
    let mut mine = vec![T::zeroed(); counts[id]];
    native.scatter_pod(
        PodType::of::<T>(),
        data.as_deref().map(bytemuck::cast_slice),
        &counts,
        bytemuck::cast_slice_mut(&mut mine),
    )?;
    Ok(mine)
}

/// `gather_pod` on a backend with native plain-data collectives: every
/// rank's length, then one gather-v into main's buffer.
fn native_gather<T: bytemuck::Pod + Send>(
    native: &dyn NativePod,
    on_main: bool,
    data: Vec<T>,
) -> Result<Option<Vec<T>>> {
    let counts = native.all_counts(data.len())?;
    let mut all = on_main.then(|| vec![T::zeroed(); counts.iter().sum()]);
    native.gather_pod(
        PodType::of::<T>(),
        bytemuck::cast_slice(&data),
        &counts,
        all.as_deref_mut().map(bytemuck::cast_slice_mut),
    )?;
    Ok(all)
}
