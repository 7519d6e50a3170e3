//! The SPMD suite shared by every mode's tests: each fn runs on every rank
//! of a region and returns main's view, so a test can compare modes.
//!
//! The McUtils test suite (McCoyGroup/McUtils, `ci/tests/ParallelizersTests.py`,
//! T1..T7 below in its order) is ported here with
//! its intent-corrected expectations. The fns are `#[parallelizer::task]`s
//! so that the process backend's workers can run them by name.
#![allow(dead_code)]

#[macro_use]
pub mod data;
pub mod collect;
pub mod maps;
#[macro_use]
pub mod groups;
pub mod faults;
pub mod lending;
#[cfg(target_os = "linux")]
pub mod procs;
pub mod within;
pub mod workload;

#[allow(unused_imports)]
pub use groups::*;

use parallelizer::prelude::*;
use serde::{Deserialize, Serialize};

/// McUtils H5 `scatter_gather`: the chunk length each rank got.
#[parallelizer::task]
pub fn chunk_lens(par: &dyn Parallelizer, n: usize) -> Option<Vec<usize>> {
    let data = par.on_main().then(|| (0..n as u64).collect::<Vec<_>>());
    let chunk = par.scatter(data).unwrap();
    par.gather(chunk.len()).unwrap()
}

/// Scatter then gather of the chunks themselves: main gets the data back.
#[parallelizer::task]
pub fn scatter_roundtrip(par: &dyn Parallelizer, n: u32) -> Option<Vec<u32>> {
    let data = par.on_main().then(|| (0..n).collect::<Vec<_>>());
    let chunk = par.scatter(data).unwrap();
    par.gather(chunk).unwrap().map(|c| c.concat())
}

/// Gather of each rank's id and pid-independent label, main first.
#[parallelizer::task]
pub fn gather_ids(par: &dyn Parallelizer, (): ()) -> Option<Vec<(usize, String)>> {
    par.gather((par.id(), format!("rank-{}", par.id())))
        .unwrap()
}

/// A struct with heap fields, to broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub method: String,
    pub basis: Vec<String>,
    pub thresholds: Vec<f64>,
    pub nested: Option<Box<Job>>,
}

pub fn sample_job() -> Job {
    Job {
        method: "CCSD(T)".into(),
        basis: vec!["cc-pVDZ".into(), "aug-cc-pVTZ".into()],
        thresholds: vec![1e-8, 1e-6],
        nested: Some(Box::new(Job {
            method: "MP2".into(),
            basis: vec![],
            thresholds: vec![],
            nested: None,
        })),
    }
}

/// Broadcast of a struct; every rank echoes what it got back to main.
#[parallelizer::task]
pub fn broadcast_struct(par: &dyn Parallelizer, (): ()) -> Option<Vec<Job>> {
    let job = par.broadcast(par.on_main().then(sample_job)).unwrap();
    par.gather(job).unwrap()
}

#[parallelizer::task]
pub fn square(x: i64) -> i64 {
    x * x - 3
}

/// `map` inside a region.
#[parallelizer::task]
pub fn map_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<i64>> {
    par.map(square, par.on_main().then(|| (0..n).collect()))
        .unwrap()
}

/// `map_with`: McUtils `extra_args`.
#[parallelizer::task]
pub fn map_with_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<i64>> {
    let data = par.on_main().then(|| (0..n).collect());
    par.map_with(
        |x: i64, k: &(i64, i64)| x * k.0 + k.1,
        data,
        par.on_main().then_some((2, 100)),
    )
    .unwrap()
}

/// `map_chunks`: McUtils `vectorized=True`.
#[parallelizer::task]
pub fn map_chunks_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<i64>> {
    let data = par.on_main().then(|| (0..n).collect());
    par.map_chunks(
        |xs: Vec<i64>| xs.into_iter().map(|x| x + 1000).collect(),
        data,
    )
    .unwrap()
}

/// `starmap` over pairs, flat like `map`.
#[parallelizer::task]
pub fn starmap_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<(i64, i64, i64)>> {
    let data = par.on_main().then(|| (0..n).map(|i| (i, i * i)).collect());
    par.starmap(|a: i64, b: i64| (a, b, -1), data).unwrap()
}

