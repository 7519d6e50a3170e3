//! The frame format — a 44-byte header, the body's type name, then the
//! payload — and the buffer a frame is assembled in. No socket I/O here.
//!
//! ```text
//! offset  size  field
//!      0     2  magic "PR" (0x5052, little-endian)
//!      2     1  frame kind: 1 Hello, 2 Run, 3 Packet, 4 Shutdown, 5 Broken
//!      3     1  packet kind (Packet frames): 1 Data, 2 Abort, 3 Done, 4 Blocked,
//!               5 Resumed; 0 otherwise
//!      4     1  operation of the packet's tag (`Op::code`); 0 otherwise
//!      5     1  encoding of the payload: 0 serde, 1 plain data
//!      6     1  flags: bit 0 plain data of 8-byte elements (received into
//!               8-byte words), bit 1 the payload is in a memfd passed with
//!               the header (`SCM_RIGHTS`); the other bits are 0
//!      7     1  descriptors of shared arrays passed with the header (after
//!               the payload's memfd, if any), at most 32; Packet and Run
//!      8     8  sequence number of the packet's tag (LE); 0 otherwise
//!     16     8  region (LE)
//!     24     8  group (LE): the packet's message namespace (`Packet::group`;
//!               0 the region's own calls); 0 otherwise
//!     32     8  payload length (LE): bytes that follow the type name, or the
//!               memfd's size
//!     40     2  type-name length n (LE), at most 1024
//!     42     2  0
//!     44     n  the body's type name (UTF-8; a Run frame: the arguments')
//!   44+n   len  the payload (none when it is in a memfd)
//! ```
//!
//! A Packet frame is one [`Packet`] of the region protocol: its kind, tag
//! (operation and sequence number), region, group, and body with the
//! sender's type name (`Msg::sent_as` on receipt, so a wrong-type receive
//! names both types). The group is the id of the group of ranks whose call
//! sent it (`split`, `subgroup` inside a region); the receiver files it in
//! that group's mailboxes, so a group's messages never match its parent's.
//! Hello carries a serde `Hello`; Run a task id (u32 LE) and the serialized
//! arguments; Shutdown and Broken nothing.
//!
//! A header is bounds-checked before anything is allocated
//! ([`Header::decode`]); a payload buffer grows only as bytes arrive
//! ([`RecvBuf`]), also the 8-byte words of aligned plain data; and a memfd
//! is checked against its header — size, seals, every page really there —
//! before it is mapped ([`shm::open`]). A frame that fails any check is a
//! [`BadFrame`].

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::link::{Kind as PacketKind, Landing, Packet};
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};
use crate::pages::advise_huge;

use super::shared::{self, MAX_ATTACHED};
use super::shm;
use crate::attach::Attachment;

/// Header size in bytes.
pub(super) const HEADER_LEN: usize = 44;
const MAGIC: u16 = 0x5052; // "PR"

/// The longest type name a frame may carry.
pub(super) const MAX_NAME: usize = 1024;
/// The largest in-band payload accepted by default (larger plain data goes
/// through shared memory).
pub(super) const DEFAULT_MAX_FRAME: u64 = 1 << 34;
/// The largest shared-memory payload accepted.
const MAX_SHM: u64 = 1 << 40;
/// At most this many bytes are reserved before they arrive.
const RESERVE_AHEAD: usize = 1 << 20;

const FLAG_ALIGN8: u8 = 1;
const FLAG_SHM: u8 = 2;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    /// Worker to main, once: a [`Hello`](super::launch::Hello).
    Hello = 1,
    /// Main to worker: run region `region`: task id (u32 LE) + args.
    Run = 2,
    /// A packet of the region protocol.
    Packet = 3,
    /// Main to worker: leave the serve loop.
    Shutdown = 4,
    /// Worker to main, before its Done report: it can no longer read some
    /// peer, so the pool must be replaced after this region.
    Broken = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Run,
            3 => Kind::Packet,
            4 => Kind::Shutdown,
            5 => Kind::Broken,
            _ => return None,
        })
    }
}

