//! Frames on the Unix sockets between ranks, and the per-rank endpoint that
//! reads and writes them without ever blocking on one peer only.
//!
//! A frame is a 24-byte header (magic, kind, encoding, region, payload
//! length) followed by the payload. Lengths are checked against a limit
//! before anything is allocated, and payload buffers grow only as bytes
//! arrive, so a frame that announces 2^60 bytes is an [`Error::Codec`] and a
//! truncated one costs no more memory than what was really sent.
//!
//! Every socket is non-blocking. A rank waiting for a message from one peer
//! polls all of its sockets, so it drains whatever the others send (no
//! write-write deadlock), sees abort frames from any rank at once, and sees
//! a dead peer as EOF.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg, decode_serde, encode_serde};
use crate::op::Op;

use super::shm;

/// Header size in bytes.
pub(crate) const HEADER_LEN: usize = 24;
const MAGIC: u16 = 0x5052; // "PR"

/// The largest in-band payload accepted by default (larger plain data goes
/// through shared memory).
pub(crate) const DEFAULT_MAX_FRAME: u64 = 1 << 34;
/// The largest shared-memory payload accepted.
pub(crate) const MAX_SHM: u64 = 1 << 40;
/// At most this many bytes are reserved before they arrive.
const RESERVE_AHEAD: usize = 1 << 20;
/// File descriptors accepted per `recvmsg`.
const MAX_FDS: usize = 8;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Worker to main, once: rank, pid, token, SPMD flag, initializer outcome.
    Hello = 1,
    /// Main to worker: start region `region`: task id (u32 LE) + args.
    Run = 2,
    /// A message of a collective or point-to-point call.
    Data = 3,
    /// The same, its bytes in a memfd passed with the header (payload empty).
    Shm = 4,
    /// The region was aborted: `AbortNote` payload.
    Abort = 5,
    /// Worker to main: the region ended on this worker (`Option<Error>`).
    Done = 6,
    /// Main to worker: exit the serve loop.
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

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: Kind,
    pub enc: Encoding,
    pub region: u64,
    /// Payload bytes on the socket, or the memfd's size for [`Kind::Shm`].
    pub len: u64,
    /// Plain data of 8-byte-aligned elements (`f64`, `u64`, ...): the
    /// receiver reads it into 8-byte words its `Vec<T>` can take over.
    pub align8: bool,
}

impl Header {
    pub(crate) fn new(kind: Kind, region: u64, len: u64) -> Header {
        Header {
            kind,
            enc: Encoding::Serde,
            region,
            len,
            align8: false,
        }
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
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
        h
    }

    /// Parses and bounds-checks a header; nothing is allocated yet.
    pub(crate) fn decode(h: &[u8; HEADER_LEN], max_frame: u64) -> Result<Header> {
        let magic = u16::from_le_bytes([h[0], h[1]]);
        if magic != MAGIC {
            return Err(Error::Codec(format!(
                "bad frame magic {magic:#06x}: the stream is corrupt"
            )));
        }
        let kind = Kind::from_u8(h[2])
            .ok_or_else(|| Error::Codec(format!("unknown frame kind {}", h[2])))?;
        let enc = match h[3] {
            0 => Encoding::Serde,
            1 => Encoding::Pod,
            e => return Err(Error::Codec(format!("unknown frame encoding {e}"))),
        };
        let region = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
        let align8 = match h[4] {
            0 => false,
            1 if enc == Encoding::Pod && len % 8 == 0 => true,
            a => {
                return Err(Error::Codec(format!(
                    "bad alignment flag {a} on a {enc:?} frame of {len} bytes"
                )));
            }
        };
        let limit = if kind == Kind::Shm {
            MAX_SHM
        } else {
            max_frame
        };
        if len > limit {
            return Err(Error::Codec(format!(
                "a {kind:?} frame announces {len} bytes, over the limit of {limit}"
            )));
        }
        Ok(Header {
            kind,
            enc,
            region,
            len,
            align8,
        })
    }
}

/// A received frame.
#[derive(Debug)]
pub(crate) struct Frame {
    pub header: Header,
    pub body: Body,
}

/// A received frame's payload.
#[derive(Debug)]
pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of 8-byte-aligned plain data in words.
    Words(Vec<u64>, usize),
    Shm(OwnedFd),
}

impl Frame {
    pub(crate) fn bytes(self) -> Result<Vec<u8>> {
        match self.body {
            Body::Bytes(b) => Ok(b),
            Body::Words(w, len) => Ok(bytemuck::cast_slice(&w)[..len].to_vec()),
            Body::Shm(fd) => shm::read_all(&fd, self.header.len),
        }
    }

    pub(crate) fn into_msg(self) -> Result<Msg> {
        let enc = self.header.enc;
        match self.body {
            Body::Shm(fd) if self.header.len > 0 => {
                let mapping = shm::map(&fd, self.header.len)?;
                Ok(Msg::from_shared(enc, std::sync::Arc::new(mapping)))
            }
            Body::Words(w, len) => Ok(Msg::from_words(w, len)),
            _ => Ok(Msg::from_bytes(enc, self.bytes()?)),
        }
    }
}

