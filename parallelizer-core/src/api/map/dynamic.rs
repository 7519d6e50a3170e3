//! Dynamic scheduling: main cuts its data into chunks and hands each to
//! the next rank that is free; results come back with their chunk's index
//! and are put in input order. (A pool-style map whose ranks share main's
//! memory takes the same chunks without a scheduler: `shared.rs`.)
//!
//! Main's calling thread runs the scheduler: it sends every worker its
//! first chunk, takes its own, tops every worker up (to two chunks when
//! the transport buffers or posts sends and much is left, so that a worker
//! never waits for main between chunks), and answers each result from a
//! worker ([`Parallelizer::recv_any_msg`]) with the worker's next chunk,
//! or with the empty chunk that ends the worker's part.
//!
//! Results come back in any order: an item-wise map's plain numbers go
//! straight into their place in main's result, each worker's next slot
//! posted for them (`in_place`); anything else is put in order as it
//! comes (`assembly`).
//!
//! Main computes its own share on the same thread while the items are
//! cheap (an item-wise map): in pieces of about [`PIECE`], looking for the
//! workers' results between two pieces without waiting. Once a piece
//! takes longer than [`SLOW_PIECE`] (expensive items, or items that
//! became so: an answer must not wait for main's items), and for a
//! chunk-wise `f`, main's share goes on on a second thread, which takes
//! chunks from the same source, while the calling thread waits for
//! results. A thread of its own
//! from the start cost the fine map (1e6 × ~10 ns) on `processes:2` its
//! speed-up: the thread took 0.2–4 ms to start, and three threads on two
//! cores (main's two and the worker) left the one that answers the worker
//! waiting for a core for up to 2.6 ms at a time. Chunks and results
//! are posted ([`Parallelizer::post_msg`]): on MPI, whose sends of large
//! messages wait for their receiver, main does not wait for a computing
//! worker to take its next chunk, nor a worker for main's scheduler to take
//! its result. Every message carries the map's tag (its operation and call
//! number), like any collective's. On processes a worker lends main its
//! results of plain data from 4 MiB on (`wire::send_results`): main copies
//! them out of the worker's memory, straight behind the results before
//! them when their turn has come, instead of reading them out of a ring
//! into a message and copying that again (the pool-style coarse map,
//! 160 MB of results per worker: 758-931 ms against 788-892 ms in five
//! alternated pairs, medians 795 against 832 ms).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::msg::Data;
use crate::op::{Op, Tag};
use crate::parallelizer::{AnySource, Parallelizer};
use crate::runtime::{alongside, current_rank, set_current};

use super::super::{Contract, Pairing};
use super::assembly::Assembly;
use super::call::{MapCall, Parts, apply, main_panicked};
use super::in_place::InPlace;
use super::progress::Tracker;
use super::source::{Chunk, Chunker, Rule};
use super::wire::{from_msg, send_results, take_results, to_msg};

/// Main queues a worker's next chunk before the current one is done while
/// more than this share (1/N) of the items is left, so that no worker waits
/// for main between chunks; towards the end, one chunk at a time, so that
/// no chunk waits behind another while a rank is free.
const AHEAD_WHILE: usize = 10;

/// Main computes its share in pieces of about this long between two looks
/// at the workers' results (while the items are cheap): a worker's result
/// waits at most about this long for its answer.
const PIECE: Duration = Duration::from_micros(100);
/// A piece that takes longer than this (20 times [`PIECE`]: one item
/// alone, or items that turned expensive) moves main's share to a thread
/// of its own: the workers' results must not wait for main's items.
const SLOW_PIECE: Duration = Duration::from_millis(2);
/// The most items of a piece (a piece of cheap items grows towards
/// [`PIECE`]), which bounds the wait of items that turn expensive in the
/// middle of a chunk to one piece of them.
const MAX_PIECE: usize = 1 << 12;

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The map's tag, taken by every rank at the same point of the map.
fn tag(par: &dyn Parallelizer, op: Op) -> Result<Tag> {
    match par.prologue(op, Contract::Skip)? {
        Pairing::Ranks(tag) => Ok(tag),
        Pairing::Alone => Err(Error::ContractViolation(format!(
            "`{op}`: a dynamically scheduled map with one rank has no messages"
        ))),
    }
}

