//! `LinkRank`: one rank's handle inside a region, over a [`Transport`].

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::{Op, Tag};
use crate::parallelizer::collective::allreduce_exchanging;
use crate::parallelizer::{AnySource, Core, NativePod, Parallelizer, Region, check_rank};
use crate::segment::SharedMemory;
use crate::tree::Combine;

use super::lend::Lent;
use super::mailbox::{Mailboxes, counterpart};
use super::packet::{AbortNote, BlockedNote, DoneNote, Kind, Packet};
use super::remote::{CopyError, Remote};
use super::watch::{Verdict, Watch};
use super::{Event, Limits, Transport};

mod finish;
mod posts;

pub use finish::Finish;

/// One rank's handle inside a region of a backend built on the region
/// protocol: it sends and receives tagged packets over the rank's
/// [`Transport`], releases itself when another rank fails, reports long
/// waits, and ends the region with [`finish_worker`](LinkRank::finish_worker)
/// or, on main, [`finish_main`](LinkRank::finish_main).
///
/// The collectives are the trait's defaults, built from `send_msg` and
/// `recv_msg`.
pub struct LinkRank<T> {
    core: Core,
    id: usize,
    nprocs: usize,
    region: u64,
    limits: Limits,
    transport: T,
    state: Mutex<State>,
}

/// What a rank knows during the region.
struct State {
    /// Data packets not taken yet, by group, kind and sender.
    boxes: Mailboxes,
    /// Data packets received from each rank.
    got: Vec<u64>,
    /// Data packets sent to each rank.
    sent: Vec<u64>,
    /// Why the region was aborted, once it is.
    abort: Option<AbortNote>,
    /// Ranks that can no longer be heard, and why.
    gone: Vec<Option<Error>>,
    /// The first rank whose loss a call of this rank returned (a peer that
    /// merely finished and exited while this rank did other things is not
    /// the cause of this rank's failure).
    hit_gone: Option<usize>,
    /// Waits so far; the number of the current one.
    waits: u64,
    /// Whether the current wait was reported (to main, or in main's watch).
    reported: bool,
    /// Main only: what main knows of every rank.
    watch: Option<Watch>,
    /// Posts made on the transport's board in this region (`posts`).
    posts: u64,
}

impl<T: Transport> LinkRank<T> {
    /// Rank `id` of `nprocs` in region number `region` of the parallelizer
    /// whose state is `parent`, talking over `transport`. Main's handle
    /// starts the region's deadline clock.
    pub fn new(
        parent: &Core,
        id: usize,
        nprocs: usize,
        region: u64,
        limits: Limits,
        transport: T,
    ) -> LinkRank<T> {
        LinkRank {
            core: Core::for_rank(parent),
            id,
            nprocs,
            region,
            limits,
            transport,
            state: Mutex::new(State {
                boxes: Mailboxes::new(nprocs),
                got: vec![0; nprocs],
                sent: vec![0; nprocs],
                abort: None,
                gone: vec![None; nprocs],
                hit_gone: None,
                waits: 0,
                reported: false,
                watch: (id == 0).then(|| Watch::new(nprocs, limits.timeout, limits.settle)),
                posts: 0,
            }),
        }
    }

    /// This rank's transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The region's number.
    pub(super) fn region(&self) -> u64 {
        self.region
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a control packet; a peer that cannot take it is already known
    /// to be gone, or will be, so the error is dropped.
    fn post<N>(&self, to: usize, kind: Kind, note: N)
    where
        N: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        let _ = self
            .transport
            .send(to, Packet::control(kind, self.region, note));
    }

    /// Takes in an event that did not come through the transport (a rank
    /// that could not be started is gone).
    pub fn deliver(&self, event: Event) {
        let mut st = self.lock();
        self.dispatch(&mut st, event);
    }

    /// Waits for the next event until `until` and takes it in.
    fn pump(&self, until: Option<Instant>) -> Result<()> {
        if let Some(event) = self.transport.recv(until)? {
            let mut st = self.lock();
            self.dispatch(&mut st, event);
        }
        Ok(())
    }

    /// [`pump`](Self::pump), returning also once every other rank posted
    /// `stamp` ([`Transport::recv_or_posted`]).
    fn pump_posted(&self, until: Option<Instant>, stamp: u64) -> Result<()> {
        if let Some(event) = self.transport.recv_or_posted(until, stamp)? {
            let mut st = self.lock();
            self.dispatch(&mut st, event);
        }
        Ok(())
    }

