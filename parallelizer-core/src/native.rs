//! The plain-data plane a backend may offer: collectives and messages of
//! plain data on the caller's memory ([`NativePod`]) and reductions with
//! built-in ops ([`NativeReduce`]). The typed API uses them when the
//! backend has them (MPI: its datatypes and collectives; the region
//! protocol of `link`: lent or copied bytes) and messages otherwise.

use crate::error::Result;
use crate::msg::Msg;
use crate::op::Tag;
use crate::plain::{PlainBuf, PodType};
use crate::reduce::Reduce;

/// Collectives and messages of plain data in caller-owned buffers, with no
/// serialization (MPI's `Bcast`, `Scatterv`, `Gatherv`, `Send`, `Recv` on
/// native datatypes). Buffers are the raw bytes of `[T]` for the `T` that
/// `ty` describes; counts are in elements. Every rank calls each
/// collective, in the same order, with the call's `tag`.
///
/// A rank whose buffer has a fixed length that does not fit what arrives
/// ([`PlainBuf::fit`] fails) still takes its part in the call, then returns
/// that error: no other rank waits for it.
pub trait NativePod: Send + Sync {
    /// Whether the ranks share this process's memory: the typed API then
    /// moves owned vectors (`gather(Vec<f64>)`) as they are, through
    /// messages, instead of copying them through these calls.
    fn in_process(&self) -> bool {
        false
    }

