//! `Config`: what a parallelizer is built from, and the `MODE[:NPROCS]` spec.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How to build a parallelizer: the mode (a backend name), the number of
/// ranks, the deadline of each `run`, the worker initializer and backend
/// options.
///
/// Deserializable, so a job file can hold it (`timeout` is in seconds):
///
/// ```
/// use parallelizer_core::Config;
/// use std::time::Duration;
/// let c = Config::new("threads").nprocs(4).timeout(Duration::from_secs(30));
/// assert_eq!(c.to_string(), "threads:4");
/// let parsed: Config = "processes:3".parse().unwrap();
/// assert_eq!(parsed.get_nprocs(), Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The backend name (`serial`, `threads`, `processes`, `mpi`, or a
    /// user backend registered with `#[parallelizer(name = ...)]`).
    pub mode: String,
    /// Number of ranks, main included; `None` lets the backend choose.
    #[serde(default)]
    pub nprocs: Option<usize>,
    /// The deadline of each `run` (and pool-style call), from its start:
    /// past it, `run` returns `Error::Timeout` naming the late rank. `None`
    /// waits forever (but a failed or dead rank still releases every
    /// waiter).
    #[serde(default, with = "secs")]
    pub timeout: Option<Duration>,
    /// Path (`module::name`) of a `#[parallelizer::task]` run once on every
    /// rank, main included, when the parallelizer starts (McUtils
    /// `initialization_function`); its arguments are set with
    /// [`Config::initializer_with`].
    #[serde(default)]
    pub initializer: Option<String>,
    /// The initializer's arguments, encoded (McUtils `initialization_args`
    /// and `initialization_kwargs`); `None` is `()`.
    #[serde(default)]
    initializer_args: Option<EncodedArgs>,
    /// The collectives every rank must issue, in order and cyclically
    /// (McUtils `CallerContract`); empty means unchecked.
    #[serde(default)]
    pub contract: Vec<String>,
    /// The progress bar of pool-style maps: `None` (the default) draws it
    /// on stderr when stderr is a terminal and the map runs for more than
    /// about a second; `Some(true)` always draws it, `Some(false)` never.
    /// A map's own [`Mapper::progress`](crate::Mapper::progress) overrides it.
    #[serde(default)]
    pub progress: Option<bool>,
    /// How much `print`, `main_print`, `worker_print` and `log` print
    /// (McUtils `Logger(log_level=...)`): a message at level `L` prints when
    /// `L <= log_level`. `None`: the environment variable
    /// `PARALLELIZER_LOG` (a level name or number), else
    /// [`LogLevel::NORMAL`].
    #[serde(default)]
    pub log_level: Option<LogLevel>,
    /// Backend-specific options, as strings.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl Config {
    /// A configuration of `mode` with everything else left to the backend.
    pub fn new(mode: impl Into<String>) -> Config {
        Config {
            mode: mode.into(),
            nprocs: None,
            timeout: None,
            initializer: None,
            initializer_args: None,
            contract: Vec::new(),
            progress: None,
            log_level: None,
            options: BTreeMap::new(),
        }
    }

    /// Sets the number of ranks, main included.
    pub fn nprocs(mut self, nprocs: usize) -> Config {
        self.nprocs = Some(nprocs);
        self
    }

    /// Sets the deadline of each `run` ([`Config::timeout`](Config#structfield.timeout)).
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the initializer: the path of a `#[parallelizer::task]` taking
    /// `()`, run once on every rank (main included) when the parallelizer
    /// starts. A path that names no registered task is an error when the
    /// parallelizer is built.
    pub fn initializer(mut self, task_path: impl Into<String>) -> Config {
        self.initializer = Some(task_path.into());
        self.initializer_args = None;
        self
    }

    /// Sets the initializer and the arguments it is called with (McUtils
    /// `initialization_args` / `initialization_kwargs`: pass a tuple or a
    /// struct). They are encoded now, so that worker processes receive them
    /// with the configuration; the task must take exactly their type.
    ///
    /// ```
    /// # use parallelizer_core::Config;
    /// let c = Config::new("threads").initializer_with("app::setup", ("scratch", 4u32)).unwrap();
    /// assert_eq!(c.initializer.as_deref(), Some("app::setup"));
    /// ```
    pub fn initializer_with<A: Serialize>(
        mut self,
        task_path: impl Into<String>,
        args: A,
    ) -> Result<Config> {
        let mut bytes = Vec::new();
        crate::msg::encode_serde(&args, &mut bytes)?;
        self.initializer = Some(task_path.into());
        self.initializer_args = Some(EncodedArgs {
            type_name: std::any::type_name::<A>().to_string(),
            bytes,
        });
        Ok(self)
    }

    /// The initializer's encoded arguments and their type name (`()` when
    /// none were given).
    pub(crate) fn initializer_args(&self) -> (&[u8], &str) {
        match &self.initializer_args {
            Some(a) => (&a.bytes, &a.type_name),
            None => (&[], "()"),
        }
    }

    /// Sets the collective contract (McUtils `CallerContract`).
    ///
    /// ```
    /// # use parallelizer_core::Config;
    /// let c = Config::new("threads").contract(["scatter", "gather"]);
    /// assert_eq!(c.contract, ["scatter", "gather"]);
    /// ```
    pub fn contract<S: Into<String>>(mut self, calls: impl IntoIterator<Item = S>) -> Config {
        self.contract = calls.into_iter().map(Into::into).collect();
        self
    }

    /// Forces the progress bar of maps on (`true`: drawn on stderr even
    /// when it is not a terminal) or off (`false`); see [`Config::progress`].
    ///
    /// ```
    /// # use parallelizer_core::Config;
    /// assert_eq!(Config::new("threads").progress(false).progress, Some(false));
    /// ```
    pub fn progress(mut self, on: bool) -> Config {
        self.progress = Some(on);
        self
    }

    /// Sets how much the ranks print (McUtils `log_level`); see
    /// [`Config::log_level`](Config#structfield.log_level).
    ///
    /// ```
    /// # use parallelizer_core::{Config, LogLevel};
    /// let quiet = Config::new("threads").log_level(LogLevel::QUIET);
    /// assert_eq!(quiet.verbosity(), LogLevel::QUIET);
    /// ```
    pub fn log_level(mut self, level: LogLevel) -> Config {
        self.log_level = Some(level);
        self
    }

    /// The level up to which messages print: [`Config::log_level`] if set,
    /// else `PARALLELIZER_LOG` (read once per process), else
    /// [`LogLevel::NORMAL`].
    pub fn verbosity(&self) -> LogLevel {
        self.log_level.unwrap_or_else(|| {
            static FROM_ENV: std::sync::OnceLock<LogLevel> = std::sync::OnceLock::new();
            *FROM_ENV.get_or_init(|| match std::env::var("PARALLELIZER_LOG") {
                Ok(text) if !text.trim().is_empty() => text.parse().unwrap_or_else(|e| {
                    eprintln!("parallelizer: PARALLELIZER_LOG={text}: {e}; using `normal`");
                    LogLevel::NORMAL
                }),
                _ => LogLevel::NORMAL,
            })
        })
    }

    /// Sets a backend-specific option.
    pub fn option(mut self, key: impl Into<String>, value: impl ToString) -> Config {
        self.options.insert(key.into(), value.to_string());
        self
    }

    /// The number of ranks asked for, if any.
    pub fn get_nprocs(&self) -> Option<usize> {
        self.nprocs
    }

    /// Reads a backend option and parses it, naming the option on failure.
    ///
    /// ```
    /// # use parallelizer_core::Config;
    /// let c = Config::new("mpi").option("threads_per_rank", 2);
    /// assert_eq!(c.parsed_option::<usize>("threads_per_rank").unwrap(), Some(2));
    /// assert!(Config::new("mpi").option("threads_per_rank", "x")
    ///     .parsed_option::<usize>("threads_per_rank").is_err());
    /// ```
    pub fn parsed_option<T: FromStr>(&self, key: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.options
            .get(key)
            .map(|v| {
                v.parse().map_err(|e| {
                    Error::Config(format!(
                        "option `{}` = `{}` of mode `{}`: {e}",
                        clip(key),
                        clip(v),
                        clip(&self.mode)
                    ))
                })
            })
            .transpose()
    }

    /// A reader of this configuration's backend options: each option read
    /// once, typed, with its default; [`Options::finish`] refuses the keys
    /// no one read. Backends parse their options with it when they are
    /// built, so a misspelled option is an error, not silently ignored.
    ///
    /// ```
    /// # use parallelizer_core::{Config, Error};
    /// # use std::time::Duration;
    /// let config = Config::new("processes").option("grace", 0.5).option("shm_treshold", 1);
    /// let mut o = config.options();
    /// assert_eq!(o.secs("grace", Duration::from_secs(2)).unwrap(), Duration::from_millis(500));
    /// assert_eq!(o.get("shm_threshold", 1usize << 20).unwrap(), 1 << 20);
    /// let err = o.finish().unwrap_err().to_string();
    /// assert!(err.contains("unknown option `shm_treshold`") && err.contains("grace, shm_threshold"), "{err}");
    /// ```
    pub fn options(&self) -> Options<'_> {
        Options {
            config: self,
            known: Vec::new(),
        }
    }

    /// `nprocs`, or `default` when unset, rejecting zero.
    pub fn nprocs_or(&self, default: usize) -> Result<usize> {
        match self.nprocs {
            Some(0) => Err(Error::Config(format!(
                "mode `{}` needs at least 1 rank (nprocs counts main), got 0",
                self.mode
            ))),
            Some(n) => Ok(n),
            None => Ok(default.max(1)),
        }
    }
}

