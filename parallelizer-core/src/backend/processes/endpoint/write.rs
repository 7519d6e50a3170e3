//! Writing whole frames, and when a write whose peer does not read gives
//! up: at its deadline, or once a frame that halts it has come (main's word
//! that the region's deadline passed, or an abort) and the peer still made
//! no progress for [`HALT_GRACE`].

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use super::super::frame::{Halt, Header};
use super::super::reader::Lost;
use super::super::ring::Rings;
use super::super::sock::send_some;
use super::{Closed, Endpoint, Event, Want};

/// Why a frame could not be written.
#[derive(Debug)]
pub(in crate::backend::processes) enum WriteError {
    /// The peer cannot be written to ([`Endpoint::closed`] says why).
    Gone,
    /// The peer did not read before the deadline.
    TimedOut,
    /// The peer did not read, and a frame from rank `from` halts the
    /// write ([`Until::halt`]): (`from`, why).
    Halted(usize, Halt),
    /// Waiting for the socket failed.
    Poll(io::Error),
}

/// When a write that waits for its peer to read gives up.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::backend::processes) struct Until {
    /// At this instant ([`WriteError::TimedOut`]).
    pub(in crate::backend::processes) deadline: Option<Instant>,
    /// Once a frame that halts the sends of this region has come, from any
    /// peer ([`Header::halts`]; [`WriteError::Halted`]): a rank blocked
    /// sending to a late peer is released when main says the deadline
    /// passed, or when the region is aborted, rather than when the late
    /// peer reads at last.
    pub(in crate::backend::processes) halt: Option<u64>,
}

/// How long a peer that is being written to may still make no progress
/// after a frame that halts the write has come: one that reads, only more
/// slowly than this rank writes, is not taken for a late one. Well within
/// the time main waits for the reports after it said the deadline passed
/// (`Limits::settle`, 50 ms on processes).
const HALT_GRACE: Duration = Duration::from_millis(20);

/// A write's watch on the frames that halt it.
struct Stall {
    until: Until,
    /// Since when a halting frame has been there and the peer made no
    /// progress.
    since: Option<Instant>,
}

impl Stall {
    fn new(until: Until) -> Stall {
        Stall { until, since: None }
    }

    /// The peer took some of the frame.
    fn progressed(&mut self) {
        self.since = None;
    }

    /// Until when the next wait for the peer lasts: a halting frame that
    /// came before the wait (read by an earlier one, say) starts the grace
    /// too, as the wait may see nothing new.
    fn wait_until(&mut self, ep: &Endpoint) -> Option<Instant> {
        let queued = |region| ep.halted(region).is_some();
        if self.since.is_none() && self.until.halt.is_some_and(queued) {
            self.since = Some(Instant::now());
        }
        let grace = self.since.map(|s| s + HALT_GRACE);
        match (self.until.deadline, grace) {
            (Some(d), Some(g)) => Some(d.min(g)),
            (d, g) => d.or(g),
        }
    }

    /// After a wait: the error that ends the write, if any (`moving`: the
    /// peer has made room meanwhile).
    fn ended(&mut self, ep: &Endpoint, moving: bool) -> Option<WriteError> {
        let now = Instant::now();
        if self.until.deadline.is_some_and(|d| now >= d) {
            return Some(WriteError::TimedOut);
        }
        if moving {
            return None;
        }
        let halted = ep.halted(self.until.halt?)?;
        let since = *self.since.get_or_insert(now);
        (now >= since + HALT_GRACE).then_some(halted)
    }
}

impl Endpoint {
    /// Writes one whole frame to `to` — its header, the type name `name`
    /// and the payload `parts`, with `fds` attached to its first bytes —
    /// reading from every socket while the peer's buffer is full. A peer
    /// that does not read by `until`'s deadline is [`WriteError::TimedOut`];
    /// one that makes no progress once a frame that halts the write has
    /// come, [`WriteError::Halted`].
    pub(in crate::backend::processes) fn write_frame(
        &mut self,
        to: usize,
        header: Header,
        name: &[u8],
        parts: &[&[u8]],
        fds: &[BorrowedFd<'_>],
        until: Until,
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
        let mut stall = Stall::new(until);
        if let Some(rings) = self.rings.clone() {
            if fds.is_empty() {
                return self.write_ring(&rings, to, &all, total, stall);
            }
            // A frame with descriptors goes on the socket, once the peer
            // has read what went before it through the ring (it reads the
            // socket first).
            while !rings.drained(to) {
                if !self.is_writable(to) {
                    return Err(WriteError::Gone);
                }
                let want = Some(Want::Ring { to, empty: true });
                self.wait(stall.wait_until(self), want)
                    .map_err(WriteError::Poll)?;
                if let Some(ended) = stall.ended(self, rings.drained(to)) {
                    return Err(ended);
                }
            }
        }
        let counted = self.rings.is_some();
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
                    stall.progressed();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pump(stall.wait_until(self), Some(to))
                        .map_err(WriteError::Poll)?;
                    if let Some(ended) = stall.ended(self, false) {
                        self.cut(to, sent);
                        return Err(ended);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // What the peer sent before it left (its Done report with
                    // the real cause, say) comes first.
                    self.read_peer(to);
                    self.drain_ring(to);
                    let lost = Closed::Lost {
                        why: Lost::Failed(e),
                        cut: None,
                    };
                    self.mark_closed(to, lost);
                    return Err(WriteError::Gone);
                }
            }
        }
        if let (true, Some(rings)) = (counted, &self.rings) {
            rings.sent_on_socket(to);
        }
        Ok(())
    }

    /// Writes the bytes of a frame (`all`, `total` of them) into the ring
    /// to `to`, reading from every socket and ring while it is full.
    fn write_ring(
        &mut self,
        rings: &Rings,
        to: usize,
        all: &[&[u8]],
        total: usize,
        mut stall: Stall,
    ) -> Result<(), WriteError> {
        let mut sent = 0;
        loop {
            if !self.is_writable(to) {
                return Err(WriteError::Gone);
            }
            let wrote = rings.write(to, all, sent);
            sent += wrote;
            if sent == total {
                return Ok(());
            }
            if wrote > 0 {
                stall.progressed();
            }
            let want = Some(Want::Ring { to, empty: false });
            self.wait(stall.wait_until(self), want)
                .map_err(WriteError::Poll)?;
            if let Some(ended) = stall.ended(self, rings.room(to) > 0) {
                self.cut(to, sent);
                return Err(ended);
            }
        }
    }

    /// A frame that halts the sends of region `region` has come: from
    /// whom, and why.
    fn halted(&self, region: u64) -> Option<WriteError> {
        self.events.iter().find_map(|e| match e {
            Event::Frame(from, f) => f
                .header()
                .halts(region)
                .map(|why| WriteError::Halted(*from, why)),
            Event::Closed(_) => None,
        })
    }

    /// Whether a frame that halts the sends of region `region` has come.
    #[cfg(test)]
    pub(in crate::backend::processes) fn halted_for_test(&self, region: u64) -> Option<Halt> {
        match self.halted(region)? {
            WriteError::Halted(_, why) => Some(why),
            _ => None,
        }
    }

    /// A write to `to` gave up with `sent` bytes of its frame out: half a
    /// frame loses the stream.
    fn cut(&mut self, to: usize, sent: usize) {
        if sent > 0 {
            let lost = Closed::Lost {
                why: Lost::SendTimedOut,
                cut: None,
            };
            self.mark_closed(to, lost);
        }
    }
}
