//! One rank's sockets to every other rank: non-blocking reads and writes of
//! whole frames, and why a peer can no longer be read ([`Closed`]).
//!
//! Every socket is non-blocking. A rank waiting for anything polls all of
//! its sockets ([`Endpoint::pump`]), so it drains whatever the others send
//! (no write-write deadlock), sees frames from any rank at once, and sees a
//! dead peer as EOF. What arrives is queued as [`Event`]s, in order, for the
//! region protocol to take with [`Endpoint::next_event`]; the endpoint
//! itself knows nothing of regions, aborts or errors of the framework.
//!
//! File descriptors (the memfds of shared-memory frames) travel as
//! `SCM_RIGHTS` with the first bytes of their frame's header, so only header
//! reads ask for ancillary data; type-name and payload reads go straight
//! into the frame's buffer.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::RecvFlags;

use crate::error::{Error, Result};

use super::frame::{BadFrame, Frame, HEADER_LEN, Header, RecvBuf, Spare};
use super::sock::{ReadError, recv_header, recv_some, send_some};

/// Something that happened on the sockets, in the order it happened.
#[derive(Debug)]
pub(super) enum Event {
    /// A complete frame from a peer.
    Frame(usize, Frame),
    /// Nothing more can be read from a peer ([`Endpoint::closed`] says why).
    Closed(usize),
}

/// Why nothing more can be read from a peer.
#[derive(Debug)]
pub(super) enum Closed {
    /// The stream ended or broke; `cut` says where, if inside a frame.
    Lost { why: Lost, cut: Option<Cut> },
    /// The peer sent something that is not a frame. It can still hear from
    /// us; it is the reading rank that cannot go on.
    Corrupt(BadFrame),
}

/// How a stream was lost.
#[derive(Debug)]
pub(super) enum Lost {
    /// EOF: the peer closed its end (it exited).
    Eof,
    /// The socket failed (reset, broken pipe).
    Failed(io::Error),
    /// A send to the peer timed out with part of a frame written.
    SendTimedOut,
}

/// Where a stream ended inside a frame.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cut {
    Header { got: usize },
    Payload { got: usize, of: u64 },
}

impl Closed {
    /// The frame error, if the stream is corrupt.
    pub(super) fn corrupt(&self) -> Option<&BadFrame> {
        match self {
            Closed::Corrupt(b) => Some(b),
            Closed::Lost { .. } => None,
        }
    }

    /// Whether the stream was cut inside a frame (which says more than an
    /// exit status does).
    pub(super) fn mid_frame(&self) -> bool {
        matches!(
            self,
            Closed::Lost { cut: Some(_), .. }
                | Closed::Lost {
                    why: Lost::SendTimedOut,
                    ..
                }
        )
    }
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (why, cut) = match self {
            Closed::Corrupt(b) => return write!(f, "{b}"),
            Closed::Lost { why, cut } => (why, cut),
        };
        match why {
            Lost::Eof => f.write_str("connection closed")?,
            Lost::Failed(e) => write!(f, "connection error: {e}")?,
            Lost::SendTimedOut => f.write_str("a send timed out mid-frame")?,
        }
        match cut {
            None => Ok(()),
            Some(Cut::Payload { got, of }) => {
                write!(f, " in the middle of a frame ({got} of {of} payload bytes)")
            }
            Some(Cut::Header { got }) => write!(
                f,
                " in the middle of a frame header ({got} of {HEADER_LEN} bytes)"
            ),
        }
    }
}

/// Why a frame could not be written.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The peer cannot be written to ([`Endpoint::closed`] says why).
    Gone,
    /// The peer did not read before the deadline.
    TimedOut,
    /// Waiting for the socket failed.
    Poll(io::Error),
}

/// The frame being read from one socket.
struct Reader {
    head: [u8; HEADER_LEN],
    got: usize,
    /// The type name and payload, once the header is in.
    payload: Option<RecvBuf>,
    /// The shared arrays' descriptors that came with the header.
    attached: Vec<OwnedFd>,
}