/// Why a stream cannot be parsed: it is corrupt, or hostile.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadFrame {
    #[error("bad frame magic {0:#06x}: the stream is corrupt")]
    Magic(u16),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("unknown packet kind {0}")]
    PacketKind(u8),
    #[error("unknown operation code {0}")]
    Op(u8),
    #[error("unknown frame encoding {0}")]
    Encoding(u8),
    #[error("bad header bytes: {0}")]
    Header(&'static str),
    #[error("bad alignment flag on a {enc:?} frame of {len} bytes")]
    Alignment { enc: Encoding, len: u64 },
    #[error("a {kind:?} frame announces {len} bytes, over the limit of {limit}")]
    TooLong { kind: Kind, len: u64, limit: u64 },
    #[error("a frame announces a type name of {0} bytes, over the limit of {MAX_NAME}")]
    NameTooLong(usize),
    #[error("a frame's type name is not UTF-8")]
    NameNotUtf8,
    #[error("a shared-memory frame without its descriptor")]
    NoDescriptor,
    #[error("too many descriptors in one message")]
    TooManyDescriptors,
    #[error("a shared-memory frame: {0}")]
    Memfd(String),
}

/// Why a send blocked on its peer gave up ([`Header::halts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Halt {
    /// Main said the region's deadline passed.
    Expired,
    /// The region was aborted.
    Aborted,
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    kind: Kind,
    /// Packet frames: the packet's kind and tag.
    packet: Option<(PacketKind, Tag)>,
    region: u64,
    /// Packet frames: the packet's group (message namespace); 0 otherwise.
    group: u64,
    enc: Encoding,
    /// Plain data of 8-byte-aligned elements (`f64`, `u64`, ...): the
    /// receiver reads it into 8-byte words its `Vec<T>` can take over.
    align8: bool,
    /// The payload is in a memfd passed with the header.
    shm: bool,
    name_len: u16,
    /// Payload bytes on the socket, or the memfd's size.
    len: u64,
    /// Descriptors of shared arrays that come with the header.
    attached: u8,
}

impl Header {
    /// A frame of `kind` (not a packet) with a serde payload of `len` bytes
    /// after a type name of `name_len` bytes.
    pub(super) fn control(kind: Kind, region: u64, name_len: usize, len: u64) -> Header {
        debug_assert!(kind != Kind::Packet);
        Header {
            kind,
            packet: None,
            region,
            group: 0,
            enc: Encoding::Serde,
            align8: false,
            shm: false,
            name_len: name_len.min(MAX_NAME) as u16,
            len,
            attached: 0,
        }
    }

    /// The header of `packet`'s frame, its body `len` bytes in `enc`.
    pub(super) fn packet(packet: &Packet, name_len: usize, enc: Encoding, len: u64) -> Header {
        Header {
            kind: Kind::Packet,
            packet: Some((packet.kind(), packet.tag())),
            region: packet.region(),
            group: packet.group(),
            enc,
            align8: false,
            shm: false,
            name_len: name_len.min(MAX_NAME) as u16,
            len,
            attached: 0,
        }
    }

    /// Marks plain data of 8-byte elements (read into words).
    pub(super) fn aligned(mut self, align8: bool) -> Header {
        self.align8 = align8;
        self
    }

    /// Marks a payload that is in a memfd passed with the header.
    pub(super) fn shared(mut self) -> Header {
        self.shm = true;
        self
    }

    /// Announces `n` descriptors of shared arrays with the header.
    pub(super) fn with_attached(mut self, n: usize) -> Header {
        self.attached = n.min(MAX_ATTACHED) as u8;
        self
    }

    /// Whether this is the header of the data packet of region `region`
    /// that `landing` takes: plain data of exactly its length, on the
    /// stream, with nothing attached.
    pub(super) fn lands(&self, region: u64, landing: &Landing) -> bool {
        let data = matches!(self.packet, Some((PacketKind::Data, tag)) if landing.fits(self.group, tag, self.len));
        data && self.kind == Kind::Packet
            && self.region == region
            && self.enc == Encoding::Pod
            && !self.shm
            && self.attached == 0
    }