    fn dispatch(&self, st: &mut State, event: Event) {
        let (from, packet) = match event {
            Event::Packet { from, packet } => (from, packet),
            Event::Gone { rank, error } => return self.lost(st, rank, error),
        };
        if packet.region() != self.region || from >= self.nprocs {
            return; // left over from another region
        }
        match packet.kind() {
            Kind::Data => {
                st.got[from] += 1;
                st.boxes.push(from, packet);
            }
            Kind::Abort => {
                if let Ok(note) = packet.note::<AbortNote>() {
                    if let (Some(w), Some(cause)) = (st.watch.as_mut(), note.cause.clone()) {
                        w.fail(note.by_rank, cause);
                    }
                    st.abort.get_or_insert(note);
                }
            }
            Kind::Done => {
                let (Some(w), Ok(note)) = (st.watch.as_mut(), packet.note::<DoneNote>()) else {
                    return;
                };
                let released = note.error.as_ref().is_some_and(Error::is_secondary);
                w.done(from, note.sent, released);
                if let Some(error) = note.error.filter(|e| !e.is_secondary()) {
                    // The worker released the others itself; main is released here.
                    w.fail(from, error.clone());
                    st.abort.get_or_insert(AbortNote {
                        by_rank: from,
                        cause: Some(error),
                    });
                }
            }
            Kind::Blocked => {
                if let (Some(w), Ok(n)) = (st.watch.as_mut(), packet.note::<BlockedNote>()) {
                    w.blocked(from, n.on, n.tag, n.got, n.sent, n.epoch);
                }
            }
            Kind::Resumed => {
                if let (Some(w), Ok(epoch)) = (st.watch.as_mut(), packet.note::<u64>()) {
                    w.resumed(from, epoch);
                }
            }
            // For a send blocked in the transport, which watches for it;
            // nothing to do once it comes this far.
            Kind::Expired => {}
        }
    }

    /// Rank `rank` can no longer be heard.
    fn lost(&self, st: &mut State, rank: usize, error: Error) {
        if rank >= self.nprocs || st.gone[rank].is_some() {
            return;
        }
        st.gone[rank] = Some(error.clone());
        match st.watch.as_mut() {
            Some(w) if !w.is_over(rank) => {
                w.gone(rank);
                if w.fail(rank, error.clone()) {
                    self.abort_all(st, rank, error);
                }
            }
            Some(w) => w.gone(rank),
            None if rank == 0 => {
                st.abort.get_or_insert(AbortNote {
                    by_rank: 0,
                    cause: Some(error),
                });
            }
            None => {}
        }
    }

    /// Main: releases every rank still in the region (and main itself).
    fn abort_all(&self, st: &mut State, by_rank: usize, cause: Error) {
        let note = AbortNote {
            by_rank,
            cause: Some(cause),
        };
        for r in self.still_in(st) {
            if r != by_rank {
                self.post(r, Kind::Abort, note.clone());
            }
        }
        st.abort.get_or_insert(note);
    }

    /// Main: the workers still in the region (neither over nor gone).
    fn still_in(&self, st: &State) -> Vec<usize> {
        let over = |r: usize| st.watch.as_ref().is_some_and(|w| w.is_over(r));
        (1..self.nprocs)
            .filter(|&r| !over(r) && st.gone[r].is_none())
            .collect()
    }

    /// Main: records `error` of `rank` as a failure and, if it is the
    /// first, releases every rank.
    fn fail(&self, st: &mut State, rank: usize, error: Error) {
        let first = st
            .watch
            .as_mut()
            .is_some_and(|w| w.fail(rank, error.clone()));
        if first {
            self.abort_all(st, rank, error);
        }
    }

    /// The error a rank's call returns once the region is aborted: the
    /// deadlock or timeout itself on main, which found it; `Aborted`
    /// naming the failed rank otherwise.
    fn released(&self, st: &State, by_rank: usize) -> Error {
        match st.watch.as_ref().and_then(Watch::failed) {
            Some((_, e @ (Error::Deadlock { .. } | Error::Timeout { .. }))) => e.clone(),
            _ => Error::Aborted { by_rank },
        }
    }

    /// Takes `packet` as the message of the call `tag` from `from`, or
    /// names the mismatch.
    fn take(&self, packet: Packet, from: usize, tag: Tag) -> Result<Msg> {
        let sent = packet.tag();
        let matches = if tag.is_p2p() {
            sent.op() == counterpart(tag.op())
        } else {
            sent == tag
        };
        if matches {
            return Ok(packet.into_body());
        }
        Err(Error::ContractViolation(format!(
            "rank {} is in {tag} but rank {from} sent it a message of its {sent}; \
             every rank must make the same collective calls in the same order",
            self.id
        )))
    }

