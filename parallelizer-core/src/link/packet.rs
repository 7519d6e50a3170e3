//! Packets: what the region protocol moves between ranks, and their wire
//! form for transports that move bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};

/// What a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Kind {
    /// A message of a call; its [`Tag`] says which.
    Data = 1,
    /// The region was aborted: another rank failed.
    Abort = 2,
    /// A worker's end of the region, reported to main.
    Done = 3,
    /// A rank has been waiting for a while: what for (to main).
    Blocked = 4,
    /// A rank that reported [`Kind::Blocked`] got going again (to main).
    Resumed = 5,
    /// Main to every rank still running: the region's deadline has passed.
    /// A send blocked on a peer that does not read gives up with `Timeout`
    /// naming that peer (a transport whose sends can block watches for
    /// it); main names the late rank a settling time later.
    Expired = 6,
}

impl Kind {
    /// The kind of a wire code.
    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::Data,
            2 => Kind::Abort,
            3 => Kind::Done,
            4 => Kind::Blocked,
            5 => Kind::Resumed,
            6 => Kind::Expired,
            _ => return None,
        })
    }

    /// The wire code of this kind.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A packet: its kind, the call it belongs to, the region, the group, and
/// a body.
///
/// Data packets carry the call's message; control packets carry a small
/// serde note. The group is the message namespace of the ranks' group the
/// call belongs to (0: all the ranks of the region; see `subgroup` and
/// `split`): a packet is only ever taken by a call of the same group, so a
/// group's messages never match its parent's. A transport moves packets as
/// they are (in one process) or as bytes ([`Packet::encode`] /
/// [`Packet::decode`], or a framing of its own built from the accessors,
/// the group included).
///
/// ```
/// use parallelizer_core::{Op, backend::{Msg, Packet, Tag}};
/// let p = Packet::data(7, Tag::new(Op::Gather, 2), Msg::new(vec![1u32, 2])).in_group(9);
/// let mut bytes = Vec::new();
/// p.encode(&mut bytes).unwrap();
/// let back = Packet::decode(&bytes).unwrap();
/// assert_eq!((back.region(), back.tag(), back.group()), (7, Tag::new(Op::Gather, 2), 9));
/// assert_eq!(back.into_body().into_value::<Vec<u32>>().unwrap(), [1, 2]);
/// ```
#[derive(Debug)]
pub struct Packet {
    kind: Kind,
    tag: Tag,
    region: u64,
    group: u64,
    body: Msg,
}

/// Fixed part of the wire form: kind, op, encoding, reserved, seq, region,
/// group, type-name length.
const FIXED: usize = 1 + 1 + 1 + 1 + 8 + 8 + 8 + 2;

impl Packet {
    /// A data packet of the call `tag` in region `region` (group 0, all the
    /// ranks; see [`Packet::in_group`]).
    pub fn data(region: u64, tag: Tag, body: Msg) -> Packet {
        Packet {
            kind: Kind::Data,
            tag,
            region,
            group: 0,
            body,
        }
    }

    /// This packet in the message namespace of group `group`.
    pub fn in_group(mut self, group: u64) -> Packet {
        self.group = group;
        self
    }

    /// A control packet of `kind` carrying `note`.
    pub(crate) fn control<N: Serialize + DeserializeOwned + Send + 'static>(
        kind: Kind,
        region: u64,
        note: N,
    ) -> Packet {
        Packet {
            kind,
            tag: Tag::p2p(Op::Run),
            region,
            group: 0,
            body: Msg::new(note),
        }
    }

    /// A packet from its parts, as a transport with a framing of its own
    /// reads them (group 0; [`Packet::in_group`] sets another).
    pub fn from_parts(kind: Kind, tag: Tag, region: u64, body: Msg) -> Packet {
        Packet {
            kind,
            tag,
            region,
            group: 0,
            body,
        }
    }

    /// What the packet is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The call it belongs to.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The region it belongs to.
    pub fn region(&self) -> u64 {
        self.region
    }

    /// The group whose message namespace it belongs to (0: all the ranks).
    pub fn group(&self) -> u64 {
        self.group
    }

    /// The body.
    pub fn body(&self) -> &Msg {
        &self.body
    }

    /// The body, by value.
    pub fn into_body(self) -> Msg {
        self.body
    }

    /// A control packet's note.
    pub(crate) fn note<N: Serialize + DeserializeOwned + Send + 'static>(self) -> Result<N> {
        self.body.into_value()
    }

    /// Appends the wire form: a fixed header, the body's type name and
    /// encoding, then the body's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let name = self.body.type_name().unwrap_or("");
        let name_len = u16::try_from(name.len())
            .map_err(|_| Error::Codec(format!("type name `{name}` is too long to send")))?;
        out.push(self.kind.code());
        out.push(self.tag.op().code());
        out.push(match self.body.encoding() {
            Encoding::Pod => 1,
            _ => 0,
        });
        out.push(0);
        out.extend_from_slice(&self.tag.seq().to_le_bytes());
        out.extend_from_slice(&self.region.to_le_bytes());
        out.extend_from_slice(&self.group.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        self.body.encode_into(out)
    }

    /// Reads a packet that [`Packet::encode`] wrote; every field is checked.
    pub fn decode(bytes: &[u8]) -> Result<Packet> {
        let short = || Error::Codec(format!("a packet of {} bytes is truncated", bytes.len()));
        let fixed = bytes.get(..FIXED).ok_or_else(short)?;
        let kind = Kind::from_code(fixed[0])
            .ok_or_else(|| Error::Codec(format!("unknown packet kind {}", fixed[0])))?;
        let op = Op::from_code(fixed[1])
            .ok_or_else(|| Error::Codec(format!("unknown operation code {}", fixed[1])))?;
        let encoding = match fixed[2] {
            0 => Encoding::Serde,
            1 => Encoding::Pod,
            e => return Err(Error::Codec(format!("unknown encoding {e}"))),
        };
        let word = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8 bytes"));
        let (seq, region, group) = (word(4), word(12), word(20));
        let name_len = usize::from(u16::from_le_bytes([fixed[28], fixed[29]]));
        let name = bytes.get(FIXED..FIXED + name_len).ok_or_else(short)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| Error::Codec("a packet's type name is not UTF-8".into()))?;
        let mut body = Msg::from_bytes(encoding, bytes[FIXED + name_len..].to_vec());
        if !name.is_empty() {
            body = body.sent_as(name);
        }
        Ok(Packet::from_parts(kind, Tag::new(op, seq), region, body).in_group(group))
    }
}

/// Why a region was aborted: the rank that failed first and, when known,
/// how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AbortNote {
    pub by_rank: usize,
    pub cause: Option<Error>,
}

/// A worker's end of a region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DoneNote {
    /// The task's failure, if it failed (or `Aborted` if it was released).
    pub error: Option<Error>,
    /// Data packets this rank sent to each rank during the region.
    pub sent: Vec<u64>,
}

/// What a rank that has been waiting for a while waits for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BlockedNote {
    /// The rank it waits for.
    pub on: usize,
    /// The call it is in.
    pub tag: Tag,
    /// Data packets it has received from `on` so far.
    pub got: u64,
    /// Data packets it has sent to each rank so far.
    pub sent: Vec<u64>,
    /// Which of its waits this is (it counts them).
    pub epoch: u64,
}