    pub(super) fn attached(&self) -> usize {
        usize::from(self.attached)
    }

    /// Whether this is the header of a packet of region `region` that ends
    /// a send blocked on its peer, and why: main's word that the deadline
    /// passed, or an abort.
    pub(super) fn halts(&self, region: u64) -> Option<Halt> {
        if self.kind != Kind::Packet || self.region != region {
            return None;
        }
        match self.packet {
            Some((PacketKind::Expired, _)) => Some(Halt::Expired),
            Some((PacketKind::Abort, _)) => Some(Halt::Aborted),
            _ => None,
        }
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    pub(super) fn region(&self) -> u64 {
        self.region
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn is_shared(&self) -> bool {
        self.shm
    }

    pub(super) fn name_len(&self) -> usize {
        usize::from(self.name_len)
    }

    /// Payload bytes that follow the type name on the socket.
    pub(super) fn in_band(&self) -> u64 {
        if self.shm { 0 } else { self.len }
    }

    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        h[2] = self.kind as u8;
        if let Some((kind, tag)) = self.packet {
            h[3] = kind.code();
            h[4] = tag.op().code();
            h[8..16].copy_from_slice(&tag.seq().to_le_bytes());
        }
        h[5] = match self.enc {
            Encoding::Pod => 1,
            _ => 0,
        };
        h[6] = if self.align8 { FLAG_ALIGN8 } else { 0 } | if self.shm { FLAG_SHM } else { 0 };
        h[7] = self.attached;
        h[16..24].copy_from_slice(&self.region.to_le_bytes());
        h[24..32].copy_from_slice(&self.group.to_le_bytes());
        h[32..40].copy_from_slice(&self.len.to_le_bytes());
        h[40..42].copy_from_slice(&self.name_len.to_le_bytes());
        h
    }

    /// Parses and bounds-checks a header; nothing is allocated yet.
    pub(super) fn decode(h: &[u8; HEADER_LEN], max_frame: u64) -> Result<Header, BadFrame> {
        let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
        let magic = u16::from_le_bytes([h[0], h[1]]);
        if magic != MAGIC {
            return Err(BadFrame::Magic(magic));
        }
        let kind = Kind::from_u8(h[2]).ok_or(BadFrame::Kind(h[2]))?;
        let (seq, region, group, len) = (word(8), word(16), word(24), word(32));
        let packet = if kind == Kind::Packet {
            let pkind = PacketKind::from_code(h[3]).ok_or(BadFrame::PacketKind(h[3]))?;
            let op = Op::from_code(h[4]).ok_or(BadFrame::Op(h[4]))?;
            Some((pkind, Tag::new(op, seq)))
        } else if h[3] != 0 || h[4] != 0 || seq != 0 || group != 0 {
            return Err(BadFrame::Header("a tag on a frame that is not a packet"));
        } else {
            None
        };
        let enc = match h[5] {
            0 => Encoding::Serde,
            1 => Encoding::Pod,
            e => return Err(BadFrame::Encoding(e)),
        };
        let flags = h[6];
        if flags & !(FLAG_ALIGN8 | FLAG_SHM) != 0 || h[42] != 0 || h[43] != 0 {
            return Err(BadFrame::Header("reserved bits are set"));
        }
        if usize::from(h[7]) > MAX_ATTACHED
            || (h[7] != 0 && !matches!(kind, Kind::Packet | Kind::Run))
        {
            return Err(BadFrame::TooManyDescriptors);
        }
        let (align8, shm) = (flags & FLAG_ALIGN8 != 0, flags & FLAG_SHM != 0);
        if align8 && (enc != Encoding::Pod || len % 8 != 0 || shm) {
            return Err(BadFrame::Alignment { enc, len });
        }
        if shm && kind != Kind::Packet {
            return Err(BadFrame::Header(
                "shared memory on a frame that is not a packet",
            ));
        }
        let name_len = u16::from_le_bytes([h[40], h[41]]);
        if usize::from(name_len) > MAX_NAME {
            return Err(BadFrame::NameTooLong(name_len.into()));
        }
        let limit = if shm { MAX_SHM } else { max_frame };
        if len > limit {
            return Err(BadFrame::TooLong { kind, len, limit });
        }
        Ok(Header {
            kind,
            packet,
            region,
            group,
            enc,
            align8,
            shm,
            name_len,
            len,
            attached: h[7],
        })
    }
}

/// A received frame.
#[derive(Debug)]
pub(super) struct Frame {
    header: Header,
    name: Box<str>,
    body: Body,
    /// What the shared arrays' descriptors became ([`shared::attachments`]).
    attached: Vec<Attachment>,
}

/// A received frame's payload.
#[derive(Debug)]
enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of 8-byte-aligned plain data in words.
    Words(Vec<u64>, usize),
    /// A checked, read-only mapping of the memfd that came with the header.
    Shared(Arc<memmap2::Mmap>),
    /// Plain data written straight into the buffer of a posted receive.
    Landed(Arc<Landing>),
}

