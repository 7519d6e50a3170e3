//! Plain data on the caller's memory: `broadcast_into`, `scatter_into`,
//! `gather_into`, `send_slice` and `receive_into` (mpi4py's `Bcast(buf)`,
//! `Scatterv`, `Gatherv`, `Send`, `Recv`), and the plain-data plane that
//! they, the `*_pod` calls and the generic calls on vectors of plain data
//! use: the backend's [`NativePod`], or messages of raw bytes.

use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::native::NativePod;
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;
use crate::plain::{Fixed, PlainBuf, PodType};
use crate::split::chunk_sizes;

use super::{Contract, Pairing, main_data};

impl dyn Parallelizer {
    /// Broadcast in place (mpi4py's `Bcast(buf)`): main's `buf` is copied
    /// into every worker's `buf`. Every rank passes a buffer of the same
    /// length; a worker whose length differs gets [`Error::Length`] naming
    /// both (after taking its part, so no rank waits for it).
    ///
    /// Nothing is allocated and main's data is not copied before it
    /// leaves: MPI broadcasts straight from and into the buffers; threads
    /// copy from main's buffer into each worker's. Reusing the buffers
    /// across calls costs no allocation at all (see [`plain_buffer`] for
    /// large ones).
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let sums = par.run(|p: &dyn Parallelizer, ()| {
    ///     let mut buf = vec![0.0f64; 4];
    ///     if p.on_main() { buf.copy_from_slice(&[1.0, 2.0, 3.0, 4.0]); }
    ///     p.broadcast_into(&mut buf).unwrap();
    ///     p.gather(buf.iter().sum::<f64>()).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(sums, Some(vec![10.0; 3]));
    /// ```
    ///
    /// [`plain_buffer`]: crate::plain_buffer
    pub fn broadcast_into<T: bytemuck::Pod>(&self, buf: &mut [T]) -> Result<()> {
        let Pairing::Ranks(tag) = self.prologue(Op::Broadcast, Contract::Check)? else {
            return Ok(());
        };
        let ty = PodType::of::<T>();
        let bytes = std::mem::size_of_val(buf);
        let mut fixed = self.fixed(buf, Op::Broadcast);
        self.traced(
            Op::Broadcast,
            |()| Some(bytes),
            || self.with_plain(|p| p.broadcast_pod(ty, &mut fixed, tag)),
        )
    }

    /// Scatter into the caller's vector (mpi4py's `Scatterv`): main passes
    /// `Some(data)`, workers `None`; every rank's `mine` is set to its chunk
    /// of main's data, split as `scatter` splits
    /// ([`chunk_sizes`](crate::chunk_sizes)). `mine` keeps its allocation
    /// when it is large enough, so a loop that reuses it allocates nothing.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let lens = par.run(|p: &dyn Parallelizer, ()| {
    ///     let data: Vec<u32> = (0..10).collect();
    ///     let mut mine = Vec::new();
    ///     p.scatter_into(p.on_main().then_some(&data[..]), &mut mine).unwrap();
    ///     p.gather(mine).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(lens.unwrap(), [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
    /// ```
    pub fn scatter_into<T: bytemuck::Pod>(
        &self,
        data: Option<&[T]>,
        mine: &mut Vec<T>,
    ) -> Result<()> {
        let Pairing::Ranks(tag) = self.prologue(Op::Scatter, Contract::Check)? else {
            let data = main_data(data, Op::Scatter)?;
            mine.clear();
            mine.extend_from_slice(data);
            return Ok(());
        };
        let send = self.main_part(data, Op::Scatter)?;
        let ty = PodType::of::<T>();
        let send = send.map(bytemuck::cast_slice::<T, u8>);
        self.traced(
            Op::Scatter,
            |&bytes| Some(bytes),
            || {
                self.with_plain(|p| p.scatter_pod(ty, send, Some(&mut *mine), tag))?;
                Ok(std::mem::size_of_val(&mine[..]))
            },
        )
        .map(drop)
    }

    /// Gather into the caller's vector (mpi4py's `Gatherv`): every rank's
    /// `mine`, back to back in rank order, into main's `all` (resized to
    /// the total, keeping its allocation when it is large enough); main
    /// passes `Some(all)`, workers `None`. Ranks may pass different
    /// lengths.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let all = par.run(|p: &dyn Parallelizer, ()| {
    ///     let mine = vec![p.id() as u8; p.id() + 1];
    ///     let mut all = Vec::new();
    ///     p.gather_into(&mine, p.on_main().then_some(&mut all)).unwrap();
    ///     all
    /// }, ()).unwrap();
    /// assert_eq!(all, [0, 1, 1, 2, 2, 2]);
    /// ```
    pub fn gather_into<T: bytemuck::Pod>(
        &self,
        mine: &[T],
        all: Option<&mut Vec<T>>,
    ) -> Result<()> {
        let Pairing::Ranks(tag) = self.prologue(Op::Gather, Contract::Check)? else {
            let all = main_data(all, Op::Gather)?;
            all.clear();
            all.extend_from_slice(mine);
            return Ok(());
        };
        let all = self.main_part(all, Op::Gather)?;
        let ty = PodType::of::<T>();
        let send = bytemuck::cast_slice(mine);
        self.traced(
            Op::Gather,
            |counts: &Vec<usize>| Some(ty.bytes(counts.iter().sum::<usize>().max(mine.len()))),
            || {
                self.with_plain(|p| {
                    p.gather_pod(ty, send, all.map(|v| v as &mut dyn PlainBuf), true, tag)
                })
            },
        )
        .map(drop)
    }

    /// Sends the caller's slice to rank `to` (mpi4py's `Send`); the data is
    /// not copied into a message first on MPI (`MPI_Send` from the slice),
    /// and from 64 KiB on threads the receiver copies it straight out of
    /// `data` while the sender waits, as `MPI_Send` waits for a large
    /// message's receive. `receive_into`, `receive_pod` or `receive` of a
    /// `Vec` of the same type receives it.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:2").unwrap();
    /// let got = par.run(|p: &dyn Parallelizer, ()| {
    ///     let mut buf = [0i64; 3];
    ///     if p.on_main() { p.send_slice(&[7i64, 8, 9], 1).unwrap(); }
    ///     else { p.receive_into(&mut buf, 0).unwrap(); }
    ///     p.gather(buf).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(got.unwrap()[1], [7, 8, 9]);
    /// ```
    pub fn send_slice<T: bytemuck::Pod>(&self, data: &[T], to: usize) -> Result<()> {
        let tag = self.point_to_point(Op::Send, to)?;
        let ty = PodType::of::<T>();
        self.traced(
            Op::Send,
            |()| Some(std::mem::size_of_val(data)),
            || self.with_plain(|p| p.send_pod(ty, bytemuck::cast_slice(data), to, tag)),
        )
    }

    /// Receives the next message from rank `from` into the caller's
    /// buffer (mpi4py's `Recv(buf)`): plain data of the same type, sent by
    /// `send_slice`, `send_pod` or `send` of a `Vec`. A message of another
    /// length is [`Error::Length`] naming both.
    pub fn receive_into<T: bytemuck::Pod>(&self, buf: &mut [T], from: usize) -> Result<()> {
        let tag = self.point_to_point(Op::Receive, from)?;
        let ty = PodType::of::<T>();
        let bytes = std::mem::size_of_val(buf);
        let mut fixed = self.fixed(buf, Op::Receive);
        self.traced(
            Op::Receive,
            |()| Some(bytes),
            || self.with_plain(|p| p.recv_pod(ty, &mut fixed, from, tag)),
        )
    }

    /// `buf` as a buffer of fixed length for `op` on this rank.
    fn fixed<'a, T: bytemuck::Pod>(&self, buf: &'a mut [T], op: Op) -> Fixed<'a> {
        Fixed {
            bytes: bytemuck::cast_slice_mut(buf),
            size: std::mem::size_of::<T>(),
            op,
            rank: self.id(),
        }
    }

