//! Peak memory of a large `broadcast_into` on processes: main's and each
//! worker's `VmHWM` (the largest resident set the process ever had), in a
//! process of its own so that nothing measured before counts.
//!
//! The suite runs `suite --memory BYTES`, which starts `processes:4`,
//! broadcasts BYTES of f64 from main's buffer into every worker's, and
//! prints one line: `memory MAIN_HWM LARGEST_WORKER_HWM SECONDS`.

use std::time::Instant;

use parallelizer::prelude::*;

use crate::plan::Figures;

/// The flag that makes the suite binary run the probe.
pub const MEMORY_FLAG: &str = "--memory";

/// Ranks of the probe.
pub const RANKS: usize = 4;

/// This process's `VmHWM` in bytes (0 where `/proc` does not say).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Every rank: the broadcast into its own buffer, checked; main gets each
/// rank's peak and the broadcast's time.
#[parallelizer::task]
fn broadcast_peak(par: &dyn Parallelizer, n: usize) -> Option<(Vec<u64>, f64)> {
    let mut buf = vec![0f64; n];
    if par.on_main() {
        for (i, x) in buf.iter_mut().enumerate() {
            *x = i as f64;
        }
    }
    par.wait().ok()?;
    let start = Instant::now();
    par.broadcast_into(&mut buf).ok()?;
    let secs = start.elapsed().as_secs_f64();
    let whole = buf.iter().enumerate().all(|(i, &x)| x == i as f64);
    let peak = if whole { peak_rss() } else { 0 };
    drop(buf);
    par.gather(peak).ok()?.map(|peaks| (peaks, secs))
}

/// The probe itself (`suite --memory BYTES`): prints its line, or why not.
pub fn probe(bytes: usize) {
    let result = from_config(format!("processes:{RANKS}").as_str())
        .and_then(|par| par.run(broadcast_peak, bytes / 8));
    match result {
        Ok(Some((peaks, secs))) if !peaks.contains(&0) => {
            let worker = peaks[1..].iter().copied().max().unwrap_or(0);
            println!("memory {} {worker} {secs}", peaks[0]);
        }
        Ok(_) => println!("memory-failed a rank did not receive the whole buffer"),
        Err(e) => println!("memory-failed {e}"),
    }
}

/// Runs the probe in a fresh copy of this executable and records
/// `bcast:main`, `bcast:worker` (bytes), `bcast:secs` and `bcast:bytes`.
pub fn measure(bytes: usize, figs: &mut Figures) {
    let run = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .args([MEMORY_FLAG, &bytes.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
    });
    let text = match run {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("memory-failed {e}"),
    };
    let line = text
        .lines()
        .find(|l| l.starts_with("memory"))
        .unwrap_or("memory-failed no output");
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields[..] {
        ["memory", main, worker, secs] => {
            for (key, v) in [
                ("bcast:main", main),
                ("bcast:worker", worker),
                ("bcast:secs", secs),
            ] {
                if let Ok(v) = v.parse::<f64>() {
                    figs.insert(key.into(), v.into());
                }
            }
            figs.insert("bcast:bytes".into(), (bytes as f64).into());
        }
        _ => {
            let why = line.trim_start_matches("memory-failed").trim().to_string();
            for key in ["bcast:main", "bcast:worker", "bcast:secs"] {
                figs.insert(key.into(), why.clone().into());
            }
        }
    }
}
