//! An item-wise dynamic map's results of plain numbers on main, written
//! straight into the map's result at their chunk's offset (an item-wise
//! map has one result per item, so chunk `i`'s results go where its items
//! were). Each worker's next results are posted there
//! ([`NativePod::post_pod`]): a transport that reads messages itself
//! (processes) copies them out of its ring once, into place, instead of
//! into a message buffer that main then copies behind the results before
//! them. Results whose bytes are still with the worker (lent ones on
//! processes, 4 MiB and more; on MPI every result past its inline size,
//! whose body main receives where it wants) are copied straight into their
//! slot; a message that did not land (one already on its way in) and
//! main's own results are copied there as they come: no chunk waits for
//! its turn. On MPI, the results of the fine map (1e6 `f64`) that came
//! before their turn were received into vectors of their own and copied
//! into the result once it came: in place, it took 8.0-9.1 ms a call on
//! `mpi:4` against 9.1-12.5 ms (each a job's median, six alternated pairs).
//!
//! Where the items are numbers of the results' size and alignment, shared
//! by the chunks' messages (`items.rs`), the results are written over the
//! items, and the result is main's vector itself: no fresh memory.

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::native::{NativePod, Posted};
use crate::op::{Op, Tag};
use crate::parallelizer::{Parallelizer, PlainBuf};
use crate::plain::{PlainOps, fixed_fits, vec_ops};

use super::call::Parts;
use super::items::SharedItems;
use super::wire::{take_lent, take_results};

/// Where the results are written.
enum Out<R> {
    /// Empty, with room for every result: slots are written in its spare
    /// capacity, and it takes them over once every chunk is in place.
    Fresh(Vec<R>),
    /// Over main's items, at `base` ([`SharedItems::results_fit`]).
    Over { items: SharedItems, base: *mut R },
}

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
    /// Where the results go: room for every one.
    out: Out<R>,
    /// The map's items, as many as its results.
    items: usize,
    /// Which chunks are in place, by index.
    done: Vec<bool>,
    /// How many results are in place.
    placed: usize,
}

