//! The processes backend lends plain buffers of 64 KiB and more across
//! processes in collectives (point-to-point sends, and a broadcast or a
//! scatter's chunk of less than 1 MiB to a single worker, stream through
//! the rings instead): receivers copy them straight out of the sender's
//! memory (`process_vm_readv`) and acknowledge. Results equal the message path's
//! with lending on, off (option `lend`), and refused by the system (the
//! receivers then get the bytes as messages, also a broadcast larger than
//! a piece); a borrower that fails or never receives releases the lender
//! with an error, and nothing hangs.

use std::sync::Arc;
use std::time::Duration;

use crate::common::data::*;
use crate::common::lending;
use crate::common::procs::spawns;
use parallelizer::backend::processes::__refuse_peer_reads;
use parallelizer::prelude::*;
use parallelizer::{Reduce, Schedule};

fn pool(p: usize, lend: bool) -> Arc<dyn Parallelizer> {
    let config = Config::new("processes")
        .nprocs(p)
        .timeout(Duration::from_secs(60))
        .option("lend", lend);
    from_config(&config).unwrap()
}

/// `f` on a thread that refuses every loan it is offered.
fn refusing<T>(f: impl FnOnce() -> T) -> T {
    __refuse_peer_reads(true);
    let got = f();
    __refuse_peer_reads(false);
    got
}

/// `into_calls` on a rank that refuses every loan it is offered.
#[parallelizer::task]
fn refusing_into_calls(par: &dyn Parallelizer, n: usize) -> Option<IntoReport> {
    refusing(|| into_calls(par, n))
}

/// `p2p_forms` on ranks that refuse every loan they are offered.
#[parallelizer::task]
fn refusing_p2p_forms(par: &dyn Parallelizer, n: usize) -> Option<Vec<f64>> {
    refusing(|| p2p_forms(par, n))
}

/// A scatter first (main still lends), refused, then a gather of the sums.
#[parallelizer::task]
fn refusing_scatter(par: &dyn Parallelizer, n: usize) -> Option<Vec<f64>> {
    let data = values(n);
    let mut mine = Vec::new();
    refusing(|| par.scatter_into(par.on_main().then_some(&data[..]), &mut mine)).unwrap();
    par.gather(mine.iter().sum::<f64>()).unwrap()
}

#[parallelizer::test]
fn lending_on_and_off_give_the_same_results() {
    let _hold = spawns();
    for p in [2, 3] {
        for lend in [true, false] {
            let par = pool(p, lend);
            let _entered = par.enter().unwrap();
            for n in [100_000, 1 << 20] {
                let got = par.run(into_calls, n).unwrap();
                assert_eq!(got, Some(into_expected(n, p)), "p={p} n={n} lend={lend}");
            }
            let got = par.run(p2p_forms, 100_000).unwrap();
            assert_eq!(got, Some(vec![0.0; 6]), "p={p} lend={lend}");
        }
    }
}

#[parallelizer::test]
fn refused_loans_arrive_as_messages() {
    let _hold = spawns();
    for p in [2, 3] {
        // A fresh pool for each: after a refusal the pool lends no more.
        // 5e6 f64 (40 MB) is a broadcast larger than a piece.
        for n in [100_000, 5_000_000] {
            let par = pool(p, true);
            let got = par.run(refusing_into_calls, n).unwrap();
            assert_eq!(got, Some(into_expected(n, p)), "p={p} n={n}");
        }
        // Above a piece too: a refused send is one message, which every
        // receive form takes (a generic receive takes only one).
        for n in [100_000, 5_000_000] {
            let par = pool(p, true);
            let got = par.run(refusing_p2p_forms, n).unwrap();
            assert_eq!(got, Some(vec![0.0; 6]), "p={p} n={n}");
        }
        let n = 300_000;
        let par = pool(p, true);
        let sums = par.run(refusing_scatter, n).unwrap().unwrap();
        let total: f64 = sums.iter().sum();
        assert_eq!(total, values(n).iter().sum::<f64>(), "p={p}");
    }
}

