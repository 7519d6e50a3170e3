//! Shared memory (McUtils' T8-T10 and more) on `serial` and `threads:3`:
//! share/unshare round trips, a map whose arrays a worker writes and main
//! reads, scalar maps, in-place versus reshaping assignment seen through an
//! earlier handle, disjoint row views and atomics, borrow conflicts, and
//! the memory given back after every test, a failed region included.
//! The same on `processes:3` (`shared_processes`), where the memory is a
//! memfd every process maps, checked on every rank for leftovers: no
//! segment, no memfd descriptor, nothing new in `/dev/shm`.
//!
//! `segments_in_use()` counts this process's shared memory; the tests here
//! are the only ones of this binary that make any, and they take [`LOCK`]
//! so that each can check it gives back all it took.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use parallelizer::backend::segments_in_use;
use parallelizer::prelude::*;
use parallelizer::{Array, OwnedMap, SharedArray, SharedMap};

static LOCK: Mutex<()> = Mutex::new(());

/// Holds [`LOCK`] and checks, when dropped, that every segment taken while
/// it was held was given back.
pub(crate) struct NoLeak {
    before: usize,
    _lock: MutexGuard<'static, ()>,
}

pub(crate) fn no_leak() -> NoLeak {
    let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    NoLeak {
        before: segments_in_use(),
        _lock: lock,
    }
}

impl Drop for NoLeak {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(segments_in_use(), self.before, "shared memory left behind");
        }
    }
}

/// The in-process modes: serial (one rank) and three threads.
fn modes() -> Vec<Arc<dyn Parallelizer>> {
    vec![
        from_config("serial").unwrap(),
        from_config("threads:3").unwrap(),
    ]
}

