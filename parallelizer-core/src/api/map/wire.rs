//! How a map's chunks and results travel (one message per chunk, or the
//! scatter and gather of the static split): vectors of primitive numbers as
//! their raw bytes (the plain-data path: no codec, and 8-byte numbers land
//! in memory the receiver's `Vec` takes over), anything else through serde.
//! The element type decides, by `TypeId`, the same way on every rank.

use std::any::{Any, TypeId};

use crate::error::Result;
use crate::msg::{Data, Msg};
use crate::op::{Op, Tag};
use crate::parallelizer::{AnySource, Parallelizer};
use crate::plain::{PlainBuf, PlainOps, vec_ops};
use crate::split::{chunk_sizes, split};

use super::super::{Contract, Pairing, main_data, named};
use super::items::{SharedItems, numbers};

/// `items` as a message.
pub(super) fn to_msg<T: Data>(items: Vec<T>) -> Msg {
    macro_rules! as_pod {
        ($($p:ty)*) => {$(
            if TypeId::of::<T>() == TypeId::of::<$p>() {
                let any: Box<dyn Any> = Box::new(items);
                match any.downcast::<Vec<$p>>() {
                    Ok(v) => return Msg::pod(*v),
                    Err(_) => unreachable!("the TypeIds are equal"),
                }
            }
        )*};
    }
    numbers!(as_pod);
    Msg::new(items)
}

/// The items a message of [`to_msg`] carries.
pub(super) fn from_msg<T: Data>(msg: Msg) -> Result<Vec<T>> {
    macro_rules! from_pod {
        ($($p:ty)*) => {$(
            if TypeId::of::<T>() == TypeId::of::<$p>() {
                let any: Box<dyn Any> = Box::new(msg.into_pod::<$p>()?);
                match any.downcast::<Vec<T>>() {
                    Ok(v) => return Ok(*v),
                    Err(_) => unreachable!("the TypeIds are equal"),
                }
            }
        )*};
    }
    numbers!(from_pod);
    msg.into_value()
}

/// Sends a worker's results to main under the map's `tag`: lent where main
/// can read the worker's memory and they are plain data
/// ([`NativePod::lend_pod`](crate::backend::NativePod::lend_pod): main
/// copies them straight out of `items`, and this returns once it has),
/// else posted as a message of [`to_msg`]. The rest of a loan (main's
/// acknowledgement, a push, the bytes of a refused loan) travels as a lent
/// point-to-point `send`'s does, on the pair's point-to-point queue: a
/// worker waiting for it does not take the next chunk main queued.
pub(super) fn send_results<T: Data>(par: &dyn Parallelizer, items: Vec<T>, tag: Tag) -> Result<()> {
    if let (Some(native), Some(ops)) = (par.native_pod(), vec_ops::<Vec<T>>()) {
        let bytes = ops.bytes(&items);
        let tags = (tag, Tag::p2p(Op::Send));
        if bytes.len() >= LEND_RESULTS_FROM && native.lend_pod(ops.pod_type(), bytes, 0, tags)? {
            return Ok(());
        }
    }
    par.post_msg(to_msg(items), 0, tag)
}

/// Results of at least this many bytes are lent ([`send_results`]).
/// Smaller ones go through a ring between processes (of 1 MiB, 4 MiB
/// where ranks share cores), where the worker leaves what fits and goes on
/// with its next chunk, while a lender waits
/// for main to copy: lending from 64 KiB on made the fine map (chunks of
/// up to 1.3 MB of results) slower on `processes:2`, 7.70-8.07 ms against
/// 7.36-7.89 ms in three alternated pairs.
pub(super) const LEND_RESULTS_FROM: usize = 4 << 20;

/// A worker's results as [`send_results`] sent them, in `msg` from rank
/// `from`: if they were lent, copied out of the worker's memory (and
/// acknowledged) behind the elements `tail` holds (`None` returned), or
/// without a `tail` into a vector of their own; else taken from the
/// message.
pub(super) fn take_results<T: Data>(
    par: &dyn Parallelizer,
    msg: Msg,
    from: usize,
    tail: Option<&mut Vec<T>>,
) -> Result<Option<Vec<T>>> {
    let (Some(native), Some(ops)) = (par.native_pod(), vec_ops::<Vec<T>>()) else {
        return from_msg(msg).map(Some);
    };
    let mut own = Vec::<T>::new();
    let mut tail_buf = tail.map(|vec| ops.tail(vec));
    let buf: &mut dyn PlainBuf = match tail_buf.as_deref_mut() {
        Some(buf) => buf,
        None => ops.buf(&mut own),
    };
    match take_lent(native, ops, msg, from, buf)? {
        Some(msg) => from_msg(msg).map(Some),
        None if tail_buf.is_some() => Ok(None),
        None => Ok(Some(own)),
    }
}

