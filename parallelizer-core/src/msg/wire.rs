//! A message's wire form with its attachments: values that travel by
//! reference (shared arrays) beside the encoded bytes ([`Attachment`]).

use super::{Encoding, Msg, Repr};
use crate::attach::{Attachment, OUTGOING, with_slot};
use crate::error::Result;

impl Msg {
    /// The wire form of this message and the objects it refers to out of
    /// band ([`Attachment`]), for a transport that can move them (values
    /// such as shared arrays can only be sent this way).
    ///
    /// ```
    /// # use parallelizer_core::backend::{Encoding, Msg};
    /// let (bytes, attached) = Msg::new(7u32).to_wire().unwrap();
    /// assert!(attached.is_empty());
    /// let back = Msg::from_wire(Encoding::Serde, bytes, attached);
    /// assert_eq!(back.into_value::<u32>().unwrap(), 7);
    /// ```
    pub fn to_wire(&self) -> Result<(Vec<u8>, Vec<Attachment>)> {
        match &self.repr {
            Repr::Bytes(_, b) => Ok((b.to_vec(), self.attached.clone())),
            Repr::Value(v) => {
                let mut out = Vec::new();
                let (r, attached) = with_slot(&OUTGOING, Some(Vec::new()), || v.encode(&mut out));
                r?;
                Ok((out, attached.unwrap_or_default()))
            }
        }
    }

    /// [`Msg::to_wire`], without copying bytes that already are.
    pub fn into_wire(self) -> Result<(Vec<u8>, Vec<Attachment>)> {
        match self.repr {
            Repr::Bytes(_, b) => Ok((b.into_vec(), self.attached)),
            Repr::Value(_) => self.to_wire(),
        }
    }

    /// A message that arrived as `bytes` with the attachments `attached`
    /// (as [`Msg::to_wire`] made them on the sender, after the transport
    /// moved them).
    pub fn from_wire(encoding: Encoding, bytes: Vec<u8>, attached: Vec<Attachment>) -> Msg {
        let mut m = Msg::from_bytes(encoding, bytes);
        m.attached = attached;
        m
    }

    /// Gives these attachments to a message that arrived as bytes (its
    /// decoding finds them with `attached`).
    pub fn with_attachments(mut self, attached: Vec<Attachment>) -> Msg {
        self.attached = attached;
        self
    }

    /// The attachments of a message that arrived as bytes.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attached
    }
}