/// The payload of an [`Kind::Abort`] frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AbortNote {
    pub by_rank: u32,
    pub cause: Option<Error>,
}

/// Why a region was aborted, as this rank knows it.
#[derive(Debug)]
pub(crate) struct Abort {
    pub region: u64,
    pub by_rank: usize,
    /// The failure itself, when this rank knows it (main always learns it).
    pub cause: Option<Error>,
}

/// Incremental frame parser of one socket.
#[derive(Default)]
struct Reader {
    head: [u8; HEADER_LEN],
    got: usize,
    cur: Option<(Header, RecvBuf, Option<OwnedFd>)>,
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

/// The payload of the frame being read.
enum RecvBuf {
    /// Bytes, growing as they arrive.
    Bytes(Vec<u8>),
    /// 8-byte-aligned plain data, reserved whole when the header arrives
    /// (address space only: pages are touched as bytes arrive) so the words
    /// never move; `filled` bytes have arrived.
    Words { words: Vec<u64>, filled: usize },
}

impl RecvBuf {
    fn for_header(h: &Header, in_band: usize) -> std::result::Result<RecvBuf, ReadError> {
        if !h.align8 {
            return Ok(RecvBuf::Bytes(Vec::with_capacity(
                in_band.min(RESERVE_AHEAD),
            )));
        }
        let mut words: Vec<u64> = Vec::new();
        words.try_reserve_exact(in_band / 8).map_err(|e| {
            ReadError::Codec(format!("cannot reserve {in_band} bytes for a frame: {e}"))
        })?;
        advise_huge_pages(words.as_mut_ptr().cast(), words.capacity() * 8);
        Ok(RecvBuf::Words { words, filled: 0 })
    }

    fn len(&self) -> usize {
        match self {
            RecvBuf::Bytes(b) => b.len(),
            RecvBuf::Words { filled, .. } => *filled,
        }
    }

    /// Where the next bytes go: a pointer and room for at least
    /// `min(want, RESERVE_AHEAD)` bytes (at most `want`).
    fn spare(&mut self, want: usize) -> (*mut u8, usize) {
        match self {
            RecvBuf::Bytes(body) => {
                if body.capacity() - body.len() < want.min(RESERVE_AHEAD) {
                    let grow = want.min(body.capacity().max(RESERVE_AHEAD));
                    body.reserve(grow);
                }
                let spare = body.spare_capacity_mut();
                (spare.as_mut_ptr().cast(), spare.len().min(want))
            }
            RecvBuf::Words { words, filled } => {
                let room = words.capacity() * 8 - *filled;
                // SAFETY: `filled` bytes into an allocation of capacity * 8.
                let at = unsafe { words.as_mut_ptr().cast::<u8>().add(*filled) };
                (at, room.min(want))
            }
        }
    }

    /// Records that `n` more bytes were written at [`RecvBuf::spare`].
    ///
    /// # Safety
    /// The `n` bytes must have been initialized by the caller.
    unsafe fn advance(&mut self, n: usize) {
        match self {
            // SAFETY: the caller wrote `n` bytes into the spare capacity.
            RecvBuf::Bytes(body) => unsafe { body.set_len(body.len() + n) },
            RecvBuf::Words { filled, .. } => *filled += n,
        }
    }

    fn into_body(self) -> Body {
        match self {
            RecvBuf::Bytes(b) => Body::Bytes(b),
            RecvBuf::Words { mut words, filled } => {
                // SAFETY: the frame is complete: all `filled` bytes (a whole
                // number of words, checked with the header) were written.
                unsafe { words.set_len(filled / 8) };
                Body::Words(words, filled)
            }
        }
    }
}

/// One connected peer.
struct Peer {
    fd: OwnedFd,
    reader: Reader,
    /// Descriptors received and not yet claimed by a frame.
    fds: VecDeque<OwnedFd>,
    /// Why nothing more can be read from it, once that is so.
    closed: Option<String>,
    /// Whether frames can still be written to it (a peer whose stream to
    /// us is corrupt can still hear from us; a dead one cannot).
    writable: bool,
}

/// One rank's connections to every other rank, and what arrived on them.
pub(crate) struct Endpoint {
    pub rank: usize,
    pub nprocs: usize,
    peers: Vec<Option<Peer>>,
    /// The current region; frames of older regions are dropped.
    pub region: u64,
    inbox: Vec<VecDeque<Frame>>,
    /// Hello, Run and Shutdown frames, in arrival order.
    pub control: VecDeque<(usize, Frame)>,
    /// Done reports of the current region (main), by rank.
    pub done: Vec<Option<Option<Error>>>,
    pub abort: Option<Abort>,
    /// Main only: an abort learnt from a worker that the others must hear.
    relay: bool,
    pub timeout: Option<Duration>,
    pub max_frame: u64,
    pub shm_threshold: usize,
    /// Main only: the worker pids, to name how a closed peer ended.
    pub pids: Vec<Option<i32>>,
    /// Main only: how each worker ended, once reaped.
    pub statuses: Vec<Option<String>>,
    /// Main only: workers that reported a corrupt stream and must be replaced.
    pub broken: Vec<bool>,
    /// Whether a peer closing its connection fails the region at once
    /// (served workers), or only a receive from that peer (SPMD, where a
    /// rank ends by returning from `main`).
    pub eof_fails_region: bool,
}

/// The payload of a [`Kind::Done`] frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DoneNote {
    pub error: Option<Error>,
    /// The worker can no longer read some peer: replace the pool.
    pub broken: bool,
}

