//! The region protocol over one rank's [`Endpoint`]: per-peer inboxes of
//! the current region, aborts (who failed first, and telling the others),
//! Done reports on main, and the errors a lost peer turns into.
//!
//! Every blocking call here polls all sockets through the endpoint and then
//! takes what arrived: data frames go to their sender's inbox (frames of
//! older regions are dropped), Abort frames record the region's failure at
//! once (so a rank blocked on another peer is released with
//! [`Error::Aborted`]), Done frames are main's reports from the workers,
//! and Hello/Run/Shutdown frames wait in the control queue.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg, encode_serde};
use crate::op::Op;

use super::endpoint::{Endpoint, Event, WriteError};
use super::frame::{Frame, Header, Kind};
use super::inbox::Inboxes;
use super::opts::Opts;
use super::shm;

/// Main's record of how its worker processes ended.
pub(super) trait Obituary: Send + Sync {
    /// How worker `rank` ended, waiting up to `within` for it to end;
    /// `None` while it runs (or if it is not a process of ours). The first
    /// answer is kept, with `cut` (where its stream was cut) beside it.
    fn ended(&self, rank: usize, within: Duration, cut: Option<&str>) -> Option<String>;
    /// The answer kept for worker `rank`, if any.
    fn known(&self, rank: usize) -> Option<String>;
}

/// The payload of a [`Kind::Abort`] frame.
#[derive(Debug, Serialize, Deserialize)]
struct AbortNote {
    by_rank: u32,
    cause: Option<Error>,
}

/// The payload of a [`Kind::Done`] frame.
#[derive(Debug, Serialize, Deserialize)]
struct DoneNote {
    error: Option<Error>,
    /// The worker can no longer read some peer: replace the pool.
    broken: bool,
}

/// Why a region was aborted, as this rank knows it.
#[derive(Debug)]
struct Abort {
    region: u64,
    by_rank: usize,
    /// The failure itself, when this rank knows it (main always learns it).
    cause: Option<Error>,
}

/// One rank's side of the protocol.
pub(super) struct Link {
    ep: Endpoint,
    /// The current region; frames of older regions are dropped.
    region: u64,
    inbox: Inboxes,
    /// Hello, Run and Shutdown frames, in arrival order.
    control: VecDeque<(usize, Frame)>,
    abort: Option<Abort>,
    /// Main only: an abort learnt from a worker that the others must hear.
    relay: bool,
    /// Main only: the Done reports of the current region, by rank.
    done: Vec<Option<Option<Error>>>,
    /// Main only: workers that reported a peer they can no longer read.
    broken: Vec<bool>,
    timeout: Option<Duration>,
    shm_threshold: usize,
    /// Whether a peer closing its connection fails the region at once
    /// (served workers), or only a receive from that peer (SPMD, where a
    /// rank ends by returning from `main`).
    eof_fails_region: bool,
    obituary: Option<Arc<dyn Obituary>>,
}

impl Link {
    /// Rank `ep.rank()`'s protocol over `ep`; `timeout` bounds blocking
    /// receives and sends; main passes the `obituary` of its workers.
    pub(super) fn new(
        ep: Endpoint,
        opts: &Opts,
        timeout: Option<Duration>,
        obituary: Option<Arc<dyn Obituary>>,
    ) -> Link {
        let n = ep.nprocs();
        Link {
            ep,
            region: 0,
            inbox: Inboxes::new(n),
            control: VecDeque::new(),
            abort: None,
            relay: false,
            done: (0..n).map(|_| None).collect(),
            broken: vec![false; n],
            timeout,
            shm_threshold: opts.shm_threshold(),
            eof_fails_region: true,
            obituary,
        }
    }

    pub(super) fn rank(&self) -> usize {
        self.ep.rank()
    }

    pub(super) fn nprocs(&self) -> usize {
        self.ep.nprocs()
    }

    fn is_main(&self) -> bool {
        self.rank() == 0
    }

    pub(super) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// See the field: true for served workers, false during start-up and SPMD.
    pub(super) fn set_eof_fails_region(&mut self, on: bool) {
        self.eof_fails_region = on;
    }