/// A chain of waits: each rank but the last receives from the next one,
/// and the last fails at once. Every other rank is released by that
/// failure, none finishes on its own, so the failure, not a deadlock, is
/// the region's error (the released ranks' reports may reach main first).
#[parallelizer::task]
pub fn fails_at_the_end_of_a_chain(par: &dyn Parallelizer, (): ()) -> Result<u64, String> {
    let (id, last) = (par.id(), par.nprocs() - 1);
    if id == last {
        return Err(format!("bad input on rank {id}"));
    }
    par.receive::<u64>(id + 1).map_err(|e| e.to_string())
}

/// Point-to-point between two workers: rank 1 sends to the last rank, which
/// reports to main. With fewer than 3 ranks main and rank 1 talk instead.
#[parallelizer::task]
pub fn worker_to_worker(par: &dyn Parallelizer, (): ()) -> Option<String> {
    let last = par.nprocs() - 1;
    if par.nprocs() == 1 {
        return Some("solo".into());
    }
    let (from, to) = if par.nprocs() >= 3 { (1, last) } else { (1, 0) };
    let mut got = None;
    if par.id() == from {
        par.send(format!("hello from {from} to {to}"), to).unwrap();
    }
    if par.id() == to {
        got = Some(par.receive::<String>(from).unwrap());
    }
    if to != 0 {
        if par.id() == to {
            par.send(got.take().unwrap(), 0).unwrap();
        }
        if par.on_main() {
            got = Some(par.receive::<String>(to).unwrap());
        }
    }
    got
}

/// A barrier, then a gather: every rank passed `wait`.
#[parallelizer::task]
pub fn wait_then_gather(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    par.wait().unwrap();
    par.wait().unwrap();
    par.gather(par.id()).unwrap()
}

/// McUtils H1 `run_job` (T1), without the 3 s sleep: broadcast "woop",
/// scatter arange(1000), gather the lengths, sum.
#[parallelizer::task]
pub fn run_job(par: &dyn Parallelizer, (): ()) -> Option<usize> {
    let woop = par
        .broadcast(par.on_main().then(|| "woop".to_string()))
        .unwrap();
    assert_eq!(woop, "woop");
    chunk_lens(par, 1000).map(|lens| lens.iter().sum())
}

/// McUtils H3 `map_applier` (T2, T3): the McUtils map workload, vectorized.
#[parallelizer::task]
pub fn map_applier(par: &dyn Parallelizer, (n, r): (u8, u8)) -> Option<Vec<u32>> {
    let data = par.on_main().then(|| workload::combinations(n, r));
    par.map_chunks(workload::mapped_func, data).unwrap()
}

/// McUtils H6 `simple_scatter_1` (T7a): nine 1x2 arrays, one per rank on 9 ranks.
#[parallelizer::task]
pub fn simple_scatter_1(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    let list: Vec<[[i32; 2]; 1]> = (0..3).flat_map(|i| (0..3).map(move |j| [[i, j]])).collect();
    let data = par.on_main().then_some(list);
    par.gather(par.scatter(data).unwrap().len()).unwrap()
}

/// McUtils H7 `simple_print` (T7b): printing a non-string works everywhere.
#[parallelizer::task]
pub fn simple_print(par: &dyn Parallelizer, (): ()) -> bool {
    par.print(Where::Both, 1);
    par.print(Where::Both, "{'a': 1}");
    true
}

/// Plain-data collectives: scatter_pod, square, gather_pod; broadcast_pod;
/// and point-to-point plain data of 8-byte and 1-byte elements from rank 1
/// to main (checked on main).
#[parallelizer::task]
pub fn pod_roundtrip(par: &dyn Parallelizer, n: usize) -> Option<(Vec<f64>, f64)> {
    if par.nprocs() > 1 {
        match par.id() {
            1 => {
                par.send_pod((0..n).map(|i| i as f64 * 0.5).collect::<Vec<f64>>(), 0)
                    .unwrap();
                par.send_pod(vec![7u8; n + 1], 0).unwrap();
            }
            0 => {
                let halves = par.receive_pod::<f64>(1).unwrap();
                assert_eq!(halves, (0..n).map(|i| i as f64 * 0.5).collect::<Vec<f64>>());
                assert_eq!(par.receive_pod::<u8>(1).unwrap(), vec![7u8; n + 1]);
            }
            _ => {}
        }
    }
    let data = par
        .on_main()
        .then(|| (0..n).map(|i| i as f64).collect::<Vec<_>>());
    let mine: Vec<f64> = par
        .scatter_pod(data)
        .unwrap()
        .iter()
        .map(|x| x * x)
        .collect();
    let back = par.gather_pod(mine).unwrap();
    let shared = par
        .broadcast_pod(par.on_main().then(|| vec![0.5f64; 3]))
        .unwrap();
    let sums = par.gather(shared.iter().sum::<f64>()).unwrap();
    back.zip(sums.map(|s| s.iter().sum()))
}