/// The map on a single rank: the chunks one after the other (`None`: all
/// items as one chunk).
pub(super) fn alone<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Vec<T>,
    extra: &E,
    rule: Option<Rule>,
    tracker: &Tracker,
) -> Result<Parts<R>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let Some(rule) = rule else {
        let items = data.len();
        let out = apply(par, call, data, extra)?;
        tracker.add(0, items);
        return Ok(vec![(0, out)]);
    };
    // Chunks only show the progress here: as if there were a few ranks.
    let rule = match rule {
        Rule::Guided { ranks, min } => Rule::Guided {
            ranks: ranks.max(4),
            min,
        },
        fixed => fixed,
    };
    let mut source = Chunker::new(data, rule, false);
    let mut parts = Vec::new();
    while let Some((_, chunk)) = source.take() {
        let items = chunk.len();
        parts.push((0, apply(par, call, chunk.into_vec()?, extra)?));
        tracker.add(0, items);
    }
    Ok(parts)
}

/// A worker's part: compute each chunk main sends and send back its
/// results, until the empty chunk.
pub(super) fn worker<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    extra: &E,
) -> Result<()>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let tag = tag(par, call.op)?;
    loop {
        let chunk: Vec<T> = from_msg(par.recv_msg(0, tag)?)?;
        if chunk.is_empty() {
            return par.flush_posted();
        }
        let out = apply(par, call, chunk, extra)?;
        // Main may have queued the next chunk: the rank starts on it while
        // main takes this result (a lent one: once main has copied it).
        send_results(par, out, tag)?;
    }
}

