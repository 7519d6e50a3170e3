//! The maps suite: pool-style maps of every form under every schedule, with
//! items of random cost, against the serial answer; results per rank;
//! progress reports; chunk sizes of 0 and larger than the data; empty
//! input. Each check is called by main with its data (and, under SPMD
//! launchers, by every other rank with none) and returns main's verdict.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use parallelizer::backend::AnySource;
use parallelizer::{Error, Parallelizer, Progress, Schedule, chunk_sizes};

/// The cost of item `x`: 0 to 1 ms, random but the same on every run.
fn cost(x: u64) -> Duration {
    let h = x.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Duration::from_micros((h >> 40) % 1000)
}

/// An item of random cost.
#[parallelizer::task]
pub fn jitter(x: u64) -> u64 {
    std::thread::sleep(cost(x));
    x * x + 1
}

/// `map_with`: an item of random cost and an extra argument.
#[parallelizer::task]
pub fn jitter_with(x: u64, k: &u64) -> u64 {
    std::thread::sleep(cost(x));
    x * k
}

/// `map_chunks`: a chunk of items of random cost.
#[parallelizer::task]
pub fn jitter_chunk(xs: Vec<u64>) -> Vec<u64> {
    xs.into_iter().map(jitter).collect()
}

/// `map_chunks_with`.
#[parallelizer::task]
pub fn jitter_chunk_with(xs: Vec<u64>, k: &u64) -> Vec<u64> {
    xs.into_iter().map(|x| jitter_with(x, k)).collect()
}

/// `starmap`.
#[parallelizer::task]
pub fn jitter_pair(x: u64, label: String) -> String {
    format!("{label}{}", jitter(x))
}

/// `starmap_with`.
#[parallelizer::task]
pub fn jitter_pair_with(x: u64, label: String, sep: &String) -> String {
    format!("{label}{sep}{}", jitter(x))
}

/// McUtils' `f2(x, y) = x * y`, for `aggregate=False`.
#[parallelizer::task]
pub fn times(x: u64, y: &u64) -> u64 {
    x * y
}

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let (g, w) = (format!("{got:?}"), format!("{want:?}"));
    let cut = |s: String| {
        if s.len() > 300 {
            format!("{}...", &s[..300])
        } else {
            s
        }
    };
    Err(format!("{what}: got {}, want {}", cut(g), cut(w)))
}

fn ok<T>(what: &str, r: parallelizer::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Main's data, `None` elsewhere.
fn mine<T>(par: &dyn Parallelizer, data: impl FnOnce() -> T) -> Option<T> {
    par.on_main().then(data)
}

/// The schedules every map runs under: the default, the static split, the
/// guided chunks, and chunks of 1, 3 and more items than there are.
pub fn schedules(n: usize) -> Vec<Schedule> {
    vec![
        Schedule::Auto,
        Schedule::Static,
        Schedule::Guided,
        Schedule::Dynamic { chunksize: 1 },
        Schedule::Dynamic { chunksize: 3 },
        Schedule::Dynamic { chunksize: n + 5 },
    ]
}

/// Every map form, pool-style, under every schedule, on 0, 1, 5 and 37
/// items of random cost: the results equal the serial ones, in input order.
pub fn every_form_keeps_input_order(par: &dyn Parallelizer) -> Result<(), String> {
    for n in [0u64, 1, 5, 37] {
        let items = || (0..n).collect::<Vec<u64>>();
        let pairs = || (0..n).map(|i| (i, format!("#{i}"))).collect::<Vec<_>>();
        let want_map: Vec<u64> = items().into_iter().map(|x| x * x + 1).collect();
        let want_with: Vec<u64> = items().into_iter().map(|x| x * 7).collect();
        let want_pair: Vec<String> = pairs()
            .into_iter()
            .map(|(x, l)| format!("{l}{}", x * x + 1))
            .collect();
        let want_pair_with: Vec<String> = pairs()
            .into_iter()
            .map(|(x, l)| format!("{l}:{}", x * x + 1))
            .collect();
        for schedule in schedules(n as usize) {
            let m = par.mapper().schedule(schedule);
            let at = |form: &str| format!("{form} of {n} items, {schedule:?}");
            let got = ok(&at("map"), m.map(jitter, mine(par, items)))?;
            eq(&at("map"), got, mine(par, || want_map.clone()))?;
            let got = ok(
                &at("map_with"),
                m.map_with(jitter_with, mine(par, items), mine(par, || 7)),
            )?;
            eq(&at("map_with"), got, mine(par, || want_with.clone()))?;
            let got = ok(
                &at("map_chunks"),
                m.map_chunks(jitter_chunk, mine(par, items)),
            )?;
            eq(&at("map_chunks"), got, mine(par, || want_map.clone()))?;
            let got = ok(
                &at("map_chunks_with"),
                m.map_chunks_with(jitter_chunk_with, mine(par, items), mine(par, || 7)),
            )?;
            eq(&at("map_chunks_with"), got, mine(par, || want_with.clone()))?;
            let got = ok(&at("starmap"), m.starmap(jitter_pair, mine(par, pairs)))?;
            eq(&at("starmap"), got, mine(par, || want_pair.clone()))?;
            let got = ok(
                &at("starmap_with"),
                m.starmap_with(
                    jitter_pair_with,
                    mine(par, pairs),
                    mine(par, || ":".to_string()),
                ),
            )?;
            eq(
                &at("starmap_with"),
                got,
                mine(par, || want_pair_with.clone()),
            )?;
        }
    }
    Ok(())
}

/// `map` of a cheap item whose cost varies, so that chunks come back out
/// of order.
#[parallelizer::task]
pub fn uneven(x: u64) -> u64 {
    let mut acc = x;
    for _ in 0..(x % 7) * 50 {
        acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(1));
    }
    acc
}

