//! Peak memory of a large `broadcast_into` on processes: main's and each
//! worker's `VmHWM` (the largest resident set the process ever had), in a
//! process of its own so that nothing measured before counts.
//!
//! The suite runs `suite --memory BYTES --out FILE` (bounded in time, as
//! its other child runs), which starts `processes:4`, broadcasts BYTES of
//! f64 from main's buffer into every worker's, and writes the figures.

use std::path::Path;
use std::time::Instant;

use parallelizer::prelude::*;

use crate::plan::{Figures, save_figures};

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

/// The probe itself (`suite --memory BYTES --out FILE`): writes
/// `bcast:main`, `bcast:worker` (bytes), `bcast:secs` and `bcast:bytes`
/// to FILE ([`save_figures`]), or why there are none.
pub fn probe(bytes: usize, out: &Path) -> std::io::Result<()> {
    let result = from_config(format!("processes:{RANKS}").as_str())
        .and_then(|par| par.run(broadcast_peak, bytes / 8));
    let mut figs = Figures::new();
    match result {
        Ok(Some((peaks, secs))) if !peaks.contains(&0) => {
            let worker = peaks[1..].iter().copied().max().unwrap_or(0);
            figs.insert("bcast:main".into(), (peaks[0] as f64).into());
            figs.insert("bcast:worker".into(), (worker as f64).into());
            figs.insert("bcast:secs".into(), secs.into());
            figs.insert("bcast:bytes".into(), (bytes as f64).into());
        }
        other => {
            let why = match other {
                Err(e) => format!("failed: {e}"),
                _ => "failed: a rank did not receive the whole buffer".into(),
            };
            for key in ["bcast:main", "bcast:worker", "bcast:secs"] {
                figs.insert(key.into(), why.clone().into());
            }
        }
    }
    save_figures(out, &figs)
}