impl Frame {
    pub(super) fn header(&self) -> &Header {
        &self.header
    }

    /// The frame with the descriptors of shared arrays that came with it.
    pub(super) fn with_descriptors(mut self, fds: Vec<OwnedFd>) -> Frame {
        self.attached = shared::attachments(fds);
        self
    }

    /// The payload as bytes (a copy out of shared memory, if it is there).
    pub(super) fn bytes(self) -> Vec<u8> {
        match self.body {
            Body::Bytes(b) => b,
            Body::Words(w, len) => bytemuck::cast_slice(&w)[..len].to_vec(),
            Body::Shared(m) => m.to_vec(),
            Body::Landed(l) => (*l).as_ref().to_vec(),
        }
    }

    /// The payload as a message carrying the sender's type name: words and
    /// mappings are taken over, not copied.
    fn into_msg(self) -> Msg {
        let enc = self.header.enc;
        let msg = match self.body {
            Body::Bytes(b) => Msg::from_wire(enc, b, self.attached),
            Body::Words(w, len) => Msg::from_words(w, len),
            Body::Shared(m) => Msg::from_shared(enc, m).with_attachments(self.attached),
            Body::Landed(l) => Msg::from_shared(enc, l),
        };
        if self.name.is_empty() {
            msg
        } else {
            msg.sent_as(&self.name)
        }
    }

    /// The packet of a Packet frame (`None` for the other kinds).
    pub(super) fn into_packet(self) -> Option<Packet> {
        let (kind, tag) = self.header.packet?;
        let (region, group) = (self.header.region, self.header.group);
        Some(Packet::from_parts(kind, tag, region, self.into_msg()).in_group(group))
    }

    /// A Run frame's task id and arguments; `None` if it is too short.
    pub(super) fn into_run(mut self) -> Option<(u32, Msg)> {
        let name = self.name.clone();
        let attached = std::mem::take(&mut self.attached);
        let mut bytes = self.bytes();
        let id = u32::from_le_bytes(bytes.get(..4)?.try_into().expect("4 bytes"));
        bytes.drain(..4);
        let args = Msg::from_wire(Encoding::Serde, bytes, attached);
        Some((
            id,
            if name.is_empty() {
                args
            } else {
                args.sent_as(&name)
            },
        ))
    }
}

/// The type name and payload of the frame being read, growing as bytes
/// arrive (the memfd of a shared-memory frame is held beside it).
pub(super) struct RecvBuf {
    header: Header,
    /// The type name (at most [`MAX_NAME`] bytes, zeroed), `name_got`
    /// bytes of it received.
    name: Vec<u8>,
    name_got: usize,
    data: Data,
    fd: Option<OwnedFd>,
}

/// Where the next bytes of a frame go ([`RecvBuf::spare`]).
pub(super) enum Spare<'a> {
    /// The type name's buffer.
    Name(&'a mut [u8]),
    /// The payload's spare capacity.
    Payload(&'a mut [MaybeUninit<u8>]),
}

impl Spare<'_> {
    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Spare::Name(b) => b.len(),
            Spare::Payload(b) => b.len(),
        }
    }
}

