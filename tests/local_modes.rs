//! The shared SPMD suite on `serial` and on `threads` with 1 to 4 ranks:
//! every result must equal serial's (or the reference table where the
//! result depends on the number of ranks).

mod common;

use common::*;
use parallelizer::prelude::*;
use std::sync::Arc;

fn modes() -> Vec<Arc<dyn Parallelizer>> {
    let mut all = vec![from_config("serial").unwrap()];
    for n in 1..=4 {
        all.push(from_config(format!("threads:{n}")).unwrap());
    }
    all
}

fn serial() -> Arc<dyn Parallelizer> {
    from_config("serial").unwrap()
}

#[test]
fn chunk_table_matches_the_reference() {
    for (items, ranks, sizes) in chunk_table() {
        let par = from_config(format!("threads:{ranks}")).unwrap();
        assert_eq!(
            par.run(chunk_lens, items).unwrap(),
            Some(sizes),
            "{items} over {ranks}"
        );
    }
    assert_eq!(serial().run(chunk_lens, 1000).unwrap(), Some(vec![1000]));
}

#[test]
fn scatter_then_gather_returns_the_data_in_order() {
    for par in modes() {
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

#[test]
fn gather_is_ordered_main_first() {
    for par in modes() {
        let got = par.run(gather_ids, ()).unwrap().unwrap();
        let expect: Vec<_> = (0..par.nprocs())
            .map(|i| (i, format!("rank-{i}")))
            .collect();
        assert_eq!(got, expect);
    }
}

#[test]
fn broadcast_of_a_struct_reaches_every_rank() {
    for par in modes() {
        assert_eq!(
            par.run(broadcast_struct, ()).unwrap(),
            Some(vec![sample_job(); par.nprocs()])
        );
    }
}

#[test]
fn maps_equal_serial_in_input_order() {
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

#[test]
fn pool_style_map_outside_a_region() {
    let expect: Vec<i64> = (0..100).map(square).collect();
    for par in modes() {
        assert_eq!(
            par.map(square, Some((0..100).collect())).unwrap().unwrap(),
            expect
        );
        let with = par
            .map_with(|x: i64, k: &i64| x + k, Some(vec![1, 2, 3]), Some(10))
            .unwrap();
        assert_eq!(with.unwrap(), [11, 12, 13]);
        let star = par.starmap(
            |a: i64, b: String| format!("{b}{a}"),
            Some(vec![(1, "x".into())]),
        );
        assert_eq!(star.unwrap().unwrap(), ["x1"]);
    }
}

#[test]
fn send_and_receive_between_workers() {
    assert_eq!(
        from_config("threads:4")
            .unwrap()
            .run(worker_to_worker, ())
            .unwrap()
            .unwrap(),
        "hello from 1 to 3"
    );
    assert_eq!(
        from_config("threads:3")
            .unwrap()
            .run(worker_to_worker, ())
            .unwrap()
            .unwrap(),
        "hello from 1 to 2"
    );
    assert_eq!(
        from_config("threads:2")
            .unwrap()
            .run(worker_to_worker, ())
            .unwrap()
            .unwrap(),
        "hello from 1 to 0"
    );
}

#[test]
fn wait_is_a_barrier() {
    for par in modes() {
        let ids = par.run(wait_then_gather, ()).unwrap().unwrap();
        assert_eq!(ids, (0..par.nprocs()).collect::<Vec<_>>());
    }
}

#[test]
fn plain_data_paths_match_serial() {
    let expect = serial().run(pod_roundtrip, 10).unwrap();
    assert_eq!(expect.as_ref().unwrap().0[9], 81.0);
    for par in modes() {
        let got = par.run(pod_roundtrip, 10).unwrap().unwrap();
        assert_eq!(got.0, expect.as_ref().unwrap().0);
        assert_eq!(got.1, 1.5 * par.nprocs() as f64);
    }
}

// ---- The McUtils test suite (mcutils-spec.md 3.2), intent-corrected ----

/// T1 BasicMultiprocessing: the sum of the gathered chunk lengths is 1000,
/// in parallel and in serial.
#[test]
fn t1_basic() {
    assert_eq!(serial().run(run_job, ()).unwrap(), Some(1000));
    for par in modes() {
        assert_eq!(par.run(run_job, ()).unwrap(), Some(1000));
    }
}

/// T2 MapMultiprocessing at a CI size: the vectorized map equals serial
/// exactly, in order (the full n=12, r=9 run is `examples/mcutils_map.rs`).
#[test]
fn t2_map() {
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

/// T3 MapMultiprocessingDataSmall: no data (r > n) gives `[]` like serial;
/// small non-empty data matches serial.
#[test]
fn t3_map_small() {
    let par = from_config("threads:3").unwrap();
    assert_eq!(par.run(map_applier, (3, 9)).unwrap(), Some(vec![]));
    assert_eq!(serial().run(map_applier, (3, 9)).unwrap(), Some(vec![]));
    assert_eq!(
        par.run(map_applier, (4, 2)).unwrap(),
        serial().run(map_applier, (4, 2)).unwrap()
    );
}

/// T4 BroadcastParallelizer: broadcast the parallelizer (its configuration,
/// since a live handle does not serialize) twice inside one enter; the
/// second run reuses the same worker threads.
#[test]
fn t4_broadcast_parallelizer() {
    fn bcast_parallelizer(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
        let config = par
            .broadcast(par.on_main().then(|| par.core().config().clone()))
            .unwrap();
        let thread = format!("{config}/{:?}", std::thread::current().id());
        par.gather(thread).unwrap()
    }
    let par = from_config("threads:3").unwrap();
    let _entered = par.enter().unwrap();
    let first = par.run(bcast_parallelizer, ()).unwrap().unwrap();
    let second = par.run(bcast_parallelizer, ()).unwrap().unwrap();
    assert!(
        first.iter().all(|s| s.starts_with("threads:3/")),
        "{first:?}"
    );
    assert_eq!(first, second, "the same threads serve both runs");
}

/// T5 ScatterGatherMultiprocessing: one length per rank, summing to 1000,
/// equal to the sum of serial's.
#[test]
fn t5_scatter_gather() {
    let serial_sum: usize = serial()
        .run(chunk_lens, 1000)
        .unwrap()
        .unwrap()
        .iter()
        .sum();
    for par in modes() {
        let lens = par.run(chunk_lens, 1000).unwrap().unwrap();
        assert_eq!(lens.len(), par.nprocs());
        assert_eq!(lens.iter().sum::<usize>(), 1000);
        assert_eq!(serial_sum, 1000);
    }
}

/// T6 ScatterGatherMultiprocessingDataSmall: 3 items over 3 ranks.
#[test]
fn t6_scatter_gather_small() {
    let par = from_config("threads:3").unwrap();
    assert_eq!(par.run(chunk_lens, 3).unwrap(), Some(vec![1, 1, 1]));
    assert_eq!(serial().run(chunk_lens, 3).unwrap(), Some(vec![3]));
}

/// T7 MiscProblems: nine arrays over nine ranks, one each; printing an int
/// (and braces) works on main and workers.
#[test]
fn t7_misc() {
    let par = from_config("threads:9").unwrap();
    assert_eq!(par.run(simple_scatter_1, ()).unwrap(), Some(vec![1; 9]));
    assert!(
        from_config("threads:3")
            .unwrap()
            .run(simple_print, ())
            .unwrap()
    );
    assert!(serial().run(simple_print, ()).unwrap());
}