impl Endpoint {
    pub(crate) fn new(rank: usize, nprocs: usize, fds: Vec<Option<OwnedFd>>) -> Endpoint {
        let peers = fds
            .into_iter()
            .map(|fd| {
                fd.map(|fd| Peer {
                    fd,
                    reader: Reader::default(),
                    fds: VecDeque::new(),
                    closed: None,
                    writable: true,
                })
            })
            .collect();
        Endpoint {
            rank,
            nprocs,
            peers,
            region: 0,
            inbox: (0..nprocs).map(|_| VecDeque::new()).collect(),
            control: VecDeque::new(),
            done: (0..nprocs).map(|_| None).collect(),
            abort: None,
            relay: false,
            timeout: None,
            max_frame: DEFAULT_MAX_FRAME,
            shm_threshold: 1 << 20,
            pids: vec![None; nprocs],
            statuses: vec![None; nprocs],
            broken: vec![false; nprocs],
            eof_fails_region: true,
        }
    }

    pub(crate) fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// Starts region `region`: older frames and reports are dropped.
    pub(crate) fn begin_region(&mut self, region: u64) {
        self.region = region;
        for q in &mut self.inbox {
            q.retain(|f| f.header.region >= region);
        }
        for d in &mut self.done {
            *d = None;
        }
        self.relay = false;
    }

    /// The rank that aborted the current region, if it was.
    pub(crate) fn aborted_by(&self) -> Option<usize> {
        self.abort
            .as_ref()
            .filter(|a| a.region == self.region)
            .map(|a| a.by_rank)
    }

    /// Whether rank `r`'s connection is unusable.
    pub(crate) fn is_closed(&self, r: usize) -> bool {
        self.peers
            .get(r)
            .and_then(|p| p.as_ref())
            .is_none_or(|p| p.closed.is_some())
    }

    /// Whether frames can still be written to rank `r`.
    pub(crate) fn is_writable(&self, r: usize) -> bool {
        matches!(self.peers.get(r), Some(Some(p)) if p.writable)
    }

    /// Whether some peer can no longer be read (this rank must be replaced).
    pub(crate) fn any_unreadable(&self) -> bool {
        (0..self.nprocs).any(|r| r != self.rank && self.is_closed(r))
    }

    pub(crate) fn closed_reason(&self, r: usize) -> Option<&str> {
        self.peers.get(r)?.as_ref()?.closed.as_deref()
    }

    /// Records the region's first real failure (and, on main, that the
    /// workers must hear of it).
    pub(crate) fn record_failure(&mut self, by_rank: usize, cause: Option<Error>) {
        if self.aborted_by().is_some() {
            return;
        }
        self.abort = Some(Abort {
            region: self.region,
            by_rank,
            cause,
        });
        if self.is_main() {
            self.relay = true;
        }
    }

    /// Takes the current region's recorded failure.
    pub(crate) fn take_failure(&mut self) -> Option<(usize, Option<Error>)> {
        match &mut self.abort {
            Some(a) if a.region == self.region => Some((a.by_rank, a.cause.take())),
            _ => None,
        }
    }

    /// How a worker that closed its connection ended (main only): its exit
    /// status, waited for up to a second.
    fn death_status(&mut self, r: usize, reason: &str) -> String {
        if let Some(s) = &self.statuses[r] {
            return s.clone();
        }
        let status = match self.pids[r] {
            Some(pid) => super::launch::wait_status(pid, Duration::from_secs(1)),
            None => None,
        };
        match status {
            Some(s) => {
                let s = if reason.contains("frame") {
                    format!("{s}; {reason}")
                } else {
                    s
                };
                self.statuses[r] = Some(s.clone());
                s
            }
            None => reason.to_string(),
        }
    }