#[parallelizer::test]
fn a_borrower_that_panics_releases_the_lender() {
    let _hold = spawns();
    lending::a_borrower_that_panics_releases_the_lender(&*pool(3, true));
}

#[parallelizer::test]
fn a_lent_buffer_nobody_receives_is_a_deadlock_not_a_hang() {
    let _hold = spawns();
    lending::a_loan_nobody_takes_is_a_deadlock(&*pool(2, true));
}

/// A large `broadcast_into` in which rank 1, which passes main's data on
/// to rank 3 (the tree of 4 ranks: 0 -> 1, 2; 1 -> 3), has a buffer one
/// element too long: each rank's outcome and the sum it got.
#[parallelizer::task]
fn relay_with_a_wrong_buffer(par: &dyn Parallelizer, n: usize) -> Option<Vec<(String, f64)>> {
    let id = par.id();
    let mut buf = if par.on_main() {
        values(n)
    } else {
        vec![0.0; if id == 1 { n + 1 } else { n }]
    };
    let got = match par.broadcast_into(&mut buf) {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let sum = if id == 1 { 0.0 } else { buf.iter().sum() };
    par.gather((got, sum)).unwrap()
}

#[parallelizer::test]
fn a_relaying_rank_with_a_wrong_buffer_fails_alone() {
    let _hold = spawns();
    let n = 100_000;
    let total: f64 = values(n).iter().sum();
    for par in [pool(4, true), from_config("threads:4").unwrap()] {
        let got = par.run(relay_with_a_wrong_buffer, n).unwrap().unwrap();
        let wrong = format!(
            "broadcast: the buffer of rank 1 holds {} elements but the call needs {n}",
            n + 1
        );
        let want = vec![
            ("ok".to_string(), total),
            (wrong, 0.0),
            ("ok".to_string(), total),
            ("ok".to_string(), total),
        ];
        assert_eq!(got, want, "{}", par.mode());
    }
}

/// Generic calls whose results are fresh vectors of 16 MiB or more, which
/// the lender helps to copy (main's broadcast to rank 1 alone, the scatter
/// of 2 ranks, a worker's part of a gather), and `gather_into`: whether
/// each rank got exactly main's data.
#[parallelizer::task]
fn large_generic_calls(par: &dyn Parallelizer, n: usize) -> Option<Vec<bool>> {
    let on = par.on_main();
    let data = values(n);
    let all = par.broadcast(on.then(|| data.clone())).unwrap();
    let mine = par.scatter(on.then(|| data.clone())).unwrap();
    let back = par.gather(mine).unwrap();
    let whole = back.map(|parts| parts.concat() == data);
    let mut flat = Vec::new();
    let mine = par.scatter(on.then(|| data.clone())).unwrap();
    par.gather_into(&mine, on.then_some(&mut flat)).unwrap();
    let oks = par.gather(all == data).unwrap();
    oks.map(|mut oks| {
        oks.push(whole == Some(true));
        oks.push(flat == data);
        oks
    })
}

/// [`large_generic_calls`] on ranks that refuse every loan, and every
/// request to write into another rank.
#[parallelizer::task]
fn refusing_large_generic_calls(par: &dyn Parallelizer, n: usize) -> Option<Vec<bool>> {
    refusing(|| large_generic_calls(par, n))
}

#[parallelizer::test]
fn large_results_arrive_whole_with_the_lenders_help() {
    let _hold = spawns();
    let n = 5_000_000;
    for p in [2, 4] {
        let want = Some(vec![true; p + 2]);
        let par = pool(p, true);
        assert_eq!(par.run(large_generic_calls, n).unwrap(), want, "p={p}");
        assert_eq!(
            par.run(refusing_large_generic_calls, n).unwrap(),
            want,
            "p={p}"
        );
    }
}

/// An allreduce (sum) of 100,000 f64 per rank, every rank's own values;
/// the ranks in `refusing` refuse every loan they are offered.
#[parallelizer::task]
fn allreduce_large(par: &dyn Parallelizer, refusing_ranks: Vec<usize>) -> Option<Vec<f64>> {
    let id = par.id();
    let mine: Vec<f64> = (0..100_000).map(|i| (i * (id + 1)) as f64).collect();
    let sum = if refusing_ranks.contains(&id) {
        refusing(|| par.allreduce(mine, Reduce::Sum))
    } else {
        par.allreduce(mine, Reduce::Sum)
    };
    let sum = sum.unwrap();
    // Every rank holds the same sum.
    let all = par.gather(sum.clone()).unwrap();
    all.map(|all| {
        assert!(all.iter().all(|s| *s == sum));
        sum
    })
}

#[parallelizer::test]
fn large_allreduces_lend_and_fall_back() {
    let _hold = spawns();
    for p in [2, 3, 4] {
        let factor: usize = (1..=p).sum();
        let want: Vec<f64> = (0..100_000).map(|i| (i * factor) as f64).collect();
        for refusing in [vec![], vec![1], (0..p).collect()] {
            let par = pool(p, true);
            let got = par.run(allreduce_large, refusing.clone()).unwrap();
            assert_eq!(got.as_ref(), Some(&want), "p={p} refusing={refusing:?}");
        }
    }
}

/// Every item of [`expand`] gives this many `u32`s.
const SPREAD: u32 = 1 << 20;

/// Item `x` as `x * SPREAD + j` for every `j < SPREAD` (4 MiB each).
#[parallelizer::task]
fn expand(xs: Vec<u32>) -> Vec<u32> {
    xs.into_iter()
        .flat_map(|x| (0..SPREAD).map(move |j| x * SPREAD + j))
        .collect()
}

/// A static map whose workers' plain results are large (20 MiB a rank,
/// lent to main, which takes them straight into its own vector) gives
/// every result once, in order, flat and per rank; with lending off, and
/// with main refusing the loans (they then come as messages).
#[parallelizer::test]
fn large_plain_results_of_a_static_map_join_in_mains_vector() {
    let _hold = spawns();
    let items = || Some((0..15u32).collect::<Vec<_>>());
    let want: Vec<u32> = (0..15 * SPREAD).collect();
    let per_rank = (5 * SPREAD) as usize;
    for lend in [true, false] {
        let par = pool(3, lend);
        let _entered = par.enter().unwrap();
        let stat = || par.mapper().schedule(Schedule::Static);
        let got = stat().map_chunks(expand, items()).unwrap().unwrap();
        assert!(got == want, "lend {lend}: {} results", got.len());
        let lists = stat()
            .per_rank()
            .map_chunks(expand, items())
            .unwrap()
            .unwrap();
        assert_eq!(lists.len(), 3, "lend {lend}");
        for (r, list) in lists.iter().enumerate() {
            assert!(
                list[..] == want[r * per_rank..(r + 1) * per_rank],
                "lend {lend}, rank {r}"
            );
        }
        let got = refusing(|| stat().map_chunks(expand, items()))
            .unwrap()
            .unwrap();
        assert!(got == want, "lend {lend}, refused: {} results", got.len());
    }
}

/// Each item as `WIDE` results (4 MiB of `u32`): a chunk's results are
/// large enough that a worker lends them to main.
#[parallelizer::task]
fn widen(chunk: Vec<u32>) -> Vec<u32> {
    chunk
        .into_iter()
        .flat_map(|x| (0..WIDE).map(move |j| x.wrapping_mul(WIDE).wrapping_add(j)))
        .collect()
}

const WIDE: u32 = 1 << 20;

/// `widen` of `items` on main's thread.
fn widened(items: &[u32]) -> Vec<u32> {
    widen(items.to_vec())
}

/// A dynamic map's results of 4 MiB and more are lent to main (each
/// chunk's copied behind the results before it, or kept until its turn):
/// the same results in input order with lending on, off, and refused by
/// the system (main then takes the bytes as a message).
#[parallelizer::test]
fn a_dynamic_maps_large_results_arrive_in_order_lent_or_not() {
    let _hold = spawns();
    let items: Vec<u32> = (0..12).collect();
    let want = widened(&items);
    for p in [2, 3] {
        for (lend, refuse) in [(true, false), (false, false), (true, true)] {
            let par = pool(p, lend);
            let _entered = par.enter().unwrap();
            for chunksize in [1, 2] {
                let m = par.mapper().schedule(Schedule::Dynamic { chunksize });
                let got = if refuse {
                    refusing(|| m.map_chunks(widen, Some(items.clone())))
                } else {
                    m.map_chunks(widen, Some(items.clone()))
                };
                let got = got.unwrap().unwrap();
                let at = format!("p={p} lend={lend} refused={refuse} chunksize={chunksize}");
                assert_eq!(got.len(), want.len(), "{at}");
                assert!(got == want, "{at}: results out of order or wrong");
            }
        }
    }
}

/// An item's result, mixed so that a result in the wrong place shows.
#[parallelizer::task]
fn mixed(x: u64) -> u64 {
    if x.is_multiple_of(4099) {
        // Now and then a slow item, so that chunks come back out of order.
        std::thread::sleep(Duration::from_micros(200));
    }
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 7)
}

