//! Shared memory on `processes:3`: T8-T10, in-place and reshaping
//! assignment, row views and atomics across processes, a failed region,
//! and after each test, on every rank: no segment in use, no memfd of a
//! shared array open (`/proc/self/fd`), and nothing new in `/dev/shm`.
//! A heap array (another parallelizer's) cannot be sent to a worker
//! process: an error, not memory the worker does not share.
//!
//! Each test holds `spawns()` (it starts workers) and the shared-memory
//! tests' lock (it counts this process's segments).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parallelizer::backend::segments_in_use;
use parallelizer::prelude::*;
use parallelizer::{Array, OwnedMap, SharedArray, SharedMap};

use super::shared::{no_leak, random, t9_map};
use crate::common::procs::spawns;

fn processes() -> Arc<dyn Parallelizer> {
    from_config(
        Config::new("processes")
            .nprocs(3)
            .timeout(Duration::from_secs(60)),
    )
    .unwrap()
}

/// This process's open memfds of shared arrays.
fn shared_memfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| {
            t.to_string_lossy()
                .starts_with("/memfd:parallelizer-shared")
        })
        .count()
}

/// Every rank's segments in use and open shared-array memfds.
#[parallelizer::task]
fn leftovers(p: &dyn Parallelizer, (): ()) -> Option<Vec<(usize, usize)>> {
    p.gather((segments_in_use(), shared_memfds())).unwrap()
}

/// `/dev/shm`, without what Open MPI jobs elsewhere on the machine make.
fn dev_shm() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with("vader_segment") && !n.starts_with("sm_segment"))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `test` on an entered processes:3, then checks every rank.
fn on_processes(test: impl FnOnce(&dyn Parallelizer)) {
    let _spawns = spawns();
    let shm = dev_shm();
    {
        let _check = no_leak();
        let par = processes();
        let _entered = par.enter().unwrap();
        test(&*par);
        let left = par.run(leftovers, ()).unwrap().unwrap();
        let (main, workers) = left.split_first().unwrap();
        assert_eq!(main.1, 0, "main holds shared memfds: {left:?}");
        assert!(workers.iter().all(|&w| w == (0, 0)), "{left:?}");
    }
    assert_eq!(dev_shm(), shm, "/dev/shm changed");
}

#[parallelizer::task]
fn sums(p: &dyn Parallelizer, s: SharedArray<f64>) -> Option<Vec<f64>> {
    let mine: f64 = s.read().unwrap().iter().sum();
    p.gather(mine).unwrap()
}

#[parallelizer::task]
fn share_in_region(p: &dyn Parallelizer, a: Array<f64>) -> Option<Vec<Vec<f64>>> {
    let mine = if p.on_main() {
        a
    } else {
        Array::zeros([1]).unwrap()
    };
    let s = p.share(mine).unwrap();
    p.gather(s.unshare().unwrap().into_vec()).unwrap()
}

#[parallelizer::test]
fn t8_share_unshare_round_trip() {
    on_processes(|par| {
        let a = Array::new([10, 5, 5], random(250, 7)).unwrap();
        let shared = par.share(a.clone()).unwrap();
        assert_eq!(shared.unshare().unwrap(), a);
        let total: f64 = a.as_slice().iter().sum();
        assert_eq!(
            par.run(sums, shared.clone()).unwrap().unwrap(),
            vec![total; 3]
        );
        let seen = par.run(share_in_region, a.clone()).unwrap().unwrap();
        assert!(seen.iter().all(|v| v == a.as_slice()));
    });
}

#[parallelizer::task]
fn t9_worker(p: &dyn Parallelizer, mut m: SharedMap) -> usize {
    if p.id() == 2 {
        m.array::<f64>("a").unwrap().set(&[1, 0, 0], 5.0).unwrap();
        m.map_mut("d").unwrap().set("key", 5i64).unwrap();
    }
    p.wait().unwrap();
    m.map("d").unwrap().len()
}

#[parallelizer::test]
fn t9_map_of_arrays() {
    on_processes(|par| {
        let original = t9_map();
        let shared = par.share(original.clone()).unwrap();
        assert_eq!(par.run(t9_worker, shared.clone()).unwrap(), 0);
        assert_eq!(
            shared.array::<f64>("a").unwrap().get(&[1, 0, 0]).unwrap(),
            5.0
        );
        assert!(
            shared.map("d").unwrap().is_empty(),
            "rank 2's d stays its own"
        );
        let owned = shared.unshare().unwrap();
        let mut expected = original.array::<f64>("a").unwrap();
        expected[[1, 0, 0]] = 5.0;
        assert_eq!(owned.array::<f64>("a").unwrap(), expected);
        assert_eq!(
            owned.array::<f64>("c").unwrap(),
            original.array::<f64>("c").unwrap()
        );
    });
}

#[parallelizer::task]
fn t10_values(p: &dyn Parallelizer, s: SharedMap) -> Option<Vec<(i64, f64)>> {
    let v = (
        s.get::<i64>("iteration").unwrap(),
        s.get::<f64>("energy").unwrap(),
    );
    p.gather(v).unwrap()
}