impl Reader {
    fn cut(&self) -> Option<Cut> {
        match &self.payload {
            Some(buf) => Some(Cut::Payload {
                got: buf.filled(),
                of: buf.header().len(),
            }),
            None if self.got > 0 => Some(Cut::Header { got: self.got }),
            None => None,
        }
    }
}

/// One connected peer.
struct Peer {
    sock: UnixStream,
    reader: Reader,
    /// Descriptors received and not yet claimed by a frame.
    fds: VecDeque<OwnedFd>,
    closed: Option<Closed>,
    /// Whether frames can still be written to it (a peer whose stream to
    /// us is corrupt can still hear from us; a dead one cannot).
    writable: bool,
}

/// One rank's sockets to every other rank.
pub(super) struct Endpoint {
    rank: usize,
    peers: Vec<Option<Peer>>,
    max_frame: u64,
    events: VecDeque<Event>,
    /// How many peers can no longer be read.
    closed: usize,
}

impl Endpoint {
    /// Rank `rank`'s endpoint over `socks[r]`, its socket to rank `r`
    /// (`None` for itself). The sockets must be non-blocking.
    pub(super) fn new(rank: usize, socks: Vec<Option<UnixStream>>, max_frame: u64) -> Endpoint {
        let peers = socks
            .into_iter()
            .map(|sock| {
                sock.map(|sock| Peer {
                    sock,
                    reader: Reader {
                        head: [0; HEADER_LEN],
                        got: 0,
                        payload: None,
                        attached: Vec::new(),
                    },
                    fds: VecDeque::new(),
                    closed: None,
                    writable: true,
                })
            })
            .collect();
        Endpoint {
            rank,
            peers,
            max_frame,
            events: VecDeque::new(),
            closed: 0,
        }
    }

    pub(super) fn rank(&self) -> usize {
        self.rank
    }

    pub(super) fn nprocs(&self) -> usize {
        self.peers.len()
    }

    /// The next thing that happened, oldest first.
    pub(super) fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How many peers can no longer be read (it only grows).
    pub(super) fn closed_count(&self) -> usize {
        self.closed
    }

    /// Whether rank `r`'s connection can no longer be read.
    pub(super) fn is_closed(&self, r: usize) -> bool {
        self.peers
            .get(r)
            .and_then(|p| p.as_ref())
            .is_none_or(|p| p.closed.is_some())
    }

    /// Why rank `r`'s connection can no longer be read.
    pub(super) fn closed(&self, r: usize) -> Option<&Closed> {
        self.peers.get(r)?.as_ref()?.closed.as_ref()
    }

    /// Whether frames can still be written to rank `r`.
    pub(super) fn is_writable(&self, r: usize) -> bool {
        matches!(self.peers.get(r), Some(Some(p)) if p.writable)
    }

    fn mark_closed(&mut self, r: usize, closed: Closed) {
        let Some(Some(peer)) = self.peers.get_mut(r) else {
            return;
        };
        if peer.closed.is_some() {
            return;
        }
        let closed = match closed {
            Closed::Lost { why, .. } => {
                peer.writable = false;
                Closed::Lost {
                    why,
                    cut: peer.reader.cut(),
                }
            }
            corrupt => corrupt,
        };
        peer.closed = Some(closed);
        peer.fds.clear();
        self.closed += 1;
        self.events.push_back(Event::Closed(r));
    }

    /// Reads what peer `r` has, queueing complete frames.
    fn read_peer(&mut self, r: usize) {
        loop {
            let max_frame = self.max_frame;
            let Some(Some(peer)) = self.peers.get_mut(r) else {
                return;
            };
            if peer.closed.is_some() {
                return;
            }
            let why = match read_some(peer, max_frame) {
                Ok(Some(frame)) => {
                    self.events.push_back(Event::Frame(r, frame));
                    continue;
                }
                Ok(None) => continue,
                Err(ReadError::WouldBlock) => return,
                Err(ReadError::Eof) => Lost::Eof,
                Err(ReadError::Io(e)) => Lost::Failed(e),
                Err(ReadError::Corrupt(b)) => {
                    self.mark_closed(r, Closed::Corrupt(b));
                    return;
                }
            };
            self.mark_closed(r, Closed::Lost { why, cut: None });
            return;
        }
    }

