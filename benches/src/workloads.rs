//! The work the map benchmarks do, shared by the suite, the criterion
//! benches and (in spirit) `benches/python/bench.py`.

use std::hint::black_box;

/// Steps of [`fine_work`]; about 10 ns in all on a current x86-64 core.
pub const FINE_STEPS: usize = 16;

/// About 10 ns of dependent floating-point work on one item (the
/// fine-grained map): [`FINE_STEPS`] dependent multiply-then-add steps
/// (not `mul_add`, which is a libm call without the `fma` target feature).
#[inline]
pub fn fine_work(x: f64) -> f64 {
    let mut y = black_box(x);
    for _ in 0..FINE_STEPS {
        y = y * 1.000_000_1 + 0.5;
    }
    y
}

/// McUtils' `mapped_func` (spec 3.1, H2): for each tuple `c` and each
/// permutation `p` of `c`, emit `sum(1 + d for d in p)`.
///
/// Permutations come from a real permutation loop (Heap's algorithm) and
/// each sum is computed over the permuted tuple: no closed form, no
/// hoisting (the permuted buffer goes through `black_box`).
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

/// `itertools.combinations(range(n), r)` in lexicographic order.
pub fn combinations(n: u8, r: u8) -> Vec<Vec<u8>> {
    let (n, r) = (n as usize, r as usize);
    let mut out = Vec::new();
    if r > n {
        return out;
    }
    let mut idx: Vec<usize> = (0..r).collect();
    loop {
        out.push(idx.iter().map(|&i| i as u8).collect());
        // Find the rightmost index that can still move right.
        let Some(i) = (0..r).rev().find(|&i| idx[i] != i + n - r) else {
            return out;
        };
        idx[i] += 1;
        for j in i + 1..r {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// `n` f64 items for the maps and collectives.
pub fn f64_data(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

/// `n` short strings (`"item-<i>"`), the serde-heavy collective payload.
pub fn string_data(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item-{i}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_func_matches_the_spec_on_a_small_case() {
        // Spec T2: n=4, r=2 gives [3,3,4,4,5,5,5,5,6,6,7,7].
        let out = mapped_func(combinations(4, 2));
        assert_eq!(out, [3, 3, 4, 4, 5, 5, 5, 5, 6, 6, 7, 7]);
    }

    #[test]
    fn heap_visits_every_permutation_once() {
        let mut seen = std::collections::BTreeSet::new();
        heap_permutations(&[0, 1, 2, 3], |p| {
            assert!(seen.insert(p.to_vec()));
        });
        assert_eq!(seen.len(), 24);
    }

    #[test]
    fn combinations_count() {
        assert_eq!(combinations(12, 9).len(), 220);
        assert_eq!(combinations(3, 9).len(), 0);
    }
}
