//! Main's items of a dynamic map, cut into chunks on demand by a
//! [`Rule`]. Where the transport copies a message as it is sent,
//! primitive numbers stay in main's vector, shared by the chunks'
//! messages: a worker's chunk is copied once, onto the wire, and main's
//! own pieces once, out of it. Other items move into a vector per chunk.

use std::vec::IntoIter;

use crate::error::Result;
use crate::msg::{Data, Msg};

use super::items::SharedItems;
use super::wire::{from_msg, to_msg};

/// How main cuts its data into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `chunksize` items each.
    Fixed(usize),
    /// The items left over `DIVISOR × ranks`, at least `min` and at least
    /// [`FLOOR`] of the whole.
    Guided { ranks: usize, min: usize },
}

impl Rule {
    /// The size of the next chunk of a map of `total` items with `left`
    /// (at least 1) not handed out yet.
    fn size(self, total: usize, left: usize) -> usize {
        let size = match self {
            Rule::Fixed(n) => n,
            Rule::Guided { ranks, min } => {
                let ranks = ranks.max(1);
                let floor = total.div_ceil(FLOOR * ranks);
                left.div_ceil(DIVISOR * ranks).max(min).max(floor)
            }
        };
        size.clamp(1, left)
    }

    /// The sizes of every chunk of a map of `total` items, in order (the
    /// same chunks as handed out one by one).
    pub(super) fn sizes(self, total: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut left = total;
        while left > 0 {
            let size = self.size(total, left);
            sizes.push(size);
            left -= size;
        }
        sizes
    }
}

/// Guided chunks hold the items left divided by this many times the ranks:
/// small enough that a chunk holding the few most expensive items cannot
/// leave the others idle for long, large enough to keep the messages few.
const DIVISOR: usize = 3;
/// Guided chunks never hold fewer than the items over this many times the
/// ranks: a map of a million cheap items does not end in thousands of
/// messages of a few items each.
const FLOOR: usize = 256;

/// Main's data, cut into chunks on demand.
pub(super) struct Chunker<T> {
    items: Items<T>,
    total: usize,
    /// Items handed out.
    taken: usize,
    /// Where each chunk handed out starts: one per chunk.
    starts: Vec<usize>,
    rule: Rule,
    closed: bool,
}

/// Where the items are.
enum Items<T> {
    /// Moved out chunk by chunk.
    Owned(IntoIter<T>),
    /// Primitive numbers, shared by the chunks.
    Shared(SharedItems),
}

impl<T: Data> Chunker<T> {
    /// Chunks of `data` by `rule`; `share`: primitive numbers stay in
    /// `data`, shared by the chunks (where the transport copies a message
    /// as it is sent).
    pub(super) fn new(data: Vec<T>, rule: Rule, share: bool) -> Chunker<T> {
        let total = data.len();
        let shared = if share {
            SharedItems::new(data)
        } else {
            Err(data)
        };
        let items = match shared {
            Ok(shared) => Items::Shared(shared),
            Err(data) => Items::Owned(data.into_iter()),
        };
        Chunker {
            items,
            total,
            taken: 0,
            starts: Vec::new(),
            rule,
            closed: false,
        }
    }

    /// The chunks handed out so far.
    pub(super) fn chunks(&self) -> usize {
        self.starts.len()
    }

    /// Where chunk `index` starts in the data and how many items it has
    /// (`None`: not handed out).
    pub(super) fn bounds(&self, index: usize) -> Option<(usize, usize)> {
        let at = *self.starts.get(index)?;
        let end = self.starts.get(index + 1).copied().unwrap_or(self.taken);
        Some((at, end - at))
    }

    /// The items not handed out yet (none once closed).
    pub(super) fn left(&self) -> usize {
        if self.closed {
            0
        } else {
            self.total - self.taken
        }
    }

    /// The next chunk and its index, in input order.
    pub(super) fn take(&mut self) -> Option<(usize, Chunk<T>)> {
        let left = self.left();
        if left == 0 {
            return None;
        }
        let size = self.rule.size(self.total, left);
        let chunk = match &mut self.items {
            Items::Owned(items) => {
                Chunk::Owned(items.by_ref().take(size).collect::<Vec<T>>().into_iter())
            }
            Items::Shared(shared) => Chunk::Shared {
                items: shared.clone(),
                from: self.taken,
                to: self.taken + size,
            },
        };
        self.starts.push(self.taken);
        self.taken += size;
        Some((self.starts.len() - 1, chunk))
    }

    /// Hands out nothing more (main's own part failed).
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// The items, where primitive numbers stay in main's vector.
    pub(super) fn shared(&self) -> Option<SharedItems> {
        match &self.items {
            Items::Shared(shared) => Some(shared.clone()),
            Items::Owned(_) => None,
        }
    }

    /// Hands out nothing more and lets go of main's vector, so that a map
    /// whose results were written over it takes it over.
    pub(super) fn release(&mut self) {
        self.close();
        self.items = Items::Owned(Vec::new().into_iter());
    }
}

/// One chunk's items, or what is left of them.
pub(super) enum Chunk<T> {
    /// Items of their own.
    Owned(IntoIter<T>),
    /// Items `from..to` of main's shared numbers.
    Shared {
        items: SharedItems,
        from: usize,
        to: usize,
    },
}

impl<T: Data> Chunk<T> {
    /// The items left.
    pub(super) fn len(&self) -> usize {
        match self {
            Chunk::Owned(items) => items.len(),
            Chunk::Shared { from, to, .. } => to - from,
        }
    }

    /// The next `n` items (fewer if fewer are left).
    pub(super) fn take_front(&mut self, n: usize) -> Result<Vec<T>> {
        match self {
            Chunk::Owned(items) => Ok(items.by_ref().take(n).collect()),
            Chunk::Shared { items, from, to } => {
                let end = (*from + n).min(*to);
                let front = items.msg(*from..end);
                *from = end;
                from_msg(front)
            }
        }
    }

    /// The items left, as a vector.
    pub(super) fn into_vec(self) -> Result<Vec<T>> {
        match self {
            Chunk::Owned(items) => Ok(items.collect()),
            Chunk::Shared { items, from, to } => from_msg(items.msg(from..to)),
        }
    }

    /// The items left as a message of [`to_msg`]'s form.
    pub(super) fn into_msg(self) -> Msg {
        match self {
            Chunk::Owned(items) => to_msg(items.collect()),
            Chunk::Shared { items, from, to } => items.msg(from..to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_owned_items_make_the_same_chunks() {
        let rule = Rule::Fixed(4);
        for share in [false, true] {
            let mut c = Chunker::new((0..10u64).collect(), rule, share);
            assert_eq!(c.left(), 10);
            let (i, mut first) = c.take().unwrap();
            assert_eq!((i, first.len()), (0, 4));
            assert_eq!(first.take_front(3).unwrap(), [0, 1, 2]);
            assert_eq!(first.take_front(3).unwrap(), [3]);
            assert_eq!(first.len(), 0);
            let (i, second) = c.take().unwrap();
            assert_eq!(i, 1);
            assert_eq!(from_msg::<u64>(second.into_msg()).unwrap(), [4, 5, 6, 7]);
            let (i, last) = c.take().unwrap();
            assert_eq!((i, last.into_vec().unwrap()), (2, vec![8, 9]));
            assert!(c.take().is_none());
            assert_eq!((c.chunks(), c.left()), (3, 0));
        }
        let mut strings = Chunker::new(vec!["a".to_string(); 3], rule, true);
        assert!(matches!(strings.items, Items::Owned(_)));
        strings.close();
        assert!(strings.take().is_none());
    }
}