    /// Main's part of a call (which main must pass), `None` on workers,
    /// which must pass `None`.
    pub(super) fn main_part<T>(&self, data: Option<T>, op: Op) -> Result<Option<T>> {
        match (self.on_main(), data) {
            (true, data) => main_data(data, op).map(Some),
            (false, None) => Ok(None),
            (false, Some(_)) => Err(Error::ContractViolation(format!(
                "rank {} passed Some(..) to {op}; only main passes its data, workers pass None",
                self.id()
            ))),
        }
    }

    /// Runs `f` on the backend's plain-data plane: its [`NativePod`], or
    /// messages of raw bytes.
    pub(super) fn with_plain<R>(&self, f: impl FnOnce(&dyn NativePod) -> R) -> R {
        match self.native_pod() {
            Some(native) => f(native),
            None => f(&ByMessage(self)),
        }
    }
}

/// The plain-data plane of a backend without a native one: plain data
/// travels as messages of its raw bytes through the backend's message
/// calls (copied into the message; the receiver copies it out).
struct ByMessage<'a>(&'a dyn Parallelizer);

/// A message of the raw bytes of plain data of type `ty`.
fn bytes_msg(ty: PodType, bytes: &[u8]) -> Msg {
    Msg::from_bytes(Encoding::Pod, bytes.to_vec()).sent_as(ty.vec_name)
}

