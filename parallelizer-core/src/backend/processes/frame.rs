//! The frame format: a 32-byte header (magic, kind, encoding, alignment
//! flag, region, payload length, group) followed by the payload, and the
//! buffer a payload is assembled in. No socket I/O here.
//!
//! ```text
//! offset  0      2     3    4       5..8  8          16         24        32
//!         magic  kind  enc  align8  zero  region LE  length LE  group LE  payload...
//! ```
//!
//! The group is the message namespace of a group of ranks made inside a
//! region (0: the region's own messages), as in the region protocol's
//! packets: only a call of the same group takes a data frame.
//!
//! A header is bounds-checked before anything is allocated ([`Header::decode`]),
//! and a payload buffer grows only as bytes arrive ([`RecvBuf`]), so a frame
//! that announces 2^60 bytes is a [`BadFrame`] and a truncated one costs no
//! more memory than what was really sent.

use std::collections::TryReserveError;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::error::Result;
use crate::msg::{Encoding, Msg, decode_serde};

use super::shm;

/// Header size in bytes.
pub(super) const HEADER_LEN: usize = 32;
const MAGIC: u16 = 0x5052; // "PR"

/// The largest in-band payload accepted by default (larger plain data goes
/// through shared memory).
pub(super) const DEFAULT_MAX_FRAME: u64 = 1 << 34;
/// The largest shared-memory payload accepted.
const MAX_SHM: u64 = 1 << 40;
/// At most this many bytes are reserved before they arrive.
const RESERVE_AHEAD: usize = 1 << 20;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    /// Worker to main, once: a [`Hello`](super::launch::Hello).
    Hello = 1,
    /// Main to worker: start region `region`: task id (u32 LE) + args.
    Run = 2,
    /// A message of a collective or point-to-point call.
    Data = 3,
    /// The same, its bytes in a memfd passed with the header (no payload).
    Shm = 4,
    /// The region was aborted: an `AbortNote` payload.
    Abort = 5,
    /// Worker to main: the region ended on this worker (a `DoneNote`).
    Done = 6,
    /// Main to worker: leave the serve loop.
    Shutdown = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Run,
            3 => Kind::Data,
            4 => Kind::Shm,
            5 => Kind::Abort,
            6 => Kind::Done,
            7 => Kind::Shutdown,
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
    #[error("unknown frame encoding {0}")]
    Encoding(u8),
    #[error("bad alignment flag {flag} on a {enc:?} frame of {len} bytes")]
    Alignment { flag: u8, enc: Encoding, len: u64 },
    #[error("a {kind:?} frame announces {len} bytes, over the limit of {limit}")]
    TooLong { kind: Kind, len: u64, limit: u64 },
    #[error("cannot reserve {len} bytes for a frame: {error}")]
    Reserve { len: usize, error: TryReserveError },
    #[error("a shared-memory frame without its descriptor")]
    NoDescriptor,
    #[error("too many descriptors in one message")]
    TooManyDescriptors,
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    kind: Kind,
    enc: Encoding,
    region: u64,
    /// Payload bytes on the socket, or the memfd's size for [`Kind::Shm`].
    len: u64,
    /// Plain data of 8-byte-aligned elements (`f64`, `u64`, ...): the
    /// receiver reads it into 8-byte words its `Vec<T>` can take over.
    align8: bool,
    /// The message namespace of a data frame (0: the region's own).
    group: u64,
}

impl Header {
    /// A frame of the protocol (serde payload).
    pub(super) fn new(kind: Kind, region: u64, len: u64) -> Header {
        Header::message(kind, region, len, Encoding::Serde, false)
    }

    /// A message frame ([`Kind::Data`] or [`Kind::Shm`]) of `len` bytes.
    pub(super) fn message(
        kind: Kind,
        region: u64,
        len: u64,
        enc: Encoding,
        align8: bool,
    ) -> Header {
        Header {
            kind,
            enc,
            region,
            len,
            align8,
            group: 0,
        }
    }

    /// This header in the message namespace `group`.
    pub(super) fn in_group(mut self, group: u64) -> Header {
        self.group = group;
        self
    }

    /// The message namespace of a data frame (0: the region's own).
    pub(super) fn group(&self) -> u64 {
        self.group
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

    /// Payload bytes that follow the header on the socket.
    pub(super) fn in_band(&self) -> u64 {
        if self.kind == Kind::Shm { 0 } else { self.len }
    }

    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        h[2] = self.kind as u8;
        h[3] = match self.enc {
            Encoding::Pod => 1,
            _ => 0,
        };
        h[4] = u8::from(self.align8);
        h[8..16].copy_from_slice(&self.region.to_le_bytes());
        h[16..24].copy_from_slice(&self.len.to_le_bytes());
        h[24..32].copy_from_slice(&self.group.to_le_bytes());
        h
    }

