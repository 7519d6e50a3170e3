//! Only the suite's point-to-point rows on processes (2 ranks, or
//! `--ranks N`) and their memcpy baseline, and with `--into` its `_into`
//! collectives, for a quick before/after of a transport change
//! (`--no-lend`: with the option `lend` off). The full suite, `bash
//! benches/run.sh`, writes BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p parallelizer-bench --bin p2p [-- --quick] [--into] [--no-lend] [--ranks N]
//! ```

use parallelizer::Config;
use parallelizer_bench::plan::{self, Figures, Plan, arg_value};
use parallelizer_bench::tasks::Op;
use parallelizer_bench::{data, ours};

#[parallelizer::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let quick = flag("--quick");
    let ranks = arg_value(&args, "--ranks").map_or(2, |r| r.parse().expect("--ranks N"));
    let plan = Plan::new(quick);
    let log = |msg: &str| eprintln!("{msg}");
    let mut memcpy = Figures::new();
    ours::memcpy_baselines(&plan, &mut memcpy);
    let config = Config::new("processes")
        .nprocs(ranks)
        .option("lend", !flag("--no-lend"));
    let par = match parallelizer::from_config(&config) {
        Ok(par) => par,
        Err(e) => {
            eprintln!("p2p: processes:{ranks}: {e}");
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
    println!(
        "| bytes | one way | memcpy | GB/s | % of memcpy | `_into` one way | `_into` % of memcpy | CPUs' line round trip after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let secs = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_f64);
    for &bytes in &plan.pp_bytes {
        let copy = secs(memcpy.get(&plan::k_pp(bytes))).unwrap_or(f64::NAN);
        let ours = secs(figs.get(&plan::k_pp(bytes))).unwrap_or(f64::NAN);
        let into = secs(figs.get(&plan::k_pp_into(bytes))).unwrap_or(f64::NAN);
        let rtt = secs(figs.get(&plan::k_line_rtt(bytes))).unwrap_or(f64::NAN);
        println!(
            "| {bytes} | {:.2} us | {:.2} us | {:.2} | {:.0} % | {:.2} us | {:.0} % | {:.0} ns |",
            ours * 1e6,
            copy * 1e6,
            bytes as f64 / ours / 1e9,
            100.0 * copy / ours,
            into * 1e6,
            100.0 * copy / into,
            rtt * 1e9
        );
    }
    if flag("--into") {
        let mut figs = Figures::new();
        data::measure(&par, &plan, &mut figs);
        println!("\n| op | n | processes:{ranks} `_into` |");
        println!("|---|---|---|");
        for op in Op::ALL {
            for &n in &plan.f64_ns {
                let t = figs.get(&data::k_into(op, n, ranks));
                match t.and_then(serde_json::Value::as_f64) {
                    Some(t) => println!("| {op:?} | {n} | {:.1} us |", t * 1e6),
                    None => println!("| {op:?} | {n} | {t:?} |"),
                }
            }
        }
        for n in data::ALLREDUCE_NS {
            let t = figs.get(&data::k_allreduce(n, ranks));
            match t.and_then(serde_json::Value::as_f64) {
                Some(t) => println!("| allreduce | {n} | {:.1} us |", t * 1e6),
                None => println!("| allreduce | {n} | {t:?} |"),
            }
        }
    }
}
