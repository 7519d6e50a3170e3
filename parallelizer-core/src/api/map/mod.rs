//! Maps: `map`, `map_with`, `map_chunks`, `map_chunks_with`, `starmap`,
//! `starmap_with`, and [`Mapper`], which gives any of them options: how the
//! items are scheduled over the ranks, a progress bar or callback, and
//! results per rank (McUtils `aggregate=False`).
//!
//! Inside a region every rank calls a map (main passes `Some(data)`,
//! workers `None`); on main outside a region a map opens a region itself
//! (pool-style). Modules: `plan` (who does what, the static split), `call`
//! (one call's pieces, applying `f` to a chunk), `dynamic` (chunks handed
//! out as ranks finish them), `source` (main's items cut into those
//! chunks), `assembly` (their results put in order as they come back),
//! `in_place` (or, item-wise results of plain numbers across processes,
//! written straight into main's result),
//! `progress` (the bar and the callback),
//! `wire` (how chunks travel), `joined` (plain results gathered into
//! main's vector).

mod assembly;
mod call;
mod dynamic;
mod in_place;
mod items;
mod joined;
mod plan;
mod progress;
mod shared;
mod source;
mod wire;

use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::msg::Data;
use crate::op::Op;
use crate::parallelizer::Parallelizer;
use crate::task::MapForm;

use crate::parts::Part;
use crate::slots::Filler;
use call::{Each, MapCall, Options};

pub use progress::Progress;

/// A fn that takes its arguments as a tuple, for `starmap`: `Fn(A, B) -> R`
/// is `Apply<(A, B)>`.
pub trait Apply<Args>: Send + Sync {
    /// The fn's return type.
    type Output;
    /// Calls the fn with the tuple's fields as arguments.
    fn apply(&self, args: Args) -> Self::Output;
}

/// A fn that takes a tuple's fields and then an extra argument by
/// reference, for `starmap_with`: `Fn(A, B, &E) -> R` is
/// `ApplyWith<(A, B), E>`.
pub trait ApplyWith<Args, E>: Send + Sync {
    /// The fn's return type.
    type Output;
    /// Calls the fn with the tuple's fields, then `extra`.
    fn apply_with(&self, args: Args, extra: &E) -> Self::Output;
}

macro_rules! impl_apply {
    ($($t:ident),+) => {
        impl<Func, Out, $($t),+> Apply<($($t,)+)> for Func
        where
            Func: Fn($($t),+) -> Out + Send + Sync,
        {
            type Output = Out;
            #[allow(non_snake_case)]
            fn apply(&self, ($($t,)+): ($($t,)+)) -> Out {
                self($($t),+)
            }
        }

        impl<Func, Out, Extra, $($t),+> ApplyWith<($($t,)+), Extra> for Func
        where
            Func: Fn($($t,)+ &Extra) -> Out + Send + Sync,
        {
            type Output = Out;
            #[allow(non_snake_case)]
            fn apply_with(&self, ($($t,)+): ($($t,)+), extra: &Extra) -> Out {
                self($($t,)+ extra)
            }
        }
    };
}
impl_apply!(A);
impl_apply!(A, B);
impl_apply!(A, B, C);
impl_apply!(A, B, C, D);
impl_apply!(A, B, C, D, G);
impl_apply!(A, B, C, D, G, H);

