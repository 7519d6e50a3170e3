//! An item-wise dynamic map's results of plain numbers on main, written
//! straight into the map's result at their chunk's offset (an item-wise
//! map has one result per item, so chunk `i`'s results go where its items
//! were). Each worker's next results are posted there
//! ([`NativePod::post_pod`]): a transport that reads messages itself
//! (processes) copies them out of its ring once, into place, instead of
//! into a message buffer that main then copies behind the results before
//! them. Lent results (4 MiB and more) are copied out of the worker's
//! memory straight into their slot; a message that did not land (one
//! already on its way in) and main's own results are copied there as they
//! come: no chunk waits for its turn.

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::native::{NativePod, Posted};
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;
use crate::plain::{Fixed, PlainOps, vec_ops};

use super::call::Parts;
use super::wire::{LEND_RESULTS_FROM, take_lent, take_results};

/// The map's result, filled in place (module docs).
pub(super) struct InPlace<'a, R> {
    /// Per rank, the chunk whose slot is posted for its next results, and
    /// the posting. Declared before `out`, so that a posting is withdrawn
    /// before the memory it is on is freed.
    posted: Vec<Option<(usize, Box<dyn Posted + 'a>)>>,
    par: &'a dyn Parallelizer,
    native: &'a dyn NativePod,
    ops: &'static dyn PlainOps,
    op: Op,
    tag: Tag,
    /// Empty, with room for every result: slots are written in its spare
    /// capacity, and it takes them over once every chunk is in place.
    out: Vec<R>,
    /// The map's items, as many as its results.
    items: usize,
    /// Which chunks are in place, by index.
    done: Vec<bool>,
    /// How many results are in place.
    placed: usize,
}

