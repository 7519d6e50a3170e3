//! What a packet of a plain-data call holds: a loan (of a rank of this
//! process or of another) or the bytes themselves.

use crate::error::Result;
use crate::msg::Msg;

use super::lend::Lent;
use super::remote::Remote;

/// What a packet of a plain-data call holds.
pub(super) enum Part {
    /// A loan from a rank of this process.
    Lent(Lent),
    /// A loan from a rank in another process.
    Remote(Remote),
    /// The bytes themselves, or the note that opens a broadcast in pieces.
    Msg(Msg),
}

impl Part {
    /// The part a packet's message holds.
    pub(super) fn of(msg: Msg) -> Result<Part> {
        match Lent::from_msg(msg) {
            Ok(lent) => Ok(Part::Lent(lent)),
            Err(msg) => match Remote::from_msg(msg) {
                Ok(note) => note.map(Part::Remote),
                Err(msg) => Ok(Part::Msg(msg)),
            },
        }
    }

    /// Whether its sender waits for an acknowledgement.
    pub(super) fn is_loan(&self) -> bool {
        !matches!(self, Part::Msg(_))
    }
}