enum Data {
    /// Bytes, reserved ahead at most [`RESERVE_AHEAD`] at a time.
    Bytes(Vec<u8>),
    /// 8-byte-aligned plain data, in words reserved ahead like bytes: the
    /// words received so far (`words.len()`, all written) move with the
    /// vector when it grows, which it does only when it is full.
    Words { words: Vec<u64>, filled: usize },
    /// Into the caller's buffer of a posted receive, `filled` bytes so far.
    Landing {
        landing: Arc<Landing>,
        filled: usize,
    },
}

impl RecvBuf {
    /// The buffer for the frame of `header`, with the memfd that came with
    /// it, if any. Reserves no more than [`RESERVE_AHEAD`] bytes.
    pub(super) fn for_header(header: Header, fd: Option<OwnedFd>) -> Result<RecvBuf, BadFrame> {
        if header.shm != fd.is_some() {
            return Err(BadFrame::NoDescriptor);
        }
        let ahead = (header.in_band() as usize).min(RESERVE_AHEAD);
        let data = if header.align8 {
            Data::Words {
                words: Vec::with_capacity(ahead / 8),
                filled: 0,
            }
        } else {
            Data::Bytes(Vec::with_capacity(ahead))
        };
        Ok(RecvBuf {
            header,
            name: vec![0; header.name_len()],
            name_got: 0,
            data,
            fd,
        })
    }

    /// The buffer for the frame of `header` whose payload goes into the
    /// buffer of `landing` (which it [`lands`](Header::lands) in).
    pub(super) fn landing(header: Header, landing: Arc<Landing>) -> RecvBuf {
        debug_assert_eq!(header.len, landing.len() as u64);
        RecvBuf {
            header,
            name: vec![0; header.name_len()],
            name_got: 0,
            data: Data::Landing { landing, filled: 0 },
            fd: None,
        }
    }

    /// Whether the payload goes into `landing`'s buffer.
    pub(super) fn lands_in(&self, landing: &Arc<Landing>) -> bool {
        matches!(&self.data, Data::Landing { landing: l, .. } if Arc::ptr_eq(l, landing))
    }

    /// The landing was withdrawn: what arrived is copied out of its buffer,
    /// and the rest of the payload comes after it into bytes of its own.
    pub(super) fn unland(&mut self) {
        if let Data::Landing { landing, filled } = &self.data {
            // SAFETY: the landing is still posted (the endpoint withdraws
            // it after this), and its first `filled` bytes were written.
            let got = unsafe { std::slice::from_raw_parts(landing.write_at(0), *filled) };
            self.data = Data::Bytes(got.to_vec());
        }
    }

    pub(super) fn header(&self) -> &Header {
        &self.header
    }

    /// Payload bytes received so far.
    pub(super) fn filled(&self) -> usize {
        match &self.data {
            Data::Bytes(b) => b.len(),
            Data::Words { filled, .. } | Data::Landing { filled, .. } => *filled,
        }
    }

    /// Name and payload bytes still to come on the socket.
    pub(super) fn missing(&self) -> usize {
        self.name.len() - self.name_got + self.header.in_band() as usize - self.filled()
    }