/// How a map hands its items to the ranks.
///
/// Whatever the schedule, results come back in input order. Main decides:
/// inside a region the workers' schedule is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Schedule {
    /// [`Schedule::Guided`] for a pool-style map (called on main outside a
    /// region) and on a single rank; [`Schedule::Static`] inside a region,
    /// where every rank calls the map (McUtils' `map`).
    #[default]
    Auto,
    /// One contiguous chunk per rank, as `scatter` splits (rank `i` gets
    /// chunk `i` of [`chunk_sizes`](crate::chunk_sizes)): scatter, apply,
    /// gather. The cheapest when every item costs the same; `map_chunks`'s
    /// `f` then runs once per rank, as McUtils' `vectorized=True` does.
    Static,
    /// Chunks of `chunksize` items (the last may be shorter), each handed to
    /// the next rank that is free, main included (`multiprocessing`'s
    /// `imap(f, data, chunksize)`). `chunksize` 0 is an error.
    Dynamic {
        /// Items per chunk, at least 1.
        chunksize: usize,
    },
    /// Chunks that shrink as the items run out: each holds the items left
    /// divided by three times the number of ranks (at least one item per
    /// thread of a rank, and at least the items over 256 times the ranks),
    /// handed to the next rank that is free. Large first chunks
    /// keep the messages few; small last ones let every rank finish at
    /// about the same time when items cost different amounts (OpenMP's
    /// `schedule(guided)`).
    Guided,
}

/// The results of a map flat, in input order (McUtils' `aggregate=True`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flat;

/// The results of a map as one list per rank, rank 0 first, each in input
/// order (McUtils' `aggregate=False`). With [`Schedule::Static`] rank `i`'s
/// list holds the results of chunk `i` of the scatter split, as in McUtils;
/// with a dynamic schedule, the results of the items that rank computed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerRank;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Flat {}
    impl Sealed for super::PerRank {}
}

/// How a [`Mapper`] arranges the results: [`Flat`] or [`PerRank`].
pub trait Layout: sealed::Sealed + Send + Sync + 'static {
    /// The results of a map of `R`s.
    type Out<R>;
    /// Arranges the results: every chunk's results with the rank that
    /// computed them, in input order.
    #[doc(hidden)]
    fn arrange<R>(parts: Vec<(usize, Vec<R>)>, nprocs: usize) -> Self::Out<R>;
}

impl Layout for Flat {
    type Out<R> = Vec<R>;
    fn arrange<R>(parts: Vec<(usize, Vec<R>)>, _nprocs: usize) -> Vec<R> {
        crate::split::concat(parts.into_iter().map(|(_, v)| v).collect())
    }
}

impl Layout for PerRank {
    type Out<R> = Vec<Vec<R>>;
    fn arrange<R>(parts: Vec<(usize, Vec<R>)>, nprocs: usize) -> Vec<Vec<R>> {
        let mut lists: Vec<Vec<R>> = (0..nprocs).map(|_| Vec::new()).collect();
        for (rank, part) in parts {
            let list = &mut lists[rank];
            if list.is_empty() {
                *list = part;
            } else {
                list.extend(part);
            }
        }
        lists
    }
}

/// A map with options, from [`Parallelizer::mapper`](trait@Parallelizer):
/// the schedule, the progress bar, a progress callback, results per rank.
/// Its methods are the maps of `dyn Parallelizer` (`map`, `map_with`,
/// `map_chunks`, `map_chunks_with`, `starmap`, `starmap_with`); a
/// configured mapper can run several maps.
///
/// ```
/// use parallelizer_core::{from_config, Schedule};
/// let par = from_config("threads:3").unwrap();
/// // Pool-style, 4 items at a time to whichever rank is free.
/// let squares = par.mapper().chunksize(4).map(|x: u64| x * x, Some((0..10).collect())).unwrap();
/// assert_eq!(squares.unwrap(), (0..10).map(|x| x * x).collect::<Vec<u64>>());
/// // McUtils' aggregate=False: one list per rank, split as scatter splits.
/// let per_rank = par.mapper().schedule(Schedule::Static).per_rank()
///     .map(|x: u64| x * 2, Some((0..10).collect())).unwrap();
/// assert_eq!(per_rank.unwrap(), [vec![0, 2, 4, 6], vec![8, 10, 12], vec![14, 16, 18]]);
/// ```
pub struct Mapper<'a, L = Flat> {
    par: &'a dyn Parallelizer,
    opts: Options,
    layout: PhantomData<L>,
}

impl<L> Clone for Mapper<'_, L> {
    fn clone(&self) -> Self {
        Mapper {
            par: self.par,
            opts: self.opts.clone(),
            layout: PhantomData,
        }
    }
}