    /// The error for "peer `r` is gone", as this rank reports it.
    pub(crate) fn peer_error(&mut self, r: usize) -> Error {
        let reason = self
            .closed_reason(r)
            .unwrap_or("connection closed")
            .to_string();
        if let Some(codec) = reason.strip_prefix("codec: ") {
            return Error::Codec(format!("from rank {r}: {codec}"));
        }
        if self.is_main() {
            let status = self.death_status(r, &reason);
            Error::WorkerDied { rank: r, status }
        } else if r == 0 {
            Error::WorkerDied {
                rank: 0,
                status: format!("main closed its connection ({reason})"),
            }
        } else {
            Error::WorkerDied {
                rank: r,
                status: reason,
            }
        }
    }

    /// The error for "peer `r` is gone", recorded as the region's failure
    /// if none is yet (a corrupt stream counts against the rank reading it,
    /// on a worker; a closed one against the peer).
    fn gone(&mut self, r: usize) -> Error {
        let err = self.peer_error(r);
        let by = if matches!(err, Error::Codec(_)) && !self.is_main() {
            self.rank
        } else {
            r
        };
        self.record_failure(by, Some(err.clone()));
        err
    }

    fn mark_closed(&mut self, r: usize, reason: String) {
        let region = self.region;
        let Some(Some(peer)) = self.peers.get_mut(r) else {
            return;
        };
        if peer.closed.is_some() {
            return;
        }
        let reason = match &peer.reader.cur {
            Some((h, body, _)) if !reason.starts_with("codec") => format!(
                "{reason} in the middle of a frame ({} of {} payload bytes)",
                body.len(),
                h.len
            ),
            _ if peer.reader.got > 0 && !reason.starts_with("codec") => format!(
                "{reason} in the middle of a frame header ({} of {HEADER_LEN} bytes)",
                peer.reader.got
            ),
            _ => reason,
        };
        let codec = reason.starts_with("codec");
        if !codec {
            peer.writable = false;
        }
        peer.closed = Some(reason);
        peer.fds.clear();
        let _ = region;
        if !codec && !self.eof_fails_region {
            return;
        }
        // A dead peer fails the region it was part of; a corrupt stream is
        // the failure of the rank that read it (main: of the sender).
        let err = self.peer_error(r);
        let by = if codec && !self.is_main() {
            self.rank
        } else {
            r
        };
        self.record_failure(by, Some(err));
    }

    /// Reads what peer `r` has, parsing complete frames.
    fn read_peer(&mut self, r: usize) {
        loop {
            let max_frame = self.max_frame;
            let Some(Some(peer)) = self.peers.get_mut(r) else {
                return;
            };
            if peer.closed.is_some() {
                return;
            }
            match read_some(peer, max_frame) {
                Ok(frame) => {
                    if let Some(frame) = frame {
                        self.dispatch(r, frame);
                    }
                }
                Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(ReadError::Eof) => {
                    self.mark_closed(r, "connection closed".into());
                    return;
                }
                Err(ReadError::Io(e)) => {
                    self.mark_closed(r, format!("connection error: {e}"));
                    return;
                }
                Err(ReadError::Codec(m)) => {
                    self.mark_closed(r, format!("codec: {m}"));
                    return;
                }
            }
        }
    }

    fn dispatch(&mut self, from: usize, frame: Frame) {
        let h = frame.header;
        match h.kind {
            Kind::Data | Kind::Shm => {
                if h.region >= self.region {
                    self.inbox[from].push_back(frame);
                }
            }
            Kind::Abort => {
                let note: Option<AbortNote> = match frame.body {
                    Body::Bytes(b) => decode_serde(&b).ok(),
                    Body::Words(..) | Body::Shm(_) => None,
                };
                let (by_rank, cause) = match note {
                    Some(n) => (n.by_rank as usize, n.cause.map(|c| c.on_rank(from))),
                    None => (from, None),
                };
                let newer = self.abort.as_ref().is_none_or(|a| a.region < h.region);
                if h.region >= self.region && newer {
                    self.abort = Some(Abort {
                        region: h.region,
                        by_rank,
                        cause,
                    });
                    if self.is_main() && h.region == self.region {
                        self.relay = true;
                    }
                }
            }
            Kind::Done => {
                if h.region != self.region || !self.is_main() {
                    return;
                }
                let note: DoneNote = match frame.body {
                    Body::Bytes(b) => decode_serde(&b).unwrap_or_else(|e| DoneNote {
                        error: Some(Error::Codec(format!("bad Done report: {e}"))),
                        broken: true,
                    }),
                    Body::Words(..) | Body::Shm(_) => DoneNote {
                        error: Some(Error::Codec("a Done report that is not serde bytes".into())),
                        broken: true,
                    },
                };
                self.broken[from] |= note.broken;
                let err = note.error.map(|e| e.on_rank(from));
                if let Some(e) = &err {
                    if !e.is_secondary() {
                        let cause = e.clone();
                        self.record_failure(from, Some(cause));
                    }
                }
                self.done[from] = Some(err);
            }
            Kind::Hello | Kind::Run | Kind::Shutdown => self.control.push_back((from, frame)),
        }
    }