/// The same item as a 4-byte number: slots of another element size.
#[parallelizer::task]
fn mixed_f32(x: u64) -> f32 {
    (mixed(x) >> 40) as f32
}

/// The same item as another 8-byte number: written over the items too.
#[parallelizer::task]
fn mixed_f64(x: u64) -> f64 {
    mixed(x) as f64
}

/// An item-wise map's results of plain numbers are written in place on
/// main (each worker's next slot posted for them, the rest copied in as
/// they come): the same results in input order for small chunks, chunks
/// of guided sizes, chunks whose results (from 4 MiB) are lent, and the
/// static split's parts, with lending on, off and refused; results of the
/// items' size (u64, f64) over the items, others (f32) in a vector of
/// their own.
#[parallelizer::test]
fn an_item_wise_maps_plain_results_are_written_in_place() {
    let _hold = spawns();
    for p in [2, 3] {
        for (lend, refuse) in [(true, false), (false, false), (true, true)] {
            let par = pool(p, lend);
            let _entered = par.enter().unwrap();
            for (n, schedule) in [
                (10_000, Schedule::Dynamic { chunksize: 7 }),
                (200_000, Schedule::Auto),
                (1_500_000, Schedule::Dynamic { chunksize: 600_000 }),
                // The static split: each worker's part posted on its place.
                (50_001, Schedule::Static),
                (1_500_000, Schedule::Static),
            ] {
                let items: Vec<u64> = (0..n).collect();
                let at = format!("p={p} lend={lend} refused={refuse} {schedule:?}");
                let m = par.mapper().schedule(schedule);
                let run = || {
                    let mine = items.clone();
                    let mine_at = mine.as_ptr() as usize;
                    let wide = m.map(mixed, Some(mine));
                    let other = m.map(mixed_f64, Some(items.clone()));
                    (wide, mine_at, other, m.map(mixed_f32, Some(items.clone())))
                };
                let (wide, mine_at, other, narrow) = if refuse { refusing(run) } else { run() };
                let want: Vec<u64> = items.iter().map(|&x| mixed(x)).collect();
                let wide = wide.unwrap().unwrap();
                assert!(wide == want, "{at}: u64 results wrong");
                if !matches!(schedule, Schedule::Static) {
                    // Over the items: main's vector itself, no fresh memory.
                    assert_eq!(wide.as_ptr() as usize, mine_at, "{at}: not over the items");
                }
                let want: Vec<f64> = items.iter().map(|&x| mixed_f64(x)).collect();
                assert!(other.unwrap().unwrap() == want, "{at}: f64 results wrong");
                let want: Vec<f32> = items.iter().map(|&x| mixed_f32(x)).collect();
                assert!(narrow.unwrap().unwrap() == want, "{at}: f32 results wrong");
            }
        }
    }
}