/// `starmap` to strings of a few dozen bytes.
#[parallelizer::task]
pub fn labelled(x: u64, label: String) -> String {
    format!("{label}/{}", uneven(x))
}

/// `map_chunks` to twice as many results as items, of another size: each
/// item's `uneven` value as its two 32-bit halves.
#[parallelizer::task]
pub fn halves(xs: Vec<u64>) -> Vec<u32> {
    xs.into_iter()
        .map(uneven)
        .flat_map(|v| [(v >> 32) as u32, v as u32])
        .collect()
}

/// Maps whose chunks and results are past MPI's eager limit (4 KiB), which
/// MPI posts and main queues ahead (`AnySource::Posted`), and whose plain
/// results main receives straight into its result (MPI's held bodies):
/// plain numbers (40 KB chunks; chunk-wise to twice as many `u32`s) and
/// strings (serde), several chunks per rank, under dynamic and guided
/// schedules, equal the serial results in input order.
pub fn large_chunks_keep_input_order(par: &dyn Parallelizer) -> Result<(), String> {
    let n = 60_000u64;
    let want: Vec<u64> = (0..n).map(uneven).collect();
    let want_halves = halves((0..n).collect());
    let pairs = || {
        (0..n / 10)
            .map(|i| (i, format!("item number {i}")))
            .collect::<Vec<_>>()
    };
    let want_pairs: Vec<String> = pairs().into_iter().map(|(x, l)| labelled(x, l)).collect();
    for schedule in [
        Schedule::Auto,
        Schedule::Dynamic { chunksize: 5000 },
        Schedule::Dynamic { chunksize: 700 },
    ] {
        let m = par.mapper().schedule(schedule);
        let at = |form: &str| format!("{form} of large chunks, {schedule:?}");
        let got = ok(&at("map"), m.map(uneven, mine(par, || (0..n).collect())))?;
        eq(&at("map"), got, mine(par, || want.clone()))?;
        let got = ok(
            &at("map_chunks"),
            m.map_chunks(halves, mine(par, || (0..n).collect())),
        )?;
        eq(&at("map_chunks"), got, mine(par, || want_halves.clone()))?;
        let got = ok(&at("starmap"), m.starmap(labelled, mine(par, pairs)))?;
        eq(&at("starmap"), got, mine(par, || want_pairs.clone()))?;
    }
    Ok(())
}