    /// The end of a wait: main's watch, or main itself, hears of it.
    fn end_wait(&self, st: &mut State) {
        if !std::mem::take(&mut st.reported) {
            return;
        }
        let epoch = st.waits;
        match st.watch.as_mut() {
            Some(w) => w.resumed(self.id, epoch),
            None => self.post(0, Kind::Resumed, epoch),
        }
    }

    /// A wait for `from` in `tag` that has lasted long enough to report:
    /// main records it in its watch; a worker tells main.
    fn report_wait(&self, st: &mut State, from: usize, tag: Tag) {
        st.reported = true;
        let (epoch, got, sent) = (st.waits, st.got[from], st.sent.clone());
        match st.watch.as_mut() {
            Some(w) => w.blocked(self.id, from, tag, got, sent, epoch),
            None => self.post(
                0,
                Kind::Blocked,
                BlockedNote {
                    on: from,
                    tag,
                    got,
                    sent,
                    epoch,
                },
            ),
        }
    }

    /// Main, while it waits: the deadline and deadlocks. Returns when to
    /// look again.
    fn watch_while_waiting(&self, st: &mut State, now: Instant) -> Option<Instant> {
        if st.watch.as_mut()?.expiring(now) {
            self.tell_expired(st);
        }
        let w = st.watch.as_mut()?;
        if let Some(late) = w.overdue(Op::Run, now) {
            let rank = match late {
                Error::Timeout { rank, .. } => rank,
                _ => 0,
            };
            self.fail(st, rank, late);
            return None;
        }
        let deadline = w.deadline();
        match w.deadlock(now) {
            Verdict::Clear => deadline,
            Verdict::Recheck(at) => Some(deadline.map_or(at, |d| d.min(at))),
            Verdict::Deadlock(e) => {
                self.fail(st, 0, e);
                None
            }
        }
    }

    /// Main, at the deadline: tells every rank still running that it has
    /// passed ([`Kind::Expired`]), so that a rank blocked sending to a late
    /// peer gives up and says so before main names the late rank. A note
    /// that cannot go out at once (main's sends give up at the deadline)
    /// found a rank that does not read what main sent it: that rank is
    /// late.
    fn tell_expired(&self, st: &mut State) {
        for r in self.still_in(st) {
            let note = Packet::control(Kind::Expired, self.region, ());
            if let Err(late @ Error::Timeout { .. }) = self.transport.send(r, note) {
                self.fail(st, r, late);
            }
        }
    }

    /// Before a data packet goes to each rank of `to`: the error if the
    /// region is aborted or one of them is gone, else counts the packets.
    pub(super) fn before_send(&self, to: impl Iterator<Item = usize> + Clone) -> Result<()> {
        let mut st = self.lock();
        if let Some(abort) = &st.abort {
            return Err(Error::Aborted {
                by_rank: abort.by_rank,
            });
        }
        if let Some((r, e)) = to.clone().find_map(|r| Some((r, st.gone[r].clone()?))) {
            st.hit_gone.get_or_insert(r);
            return Err(e);
        }
        for r in to {
            st.sent[r] += 1;
        }
        Ok(())
    }

    /// After a send to `to`: if it failed, takes in every event the
    /// transport already has (a peer's loss that the failed write
    /// revealed), so that the cause, not the send's error, is the region's
    /// failure. On main, a send that ran into the deadline is that cause:
    /// its receiver was late (a transport that gave up mid-message has lost
    /// the stream to it too, which must not read as a death). A receiver
    /// found gone makes a failure of this rank's task secondary, as in a
    /// receive.
    pub(super) fn after_send(&self, to: &[usize], sent: Result<()>) -> Result<()> {
        let Err(error) = &sent else { return sent };
        if let Error::Timeout { rank, .. } = error {
            let mut st = self.lock();
            if st.watch.is_some() {
                self.fail(&mut st, *rank, error.clone());
            }
        }
        let now = Instant::now();
        while let Ok(Some(event)) = self.transport.recv(Some(now)) {
            let mut st = self.lock();
            self.dispatch(&mut st, event);
        }
        let mut st = self.lock();
        if let Some(&r) = to.iter().find(|&&r| st.gone[r].is_some()) {
            st.hit_gone.get_or_insert(r);
        }
        // A send the region's abort released (a transport's blocked send
        // watches for it): the abort's own error, as a receive's.
        match (&sent, &st.abort) {
            (Err(Error::Aborted { .. }), Some(abort)) => Err(self.released(&st, abort.by_rank)),
            _ => sent,
        }
    }
}