/// A worker's results `msg` from rank `from`, if [`send_results`] lent
/// them: copied into `buf` and acknowledged (`None`); else the message.
pub(super) fn take_lent(
    native: &dyn crate::native::NativePod,
    ops: &'static dyn PlainOps,
    msg: Msg,
    from: usize,
    buf: &mut dyn PlainBuf,
) -> Result<Option<Msg>> {
    native.take_lent(msg, ops.pod_type(), buf, from, Tag::p2p(Op::Receive))
}

/// `scatter` of main's items for a map: chunk `i` of the split to rank `i`,
/// each chunk a message of [`to_msg`]; this rank's chunk.
pub(super) fn scatter<T: Data>(par: &dyn Parallelizer, data: Option<Vec<T>>) -> Result<Vec<T>> {
    let Pairing::Ranks(tag) = par.prologue(Op::Scatter, Contract::Skip)? else {
        return main_data(data, Op::Scatter);
    };
    let nprocs = par.nprocs();
    let Some(data) = data else {
        return from_msg(named(Op::Scatter, par.scatter_msg(None, tag))?);
    };
    let counts = chunk_sizes(data.len(), nprocs);
    let across = par.native_pod().is_some_and(|n| !n.in_process());
    let shared = match across && par.any_source() == AnySource::Buffered {
        true => SharedItems::new(data),
        false => Err(data),
    };
    let shared = match shared {
        Ok(shared) => shared,
        Err(data) => {
            let chunks = split(data, nprocs).into_iter().map(to_msg).collect();
            return from_msg(named(Op::Scatter, par.scatter_msg(Some(chunks), tag))?);
        }
    };
    // Primitive numbers across processes, where a message is copied into
    // the transport's buffer as it is sent (the rings; in one process the
    // chunks move): the workers' chunks go onto the wire from main's
    // vector, and main keeps its own chunk, the first, in it. `split`
    // copied every chunk but main's into a vector of its own first.
    let mut at = 0;
    let chunks = counts
        .iter()
        .map(|&len| {
            at += len;
            shared.msg(at - len..at)
        })
        .collect();
    drop(named(Op::Scatter, par.scatter_msg(Some(chunks), tag))?);
    shared.into_front(counts[0])
}

/// `gather` of every rank's results for a map: on main, each rank's, in
/// rank order.
pub(super) fn gather<R: Data>(par: &dyn Parallelizer, out: Vec<R>) -> Result<Option<Vec<Vec<R>>>> {
    let Pairing::Ranks(tag) = par.prologue(Op::Gather, Contract::Skip)? else {
        return Ok(Some(vec![out]));
    };
    named(Op::Gather, par.gather_msg(to_msg(out), tag))?
        .map(|all| all.into_iter().map(from_msg).collect())
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Encoding;

    #[test]
    fn numbers_travel_as_raw_bytes_and_the_rest_through_serde() {
        let m = to_msg(vec![1.5f64, 2.5]);
        assert_eq!(m.encoding(), Encoding::Pod);
        let wire =
            Msg::from_bytes(Encoding::Pod, m.to_bytes().unwrap()).sent_as("alloc::vec::Vec<f64>");
        assert_eq!(from_msg::<f64>(wire).unwrap(), [1.5, 2.5]);
        let m = to_msg(vec![(1u8, 2u8)]);
        assert_eq!(m.encoding(), Encoding::Serde);
        let wire = Msg::from_bytes(Encoding::Serde, m.to_bytes().unwrap());
        assert_eq!(from_msg::<(u8, u8)>(wire).unwrap(), [(1, 2)]);
        // In one process the vector moves as it is.
        assert_eq!(from_msg::<u32>(to_msg(vec![7u32])).unwrap(), [7]);
        assert_eq!(
            from_msg::<String>(to_msg(vec!["x".to_string()])).unwrap(),
            ["x"]
        );
    }
}
