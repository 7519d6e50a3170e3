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

#[path = "../../tests/common/workload.rs"]
mod mcutils;
pub use mcutils::{checksum, combinations, factorial, heap_permutations, mapped_func};

/// `n` f64 items for the maps and collectives.
pub fn f64_data(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

/// `n` short strings (`"item-<i>"`), the serde-heavy collective payload.
pub fn string_data(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item-{i}")).collect()
}
