//! A dynamic map's results on main as they come back, chunk by chunk, put
//! in input order. For a flat result each chunk is appended as soon as
//! every chunk before it is in, while the map still runs: the copy is
//! spread over the map, where the other ranks take more of the items
//! meanwhile, rather than made by main alone after the last result; and
//! each chunk's message memory is freed early, for the next message to
//! reuse rather than fault in fresh pages.

use crate::error::{Error, Result};
use crate::op::Op;

use super::call::Parts;
use crate::split::concat;

/// Every chunk's results, put in input order as they come.
pub(super) struct Assembly<R> {
    op: Op,
    /// Every chunk is kept with its rank (results per rank).
    per_rank: bool,
    /// The map's items: the flat result's capacity (an item-wise map has
    /// one result per item; for a chunk-wise one, a first guess).
    items: usize,
    /// Flat: the results of chunks `0..next`, back to back.
    flat: Vec<R>,
    /// Flat: the chunks in `flat`.
    next: usize,
    /// Rank and results (in pieces) by chunk index: per rank every
    /// chunk, flat the chunks that came before their turn.
    early: Vec<Option<(usize, Vec<Vec<R>>)>>,
}

impl<R> Assembly<R> {
    /// The results of a map of `items` items named `op`.
    pub(super) fn new(op: Op, items: usize, per_rank: bool) -> Assembly<R> {
        Assembly {
            op,
            per_rank,
            items,
            flat: Vec::new(),
            next: 0,
            early: Vec::new(),
        }
    }

    /// Chunk `index`'s results, in pieces, computed by `rank`. A chunk
    /// that came back before is a protocol error.
    pub(super) fn put(&mut self, index: usize, rank: usize, out: Vec<Vec<R>>) -> Result<()> {
        let again = self.early.get(index).is_some_and(Option::is_some);
        if again || (!self.per_rank && index < self.next) {
            return Err(Error::Protocol(format!(
                "chunk {index} of `{}` came back twice",
                self.op
            )));
        }
        if self.per_rank || index != self.next {
            if self.early.len() <= index {
                self.early.resize_with(index + 1, || None);
            }
            self.early[index] = Some((rank, out));
            return Ok(());
        }
        self.append(out);
        self.catch_up();
        Ok(())
    }

    /// The flat result, if chunk `index`'s results are to go right behind
    /// it (its turn has come): a transport that copies them in itself puts
    /// them there, then says so ([`appended`](Self::appended)).
    pub(super) fn tail(&mut self, index: usize) -> Option<&mut Vec<R>> {
        if self.per_rank || index != self.next {
            return None;
        }
        self.make_room(0);
        Some(&mut self.flat)
    }

    /// Chunk `index`'s results are behind the flat result ([`tail`](Self::tail)).
    pub(super) fn appended(&mut self, index: usize) {
        debug_assert_eq!(index, self.next, "only the next chunk goes behind");
        self.next += 1;
        self.catch_up();
    }

    /// Appends the chunks that came early and whose turn has come.
    fn catch_up(&mut self) {
        while let Some((_, out)) = self.early.get_mut(self.next).and_then(Option::take) {
            self.append(out);
        }
    }

    /// Appends the next chunk's results to the flat result.
    fn append(&mut self, out: Vec<Vec<R>>) {
        for piece in out {
            if self.flat.capacity() == 0 && piece.capacity() >= self.items {
                // A first piece with room for every result (a chunk-wise
                // map's, whose item count is only a guess) becomes the
                // result as it is.
                self.flat = piece;
            } else {
                self.make_room(piece.len());
                self.flat.extend(piece);
            }
        }
        self.next += 1;
    }

    /// Gives the flat result, while it has no memory yet, room for every
    /// result (the item count, or the first `piece` if that is more) in one
    /// fresh allocation advised onto huge pages: the chunks are then copied
    /// in once. Growing it chunk by chunk made the allocator copy what was
    /// in it at each step, into fresh 4 KiB pages (on `mpi:4`, about 800
    /// page faults of the fine map's 1e6 `f64` a call on main, in the
    /// reallocations and the copies behind them).
    fn make_room(&mut self, piece: usize) {
        if self.flat.capacity() == 0 {
            self.flat.reserve_exact(self.items.max(piece));
            crate::pages::advise_spare(&mut self.flat);
        }
    }