    /// Waits until something arrives on any socket (or `want_write` becomes
    /// writable, or the deadline passes) and reads it. Returns whether the
    /// deadline passed.
    fn pump(&mut self, deadline: Option<Instant>, want_write: Option<usize>) -> Result<bool> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.nprocs);
        let mut who: Vec<usize> = Vec::with_capacity(self.nprocs);
        for (r, p) in self.peers.iter().enumerate() {
            if let Some(p) = p {
                if p.closed.is_none() {
                    let mut events = libc::POLLIN;
                    if want_write == Some(r) {
                        events |= libc::POLLOUT;
                    }
                    fds.push(libc::pollfd {
                        fd: p.fd.as_raw_fd(),
                        events,
                        revents: 0,
                    });
                    who.push(r);
                }
            }
        }
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(true);
                }
                left.as_millis().clamp(1, i32::MAX as u128) as i32
            }
        };
        if fds.is_empty() {
            // Nothing to wait for: sleep out the deadline, or report it at once.
            return match deadline {
                Some(d) => {
                    std::thread::sleep(d.saturating_duration_since(Instant::now()));
                    Ok(true)
                }
                None => Ok(false),
            };
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e.into());
        }
        if n == 0 {
            return Ok(deadline.is_some_and(|d| Instant::now() >= d));
        }
        for (pfd, r) in fds.iter().zip(who) {
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_peer(r);
            }
        }
        Ok(false)
    }

    /// Reads whatever has already arrived, without waiting (main uses it to
    /// notice workers that died between regions).
    pub(crate) fn refresh(&mut self) -> Result<()> {
        let readable: Vec<usize> = (0..self.nprocs).filter(|&r| !self.is_closed(r)).collect();
        for r in readable {
            self.read_peer(r);
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    /// Main only: tells every worker of an abort learnt from one of them.
    fn relay_abort(&mut self) {
        if !std::mem::take(&mut self.relay) {
            return;
        }
        let Some(a) = self.abort.as_ref().filter(|a| a.region == self.region) else {
            return;
        };
        let note = AbortNote {
            by_rank: a.by_rank as u32,
            cause: a.cause.clone(),
        };
        let origin = a.by_rank;
        for r in 1..self.nprocs {
            if r != origin && self.is_writable(r) {
                let _ = self.send_abort_note(r, &note);
            }
        }
    }

    /// Sends an abort of the current region to `to`.
    pub(crate) fn send_abort_note(&mut self, to: usize, note: &AbortNote) -> Result<()> {
        let mut body = Vec::new();
        encode_serde(note, &mut body)?;
        let h = Header::new(Kind::Abort, self.region, body.len() as u64);
        self.write_frame(to, h, &[&body], None, false)
    }

    /// Tells every other rank (or every worker but main, for a worker that
    /// reports to main separately) that this rank failed.
    pub(crate) fn broadcast_abort(&mut self, cause: Option<&Error>, include_main: bool) {
        let note = AbortNote {
            by_rank: self.rank as u32,
            cause: cause.cloned(),
        };
        for r in 0..self.nprocs {
            if r != self.rank && (r != 0 || include_main) && self.is_writable(r) {
                let _ = self.send_abort_note(r, &note);
            }
        }
    }

    /// Blocks for the next data frame from `from` in the current region.
    pub(crate) fn recv(&mut self, from: usize) -> Result<Frame> {
        let deadline = self.deadline();
        loop {
            self.relay_abort();
            if let Some(by_rank) = self.aborted_by() {
                return Err(Error::Aborted { by_rank });
            }
            let region = self.region;
            let q = &mut self.inbox[from];
            while q.front().is_some_and(|f| f.header.region < region) {
                q.pop_front();
            }
            if q.front().is_some_and(|f| f.header.region == region) {
                return Ok(q.pop_front().expect("checked"));
            }
            if self.is_closed(from) {
                // An abort sent before the peer left may still be unread.
                self.refresh()?;
                if let Some(by_rank) = self.aborted_by() {
                    return Err(Error::Aborted { by_rank });
                }
                return Err(self.gone(from));
            }
            if self.pump(deadline, None)? {
                return Err(Error::Timeout {
                    op: Op::Receive,
                    rank: from,
                    after: self.timeout.unwrap_or_default(),
                });
            }
        }
    }

    /// Blocks for the next control frame (Hello, Run, Shutdown), from any
    /// peer, until `deadline`. `None` on timeout.
    pub(crate) fn next_control(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<(usize, Frame)>> {
        loop {
            if let Some(c) = self.control.pop_front() {
                return Ok(Some(c));
            }
            if !self.is_main() && self.is_closed(0) {
                return Err(self.peer_error(0));
            }
            if self.pump(deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Main: waits until `rank`'s Hello arrives, it closes, or the deadline.
    pub(crate) fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        mut done: impl FnMut(&Endpoint) -> bool,
    ) -> Result<bool> {
        loop {
            self.relay_abort();
            if done(self) {
                return Ok(true);
            }
            if self.pump(deadline, None)? {
                return Ok(done(self));
            }
        }
    }

    /// Sends a data message to `to`: plain data by vectored write straight
    /// from the caller's buffer, serde bytes otherwise. One receiver gains
    /// nothing from shared memory (creating, sealing and mapping a memfd
    /// costs more than the socket copy it saves), so only `broadcast` uses it.
    pub(crate) fn send_msg(&mut self, msg: Msg, to: usize) -> Result<()> {
        if let Some(by_rank) = self.aborted_by() {
            return Err(Error::Aborted { by_rank });
        }
        if let Some(pod) = msg.pod_bytes() {
            let mut h = Header::new(Kind::Data, self.region, pod.len() as u64);
            h.enc = Encoding::Pod;
            h.align8 = msg.pod_align() == 8;
            return self.write_frame(to, h, &[pod], None, true);
        }
        let enc = msg.encoding();
        let bytes = msg.into_bytes()?;
        let mut h = Header::new(Kind::Data, self.region, bytes.len() as u64);
        h.enc = enc;
        self.write_frame(to, h, &[&bytes], None, true)
    }

    /// Main: the same message to every worker, encoded once; above the
    /// threshold written once into a memfd whose descriptor each worker gets.
    pub(crate) fn broadcast(&mut self, msg: &Msg) -> Result<()> {
        if let Some(by_rank) = self.aborted_by() {
            return Err(Error::Aborted { by_rank });
        }
        let owned;
        let (bytes, enc): (&[u8], Encoding) = match msg.pod_bytes() {
            Some(b) => (b, Encoding::Pod),
            None => {
                owned = msg.to_bytes()?;
                (&owned, msg.encoding())
            }
        };
        let shm = if bytes.len() >= self.shm_threshold && self.nprocs > 1 {
            Some(shm::create(bytes)?)
        } else {
            None
        };
        for to in 1..self.nprocs {
            match &shm {
                Some(fd) => {
                    let mut h = Header::new(Kind::Shm, self.region, bytes.len() as u64);
                    h.enc = enc;
                    self.write_frame(to, h, &[], Some(fd.as_raw_fd()), true)?;
                }
                None => {
                    let mut h = Header::new(Kind::Data, self.region, bytes.len() as u64);
                    h.enc = enc;
                    self.write_frame(to, h, &[bytes], None, true)?;
                }
            }
        }
        Ok(())
    }

    /// Writes one whole frame to `to`, reading from every socket while the
    /// peer's buffer is full. With `timed`, a peer that does not read within
    /// the timeout is [`Error::Timeout`].
    pub(crate) fn write_frame(
        &mut self,
        to: usize,
        header: Header,
        parts: &[&[u8]],
        fd: Option<RawFd>,
        timed: bool,
    ) -> Result<()> {
        if !self.is_writable(to) {
            return Err(self.gone(to));
        }
        let head = header.encode();
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(&head);
        all.extend(parts.iter().copied().filter(|p| !p.is_empty()));
        let total: usize = all.iter().map(|p| p.len()).sum();
        let mut sent = 0usize;
        let mut fd = fd;
        let deadline = if timed { self.deadline() } else { None };
        let mut started = false;
        while sent < total {
            let sock = match &self.peers[to] {
                Some(p) if p.writable => p.fd.as_raw_fd(),
                _ => return Err(self.gone(to)),
            };
            match send_some(sock, &all, sent, fd) {
                Ok(n) => {
                    sent += n;
                    started = true;
                    fd = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.pump(deadline, Some(to))? {
                        if started {
                            // Half a frame is on the wire: the stream is lost.
                            self.mark_closed(to, "a send timed out mid-frame".into());
                        }
                        return Err(Error::Timeout {
                            op: Op::Send,
                            rank: to,
                            after: self.timeout.unwrap_or_default(),
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // What the peer sent before it left (its Done report with
                    // the real cause, say) comes first.
                    self.read_peer(to);
                    self.mark_closed(to, format!("connection error: {e}"));
                    return Err(self.gone(to));
                }
            }
        }
        Ok(())
    }

    /// Closes every connection (the peers see EOF).
    pub(crate) fn close_all(&mut self) {
        for p in &mut self.peers {
            *p = None;
        }
    }

    /// Writes raw bytes to `to`, outside any framing (fault-injection tests).
    pub(crate) fn write_raw(&mut self, to: usize, bytes: &[u8]) -> Result<()> {
        let sock = match &self.peers[to] {
            Some(p) => p.fd.as_raw_fd(),
            None => {
                return Err(Error::InvalidRank {
                    rank: to,
                    nprocs: self.nprocs,
                });
            }
        };
        let mut sent = 0;
        while sent < bytes.len() {
            match send_some(sock, &[bytes], sent, None) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

enum ReadError {
    Eof,
    Io(io::Error),
    Codec(String),
}

/// One `recvmsg` from `peer` into where the parser needs bytes; returns a
/// frame when one completes.
fn read_some(peer: &mut Peer, max_frame: u64) -> std::result::Result<Option<Frame>, ReadError> {
    let r = &mut peer.reader;
    if let Some((h, body, _)) = &mut r.cur {
        let want = (h.len as usize) - body.len();
        let (at, take) = body.spare(want);
        // recvmsg writes at most `take` bytes at `at`, inside the buffer.
        let n = recv_into(peer.fd.as_raw_fd(), at, take, &mut peer.fds)?;
        // SAFETY: `n` bytes were written by the kernel.
        unsafe { body.advance(n) };
    } else {
        let got = r.got;
        let n = recv_into(
            peer.fd.as_raw_fd(),
            r.head[got..].as_mut_ptr(),
            HEADER_LEN - got,
            &mut peer.fds,
        )?;
        r.got += n;
        if r.got == HEADER_LEN {
            r.got = 0;
            let h = Header::decode(&r.head, max_frame).map_err(|e| match e {
                Error::Codec(m) => ReadError::Codec(m),
                other => ReadError::Codec(other.to_string()),
            })?;
            let fd = if h.kind == Kind::Shm {
                let fd = peer.fds.pop_front().ok_or_else(|| {
                    ReadError::Codec("a shared-memory frame without its descriptor".into())
                })?;
                Some(fd)
            } else {
                None
            };
            let in_band = if h.kind == Kind::Shm {
                0
            } else {
                h.len as usize
            };
            r.cur = Some((h, RecvBuf::for_header(&h, in_band)?, fd));
            if in_band > 0 {
                return Ok(None);
            }
        }
    }
    let complete = match &r.cur {
        Some((h, body, _)) => h.kind == Kind::Shm || body.len() as u64 == h.len,
        None => false,
    };
    if complete {
        let (header, body, fd) = r.cur.take().expect("checked");
        let body = match fd {
            Some(fd) => Body::Shm(fd),
            None => body.into_body(),
        };
        return Ok(Some(Frame { header, body }));
    }
    Ok(None)
}

fn recv_into(
    sock: RawFd,
    buf: *mut u8,
    len: usize,
    fds: &mut VecDeque<OwnedFd>,
) -> std::result::Result<usize, ReadError> {
    if len == 0 {
        return Ok(0);
    }
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` describes valid buffers.
        let n =
            unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            _ => return Err(ReadError::Io(e)),
        }
    };
    // SAFETY: walking the control messages the kernel wrote into `cbuf`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count =
                    ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                for i in 0..count {
                    fds.push_back(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(ReadError::Codec(
            "too many descriptors in one message".into(),
        ));
    }
    if n == 0 {
        return Err(ReadError::Eof);
    }
    Ok(n)
}

/// One non-blocking `sendmsg` of `parts` from byte `skip` on, with `fd`
/// attached if given.
fn send_some(sock: RawFd, parts: &[&[u8]], skip: usize, fd: Option<RawFd>) -> io::Result<usize> {
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(parts.len());
    let mut skip = skip;
    for p in parts {
        if skip >= p.len() {
            skip -= p.len();
            continue;
        }
        iov.push(libc::iovec {
            iov_base: p[skip..].as_ptr() as *mut libc::c_void,
            iov_len: p.len() - skip,
        });
        skip = 0;
    }
    // SAFETY: plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    if let Some(fd) = fd {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        // SAFETY: `cbuf` has room for one control message with one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        }
    }
    // SAFETY: `msg` describes valid buffers.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two endpoints (ranks 0 and 1) joined by a socketpair, in this process.
    fn pair(timeout: Option<Duration>) -> (Endpoint, Endpoint) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        let own = |fd| {
            super::super::launch::set_nonblocking(fd).unwrap();
            // SAFETY: just created, owned here.
            unsafe { OwnedFd::from_raw_fd(fd) }
        };
        let mut a = Endpoint::new(0, 2, vec![None, Some(own(fds[0]))]);
        let mut b = Endpoint::new(1, 2, vec![Some(own(fds[1])), None]);
        a.timeout = timeout;
        b.timeout = timeout;
        (a, b)
    }

    #[test]
    fn messages_in_band_and_through_shared_memory() {
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)));
        a.shm_threshold = 1024;
        b.shm_threshold = 1024;
        b.send_msg(Msg::new(vec!["x".to_string(); 3]), 0).unwrap();
        b.send_msg(Msg::pod(vec![2.5f64; 10]), 0).unwrap();
        b.send_msg(Msg::pod(vec![3u8; 4096]), 0).unwrap(); // large, yet in band
        a.broadcast(&Msg::pod(vec![7u32; 100_000])).unwrap(); // memfd
        let m = a.recv(1).unwrap().into_msg().unwrap();
        assert_eq!(m.into_value::<Vec<String>>().unwrap(), ["x", "x", "x"]);
        let m = a.recv(1).unwrap().into_msg().unwrap();
        assert_eq!(m.into_pod::<f64>().unwrap(), [2.5; 10]);
        let f = a.recv(1).unwrap();
        assert_eq!(f.header.kind, Kind::Data);
        assert_eq!(
            f.into_msg().unwrap().into_pod::<u8>().unwrap(),
            vec![3; 4096]
        );
        let f = b.recv(0).unwrap();
        assert_eq!(f.header.kind, Kind::Shm);
        assert_eq!(
            f.into_msg().unwrap().into_pod::<u32>().unwrap(),
            vec![7; 100_000]
        );
    }

    #[test]
    fn eight_byte_plain_data_arrives_in_words_others_in_bytes() {
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)));
        b.send_msg(Msg::pod((0..1000).map(f64::from).collect::<Vec<f64>>()), 0)
            .unwrap();
        b.send_msg(Msg::pod(vec![9u32; 3]), 0).unwrap();
        let f = a.recv(1).unwrap();
        assert!(f.header.align8 && matches!(f.body, Body::Words(_, 8000)));
        let v = f.into_msg().unwrap().into_pod::<f64>().unwrap();
        assert_eq!((v.len(), v[999]), (1000, 999.0));
        let f = a.recv(1).unwrap();
        assert!(!f.header.align8 && matches!(f.body, Body::Bytes(_)));
        assert_eq!(f.into_msg().unwrap().into_pod::<u32>().unwrap(), [9, 9, 9]);
        // The flag is only valid on plain data of whole words.
        let mut h = Header::new(Kind::Data, 0, 12);
        h.enc = Encoding::Pod;
        h.align8 = true;
        assert!(matches!(
            Header::decode(&h.encode(), 1 << 20),
            Err(Error::Codec(_))
        ));
    }

    #[test]
    fn receive_and_send_honour_the_timeout() {
        let (mut a, mut b) = pair(Some(Duration::from_millis(100)));
        let t = Instant::now();
        assert!(matches!(
            a.recv(1),
            Err(Error::Timeout {
                op: Op::Receive,
                rank: 1,
                ..
            })
        ));
        assert!(t.elapsed() >= Duration::from_millis(100) && t.elapsed() < Duration::from_secs(2));
        // Nobody reads rank 0's end: a 64 MiB in-band frame cannot be written.
        b.shm_threshold = usize::MAX;
        let err = b.send_msg(Msg::pod(vec![0u8; 64 << 20]), 0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    op: Op::Send,
                    rank: 0,
                    ..
                }
            ),
            "{err}"
        );
        drop(a);
    }

    #[test]
    fn oversized_truncated_and_closed_streams() {
        // 2^60 bytes announced: a codec error before any allocation.
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)));
        b.write_raw(0, &Header::new(Kind::Data, 0, 1 << 60).encode())
            .unwrap();
        // The receive is released; the region's failure is the codec error.
        assert!(matches!(a.recv(1), Err(Error::Aborted { by_rank: 1 })));
        assert!(
            matches!(a.take_failure(), Some((1, Some(Error::Codec(m)))) if m.contains("over the limit"))
        );
        // A truncated frame, then the peer goes away.
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)));
        b.write_raw(0, &Header::new(Kind::Data, 0, 100).encode())
            .unwrap();
        b.write_raw(0, &[1; 10]).unwrap();
        drop(b);
        assert!(matches!(a.recv(1), Err(Error::Aborted { by_rank: 1 })));
        match a.take_failure() {
            Some((1, Some(Error::WorkerDied { rank: 1, status }))) => {
                assert!(status.contains("middle of a frame (10 of 100"), "{status}")
            }
            other => panic!("{other:?}"),
        }
        // A closed peer cannot be written to (and the region stays aborted).
        assert!(matches!(
            a.send_msg(Msg::new(1u8), 1),
            Err(Error::Aborted { .. })
        ));
        let h = Header::new(Kind::Data, 0, 0);
        assert!(matches!(
            a.write_frame(1, h, &[], None, true),
            Err(Error::WorkerDied { rank: 1, .. })
        ));
    }

    #[test]
    fn header_roundtrip_and_bounds() {
        let h = Header::new(Kind::Data, 7, 123);
        assert_eq!(Header::decode(&h.encode(), 1000).unwrap(), h);
        let huge = Header::new(Kind::Data, 1, 1 << 60);
        assert!(matches!(
            Header::decode(&huge.encode(), DEFAULT_MAX_FRAME),
            Err(Error::Codec(_))
        ));
        let mut bad = h.encode();
        bad[0] = 0;
        assert!(matches!(Header::decode(&bad, 1000), Err(Error::Codec(_))));
        let mut bad = h.encode();
        bad[2] = 99;
        assert!(matches!(Header::decode(&bad, 1000), Err(Error::Codec(_))));
    }
}