impl<'a, R: crate::msg::Data> InPlace<'a, R> {
    /// The result of a map `op` of `items` items under `tag`, if its
    /// results are plain numbers and `par` posts receives across processes;
    /// written over the items `over` where they fit.
    pub(super) fn new(
        par: &'a dyn Parallelizer,
        op: Op,
        tag: Tag,
        items: usize,
        over: Option<SharedItems>,
    ) -> Option<InPlace<'a, R>> {
        let native = par.native_pod()?;
        let ops = vec_ops::<Vec<R>>()?;
        let plain = ops.pod_type().size == std::mem::size_of::<R>();
        if !plain || native.in_process() || items == 0 {
            return None;
        }
        let fit = over.and_then(|over| Some((over.results_fit::<R>()?, over)));
        let out = match fit {
            Some((base, items)) => Out::Over { items, base },
            None => {
                let mut fresh = Vec::with_capacity(items);
                crate::pages::advise_spare(&mut fresh);
                Out::Fresh(fresh)
            }
        };
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
        // SAFETY: `at + items` is within the room (`self.items`), so the
        // slot is inside `out`'s allocation, which neither moves nor is
        // freed while the posting lives (`out` is never grown, and the
        // posting is dropped first); nothing else writes the slot until
        // then: chunk `index` went to `w` alone, and `result` withdraws the
        // posting before it copies into the slot itself; nothing reads it
        // (over the items: chunk `index` was sent, and its results come
        // only after `w` received all of it).
        let posting = unsafe {
            let dst = self.base().add(at).cast::<u8>();
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

    /// Results that the worker lent (from
    /// [`LEND_RESULTS_FROM`](super::wire::LEND_RESULTS_FROM) on processes),
    /// or whose bytes the transport left with it (MPI, past its inline
    /// size), from rank `w` for the slot of `items` items from `at` on:
    /// copied straight into the slot, and `None`; any other message comes
    /// back. On MPI, results that came before their turn went into a vector
    /// of their own and were copied into the result later: with 4 ranks,
    /// most of the fine map's.
    fn lent_into_slot(
        &mut self,
        w: usize,
        (at, items): (usize, usize),
        msg: Msg,
    ) -> Result<Option<Msg>> {
        if at + items > self.items {
            return Ok(Some(msg));
        }
        let ty = self.ops.pod_type();
        let mut slot = Slot {
            // SAFETY: `at` is within the room (checked above), so the
            // pointer is inside `out`'s allocation.
            at: unsafe { self.base().add(at).cast::<u8>() },
            len: ty.bytes(items),
            zeroed: false,
            size: ty.size,
            op: self.op,
            rank: w,
        };
        take_lent(self.native, self.ops, msg, w, &mut slot)
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
            // inside the room (`self.items`, checked above), the slot of
            // chunk `index`: no posting covers it (only a worker's next
            // chunk is posted, and its posting is withdrawn before its
            // results come here), nothing reads it (the chunk's items were
            // sent, or copied out before main computed them), and the
            // source and destination are distinct allocations.
            unsafe {
                let dst = self.base().add(to);
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
        let placed = self.placed;
        let out = std::mem::replace(&mut self.out, Out::Fresh(Vec::new()));
        // Every chunk is in place, each in its own slot (the chunks' item
        // ranges, which do not overlap), and together they hold `items`
        // results: every element up to `items` (within the room) is
        // written, with a number (any bytes are a valid one).
        let out = match out {
            Out::Fresh(mut out) => {
                // SAFETY: the first `placed` elements are written (above),
                // within the capacity.
                unsafe { out.set_len(placed) };
                out
            }
            // SAFETY: `results_fit` said `R` fits over the items (`new`),
            // and the first `placed` are written (above).
            Out::Over { items, .. } => unsafe { items.into_results(placed)? },
        };
        Ok(vec![(0, out)])
    }

    /// The start of the room for the results.
    fn base(&mut self) -> *mut R {
        match &mut self.out {
            Out::Fresh(out) => out.as_mut_ptr(),
            Out::Over { base, .. } => *base,
        }
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

/// A chunk's slot in the room for the results, as a receive buffer of
/// fixed length: zeroed (so that its bytes are initialized) only once a
/// transport receives into it, as a message that is not lent or held comes
/// back untouched.
struct Slot {
    /// The slot's first byte, in the room's allocation.
    at: *mut u8,
    /// Its length in bytes.
    len: usize,
    zeroed: bool,
    size: usize,
    op: Op,
    rank: usize,
}

impl Slot {
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `at..at + len` is the slot of the chunk whose results
        // these are, inside the room (`lent_into_slot`), which no posting
        // covers (`result` withdrew the worker's, the only one that could)
        // and nothing reads (its items left before the worker computed
        // these results); written with zeros first, its bytes are
        // initialized, and the slice lives no longer than `&mut self`, which
        // the receive holds until it returns.
        unsafe {
            if !self.zeroed {
                std::ptr::write_bytes(self.at, 0, self.len);
                self.zeroed = true;
            }
            std::slice::from_raw_parts_mut(self.at, self.len)
        }
    }
}

impl PlainBuf for Slot {
    fn bytes(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }

    fn fit(&mut self, elements: usize) -> Result<&mut [u8]> {
        fixed_fits(self.op, self.rank, self.size, self.len, elements)?;
        Ok(self.bytes_mut())
    }

    fn fixed(&mut self) -> Option<&mut [u8]> {
        Some(self.bytes_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(room: &mut Vec<f64>, at: usize, items: usize) -> Slot {
        assert!(at + items <= room.capacity());
        Slot {
            // SAFETY: within the capacity (asserted).
            at: unsafe { room.as_mut_ptr().add(at).cast::<u8>() },
            len: items * 8,
            zeroed: false,
            size: 8,
            op: Op::Map,
            rank: 1,
        }
    }

    #[test]
    fn a_slot_is_zeroed_only_when_received_into_and_takes_its_own_length_only() {
        let mut room: Vec<f64> = Vec::with_capacity(10);
        let mut s = slot(&mut room, 4, 3);
        let Err(Error::Length {
            op: Op::Map,
            rank: 1,
            expected: 4,
            actual: 3,
        }) = s.fit(4)
        else {
            panic!("a slot of 3 fitted to 4")
        };
        assert!(!s.zeroed, "a misfit touches nothing");
        let bytes = s.fit(3).expect("its own length");
        assert_eq!(bytes, [0u8; 24]);
        bytes.copy_from_slice(bytemuck::cast_slice(&[1.0f64, 2.0, 3.0]));
        // Zeroed once: a second look sees what was received.
        assert_eq!(s.bytes(), bytemuck::cast_slice::<f64, u8>(&[1.0, 2.0, 3.0]));
    }
}