    /// Every chunk's results once the map's `chunks` chunks are in: per
    /// rank, each chunk with its rank; flat, one part of them all.
    pub(super) fn finish(self, chunks: usize) -> Result<Parts<R>> {
        let missing = |i: usize| {
            Error::Protocol(format!("chunk {i} of `{}` came back from no rank", self.op))
        };
        if !self.per_rank {
            return match self.next {
                next if next < chunks => Err(missing(next)),
                _ => Ok(vec![(0, self.flat)]),
            };
        }
        let mut early = self.early;
        early.resize_with(chunks.max(early.len()), || None);
        early
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                p.map(|(rank, out)| (rank, concat(out)))
                    .ok_or_else(|| missing(i))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_land_in_input_order_whatever_order_they_come_in() {
        let mut flat = Assembly::new(Op::Map, 6, false);
        flat.put(2, 1, vec![vec![4], vec![5]]).unwrap();
        flat.put(0, 0, vec![vec![], vec![0, 1]]).unwrap();
        assert_eq!(flat.next, 1);
        flat.put(1, 1, vec![vec![2, 3]]).unwrap();
        assert_eq!(flat.next, 3);
        assert_eq!(flat.finish(3).unwrap(), [(0, vec![0, 1, 2, 3, 4, 5])]);

        let mut per_rank = Assembly::new(Op::Map, 4, true);
        per_rank.put(1, 2, vec![vec![2], vec![3]]).unwrap();
        per_rank.put(0, 1, vec![vec![0, 1]]).unwrap();
        assert_eq!(
            per_rank.finish(2).unwrap(),
            [(1, vec![0, 1]), (2, vec![2, 3])]
        );
    }

    #[test]
    fn the_flat_result_is_allocated_once_with_room_for_every_result() {
        // Item-wise: room for the items, whether a chunk is copied in or
        // received behind (`tail`) first; it never grows.
        let mut copied = Assembly::new(Op::Map, 1000, false);
        copied.put(0, 1, vec![vec![7u32; 10]]).unwrap();
        assert_eq!(copied.flat.capacity(), 1000);
        let start = copied.flat.as_ptr();
        copied.put(1, 1, vec![vec![8u32; 990]]).unwrap();
        assert_eq!(
            (copied.flat.as_ptr(), copied.flat.capacity()),
            (start, 1000)
        );
        let mut received = Assembly::<u32>::new(Op::Map, 1000, false);
        assert!(received.tail(1).is_none(), "not chunk 1's turn");
        assert_eq!(received.tail(0).unwrap().capacity(), 1000);
        // Chunk-wise, a first piece with more results than the guess is the
        // result as it is.
        let mut chunks = Assembly::new(Op::MapChunks, 3, false);
        let piece = vec![1u8; 100];
        let at = piece.as_ptr();
        chunks.put(0, 0, vec![piece]).unwrap();
        assert_eq!(chunks.flat.as_ptr(), at);
    }

    #[test]
    fn a_chunk_twice_or_never_is_a_protocol_error() {
        for per_rank in [false, true] {
            let mut a = Assembly::new(Op::Map, 4, per_rank);
            a.put(0, 1, vec![vec![0]]).unwrap();
            let twice = a.put(0, 1, vec![vec![0]]).unwrap_err().to_string();
            assert!(
                twice.contains("chunk 0 of `map` came back twice"),
                "{twice}"
            );
            a.put(2, 1, vec![vec![2]]).unwrap();
            let never = a.finish(3).unwrap_err().to_string();
            assert!(
                never.contains("chunk 1 of `map` came back from no rank"),
                "{never}"
            );
        }
        let empty = Assembly::<u8>::new(Op::Map, 0, false);
        assert_eq!(empty.finish(0).unwrap(), [(0, vec![])]);
    }
}