    /// Starts region `region`: older frames and reports are dropped.
    pub(super) fn begin_region(&mut self, region: u64) {
        self.region = region;
        self.inbox.drop_before(region);
        for d in &mut self.done {
            *d = None;
        }
        self.relay = false;
    }

    /// The rank that aborted the current region, if it was.
    pub(super) fn aborted_by(&self) -> Option<usize> {
        self.abort
            .as_ref()
            .filter(|a| a.region == self.region)
            .map(|a| a.by_rank)
    }

    fn check_not_aborted(&self) -> Result<()> {
        match self.aborted_by() {
            Some(by_rank) => Err(Error::Aborted { by_rank }),
            None => Ok(()),
        }
    }

    /// Whether rank `r`'s connection is unusable.
    pub(super) fn is_closed(&self, r: usize) -> bool {
        self.ep.is_closed(r)
    }

    /// Whether frames can still be written to rank `r`.
    pub(super) fn is_writable(&self, r: usize) -> bool {
        self.ep.is_writable(r)
    }

    /// Whether some peer can no longer be read (this rank must be replaced).
    pub(super) fn any_unreadable(&self) -> bool {
        (0..self.nprocs()).any(|r| r != self.rank() && self.is_closed(r))
    }

    /// Main: whether worker `r` reported the end of the current region.
    pub(super) fn is_done(&self, r: usize) -> bool {
        self.done[r].is_some()
    }

    /// Main: whether worker `r` reported a peer it can no longer read.
    pub(super) fn is_broken(&self, r: usize) -> bool {
        self.broken[r]
    }

    /// Main: how each lost worker ended, by rank, as far as known.
    pub(super) fn statuses(&self) -> Vec<Option<String>> {
        let known = |r| self.obituary.as_ref().and_then(|o| o.known(r));
        (0..self.nprocs()).map(known).collect()
    }