/// A log level, McUtils' `LogLevel`: a message prints when its level is at
/// most the verbosity ([`Config::log_level`]). Levels are numbers, so any
/// value between the named ones works as in McUtils.
///
/// ```
/// use parallelizer_core::LogLevel;
/// assert!(LogLevel::NORMAL <= LogLevel::DEBUG);
/// assert_eq!("Debug".parse::<LogLevel>().unwrap(), LogLevel::DEBUG);
/// assert_eq!("60".parse::<LogLevel>().unwrap(), LogLevel(60));
/// assert_eq!(LogLevel::MORE_DEBUG.to_string(), "more_debug");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogLevel(pub u32);

impl LogLevel {
    /// Nothing prints (McUtils `Quiet`, 0).
    pub const QUIET: LogLevel = LogLevel(0);
    /// Warnings only (McUtils `Warnings`, 1).
    pub const WARNINGS: LogLevel = LogLevel(1);
    /// The level of `print` and the default verbosity (McUtils `Normal`, 10).
    pub const NORMAL: LogLevel = LogLevel(10);
    /// Debugging output (McUtils `Debug`, 50).
    pub const DEBUG: LogLevel = LogLevel(50);
    /// More debugging output (McUtils `MoreDebug`, 75).
    pub const MORE_DEBUG: LogLevel = LogLevel(75);
    /// Everything (McUtils `All`, 100).
    pub const ALL: LogLevel = LogLevel(100);
    /// A message level that never prints at any named verbosity (McUtils
    /// `Never`, 1000).
    pub const NEVER: LogLevel = LogLevel(1000);

