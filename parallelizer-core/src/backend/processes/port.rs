//! The processes transport of the region protocol: [`Net`], one rank's
//! sockets for as long as it takes part, and [`Port`], the
//! [`Transport`] a region's [`LinkRank`](crate::link::LinkRank) talks
//! through.
//!
//! A packet goes out as one frame (`frame`; through the shared-memory ring
//! to its peer when the pool has rings and it is small enough, `endpoint`):
//! plain data written straight from the caller's slice (vectored, no copy
//! on a socket), serde bytes otherwise, and a
//! broadcast of `shm_threshold` bytes or more written once into a memfd
//! that every receiver gets (`shm`). What comes in is sorted here: packets
//! of the port's region are the port's events, packets of a region not yet
//! begun on this rank, of the latest one (while SPMD's ambient region 0
//! receives) or of the ambient one wait for their port, packets of an
//! older region are dropped, and Hello/Run/Shutdown frames wait
//! for [`Net::next_control`]. A peer that can no longer be read is
//! [`Event::Gone`] for every region, once: on main with the worker's exit
//! status (`Obituary`). A corrupt stream counts against the sender on main
//! and against the reading rank on a worker: its receive fails with
//! `Codec`, then the peer is gone.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::attach::Attachment;
use crate::error::{Error, Result};
use crate::link::{Board, Event, Landing, Packet, Transport};
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};
use crate::outcome::Outcome;
use crate::plain::PodType;

use super::endpoint::{Endpoint, Event as Read, Until, WriteError};
use super::frame::{Frame, Halt, Header, Kind, MAX_NAME};
use super::posts::{self, Posts};
use super::shared::{self, MEMFD};
use super::shm;
use crate::segment::SharedMemory;

/// Main's record of how its worker processes ended.
pub(super) trait Obituary: Send + Sync {
    /// How worker `rank` ended, waiting up to `within` for it to end;
    /// `None` while it runs (or if it is not a process of ours). The first
    /// answer is kept, with `cut` (where its stream was cut) beside it.
    fn ended(&self, rank: usize, within: Duration, cut: Option<&str>) -> Option<String>;
}

/// One rank's sockets to the others, for the whole session.
pub(super) struct Net {
    rank: usize,
    nprocs: usize,
    inner: Mutex<Inner>,
    shm_threshold: usize,
    /// Whether large plain buffers are lent to the other ranks, which read
    /// them with `process_vm_readv` (cleared when one was refused).
    lends: AtomicBool,
    obituary: Option<Arc<dyn Obituary>>,
    /// This rank's posts on the rings, if the pool has rings.
    posts: Option<Posts>,
}

struct Inner {
    ep: Endpoint,
    /// Hello, Run and Shutdown frames, in arrival order.
    control: VecDeque<(usize, Frame)>,
    /// Packets for the latest region, one not yet begun, or the ambient one,
    /// that another port received.
    early: VecDeque<(usize, Packet)>,
    /// The latest region begun on this rank (0: none).
    latest: u64,
    /// Main: the workers that reported a peer they can no longer read.
    broken: Vec<bool>,
}

/// What [`Net::next_control`] found.
#[derive(Debug)]
pub(super) enum Control {
    /// A Hello, Run or Shutdown frame.
    Frame(usize, Frame),
    /// A peer can no longer be read.
    Closed(usize),
}

impl Net {
    /// Rank `ep.rank()`'s sockets; main passes the `obituary` of its workers.
    /// `lends`: whether large plain buffers are lent across processes.
    pub(super) fn new(
        ep: Endpoint,
        (shm_threshold, lends): (usize, bool),
        obituary: Option<Arc<dyn Obituary>>,
    ) -> Arc<Net> {
        let (rank, nprocs) = (ep.rank(), ep.nprocs());
        let mut ep = ep;
        ep.set_uncrowded(nprocs <= crate::runtime::cores());
        let posts = ep.rings().map(|r| Posts::new(r.clone()));
        Arc::new(Net {
            rank,
            nprocs,
            inner: Mutex::new(Inner {
                ep,
                control: VecDeque::new(),
                early: VecDeque::new(),
                latest: 0,
                broken: vec![false; nprocs],
            }),
            shm_threshold,
            lends: AtomicBool::new(lends && cfg!(target_os = "linux")),
            obituary,
            posts,
        })
    }

    pub(super) fn rank(&self) -> usize {
        self.rank
    }