/// How main's own part ended.
enum Local<R> {
    /// Each chunk's index and results, in pieces.
    Done(Vec<(usize, Vec<Vec<R>>)>),
    Failed(Error),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// A chunk of main's share: its index, the results of the items computed
/// so far, and the items left. The results stay in the pieces they were
/// computed in until the chunk's turn comes to be put in place: copied once,
/// into the map's result, rather than into a vector of the chunk first.
struct Begun<T, R> {
    index: usize,
    out: Vec<Vec<R>>,
    left: Chunk<T>,
}

impl<T, R> Begun<T, R> {
    /// A chunk taken from the source, none of it computed.
    fn new((index, left): (usize, Chunk<T>)) -> Begun<T, R> {
        Begun {
            index,
            out: Vec::new(),
            left,
        }
    }
}

/// How main runs a dynamic map.
pub(super) struct Setup {
    /// How main cuts its data into chunks.
    pub(super) rule: Rule,
    /// A pool-style map: a panic of main's `f` is the map's error.
    pub(super) pool: bool,
    /// The results are wanted per rank.
    pub(super) per_rank: bool,
}

/// Main's part: schedule the chunks and compute its own share.
pub(super) fn main<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Vec<T>,
    extra: &E,
    setup: Setup,
    tracker: &Tracker,
) -> Result<Parts<R>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let tag = tag(par, call.op)?;
    let items = data.len();
    // Primitive numbers stay in main's vector where a message is copied
    // into the transport's buffer as it is sent (processes' rings): the
    // fine map on `processes:2` took 4.7-7.3 ms against 6.4-6.8 ms with a
    // vector per chunk, in alternated runs. Not on MPI, whose large sends
    // are read from the sender's memory by the receiver: 7.6-8.2 ms
    // against 6.8-6.9 ms from vectors per chunk.
    let share = par.any_source() == AnySource::Buffered;
    let source = Mutex::new(Chunker::new(data, setup.rule, share));
    let mut sched = Scheduler {
        par,
        tag,
        source: &source,
        total: items,
        ahead: matches!(par.any_source(), AnySource::Buffered | AnySource::Posted),
        queued: (0..par.nprocs()).map(|_| VecDeque::new()).collect(),
        stopped: vec![false; par.nprocs()],
        parts: Assembly::new(call.op, items, setup.per_rank),
        // Item-wise results of plain numbers, where the transport receives
        // across processes (processes, MPI): in place (over the items
        // where they are shared and fit).
        place: (!setup.per_rank && call.elementwise())
            .then(|| InPlace::new(par, call.op, tag, items, lock(&source).shared()))
            .flatten(),
    };
    // One chunk per worker goes out before main starts on its own share;
    // a second one (`refill`) only once main has taken its first (and
    // started the thread that computes a chunk-wise fn's): a large
    // chunk's send lasts until the worker takes it, after computing its
    // first, and main sat idle that long (fine map, processes:2: 11.4-12.5
    // ms against 12.5-14.0 ms, four runs each; processes:4 9.7-10.5
    // against 12.3-13.3 ms); and the refill, made first, handed the
    // workers what main was to compute (a map of two chunks ran both on
    // the worker, one after the other: processes:2 15.6-16.1 ms against
    // 9.1-9.3 ms).
    let started = (1..par.nprocs()).try_for_each(|w| sched.fill(w, 1));
    let first = match started {
        Ok(()) => lock(&source).take(),
        Err(_) => None,
    };
    // Main's share on this thread while its items are cheap; what is
    // left of it (a chunk begun, then the source) on a thread of its own.
    let inline = call.elementwise();
    let mut scheduled = match started {
        Ok(()) if inline => sched.refill_all(),
        other => other,
    };
    let mut share = Share {
        begun: first.map(Begun::new),
        ended: None,
    };
    if scheduled.is_ok() && inline {
        if let Err(e) = share.inline(par, call, &source, extra, &mut sched, tracker) {
            lock(&source).close();
            scheduled = Err(e);
        }
    }
    let Share {
        begun,
        ended: local,
    } = share;
    let threaded = local.is_none() && scheduled.is_ok() && (begun.is_some() || !inline);
    let (scheduled, local) = std::thread::scope(|s| {
        let handle = threaded.then(|| {
            let extra = extra.clone();
            let current = current_rank();
            let source = &source;
            // Counted from before the thread starts, which takes a while
            // when every core is busy: the scheduler's waits meanwhile
            // leave it the core rather than spin.
            let computing = alongside();
            s.spawn(move || {
                let _current = current.map(set_current);
                let _computing = computing;
                own_part(par, call, source, begun, &extra, tracker)
            })
        });
        let scheduled = scheduled
            .and_then(|()| {
                // The refill that waited for main's thread to start.
                if inline {
                    return Ok(());
                }
                sched.refill_all()
            })
            .and_then(|()| sched.run(tracker))
            .and_then(|()| par.flush_posted());
        if scheduled.is_err() {
            lock(&source).close();
        }
        let local = match handle.map(|h| h.join()) {
            Some(Ok(local)) => local,
            Some(Err(panic)) => Local::Panicked(panic),
            None => local.unwrap_or(Local::Done(Vec::new())),
        };
        (scheduled, local)
    });
    scheduled?;
    match local {
        Local::Done(threaded) => {
            for (index, out) in threaded {
                sched.put(index, 0, out)?;
            }
        }
        Local::Failed(e) => return Err(e),
        Local::Panicked(p) => return Err(main_panicked(par, p, setup.pool)),
    }
    let chunks = {
        let mut source = lock(&source);
        source.release();
        source.chunks()
    };
    sched.finish(chunks)
}

/// Main's share as computed on the scheduling thread (each chunk done
/// goes to the scheduler's results).
struct Share<T, R> {
    /// The chunk to go on with (on a thread of its own, once a piece
    /// turned out slow).
    begun: Option<Begun<T, R>>,
    /// `f` failed or panicked.
    ended: Option<Local<R>>,
}