/// McUtils' `aggregate=False`: one list per rank. With the static split
/// rank `i` gets chunk `i`'s results (McUtils' own answer on 3 ranks:
/// `[[0,2,4,6],[8,10,12],[14,16,18]]`); with chunks handed out
/// dynamically, each list is in input order and together they hold every
/// result once. Empty data gives an empty list per rank.
pub fn results_per_rank(par: &dyn Parallelizer) -> Result<(), String> {
    let p = par.nprocs();
    let data = || (0..10u64).collect::<Vec<_>>();
    let got = ok(
        "static",
        par.mapper().schedule(Schedule::Static).per_rank().map_with(
            times,
            mine(par, data),
            mine(par, || 2),
        ),
    )?;
    let mut at = 0;
    let want: Vec<Vec<u64>> = chunk_sizes(10, p)
        .into_iter()
        .map(|size| {
            at += size;
            (at as u64 - size as u64..at as u64)
                .map(|x| 2 * x)
                .collect()
        })
        .collect();
    if p == 3 {
        eq(
            "McUtils' answer",
            want.clone(),
            vec![vec![0, 2, 4, 6], vec![8, 10, 12], vec![14, 16, 18]],
        )?;
    }
    eq("static per rank", got, mine(par, || want.clone()))?;
    let got = ok(
        "dynamic",
        par.mapper()
            .chunksize(2)
            .per_rank()
            .map(jitter, mine(par, data)),
    )?;
    if let Some(lists) = got {
        eq("lists", lists.len(), p)?;
        for list in &lists {
            if !list.windows(2).all(|w| w[0] < w[1]) {
                return Err(format!(
                    "a rank's results are out of input order: {lists:?}"
                ));
            }
        }
        let mut all: Vec<u64> = lists.concat();
        all.sort_unstable();
        eq(
            "every result once",
            all,
            data().into_iter().map(|x| x * x + 1).collect(),
        )?;
    }
    // As many chunks as ranks: each rank computes one, main included (its
    // share is not handed to a worker that is topped up first).
    let got = ok(
        "a chunk per rank",
        par.mapper()
            .chunksize(10usize.div_ceil(p))
            .per_rank()
            .map(jitter, mine(par, data)),
    )?;
    if let Some(lists) = got
        && lists.iter().any(Vec::is_empty)
    {
        return Err(format!("a rank computed no chunk of {p}: {lists:?}"));
    }
    for schedule in schedules(0) {
        let got = ok(
            "empty",
            par.mapper()
                .schedule(schedule)
                .per_rank()
                .map(jitter, mine(par, Vec::new)),
        )?;
        eq(
            &format!("empty, {schedule:?}"),
            got,
            mine(par, || vec![Vec::new(); p]),
        )?;
    }
    Ok(())
}

/// A chunk size of 0 is a configuration error that says so (inside a
/// region main refuses the map on every rank, so none is left waiting in
/// it), and the next map works.
pub fn chunksize_zero_is_an_error(par: &dyn Parallelizer) -> Result<(), String> {
    let refused = par
        .mapper()
        .chunksize(0)
        .map(jitter, mine(par, || vec![1, 2, 3]));
    match refused {
        Err(Error::Config(m)) if par.on_main() && m.contains("chunksize") => {}
        Err(Error::Aborted { by_rank: 0 }) if !par.on_main() => {}
        other => return Err(format!("chunksize 0 gave {other:?}")),
    }
    let got = ok("after", par.map(jitter, mine(par, || vec![1, 2])))?;
    eq("after", got, mine(par, || vec![2, 5]))
}

/// The progress callback: one report per chunk (`chunks` of them, when the
/// backend schedules dynamically), the count of items done growing to
/// the total, from every rank that computed a chunk.
pub fn progress_reports_every_chunk(
    par: &dyn Parallelizer,
    chunks: Option<usize>,
) -> Result<(), String> {
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = seen.clone();
    let got = ok(
        "map",
        par.mapper()
            .chunksize(4)
            .progress(false)
            .on_progress(move |p| log.lock().unwrap().push(p))
            .map(jitter, mine(par, || (0..40).collect())),
    )?;
    if !par.on_main() {
        return Ok(());
    }
    eq("results", got.map(|v| v.len()), Some(40))?;
    let seen = seen.lock().unwrap();
    if let Some(chunks) = chunks {
        eq("reports", seen.len(), chunks)?;
    }
    if seen.windows(2).any(|w| w[1].done <= w[0].done) {
        return Err(format!("done does not grow: {seen:?}"));
    }
    eq(
        "last",
        seen.last().map(|p| (p.done, p.total)),
        Some((40, 40)),
    )?;
    eq("items", seen.iter().map(|p| p.items).sum::<usize>(), 40)?;
    if seen.iter().any(|p| p.rank >= par.nprocs()) {
        return Err(format!(
            "a report names a rank that does not exist: {seen:?}"
        ));
    }
    if par.nprocs() > 1 && !seen.iter().any(|p| p.rank != 0) {
        return Err(format!("no chunk was reported from a worker: {seen:?}"));
    }
    Ok(())
}