impl<T: Transport> Parallelizer for LinkRank<T> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn id(&self) -> usize {
        self.id
    }

    fn nprocs(&self) -> usize {
        self.nprocs
    }

    fn in_region(&self) -> bool {
        true
    }

    fn shared_memory(&self) -> Result<&dyn SharedMemory> {
        self.transport
            .shared_memory()
            .ok_or_else(|| Error::no_shared_memory(self.mode()))
    }

    fn send_msg(&self, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        self.send_msg_in(0, msg, to, tag)
    }

    fn recv_msg(&self, from: usize, tag: Tag) -> Result<Msg> {
        self.recv_msg_in(0, from, tag)
    }

    fn send_msg_in(&self, group: u64, msg: Msg, to: usize, tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        self.before_send([to].into_iter())?;
        let packet = Packet::data(self.region, tag, msg).in_group(group);
        let sent = self.transport.send(to, packet);
        self.after_send(&[to], sent)
    }

    /// Every rank posts once on the transport's board and reads the
    /// others' posts (`posts`); the dissemination barrier without one.
    fn barrier(&self, tag: Tag) -> Result<()> {
        let unit = crate::plain::PodType::of::<()>();
        match self.exchange_posts(unit, &[], tag, &mut |_, _| Ok(())) {
            Some(done) => done,
            None => crate::parallelizer::collective::barrier(self, tag),
        }
    }

    fn exchange_small(
        &self,
        ty: crate::plain::PodType,
        bytes: &[u8],
        tag: Tag,
        each: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
    ) -> Option<Result<()>> {
        self.exchange_posts(ty, bytes, tag, each)
    }

    /// Recursive doubling whose pairs lend large plain values across
    /// processes rather than send copies (`exchange`).
    fn allreduce_msg(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Msg> {
        let exchange = |m: &Msg, to: usize| self.exchange_msg(m, to, tag);
        allreduce_exchanging(self, msg, combine, tag, &exchange)
    }

    fn broadcast_msg(&self, msg: Option<Msg>, tag: Tag) -> Result<Msg> {
        if self.id != 0 {
            return self.recv_msg(0, tag);
        }
        let msg = msg.ok_or_else(|| {
            Error::ContractViolation(format!(
                "main must pass Some(data) to {}; workers pass None",
                tag.op()
            ))
        })?;
        let to: Vec<usize> = (1..self.nprocs).collect();
        self.before_send(to.iter().copied())?;
        let packet = Packet::data(self.region, tag, msg);
        self.after_send(&to, self.transport.send_all(&to, &packet))?;
        Ok(packet.into_body())
    }

    fn recv_msg_in(&self, group: u64, from: usize, tag: Tag) -> Result<Msg> {
        let msg = self.recv_raw_in(group, from, tag)?;
        let msg = match Lent::from_msg(msg) {
            Err(msg) => msg,
            // Plain data lent by a `*_into` call: copied out, acknowledged.
            Ok(lent) => {
                let owned = lent.to_msg();
                let acked = self.send_msg_in(group, Msg::new(()), from, tag);
                return owned.and_then(|m| acked.map(|()| m));
            }
        };
        match Remote::from_msg(msg) {
            Err(msg) => Ok(msg),
            // Lent by another process: copied out of it, acknowledged; if
            // the system forbids the copy, the sender sends the bytes.
            Ok(note) => match note?.to_msg() {
                Err(CopyError::Refused(refused)) => {
                    self.send_msg_in(group, refused.into_msg(), from, tag)?;
                    self.recv_msg_in(group, from, tag)
                }
                owned => {
                    let acked = self.send_msg_in(group, Msg::new(()), from, tag);
                    owned.map_err(Error::from).and_then(|m| acked.map(|()| m))
                }
            },
        }
    }

    fn recv_any_msg(
        &self,
        from: &[usize],
        tag: Tag,
        until: Option<Instant>,
    ) -> Result<Option<(usize, Msg)>> {
        for &r in from {
            check_rank(self, r)?;
        }
        // A time already past (a look that does not wait) reads once.
        let mut looked = false;
        loop {
            let wait_until = {
                let mut st = self.lock();
                if let Some(abort) = &st.abort {
                    return Err(self.released(&st, abort.by_rank));
                }
                for &r in from {
                    if let Some(packet) = st.boxes.pop(0, r, tag) {
                        return self.take(packet, r, tag).map(|m| Some((r, m)));
                    }
                }
                if let Some((r, e)) = from.iter().find_map(|&r| Some((r, st.gone[r].clone()?))) {
                    st.hit_gone.get_or_insert(r);
                    return Err(e);
                }
                // Main: a rank that finished its task without sending (its
                // packets come before its report) will never send; one that
                // another rank's failure released is waited out until that
                // failure's report comes.
                let finished = st
                    .watch
                    .as_ref()
                    .and_then(|w| from.iter().copied().find(|&r| w.ended_for_good(r)));
                if let Some(on) = finished {
                    let waits = vec![crate::error::Wait {
                        rank: self.id,
                        on,
                        op: tag.op(),
                        finished: true,
                    }];
                    self.fail(&mut st, self.id, Error::Deadlock { waits });
                    continue;
                }
                let now = Instant::now();
                if until.is_some_and(|u| now >= u) && std::mem::replace(&mut looked, true) {
                    return Ok(None);
                }
                // Main watches the deadline and the other ranks' waits
                // meanwhile; its own wait here is on whichever rank answers
                // first, so it reports none.
                let watch_next = if st.watch.is_some() {
                    let next = self.watch_while_waiting(&mut st, now);
                    if st.abort.is_some() {
                        continue;
                    }
                    next
                } else {
                    None
                };
                [until, watch_next].into_iter().flatten().min()
            };
            self.pump(wait_until)?;
        }
    }

    fn any_source(&self) -> AnySource {
        AnySource::Buffered
    }

    fn native_pod(&self) -> Option<&dyn NativePod> {
        Some(self)
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        // A `run` inside a region: every rank runs it on its own handle.
        region.run_here(self)
    }
}