#[parallelizer::task]
fn value_at(p: &dyn Parallelizer, (a, i): (SharedArray<f64>, Vec<usize>)) -> Option<Vec<f64>> {
    p.gather(a.get(&i).unwrap()).unwrap()
}

#[parallelizer::test]
fn t10_scalars_and_in_place_assignment() {
    on_processes(|par| {
        let mut m = OwnedMap::new();
        m.insert("iteration", 12i64);
        m.insert("energy", -76.2413f64);
        let shared = par.share(m.clone()).unwrap();
        let seen = par.run(t10_values, shared.clone()).unwrap().unwrap();
        assert_eq!(seen, vec![(12, -76.2413); 3]);
        assert_eq!(shared.unshare().unwrap(), m);

        let mut m = OwnedMap::new();
        m.insert("a", Array::new([2, 3], vec![1.0f64; 6]).unwrap());
        let mut shared = par.share(m).unwrap();
        let earlier = shared.array::<f64>("a").unwrap();
        shared
            .set("a", Array::new([2, 3], vec![2.0f64; 6]).unwrap())
            .unwrap();
        let seen = par.run(value_at, (earlier.clone(), vec![1, 2])).unwrap();
        assert_eq!(
            seen.unwrap(),
            vec![2.0; 3],
            "in place, seen by every process"
        );
        shared
            .set("a", Array::new([3], vec![9.0f64; 3]).unwrap())
            .unwrap();
        let now = shared.array::<f64>("a").unwrap();
        assert!(!earlier.same_memory(&now));
        assert_eq!(earlier.get(&[0, 0]).unwrap(), 2.0);
        assert_eq!(
            par.run(value_at, (now, vec![2])).unwrap().unwrap(),
            vec![9.0; 3]
        );
    });
}

#[parallelizer::task]
fn rows_and_atomics(p: &dyn Parallelizer, (): ()) -> (u64, u64) {
    let a = SharedArray::<u64>::zeros(p, &[7, 2]).unwrap();
    {
        let mut mine = a.chunk_mut(p).unwrap();
        let rows = mine.rows();
        for (i, x) in mine.iter_mut().enumerate() {
            *x = (rows.start * 2 + i) as u64;
        }
    }
    p.wait().unwrap();
    let sum: u64 = a.read().unwrap().iter().sum();
    p.wait().unwrap();
    let counter = SharedArray::<u64>::zeros(p, &[1]).unwrap();
    for _ in 0..1000 {
        counter
            .atomics()
            .unwrap()
            .at(0)
            .fetch_add(1, Ordering::Relaxed);
    }
    p.wait().unwrap();
    // A write under another process's read is refused, not a race.
    let conflict = if p.id() == 1 {
        let _view = a.read().unwrap();
        p.wait().unwrap();
        p.wait().unwrap();
        false
    } else {
        p.wait().unwrap();
        let refused = a.write().is_err();
        p.wait().unwrap();
        refused
    };
    assert!(
        conflict || p.id() == 1,
        "rank {} wrote under rank 1's read",
        p.id()
    );
    (sum, counter.get(&[0]).unwrap())
}

#[parallelizer::test]
fn rows_atomics_and_conflicts_across_processes() {
    on_processes(|par| {
        let (sum, count) = par.run(rows_and_atomics, ()).unwrap();
        assert_eq!(sum, (0..14).sum::<u64>());
        assert_eq!(count, 3000);
    });
}

#[parallelizer::task]
fn panics_holding_views(p: &dyn Parallelizer, m: SharedMap) {
    let a = SharedArray::<f64>::zeros(p, &[3, 4]).unwrap();
    let _mine = a.chunk_mut(p).unwrap();
    let b = m.array::<f64>("b").unwrap();
    let _all = b.read().unwrap();
    if p.id() == 2 {
        panic!("boom while holding views");
    }
    // Released from the barrier by rank 2's failure.
    let _ = p.wait();
}

#[parallelizer::test]
fn a_failed_region_gives_everything_back() {
    on_processes(|par| {
        let shared = par.share(t9_map()).unwrap();
        let err = par.run(panics_holding_views, shared.clone()).unwrap_err();
        assert!(
            matches!(err, Error::WorkerPanicked { rank: 2, .. }),
            "{err:?}"
        );
        let b = shared.array::<f64>("b").unwrap();
        b.write().expect("every rank's read borrow was released");
    });
}

#[parallelizer::test]
fn heap_arrays_do_not_reach_worker_processes() {
    on_processes(|par| {
        let local = from_config("serial").unwrap();
        let heap = local.share(Array::from(vec![1.0f64, 2.0])).unwrap();
        let err = par.run(sums, heap).unwrap_err();
        assert!(matches!(err, Error::Codec(_)), "{err:?}");
        assert!(
            err.to_string().contains("cannot reach another process"),
            "{err}"
        );
    });
}
