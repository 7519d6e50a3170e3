//! The backend's options (`Config::option`), parsed once per process.

use std::time::Duration;

use crate::config::Config;
use crate::error::Result;

use super::frame::DEFAULT_MAX_FRAME;

/// `shm_threshold`, `max_frame`, `start_timeout`, `grace`, `prefix_output`,
/// `rings`, `lend`: see the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub(super) struct Opts {
    shm_threshold: usize,
    max_frame: u64,
    start_timeout: Duration,
    grace: Duration,
    prefix_output: bool,
    rings: bool,
    lend: bool,
}

impl Opts {
    pub(super) fn from_config(config: &Config) -> Result<Opts> {
        let mut o = config.options();
        let opts = Opts {
            shm_threshold: o.get("shm_threshold", 1 << 20)?,
            max_frame: o.get("max_frame", DEFAULT_MAX_FRAME)?,
            start_timeout: o.secs("start_timeout", Duration::from_secs(60))?,
            grace: o.secs("grace", Duration::from_secs(2))?,
            prefix_output: o.get("prefix_output", true)?,
            rings: o.get("rings", true)?,
            lend: o.get("lend", true)?,
        };
        o.finish()?;
        Ok(opts)
    }

    /// How a rank's [`Net`](super::port::Net) moves large payloads:
    /// broadcasts of at least this many bytes through a memfd, and whether
    /// large plain buffers are lent to the ranks that read them.
    pub(super) fn transfer(&self) -> (usize, bool) {
        (self.shm_threshold, self.lend)
    }

    /// The largest in-band frame accepted.
    pub(super) fn max_frame(&self) -> u64 {
        self.max_frame
    }

    /// How long main waits for the workers to join.
    pub(super) fn start_timeout(&self) -> Duration {
        self.start_timeout
    }

    /// How long the other ranks get to wind down after a failure.
    pub(super) fn grace(&self) -> Duration {
        self.grace
    }

    /// Whether worker output is relayed with a `[rank N] ` prefix.
    pub(super) fn prefix_output(&self) -> bool {
        self.prefix_output
    }

    /// Whether ranks exchange frames through shared-memory rings (else
    /// through their sockets only).
    pub(super) fn rings(&self) -> bool {
        self.rings
    }
}
