//! Dynamic scheduling: main cuts its data into chunks and hands each to
//! the next rank that is free; results come back with their chunk's index
//! and are put in input order. (A pool-style map whose ranks share main's
//! memory takes the same chunks without a scheduler: `shared.rs`.)
//!
//! Main's calling thread runs the scheduler: it sends every worker its
//! first chunk, starts main's own share, tops every worker up (to two
//! chunks when the transport buffers or posts sends and much is left, so
//! that a worker never waits for main between chunks), then waits for a
//! result from any worker ([`Parallelizer::recv_any_msg`]) and answers it
//! with the worker's next chunk, or with the empty chunk that ends the
//! worker's part. Main's own share is computed meanwhile on a second
//! thread, which takes chunks from the same source. Chunks and results
//! are posted ([`Parallelizer::post_msg`]): on MPI, whose sends of large
//! messages wait for their receiver, main does not wait for a computing
//! worker to take its next chunk, nor a worker for main's scheduler to take
//! its result. Every message carries the map's tag (its operation and call
//! number), like any collective's.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::msg::Data;
use crate::op::{Op, Tag};
use crate::parallelizer::{AnySource, Parallelizer};
use crate::runtime::{alongside, current_rank, set_current};

use super::super::{Contract, Pairing};
use super::call::{MapCall, Parts, apply, main_panicked};
use super::progress::Tracker;
use super::wire::{from_msg, to_msg};

/// How main cuts its data into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `chunksize` items each.
    Fixed(usize),
    /// The items left over `DIVISOR × ranks`, at least `min` and at least
    /// [`FLOOR`] of the whole.
    Guided { ranks: usize, min: usize },
}

impl Rule {
    /// The size of the next chunk of a map of `total` items with `left`
    /// (at least 1) not handed out yet.
    fn size(self, total: usize, left: usize) -> usize {
        let size = match self {
            Rule::Fixed(n) => n,
            Rule::Guided { ranks, min } => {
                let ranks = ranks.max(1);
                let floor = total.div_ceil(FLOOR * ranks);
                left.div_ceil(DIVISOR * ranks).max(min).max(floor)
            }
        };
        size.clamp(1, left)
    }

    /// The sizes of every chunk of a map of `total` items, in order (the
    /// same chunks as handed out one by one).
    pub(super) fn sizes(self, total: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut left = total;
        while left > 0 {
            let size = self.size(total, left);
            sizes.push(size);
            left -= size;
        }
        sizes
    }
}

/// Guided chunks hold the items left divided by this many times the ranks:
/// small enough that a chunk holding the few most expensive items cannot
/// leave the others idle for long, large enough to keep the messages few.
const DIVISOR: usize = 3;
/// Guided chunks never hold fewer than the items over this many times the
/// ranks: a map of a million cheap items does not end in thousands of
/// messages of a few items each.
const FLOOR: usize = 256;
/// Main queues a worker's next chunk before the current one is done while
/// more than this share (1/N) of the items is left, so that no worker waits
/// for main between chunks; towards the end, one chunk at a time, so that
/// no chunk waits behind another while a rank is free.
const AHEAD_WHILE: usize = 10;

/// Main's data, cut into chunks on demand.
struct Chunker<T> {
    items: std::vec::IntoIter<T>,
    total: usize,
    next: usize,
    rule: Rule,
    closed: bool,
}

impl<T> Chunker<T> {
    fn new(data: Vec<T>, rule: Rule) -> Chunker<T> {
        Chunker {
            total: data.len(),
            items: data.into_iter(),
            next: 0,
            rule,
            closed: false,
        }
    }

    /// The items not handed out yet (none once closed).
    fn left(&self) -> usize {
        if self.closed { 0 } else { self.items.len() }
    }

    /// The next chunk and its index, in input order.
    fn take(&mut self) -> Option<(usize, Vec<T>)> {
        let left = self.left();
        if left == 0 {
            return None;
        }
        let size = self.rule.size(self.total, left);
        let chunk: Vec<T> = self.items.by_ref().take(size).collect();
        self.next += 1;
        Some((self.next - 1, chunk))
    }

    /// Hands out nothing more (main's own part failed).
    fn close(&mut self) {
        self.closed = true;
    }
}

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
    let mut source = Chunker::new(data, rule);
    let mut parts = Vec::new();
    while let Some((_, chunk)) = source.take() {
        let items = chunk.len();
        parts.push((0, apply(par, call, chunk, extra)?));
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
        // main takes this result.
        par.post_msg(to_msg(out), 0, tag)?;
    }
}