    /// Broadcast from main: main's `buf.bytes()` into every worker's
    /// `buf`, which each worker fits to main's length first.
    fn broadcast_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, tag: Tag) -> Result<()>;

    /// Scatter from main: main passes `send`, which is split into the
    /// chunks of [`chunk_sizes`](crate::chunk_sizes) (workers pass `None`);
    /// every rank fits its `recv` to its chunk and receives it. Main may
    /// pass `recv: None` to leave its chunk where it is, at the start of
    /// `send` (MPI's `MPI_IN_PLACE`).
    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        recv: Option<&mut dyn PlainBuf>,
        tag: Tag,
    ) -> Result<()>;

    /// Gather to main: every rank's `send`, back to back in rank order,
    /// into main's `recv` (fitted to their total; workers pass `None`).
    /// With `own: false` main's own `send` is left out of `recv` (it stays
    /// where it is). Returns every rank's count on main, nothing on
    /// workers.
    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        recv: Option<&mut dyn PlainBuf>,
        own: bool,
        tag: Tag,
    ) -> Result<Vec<usize>>;

    /// Gather to main into one buffer per worker: rank `r`'s `send` into
    /// main's `parts[r - 1]`, fitted to its length (workers pass `None`;
    /// main's own `send` stays where it is). Returns every rank's count on
    /// main, nothing on workers. A generic `gather` of vectors needs one
    /// vector per rank: receiving each part into its own spares the copy
    /// out of one buffer into fresh memory. The default gathers into one
    /// buffer with [`gather_pod`](Self::gather_pod) and copies each part
    /// out of it.
    fn gather_pod_parts(
        &self,
        ty: PodType,
        send: &[u8],
        parts: Option<&mut [&mut dyn PlainBuf]>,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        let Some(parts) = parts else {
            return self.gather_pod(ty, send, None, false, tag);
        };
        let mut all = Scratch {
            bytes: Vec::new(),
            ty,
        };
        let counts = self.gather_pod(ty, send, Some(&mut all), false, tag)?;
        check_parts(parts.len(), counts.len() - 1)?;
        let all = all.bytes;
        let mut at = 0;
        for (part, &count) in parts.iter_mut().zip(&counts[1..]) {
            let len = ty.bytes(count);
            part.fit(count)?.copy_from_slice(&all[at..at + len]);
            at += len;
        }
        Ok(counts)
    }

    /// Whether main's end of [`gather_pod`](Self::gather_pod) also takes a
    /// worker's part that the worker sent as a message of its plain bytes
    /// (`send_msg` of a `Msg::pod`, the call's tag) instead of calling
    /// `gather_pod`. A static map's workers then send parts too small to be
    /// worth lending that way. The default says no.
    fn takes_parts_as_messages(&self) -> bool {
        false
    }

    /// Sends `buf` to rank `to` (a point-to-point message that `recv_pod`,
    /// or a typed `receive` of a `Vec` of the same type, receives).
    fn send_pod(&self, ty: PodType, buf: &[u8], to: usize, tag: Tag) -> Result<()>;

    /// Receives the next point-to-point message from `from` into `buf`,
    /// fitted to the message's length.
    fn recv_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, from: usize, tag: Tag) -> Result<()>;

    /// Lends `buf` to rank `to` as one message of the call `tag`, where
    /// `to` can read this rank's memory and `buf` is large: `to` copies
    /// the bytes straight out of it ([`take_lent`](Self::take_lent)), and
    /// this returns once it has (its acknowledgement, and anything else the
    /// loan takes, travel under `ack`, apart from the call's other
    /// messages). `Ok(false)`, with nothing sent, where it does not lend.
    /// A dynamic map's workers lend their results so on processes, which
    /// would otherwise stream through the rings and be copied twice more
    /// on main. The default never lends.
    fn lend_pod(&self, ty: PodType, buf: &[u8], to: usize, (tag, ack): (Tag, Tag)) -> Result<bool> {
        let _ = (ty, buf, to, tag, ack);
        Ok(false)
    }

    /// Main's end of a message from `from` that
    /// [`recv_any_msg`](crate::Parallelizer::recv_any_msg) returned: if it
    /// is a loan of [`lend_pod`](Self::lend_pod), copies the bytes into
    /// `buf` (fitted to them) and acknowledges under `ack` (`Ok(None)`);
    /// likewise for plain data whose bytes the receive left with their
    /// sender (MPI: the map receives them straight into `buf`); any other
    /// message comes back as it is. The default gives every message back.
    fn take_lent(
        &self,
        msg: Msg,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        from: usize,
        ack: Tag,
    ) -> Result<Option<Msg>> {
        let _ = (ty, buf, from, ack);
        Ok(Some(msg))
    }

    /// Posts the `len` bytes at `dst` for the next message from `from`
    /// under `tag` (a collective's tag, as `post_msg` sends under it) if
    /// it is plain data of exactly `len` bytes (MPI's `MPI_Irecv`): a
    /// transport that reads messages itself writes its payload straight
    /// there. The message still arrives, through
    /// [`recv_any_msg`](crate::Parallelizer::recv_any_msg), and
    /// [`Posted::claim`] says whether it is the one that landed. A
    /// dynamic map's main posts the slot of each worker's next results in
    /// the map's result so, which spares copying them out of a message
    /// buffer. `None` (the default) where nothing is posted.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` bytes, and nobody may read
    /// or write them, until the returned [`Posted`] is dropped (and its
    /// claimed message's bytes are there from the claim on).
    unsafe fn post_pod(
        &self,
        dst: *mut u8,
        len: usize,
        from: usize,
        tag: Tag,
    ) -> Option<Box<dyn Posted + '_>> {
        let _ = (dst, len, from, tag);
        None
    }
}

/// A receive posted on the caller's memory by [`NativePod::post_pod`],
/// withdrawn when dropped: from then on nothing is written there (a
/// message that landed and was not claimed keeps a copy of its bytes).
pub trait Posted {
    /// Whether `msg`, received from the posted rank, is the message that
    /// landed: its bytes are in the posted memory, and the message is
    /// taken (its own bytes are empty).
    fn claim(&self, msg: &Msg) -> bool;
}

/// That main passed [`NativePod::gather_pod_parts`] one buffer per worker.
pub(crate) fn check_parts(parts: usize, workers: usize) -> Result<()> {
    if parts == workers {
        return Ok(());
    }
    Err(crate::error::Error::ContractViolation(format!(
        "gather: main passed {parts} buffers for {workers} workers"
    )))
}

/// The raw bytes of any number of elements of `ty`: the scratch buffer of
/// [`NativePod::gather_pod_parts`]' default.
struct Scratch {
    bytes: Vec<u8>,
    ty: PodType,
}

