//! Only the suite's point-to-point rows on processes:2 and their memcpy
//! baseline, for a quick before/after of a transport change (the full
//! suite, `bash benches/run.sh`, writes BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p parallelizer-bench --bin p2p [-- --quick]
//! ```

use parallelizer_bench::ours;
use parallelizer_bench::plan::{self, Figures, Plan};

#[parallelizer::main]
fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = Plan::new(quick);
    let log = |msg: &str| eprintln!("{msg}");
    let mut memcpy = Figures::new();
    ours::memcpy_baselines(&plan, &mut memcpy);
    let par = match parallelizer::from_config("processes:2") {
        Ok(par) => par,
        Err(e) => {
            eprintln!("p2p: processes:2: {e}");
            std::process::exit(1);
        }
    };
    // One pool for every row, as in the suite.
    let _entered = match par.enter() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("p2p: enter: {e}");
            std::process::exit(1);
        }
    };
    let mut figs = Figures::new();
    ours::measure_pingpong(&par, &plan, &mut figs, &log);
    println!("| bytes | processes:2 one way | memcpy | GB/s | % of memcpy |");
    println!("|---|---|---|---|---|");
    for &bytes in &plan.pp_bytes {
        let key = plan::k_pp(bytes);
        let (ours, copy) = (figs.get(&key), memcpy.get(&key));
        let secs = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_f64);
        match (secs(ours), secs(copy)) {
            (Some(t), Some(c)) => println!(
                "| {bytes} | {:.2} us | {:.2} us | {:.2} | {:.0} % |",
                t * 1e6,
                c * 1e6,
                bytes as f64 / t / 1e9,
                100.0 * c / t
            ),
            _ => println!("| {bytes} | {ours:?} | {copy:?} | | |"),
        }
    }
}
