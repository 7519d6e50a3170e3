//! `Op`: the operations of the API, as errors and message headers name them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An operation of the parallelizer API.
///
/// Errors name the operation that failed or waited with one of these (not a
/// string), and every message between ranks carries the operation that sent
/// it, so a rank that receives from another operation than the one it is in
/// fails at once instead of decoding the wrong bytes.
///
/// ```
/// use parallelizer_core::Op;
/// assert_eq!(Op::Broadcast.to_string(), "broadcast");
/// assert_eq!(Op::from_code(Op::Gather.code()), Some(Op::Gather));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
#[repr(u8)]
pub enum Op {
    /// `send` (point-to-point; a message sent by `send` is received by `receive`).
    Send = 1,
    /// `receive`.
    Receive = 2,
    /// `broadcast` and its plain-data forms.
    Broadcast = 3,
    /// `scatter` and its plain-data forms.
    Scatter = 4,
    /// `gather` and its plain-data forms.
    Gather = 5,
    /// `wait`, the barrier.
    Wait = 6,
    /// `map` (and its siblings, when they name themselves below).
    Map = 7,
    /// `map_with`.
    MapWith = 8,
    /// `map_chunks`.
    MapChunks = 9,
    /// `starmap`.
    Starmap = 10,
    /// `run`: a whole region.
    Run = 11,
    /// `reduce`.
    Reduce = 12,
    /// `allreduce`.
    Allreduce = 13,
    /// `allgather`.
    Allgather = 14,
    /// `scan`.
    Scan = 15,
    /// Starting the workers (`enter`, or the first `run`).
    StartUp = 16,
    /// The worker initializer (`Config::initializer`).
    Initialize = 17,
    /// Shutting the workers down.
    Shutdown = 18,
    /// `split` / `subgroup`: making a group of ranks.
    Split = 19,
    /// `apply`.
    Apply = 20,
    /// `map_reduce`.
    MapReduce = 21,
    /// `share` and the collective creation of shared arrays.
    Share = 22,
}

impl Op {
    const ALL: [Op; 22] = [
        Op::Send,
        Op::Receive,
        Op::Broadcast,
        Op::Scatter,
        Op::Gather,
        Op::Wait,
        Op::Map,
        Op::MapWith,
        Op::MapChunks,
        Op::Starmap,
        Op::Run,
        Op::Reduce,
        Op::Allreduce,
        Op::Allgather,
        Op::Scan,
        Op::StartUp,
        Op::Initialize,
        Op::Shutdown,
        Op::Split,
        Op::Apply,
        Op::MapReduce,
        Op::Share,
    ];

    /// The name of the call, as a user writes it (`"map_with"`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::Receive => "receive",
            Op::Broadcast => "broadcast",
            Op::Scatter => "scatter",
            Op::Gather => "gather",
            Op::Wait => "wait",
            Op::Map => "map",
            Op::MapWith => "map_with",
            Op::MapChunks => "map_chunks",
            Op::Starmap => "starmap",
            Op::Run => "run",
            Op::Reduce => "reduce",
            Op::Allreduce => "allreduce",
            Op::Allgather => "allgather",
            Op::Scan => "scan",
            Op::StartUp => "start-up",
            Op::Initialize => "initializer",
            Op::Shutdown => "shutdown",
            Op::Split => "split",
            Op::Apply => "apply",
            Op::MapReduce => "map_reduce",
            Op::Share => "share",
        }
    }

    /// The one-byte code of this operation in message headers.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The operation of a header's code; `None` for a code no operation has.
    pub fn from_code(code: u8) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.code() == code)
    }

    /// The operation named `name` (as [`Op::name`] spells it).
    ///
    /// ```
    /// # use parallelizer_core::Op;
    /// assert_eq!(Op::from_name("starmap"), Some(Op::Starmap));
    /// assert_eq!(Op::from_name("bcast"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(Op::from_code(op.code()), Some(*op));
            assert_eq!(Op::from_name(op.name()), Some(*op));
            for other in &Op::ALL[i + 1..] {
                assert_ne!(op.code(), other.code());
                assert_ne!(op.name(), other.name());
            }
        }
        assert_eq!(Op::from_code(0), None);
        assert_eq!(Op::from_code(255), None);
    }
}

/// The operation a message belongs to and its place in the sequence of the
/// sender's calls: what a rank checks before it takes a message as the one
/// it waits for.
///
/// Collectives are numbered per rank and region (every rank makes the same
/// collective calls in the same order, so the `n`-th of one rank pairs with
/// the `n`-th of every other); point-to-point messages are numbered per pair
/// of ranks by the backend, and their tag's `seq` is 0.
///
/// ```
/// use parallelizer_core::{Op, backend::Tag};
/// let t = Tag::new(Op::Gather, 3);
/// assert_eq!((t.op(), t.seq()), (Op::Gather, 3));
/// assert_eq!(t.to_string(), "gather #3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    op: Op,
    seq: u64,
}

impl Tag {
    /// The tag of the `seq`-th call, an `op`.
    pub fn new(op: Op, seq: u64) -> Tag {
        Tag { op, seq }
    }

    /// A point-to-point tag (its order is the backend's per-pair count).
    pub fn p2p(op: Op) -> Tag {
        Tag { op, seq: 0 }
    }

    /// The operation.
    pub fn op(self) -> Op {
        self.op
    }

    /// The sequence number.
    pub fn seq(self) -> u64 {
        self.seq
    }

    /// Whether this is a point-to-point message (`send`/`receive`), which
    /// pairs by order between two ranks rather than by collective number.
    pub fn is_p2p(self) -> bool {
        matches!(self.op, Op::Send | Op::Receive)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_p2p() {
            write!(f, "{}", self.op)
        } else {
            write!(f, "{} #{}", self.op, self.seq)
        }
    }
}
