//! The McUtils map workload (mcutils-spec.md 3.1, H2/H3): for each
//! r-combination `c` of `0..n` and each permutation `p` of `c`, emit
//! `sum(1 + d for d in p)` (which is `len(c) + sum(c)`, computed for real).

/// The r-combinations of `0..n` in lexicographic order (Python's
/// `itertools.combinations(range(n), r)`); empty when `r > n`.
pub fn combinations(n: u8, r: u8) -> Vec<Vec<u8>> {
    let (n, r) = (n as usize, r as usize);
    if r > n {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut idx: Vec<usize> = (0..r).collect();
    loop {
        out.push(idx.iter().map(|&i| i as u8).collect());
        let Some(i) = (0..r).rev().find(|&i| idx[i] != i + n - r) else {
            return out;
        };
        idx[i] += 1;
        for j in i + 1..r {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// McUtils `mapped_func`: one value per permutation of each combination,
/// permutations in Heap's-algorithm order (every value of a block is equal,
/// so the order inside a block does not show).
pub fn mapped_func(data: Vec<Vec<u8>>) -> Vec<u64> {
    let mut out = Vec::new();
    for c in data {
        let mut p = c.clone();
        let k = p.len();
        let mut counters = vec![0usize; k];
        out.push(p.iter().map(|&d| 1 + d as u64).sum());
        let mut i = 0;
        while i < k {
            if counters[i] < i {
                if i % 2 == 0 {
                    p.swap(0, i);
                } else {
                    p.swap(counters[i], i);
                }
                out.push(p.iter().map(|&d| 1 + d as u64).sum());
                counters[i] += 1;
                i = 0;
            } else {
                counters[i] = 0;
                i += 1;
            }
        }
    }
    out
}

#[test]
fn small_analogue_matches_the_reference() {
    // mcutils-spec.md 3.2 T2: n=4, r=2 gives [3,3,4,4,5,5,5,5,6,6,7,7].
    assert_eq!(
        mapped_func(combinations(4, 2)),
        [3, 3, 4, 4, 5, 5, 5, 5, 6, 6, 7, 7]
    );
    assert_eq!(combinations(3, 9), Vec::<Vec<u8>>::new());
    assert_eq!(combinations(12, 9).len(), 220);
}