impl<L> std::fmt::Debug for Mapper<'_, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("par", &self.par)
            .field("schedule", &self.opts.schedule)
            .field("progress", &self.opts.watch.bar)
            .field("layout", &std::any::type_name::<L>())
            .finish()
    }
}

impl<'a, L: Layout> Mapper<'a, L> {
    /// How the items are handed to the ranks (default [`Schedule::Auto`]).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.opts.schedule = schedule;
        self
    }

    /// Chunks of `chunksize` items handed to whichever rank is free:
    /// [`Schedule::Dynamic`]. A `chunksize` of 0 makes the map fail with
    /// [`Error::Config`](crate::Error::Config).
    pub fn chunksize(self, chunksize: usize) -> Self {
        self.schedule(Schedule::Dynamic { chunksize })
    }

    /// Forces the progress bar on (drawn on stderr, even when it is not a
    /// terminal) or off. By default ([`Config::progress`](crate::Config::progress)
    /// unset) a map draws it when stderr is a terminal and it runs for more
    /// than about a second. The bar advances as chunks complete, on any
    /// rank; it is drawn by main.
    pub fn progress(mut self, on: bool) -> Self {
        self.opts.watch.bar = Some(on);
        self
    }

    /// Calls `report` on main each time a chunk completes, on any rank, with
    /// the items done so far (for a log, a GUI, or a bar of your own).
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// use std::sync::{Arc, Mutex};
    /// let par = from_config("threads:2").unwrap();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// par.mapper().chunksize(5)
    ///     .on_progress(move |p| log.lock().unwrap().push(p.done))
    ///     .map(|x: u32| x + 1, Some((0..20).collect())).unwrap();
    /// let seen = seen.lock().unwrap();
    /// assert_eq!((seen.len(), seen.last()), (4, Some(&20)));
    /// ```
    pub fn on_progress(mut self, report: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.opts.watch.report = Some(Arc::new(report));
        self
    }

    /// Results as one list per rank (McUtils' `aggregate=False`); see
    /// [`PerRank`].
    pub fn per_rank(self) -> Mapper<'a, PerRank> {
        let mut opts = self.opts;
        opts.per_rank = true;
        Mapper {
            par: self.par,
            opts,
            layout: PhantomData,
        }
    }

    /// `f` over main's data; see [`Parallelizer::map`](trait@Parallelizer).
    pub fn map<T, R, F>(&self, f: F, data: Option<Vec<T>>) -> Result<Option<L::Out<R>>>
    where
        T: Data,
        R: Data,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        let (f, g) = shared_fn(f);
        let body = move |chunk: Vec<T>, (): &()| chunk.into_iter().map(&*f).collect();
        let each: Each<T, (), R> =
            Arc::new(move |items: Part<T>, (): &(), out: &mut Filler<'_, R>| {
                items.for_each(|x| out.push(g(x)));
            });
        self.call::<F, T, (), R>(MapForm::Map, Op::Map, body, Some(each), data, Some(()))
    }

    /// `f(item, &extra)`, `extra` broadcast from main (McUtils `extra_args`).
    pub fn map_with<T, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<L::Out<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
        F: Fn(T, &E) -> R + Send + Sync + 'static,
    {
        let (f, g) = shared_fn(f);
        let body = move |chunk: Vec<T>, e: &E| chunk.into_iter().map(|x| f(x, e)).collect();
        let each: Each<T, E, R> =
            Arc::new(move |items: Part<T>, e: &E, out: &mut Filler<'_, R>| {
                items.for_each(|x| out.push(g(x, e)));
            });
        self.call::<F, T, E, R>(MapForm::MapWith, Op::MapWith, body, Some(each), data, extra)
    }

    /// `f` on whole chunks (McUtils `vectorized=True`).
    pub fn map_chunks<T, R, F>(&self, f: F, data: Option<Vec<T>>) -> Result<Option<L::Out<R>>>
    where
        T: Data,
        R: Data,
        F: Fn(Vec<T>) -> Vec<R> + Send + Sync + 'static,
    {
        let body = move |chunk: Vec<T>, (): &()| f(chunk);
        self.call::<F, T, (), R>(
            MapForm::MapChunks,
            Op::MapChunks,
            body,
            None,
            data,
            Some(()),
        )
    }

    /// `f(chunk, &extra)` on whole chunks, `extra` broadcast from main
    /// (McUtils `vectorized=True` with `extra_args`).
    pub fn map_chunks_with<T, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<L::Out<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
        F: Fn(Vec<T>, &E) -> Vec<R> + Send + Sync + 'static,
    {
        let body = move |chunk: Vec<T>, e: &E| f(chunk, e);
        let form = MapForm::MapChunksWith;
        self.call::<F, T, E, R>(form, Op::MapChunks, body, None, data, extra)
    }

    /// `f(a, b, ..)` over tuples `(a, b, ..)`.
    pub fn starmap<Args, R, F>(&self, f: F, data: Option<Vec<Args>>) -> Result<Option<L::Out<R>>>
    where
        Args: Data,
        R: Data,
        F: Apply<Args, Output = R> + 'static,
    {
        let (f, g) = shared_fn(f);
        let body = move |chunk: Vec<Args>, (): &()| chunk.into_iter().map(|a| f.apply(a)).collect();
        let each: Each<Args, (), R> =
            Arc::new(move |items: Part<Args>, (): &(), out: &mut Filler<'_, R>| {
                items.for_each(|a| out.push(g.apply(a)));
            });
        let form = MapForm::Starmap;
        self.call::<F, Args, (), R>(form, Op::Starmap, body, Some(each), data, Some(()))
    }

    /// `f(a, b, .., &extra)` over tuples `(a, b, ..)`, `extra` broadcast
    /// from main (McUtils `starmap` with `extra_args`).
    pub fn starmap_with<Args, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<Args>>,
        extra: Option<E>,
    ) -> Result<Option<L::Out<R>>>
    where
        Args: Data,
        E: Data + Clone,
        R: Data,
        F: ApplyWith<Args, E, Output = R> + 'static,
    {
        let (f, g) = shared_fn(f);
        let body =
            move |chunk: Vec<Args>, e: &E| chunk.into_iter().map(|a| f.apply_with(a, e)).collect();
        let each: Each<Args, E, R> =
            Arc::new(move |items: Part<Args>, e: &E, out: &mut Filler<'_, R>| {
                items.for_each(|a| out.push(g.apply_with(a, e)));
            });
        let form = MapForm::StarmapWith;
        self.call::<F, Args, E, R>(form, Op::Starmap, body, Some(each), data, extra)
    }

    fn call<F, T, E, R>(
        &self,
        form: MapForm,
        op: Op,
        body: impl Fn(Vec<T>, &E) -> Vec<R> + Send + Sync + 'static,
        each: Option<Each<T, E, R>>,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<L::Out<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
    {
        let call = MapCall {
            form,
            op,
            body: Arc::new(body),
            each,
        };
        let nprocs = self.par.nprocs();
        let parts = self
            .par
            .map_call::<F, T, E, R>(call, data, extra, &self.opts)?;
        Ok(parts.map(|p| L::arrange(p, nprocs)))
    }
}