impl<T: Data, R: Data> Share<T, R> {
    /// Computes chunk after chunk (item-wise), the one begun first, on the
    /// scheduling thread, until none is left, a piece is slow, or `f`
    /// fails (the source then hands out nothing more); the error is the
    /// scheduler's.
    fn inline<E: Data + Clone>(
        &mut self,
        par: &dyn Parallelizer,
        call: &MapCall<T, E, R>,
        source: &Mutex<Chunker<T>>,
        extra: &E,
        sched: &mut Scheduler<'_, T, R>,
        tracker: &Tracker,
    ) -> Result<()> {
        let mut pace = Pace::default();
        while let Some(chunk) = self
            .begun
            .take()
            .or_else(|| lock(source).take().map(Begun::new))
        {
            match inline_chunk(par, call, chunk, extra, sched, &mut pace, tracker)? {
                Inline::Done(index, out) => sched.put(index, 0, out)?,
                Inline::Slow(rest) => {
                    self.begun = Some(rest);
                    return Ok(());
                }
                Inline::Ended(end) => {
                    lock(source).close();
                    self.ended = Some(end);
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// How many items main computes in its next piece: doubled while a piece
/// takes under half of [`PIECE`], halved while it takes over twice.
struct Pace {
    items: usize,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { items: 1 }
    }
}

impl Pace {
    fn took(&mut self, took: Duration) {
        if took < PIECE / 2 {
            self.items = (self.items * 2).min(MAX_PIECE);
        } else if took > PIECE * 2 {
            self.items = (self.items / 2).max(1);
        }
    }
}

/// How a chunk main computed on the scheduling thread ended.
enum Inline<T, R> {
    /// Every item: the chunk's index and results, in pieces.
    Done(usize, Vec<Vec<R>>),
    /// A piece took longer than [`SLOW_PIECE`]: the chunk as far as it got.
    Slow(Begun<T, R>),
    /// `f` failed or panicked.
    Ended(Local<R>),
}

/// A chunk of main's share (item-wise) on the scheduling thread, in
/// pieces, the workers' results answered between two pieces; the outer
/// error is the scheduler's.
fn inline_chunk<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    Begun {
        index,
        mut out,
        mut left,
    }: Begun<T, R>,
    extra: &E,
    sched: &mut Scheduler<'_, T, R>,
    pace: &mut Pace,
    tracker: &Tracker,
) -> Result<Inline<T, R>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    while left.len() > 0 {
        let piece = left.take_front(pace.items)?;
        let start = Instant::now();
        let results = match catch_unwind(AssertUnwindSafe(|| apply(par, call, piece, extra))) {
            Ok(Ok(results)) => results,
            Ok(Err(e)) => return Ok(Inline::Ended(Local::Failed(e))),
            Err(panic) => return Ok(Inline::Ended(Local::Panicked(panic))),
        };
        let took = start.elapsed();
        out.push(results);
        sched.serve(tracker)?;
        if took > SLOW_PIECE {
            return Ok(Inline::Slow(Begun { index, out, left }));
        }
        pace.took(took);
    }
    // Item-wise: as many results as items.
    tracker.add(0, out.iter().map(Vec::len).sum());
    Ok(Inline::Done(index, out))
}

/// Main's share on a thread of its own: the chunk it had `begun` (if
/// any), then chunks from the same source as the workers', until none is
/// left.
fn own_part<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    source: &Mutex<Chunker<T>>,
    begun: Option<Begun<T, R>>,
    extra: &E,
    tracker: &Tracker,
) -> Local<R>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let mut done = Vec::new();
    let mut next = begun;
    loop {
        let Some(Begun {
            index,
            mut out,
            left,
        }) = next.take().or_else(|| lock(source).take().map(Begun::new))
        else {
            return Local::Done(done);
        };
        // A begun chunk is item-wise: as many results so far as items.
        let items = out.iter().map(Vec::len).sum::<usize>() + left.len();
        let left = match left.into_vec() {
            Ok(left) => left,
            Err(e) => {
                lock(source).close();
                return Local::Failed(e);
            }
        };
        match catch_unwind(AssertUnwindSafe(|| apply(par, call, left, extra))) {
            Ok(Ok(rest)) => {
                out.push(rest);
                tracker.add(0, items);
                done.push((index, out));
            }
            // Nothing more is handed out; the workers finish what they have.
            Ok(Err(e)) => {
                lock(source).close();
                return Local::Failed(e);
            }
            Err(panic) => {
                lock(source).close();
                return Local::Panicked(panic);
            }
        }
    }
}

/// What [`Scheduler::answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    /// A worker's result, with its next chunk or the end.
    One,
    /// No result came in time.
    NotYet,
    /// No worker has a chunk to answer.
    Nobody,
}

/// Where chunk `index` of `source` starts, and its items.
fn bounds<T: Data>(source: &Mutex<Chunker<T>>, index: usize) -> Result<(usize, usize)> {
    lock(source)
        .bounds(index)
        .ok_or_else(|| Error::Protocol(format!("chunk {index} came back but was never handed out")))
}

