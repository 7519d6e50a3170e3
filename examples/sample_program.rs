//! McUtils docs example D3, `SampleProgram`: an object that finds its
//! parallelizer with `lookup`, and splits its work into a main-only and a
//! worker-only part with the guard attributes. Squares travel with the
//! plain-data collectives and come back concatenated, so the result is the
//! original data (McUtils broke here once gather stopped concatenating).
//!
//! `cargo run --example sample_program -- threads:3` (any spec; default
//! `threads:3`).

use std::sync::Arc;

use parallelizer::prelude::*;
use parallelizer::{Key, worker_restricted};

struct SampleProgram {
    nvals: usize,
    par: Arc<dyn Parallelizer>,
}

impl SampleProgram {
    fn new(nvals: usize, par: impl Into<Key>) -> SampleProgram {
        SampleProgram {
            nvals,
            par: lookup(par),
        }
    }

    fn run(&self) -> Result<Vec<f64>> {
        println!("Running with {:?}", self.par);
        Ok(self
            .par
            .run(run_par, self.nvals)?
            .expect("main gets the result"))
    }
}

/// The SPMD body: workers square their chunk, main drives and checks.
#[parallelizer::task]
fn run_par(par: &dyn Parallelizer, nvals: usize) -> Option<Vec<f64>> {
    run_worker(par);
    run_main(par, nvals).ran()
}

#[worker_restricted]
fn run_worker(par: &dyn Parallelizer) {
    let chunk = par.scatter_pod::<f64>(None).unwrap();
    par.gather_pod(chunk.iter().map(|x| x * x).collect())
        .unwrap();
}

#[main_restricted]
fn run_main(par: &dyn Parallelizer, nvals: usize) -> Vec<f64> {
    let data = random_data(nvals);
    let chunk = par.scatter_pod(Some(data.clone())).unwrap();
    let squares = par
        .gather_pod(chunk.iter().map(|x| x * x).collect())
        .unwrap()
        .unwrap();
    let roots: Vec<f64> = squares.iter().map(|x| x.sqrt()).collect();
    assert!(roots.iter().zip(&data).all(|(a, b)| (a - b).abs() < 1e-12));
    roots
}

/// Uniform numbers in [0, 1) from a fixed seed (xorshift64*).
fn random_data(n: usize) -> Vec<f64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[parallelizer::main]
fn main() -> Result<()> {
    let spec = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "threads:3".into());
    let out = SampleProgram::new(10, spec.as_str()).run()?;
    println!("{} values, equal to the input data: {out:.3?}", out.len());
    Ok(())
}
