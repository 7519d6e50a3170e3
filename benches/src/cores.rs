//! How far apart the machine's first two CPUs are: the round trip of one
//! cache line between two spinning threads.
//!
//! On the 2-vCPU VMs these benchmarks run on, that round trip is either
//! about 60–170 ns or about 400–650 ns, and it switches within seconds: the
//! host keeps the two vCPUs near each other (a shared cache) or puts them
//! far apart. The single-core memcpy baseline does not depend on it; a
//! transport between two ranks does. In one `p2p` run, probed right before
//! and after each row, a 1 MiB ping-pong took 285 µs one way with the CPUs
//! far apart (392 and 386 ns) against 79–103 µs in the rows probed near.
//! The suite records the probe after each size's ping-pong rows so that a
//! reader can tell a slow transport from a far placement.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Round trips per probe: about 10–130 ms.
const TRIPS: u64 = 200_000;

/// One cache line, alone on its line.
#[repr(align(128))]
#[derive(Default)]
struct Line(AtomicU64);

/// Seconds per round trip of a cache line between two threads that spin
/// on it (the median of three probes); `None` on a machine with one CPU,
/// where the two threads would take turns instead.
pub fn line_round_trip() -> Option<f64> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    let mut probes: Vec<f64> = (0..3).map(|_| probe()).collect();
    probes.sort_by(f64::total_cmp);
    Some(probes[1])
}

fn probe() -> f64 {
    let (ping, pong) = (Arc::new(Line::default()), Arc::new(Line::default()));
    let peer = {
        let (ping, pong) = (ping.clone(), pong.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            loop {
                let seen = wait_past(&ping, last);
                if seen == STOP {
                    return;
                }
                pong.0.store(seen, Ordering::Release);
                last = seen;
            }
        })
    };
    let start = Instant::now();
    let mut trips = 0;
    while trips < TRIPS && (trips % 1024 != 0 || start.elapsed() < LONGEST) {
        trips += 1;
        ping.0.store(trips, Ordering::Release);
        wait_past(&pong, trips - 1);
    }
    let took = start.elapsed().as_secs_f64();
    ping.0.store(STOP, Ordering::Release);
    peer.join().expect("the probe's peer thread does not panic");
    took / trips as f64
}

/// Tells the peer thread to stop.
const STOP: u64 = u64::MAX;

/// A probe ends after this long even if it made fewer round trips (a busy
/// machine that puts both threads on one CPU).
const LONGEST: Duration = Duration::from_millis(500);

/// Spins until `line` holds something other than `last`, and returns it;
/// yields the CPU after a while (the other thread may need it).
fn wait_past(line: &Line, last: u64) -> u64 {
    let mut spins = 0u32;
    loop {
        let v = line.0.load(Ordering::Acquire);
        if v != last {
            return v;
        }
        if spins >= 4096 {
            std::thread::yield_now();
        } else {
            spins += 1;
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_round_trip_is_measured_within_the_probe_bound() {
        let rtt = super::line_round_trip();
        if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
            // Three probes of at most LONGEST each, at least one trip each.
            let rtt = rtt.expect("a machine with two CPUs is probed");
            assert!(rtt > 0.0 && rtt < 0.6, "{rtt}");
        } else {
            assert_eq!(rtt, None);
        }
    }
}