    /// Where the next bytes go: some of the type name's, else room for at
    /// least `min(missing, RESERVE_AHEAD)` payload bytes and at most
    /// `missing`, to be reported with [`RecvBuf::advance`].
    pub(super) fn spare(&mut self) -> Spare<'_> {
        if self.name_got < self.name.len() {
            return Spare::Name(&mut self.name[self.name_got..]);
        }
        let want = self.missing();
        match &mut self.data {
            Data::Bytes(body) => {
                if body.capacity() - body.len() < want.min(RESERVE_AHEAD) {
                    let grow = want.min(body.capacity().max(RESERVE_AHEAD));
                    body.reserve(grow);
                }
                let spare = body.spare_capacity_mut();
                let take = spare.len().min(want);
                Spare::Payload(&mut spare[..take])
            }
            Data::Words { words, filled } => {
                if *filled == words.capacity() * 8 {
                    // Full: every byte is written, so the words can be kept
                    // (and moved) as they are. Grow by at least the reserve,
                    // doubling, never past what the frame announced.
                    // SAFETY: the first `filled / 8` words were written by
                    // the kernel (`advance`), inside the capacity.
                    unsafe { words.set_len(*filled / 8) };
                    let grow = want.min(words.capacity() * 8).max(want.min(RESERVE_AHEAD));
                    words.reserve_exact(grow.div_ceil(8));
                    // Faulting fresh memory in 4 KiB at a time costs more
                    // than copying into it.
                    advise_huge(words.as_ptr() as usize, words.capacity() * 8);
                }
                let written = words.len() * 8;
                let spare = words.spare_capacity_mut();
                // SAFETY: a `MaybeUninit<u8>` view of the words' spare
                // capacity (`spare.len() * 8` bytes) asks nothing of their
                // contents, and `words` stays borrowed for the slice's life.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(
                        spare.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                        spare.len() * 8,
                    )
                };
                let at = *filled - written;
                let take = (bytes.len() - at).min(want);
                Spare::Payload(&mut bytes[at..at + take])
            }
            Data::Landing { landing, filled } => {
                // SAFETY: the landing is posted while its frame is read (the
                // endpoint unlands a frame before it withdraws the landing),
                // the `len - filled` bytes from `filled` lie in its buffer,
                // and this reader is their one writer; they stay borrowed
                // through `self` for the slice's life.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(
                        landing.write_at(*filled).cast::<MaybeUninit<u8>>(),
                        landing.len() - *filled,
                    )
                };
                let take = bytes.len().min(want);
                Spare::Payload(&mut bytes[..take])
            }
        }
    }

    /// Records that the first `n` bytes of the last [`RecvBuf::spare`] were
    /// written; `true` when the frame is complete.
    pub(super) fn advance(&mut self, n: usize) -> bool {
        assert!(n <= self.missing(), "more bytes than the frame holds");
        if self.name_got < self.name.len() {
            assert!(self.name_got + n <= self.name.len());
            self.name_got += n;
        } else {
            match &mut self.data {
                Data::Bytes(body) => {
                    assert!(n <= body.capacity() - body.len());
                    // SAFETY: the kernel wrote `n` bytes at the start of
                    // the spare capacity (`spare`); the assertions bound them.
                    unsafe { body.set_len(body.len() + n) }
                }
                Data::Words { words, filled } => {
                    assert!(*filled + n <= words.capacity() * 8);
                    *filled += n;
                }
                Data::Landing { landing, filled } => {
                    assert!(*filled + n <= landing.len());
                    *filled += n;
                }
            }
        }
        self.missing() == 0
    }

    /// The complete frame; a memfd is checked against the header and mapped.
    pub(super) fn finish(self) -> Result<Frame, BadFrame> {
        debug_assert_eq!(self.missing(), 0);
        let name = String::from_utf8(self.name).map_err(|_| BadFrame::NameNotUtf8)?;
        let body = match (self.fd, self.data) {
            (Some(fd), _) => match shm::open(&fd, self.header.len).map_err(BadFrame::Memfd)? {
                Some(mapping) => Body::Shared(Arc::new(mapping)),
                None => Body::Bytes(Vec::new()),
            },
            (None, Data::Bytes(b)) => Body::Bytes(b),
            (None, Data::Words { mut words, filled }) => {
                assert!(filled % 8 == 0 && filled <= words.capacity() * 8);
                // SAFETY: all `filled` bytes (a whole number of words,
                // checked with the header) were written, inside the capacity.
                unsafe { words.set_len(filled / 8) };
                Body::Words(words, filled)
            }
            (None, Data::Landing { landing, filled }) => {
                assert_eq!(filled, landing.len());
                landing.landed();
                Body::Landed(landing)
            }
        };
        Ok(Frame {
            header: self.header,
            name: name.into_boxed_str(),
            body,
            attached: Vec::new(),
        })
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