/// The chunk sizes McUtils' `SendRecieveParallelizer.scatter` gives
/// (McUtils/Parallelizers/Parallelizers.py) as (items, ranks, sizes).
pub fn chunk_table() -> Vec<(usize, usize, Vec<usize>)> {
    vec![
        (1000, 4, vec![250; 4]),
        (1000, 5, vec![200; 5]),
        (1000, 15, [vec![67; 10], vec![66; 5]].concat()),
        (1000, 16, [vec![63; 8], vec![62; 8]].concat()),
        (10, 3, vec![4, 3, 3]),
        (10, 4, vec![3, 3, 2, 2]),
        (2, 4, vec![1, 1, 0, 0]),
        (3, 3, vec![1, 1, 1]),
        (9, 9, vec![1; 9]),
    ]
}

/// McUtils H4 `bcast_parallelizer` (T4): broadcast the parallelizer (its
/// configuration, since a live handle does not serialize); each rank
/// reports what it got and which process and thread it is.
#[parallelizer::task]
pub fn bcast_parallelizer(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    let config = par
        .broadcast(par.on_main().then(|| par.core().config().clone()))
        .unwrap();
    let me = format!("{config}/{}/{:?}", par.pid(), std::thread::current().id());
    par.gather(me).unwrap()
}

/// The suite every mode runs, as `#[parallelizer::test]`s: `$ranks(n)`
/// builds a parallelizer of the mode under test with `n` ranks, the suite
/// runs on the `$sizes` rank counts, and the reference chunk table on its
/// rows of up to `$table` ranks. Each result must equal serial's, or the
/// reference table where it depends on the number of ranks. With
/// `hold = EXPR`, each test holds the value of `EXPR` (a lock guard) while
/// it runs.
#[macro_export]
macro_rules! spmd_suite {
    ($ranks:expr, $sizes:expr, table_up_to = $table:expr $(, hold = $hold:expr)?) => {
        fn modes() -> Vec<std::sync::Arc<dyn Parallelizer>> {
            $sizes.into_iter().map($ranks).collect()
        }

        fn serial() -> std::sync::Arc<dyn Parallelizer> {
            from_config("serial").unwrap()
        }

        #[parallelizer::test]
        fn chunk_table_matches_the_reference() {
            $(let _hold = $hold;)?
            for (items, ranks, sizes) in chunk_table().into_iter().filter(|t| t.1 <= $table) {
                let got = ($ranks)(ranks).run(chunk_lens, items).unwrap();
                assert_eq!(got, Some(sizes), "{items} over {ranks}");
            }
            assert_eq!(serial().run(chunk_lens, 1000).unwrap(), Some(vec![1000]));
        }

        #[parallelizer::test]
        fn scatter_then_gather_returns_the_data_in_order() {
            $(let _hold = $hold;)?
            for par in modes() {
                let _entered = par.enter().unwrap();
                for n in [0, 1, 2, 3, 10, 1000] {
                    let expect = Some((0..n).collect::<Vec<u32>>());
                    assert_eq!(
                        par.run(scatter_roundtrip, n).unwrap(),
                        expect,
                        "{par:?} n={n}"
                    );
                }
            }
        }

        #[parallelizer::test]
        fn gather_is_ordered_main_first() {
            $(let _hold = $hold;)?
            for par in modes() {
                let got = par.run(gather_ids, ()).unwrap().unwrap();
                let expect: Vec<_> = (0..par.nprocs())
                    .map(|i| (i, format!("rank-{i}")))
                    .collect();
                assert_eq!(got, expect);
            }
        }

        #[parallelizer::test]
        fn broadcast_of_a_struct_reaches_every_rank() {
            $(let _hold = $hold;)?
            for par in modes() {
                let got = par.run(broadcast_struct, ()).unwrap();
                assert_eq!(got, Some(vec![sample_job(); par.nprocs()]));
            }
        }

        #[parallelizer::test]
        fn maps_equal_serial_in_input_order() {
            $(let _hold = $hold;)?
            let s = serial();
            for n in [0i64, 1, 5, 37] {
                let expect = (
                    s.run(map_in_region, n).unwrap(),
                    s.run(map_with_in_region, n).unwrap(),
                    s.run(map_chunks_in_region, n).unwrap(),
                    s.run(starmap_in_region, n).unwrap(),
                );
                assert_eq!(expect.0.as_ref().unwrap().len(), n as usize);
                for par in modes() {
                    let _entered = par.enter().unwrap();
                    assert_eq!(par.run(map_in_region, n).unwrap(), expect.0, "{par:?}");
                    assert_eq!(par.run(map_with_in_region, n).unwrap(), expect.1, "{par:?}");
                    assert_eq!(
                        par.run(map_chunks_in_region, n).unwrap(),
                        expect.2,
                        "{par:?}"
                    );
                    assert_eq!(par.run(starmap_in_region, n).unwrap(), expect.3, "{par:?}");
                }
            }
        }

        #[parallelizer::test]
        fn pool_style_map_of_a_task_outside_a_region() {
            $(let _hold = $hold;)?
            let expect: Vec<i64> = (0..100).map(square).collect();
            for par in modes() {
                // No enter: the map opens a region itself.
                assert_eq!(
                    par.map(square, Some((0..100).collect())).unwrap().unwrap(),
                    expect
                );
            }
        }

        #[parallelizer::test]
        fn maps_of_every_form_and_schedule_keep_input_order() {
            for par in modes() {
                let _entered = par.enter().unwrap();
                maps::every_form_keeps_input_order(&*par).unwrap();
                maps::large_chunks_keep_input_order(&*par).unwrap();
                let want: Vec<u64> = (0..23).map(|x| x * x + 2).collect();
                assert_eq!(par.run(maps::dynamic_in_region, 23).unwrap(), Some(want));
            }
        }

        #[parallelizer::test]
        fn maps_results_per_rank_chunksize_zero_and_progress() {
            for par in modes() {
                let _entered = par.enter().unwrap();
                maps::results_per_rank(&*par).unwrap();
                maps::chunksize_zero_is_an_error(&*par).unwrap();
                // 40 items in chunks of 4, unless the backend can only
                // split statically (one report per rank).
                let chunks = if par.run(maps::schedules_dynamically, ()).unwrap() {
                    10
                } else {
                    par.nprocs()
                };
                maps::progress_reports_every_chunk(&*par, Some(chunks)).unwrap();
                maps::a_panicking_item_is_an_error(&*par).unwrap();
                maps::slow_items_keep_order_and_progress(&*par, true).unwrap();
            }
        }

        #[parallelizer::test]
        fn send_and_receive_between_workers() {
            $(let _hold = $hold;)?
            for (n, expect) in [
                (4, "hello from 1 to 3"),
                (3, "hello from 1 to 2"),
                (2, "hello from 1 to 0"),
            ] {
                assert_eq!(
                    ($ranks)(n).run(worker_to_worker, ()).unwrap().unwrap(),
                    expect
                );
            }
        }

        #[parallelizer::test]
        fn an_err_at_the_end_of_a_chain_of_waits_is_the_error() {
            $(let _hold = $hold;)?
            for n in [3, 4] {
                match ($ranks)(n).try_run(fails_at_the_end_of_a_chain, ()) {
                    Err(parallelizer::Error::TaskFailed { rank, message })
                        if rank == n - 1 && message.contains("bad input") => {}
                    other => panic!("{n} ranks: {other:?}"),
                }
            }
        }

        #[parallelizer::test]
        fn wait_is_a_barrier() {
            $(let _hold = $hold;)?
            for par in modes() {
                let ids = par.run(wait_then_gather, ()).unwrap().unwrap();
                assert_eq!(ids, (0..par.nprocs()).collect::<Vec<_>>());
            }
        }

        #[parallelizer::test]
        fn plain_data_paths_match_serial() {
            $(let _hold = $hold;)?
            let expect = serial().run(pod_roundtrip, 10).unwrap();
            assert_eq!(expect.as_ref().unwrap().0[9], 81.0);
            for par in modes() {
                let got = par.run(pod_roundtrip, 10).unwrap().unwrap();
                assert_eq!(got.0, expect.as_ref().unwrap().0);
                assert_eq!(got.1, 1.5 * par.nprocs() as f64);
            }
        }

        // ---- The McUtils test suite (ci/tests/ParallelizersTests.py), intent-corrected ----

        /// T1 BasicMultiprocessing: the sum of the gathered chunk lengths is
        /// 1000, in parallel and in serial.
        #[parallelizer::test]
        fn t1_basic() {
            $(let _hold = $hold;)?
            assert_eq!(serial().run(run_job, ()).unwrap(), Some(1000));
            for par in modes() {
                assert_eq!(par.run(run_job, ()).unwrap(), Some(1000));
            }
        }

        /// T2 MapMultiprocessing at a CI size: the vectorized map equals
        /// serial exactly, in order (the full n=12, r=9 run is the example
        /// `mcutils_map`).
        #[parallelizer::test]
        fn t2_map() {
            $(let _hold = $hold;)?
            let expect = serial().run(map_applier, (9, 6)).unwrap().unwrap();
            assert_eq!(expect.len(), 84 * 720);
            assert_eq!((expect[0], *expect.last().unwrap()), (21, 39));
            for par in modes() {
                let _entered = par.enter().unwrap();
                assert_eq!(
                    par.run(map_applier, (9, 6)).unwrap().unwrap(),
                    expect,
                    "{par:?}"
                );
            }
        }

        /// T3 MapMultiprocessingDataSmall: no data (r > n) gives `[]` like
        /// serial; small non-empty data matches serial.
        #[parallelizer::test]
        fn t3_map_small() {
            $(let _hold = $hold;)?
            let par = ($ranks)(3);
            let _entered = par.enter().unwrap();
            assert_eq!(par.run(map_applier, (3, 9)).unwrap(), Some(vec![]));
            assert_eq!(serial().run(map_applier, (3, 9)).unwrap(), Some(vec![]));
            assert_eq!(
                par.run(map_applier, (4, 2)).unwrap(),
                serial().run(map_applier, (4, 2)).unwrap()
            );
        }

        /// T4 BroadcastParallelizer: broadcast the parallelizer twice inside
        /// one enter; the same workers serve both runs.
        #[parallelizer::test]
        fn t4_broadcast_parallelizer() {
            $(let _hold = $hold;)?
            let par = ($ranks)(3);
            let _entered = par.enter().unwrap();
            let first = par.run(bcast_parallelizer, ()).unwrap().unwrap();
            let second = par.run(bcast_parallelizer, ()).unwrap().unwrap();
            let spec = format!("{}:3/", par.mode());
            assert!(first.iter().all(|s| s.starts_with(&spec)), "{first:?}");
            assert_eq!(first, second, "the same workers serve both runs");
        }

        /// T5 ScatterGatherMultiprocessing: one length per rank, summing to
        /// 1000, equal to the sum of serial's.
        #[parallelizer::test]
        fn t5_scatter_gather() {
            $(let _hold = $hold;)?
            let serial_sum: usize = serial()
                .run(chunk_lens, 1000)
                .unwrap()
                .unwrap()
                .iter()
                .sum();
            assert_eq!(serial_sum, 1000);
            for par in modes() {
                let lens = par.run(chunk_lens, 1000).unwrap().unwrap();
                assert_eq!(lens.len(), par.nprocs());
                assert_eq!(lens.iter().sum::<usize>(), serial_sum);
            }
        }

        /// T6 ScatterGatherMultiprocessingDataSmall: 3 items over 3 ranks.
        #[parallelizer::test]
        fn t6_scatter_gather_small() {
            $(let _hold = $hold;)?
            assert_eq!(($ranks)(3).run(chunk_lens, 3).unwrap(), Some(vec![1, 1, 1]));
            assert_eq!(serial().run(chunk_lens, 3).unwrap(), Some(vec![3]));
        }

        /// T7 MiscProblems (b): printing an int (and braces) works on main
        /// and on workers.
        #[parallelizer::test]
        fn t7_print_anything() {
            $(let _hold = $hold;)?
            assert!(($ranks)(3).run(simple_print, ()).unwrap());
            assert!(serial().run(simple_print, ()).unwrap());
        }
    };
}