/// `got` is the error of a map whose item 13 panicked with "cursed".
fn cursed_panic<T: std::fmt::Debug>(
    what: &str,
    got: parallelizer::Result<Option<T>>,
) -> Result<(), String> {
    match got {
        Err(Error::WorkerPanicked { message, .. }) if message.contains("cursed") => Ok(()),
        other => Err(format!("{what}: {other:?}")),
    }
}

/// Every fourth item (from 1) takes 3 ms, the others nothing; item 13
/// panics when `cursed`.
fn slow_or_cursed(x: u64, cursed: bool) -> u64 {
    if x % 4 == 1 {
        std::thread::sleep(Duration::from_millis(3));
    }
    if cursed && x == 13 {
        panic!("item 13 is cursed");
    }
    x * 3
}

/// An item of [`slow_or_cursed`].
#[parallelizer::task]
pub fn slow_item(x: u64) -> u64 {
    slow_or_cursed(x, false)
}

/// An item of [`slow_or_cursed`], item 13 cursed.
#[parallelizer::task]
pub fn slow_cursed_item(x: u64) -> u64 {
    slow_or_cursed(x, true)
}

/// Items that turn out expensive halfway through a chunk main computes (its
/// share then goes on on a thread of its own, where a scheduler answers
/// the workers between cheap items): the results stay in input order, each
/// chunk is reported once with all its items, and (`cursed`: not on MPI,
/// where a rank that panics in a collective ends the job) a panic after
/// the move is the map's error all the same.
pub fn slow_items_keep_order_and_progress(
    par: &dyn Parallelizer,
    cursed: bool,
) -> Result<(), String> {
    let want: Vec<u64> = (0..40).map(|x| x * 3).collect();
    for schedule in [Schedule::Auto, Schedule::Dynamic { chunksize: 8 }] {
        let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
        let log = seen.clone();
        let got = par
            .mapper()
            .schedule(schedule)
            .progress(false)
            .on_progress(move |p| log.lock().unwrap().push(p))
            .map(slow_item, mine(par, || (0..40).collect()));
        let at = format!("{schedule:?}");
        eq(&at, ok(&at, got)?, mine(par, || want.clone()))?;
        if !par.on_main() {
            continue;
        }
        let seen = seen.lock().unwrap();
        eq(
            "items reported",
            seen.iter().map(|p| p.items).sum::<usize>(),
            40,
        )?;
        if schedule != Schedule::Auto && par.any_source() != AnySource::Unsupported {
            eq("reports", seen.len(), 5)?;
        }
        if cursed {
            let got = par
                .mapper()
                .schedule(schedule)
                .map(slow_cursed_item, Some((0..40).collect()));
            cursed_panic(&format!("{schedule:?}, cursed"), got)?;
        }
    }
    Ok(())
}

/// Inside a region: every rank calls the map, main's schedule applies
/// (the workers ask for another, which is not used), input order is kept.
#[parallelizer::task]
pub fn dynamic_in_region(par: &dyn Parallelizer, n: u64) -> Option<Vec<u64>> {
    let m = if par.on_main() {
        par.mapper().chunksize(2)
    } else {
        par.mapper().schedule(Schedule::Static)
    };
    m.map(|x: u64| jitter(x) + 1, mine(par, || (0..n).collect()))
        .unwrap()
}

/// Whether this backend hands chunks out as ranks finish them (or can
/// only split statically).
#[parallelizer::task]
pub fn schedules_dynamically(par: &dyn Parallelizer, (): ()) -> bool {
    par.nprocs() == 1 || par.any_source() != AnySource::Unsupported
}

/// An item that panics.
#[parallelizer::task]
pub fn cursed(x: u64) -> u64 {
    if x == 13 {
        panic!("item 13 is cursed");
    }
    x
}

/// A pool-style map whose `f` panics on one item returns
/// `WorkerPanicked` with the panic's message, whichever rank computed the
/// item (main included) and whatever the schedule; the next map works.
/// (Not on MPI, where a rank that panics in a collective ends the job.)
pub fn a_panicking_item_is_an_error(par: &dyn Parallelizer) -> Result<(), String> {
    for schedule in [
        Schedule::Auto,
        Schedule::Static,
        Schedule::Dynamic { chunksize: 1 },
    ] {
        let got = par
            .mapper()
            .schedule(schedule)
            .map(cursed, Some((0..40).collect()));
        cursed_panic(&format!("{schedule:?}"), got)?;
        let got = ok("after", par.map(cursed, Some(vec![1, 2])))?;
        eq("after", got, Some(vec![1, 2]))?;
    }
    Ok(())
}
