//! One rank's sockets (and shared-memory rings) to every other rank:
//! non-blocking reads and writes of whole frames, and why a peer can no
//! longer be read ([`Closed`]).
//!
//! Every socket is non-blocking. A rank waiting for anything polls all of
//! its sockets ([`Endpoint::pump`]), so it drains whatever the others send
//! (no write-write deadlock), sees frames from any rank at once, and sees a
//! dead peer as EOF. What arrives is queued as [`Event`]s, in order, for the
//! region protocol to take with [`Endpoint::next_event`]; the endpoint
//! itself knows nothing of regions, aborts or errors of the framework.
//!
//! With shared-memory rings (`ring`), frames without a descriptor go
//! through the ring to their peer instead (a large one in pieces), and a
//! waiting rank first spins on its rings (yielding its core; `spin`),
//! then polls its sockets and its doorbell; the sockets still carry the
//! rest, and EOF on one is still how a dead peer is seen.
//!
//! File descriptors (the memfds of shared-memory frames) travel as
//! `SCM_RIGHTS` with the first bytes of their frame's header, so only header
//! reads ask for ancillary data; type-name and payload reads go straight
//! into the frame's buffer.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::link::Landing;

use super::cpu::Placement;
use super::frame::Frame;
pub(super) use super::reader::Closed;
use super::reader::{Lost, Reader, Source};
use super::ring::Rings;
use super::sock::{ReadError, send_some};
use super::spin::Spin;

mod write;

pub(super) use write::{Until, WriteError};

/// Something that happened on the sockets, in the order it happened.
#[derive(Debug)]
pub(super) enum Event {
    /// A complete frame from a peer.
    Frame(usize, Frame),
    /// Nothing more can be read from a peer ([`Endpoint::closed`] says why).
    Closed(usize),
}

/// How long a rank waiting on its rings polls them without yielding, where
/// every rank has a core and no peer waits on the same CPU (`cpu.rs`).
const BUSY: Duration = Duration::from_micros(5);

/// The longest a rank with rings sleeps before it looks at them again.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// What a writer waits for besides incoming frames.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Room on the socket to this rank.
    Socket(usize),
    /// Room in the ring to `to`, or (`empty`) all of it: the state is
    /// looked at, never a change of it, so that a reader that emptied the
    /// ring before the wait began cannot be missed.
    Ring { to: usize, empty: bool },
    /// Every other rank's post with this stamp (`posts`).
    Posted(u64),
}

/// One connected peer.
struct Peer {
    sock: UnixStream,
    reader: Reader,
    /// The stream of frames through the shared-memory ring from the peer.
    ring: Reader,
    /// Frames read from the socket (the peer counts those it sends while
    /// rings carry the rest: `Rings::sent_on_socket`).
    socket_frames: u64,
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
    /// The shared-memory rings to the peers, if the pool has them.
    rings: Option<Arc<Rings>>,
    /// Whether a wait may start with a busy spin.
    placement: Placement,
    /// How long a wait spins before it sleeps.
    spin: Spin,
    /// Per peer, a receive posted on a caller's buffer, with its region,
    /// until a frame lands in it ([`Endpoint::post`]).
    posts: Vec<Option<(u64, Arc<Landing>)>>,
}