    /// Parses and bounds-checks a header; nothing is allocated yet.
    pub(super) fn decode(h: &[u8; HEADER_LEN], max_frame: u64) -> Result<Header, BadFrame> {
        let magic = u16::from_le_bytes([h[0], h[1]]);
        if magic != MAGIC {
            return Err(BadFrame::Magic(magic));
        }
        let kind = Kind::from_u8(h[2]).ok_or(BadFrame::Kind(h[2]))?;
        let enc = match h[3] {
            0 => Encoding::Serde,
            1 => Encoding::Pod,
            e => return Err(BadFrame::Encoding(e)),
        };
        let region = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
        let group = u64::from_le_bytes(h[24..32].try_into().expect("8 bytes"));
        let align8 = match h[4] {
            0 => false,
            1 if enc == Encoding::Pod && len % 8 == 0 => true,
            flag => return Err(BadFrame::Alignment { flag, enc, len }),
        };
        let limit = if kind == Kind::Shm {
            MAX_SHM
        } else {
            max_frame
        };
        if len > limit {
            return Err(BadFrame::TooLong { kind, len, limit });
        }
        Ok(Header {
            kind,
            enc,
            region,
            len,
            align8,
            group,
        })
    }
}

/// A received frame.
#[derive(Debug)]
pub(super) struct Frame {
    header: Header,
    body: Body,
}

/// A received frame's payload.
#[derive(Debug)]
enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of 8-byte-aligned plain data in words.
    Words(Vec<u64>, usize),
    Shm(OwnedFd),
}

impl Frame {
    /// A [`Kind::Shm`] frame: its bytes are in `fd`.
    pub(super) fn shared(header: Header, fd: OwnedFd) -> Frame {
        Frame {
            header,
            body: Body::Shm(fd),
        }
    }

    pub(super) fn header(&self) -> &Header {
        &self.header
    }

    /// The payload as bytes (a copy out of shared memory, if it is there).
    pub(super) fn bytes(self) -> Result<Vec<u8>> {
        match self.body {
            Body::Bytes(b) => Ok(b),
            Body::Words(w, len) => Ok(bytemuck::cast_slice(&w)[..len].to_vec()),
            Body::Shm(fd) => shm::read_all(&fd, self.header.len),
        }
    }

    /// The payload as a message: words and mappings are taken over, not copied.
    pub(super) fn into_msg(self) -> Result<Msg> {
        let enc = self.header.enc;
        match self.body {
            Body::Shm(fd) if self.header.len > 0 => {
                let mapping = shm::map(&fd, self.header.len)?;
                Ok(Msg::from_shared(enc, Arc::new(mapping)))
            }
            Body::Words(w, len) => Ok(Msg::from_words(w, len)),
            _ => Ok(Msg::from_bytes(enc, self.bytes()?)),
        }
    }

    /// A protocol note (the serde payload of Abort, Done); `None` if the
    /// payload is not serde bytes.
    pub(super) fn note<T: serde::de::DeserializeOwned>(self) -> Option<Result<T>> {
        match self.body {
            Body::Bytes(b) => Some(decode_serde(&b)),
            Body::Words(..) | Body::Shm(_) => None,
        }
    }
}

/// Asks for transparent huge pages on a large buffer about to be filled:
/// faulting fresh memory in 4 KiB at a time costs more than copying into it.
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside an allocation of this process;
        // MADV_HUGEPAGE only changes how it is backed (and may be refused).
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// The payload of the frame being read, growing as bytes arrive.
pub(super) struct RecvBuf {
    header: Header,
    data: Data,
}

enum Data {
    /// Bytes, reserved ahead at most [`RESERVE_AHEAD`] at a time.
    Bytes(Vec<u8>),
    /// 8-byte-aligned plain data, reserved whole when the header arrives
    /// (address space only: pages are touched as bytes arrive) so the words
    /// never move; `filled` bytes have arrived.
    Words { words: Vec<u64>, filled: usize },
}

impl RecvBuf {
    pub(super) fn for_header(header: Header) -> Result<RecvBuf, BadFrame> {
        let in_band = header.in_band() as usize;
        let data = if header.align8 {
            let mut words: Vec<u64> = Vec::new();
            words
                .try_reserve_exact(in_band / 8)
                .map_err(|error| BadFrame::Reserve {
                    len: in_band,
                    error,
                })?;
            advise_huge_pages(words.as_mut_ptr().cast(), words.capacity() * 8);
            Data::Words { words, filled: 0 }
        } else {
            Data::Bytes(Vec::with_capacity(in_band.min(RESERVE_AHEAD)))
        };
        Ok(RecvBuf { header, data })
    }

    pub(super) fn header(&self) -> &Header {
        &self.header
    }

    /// Payload bytes received so far.
    pub(super) fn filled(&self) -> usize {
        match &self.data {
            Data::Bytes(b) => b.len(),
            Data::Words { filled, .. } => *filled,
        }
    }