    const NAMED: [(&'static str, LogLevel); 7] = [
        ("quiet", LogLevel::QUIET),
        ("warnings", LogLevel::WARNINGS),
        ("normal", LogLevel::NORMAL),
        ("debug", LogLevel::DEBUG),
        ("more_debug", LogLevel::MORE_DEBUG),
        ("all", LogLevel::ALL),
        ("never", LogLevel::NEVER),
    ];
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match LogLevel::NAMED.iter().find(|(_, l)| l == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A name in any case (`Debug`, `MoreDebug`, `more_debug`, `more-debug`)
/// or a number.
impl FromStr for LogLevel {
    type Err = Error;

    fn from_str(text: &str) -> Result<LogLevel> {
        let text = text.trim();
        if let Ok(n) = text.parse::<u32>() {
            return Ok(LogLevel(n));
        }
        let folded: String = text
            .chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        LogLevel::NAMED
            .iter()
            .find(|(name, _)| name.replace('_', "") == folded)
            .map(|(_, level)| *level)
            .ok_or_else(|| {
                let names: Vec<&str> = LogLevel::NAMED.iter().map(|(n, _)| *n).collect();
                Error::Config(format!(
                    "`{}` is not a log level; use a number or one of: {}",
                    clip(text),
                    names.join(", ")
                ))
            })
    }
}

/// Arguments encoded with the serde codec, and the name of their type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EncodedArgs {
    type_name: String,
    bytes: Vec<u8>,
}

/// A backend's reader of [`Config`]'s options; see [`Config::options`].
#[derive(Debug)]
pub struct Options<'a> {
    config: &'a Config,
    known: Vec<&'static str>,
}

impl Options<'_> {
    /// Option `key` parsed as a `T`, or `default` when it is not set; a
    /// value that does not parse is [`Error::Config`] naming the option.
    pub fn get<T: FromStr>(&mut self, key: &'static str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.known.push(key);
        Ok(self.config.parsed_option(key)?.unwrap_or(default))
    }

