//! The shared SPMD suite (`tests/common`, also run by `local_modes.rs` on
//! serial and threads) on `processes` with 2, 3 and 4 ranks: every result
//! must equal serial's, or the reference table where it depends on the
//! number of ranks. Each test re-executes this binary as its workers
//! (`#[parallelizer::test]`), under `cargo test` and `cargo nextest run`.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use parallelizer::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn processes(n: usize) -> Arc<dyn Parallelizer> {
    from_config(
        Config::new("processes")
            .nprocs(n)
            .timeout(Duration::from_secs(60)),
    )
    .unwrap()
}

/// processes:2, :3 and :4.
fn modes() -> Vec<Arc<dyn Parallelizer>> {
    (2..=4).map(processes).collect()
}

fn serial() -> Arc<dyn Parallelizer> {
    from_config("serial").unwrap()
}

#[parallelizer::test]
fn chunk_table_matches_the_reference() {
    for (items, ranks, sizes) in chunk_table().into_iter().filter(|t| t.1 <= 5) {
        assert_eq!(
            processes(ranks).run(chunk_lens, items).unwrap(),
            Some(sizes),
            "{items} over {ranks}"
        );
    }
}

#[parallelizer::test]
fn scatter_then_gather_returns_the_data_in_order() {
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
    for par in modes() {
        assert_eq!(
            par.run(broadcast_struct, ()).unwrap(),
            Some(vec![sample_job(); par.nprocs()])
        );
    }
}

#[parallelizer::test]
fn maps_equal_serial_in_input_order() {
    let s = serial();
    for par in modes() {
        let _entered = par.enter().unwrap();
        for n in [0i64, 1, 5, 37] {
            let expect = (
                s.run(map_in_region, n).unwrap(),
                s.run(map_with_in_region, n).unwrap(),
                s.run(map_chunks_in_region, n).unwrap(),
                s.run(starmap_in_region, n).unwrap(),
            );
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
fn pool_style_map_outside_a_region() {
    let expect: Vec<i64> = (0..100).map(square).collect();
    for par in modes() {
        // No enter: the map opens a region (and starts workers) itself.
        assert_eq!(
            par.map(square, Some((0..100).collect())).unwrap().unwrap(),
            expect
        );
        // A closure cannot cross the process boundary.
        assert!(matches!(
            par.map(|x: i64| x + 1, Some(vec![1])),
            Err(Error::TaskNotRegistered { .. })
        ));
    }
}

#[parallelizer::test]
fn send_and_receive_between_workers() {
    for (n, expect) in [
        (4, "hello from 1 to 3"),
        (3, "hello from 1 to 2"),
        (2, "hello from 1 to 0"),
    ] {
        assert_eq!(
            processes(n).run(worker_to_worker, ()).unwrap().unwrap(),
            expect
        );
    }
}

#[parallelizer::test]
fn wait_is_a_barrier() {
    for par in modes() {
        let ids = par.run(wait_then_gather, ()).unwrap().unwrap();
        assert_eq!(ids, (0..par.nprocs()).collect::<Vec<_>>());
    }
}

#[parallelizer::test]
fn plain_data_paths_match_serial() {
    let expect = serial().run(pod_roundtrip, 10).unwrap();
    for par in modes() {
        let got = par.run(pod_roundtrip, 10).unwrap().unwrap();
        assert_eq!(got.0, expect.as_ref().unwrap().0);
        assert_eq!(got.1, 1.5 * par.nprocs() as f64);
    }
}

// ---- The McUtils test suite (mcutils-spec.md 3.2), intent-corrected ----

#[parallelizer::test]
fn t1_basic() {
    for par in modes() {
        assert_eq!(par.run(run_job, ()).unwrap(), Some(1000));
    }
}

#[parallelizer::test]
fn t2_map() {
    let expect = serial().run(map_applier, (9, 6)).unwrap().unwrap();
    for par in modes() {
        assert_eq!(
            par.run(map_applier, (9, 6)).unwrap().unwrap(),
            expect,
            "{par:?}"
        );
    }
}

#[parallelizer::test]
fn t3_map_small() {
    let par = processes(3);
    let _entered = par.enter().unwrap();
    assert_eq!(par.run(map_applier, (3, 9)).unwrap(), Some(vec![]));
    assert_eq!(
        par.run(map_applier, (4, 2)).unwrap(),
        serial().run(map_applier, (4, 2)).unwrap()
    );
}

#[parallelizer::task]
fn bcast_parallelizer(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    let config = par
        .broadcast(par.on_main().then(|| par.core().config().clone()))
        .unwrap();
    par.gather(format!("{config}/{}", par.pid())).unwrap()
}

/// T4: broadcast the parallelizer's configuration twice inside one enter;
/// the same worker processes serve both runs.
#[parallelizer::test]
fn t4_broadcast_parallelizer() {
    let par = processes(3);
    let _entered = par.enter().unwrap();
    let first = par.run(bcast_parallelizer, ()).unwrap().unwrap();
    let second = par.run(bcast_parallelizer, ()).unwrap().unwrap();
    assert!(
        first.iter().all(|s| s.starts_with("processes:3/")),
        "{first:?}"
    );
    assert_eq!(first, second, "the same processes serve both runs");
}

#[parallelizer::test]
fn t5_scatter_gather() {
    for par in modes() {
        let lens = par.run(chunk_lens, 1000).unwrap().unwrap();
        assert_eq!(lens.len(), par.nprocs());
        assert_eq!(lens.iter().sum::<usize>(), 1000);
    }
}

#[parallelizer::test]
fn t6_scatter_gather_small() {
    assert_eq!(
        processes(3).run(chunk_lens, 3).unwrap(),
        Some(vec![1, 1, 1])
    );
}

#[parallelizer::test]
fn t7_misc() {
    assert!(processes(3).run(simple_print, ()).unwrap());
}