    /// Payload bytes still to come on the socket.
    pub(super) fn missing(&self) -> usize {
        self.header.in_band() as usize - self.filled()
    }

    /// Where the next bytes go: room for at least `min(missing,
    /// RESERVE_AHEAD)` bytes and at most `missing`, to be reported with
    /// [`RecvBuf::advance`].
    pub(super) fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        let want = self.missing();
        match &mut self.data {
            Data::Bytes(body) => {
                if body.capacity() - body.len() < want.min(RESERVE_AHEAD) {
                    let grow = want.min(body.capacity().max(RESERVE_AHEAD));
                    body.reserve(grow);
                }
                let spare = body.spare_capacity_mut();
                let take = spare.len().min(want);
                &mut spare[..take]
            }
            Data::Words { words, filled } => {
                let bytes = words.capacity() * 8;
                // SAFETY: the words' allocation holds `capacity * 8` bytes;
                // a `MaybeUninit<u8>` view of it asks nothing of their
                // contents, and `words` stays borrowed for the slice's life.
                let all = unsafe {
                    std::slice::from_raw_parts_mut(
                        words.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                        bytes,
                    )
                };
                let at = *filled;
                &mut all[at..at + want]
            }
        }
    }

    /// Records that the first `n` bytes of the last [`RecvBuf::spare`] were
    /// written; `true` when the payload is complete.
    pub(super) fn advance(&mut self, n: usize) -> bool {
        assert!(n <= self.missing(), "more bytes than the frame holds");
        match &mut self.data {
            Data::Bytes(body) => {
                assert!(n <= body.capacity() - body.len());
                // SAFETY: the kernel wrote `n` bytes at the start of the
                // spare capacity (`spare`); the assertions bound them.
                unsafe { body.set_len(body.len() + n) }
            }
            Data::Words { filled, .. } => *filled += n,
        }
        self.missing() == 0
    }

    /// The complete frame.
    pub(super) fn finish(self) -> Frame {
        debug_assert_eq!(self.missing(), 0);
        let body = match self.data {
            Data::Bytes(b) => Body::Bytes(b),
            Data::Words { mut words, filled } => {
                assert!(filled % 8 == 0 && filled <= words.capacity() * 8);
                // SAFETY: all `filled` bytes (a whole number of words,
                // checked with the header) were written, inside the capacity.
                unsafe { words.set_len(filled / 8) };
                Body::Words(words, filled)
            }
        };
        Frame {
            header: self.header,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_bounds() {
        let h = Header::new(Kind::Data, 7, 123);
        assert_eq!(Header::decode(&h.encode(), 1000).unwrap(), h);
        let huge = Header::new(Kind::Data, 1, 1 << 60);
        assert!(matches!(
            Header::decode(&huge.encode(), DEFAULT_MAX_FRAME),
            Err(BadFrame::TooLong { .. })
        ));
        let mut bad = h.encode();
        bad[0] = 0;
        assert!(matches!(
            Header::decode(&bad, 1000),
            Err(BadFrame::Magic(0x5000))
        ));
        let mut bad = h.encode();
        bad[2] = 99;
        assert!(matches!(
            Header::decode(&bad, 1000),
            Err(BadFrame::Kind(99))
        ));
        // The alignment flag is only valid on plain data of whole words.
        let odd = Header::message(Kind::Data, 0, 12, Encoding::Pod, true);
        assert!(matches!(
            Header::decode(&odd.encode(), 1 << 20),
            Err(BadFrame::Alignment { flag: 1, .. })
        ));
        // A memfd may be larger than the in-band limit, and has no payload.
        let shm = Header::message(Kind::Shm, 3, 1 << 30, Encoding::Pod, false);
        assert_eq!(Header::decode(&shm.encode(), 1000).unwrap().in_band(), 0);
    }

    #[test]
    fn payloads_grow_as_bytes_arrive() {
        // 2^33 bytes announced: nothing near that is reserved up front.
        let h = Header::new(Kind::Data, 1, 1 << 33);
        let mut buf = RecvBuf::for_header(h).unwrap();
        assert!(buf.spare().len() <= 2 * RESERVE_AHEAD);
        // Words: reserved whole, filled in pieces that need not be words.
        let h = Header::message(Kind::Data, 1, 16, Encoding::Pod, true);
        let mut buf = RecvBuf::for_header(h).unwrap();
        for s in &mut buf.spare()[..5] {
            s.write(1);
        }
        assert!(!buf.advance(5));
        let spare = buf.spare();
        assert_eq!(spare.len(), 11);
        for s in spare.iter_mut() {
            s.write(2);
        }
        assert!(buf.advance(11));
        let frame = buf.finish();
        let want: Vec<u8> = [[1u8; 5].as_slice(), &[2; 11]].concat();
        assert!(matches!(frame.body, Body::Words(_, 16)));
        assert_eq!(frame.bytes().unwrap(), want);
    }
}