/// Main's scheduler: what each worker has been sent and not answered yet.
struct Scheduler<'a, T, R> {
    par: &'a dyn Parallelizer,
    tag: Tag,
    source: &'a Mutex<Chunker<T>>,
    total: usize,
    /// Whether a worker's next chunk may be queued before it is free.
    ahead: bool,
    /// Per worker, the chunks it was sent and has not answered: (index, items).
    queued: Vec<VecDeque<(usize, usize)>>,
    /// Per worker, whether it was sent the end of the map.
    stopped: Vec<bool>,
    /// The results so far, in input order.
    parts: Assembly<R>,
    /// Or, where they are written in place, the map's result.
    place: Option<InPlace<'a, R>>,
}

impl<T: Data, R: Data> Scheduler<'_, T, R> {
    /// Chunk `index`'s results, in pieces, computed by `rank`.
    fn put(&mut self, index: usize, rank: usize, out: Vec<Vec<R>>) -> Result<()> {
        match &mut self.place {
            Some(place) => place.put(index, bounds(self.source, index)?, out),
            None => self.parts.put(index, rank, out),
        }
    }

    /// Every chunk's results once the map's `chunks` chunks are in.
    fn finish(self, chunks: usize) -> Result<Parts<R>> {
        match self.place {
            Some(place) => place.finish(chunks),
            None => self.parts.finish(chunks),
        }
    }

    /// Tops every worker up ([`refill`](Self::refill)).
    fn refill_all(&mut self) -> Result<()> {
        (1..self.queued.len()).try_for_each(|w| self.refill(w))
    }

    /// Tops worker `w` up with chunks; once none is left, sends it the end.
    fn refill(&mut self, w: usize) -> Result<()> {
        let left = lock(self.source).left();
        let want = if self.ahead && left * AHEAD_WHILE > self.total {
            2
        } else {
            1
        };
        self.fill(w, want)
    }

    /// Sends worker `w` chunks until it has `want` unanswered; once none
    /// is left, sends it the end.
    fn fill(&mut self, w: usize, want: usize) -> Result<()> {
        if self.stopped[w] {
            return Ok(());
        }
        while self.queued[w].len() < want {
            let Some((index, chunk)) = lock(self.source).take() else {
                break;
            };
            let items = chunk.len();
            self.par.post_msg(chunk.into_msg(), w, self.tag)?;
            self.queued[w].push_back((index, items));
        }
        if let (Some(place), Some(&(index, _))) = (&mut self.place, self.queued[w].front()) {
            if let Some(bounds) = lock(self.source).bounds(index) {
                place.post(w, index, bounds);
            }
        }
        if lock(self.source).left() == 0 {
            self.par.send_msg(to_msg(Vec::<T>::new()), w, self.tag)?;
            self.stopped[w] = true;
        }
        Ok(())
    }

    /// Answers results until every worker has answered every chunk.
    fn run(&mut self, tracker: &Tracker) -> Result<()> {
        while self.answer(tracker, tracker.next_look())? != Answered::Nobody {}
        Ok(())
    }

    /// Answers the results that have come, without waiting for more.
    fn serve(&mut self, tracker: &Tracker) -> Result<()> {
        while self.answer(tracker, Some(Instant::now()))? == Answered::One {}
        Ok(())
    }

    /// Answers the next result, waiting for it until `until`.
    fn answer(&mut self, tracker: &Tracker, until: Option<Instant>) -> Result<Answered> {
        let waiting: Vec<usize> = (1..self.queued.len())
            .filter(|&w| !self.queued[w].is_empty())
            .collect();
        if waiting.is_empty() {
            return Ok(Answered::Nobody);
        }
        let Some((from, msg)) = self.par.recv_any_msg(&waiting, self.tag, until)? else {
            tracker.look();
            return Ok(Answered::NotYet);
        };
        let (index, items) = self.queued[from].pop_front().ok_or_else(|| {
            Error::Protocol(format!("rank {from} sent a result it was not asked for"))
        })?;
        if let Some(place) = &mut self.place {
            place.result(from, index, bounds(self.source, index)?, msg)?;
        } else {
            // Lent results whose turn has come go straight behind the others.
            match take_results::<R>(self.par, msg, from, self.parts.tail(index))? {
                Some(results) => self.parts.put(index, from, vec![results])?,
                None => self.parts.appended(index),
            }
        }
        tracker.add(from, items);
        self.refill(from)?;
        Ok(Answered::One)
    }
}
