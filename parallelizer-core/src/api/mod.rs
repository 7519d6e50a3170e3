//! The typed API, callable on `&dyn Parallelizer` and `Arc<dyn Parallelizer>`,
//! one file per kind of call: entering and naming (`enter`), point-to-point
//! (`p2p`), collectives (`collective`), maps (`map`), regions (`region`) and
//! printing (`print`).
//!
//! Every collective is called by every rank of a region: main passes
//! `Some(data)`, workers pass `None`, and the calls pair up in program order.
//! Each call starts with the same [prologue](Pairing): the contract, then
//! whether the call moves anything at all (one rank) and may (a region).

mod collective;
mod data;
mod enter;
mod group;
mod map;
mod map_reduce;
mod p2p;
mod print;
mod reduce;
mod region;

pub use enter::EnterGuard;
pub use map::{Apply, ApplyWith, Flat, Layout, Mapper, PerRank, Progress, Schedule};
pub use print::Where;

use crate::error::{Error, Result};
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;
use crate::registry;
use crate::trace;

/// How a call pairs up with the other ranks, as the prologue found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pairing {
    /// One rank: the call is its own result, nothing moves.
    Alone,
    /// Several ranks, inside a region: the call moves data, its messages
    /// tagged with the call.
    Ranks(Tag),
}

/// Whether a call counts against the `CallerContract`: the user's calls do;
/// the collectives a `map` is made of do not (the map counts once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contract {
    Check,
    Skip,
}

impl dyn Parallelizer {
    /// The prologue of every call that pairs up with other ranks.
    #[inline]
    fn prologue(&self, op: Op, contract: Contract) -> Result<Pairing> {
        if contract == Contract::Check {
            self.core().check_contract(self.id(), op.name())?;
        }
        if self.nprocs() == 1 {
            return Ok(Pairing::Alone);
        }
        self.require_region(op)?;
        Ok(Pairing::Ranks(self.core().next_tag(op)))
    }

    /// An error unless this handle is inside a region, where the other
    /// ranks take part.
    #[inline]
    fn require_region(&self, op: Op) -> Result<()> {
        if self.in_region() {
            return Ok(());
        }
        Err(self.outside_region(op))
    }

    /// The error of the call `op` made outside a region (see
    /// [`require_region`](Self::require_region)); out of line, so that the
    /// calls stay small.
    #[cold]
    #[inline(never)]
    fn outside_region(&self, op: Op) -> Error {
        if registry::rank_of(self).is_some() {
            return Error::ContractViolation(format!(
                "`{op}` was called on the `{}` parallelizer itself inside one of its regions; \
                 call it on the rank handle the task receives (or `current()`)",
                self.mode()
            ));
        }
        Error::ContractViolation(format!(
            "`{op}` was called on main outside a region of the {}-rank `{}` parallelizer, \
             where no other rank takes part; call it inside `run`",
            self.nprocs(),
            self.mode()
        ))
    }
}

impl dyn Parallelizer {
    /// The backend call `f` of the user's call `op`, traced, with a
    /// timeout named after `op`; `bytes` tells what it moved.
    fn traced<T>(
        &self,
        op: Op,
        bytes: impl FnOnce(&T) -> Option<usize>,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let call = trace::call(op, self.id());
        let result = named(op, f());
        call.end(&result, bytes);
        result
    }
}

/// The bytes of a message, when known.
fn msg_bytes(msg: &crate::msg::Msg) -> Option<usize> {
    msg.byte_len()
}

/// The bytes of the messages a gather brought main.
fn all_bytes(all: &Option<Vec<crate::msg::Msg>>) -> Option<usize> {
    all.as_ref()?.iter().map(crate::msg::Msg::byte_len).sum()
}

/// Main's data of a call to which main must pass `Some`.
fn main_data<T>(data: Option<T>, op: Op) -> Result<T> {
    data.ok_or_else(|| {
        Error::ContractViolation(format!(
            "main must pass Some(data) to {op}; workers pass None"
        ))
    })
}

/// A timeout named after the call the user made, not the receive under it.
fn named<T>(op: Op, r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::Timeout { rank, after, .. } => Error::Timeout { op, rank, after },
        other => other,
    })
}

impl std::fmt::Debug for dyn Parallelizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Parallelizer({}, id={}, nprocs={}, uid={})",
            self.mode(),
            self.id(),
            self.nprocs(),
            self.core().uid()
        )
    }
}
