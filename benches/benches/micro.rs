//! Criterion micro-benchmarks of the in-process backends against rayon and
//! a serial loop: dispatch and the fine map. (`cargo bench -p
//! parallelizer-bench`.) The cross-backend suite with processes and MPI is
//! the `suite` binary: those backends need a launcher, which criterion's
//! harness is not.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use parallelizer_bench::tasks;
use parallelizer_bench::workloads::{f64_data, fine_work};
use rayon::prelude::*;

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");
    for p in [2usize, 4] {
        let par = parallelizer::from_config(format!("threads:{p}").as_str()).expect("threads");
        let _entered = par.enter().expect("enter");
        g.bench_function(format!("threads:{p} run(empty)"), |b| {
            b.iter(|| par.run(tasks::empty, ()).expect("run"))
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(p)
            .build()
            .expect("pool");
        g.bench_function(format!("rayon:{p} broadcast"), |b| {
            b.iter(|| pool.broadcast(|_| ()))
        });
    }
    g.finish();
}

fn fine_map(c: &mut Criterion) {
    let n = 100_000;
    let mut g = c.benchmark_group("fine map 1e5");
    g.sample_size(20);
    g.bench_function("serial loop", |b| {
        b.iter_batched(
            || f64_data(n),
            |d| d.into_iter().map(fine_work).collect::<Vec<_>>(),
            criterion::BatchSize::LargeInput,
        )
    });
    for p in [2usize, 4] {
        let par = parallelizer::from_config(format!("threads:{p}").as_str()).expect("threads");
        let _entered = par.enter().expect("enter");
        g.bench_function(format!("threads:{p} map"), |b| {
            b.iter_batched(
                || f64_data(n),
                |d| black_box(par.map(fine_work, Some(d)).expect("map")),
                criterion::BatchSize::LargeInput,
            )
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(p)
            .build()
            .expect("pool");
        g.bench_function(format!("rayon:{p} par_iter"), |b| {
            b.iter_batched(
                || f64_data(n),
                |d| pool.install(|| d.into_par_iter().map(fine_work).collect::<Vec<_>>()),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, dispatch, fine_map);
criterion_main!(benches);
