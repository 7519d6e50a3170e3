//! Broadcasts of lent buffers along a tree.
//!
//! When main lends its buffer (`plain`), it lends it only to its children
//! in a binomial tree rooted at rank 0 (ranks 1, 2, 4, …; when the rank
//! count is a power of two, rank 1 alone, which heads a binomial tree over
//! the others: as deep, and main waits for one copy, see
//! [`lend_children`](crate::tree::lend_children)) and tells every other
//! rank, in a [`Relay`] note, which rank will lend it the data instead: its
//! parent, a worker that lends its own buffer to its children once it has
//! copied main's. Main returns once its children have copied (as an MPI
//! root returns once its sends are done), and each buffer is read by at
//! most log2(nprocs) ranks at once, not by every worker: on a machine with
//! fewer cores than ranks, main waits for fewer copies.
//!
//! A worker that cannot pass the data on (its copy failed) tells its
//! children so, and they fail too, naming it; a worker whose own buffer
//! has the wrong length still copies into a scratch buffer, passes that on
//! and returns its `Length` error, so only it fails.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::parallelizer::Parallelizer;
use crate::plain::{PlainBuf, PodType};
use crate::tree::{lend_children as children, lend_parent as parent};

use super::Transport;
use super::plain::is_loan;
use super::rank::LinkRank;

/// What main tells a rank that is not its child, and what a parent that
/// cannot pass the data on tells its children.
#[derive(Debug, Serialize, Deserialize)]
enum Relay {
    /// Take the data from this rank.
    From(u64),
    /// The parent could not pass the data on, for this reason.
    Broken(String),
}

impl Relay {
    /// The note a message carries, if it is one; the message back if not.
    fn from_msg(msg: Msg) -> std::result::Result<Result<Relay>, Msg> {
        if msg.type_name() != Some(std::any::type_name::<Relay>()) {
            return Err(msg);
        }
        Ok(msg.into_value::<Relay>())
    }
}

/// A caller's buffer that takes what arrives into a scratch buffer when it
/// does not fit (a buffer of fixed length), keeping that error: a relaying
/// rank must pass the data on even when its own buffer is wrong.
struct OrScratch<'a> {
    buf: &'a mut dyn PlainBuf,
    size: usize,
    scratch: Vec<u8>,
    unfit: Option<Error>,
}

impl PlainBuf for OrScratch<'_> {
    fn bytes(&mut self) -> &mut [u8] {
        match self.unfit {
            Some(_) => &mut self.scratch,
            None => self.buf.bytes(),
        }
    }

    fn fit(&mut self, elements: usize) -> Result<&mut [u8]> {
        if let Err(e) = self.buf.fit(elements) {
            self.unfit = Some(e);
            self.scratch = vec![0; elements * self.size];
            return Ok(&mut self.scratch);
        }
        self.unfit = None;
        self.buf.fit(elements)
    }

    fn can_abandon(&self) -> bool {
        self.buf.can_abandon()
    }

    fn abandon(&mut self) {
        match self.unfit {
            Some(_) => std::mem::forget(std::mem::take(&mut self.scratch)),
            None => self.buf.abandon(),
        }
    }
}

impl<T: Transport> LinkRank<T> {
    /// Main's broadcast of `bytes` when this transport lends them: to its
    /// children, with relay notes to the other ranks; `None` when it does
    /// not lend them.
    pub(super) fn broadcast_lent(
        &self,
        ty: PodType,
        bytes: &[u8],
        spreads: bool,
        tag: Tag,
    ) -> Option<Result<()>> {
        let n = self.nprocs();
        let kids = children(0, n);
        let pushes = kids.len() == 1;
        let lent = self.with_loan(bytes, ty, bytes.len(), (spreads, pushes), |note| {
            for &r in &kids {
                self.send_msg(note(0, bytes.len()), r, tag)?;
            }
            for r in (1..n).filter(|&r| parent(r, n) != 0) {
                self.send_msg(Msg::new(Relay::From(parent(r, n) as u64)), r, tag)?;
            }
            self.await_acks(kids.iter().copied(), bytes, tag)
        })?;
        Some(lent.and_then(|refused| {
            refused
                .into_iter()
                .try_for_each(|r| self.push(r, ty, bytes, tag))
        }))
    }

    /// A worker's end of a broadcast: takes the data from main or, as a
    /// relay note says, from its parent, and if main lent it, passes it on
    /// to its own children.
    pub(super) fn take_broadcast(
        &self,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        tag: Tag,
    ) -> Result<()> {
        // Main's data streamed to this rank lands in `buf` (`recv_or_land`).
        let Some(first) = self.recv_or_land(0, tag, ty, buf)? else {
            return Ok(());
        };
        let (msg, from) = match Relay::from_msg(first) {
            Err(msg) => (msg, 0),
            Ok(Ok(Relay::From(p))) if (p as usize) < self.id() && p > 0 => {
                (self.recv_raw(p as usize, tag)?, p as usize)
            }
            Ok(note) => {
                return Err(Error::Protocol(format!(
                    "{}: a relay note from main that names no earlier worker: {note:?}",
                    tag.op()
                )));
            }
        };
        // What the parent sent, or why it could not pass the data on.
        let msg = match Relay::from_msg(msg) {
            Err(msg) => Ok(msg),
            Ok(Ok(Relay::Broken(why))) => Err(Error::Protocol(why)),
            Ok(other) => Err(Error::Protocol(format!(
                "{}: an unexpected relay note from rank {from}: {other:?}",
                tag.op()
            ))),
        };
        let kids = children(self.id(), self.nprocs());
        // Main lent (to this rank, or to its parent): pass it on.
        let relays = !kids.is_empty() && (from != 0 || msg.as_ref().is_ok_and(is_loan));
        if !relays {
            return self.take_msg(msg?, from, tag, ty, buf);
        }
        let mut held = OrScratch {
            buf,
            size: ty.size,
            scratch: Vec::new(),
            unfit: None,
        };
        let took = msg.and_then(|msg| self.take_msg(msg, from, tag, ty, &mut held));
        let passed = match &took {
            Ok(()) => self.lend_on(&kids, ty, held.bytes(), tag),
            Err(e) => {
                let why = format!(
                    "{}: rank {} could not pass main's data on: {e}",
                    tag.op(),
                    self.id()
                );
                kids.iter()
                    .try_for_each(|&k| self.send_msg(Msg::new(Relay::Broken(why.clone())), k, tag))
            }
        };
        let unfit = held.unfit.take().map_or(Ok(()), Err);
        took.and(unfit).and(passed)
    }

    /// Lends `bytes` to `kids` (or, where this rank lends no more, sends
    /// them as messages).
    fn lend_on(&self, kids: &[usize], ty: PodType, bytes: &[u8], tag: Tag) -> Result<()> {
        let pushes = kids.len() == 1;
        let lent = self.with_loan(bytes, ty, bytes.len(), (false, pushes), |note| {
            for &k in kids {
                self.send_msg(note(0, bytes.len()), k, tag)?;
            }
            self.await_acks(kids.iter().copied(), bytes, tag)
        });
        let pushed = match lent {
            Some(refused) => refused?,
            None => kids.to_vec(),
        };
        pushed
            .into_iter()
            .try_for_each(|k| self.push(k, ty, bytes, tag))
    }
}