    /// Waits until something arrives on any socket (or `want_write` becomes
    /// writable, or the deadline passes) and reads it. Returns whether the
    /// deadline passed.
    pub(super) fn pump(
        &mut self,
        deadline: Option<Instant>,
        want_write: Option<usize>,
    ) -> io::Result<bool> {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(true);
                }
                Some(left)
            }
        };
        let ready: Vec<usize> = {
            let mut fds = Vec::with_capacity(self.peers.len());
            let mut who = Vec::with_capacity(self.peers.len());
            for (r, p) in self.peers.iter().enumerate() {
                let Some(p) = p.as_ref().filter(|p| p.closed.is_none()) else {
                    continue;
                };
                let mut events = PollFlags::IN;
                if want_write == Some(r) {
                    events |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&p.sock, events));
                who.push(r);
            }
            if fds.is_empty() {
                // Nothing to wait for: sleep out the deadline, or a little
                // (a caller that loops must not spin).
                return Ok(match timeout {
                    Some(left) => {
                        std::thread::sleep(left);
                        true
                    }
                    None => {
                        std::thread::sleep(Duration::from_millis(10));
                        false
                    }
                });
            }
            let ts = timeout.map(|t| {
                Timespec::try_from(t.max(Duration::from_millis(1))).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                })
            });
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(0) => return Ok(deadline.is_some_and(|d| Instant::now() >= d)),
                Ok(_) => {}
                Err(Errno::INTR) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
            let wake = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
            fds.iter()
                .zip(who)
                .filter(|(fd, _)| fd.revents().intersects(wake))
                .map(|(_, r)| r)
                .collect()
        };
        for r in ready {
            self.read_peer(r);
        }
        Ok(false)
    }

    /// Reads whatever has already arrived, without waiting.
    pub(super) fn refresh(&mut self) {
        for r in 0..self.peers.len() {
            self.read_peer(r);
        }
    }

    /// Writes one whole frame to `to` — its header, the type name `name`
    /// and the payload `parts`, with `fds` attached to its first bytes —
    /// reading from every socket while the peer's buffer is full. A peer
    /// that does not read by `deadline` is [`WriteError::TimedOut`].
    pub(super) fn write_frame(
        &mut self,
        to: usize,
        header: Header,
        name: &[u8],
        parts: &[&[u8]],
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
    ) -> Result<(), WriteError> {
        if !self.is_writable(to) {
            return Err(WriteError::Gone);
        }
        debug_assert_eq!(name.len(), header.name_len());
        let head = header.encode();
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 2);
        all.push(&head);
        all.push(name);
        all.extend(parts.iter().copied().filter(|p| !p.is_empty()));
        let total: usize = all.iter().map(|p| p.len()).sum();
        let mut sent = 0usize;
        let mut fds = fds;
        while sent < total {
            let result = match &self.peers[to] {
                Some(p) if p.writable => send_some(&p.sock, &all, sent, fds),
                _ => return Err(WriteError::Gone),
            };
            match result {
                Ok(n) => {
                    sent += n;
                    fds = &[];
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.pump(deadline, Some(to)).map_err(WriteError::Poll)? {
                        if sent > 0 {
                            // Half a frame is on the wire: the stream is lost.
                            let lost = Closed::Lost {
                                why: Lost::SendTimedOut,
                                cut: None,
                            };
                            self.mark_closed(to, lost);
                        }
                        return Err(WriteError::TimedOut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // What the peer sent before it left (its Done report with
                    // the real cause, say) comes first.
                    self.read_peer(to);
                    let lost = Closed::Lost {
                        why: Lost::Failed(e),
                        cut: None,
                    };
                    self.mark_closed(to, lost);
                    return Err(WriteError::Gone);
                }
            }
        }
        Ok(())
    }

    /// Closes every connection (the peers see EOF).
    pub(super) fn close_all(&mut self) {
        for p in &mut self.peers {
            *p = None;
        }
    }

    /// Writes raw bytes to `to`, outside any framing (fault-injection tests).
    pub(super) fn write_raw(&mut self, to: usize, bytes: &[u8]) -> Result<()> {
        let nprocs = self.nprocs();
        let Some(Some(peer)) = self.peers.get(to) else {
            return Err(Error::InvalidRank { rank: to, nprocs });
        };
        let mut sent = 0;
        while sent < bytes.len() {
            match send_some(&peer.sock, &[bytes], sent, &[]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// One read from `peer` into where its parser needs bytes; returns a frame
/// when one completes.
fn read_some(peer: &mut Peer, max_frame: u64) -> Result<Option<Frame>, ReadError> {
    let r = &mut peer.reader;
    if let Some(buf) = &mut r.payload {
        let flags = RecvFlags::DONTWAIT;
        let sock = &peer.sock;
        let n = match buf.spare() {
            Spare::Name(b) => recv_some(|| rustix::net::recv(sock, &mut *b, flags).map(|r| r.1))?,
            Spare::Payload(b) => {
                recv_some(|| rustix::net::recv(sock, &mut *b, flags).map(|r| r.1))?
            }
        };
        if !buf.advance(n) {
            return Ok(None);
        }
        let buf = r.payload.take().expect("checked");
        let fds = std::mem::take(&mut r.attached);
        return buf
            .finish()
            .map(|f| Some(f.with_descriptors(fds)))
            .map_err(ReadError::Corrupt);
    }
    let n = recv_header(&peer.sock, &mut r.head[r.got..], &mut peer.fds)?;
    r.got += n;
    if r.got < HEADER_LEN {
        return Ok(None);
    }
    r.got = 0;
    let header = Header::decode(&r.head, max_frame).map_err(ReadError::Corrupt)?;
    // A memfd came with the first bytes of its header.
    let fd = match header.is_shared() {
        true => Some(
            peer.fds
                .pop_front()
                .ok_or(ReadError::Corrupt(BadFrame::NoDescriptor))?,
        ),
        false => None,
    };
    // Then the shared arrays' descriptors.
    if peer.fds.len() < header.attached() {
        return Err(ReadError::Corrupt(BadFrame::NoDescriptor));
    }
    r.attached = peer.fds.drain(..header.attached()).collect();
    let buf = RecvBuf::for_header(header, fd).map_err(ReadError::Corrupt)?;
    if buf.missing() == 0 {
        let fds = std::mem::take(&mut r.attached);
        return buf
            .finish()
            .map(|f| Some(f.with_descriptors(fds)))
            .map_err(ReadError::Corrupt);
    }
    r.payload = Some(buf);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::link::Packet;
    use crate::msg::{Encoding, Msg};
    use crate::op::{Op, Tag};

    /// Two endpoints (ranks 0 and 1) joined by a socketpair, in this process.
    fn pair() -> (Endpoint, Endpoint) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let max = super::super::frame::DEFAULT_MAX_FRAME;
        (
            Endpoint::new(0, vec![None, Some(a)], max),
            Endpoint::new(1, vec![Some(b), None], max),
        )
    }

    /// A data packet's header, its body `len` bytes.
    fn data(name: &str, enc: Encoding, len: u64) -> Header {
        let p = Packet::data(1, Tag::new(Op::Broadcast, 0), Msg::new(()));
        Header::packet(&p, name.len(), enc, len)
    }

    fn next_frame(ep: &mut Endpoint) -> Frame {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match ep.next_event() {
                Some(Event::Frame(_, f)) => return f,
                Some(Event::Closed(r)) => panic!("closed: {}", ep.closed(r).unwrap()),
                None => assert!(!ep.pump(Some(until), None).unwrap(), "timed out"),
            }
        }
    }

    #[test]
    fn frames_with_and_without_descriptors() {
        let (mut a, mut b) = pair();
        let fd = super::super::shm::create(&[5; 64]).unwrap();
        let h = data("Vec<u8>", Encoding::Pod, 64).shared();
        b.write_frame(0, h, b"Vec<u8>", &[], &[fd.as_fd()], None)
            .unwrap();
        let h = data("Vec<f64>", Encoding::Pod, 16).aligned(true);
        b.write_frame(0, h, b"Vec<f64>", &[&[1; 10], &[2; 6]], &[], None)
            .unwrap();
        let f = next_frame(&mut a);
        assert!(f.header().is_shared());
        let p = f.into_packet().unwrap();
        assert_eq!(p.body().type_name(), Some("Vec<u8>"));
        assert_eq!(p.into_body().pod_bytes().unwrap(), [5; 64]);
        let f = next_frame(&mut a);
        assert_eq!(f.bytes(), [[1u8; 10].as_slice(), &[2; 6]].concat());
        assert!(a.next_event().is_none());
    }

    #[test]
    fn a_send_nobody_reads_times_out_and_loses_the_stream() {
        let (a, mut b) = pair();
        let big = vec![0u8; 64 << 20];
        let h = data("", Encoding::Pod, big.len() as u64);
        let deadline = Some(Instant::now() + Duration::from_millis(100));
        let err = b
            .write_frame(0, h, b"", &[&big], &[], deadline)
            .unwrap_err();
        assert!(matches!(err, WriteError::TimedOut));
        assert!(matches!(b.next_event(), Some(Event::Closed(0))));
        let closed = b.closed(0).unwrap();
        assert!(closed.mid_frame() && !b.is_writable(0), "{closed}");
        assert_eq!(closed.to_string(), "a send timed out mid-frame");
        drop(a);
    }

    #[test]
    fn oversized_truncated_hostile_and_closed_streams() {
        // 2^60 bytes announced: corrupt, before any allocation; the sender
        // can still be written to.
        let (mut a, mut b) = pair();
        b.write_raw(0, &data("", Encoding::Serde, 1 << 60).encode())
            .unwrap();
        assert!(
            !a.pump(Some(Instant::now() + Duration::from_secs(5)), None)
                .unwrap()
        );
        assert!(matches!(a.next_event(), Some(Event::Closed(1))));
        let closed = a.closed(1).unwrap();
        assert!(matches!(closed.corrupt(), Some(BadFrame::TooLong { .. })));
        assert!(closed.to_string().contains("over the limit"), "{closed}");
        assert!(a.is_closed(1) && a.is_writable(1));
        // A sealed but sparse memfd announcing 512 GiB: corrupt, unmapped.
        let (mut a, mut b) = pair();
        let fd = super::super::shm::sparse(512 << 30).unwrap();
        let h = data("", Encoding::Pod, 512 << 30).shared();
        b.write_frame(0, h, b"", &[], &[fd.as_fd()], None).unwrap();
        while !a.is_closed(1) {
            assert!(
                !a.pump(Some(Instant::now() + Duration::from_secs(5)), None)
                    .unwrap()
            );
        }
        let closed = a.closed(1).unwrap().to_string();
        assert!(closed.contains("sparse"), "{closed}");
        // A truncated frame, then the peer goes away.
        let (mut a, mut b) = pair();
        b.write_raw(0, &data("", Encoding::Serde, 100).encode())
            .unwrap();
        b.write_raw(0, &[1; 10]).unwrap();
        drop(b);
        let until = Some(Instant::now() + Duration::from_secs(5));
        while !a.is_closed(1) {
            assert!(!a.pump(until, None).unwrap());
        }
        let closed = a.closed(1).unwrap();
        assert!(closed.corrupt().is_none() && closed.mid_frame());
        assert_eq!(
            closed.to_string(),
            "connection closed in the middle of a frame (10 of 100 payload bytes)"
        );
        let h = data("", Encoding::Serde, 0);
        assert!(matches!(
            a.write_frame(1, h, b"", &[], &[], None),
            Err(WriteError::Gone)
        ));
    }
}
