//! How a rank waits on MPI without blocking inside it (polled requests and
//! probes): it spins for a moment, then yields its core, then sleeps in
//! short naps, so that a reply in flight is seen at once and an idle rank
//! leaves the cores to working ones.
//!
//! The spin matters: a `sched_yield` costs about as much as a message on
//! these machines. Polling with yields from the first miss, an empty
//! region's dispatch took 1.58 µs on 2 ranks and 17.7 µs on 4 ranks
//! sharing 2 cores; spinning first, 1.26 and 5.5–8 µs. Spinning is what
//! MPI's own blocking calls do for as long as they wait.

use std::time::{Duration, Instant};

use crate::error::Result;

/// How long a waiting rank spins before it starts yielding its core.
const SPIN: Duration = Duration::from_micros(20);

/// Where a wait is between two polls: spinning, yielding (a number of
/// times), then napping.
pub(super) struct Backoff {
    start: Instant,
    /// Pauses so far while spinning (the clock is read on every 16th).
    spins: u32,
    /// Whether the spin is over.
    spun: bool,
    yields: u32,
    max_yields: u32,
    nap: Duration,
}

impl Backoff {
    /// A wait that spins for [`SPIN`], then yields up to `max_yields`
    /// times, then sleeps `nap` between polls.
    pub(super) fn new(max_yields: u32, nap: Duration) -> Backoff {
        Backoff {
            start: Instant::now(),
            spins: 0,
            spun: false,
            yields: 0,
            max_yields,
            nap,
        }
    }

    /// Waits a little before the next poll.
    pub(super) fn pause(&mut self) {
        if crate::runtime::computing_alongside() {
            // Another thread of this rank computes: leave it the core.
            std::thread::sleep(self.nap);
        } else if self.spinning() {
            std::hint::spin_loop();
        } else if self.yields < self.max_yields {
            self.yields += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(self.nap);
        }
    }

    /// Whether the wait still spins. The clock is read on every 16th
    /// pause only: a read (`clock_gettime`, about 25 ns on these VMs) falls
    /// between a message's arrival and the poll that sees it as often as a
    /// poll does, and an empty region waits for two messages.
    fn spinning(&mut self) -> bool {
        if !self.spun {
            self.spins = self.spins.wrapping_add(1);
            self.spun = self.spins.is_multiple_of(16) && self.start.elapsed() >= SPIN;
        }
        !self.spun
    }
}

/// Polls `ready` until it says yes (`Ok(true)`) or `deadline` passes
/// (`Ok(false)`), waiting between polls as a [`Backoff`] does.
pub(super) fn poll_until(
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let mut backoff = Backoff::new(2000, Duration::from_micros(200));
    loop {
        if ready()? {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        backoff.pause();
    }
}
