//! The backend's options (`Config::option`), parsed once per process.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};

use super::frame::DEFAULT_MAX_FRAME;

/// `shm_threshold`, `max_frame`, `start_timeout`, `grace`, `prefix_output`:
/// see the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub(super) struct Opts {
    shm_threshold: usize,
    max_frame: u64,
    start_timeout: Duration,
    grace: Duration,
    prefix_output: bool,
}

impl Opts {
    pub(super) fn from_config(config: &Config) -> Result<Opts> {
        let secs = |key: &str, default: f64| -> Result<Duration> {
            let s = config.parsed_option::<f64>(key)?.unwrap_or(default);
            Duration::try_from_secs_f64(s)
                .map_err(|_| Error::Config(format!("option `{key}` must be non-negative seconds")))
        };
        Ok(Opts {
            shm_threshold: config.parsed_option("shm_threshold")?.unwrap_or(1 << 20),
            max_frame: config
                .parsed_option("max_frame")?
                .unwrap_or(DEFAULT_MAX_FRAME),
            start_timeout: secs("start_timeout", 60.0)?,
            grace: secs("grace", 2.0)?,
            prefix_output: config.parsed_option("prefix_output")?.unwrap_or(true),
        })
    }

    /// Broadcasts of at least this many bytes go through a memfd.
    pub(super) fn shm_threshold(&self) -> usize {
        self.shm_threshold
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
}
