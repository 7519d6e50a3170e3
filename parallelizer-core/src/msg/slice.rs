//! Messages that share one vector of plain data, each a part of it (a
//! pool-style map's chunks of main's items): a part goes onto the wire
//! straight from the shared vector, with no vector of its own first.
//!
//! A message reads only its own part ([`Parts::part`]), never the whole
//! vector: the map writes its results over the parts whose items have
//! left (`api/map/items.rs`) while other parts are still being read.

use std::any::Any;
use std::ops::Range;
use std::sync::Arc;

use super::{Encoding, Msg, Payload, Repr};
use crate::error::Result;
use crate::plain::PlainOps;

/// Bytes that messages share, read a part at a time.
pub(crate) trait Parts: Send + Sync {
    /// How many bytes there are.
    fn len(&self) -> usize;
    /// Bytes `range` (within [`len`](Parts::len)).
    fn part(&self, range: Range<usize>) -> &[u8];
}

/// Bytes `bytes` of `all`, plain data of the element type of `ops`.
struct PlainSlice {
    all: Arc<dyn Parts>,
    bytes: Range<usize>,
    ops: &'static dyn PlainOps,
}

impl PlainSlice {
    fn slice(&self) -> &[u8] {
        self.all.part(self.bytes.clone())
    }
}

impl Payload for PlainSlice {
    /// In one process the receiver gets a `Vec` of its own (a copy).
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self.ops.vec_from_bytes(self.slice())
    }
    fn encoding(&self) -> Encoding {
        Encoding::Pod
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(self.slice());
        Ok(())
    }
    fn pod_bytes(&self) -> Option<&[u8]> {
        Some(self.slice())
    }
    fn pod_align(&self) -> usize {
        self.ops.align()
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>> {
        Some(Box::new(PlainSlice {
            all: self.all.clone(),
            bytes: self.bytes.clone(),
            ops: self.ops,
        }))
    }
    fn type_name(&self) -> &'static str {
        self.ops.vec_name()
    }
}

impl Msg {
    /// Bytes `bytes` of `all` (whole elements of the type of `ops`) as a
    /// message of a `Vec` of them, sharing `all`.
    pub(crate) fn plain_slice(
        all: Arc<dyn Parts>,
        bytes: Range<usize>,
        ops: &'static dyn PlainOps,
    ) -> Msg {
        debug_assert!(bytes.end <= all.len());
        debug_assert!(ops.pod_type().whole(bytes.len()));
        Msg::of(Repr::Value(Box::new(PlainSlice { all, bytes, ops })))
    }
}