impl Endpoint {
    /// Rank `rank`'s endpoint over `socks[r]`, its socket to rank `r`
    /// (`None` for itself). The sockets must be non-blocking.
    pub(super) fn new(rank: usize, socks: Vec<Option<UnixStream>>, max_frame: u64) -> Endpoint {
        let posts = socks.iter().map(|_| None).collect();
        let peers = socks
            .into_iter()
            .map(|sock| {
                sock.map(|sock| Peer {
                    sock,
                    reader: Reader::new(),
                    ring: Reader::new(),
                    socket_frames: 0,
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
            rings: None,
            placement: Placement::default(),
            spin: Spin::default(),
            posts,
        }
    }

    /// Sends frames without descriptors through `rings` from now on (every
    /// peer must read its rings too).
    pub(super) fn with_rings(mut self, rings: Option<Rings>) -> Endpoint {
        self.rings = rings.map(Arc::new);
        self
    }

    pub(super) fn rank(&self) -> usize {
        self.rank
    }

    /// The pool's rings, if it has them.
    pub(super) fn rings(&self) -> Option<&Arc<Rings>> {
        self.rings.as_ref()
    }

    /// Every rank has a core of its own: a wait may poll its rings without
    /// yielding for [`BUSY`] first.
    pub(super) fn set_uncrowded(&mut self, uncrowded: bool) {
        self.placement.set_uncrowded(uncrowded);
    }

    /// Replies are expected within `within` (borrowers copying a loan):
    /// waits until then spin or sleep at once ([`Spin::expect_replies`]).
    pub(super) fn expect_replies(&mut self, within: Duration) {
        let uncrowded = self.placement.is_uncrowded();
        self.spin.expect_replies(within, uncrowded);
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
                    cut: peer.ring.cut().or(peer.reader.cut()),
                }
            }
            corrupt => corrupt,
        };
        peer.closed = Some(closed);
        peer.fds.clear();
        self.closed += 1;
        self.events.push_back(Event::Closed(r));
    }