impl NativePod for ByMessage<'_> {
    fn broadcast_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, tag: Tag) -> Result<()> {
        let par = self.0;
        if par.on_main() {
            let msg = bytes_msg(ty, buf.bytes());
            return par.broadcast_msg(Some(msg), tag).map(drop);
        }
        par.broadcast_msg(None, tag)?.copy_into(ty, buf)
    }

    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        recv: Option<&mut dyn PlainBuf>,
        tag: Tag,
    ) -> Result<()> {
        let par = self.0;
        let Some(send) = send.filter(|_| par.on_main()) else {
            let msg = par.scatter_msg(None, tag)?;
            let recv = recv.ok_or_else(|| missing_buffer(Op::Scatter))?;
            return msg.copy_into(ty, recv);
        };
        let counts = chunk_sizes(ty.elements(send.len()), par.nprocs());
        let mut chunks = Vec::with_capacity(counts.len());
        let mut at = 0;
        for (rank, &count) in counts.iter().enumerate() {
            let bytes = &send[at..at + ty.bytes(count)];
            // Main's own chunk is not sent: an empty stand-in.
            chunks.push(bytes_msg(ty, if rank == 0 { &[] } else { bytes }));
            at += ty.bytes(count);
        }
        par.scatter_msg(Some(chunks), tag)?;
        if let Some(recv) = recv {
            recv.fit(counts[0])?
                .copy_from_slice(&send[..ty.bytes(counts[0])]);
        }
        Ok(())
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        recv: Option<&mut dyn PlainBuf>,
        own: bool,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        let par = self.0;
        let mine = bytes_msg(ty, if par.on_main() { &[] } else { send });
        let Some(all) = par.gather_msg(mine, tag)? else {
            return Ok(Vec::new());
        };
        let recv = recv.ok_or_else(|| missing_buffer(Op::Gather))?;
        let mut parts = vec![send];
        for msg in &all[1..] {
            parts.push(msg.plain_bytes(ty)?);
        }
        let counts: Vec<usize> = parts.iter().map(|p| ty.elements(p.len())).collect();
        let skip = usize::from(!own);
        let total = counts[skip..].iter().sum();
        let out = recv.fit(total)?;
        let mut at = 0;
        for part in &parts[skip..] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Ok(counts)
    }

    fn send_pod(&self, ty: PodType, buf: &[u8], to: usize, tag: Tag) -> Result<()> {
        self.0.send_msg(bytes_msg(ty, buf), to, tag)
    }

    fn recv_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, from: usize, tag: Tag) -> Result<()> {
        self.0.recv_msg(from, tag)?.copy_into(ty, buf)
    }
}

/// A rank that receives passed no buffer.
fn missing_buffer(op: Op) -> Error {
    Error::ContractViolation(format!("{op}: this rank receives but passed no buffer"))
}