    /// Option `key` in seconds (a non-negative number), or `default`.
    pub fn secs(&mut self, key: &'static str, default: Duration) -> Result<Duration> {
        let secs: f64 = self.get(key, default.as_secs_f64())?;
        Duration::try_from_secs_f64(secs).map_err(|_| {
            Error::Config(format!(
                "option `{key}` of mode `{}` must be a non-negative number of seconds, got {secs}",
                self.config.mode
            ))
        })
    }

    /// An error naming every option that was set but that no one read, and
    /// the options this backend knows.
    pub fn finish(mut self) -> Result<()> {
        let unknown: Vec<&String> = self
            .config
            .options
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .collect();
        let Some(first) = unknown.first() else {
            return Ok(());
        };
        self.known.sort_unstable();
        self.known.dedup();
        let known = if self.known.is_empty() {
            "none".to_string()
        } else {
            self.known.join(", ")
        };
        Err(Error::Config(format!(
            "unknown option `{}` of mode `{}`{}; its options are: {known}",
            clip(first),
            self.config.mode,
            match unknown.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        )))
    }
}

/// `text` cut to a length an error message can quote.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.nprocs {
            Some(n) => write!(f, "{}:{n}", self.mode),
            None => f.write_str(&self.mode),
        }
    }
}

/// Parses `MODE[:NPROCS]`. Whether `MODE` exists is checked when the
/// parallelizer is built, where the list of known modes is at hand.
impl FromStr for Config {
    type Err = Error;

    fn from_str(text: &str) -> Result<Config> {
        let spec = text.trim();
        // Errors quote the spec, cut to a readable length.
        let quoted = clip(spec);
        const FORM: &str = "expected MODE or MODE:NPROCS, e.g. `threads:4`";
        if spec.is_empty() {
            return Err(Error::Config(format!("empty spec; {FORM}")));
        }
        let (mode, nprocs) = match spec.split_once(':') {
            None => (spec, None),
            Some((mode, n)) => {
                let n: usize = n.trim().parse().map_err(|_| {
                    Error::Config(format!(
                        "`{}` in `{quoted}` is not a number of ranks; {FORM}",
                        clip(n)
                    ))
                })?;
                if n == 0 {
                    return Err(Error::Config(format!(
                        "`{quoted}` asks for 0 ranks; NPROCS counts main and must be at least 1"
                    )));
                }
                (mode.trim(), Some(n))
            }
        };
        if mode.is_empty() {
            return Err(Error::Config(format!("`{quoted}` has no mode; {FORM}")));
        }
        let mut config = Config::new(mode);
        config.nprocs = nprocs;
        Ok(config)
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| {
                    serde::de::Error::custom(format!(
                        "timeout must be a non-negative number of seconds, got {s}"
                    ))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errors_say_what_is_accepted() {
        for bad in ["", "  ", "threads:0", "threads:abc", ":4", "threads:-1"] {
            let err = bad.parse::<Config>().unwrap_err().to_string();
            assert!(
                err.contains("MODE") || err.contains("at least 1"),
                "{bad:?}: {err}"
            );
        }
        assert_eq!("threads : 3".parse::<Config>().unwrap().nprocs, Some(3));
    }

    #[test]
    fn errors_quote_user_input_cut_to_a_readable_length() {
        let huge = format!("threads:{}", "9".repeat(1 << 20));
        let err = huge.parse::<Config>().unwrap_err().to_string();
        assert!(err.len() < 400, "{} bytes", err.len());
        assert!(err.contains("(1048576 bytes)"), "{err}");
        let err = crate::from_config(&*"x".repeat(1 << 20))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 400, "{} bytes", err.len());
    }

    #[test]
    fn every_backend_refuses_options_it_does_not_know() {
        for mode in ["serial", "threads"] {
            let config = Config::new(mode).option("timeuot", 3);
            let err = crate::from_config(&config).unwrap_err().to_string();
            assert!(err.contains("unknown option `timeuot`"), "{mode}: {err}");
        }
    }
}
