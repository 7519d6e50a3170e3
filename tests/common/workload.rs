//! The McUtils map workload (`mapped_func` and `map_applier` of
//! `ci/tests/ParallelizersTests.py` in McCoyGroup/McUtils), the one copy
//! shared by the tests, the examples (`#[path]`) and the benchmarks: for each
//! r-combination `c` of `0..n` and each permutation `p` of `c`, emit
//! `sum(1 + d for d in p)` (equal to `len(c) + sum(c)`, but computed for
//! real over every permutation).

use std::hint::black_box;

/// The r-combinations of `0..n` in lexicographic order (Python's
/// `itertools.combinations(range(n), r)`); empty when `r > n`.
pub fn combinations(n: u8, r: u8) -> Vec<Vec<u8>> {
    let (n, r) = (n as usize, r as usize);
    let mut out = Vec::new();
    if r > n {
        return out;
    }
    let mut idx: Vec<usize> = (0..r).collect();
    loop {
        out.push(idx.iter().map(|&i| i as u8).collect());
        // The rightmost index that can still move right.
        let Some(i) = (0..r).rev().find(|&i| idx[i] != i + n - r) else {
            return out;
        };
        idx[i] += 1;
        for j in i + 1..r {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// McUtils `mapped_func`, vectorized over a chunk of combinations: one value
/// per permutation, permutations in Heap's-algorithm order (every value of a
/// combination's block is equal, so the order inside a block does not show).
/// The permuted tuple goes through `black_box`, so nothing is hoisted.
pub fn mapped_func(data: Vec<Vec<u8>>) -> Vec<u32> {
    let mut out = Vec::with_capacity(data.iter().map(|c| factorial(c.len())).sum());
    for c in data {
        heap_permutations(&c, |p| {
            let p = black_box(p);
            out.push(p.iter().map(|&d| 1 + u32::from(d)).sum());
        });
    }
    out
}

/// `n!`.
pub fn factorial(n: usize) -> usize {
    (1..=n).product()
}

/// Calls `emit` with every permutation of `items` (Heap's algorithm,
/// iterative), `len!` calls in all.
pub fn heap_permutations(items: &[u8], mut emit: impl FnMut(&[u8])) {
    let mut a = items.to_vec();
    let n = a.len();
    let mut c = vec![0usize; n];
    emit(&a);
    let mut i = 1;
    while i < n {
        if c[i] < i {
            if i % 2 == 0 {
                a.swap(0, i);
            } else {
                a.swap(c[i], i);
            }
            emit(&a);
            c[i] += 1;
            i = 1;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
}

/// The sum of a result, as the examples print it.
pub fn checksum(values: &[u32]) -> u64 {
    values.iter().map(|&v| u64::from(v)).sum()
}

#[cfg(test)]
mod tests {
    // Full paths, not imports: harness-less test targets compile this module
    // without running its tests.
    #[test]
    fn small_analogue_matches_the_reference() {
        // McUtils' map_applier(n=4, r=2) gives [3,3,4,4,5,5,5,5,6,6,7,7].
        let out = super::mapped_func(super::combinations(4, 2));
        assert_eq!(out, [3, 3, 4, 4, 5, 5, 5, 5, 6, 6, 7, 7]);
        assert_eq!(super::combinations(3, 9), Vec::<Vec<u8>>::new());
        assert_eq!(super::combinations(12, 9).len(), 220);
    }

    #[test]
    fn heap_visits_every_permutation_once() {
        let mut seen = std::collections::BTreeSet::new();
        super::heap_permutations(&[0, 1, 2, 3], |p| assert!(seen.insert(p.to_vec())));
        assert_eq!(seen.len(), 24);
    }
}