    /// Reads what peer `r`'s socket has, queueing complete frames. A peer
    /// that closed has its ring read to the end first.
    fn read_peer(&mut self, r: usize) {
        let max_frame = self.max_frame;
        loop {
            let Some(Some(peer)) = self.peers.get_mut(r) else {
                return;
            };
            if peer.closed.is_some() {
                return;
            }
            let src = Source::Socket(&peer.sock);
            // The receive posted for a frame from `r` (put back if the
            // frame read is not the one).
            let post = &mut self.posts[r];
            let read = peer.reader.read_some(&src, &mut peer.fds, max_frame, post);
            let why = match read {
                Ok(Some(frame)) => {
                    peer.socket_frames += 1;
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
            self.drain_ring(r);
            self.mark_closed(r, Closed::Lost { why, cut: None });
            return;
        }
    }

    /// Reads the ring from peer `r` up to `head`, queueing complete frames;
    /// whether it held anything.
    fn read_ring(&mut self, rings: &Rings, r: usize, head: u64) -> bool {
        let max_frame = self.max_frame;
        let mut progress = false;
        loop {
            let Some(Some(peer)) = self.peers.get_mut(r) else {
                return progress;
            };
            if peer.closed.is_some() {
                return progress;
            }
            let src = Source::Ring {
                rings,
                from: r,
                head,
            };
            let post = &mut self.posts[r];
            let read = peer.ring.read_some(&src, &mut peer.fds, max_frame, post);
            match read {
                Ok(Some(frame)) => self.events.push_back(Event::Frame(r, frame)),
                Ok(None) => {}
                Err(ReadError::Corrupt(b)) => {
                    self.mark_closed(r, Closed::Corrupt(b));
                    return true;
                }
                // A ring neither ends nor fails: it is empty.
                Err(_) => return progress,
            }
            progress = true;
        }
    }

    /// Posts `landing` for the next data packet of region `region` that
    /// fits it ([`Landing`]); whether it did. Not while another landing is
    /// posted for the same peer, the peer is gone, or the frame it would
    /// take may already be on its way in (one being read, or read and
    /// queued): then the receive takes a message as usual.
    pub(super) fn post(&mut self, region: u64, landing: &Arc<Landing>) -> bool {
        let from = landing.from();
        let idle = match self.peers.get(from) {
            Some(Some(p)) => {
                p.closed.is_none() && p.reader.cut().is_none() && p.ring.cut().is_none()
            }
            _ => false,
        };
        let queued = self.events.iter().any(
            |e| matches!(e, Event::Frame(r, f) if *r == from && f.header().lands(region, landing)),
        );
        if !idle || queued || self.posts[from].is_some() {
            return false;
        }
        self.posts[from] = Some((region, landing.clone()));
        true
    }

    /// Payload bytes of the frame being read from `r`'s ring (tests).
    #[cfg(test)]
    pub(super) fn payload_got(&self, r: usize) -> usize {
        match self.peers[r].as_ref().and_then(|p| p.ring.cut()) {
            Some(super::reader::Cut::Payload { got, .. }) => got,
            _ => 0,
        }
    }

    /// Withdraws `landing`: a frame half landed in its buffer goes on into
    /// a buffer of its own, and nothing is written into it any more.
    pub(super) fn unpost(&mut self, landing: &Arc<Landing>) {
        if let Some(post) = self.posts.get_mut(landing.from()) {
            post.take_if(|(_, l)| Arc::ptr_eq(l, landing));
        }
        if let Some(Some(p)) = self.peers.get_mut(landing.from()) {
            for reader in [&mut p.reader, &mut p.ring] {
                if reader.lands_in(landing) {
                    reader.unland();
                }
            }
        }
    }

    /// Reads everything the ring from `r` holds (its writer is gone, so
    /// what it published is final).
    fn drain_ring(&mut self, r: usize) {
        if let Some(rings) = self.rings.clone() {
            let (head, _) = rings.published(r);
            self.read_ring(&rings, r, head);
        }
    }

    /// Reads what every ring holds, after the socket frames their writers
    /// sent first; whether there was anything.
    fn take_rings(&mut self, rings: &Rings) -> bool {
        let mut progress = false;
        for r in 0..self.peers.len() {
            let seen = match &self.peers[r] {
                Some(p) if p.closed.is_none() => p.socket_frames,
                _ => continue,
            };
            let (head, sent) = rings.published(r);
            if sent != seen {
                self.read_peer(r);
                progress = true;
            }
            progress |= self.read_ring(rings, r, head);
        }
        progress
    }

    /// Waits until something arrives on any socket or ring (or `want_write`
    /// becomes writable, or the deadline passes) and reads it. Returns
    /// whether the deadline passed.
    pub(super) fn pump(
        &mut self,
        deadline: Option<Instant>,
        want_write: Option<usize>,
    ) -> io::Result<bool> {
        self.wait(deadline, want_write.map(Want::Socket))
    }

    /// [`pump`](Endpoint::pump) that also returns once every other rank
    /// has posted `stamp` (`posts`).
    pub(super) fn pump_posted(
        &mut self,
        deadline: Option<Instant>,
        stamp: u64,
    ) -> io::Result<bool> {
        self.wait(deadline, Some(Want::Posted(stamp)))
    }

    /// [`pump`](Endpoint::pump), also for room in a ring. With rings, it
    /// spins on them first (`spin`), then sleeps on the sockets and
    /// this rank's doorbell.
    fn wait(&mut self, deadline: Option<Instant>, want: Option<Want>) -> io::Result<bool> {
        let Some(rings) = self.rings.clone() else {
            return self.poll(deadline, want, None);
        };
        let moved = |w: Option<Want>| match w {
            Some(Want::Ring { to, empty: true }) => rings.drained(to),
            Some(Want::Ring { to, empty: false }) => rings.room(to) > 0,
            Some(Want::Posted(stamp)) => super::posts::all_posted(&rings, stamp),
            _ => false,
        };
        // Spinning on the rings is for what they carry: not while this rank waits to
        // write to a socket or reads a (large) frame from one, which only the poll sees
        // arrive; nor while another of its threads computes (a budget of zero, `spin`),
        // nor on shared cores while replies are expected later (`expect_replies`).
        let now = Instant::now();
        let plan = self.spin.plan(now);
        let on_socket = self
            .peers
            .iter()
            .flatten()
            .any(|p| p.closed.is_none() && p.reader.cut().is_some());
        if let Some(spin_until) = plan.spin_until()
            && !on_socket
            && !matches!(want, Some(Want::Socket(_)))
        {
            // Busy or not is decided at the first miss: not for a frame already there.
            let (busy_until, mut busy) = (now + BUSY, None);
            for i in 0u32.. {
                if self.take_rings(&rings) || moved(want) {
                    self.spin.hit();
                    return Ok(false);
                }
                if i % 4 == 3 {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Ok(true);
                    }
                    if now >= spin_until {
                        break;
                    }
                    if now >= busy_until {
                        busy = Some(false);
                    }
                }
                // Yield (on 2 busy cores a busy spin made a reply wait ~20 µs
                // for the spinner's slice) unless every rank has a core and
                // no peer waits on this CPU (`cpu.rs`): then the first BUSY.
                if *busy.get_or_insert_with(|| self.placement.may_spin(&rings, self.rank)) {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        rings.sleep();
        if self.take_rings(&rings) || moved(want) {
            rings.awake();
            return Ok(false);
        }
        let asleep = Instant::now();
        let slept = self.poll(deadline, want, Some(rings.bell()));
        if slept.as_ref().is_ok_and(|&timed_out| !timed_out) {
            self.spin.slept(plan, asleep.elapsed());
        }
        rings.awake();
        self.take_rings(&rings);
        slept
    }

    /// Polls the sockets (and `bell`) until something arrives, `want`'s
    /// socket becomes writable or the deadline passes, and reads the
    /// sockets that are ready. Returns whether the deadline passed.
    fn poll(
        &mut self,
        deadline: Option<Instant>,
        want: Option<Want>,
        bell: Option<BorrowedFd<'_>>,
    ) -> io::Result<bool> {
        let want_write = match want {
            Some(Want::Socket(r)) => Some(r),
            _ => None,
        };
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
            let mut fds = Vec::with_capacity(self.peers.len() + 1);
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
            // With rings, a sleeper also wakes on its doorbell, and now and
            // then on its own (a lost wake-up would cost a bounded wait,
            // never a hang).
            let timeout = match &bell {
                Some(bell) => {
                    fds.push(PollFd::new(bell, PollFlags::IN));
                    Some(timeout.map_or(MAX_SLEEP, |t| t.min(MAX_SLEEP)))
                }
                None => timeout,
            };
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
                // (the doorbell, last, has no `who`)
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
        if let Some(rings) = self.rings.clone() {
            self.take_rings(&rings);
        }
    }

    /// Reads what has already arrived where a look between two pieces of
    /// work finds it: with rings, what they hold and the socket frames they
    /// say came first (the sockets are not read otherwise: a `recvmsg` per
    /// peer that found nothing was 4 % of a dynamic map's main on
    /// `processes:4`; a peer's end is seen by the next wait, which polls
    /// them); without, what the sockets hold.
    pub(super) fn look(&mut self) {
        match self.rings.clone() {
            Some(rings) => {
                self.take_rings(&rings);
            }
            None => self.refresh(),
        }
    }

    /// Closes every connection (the peers see EOF).
    pub(super) fn close_all(&mut self) {
        for p in &mut self.peers {
            *p = None;
        }
    }

    /// Writes raw bytes to `to`, outside any framing, into the stream that
    /// carries frames (fault-injection tests).
    pub(super) fn write_raw(&mut self, to: usize, bytes: &[u8]) -> Result<()> {
        let nprocs = self.nprocs();
        let Some(Some(peer)) = self.peers.get(to) else {
            return Err(Error::InvalidRank { rank: to, nprocs });
        };
        let mut sent = 0;
        if let Some(rings) = &self.rings {
            // Into the stream that carries the frames.
            while sent < bytes.len() {
                match rings.write(to, &[bytes], sent) {
                    0 => std::thread::sleep(Duration::from_millis(1)),
                    n => sent += n,
                }
            }
            return Ok(());
        }
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
