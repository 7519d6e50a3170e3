//! Shared memory on MPI (T8-T10 of McUtils, in-place assignment, rows and
//! atomics across ranks), served and SPMD: the memory is a memfd the ranks
//! of the node open through `/proc/PID/fd`. After the checks, every rank
//! has no segment in use and no shared-array memfd open.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parallelizer::backend::segments_in_use;
use parallelizer::prelude::*;
use parallelizer::{Array, OwnedMap, SharedArray, SharedMap};

use super::{Suite, eq};

/// Deterministic pseudo-random numbers in [0, 1) (xorshift64*).
fn random(n: usize, mut seed: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// This process's open memfds of shared arrays.
fn shared_memfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| {
                    t.to_string_lossy()
                        .starts_with("/memfd:parallelizer-shared")
                })
                .count()
        })
        .unwrap_or(0)
}

#[parallelizer::task]
fn leftovers(p: &dyn Parallelizer, (): ()) -> Option<Vec<(usize, usize)>> {
    p.gather((segments_in_use(), shared_memfds())).unwrap()
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

#[parallelizer::task]
fn t9_worker(p: &dyn Parallelizer, mut m: SharedMap) -> usize {
    if p.id() + 1 == p.nprocs() {
        m.array::<f64>("a").unwrap().set(&[1, 0, 0], 5.0).unwrap();
        m.map_mut("d").unwrap().set("key", 5i64).unwrap();
    }
    p.wait().unwrap();
    m.map("d").unwrap().len()
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
    (sum, counter.get(&[0]).unwrap())
}

/// The map of T9: arrays `a` 10x5x5, `b` 10x3x8, `c` 10x15x4, empty `d`.
fn t9_map() -> OwnedMap {
    let mut m = OwnedMap::new();
    m.insert("a", Array::new([10, 5, 5], random(250, 1)).unwrap());
    m.insert("b", Array::new([10, 3, 8], random(240, 2)).unwrap());
    m.insert("c", Array::new([10, 15, 4], random(600, 3)).unwrap());
    m.insert("d", OwnedMap::new());
    m
}

/// The shared-memory checks on `par` (served main alone shares; SPMD
/// ranks share collectively, main's value).
pub(super) fn suite(par: &Arc<dyn Parallelizer>, suite: &mut Suite) {
    let (p, rank) = (par.nprocs(), par.id());
    let e = |e: Error| e.to_string();
    suite.check("shared memory: T8 share/unshare of a 10x5x5 array", || {
        let a = Array::new([10, 5, 5], random(250, 7)).unwrap();
        let shared = par.share(a.clone()).map_err(e)?;
        eq("unshare", shared.unshare().map_err(e)?, a.clone())?;
        let total: f64 = a.as_slice().iter().sum();
        let got = par.run(sums, shared.clone()).map_err(e)?;
        let seen = par.run(share_in_region, a.clone()).map_err(e)?;
        if rank == 0 {
            eq("sums", got, Some(vec![total; p]))?;
            eq("in a region", seen, Some(vec![a.as_slice().to_vec(); p]))?;
        }
        Ok(())
    });
    suite.check("shared memory: T9 a worker writes, main reads", || {
        let original = t9_map();
        let shared = par.share(original.clone()).map_err(e)?;
        let d = par.run(t9_worker, shared.clone()).map_err(e)?;
        let a = shared.array::<f64>("a").map_err(e)?;
        eq("a[1,0,0]", a.get(&[1, 0, 0]).map_err(e)?, 5.0)?;
        // Each rank's own result: only the last rank changed its `d`.
        let d_len = shared.map("d").map_err(e)?.len();
        eq("d stays local", (d, d_len), (usize::from(rank + 1 == p), 0))?;
        let owned = shared.unshare().map_err(e)?;
        eq(
            "c",
            owned.array::<f64>("c").map_err(e)?,
            original.array::<f64>("c").map_err(e)?,
        )
    });
    suite.check("shared memory: T10 scalars; in place vs reshaped", || {
        let mut m = OwnedMap::new();
        m.insert("iteration", 12i64);
        m.insert("energy", -76.2413f64);
        let shared = par.share(m.clone()).map_err(e)?;
        let seen = par.run(t10_values, shared.clone()).map_err(e)?;
        eq("unshare", shared.unshare().map_err(e)?, m)?;
        let mut m = OwnedMap::new();
        m.insert("a", Array::new([2, 3], vec![1.0f64; 6]).unwrap());
        let mut shared = par.share(m).map_err(e)?;
        let earlier = shared.array::<f64>("a").map_err(e)?;
        if rank == 0 {
            shared
                .set("a", Array::new([2, 3], vec![2.0f64; 6]).unwrap())
                .map_err(e)?;
        }
        if par.in_region() {
            par.wait().map_err(e)?; // SPMD: rank 0 wrote before anyone reads
        }
        let in_place = par
            .run(value_at, (earlier.clone(), vec![1, 2]))
            .map_err(e)?;
        shared
            .set("a", Array::new([3], vec![9.0f64; 3]).unwrap())
            .map_err(e)?;
        let now = shared.array::<f64>("a").map_err(e)?;
        eq("reshaped is new memory", earlier.same_memory(&now), false)?;
        if rank == 0 {
            eq("scalars", seen, Some(vec![(12, -76.2413); p]))?;
            eq("in place", in_place, Some(vec![2.0; p]))?;
        }
        Ok(())
    });
    suite.check("shared memory: disjoint rows and atomics", || {
        let (sum, count) = par.run(rows_and_atomics, ()).map_err(e)?;
        eq("rows", sum, (0..14).sum::<u64>())?;
        eq("counter", count, 1000 * p as u64)
    });
    suite.check("shared memory: nothing left on any rank", || {
        let left = par.run(leftovers, ()).map_err(e)?;
        if rank == 0 {
            eq("segments and memfds", left, Some(vec![(0, 0); p]))?;
        }
        Ok(())
    });
}