impl<T: Transport> LinkRank<T> {
    /// Acknowledges to `to` that this rank, in its call `tag`, is done with
    /// what `to` lent it.
    pub(super) fn ack(&self, to: usize, tag: Tag) -> Result<()> {
        self.send_msg(Msg::new(()), to, tag)
    }

    /// The next message of the call `tag` from `from`, as it came (a lent
    /// buffer's note is not resolved). Collective messages are taken in
    /// order; point-to-point ones by kind: a `receive` (tag `Receive`)
    /// takes the next message that a `send` sent, a `send` that lent its
    /// buffer (tag `Send`) the receiver's acknowledgement.
    pub(super) fn recv_raw(&self, from: usize, tag: Tag) -> Result<Msg> {
        self.recv_raw_in(0, from, tag)
    }

    /// [`recv_raw`](Self::recv_raw) in the namespace of group `group`.
    fn recv_raw_in(&self, group: u64, from: usize, tag: Tag) -> Result<Msg> {
        check_rank(self, from)?;
        let take = |st: &mut State| {
            let packet = st.boxes.pop(group, from, tag)?;
            Some(self.take(packet, from, tag))
        };
        self.wait_on(from, tag, None, take)
    }

    /// Waits until `ready` finds what this rank waits for from `from` in
    /// `tag` (or, with `posted`, until every other rank posted that stamp
    /// and `ready` finds it): released if the region is aborted, failed if
    /// `from` is gone, reported when it lasts.
    fn wait_on<R>(
        &self,
        from: usize,
        tag: Tag,
        posted: Option<u64>,
        mut ready: impl FnMut(&mut State) -> Option<Result<R>>,
    ) -> Result<R> {
        let start = Instant::now();
        self.lock().waits += 1;
        loop {
            let until = {
                let mut st = self.lock();
                if let Some(abort) = &st.abort {
                    let by_rank = abort.by_rank;
                    self.end_wait(&mut st);
                    return Err(self.released(&st, by_rank));
                }
                if let Some(got) = ready(&mut st) {
                    self.end_wait(&mut st);
                    return got;
                }
                if let Some(e) = st.gone[from].clone() {
                    self.end_wait(&mut st);
                    st.hit_gone.get_or_insert(from);
                    return Err(e);
                }
                let now = Instant::now();
                if st.watch.is_some() {
                    // Main knows its own wait at once; it costs nothing.
                    if !st.reported {
                        self.report_wait(&mut st, from, tag);
                    }
                    let next = self.watch_while_waiting(&mut st, now);
                    if st.abort.is_some() {
                        continue; // main just released everyone, itself too
                    }
                    next
                } else if st.reported {
                    None
                } else if now >= start + self.limits.patience {
                    self.report_wait(&mut st, from, tag);
                    None
                } else {
                    Some(start + self.limits.patience)
                }
            };
            match posted {
                Some(stamp) => self.pump_posted(until, stamp)?,
                None => self.pump(until)?,
            }
        }
    }
}

impl<T> std::fmt::Debug for LinkRank<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRank")
            .field("id", &self.id)
            .field("nprocs", &self.nprocs)
            .field("region", &self.region)
            .finish()
    }
}
