//! OSU-style measurement: warm-up iterations, then a fixed number of timed
//! iterations; the figure is the median.

use std::time::Instant;

/// How many iterations to run.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Iters {
    /// Untimed iterations first.
    pub warmup: usize,
    /// Timed iterations.
    pub timed: usize,
}

impl Iters {
    /// `warmup` untimed then `timed` timed iterations.
    pub const fn new(warmup: usize, timed: usize) -> Iters {
        Iters { warmup, timed }
    }

    /// Total iterations.
    pub fn total(self) -> usize {
        self.warmup + self.timed
    }
}

/// The median of `xs` (mean of the two middle values for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    assert!(!xs.is_empty(), "median of no samples");
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Median seconds of `f` over `iters`; `setup` runs untimed before each
/// call and its output is handed to `f`.
pub fn time_with<S, T>(
    iters: Iters,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> T,
) -> f64 {
    let mut samples = Vec::with_capacity(iters.timed);
    for i in 0..iters.total() {
        let input = setup();
        let t0 = Instant::now();
        let out = f(input);
        let dt = t0.elapsed().as_secs_f64();
        drop(std::hint::black_box(out));
        if i >= iters.warmup {
            samples.push(dt);
        }
    }
    median(samples)
}

/// Median seconds of `f` over `iters`.
pub fn time<T>(iters: Iters, mut f: impl FnMut() -> T) -> f64 {
    time_with(iters, || (), |()| f())
}

/// Median seconds per call of `f` when it is called `batch` times per
/// sample (for operations far below the timer's resolution).
pub fn time_batched<T>(iters: Iters, batch: usize, mut f: impl FnMut() -> T) -> f64 {
    time(iters, || {
        for _ in 0..batch {
            std::hint::black_box(f());
        }
    }) / batch as f64
}
