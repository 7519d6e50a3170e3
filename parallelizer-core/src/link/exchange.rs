//! Two ranks swapping values in one step (the pairs of recursive doubling
//! in `allreduce`), lending large plain data across processes.
//!
//! Both partners send at once, so neither may wait for the other to
//! receive before it receives itself (two lent sends would wait for each
//! other). An exchange therefore sends its note first, takes the
//! partner's value (copying it out of the partner's memory and
//! acknowledging, or taking its message), and only then waits for the
//! partner's acknowledgement of its own loan. Each side sends the other,
//! in order, its value, its answer to the other's loan and, if its own
//! loan was refused, the bytes; each side reads them in that order, so a
//! partner that lends and one that does not pair up as well.

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::parallelizer::Parallelizer;

use super::Transport;
use super::plain::LEND_FROM;
use super::rank::LinkRank;
use super::remote::{CopyError, Refused, Remote, Ticket};

impl<T: Transport> LinkRank<T> {
    /// Sends `mine` to `partner` and returns what `partner` sent in the
    /// same step of the call `tag`; plain data of [`LEND_FROM`] bytes or
    /// more is lent where ranks read each other's memory.
    pub(crate) fn exchange_msg(&self, mine: &Msg, partner: usize, tag: Tag) -> Result<Msg> {
        let t = self.transport();
        let lendable = mine
            .pod_bytes()
            .filter(|b| b.len() >= LEND_FROM && !t.shares_memory() && t.reads_peer_memory());
        let ticket = lendable.and_then(Ticket::open);
        let Some(ticket) = ticket else {
            self.send_msg(mine.duplicate()?, partner, tag)?;
            return self.recv_msg(partner, tag);
        };
        let name = mine.type_name().unwrap_or("");
        self.send_msg(ticket.note_of(name), partner, tag)?;
        // The partner's value: its message, or its loan copied out here.
        let theirs = self.recv_raw(partner, tag)?;
        // `Err(None)`: refused here, so its bytes come as a message.
        let theirs = match Remote::from_msg(theirs) {
            Err(msg) => Ok(msg),
            Ok(note) => match note.map(|n| n.to_msg()) {
                Ok(Err(CopyError::Refused(why))) => {
                    self.send_msg(why.into_msg(), partner, tag)?;
                    Err(None)
                }
                copied => {
                    self.ack(partner, tag)?;
                    copied.and_then(|c| c.map_err(Error::from)).map_err(Some)
                }
            },
        };
        // The partner's answer to this rank's loan.
        if Refused::from_msg(&self.recv_raw(partner, tag)?) {
            self.transport().peer_memory_refused();
            self.send_msg(mine.duplicate()?, partner, tag)?;
        }
        drop(ticket);
        match theirs {
            Ok(msg) => Ok(msg),
            Err(Some(e)) => Err(e),
            Err(None) => self.recv_msg(partner, tag),
        }
    }
}