/// Deterministic pseudo-random numbers in [0, 1) (xorshift64*).
pub(crate) fn random(n: usize, mut seed: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// T8: a random 10x5x5 array shared on main and unshared: the same values
/// and shape; every rank of a region sees the same values through its
/// handle, and a collective `share` inside a region too.
#[test]
fn t8_share_unshare_round_trip() {
    let _check = no_leak();
    for par in modes() {
        let a = Array::new([10, 5, 5], random(250, 7)).unwrap();
        let shared = par.share(a.clone()).unwrap();
        assert_eq!(shared.shape(), [10, 5, 5]);
        assert_eq!(format!("{shared:?}"), "SharedArray((10, 5, 5), dtype=f64)");
        let back = shared.unshare().unwrap();
        assert_eq!(back, a);
        let sums = par
            .run(
                |p: &dyn Parallelizer, s: SharedArray<f64>| {
                    let mine: f64 = s.read().unwrap().iter().sum();
                    p.gather(mine).unwrap()
                },
                shared.clone(),
            )
            .unwrap()
            .unwrap();
        let total: f64 = a.as_slice().iter().sum();
        assert_eq!(sums, vec![total; par.nprocs()], "{}", par.mode());
        // Collectively inside a region: main's array, every rank's handle.
        let seen = par
            .run(
                |p: &dyn Parallelizer, a: Array<f64>| {
                    let mine = if p.on_main() {
                        a
                    } else {
                        Array::zeros([1]).unwrap()
                    };
                    let s = p.share(mine).unwrap();
                    p.gather(s.unshare().unwrap().into_vec()).unwrap()
                },
                a.clone(),
            )
            .unwrap()
            .unwrap();
        assert!(seen.iter().all(|v| v == a.as_slice()), "{}", par.mode());
    }
}

/// The map of T9: arrays `a` 10x5x5, `b` 10x3x8, `c` 10x15x4, empty `d`.
pub(crate) fn t9_map() -> OwnedMap {
    let mut m = OwnedMap::new();
    m.insert("a", Array::new([10, 5, 5], random(250, 1)).unwrap());
    m.insert("b", Array::new([10, 3, 8], random(240, 2)).unwrap());
    m.insert("c", Array::new([10, 15, 4], random(600, 3)).unwrap());
    m.insert("d", OwnedMap::new());
    m
}

/// T9: a worker (the last rank) writes `a[1,0,0] = 5.0` and main reads
/// 5.0; the worker's change to the nested map `d` stays its own; `unshare`
/// gives owned arrays of the same shapes.
#[test]
fn t9_map_of_arrays() {
    let _check = no_leak();
    for par in modes() {
        let original = t9_map();
        let shared = par.share(original.clone()).unwrap();
        assert_eq!(
            format!("{shared:?}"),
            "SharedMap({\"a\": SharedArray((10, 5, 5), dtype=f64), \
             \"b\": SharedArray((10, 3, 8), dtype=f64), \
             \"c\": SharedArray((10, 15, 4), dtype=f64), \"d\": {}})"
        );
        let local_d = par
            .run(
                |p: &dyn Parallelizer, mut m: SharedMap| {
                    if p.id() + 1 == p.nprocs() {
                        m.array::<f64>("a").unwrap().set(&[1, 0, 0], 5.0).unwrap();
                        m.map_mut("d").unwrap().set("key", 5i64).unwrap();
                    }
                    m.map("d").unwrap().len()
                },
                shared.clone(),
            )
            .unwrap();
        let a = shared.array::<f64>("a").unwrap();
        assert_eq!(a.get(&[1, 0, 0]).unwrap(), 5.0, "{}", par.mode());
        if par.nprocs() > 1 {
            assert_eq!(local_d, 0, "main's d is untouched by the worker");
            assert!(shared.map("d").unwrap().is_empty());
        }
        let owned = shared.unshare().unwrap();
        for (k, shape) in [("a", [10, 5, 5]), ("b", [10, 3, 8]), ("c", [10, 15, 4])] {
            let arr = owned.array::<f64>(k).unwrap();
            assert_eq!(arr.shape(), shape);
            if k != "a" {
                assert_eq!(arr, original.array::<f64>(k).unwrap());
            }
        }
        let mut expected = original.array::<f64>("a").unwrap();
        expected[[1, 0, 0]] = 5.0;
        assert_eq!(owned.array::<f64>("a").unwrap(), expected);
        assert!(owned.map("d").unwrap().is_empty() || par.nprocs() == 1);
        assert!(owned.array::<f32>("a").is_err(), "stored as f64");
    }
}

/// T10: a map of scalars round trips: `{"iteration": 12, "energy": -76.2413}`.
#[test]
fn t10_scalar_map_round_trip() {
    let _check = no_leak();
    for par in modes() {
        let mut m = OwnedMap::new();
        m.insert("iteration", 12i64);
        m.insert("energy", -76.2413f64);
        let shared = par.share(m.clone()).unwrap();
        assert_eq!(
            format!("{shared:?}"),
            r#"SharedMap({"energy": -76.2413, "iteration": 12})"#
        );
        let seen = par
            .run(
                |p: &dyn Parallelizer, s: SharedMap| {
                    let v = (
                        s.get::<i64>("iteration").unwrap(),
                        s.get::<f64>("energy").unwrap(),
                    );
                    p.gather(v).unwrap()
                },
                shared.clone(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(seen, vec![(12, -76.2413); par.nprocs()]);
        assert_eq!(shared.unshare().unwrap(), m);
        assert!(shared.get::<i32>("iteration").is_err(), "stored as i64");
    }
}

/// Assigning an array of the same shape writes in place (an earlier handle
/// sees it, on every rank); another shape allocates new memory, which the
/// earlier handle does not see.
#[test]
fn same_shape_in_place_other_shape_reallocates() {
    let _check = no_leak();
    for par in modes() {
        let mut m = OwnedMap::new();
        m.insert("a", Array::new([2, 3], vec![1.0f64; 6]).unwrap());
        let mut shared = par.share(m).unwrap();
        let earlier = shared.array::<f64>("a").unwrap();
        shared
            .set("a", Array::new([2, 3], vec![2.0f64; 6]).unwrap())
            .unwrap();
        assert_eq!(earlier.unshare().unwrap().as_slice(), [2.0; 6]);
        assert!(earlier.same_memory(&shared.array::<f64>("a").unwrap()));
        // A worker sees main's in-place write through the handle it got.
        let seen = par
            .run(
                |p: &dyn Parallelizer, a: SharedArray<f64>| {
                    p.gather(a.get(&[1, 2]).unwrap()).unwrap()
                },
                earlier.clone(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(seen, vec![2.0; par.nprocs()]);
        shared
            .set("a", Array::new([3], vec![9.0f64; 3]).unwrap())
            .unwrap();
        let now = shared.array::<f64>("a").unwrap();
        assert_eq!(now.shape(), [3]);
        assert!(!earlier.same_memory(&now));
        assert_eq!(earlier.unshare().unwrap().as_slice(), [2.0; 6]);
        assert!(shared.array::<f64>("new").is_err());
        shared.set("new", Array::from(vec![1u8, 2])).unwrap();
        assert_eq!(shared.array::<u8>("new").unwrap().get(&[1]).unwrap(), 2);
    }
}

/// Disjoint row views per rank, a barrier, whole-array reads; atomics as
/// counters; conflicting borrows are errors, not races.
#[test]
fn rows_atomics_and_borrow_conflicts() {
    let _check = no_leak();
    for par in modes() {
        let (sum, count) = par
            .run(
                |p: &dyn Parallelizer, ()| {
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
                    for _ in 0..100 {
                        counter
                            .atomics()
                            .unwrap()
                            .at(0)
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    p.wait().unwrap();
                    (sum, counter.get(&[0]).unwrap())
                },
                (),
            )
            .unwrap();
        assert_eq!(sum, (0..14).sum::<u64>(), "{}", par.mode());
        assert_eq!(count, 100 * par.nprocs() as u64, "{}", par.mode());

        let a = SharedArray::<i32>::zeros(&*par, &[4, 2]).unwrap();
        let view = a.read().unwrap();
        let err = a.rows_mut(0..1).unwrap_err();
        assert!(matches!(err, Error::ContractViolation(_)), "{err:?}");
        assert!(err.to_string().contains("wait()"), "{err}");
        assert!(a.set(&[0, 0], 1).is_err(), "no atomic write under a read");
        drop(view);
        a.set(&[0, 0], 1).unwrap();
        assert!(a.get(&[4, 0]).is_err(), "out of range");
        assert!(a.rows_mut(3..5).is_err(), "out of range");
    }
}

/// A region that fails (a worker panics while it holds a write view of a
/// collective array) gives back every segment, and the borrow it held.
#[test]
fn failed_region_releases_memory() {
    let _check = no_leak();
    let par = from_config("threads:3").unwrap();
    let err = par
        .run(
            |p: &dyn Parallelizer, ()| {
                let a = SharedArray::<f64>::zeros(p, &[3, 4]).unwrap();
                let _mine = a.chunk_mut(p).unwrap();
                if p.id() == 2 {
                    panic!("boom while writing");
                }
                p.wait().unwrap();
            },
            (),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::WorkerPanicked { rank: 2, .. }),
        "{err:?}"
    );
    // A map made on main and handed to the failing region as well.
    let shared = par.share(t9_map()).unwrap();
    let err = par
        .run(
            |p: &dyn Parallelizer, m: SharedMap| {
                let a = m.array::<f64>("a").unwrap();
                let _all = a.read().unwrap();
                if p.id() == 1 {
                    panic!("boom while reading");
                }
            },
            shared.clone(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::WorkerPanicked { rank: 1, .. }),
        "{err:?}"
    );
    shared
        .array::<f64>("a")
        .unwrap()
        .write()
        .expect("the panicking rank's read borrow was released");
}

/// Shared arrays travel into a subgroup's regions like any argument.
#[test]
fn shared_arrays_in_a_subgroup() {
    let _check = no_leak();
    let par = from_config("threads:4").unwrap();
    let group = par.subgroup(&[0, 2]).unwrap();
    let counter = group.share(Array::from(vec![0u64; 4])).unwrap();
    group
        .run(
            |p: &dyn Parallelizer, c: SharedArray<u64>| {
                c.atomics()
                    .unwrap()
                    .at(p.world_rank())
                    .fetch_add(1, Ordering::Relaxed);
            },
            counter.clone(),
        )
        .unwrap();
    assert_eq!(counter.unshare().unwrap().as_slice(), [1, 0, 1, 0]);
}