impl<'a, R: crate::msg::Data> InPlace<'a, R> {
    /// The result of a map `op` of `items` items under `tag`, if its
    /// results are plain numbers and `par` posts receives across processes.
    pub(super) fn new(
        par: &'a dyn Parallelizer,
        op: Op,
        tag: Tag,
        items: usize,
    ) -> Option<InPlace<'a, R>> {
        let native = par.native_pod()?;
        let ops = vec_ops::<Vec<R>>()?;
        let plain = ops.pod_type().size == std::mem::size_of::<R>();
        if !plain || native.in_process() || items == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(items);
        crate::plain::advise_spare(&mut out);
        Some(InPlace {
            posted: (0..par.nprocs()).map(|_| None).collect(),
            par,
            native,
            ops,
            op,
            tag,
            out,
            items,
            done: Vec::new(),
            placed: 0,
        })
    }

    /// Posts the slot of chunk `index` (its `items` items from item `at`
    /// on) for rank `w`'s next results, unless one is posted for `w`
    /// already.
    pub(super) fn post(&mut self, w: usize, index: usize, (at, items): (usize, usize)) {
        if self.posted[w].is_some() || at + items > self.items {
            return;
        }
        let size = std::mem::size_of::<R>();
        // SAFETY: `at + items` is within the capacity (`self.items`), so
        // the slot is inside `out`'s allocation, which neither moves nor is
        // freed while the posting lives (`out` is never grown, and the
        // posting is dropped first); nothing else writes the slot until
        // then: chunk `index` went to `w` alone, and `result` withdraws the
        // posting before it copies into the slot itself.
        let posting = unsafe {
            let dst = self.out.as_mut_ptr().add(at).cast::<u8>();
            self.native.post_pod(dst, items * size, w, self.tag)
        };
        self.posted[w] = posting.map(|p| (index, p));
    }

    /// Rank `w`'s results `msg` for chunk `index` (its `items` items from
    /// `at` on): in place already if they landed in the posted slot, else
    /// copied there (lent ones out of `w`'s memory first).
    pub(super) fn result(
        &mut self,
        w: usize,
        index: usize,
        (at, items): (usize, usize),
        msg: Msg,
    ) -> Result<()> {
        let landed = matches!(&self.posted[w], Some((i, p)) if *i == index && p.claim(&msg));
        // Withdrawn either way: a message that landed but is not this one
        // keeps a copy of its bytes.
        self.posted[w] = None;
        if landed {
            return self.mark(index, items);
        }
        let msg = match self.lent_into_slot(w, (at, items), msg)? {
            None => return self.mark(index, items),
            Some(msg) => msg,
        };
        let Some(results) = take_results::<R>(self.par, msg, w, None)? else {
            return Err(Error::Protocol(format!(
                "rank {w}'s results of `{}` were taken nowhere",
                self.op
            )));
        };
        self.put(index, (at, items), vec![results])
    }

    /// Results large enough that the worker lends them
    /// ([`LEND_RESULTS_FROM`]), from rank `w` for the slot of `items` items
    /// from `at` on: copied straight into the slot, zeroed first (the copy
    /// writes into initialized bytes), and `None`; any other message comes
    /// back.
    fn lent_into_slot(
        &mut self,
        w: usize,
        (at, items): (usize, usize),
        msg: Msg,
    ) -> Result<Option<Msg>> {
        let ty = self.ops.pod_type();
        let len = ty.bytes(items);
        if len < LEND_RESULTS_FROM || at + items > self.items {
            return Ok(Some(msg));
        }
        // SAFETY: `at + items` is within the capacity (checked), the slot
        // of `w`'s chunk, which no posting covers (`result` withdrew `w`'s,
        // the only one that could); zeroed, its bytes are initialized, and
        // the slice is dropped before anything else touches `out`.
        let slot = unsafe {
            let dst = self.out.as_mut_ptr().add(at).cast::<u8>();
            std::ptr::write_bytes(dst, 0, len);
            std::slice::from_raw_parts_mut(dst, len)
        };
        let mut buf = Fixed {
            bytes: slot,
            size: ty.size,
            op: self.op,
            rank: w,
        };
        take_lent(self.native, self.ops, msg, w, &mut buf)
    }

    /// The results of chunk `index` (its `items` items from `at` on), in
    /// pieces, copied into their slot.
    pub(super) fn put(
        &mut self,
        index: usize,
        (at, items): (usize, usize),
        pieces: Vec<Vec<R>>,
    ) -> Result<()> {
        let count: usize = pieces.iter().map(Vec::len).sum();
        if count != items || at + count > self.items {
            return Err(self.wrong(index, count));
        }
        if self.done.get(index).copied().unwrap_or(false) {
            return Err(self.twice(index));
        }
        let mut to = at;
        for piece in pieces {
            // SAFETY: `to..to + piece.len()` lies within `at..at + count`,
            // inside the capacity (`self.items`, checked above), the slot of chunk
            // `index`: no posting covers it (only a worker's next chunk is
            // posted, and its posting is withdrawn before its results come
            // here), and the source and destination are distinct
            // allocations.
            unsafe {
                let dst = self.out.as_mut_ptr().add(to);
                std::ptr::copy_nonoverlapping(piece.as_ptr(), dst, piece.len());
            }
            to += piece.len();
        }
        self.mark(index, count)
    }

    /// Chunk `index`'s `count` results are in place.
    fn mark(&mut self, index: usize, count: usize) -> Result<()> {
        if self.done.len() <= index {
            self.done.resize(index + 1, false);
        }
        if std::mem::replace(&mut self.done[index], true) {
            return Err(self.twice(index));
        }
        self.placed += count;
        Ok(())
    }

    /// Every result, once the map's `chunks` chunks are in place.
    pub(super) fn finish(mut self, chunks: usize) -> Result<Parts<R>> {
        self.posted.clear();
        if let Some(i) = (0..chunks).find(|&i| !self.done.get(i).copied().unwrap_or(false)) {
            return Err(Error::Protocol(format!(
                "chunk {i} of `{}` came back from no rank",
                self.op
            )));
        }
        if self.placed != self.items {
            return Err(self.wrong(chunks, self.placed));
        }
        let mut out = std::mem::take(&mut self.out);
        // SAFETY: every chunk is in place, each in its own slot (the
        // chunks' item ranges, which do not overlap), and together they
        // hold `items` results: every element up to `items` (within the
        // capacity) is written, with a number (any bytes are a valid one).
        unsafe { out.set_len(self.placed) };
        Ok(vec![(0, out)])
    }

    fn wrong(&self, index: usize, count: usize) -> Error {
        Error::Protocol(format!(
            "chunk {index} of `{}` came back with {count} results, not one per item",
            self.op
        ))
    }

    fn twice(&self, index: usize) -> Error {
        Error::Protocol(format!("chunk {index} of `{}` came back twice", self.op))
    }
}