impl PlainBuf for Scratch {
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn fit(&mut self, elements: usize) -> Result<&mut [u8]> {
        self.bytes.resize(self.ty.bytes(elements), 0);
        Ok(&mut self.bytes)
    }
}

/// Where a native reduction leaves its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// On main (`MPI_Reduce`); the workers' buffers are left as they were.
    Main,
    /// On every rank (`MPI_Allreduce`).
    All,
    /// Each rank's inclusive prefix (`MPI_Scan`).
    Prefix,
}

/// Reductions of plain numbers with built-in ops and all-gathers of plain
/// data, native to the backend (MPI's `MPI_Reduce`, `MPI_Allreduce`,
/// `MPI_Scan` with `MPI_SUM`, ..., `MPI_Allgatherv`). Every rank calls each
/// method, in the same order.
pub trait NativeReduce: Send + Sync {
    /// Combines every rank's `buf` element-wise with `op`, in place, as
    /// `reach` says. `ty` is a primitive number; every rank passes the same
    /// length (the caller checks).
    fn reduce_pod(
        &self,
        ty: PodType,
        op: Reduce,
        buf: &mut [u8],
        reach: Reach,
        tag: Tag,
    ) -> Result<()>;

    /// Every rank's `mine`, back to back in rank order, into every rank's
    /// `all` (fitted to their total). Returns every rank's count.
    fn allgather_pod(
        &self,
        ty: PodType,
        mine: &[u8],
        all: &mut dyn PlainBuf,
        tag: Tag,
    ) -> Result<Vec<usize>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Main's end of a gather whose workers sent `parts` (f64 values).
    struct Gathered(Vec<Vec<f64>>);

    impl NativePod for Gathered {
        fn broadcast_pod(&self, _: PodType, _: &mut dyn PlainBuf, _: Tag) -> Result<()> {
            unreachable!("only gathers")
        }
        fn scatter_pod(
            &self,
            _: PodType,
            _: Option<&[u8]>,
            _: Option<&mut dyn PlainBuf>,
            _: Tag,
        ) -> Result<()> {
            unreachable!("only gathers")
        }
        fn gather_pod(
            &self,
            ty: PodType,
            send: &[u8],
            recv: Option<&mut dyn PlainBuf>,
            own: bool,
            _: Tag,
        ) -> Result<Vec<usize>> {
            assert!(!own, "the default leaves main's own out");
            let all: Vec<f64> = self.0.concat();
            recv.expect("main's buffer")
                .fit(all.len())?
                .copy_from_slice(bytemuck::cast_slice(&all));
            let mut counts = vec![ty.elements(send.len())];
            counts.extend(self.0.iter().map(Vec::len));
            Ok(counts)
        }
        fn send_pod(&self, _: PodType, _: &[u8], _: usize, _: Tag) -> Result<()> {
            unreachable!("only gathers")
        }
        fn recv_pod(&self, _: PodType, _: &mut dyn PlainBuf, _: usize, _: Tag) -> Result<()> {
            unreachable!("only gathers")
        }
    }

    #[test]
    fn the_default_gather_into_parts_copies_each_part_into_its_buffer() {
        let sent = vec![vec![1.0, 2.0], vec![], vec![3.0, 4.0, 5.0]];
        let native = Gathered(sent.clone());
        let mut bufs: Vec<Vec<f64>> = vec![vec![7.0; 9]; 3];
        let mut refs: Vec<&mut dyn PlainBuf> =
            bufs.iter_mut().map(|b| b as &mut dyn PlainBuf).collect();
        let mine = [0.5f64];
        let counts = native
            .gather_pod_parts(
                PodType::of::<f64>(),
                bytemuck::cast_slice(&mine),
                Some(&mut refs),
                Tag::new(crate::op::Op::Gather, 0),
            )
            .unwrap();
        assert_eq!(counts, [1, 2, 0, 3]);
        assert_eq!(bufs, sent);
    }
}
