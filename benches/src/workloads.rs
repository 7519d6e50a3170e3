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

/// A copy of `data` in a buffer from `parallelizer::plain_buffer` (huge
/// pages from 2 MiB), as the `_into` rows and their raw baselines use.
pub fn plain_copy(data: &[f64]) -> Vec<f64> {
    let mut v = parallelizer::plain_buffer(data.len());
    v.copy_from_slice(data);
    v
}

/// `n` short strings (`"item-<i>"`), the serde-heavy collective payload.
pub fn string_data(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item-{i}")).collect()
}

/// The imbalanced maps: what each item costs, in microseconds of waiting
/// (`std::thread::sleep`, so that ranks do not compete for the 2 cores
/// and the ideal, total / ranks, is reachable with 4 ranks too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Imbalance {
    /// Item `i` of 150 costs `(i + 1) × 100 µs`: the last items are the
    /// longest (1.13 s in all).
    Linear,
    /// 400 items of 1 ms, 8 of them (at fixed random places) 30 ms.
    Heavy,
}

impl Imbalance {
    /// Both, in table order.
    pub const ALL: [Imbalance; 2] = [Imbalance::Linear, Imbalance::Heavy];

    /// Short key used in result files.
    pub fn key(self) -> &'static str {
        match self {
            Imbalance::Linear => "linear",
            Imbalance::Heavy => "heavy",
        }
    }

    /// The items: each one's cost in microseconds.
    pub fn items(self) -> Vec<u64> {
        match self {
            Imbalance::Linear => (1..=150).map(|i| i * 100).collect(),
            Imbalance::Heavy => {
                let heavy = [23, 61, 117, 170, 244, 301, 333, 389];
                (0..400)
                    .map(|i| if heavy.contains(&i) { 30_000 } else { 1_000 })
                    .collect()
            }
        }
    }
}

/// One item of an imbalanced map: waits `micros` µs.
pub fn wait_item(micros: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_micros(micros));
    micros
}

/// Where each chunk of `counts` starts in the whole: the running sums
/// before each (MPI's displacements).
pub fn starts<T: Copy + Default + std::ops::Add<Output = T>>(counts: &[T]) -> Vec<T> {
    counts
        .iter()
        .scan(T::default(), |at, &c| {
            let start = *at;
            *at = *at + c;
            Some(start)
        })
        .collect()
}