    /// Records the region's first real failure (and, on main, that the
    /// workers must hear of it).
    pub(super) fn record_failure(&mut self, by_rank: usize, cause: Option<Error>) {
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
    pub(super) fn take_failure(&mut self) -> Option<(usize, Option<Error>)> {
        match &mut self.abort {
            Some(a) if a.region == self.region => Some((a.by_rank, a.cause.take())),
            _ => None,
        }
    }

    /// The error for "peer `r` is gone", as this rank reports it.
    pub(super) fn peer_error(&mut self, r: usize) -> Error {
        let (reason, mid_frame) = match self.ep.closed(r) {
            Some(closed) => {
                if let Some(bad) = closed.corrupt() {
                    return Error::Codec(format!("from rank {r}: {bad}"));
                }
                (closed.to_string(), closed.mid_frame())
            }
            None => ("connection closed".to_string(), false),
        };
        if self.is_main() {
            // Its exit status, waited for up to a second, says more than EOF.
            let cut = mid_frame.then_some(reason.as_str());
            let ended = self
                .obituary
                .as_ref()
                .and_then(|o| o.ended(r, Duration::from_secs(1), cut));
            let status = ended.unwrap_or(reason);
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
    /// if none is yet: a corrupt stream counts against the rank reading it,
    /// on a worker (main: against the sender); a closed one against the peer.
    fn fail_for_peer(&mut self, r: usize) -> Error {
        let err = self.peer_error(r);
        let corrupt = self.ep.closed(r).is_some_and(|c| c.corrupt().is_some());
        let by = if corrupt && !self.is_main() {
            self.rank()
        } else {
            r
        };
        self.record_failure(by, Some(err.clone()));
        err
    }

    /// Takes what the endpoint read.
    fn absorb(&mut self) {
        while let Some(event) = self.ep.next_event() {
            match event {
                Event::Frame(from, frame) => self.dispatch(from, frame),
                Event::Closed(r) => {
                    let corrupt = self.ep.closed(r).is_some_and(|c| c.corrupt().is_some());
                    // A dead peer fails the region it was part of; a corrupt
                    // stream fails it always.
                    if corrupt || self.eof_fails_region {
                        self.fail_for_peer(r);
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, from: usize, frame: Frame) {
        let h = *frame.header();
        match h.kind() {
            Kind::Data | Kind::Shm => {
                if h.region() >= self.region {
                    self.inbox.queue(h.group(), from).push_back(frame);
                }
            }
            Kind::Abort => {
                let note = frame.note::<AbortNote>().and_then(|n| n.ok());
                let (by_rank, cause) = match note {
                    Some(n) => (n.by_rank as usize, n.cause.map(|c| c.on_rank(from))),
                    None => (from, None),
                };
                let newer = self.abort.as_ref().is_none_or(|a| a.region < h.region());
                if h.region() >= self.region && newer {
                    self.abort = Some(Abort {
                        region: h.region(),
                        by_rank,
                        cause,
                    });
                    if self.is_main() && h.region() == self.region {
                        self.relay = true;
                    }
                }
            }
            Kind::Done => {
                if h.region() != self.region || !self.is_main() {
                    return;
                }
                let note = match frame.note::<DoneNote>() {
                    Some(Ok(note)) => note,
                    Some(Err(e)) => DoneNote {
                        error: Some(Error::Codec(format!("bad Done report: {e}"))),
                        broken: true,
                    },
                    None => DoneNote {
                        error: Some(Error::Codec("a Done report that is not serde bytes".into())),
                        broken: true,
                    },
                };
                self.broken[from] |= note.broken;
                let err = note.error.map(|e| e.on_rank(from));
                if let Some(e) = &err {
                    if !e.is_secondary() {
                        self.record_failure(from, Some(e.clone()));
                    }
                }
                self.done[from] = Some(err);
            }
            Kind::Hello | Kind::Run | Kind::Shutdown => self.control.push_back((from, frame)),
        }
    }

    /// Waits until something arrives (or `want_write` can be written, or the
    /// deadline passes) and takes it. Returns whether the deadline passed.
    fn pump(&mut self, deadline: Option<Instant>, want_write: Option<usize>) -> Result<bool> {
        let passed = self.ep.pump(deadline, want_write);
        self.absorb();
        Ok(passed?)
    }

    /// Takes whatever has already arrived, without waiting (main uses it to
    /// notice workers that died between regions).
    pub(super) fn refresh(&mut self) {
        self.ep.refresh();
        self.absorb();
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
        for r in 1..self.nprocs() {
            if r != origin && self.is_writable(r) {
                let _ = self.send_note(r, Kind::Abort, &note);
            }
        }
    }

    /// Tells every other rank (or every worker but main, for a worker that
    /// reports to main in its Done) that this rank failed with `cause`.
    pub(super) fn broadcast_abort(&mut self, cause: Option<&Error>, include_main: bool) {
        let note = AbortNote {
            by_rank: self.rank() as u32,
            cause: cause.cloned(),
        };
        for r in 0..self.nprocs() {
            if r != self.rank() && (r != 0 || include_main) && self.is_writable(r) {
                let _ = self.send_note(r, Kind::Abort, &note);
            }
        }
    }

    /// Worker: reports the end of the current region to main.
    pub(super) fn send_done(&mut self, error: Option<&Error>) {
        let note = DoneNote {
            error: error.cloned(),
            broken: self.any_unreadable(),
        };
        let _ = self.send_note(0, Kind::Done, &note);
    }

    /// Sends a protocol note (serde payload) of the current region to `to`,
    /// without a deadline.
    pub(super) fn send_note<T: Serialize>(
        &mut self,
        to: usize,
        kind: Kind,
        note: &T,
    ) -> Result<()> {
        let mut body = Vec::new();
        encode_serde(note, &mut body)?;
        let h = Header::new(kind, self.region, body.len() as u64);
        self.write(to, h, &[&body], None, false)
    }

    /// Main: tells worker `to` to run task `task` on `args` in the current region.
    pub(super) fn send_run(&mut self, to: usize, task: u32, args: &[u8]) -> Result<()> {
        let h = Header::new(Kind::Run, self.region, (4 + args.len()) as u64);
        self.write(to, h, &[&task.to_le_bytes(), args], None, true)
    }

    /// Main: tells worker `to` to leave its serve loop.
    pub(super) fn send_shutdown(&mut self, to: usize) -> Result<()> {
        let h = Header::new(Kind::Shutdown, self.region, 0);
        self.write(to, h, &[], None, false)
    }

    /// Writes a frame, turning the endpoint's failures into errors; with
    /// `timed`, the peer must read within the timeout.
    fn write(
        &mut self,
        to: usize,
        header: Header,
        parts: &[&[u8]],
        fd: Option<std::os::fd::BorrowedFd<'_>>,
        timed: bool,
    ) -> Result<()> {
        let deadline = if timed { self.deadline() } else { None };
        let written = self.ep.write_frame(to, header, parts, fd, deadline);
        self.absorb();
        match written {
            Ok(()) => Ok(()),
            Err(WriteError::Gone) => Err(self.fail_for_peer(to)),
            Err(WriteError::TimedOut) => Err(Error::Timeout {
                op: Op::Send,
                rank: to,
                after: self.timeout.unwrap_or_default(),
            }),
            Err(WriteError::Poll(e)) => Err(e.into()),
        }
    }

    /// Blocks for the next message frame from `from` in the current region.
    pub(super) fn recv(&mut self, from: usize) -> Result<Frame> {
        self.recv_in(0, from)
    }

    /// Blocks for the next message frame of group `group` from `from` in
    /// the current region.
    pub(super) fn recv_in(&mut self, group: u64, from: usize) -> Result<Frame> {
        let deadline = self.deadline();
        loop {
            self.relay_abort();
            self.check_not_aborted()?;
            let region = self.region;
            let q = self.inbox.queue(group, from);
            while q.front().is_some_and(|f| f.header().region() < region) {
                q.pop_front();
            }
            if q.front().is_some_and(|f| f.header().region() == region) {
                return Ok(q.pop_front().expect("checked"));
            }
            if self.is_closed(from) {
                // An abort sent before the peer left may still be unread.
                self.refresh();
                self.check_not_aborted()?;
                return Err(self.fail_for_peer(from));
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

    /// Blocks for the next control frame (Hello, Run, Shutdown) from any
    /// peer, until `deadline`. `None` on timeout.
    pub(super) fn next_control(
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

    /// The next control frame that has arrived, if any.
    pub(super) fn pop_control(&mut self) -> Option<(usize, Frame)> {
        self.control.pop_front()
    }

    pub(super) fn has_control(&self) -> bool {
        !self.control.is_empty()
    }

    /// Waits until `done` holds or the deadline passes; whether it holds.
    pub(super) fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        mut done: impl FnMut(&Link) -> bool,
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

    /// Sends a message to `to`: plain data by vectored write straight from
    /// the caller's buffer, serde bytes otherwise. One receiver gains
    /// nothing from shared memory (creating, sealing and mapping a memfd
    /// costs more than the socket copy it saves), so only `broadcast` uses it.
    pub(super) fn send(&mut self, msg: Msg, to: usize) -> Result<()> {
        self.send_in(0, msg, to)
    }

    /// `send` in the message namespace of group `group`.
    pub(super) fn send_in(&mut self, group: u64, msg: Msg, to: usize) -> Result<()> {
        self.check_not_aborted()?;
        if let Some(pod) = msg.pod_bytes() {
            let align8 = msg.pod_align() == 8;
            let h = Header::message(
                Kind::Data,
                self.region,
                pod.len() as u64,
                Encoding::Pod,
                align8,
            )
            .in_group(group);
            return self.write(to, h, &[pod], None, true);
        }
        let enc = msg.encoding();
        let bytes = msg.into_bytes()?;
        let h = Header::message(Kind::Data, self.region, bytes.len() as u64, enc, false)
            .in_group(group);
        self.write(to, h, &[&bytes], None, true)
    }

    /// Main: the same message to every worker, encoded once; above the
    /// threshold written once into a memfd whose descriptor each worker gets.
    pub(super) fn broadcast(&mut self, msg: &Msg) -> Result<()> {
        self.check_not_aborted()?;
        let owned;
        let (bytes, enc): (&[u8], Encoding) = match msg.pod_bytes() {
            Some(b) => (b, Encoding::Pod),
            None => {
                owned = msg.to_bytes()?;
                (&owned, msg.encoding())
            }
        };
        let len = bytes.len() as u64;
        let shared = if bytes.len() >= self.shm_threshold && self.nprocs() > 1 {
            Some(shm::create(bytes)?)
        } else {
            None
        };
        for to in 1..self.nprocs() {
            match &shared {
                Some(fd) => {
                    let h = Header::message(Kind::Shm, self.region, len, enc, false);
                    self.write(to, h, &[], Some(fd.as_fd()), true)?;
                }
                None => {
                    let h = Header::message(Kind::Data, self.region, len, enc, false);
                    self.write(to, h, &[bytes], None, true)?;
                }
            }
        }
        Ok(())
    }

    /// Closes every connection (the peers see EOF).
    pub(super) fn close_all(&mut self) {
        self.ep.close_all();
    }

    /// Writes raw bytes to `to`, outside any framing (fault-injection tests).
    pub(super) fn write_raw(&mut self, to: usize, bytes: &[u8]) -> Result<()> {
        self.ep.write_raw(to, bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::config::Config;

    /// Two links (ranks 0 and 1) joined by a socketpair, in this process.
    fn pair(timeout: Option<Duration>, shm_threshold: usize) -> (Link, Link) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let config = Config::new("processes").option("shm_threshold", shm_threshold);
        let opts = Opts::from_config(&config).unwrap();
        let link = |rank, socks| {
            Link::new(
                Endpoint::new(rank, socks, opts.max_frame()),
                &opts,
                timeout,
                None,
            )
        };
        (link(0, vec![None, Some(a)]), link(1, vec![Some(b), None]))
    }

    #[test]
    fn messages_in_band_and_through_shared_memory() {
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)), 1024);
        b.send(Msg::new(vec!["x".to_string(); 3]), 0).unwrap();
        b.send(Msg::pod(vec![2.5f64; 10]), 0).unwrap();
        b.send(Msg::pod(vec![3u8; 4096]), 0).unwrap(); // large, yet in band
        b.send(Msg::pod((0..1000).map(f64::from).collect::<Vec<f64>>()), 0)
            .unwrap(); // in 8-byte words
        a.broadcast(&Msg::pod(vec![7u32; 100_000])).unwrap(); // memfd
        let m = a.recv(1).unwrap().into_msg().unwrap();
        assert_eq!(m.into_value::<Vec<String>>().unwrap(), ["x", "x", "x"]);
        let m = a.recv(1).unwrap().into_msg().unwrap();
        assert_eq!(m.into_pod::<f64>().unwrap(), [2.5; 10]);
        let f = a.recv(1).unwrap();
        assert_eq!(f.header().kind(), Kind::Data);
        assert_eq!(
            f.into_msg().unwrap().into_pod::<u8>().unwrap(),
            vec![3; 4096]
        );
        let v = a.recv(1).unwrap().into_msg().unwrap().into_pod::<f64>();
        assert_eq!(v.map(|v| (v.len(), v[999])).unwrap(), (1000, 999.0));
        let f = b.recv(0).unwrap();
        assert_eq!(f.header().kind(), Kind::Shm);
        assert_eq!(
            f.into_msg().unwrap().into_pod::<u32>().unwrap(),
            vec![7; 100_000]
        );
    }

    #[test]
    fn receive_and_send_honour_the_timeout() {
        let (mut a, mut b) = pair(Some(Duration::from_millis(100)), usize::MAX);
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
        let err = b.send(Msg::pod(vec![0u8; 64 << 20]), 0).unwrap_err();
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
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)), 1 << 20);
        b.write_raw(0, &Header::new(Kind::Data, 0, 1 << 60).encode())
            .unwrap();
        // The receive is released; the region's failure is the codec error.
        assert!(matches!(a.recv(1), Err(Error::Aborted { by_rank: 1 })));
        assert!(
            matches!(a.take_failure(), Some((1, Some(Error::Codec(m)))) if m.contains("over the limit"))
        );
        // A truncated frame, then the peer goes away.
        let (mut a, mut b) = pair(Some(Duration::from_secs(5)), 1 << 20);
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
            a.send(Msg::new(1u8), 1),
            Err(Error::Aborted { .. })
        ));
        assert!(matches!(
            a.send_shutdown(1),
            Err(Error::WorkerDied { rank: 1, .. })
        ));
    }
}