/// How main's own part ended.
enum Local<R> {
    Done(Vec<(usize, Vec<R>)>),
    Failed(Error),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Main's part: schedule the chunks and compute its own share.
pub(super) fn main<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Vec<T>,
    extra: &E,
    rule: Rule,
    tracker: &Tracker,
    pool: bool,
) -> Result<Parts<R>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let tag = tag(par, call.op)?;
    let source = Mutex::new(Chunker::new(data, rule));
    let mut sched = Scheduler {
        par,
        tag,
        source: &source,
        total: lock(&source).total,
        ahead: matches!(par.any_source(), AnySource::Buffered | AnySource::Posted),
        queued: (0..par.nprocs()).map(|_| VecDeque::new()).collect(),
        stopped: vec![false; par.nprocs()],
        parts: Vec::new(),
    };
    // One chunk per worker goes out before main starts on its own share;
    // a second one (`refill`) only once main computes: a large chunk's send
    // lasts until the worker takes it, after computing its first, and main
    // sat idle that long (fine map, processes:2: 11.4-12.5 ms against
    // 12.5-14.0 ms, four runs each; processes:4 9.7-10.5 against
    // 12.3-13.3 ms). Main's first chunk is taken before the refill: its
    // thread takes 0.2-4 ms to start here, and the refill handed the workers
    // what main was to compute (a map of two chunks ran both on the worker,
    // one after the other, while main's thread found nothing left:
    // processes:2 15.6-16.1 ms against 9.1-9.3 ms now, threads:2 9.0-9.3
    // against 5.0-5.2).
    let started = (1..par.nprocs()).try_for_each(|w| sched.fill(w, 1));
    let first = match started {
        Ok(()) => lock(&source).take(),
        Err(_) => None,
    };
    let (scheduled, local) = std::thread::scope(|s| {
        let own = started.is_ok().then(|| {
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
                own_part(par, call, source, first, &extra, tracker)
            })
        });
        let scheduled = started
            .and_then(|()| (1..par.nprocs()).try_for_each(|w| sched.refill(w)))
            .and_then(|()| sched.run(tracker))
            .and_then(|()| par.flush_posted());
        if scheduled.is_err() {
            lock(&source).close();
        }
        let local = match own.map(|h| h.join()) {
            Some(Ok(local)) => local,
            Some(Err(panic)) => Local::Panicked(panic),
            None => Local::Done(Vec::new()),
        };
        (scheduled, local)
    });
    scheduled?;
    let mut parts = sched.parts;
    match local {
        Local::Done(own) => {
            for (index, out) in own {
                put(&mut parts, index, 0, out);
            }
        }
        Local::Failed(e) => return Err(e),
        Local::Panicked(p) => return Err(main_panicked(par, p, pool)),
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.ok_or_else(|| {
                Error::Protocol(format!("chunk {i} of `{}` came back from no rank", call.op))
            })
        })
        .collect()
}

/// Main's share, on its own thread: `first`, then chunks from the same
/// source as the workers', until none is left.
fn own_part<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    source: &Mutex<Chunker<T>>,
    first: Option<(usize, Vec<T>)>,
    extra: &E,
    tracker: &Tracker,
) -> Local<R>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let mut done = Vec::new();
    let mut next = first;
    loop {
        let Some((index, chunk)) = next.take().or_else(|| lock(source).take()) else {
            return Local::Done(done);
        };
        let items = chunk.len();
        match catch_unwind(AssertUnwindSafe(|| apply(par, call, chunk, extra))) {
            Ok(Ok(out)) => {
                done.push((index, out));
                tracker.add(0, items);
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

/// Puts chunk `index`'s results in place.
fn put<R>(parts: &mut Vec<Option<(usize, Vec<R>)>>, index: usize, rank: usize, out: Vec<R>) {
    if parts.len() <= index {
        parts.resize_with(index + 1, || None);
    }
    parts[index] = Some((rank, out));
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
    parts: Vec<Option<(usize, Vec<R>)>>,
}

impl<T: Data, R: Data> Scheduler<'_, T, R> {
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
            self.par.post_msg(to_msg(chunk), w, self.tag)?;
            self.queued[w].push_back((index, items));
        }
        if lock(self.source).left() == 0 {
            self.par.send_msg(to_msg(Vec::<T>::new()), w, self.tag)?;
            self.stopped[w] = true;
        }
        Ok(())
    }

    /// Answers results until every worker has answered every chunk.
    fn run(&mut self, tracker: &Tracker) -> Result<()> {
        loop {
            let waiting: Vec<usize> = (1..self.queued.len())
                .filter(|&w| !self.queued[w].is_empty())
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            let Some((from, msg)) =
                self.par
                    .recv_any_msg(&waiting, self.tag, tracker.next_look())?
            else {
                tracker.look();
                continue;
            };
            let (index, items) = self.queued[from].pop_front().ok_or_else(|| {
                Error::Protocol(format!("rank {from} sent a result it was not asked for"))
            })?;
            put(&mut self.parts, index, from, from_msg::<R>(msg)?);
            tracker.add(from, items);
            self.refill(from)?;
        }
    }
}