    pub(super) fn nprocs(&self) -> usize {
        self.nprocs
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every call leaves the endpoint consistent, so a panic that
        // poisoned the lock (a task's, caught) leaves it usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transport of region `region` (0: SPMD's ambient region). Sends
    /// that cannot finish by `deadline` fail with `Timeout` (after
    /// `timeout`, the configured one).
    pub(super) fn port(
        self: &Arc<Net>,
        region: u64,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Port {
        let mut inner = self.lock();
        if region > inner.latest {
            inner.latest = region;
            // Packets of the regions before it will never be asked for.
            inner
                .early
                .retain(|(_, p)| p.region() == 0 || p.region() >= region);
        }
        Port {
            net: self.clone(),
            region,
            deadline,
            timeout,
            told: Mutex::new(Told {
                peers: vec![Loss::Untold; self.nprocs],
                count: 0,
            }),
            failed: Mutex::new(None),
        }
    }

    /// Takes in a frame read from `from`: returns the packet if it belongs
    /// to `region`, keeps or drops other packets, files the rest.
    fn sort(inner: &mut Inner, from: usize, frame: Frame, region: Option<u64>) -> Option<Packet> {
        match frame.header().kind() {
            Kind::Packet => {
                let packet = frame.into_packet()?;
                let r = packet.region();
                if Some(r) == region {
                    return Some(packet);
                }
                // Another port's (the latest region's, while the ambient
                // one receives), or a region not yet begun here.
                if r == 0 || r >= inner.latest {
                    inner.early.push_back((from, packet));
                }
                None
            }
            Kind::Broken => {
                if let Some(b) = inner.broken.get_mut(from) {
                    *b = true;
                }
                None
            }
            Kind::Hello | Kind::Run | Kind::Shutdown => {
                inner.control.push_back((from, frame));
                None
            }
        }
    }

    /// The next Hello, Run or Shutdown frame, or a peer that closed, waiting
    /// until `until`; `None` when it passed first. Packets that arrive
    /// meanwhile wait for their region.
    pub(super) fn next_control(&self, until: Option<Instant>) -> Result<Option<Control>> {
        let mut inner = self.lock();
        loop {
            if let Some((from, frame)) = inner.control.pop_front() {
                return Ok(Some(Control::Frame(from, frame)));
            }
            if let Some(event) = inner.ep.next_event() {
                match event {
                    Read::Frame(from, frame) => {
                        Net::sort(&mut inner, from, frame, None);
                    }
                    Read::Closed(r) => return Ok(Some(Control::Closed(r))),
                }
                continue;
            }
            if inner.ep.pump(until, None)? {
                return Ok(None);
            }
        }
    }

    /// Takes in whatever has already arrived, without waiting (main uses it
    /// to notice workers that died between regions).
    pub(super) fn refresh(&self) {
        let mut inner = self.lock();
        inner.ep.refresh();
        while let Some(event) = inner.ep.next_event() {
            if let Read::Frame(from, frame) = event {
                Net::sort(&mut inner, from, frame, None);
            }
        }
    }

    /// Whether rank `r`'s connection can no longer be read.
    pub(super) fn is_closed(&self, r: usize) -> bool {
        self.lock().ep.is_closed(r)
    }

    /// Whether some peer can no longer be read (this rank must be replaced).
    pub(super) fn any_unreadable(&self) -> bool {
        let inner = self.lock();
        (0..self.nprocs).any(|r| r != self.rank && inner.ep.is_closed(r))
    }

    /// Main: whether worker `r` reported a peer it can no longer read.
    pub(super) fn is_broken(&self, r: usize) -> bool {
        self.lock().broken.get(r).copied().unwrap_or(false)
    }

    /// The error for "peer `r` can no longer be read", as this rank reports
    /// it (main waits up to a second for the worker's exit status, unless
    /// main cut the stream itself: a late worker is still running).
    pub(super) fn peer_error(&self, r: usize) -> Error {
        let inner = self.lock();
        self.peer_error_locked(&inner, r)
    }

    fn peer_error_locked(&self, inner: &Inner, r: usize) -> Error {
        let (reason, mid_frame, cut_here) = match inner.ep.closed(r) {
            Some(closed) => {
                if let Some(bad) = closed.corrupt() {
                    return Error::Codec(format!("from rank {r}: {bad}"));
                }
                (closed.to_string(), closed.mid_frame(), closed.cut_here())
            }
            None => ("connection closed".to_string(), false, false),
        };
        if self.rank == 0 && !cut_here {
            // Its exit status, waited for up to a second, says more than EOF.
            let cut = mid_frame.then_some(reason.as_str());
            let ended = self
                .obituary
                .as_ref()
                .and_then(|o| o.ended(r, Duration::from_secs(1), cut));
            Error::WorkerDied {
                rank: r,
                status: ended.unwrap_or(reason),
            }
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

    /// Writes a frame, turning the endpoint's failures into errors.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        inner: &mut Inner,
        to: usize,
        header: Header,
        name: &str,
        parts: &[&[u8]],
        fds: &[BorrowedFd<'_>],
        until: Until,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let late = || Error::Timeout {
            op: Op::Run,
            rank: to,
            after: timeout.unwrap_or_default(),
        };
        match inner
            .ep
            .write_frame(to, header, name.as_bytes(), parts, fds, until)
        {
            Ok(()) => Ok(()),
            Err(WriteError::Gone) => Err(self.peer_error_locked(inner, to)),
            // Main said the deadline passed while `to` did not read: as
            // a send past its own deadline.
            Err(WriteError::TimedOut | WriteError::Halted(_, Halt::Expired)) => Err(late()),
            // The region's abort says who failed (`LinkRank::after_send`).
            Err(WriteError::Halted(from, Halt::Aborted)) => Err(Error::Aborted { by_rank: from }),
            Err(WriteError::Poll(e)) => Err(e.into()),
        }
    }

    /// Sends a frame of `kind` (not a packet) of region `region` to `to`:
    /// a type name and the payload `parts`, with the descriptors of the
    /// shared arrays it holds (`fds`), which `to` must read by `deadline`.
    pub(super) fn send_control(
        &self,
        to: usize,
        (kind, region): (Kind, u64),
        name: &str,
        (parts, fds): (&[&[u8]], &[BorrowedFd<'_>]),
        deadline: Option<Instant>,
    ) -> Result<()> {
        let name = checked_name(name);
        let len = parts.iter().map(|p| p.len() as u64).sum();
        let header = Header::control(kind, region, name.len(), len).with_attached(fds.len());
        let until = Until {
            deadline,
            halt: None,
        };
        let mut inner = self.lock();
        self.write(&mut inner, to, header, name, parts, fds, until, None)
    }

    /// Closes every connection (the peers see EOF).
    pub(super) fn close_all(&self) {
        self.lock().ep.close_all();
    }

    /// Writes raw bytes to `to`, outside any framing (fault-injection tests).
    pub(super) fn write_raw(&self, to: usize, bytes: &[u8]) -> Result<()> {
        self.lock().ep.write_raw(to, bytes)
    }
}

/// The type name a frame carries: the body's, unless it is too long to
/// send (then none, and the receiver cannot check it).
fn checked_name(name: &str) -> &str {
    if name.len() <= MAX_NAME { name } else { "" }
}

/// Whether a lost peer was reported to this port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Untold,
    /// A worker's receive failed with the corrupt stream's error.
    Failed,
    /// Reported as [`Event::Gone`].
    Gone,
}

struct Told {
    peers: Vec<Loss>,
    /// Peers reported as gone (compared with the endpoint's closed count,
    /// so that nothing is scanned while every peer is well).
    count: usize,
}

/// One rank's transport in one region.
pub(super) struct Port {
    net: Arc<Net>,
    region: u64,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    told: Mutex<Told>,
    /// The error a corrupt stream gave this (worker) rank's receive.
    failed: Mutex<Option<Error>>,
}

impl Port {
    /// A worker's report of its task's end: a failure after this rank's
    /// receive failed on a corrupt stream is that stream's error (not what
    /// the task made of it, say a panic on `unwrap`).
    pub(super) fn blame(&self, outcome: Outcome<Msg>) -> Outcome<Msg> {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match (outcome, failed) {
            (Outcome::Done(v), _) => Outcome::Done(v),
            (_, Some(e)) => Outcome::Failed(e),
            (other, None) => other,
        }
    }

    /// The next lost peer this port has not reported: a `Codec` error for
    /// a corrupt stream on a worker (the reading rank fails), then `Gone`.
    fn next_loss(&self, inner: &Inner) -> Option<Result<Event>> {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        if told.count == inner.ep.closed_count() {
            return None;
        }
        let me = self.net.rank;
        let r = (0..self.net.nprocs)
            .find(|&r| r != me && inner.ep.is_closed(r) && told.peers[r] != Loss::Gone)?;
        let error = self.net.peer_error_locked(inner, r);
        let corrupt = inner.ep.closed(r).is_some_and(|c| c.corrupt().is_some());
        if corrupt && me != 0 && told.peers[r] == Loss::Untold {
            told.peers[r] = Loss::Failed;
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.get_or_insert_with(|| error.clone());
            return Some(Err(error));
        }
        told.peers[r] = Loss::Gone;
        told.count += 1;
        Some(Ok(Event::Gone { rank: r, error }))
    }

    /// Writes one frame of this port's region to `to`: within its
    /// deadline, and until main says the deadline passed or the region is
    /// aborted, if `to` does not read.
    fn put(
        &self,
        inner: &mut Inner,
        to: usize,
        (header, name): (Header, &str),
        parts: &[&[u8]],
        fds: &[BorrowedFd<'_>],
    ) -> Result<()> {
        let until = Until {
            deadline: self.deadline,
            halt: Some(self.region),
        };
        self.net
            .write(inner, to, header, name, parts, fds, until, self.timeout)
    }
}

/// A packet's frame: header, type name, payload, and the shared arrays it
/// holds.
type Wire<'a> = (Header, &'a str, Cow<'a, [u8]>, Vec<Attachment>);

/// A packet's body on the wire, with the header of its frame: plain data as
/// it is (borrowed), serde bytes encoded, with the shared arrays they hold.
fn wire(packet: &Packet) -> Result<Wire<'_>> {
    let body = packet.body();
    let name = checked_name(body.type_name().unwrap_or(""));
    let (bytes, enc, attached) = match body.pod_bytes() {
        Some(b) => (Cow::Borrowed(b), Encoding::Pod, Vec::new()),
        None => {
            let (bytes, attached) = body.to_wire()?;
            (Cow::Owned(bytes), body.encoding(), attached)
        }
    };
    let header =
        Header::packet(packet, name.len(), enc, bytes.len() as u64).with_attached(attached.len());
    Ok((header, name, bytes, attached))
}

/// Whether a body is plain data of 8-byte elements (received into words).
fn in_words(packet: &Packet) -> bool {
    let body = packet.body();
    body.pod_bytes().is_some() && body.pod_align() == 8
}

impl Transport for Port {
    /// Plain data by vectored write straight from the caller's buffer,
    /// serde bytes otherwise. One receiver gains nothing from shared memory
    /// (creating, sealing and mapping a memfd costs more than the socket
    /// copy it saves), so only [`send_all`](Transport::send_all) uses it.
    fn send(&self, to: usize, packet: Packet) -> Result<()> {
        let (header, name, bytes, attached) = wire(&packet)?;
        let fds = shared::descriptors(&attached)?;
        let header = header.aligned(in_words(&packet));
        let mut inner = self.net.lock();
        self.put(&mut inner, to, (header, name), &[&bytes], &fds)
    }

    /// Straight from `bytes`: the frame is written out (into the ring or the
    /// socket) before this returns.
    fn send_plain(
        &self,
        to: usize,
        (region, group, tag): (u64, u64, Tag),
        ty: PodType,
        bytes: &[u8],
    ) -> Result<()> {
        let name = checked_name(ty.vec_name);
        let packet = Packet::data(region, tag, Msg::new(())).in_group(group);
        let header = Header::packet(&packet, name.len(), Encoding::Pod, bytes.len() as u64)
            .aligned(ty.size > 0 && ty.size.is_multiple_of(8));
        let mut inner = self.net.lock();
        self.put(&mut inner, to, (header, name), &[bytes], &[])
    }

    /// Lands in the caller's buffer the frame it fits, if it is not
    /// already on its way in (`Endpoint::post`).
    fn post(&self, landing: &Arc<Landing>) -> bool {
        let mut inner = self.net.lock();
        let early = inner.early.iter().any(|(from, p)| {
            *from == landing.from()
                && p.region() == self.region
                && landing.takes(p.group(), p.tag())
        });
        !early && inner.ep.post(self.region, landing)
    }

    fn unpost(&self, landing: &Arc<Landing>) {
        self.net.lock().ep.unpost(landing);
    }

    /// The same packet to every rank of `to`, encoded once; at least
    /// `shm_threshold` bytes are written once into a memfd whose descriptor
    /// each receiver gets.
    fn send_all(&self, to: &[usize], packet: &Packet) -> Result<()> {
        let (header, name, bytes, attached) = wire(packet)?;
        let fds = shared::descriptors(&attached)?;
        let mut inner = self.net.lock();
        if bytes.len() >= self.net.shm_threshold && !to.is_empty() {
            let fd = shm::create(&bytes)?;
            // The payload's memfd first, then the shared arrays'.
            let all: Vec<BorrowedFd<'_>> = std::iter::once(fd.as_fd()).chain(fds).collect();
            for &r in to {
                let frame = (header.shared(), name);
                self.put(&mut inner, r, frame, &[], &all)?;
            }
            return Ok(());
        }
        let header = header.aligned(in_words(packet));
        for &r in to {
            self.put(&mut inner, r, (header, name), &[&bytes], &fds)?;
        }
        Ok(())
    }

    /// The ranks are processes of this machine, which may read each
    /// other's memory unless the option `lend` is off or a read was refused.
    fn reads_peer_memory(&self) -> bool {
        self.net.lends.load(Ordering::Relaxed)
    }

    /// Spins until then where every rank can have a core; sleeps at once
    /// where they share cores, so as not to take turns on the core a
    /// borrower copies on (`Endpoint::expect_replies`).
    fn expect_replies(&self, within: Duration) {
        self.net.lock().ep.expect_replies(within);
    }

    fn peer_memory_refused(&self) {
        self.net.lends.store(false, Ordering::Relaxed);
    }

    /// The ranks are processes of this machine: memfds they all map.
    fn shared_memory(&self) -> Option<&dyn SharedMemory> {
        Some(&MEMFD)
    }

    fn recv(&self, until: Option<Instant>) -> Result<Option<Event>> {
        self.receive(until, None)
    }

    fn board(&self) -> Option<&dyn Board> {
        self.net.posts.as_ref().map(|p| p as &dyn Board)
    }

    fn recv_or_posted(&self, until: Option<Instant>, stamp: u64) -> Result<Option<Event>> {
        self.receive(until, Some(stamp))
    }
}

impl Port {
    /// [`Transport::recv`], returning `Ok(None)` also once every other
    /// rank has posted `posted` ([`Transport::recv_or_posted`]).
    fn receive(&self, until: Option<Instant>, posted: Option<u64>) -> Result<Option<Event>> {
        let mut inner = self.net.lock();
        let mut looked = false;
        loop {
            let mine = inner
                .early
                .iter()
                .position(|(_, p)| p.region() == self.region);
            if let Some((from, packet)) = mine.and_then(|i| inner.early.remove(i)) {
                return Ok(Some(Event::Packet { from, packet }));
            }
            // Frames read before a peer closed come before its loss.
            while let Some(event) = inner.ep.next_event() {
                if let Read::Frame(from, frame) = event {
                    if let Some(packet) = Net::sort(&mut inner, from, frame, Some(self.region)) {
                        return Ok(Some(Event::Packet { from, packet }));
                    }
                }
            }
            if let Some(loss) = self.next_loss(&inner) {
                return loss.map(Some);
            }
            if let (Some(stamp), Some(rings)) = (posted, inner.ep.rings())
                && posts::all_posted(rings, stamp)
            {
                return Ok(None);
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                // A look that does not wait (a map's main between pieces of
                // its share) reads what has come, once: no spin, whose
                // yields gave the core away at each look on a crowded machine.
                if std::mem::replace(&mut looked, true) {
                    return Ok(None);
                }
                inner.ep.look();
                continue;
            }
            let passed = match posted {
                Some(stamp) => inner.ep.pump_posted(until, stamp)?,
                None => inner.ep.pump(until, None)?,
            };
            if passed {
                return Ok(None);
            }
        }
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("rank", &self.net.rank)
            .field("region", &self.region)
            .finish()
    }
}

impl Net {
    /// A packet frame of region `region`, tag `tag`, whose payload is a
    /// sealed but sparse memfd of `len` bytes, to `to` (fault injection).
    pub(super) fn send_sparse(&self, to: usize, region: u64, tag: Tag, len: u64) -> Result<()> {
        let fd = shm::sparse(len)?;
        let name = std::any::type_name::<Vec<u8>>();
        let p = Packet::data(region, tag, Msg::new(()));
        let header = Header::packet(&p, name.len(), Encoding::Pod, len).shared();
        let mut inner = self.lock();
        let until = Until::default();
        self.write(
            &mut inner,
            to,
            header,
            name,
            &[],
            &[fd.as_fd()],
            until,
            None,
        )
    }
}

#[cfg(test)]
#[path = "port_tests.rs"]
mod tests;