/// `f` twice: once for the chunk-wise body, once for the item-wise one.
fn shared_fn<F>(f: F) -> (Arc<F>, Arc<F>) {
    let f = Arc::new(f);
    (f.clone(), f)
}

impl dyn Parallelizer {
    /// A map with options: the [`Schedule`] (and `chunksize`), the progress
    /// bar, a progress callback, results per rank; see [`Mapper`].
    pub fn mapper(&self) -> Mapper<'_> {
        Mapper {
            par: self,
            opts: Options::default(),
            layout: PhantomData,
        }
    }

    /// `f` over main's data, spread over the ranks; the flat results in input
    /// order on main, `None` on workers.
    ///
    /// Inside a region every rank calls it, and it splits the data as
    /// `scatter` does (McUtils' `map`); on main outside a region it is
    /// pool-style: it opens a region itself and hands out chunks as ranks
    /// finish them ([`Schedule::Auto`]; [`mapper`](trait@Parallelizer) sets
    /// another schedule, a chunk size, the progress bar). Threads need `f:
    /// 'static`; processes and MPI need `f` to be a `#[parallelizer::task]`
    /// fn `fn(item: T) -> R`.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let squares = par.map(|x: u64| x * x, Some((0..10).collect())).unwrap();
    /// assert_eq!(squares.unwrap(), (0..10).map(|x| x * x).collect::<Vec<u64>>());
    /// ```
    pub fn map<T, R, F>(&self, f: F, data: Option<Vec<T>>) -> Result<Option<Vec<R>>>
    where
        T: Data,
        R: Data,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        self.mapper().map(f, data)
    }

    /// `map` with an extra argument that main broadcasts to every rank:
    /// `f(x, &extra)` (McUtils `extra_args`); workers' `extra` is not used.
    /// Pool-style on processes and MPI: a `#[parallelizer::task]` fn
    /// `fn(item: T, extra: &E) -> R`.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let out = par.map_with(|x: i64, k: &i64| x * k, Some((0..5).collect()), Some(10)).unwrap();
    /// assert_eq!(out.unwrap(), [0, 10, 20, 30, 40]);
    /// ```
    pub fn map_with<T, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<Vec<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
        F: Fn(T, &E) -> R + Send + Sync + 'static,
    {
        self.mapper().map_with(f, data, extra)
    }

    /// `map` where `f` takes a whole chunk and returns its results (McUtils
    /// `vectorized=True`); the chunks' results are concatenated in input
    /// order. `f` runs once per rank with the static split (inside a
    /// region), once per chunk with a dynamic schedule. Pool-style on
    /// processes and MPI: a `#[parallelizer::task]` fn
    /// `fn(items: Vec<T>) -> Vec<R>`.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:2").unwrap();
    /// let out = par.map_chunks(|xs: Vec<i32>| xs.iter().map(|x| x + 1000).collect(),
    ///                          Some((0..4).collect())).unwrap();
    /// assert_eq!(out.unwrap(), [1000, 1001, 1002, 1003]);
    /// ```
    pub fn map_chunks<T, R, F>(&self, f: F, data: Option<Vec<T>>) -> Result<Option<Vec<R>>>
    where
        T: Data,
        R: Data,
        F: Fn(Vec<T>) -> Vec<R> + Send + Sync + 'static,
    {
        self.mapper().map_chunks(f, data)
    }

    /// `map_chunks` with an extra argument that main broadcasts:
    /// `f(chunk, &extra)` (McUtils `vectorized=True` with `extra_args`).
    /// Pool-style on processes and MPI: a `#[parallelizer::task]` fn
    /// `fn(items: Vec<T>, extra: &E) -> Vec<R>`.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let out = par.map_chunks_with(|xs: Vec<i32>, k: &i32| xs.iter().map(|x| x + k).collect(),
    ///                               Some((0..10).collect()), Some(1000)).unwrap();
    /// assert_eq!(out.unwrap(), (1000..1010).collect::<Vec<_>>());
    /// ```
    pub fn map_chunks_with<T, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<Vec<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
        F: Fn(Vec<T>, &E) -> Vec<R> + Send + Sync + 'static,
    {
        self.mapper().map_chunks_with(f, data, extra)
    }

    /// `map` over tuples whose fields are `f`'s arguments; flat results in
    /// input order, like `map` (McUtils returned them per rank: use
    /// [`Mapper::per_rank`] for that). Pool-style on processes and MPI: a
    /// `#[parallelizer::task]` fn `fn(a: A, b: B, ..) -> R`.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let out = par.starmap(|a: i32, b: i32| a * b, Some(vec![(1, 2), (3, 4), (5, 6)])).unwrap();
    /// assert_eq!(out.unwrap(), [2, 12, 30]);
    /// ```
    pub fn starmap<Args, R, F>(&self, f: F, data: Option<Vec<Args>>) -> Result<Option<Vec<R>>>
    where
        Args: Data,
        R: Data,
        F: Apply<Args, Output = R> + 'static,
    {
        self.mapper().starmap(f, data)
    }

    /// `starmap` with an extra argument that main broadcasts, passed after
    /// the tuple's fields: `f(a, b, .., &extra)` (McUtils `starmap` with
    /// `extra_args`). Pool-style on processes and MPI: a
    /// `#[parallelizer::task]` fn `fn(a: A, b: B, .., extra: &E) -> R`.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let out = par.starmap_with(|i: i64, sq: i64, c: &i64| (i, sq, *c),
    ///                            Some((0..3).map(|i| (i, i * i)).collect()), Some(-1)).unwrap();
    /// assert_eq!(out.unwrap(), [(0, 0, -1), (1, 1, -1), (2, 4, -1)]);
    /// ```
    pub fn starmap_with<Args, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<Args>>,
        extra: Option<E>,
    ) -> Result<Option<Vec<R>>>
    where
        Args: Data,
        E: Data + Clone,
        R: Data,
        F: ApplyWith<Args, E, Output = R> + 'static,
    {
        self.mapper().starmap_with(f, data, extra)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use indicatif::{ProgressDrawTarget, TermLike};

    use crate::from_config;

    /// A terminal that keeps what is drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn target(&self) -> Arc<dyn Fn() -> ProgressDrawTarget + Send + Sync> {
            let screen = self.clone();
            Arc::new(move || ProgressDrawTarget::term_like(Box::new(screen.clone())))
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            let mut text = self.0.lock().unwrap();
            text.push_str(s);
            text.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.0.lock().unwrap().push('\n');
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn slow(ms: u64) -> impl Fn(u32) -> u32 + Send + Sync + 'static {
        move |x| {
            std::thread::sleep(Duration::from_millis(ms));
            x + 1
        }
    }

    #[test]
    fn a_forced_bar_is_fed_by_every_rank_and_ends_full() {
        let par = from_config("threads:3").unwrap();
        let screen = Screen::default();
        let mut m = par.mapper().chunksize(2).progress(true);
        m.opts.watch.draw = Some(screen.target());
        let out = m.map(slow(50), Some((0..30).collect())).unwrap().unwrap();
        assert_eq!(out, (1..=30).collect::<Vec<u32>>());
        let text = screen.text();
        assert!(
            text.contains("map") && text.contains("30/30 items"),
            "{text}"
        );
        // Redrawn while the chunks complete (every 250 ms), not only at the end.
        assert!(text.matches("/30 items").count() > 2, "{text}");
    }

    #[test]
    fn the_automatic_bar_appears_only_on_a_long_map() {
        let par = from_config("serial").unwrap();
        let screen = Screen::default();
        let mut m = par.mapper().chunksize(1);
        m.opts.watch.draw = Some(screen.target());
        m.map(slow(1), Some((0..10).collect())).unwrap();
        assert_eq!(screen.text(), "", "a 10 ms map drew a bar");
        // 12 items of 100 ms: after 200 ms it is expected to take 1.2 s.
        m.map(slow(100), Some((0..12).collect())).unwrap();
        let text = screen.text();
        assert!(text.contains("12/12 items"), "{text}");
        // Forced off, nothing is drawn, however long.
        let screen = Screen::default();
        let mut off = par.mapper().chunksize(1).progress(false);
        off.opts.watch.draw = Some(screen.target());
        off.map(slow(100), Some((0..12).collect())).unwrap();
        assert_eq!(screen.text(), "");
        // The configuration's choice applies when the map does not make one.
        let quiet = from_config(crate::Config::new("serial").progress(false)).unwrap();
        let screen = Screen::default();
        let mut m = quiet.mapper().chunksize(1);
        m.opts.watch.draw = Some(screen.target());
        m.map(slow(100), Some((0..12).collect())).unwrap();
        assert_eq!(screen.text(), "");
    }
}
