//! The registry: backends by mode name (inventory), building parallelizers
//! from specs, the default, named lookup and `current()`. The state behind
//! the default and the names lives in [`runtime`](crate::runtime).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::names;
use crate::parallelizer::Parallelizer;
use crate::runtime;

/// A backend registered by mode name. Submitted by
/// `#[parallelizer(name = "...")]`; never written by hand.
#[derive(Debug)]
pub struct BackendEntry {
    /// The mode name, as used in specs (`threads:4`).
    pub name: &'static str,
    /// The Rust type, for duplicate-name messages.
    pub type_name: &'static str,
    /// Builds the backend from a configuration.
    pub build: fn(&Config) -> Result<Arc<dyn Parallelizer>>,
}

inventory::collect!(BackendEntry);

/// Builds a parallelizer from a configuration. Implemented by every backend
/// that `#[parallelizer(name = "...")]` registers.
///
/// ```
/// use parallelizer_core::{Config, backend::{FromConfig, Threads}};
/// let t = Threads::from_config(&Config::new("threads").nprocs(2)).unwrap();
/// ```
pub trait FromConfig: Parallelizer + Sized {
    /// Builds the parallelizer; a bad configuration is [`Error::Config`].
    fn from_config(config: &Config) -> Result<Self>;
}

/// The `build` fn of a [`BackendEntry`] for `T`.
#[doc(hidden)]
pub fn build_backend<T: FromConfig>(config: &Config) -> Result<Arc<dyn Parallelizer>> {
    if let Some(path) = &config.initializer {
        // A misspelled initializer fails here, on every backend, not at the
        // first enter (nor only where workers are processes).
        crate::task::check_initializer(path)?;
    }
    Ok(new(T::from_config(config)?))
}

/// Puts a parallelizer in an `Arc` that `enter` and `run` can make the
/// default; how user code builds a backend it constructed itself.
///
/// ```
/// use parallelizer_core::{Config, backend::{new, FromConfig, Serial}};
/// let par = new(Serial::from_config(&Config::new("serial")).unwrap());
/// assert_eq!(par.nprocs(), 1);
/// ```
pub fn new<P: Parallelizer>(par: P) -> Arc<dyn Parallelizer> {
    let arc: Arc<dyn Parallelizer> = Arc::new(par);
    arc.core().bind(Arc::downgrade(&arc), runtime::next_uid());
    arc
}

fn backends() -> &'static HashMap<&'static str, Result<&'static BackendEntry, String>> {
    static TABLE: OnceLock<HashMap<&'static str, Result<&'static BackendEntry, String>>> =
        OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: HashMap<&'static str, Result<&'static BackendEntry, String>> =
            HashMap::new();
        for entry in inventory::iter::<BackendEntry> {
            table
                .entry(entry.name)
                .and_modify(|slot| {
                    let first = match slot {
                        Ok(e) => e.type_name.to_string(),
                        Err(s) => s.clone(),
                    };
                    *slot = Err(format!("{first} and {}", entry.type_name));
                })
                .or_insert(Ok(entry));
        }
        table
    })
}

/// The mode names usable in specs, built-in and user-registered, sorted.
///
/// ```
/// let modes = parallelizer_core::modes();
/// assert!(modes.contains(&"serial".to_string()) && modes.contains(&"threads".to_string()));
/// ```
pub fn modes() -> Vec<String> {
    let mut names: Vec<String> = backends().keys().map(|s| s.to_string()).collect();
    names.sort();
    names
}

/// The backend `mode` names: its own name, in any case, or a McUtils alias
/// (`multiprocessing`).
fn backend(mode: &str) -> Result<&'static BackendEntry> {
    let names: Vec<&'static str> = backends().keys().copied().collect();
    let found = names::resolve(mode, &names);
    match found.and_then(|name| backends().get(name)) {
        Some(Ok(entry)) => Ok(entry),
        Some(Err(types)) => Err(Error::Config(format!(
            "mode `{mode}` is registered twice, by {types}; rename one of them"
        ))),
        // A built-in mode this build leaves out says why (Linux-only, a feature).
        None => {
            let canonical = crate::gated::canonical(mode).unwrap_or(mode);
            Err(
                crate::gated::left_out(canonical, &modes()).unwrap_or_else(|| {
                    Error::UnknownParallelizer {
                        name: crate::config::clip(mode),
                        known: modes(),
                    }
                }),
            )
        }
    }
}

/// What [`from_config`] accepts: a spec string, or a [`Config`].
#[derive(Debug, Clone)]
pub enum Spec {
    /// `MODE[:NPROCS]` or the name of a registered parallelizer.
    Text(String),
    /// A full configuration.
    Config(Config),
}

impl From<&str> for Spec {
    fn from(s: &str) -> Spec {
        Spec::Text(s.to_string())
    }
}
impl From<String> for Spec {
    fn from(s: String) -> Spec {
        Spec::Text(s)
    }
}
impl From<&String> for Spec {
    fn from(s: &String) -> Spec {
        Spec::Text(s.clone())
    }
}
impl From<Config> for Spec {
    fn from(c: Config) -> Spec {
        Spec::Config(c)
    }
}
impl From<&Config> for Spec {
    fn from(c: &Config) -> Spec {
        Spec::Config(c.clone())
    }
}

/// Builds a parallelizer from `MODE[:NPROCS]`, the name of a registered
/// parallelizer, or a [`Config`]. An unknown mode is an error listing the
/// known ones (McUtils `from_config`, which also knows `serial` here); a
/// built-in mode this build leaves out (`processes` off Linux, `mpi`
/// without the cargo feature) is [`Error::Config`] saying why.
///
/// ```
/// use parallelizer_core::{from_config, Config, Error};
/// assert_eq!(from_config("threads:4").unwrap().nprocs(), 4);
/// assert_eq!(from_config(&Config::new("serial")).unwrap().mode(), "serial");
/// assert!(matches!(from_config("threads:abc"), Err(Error::Config(_))));
/// ```
pub fn from_config(spec: impl Into<Spec>) -> Result<Arc<dyn Parallelizer>> {
    let mut config = match spec.into() {
        Spec::Config(c) => c,
        Spec::Text(text) => {
            if let Some(par) = runtime::named(&text) {
                return Ok(par);
            }
            text.parse::<Config>()?
        }
    };
    let entry = backend(&config.mode)?;
    if config.mode != entry.name {
        // `MPI`, `multiprocessing`: the parallelizer (and its workers) know
        // the mode by its own name.
        config.mode = entry.name.to_string();
    }
    (entry.build)(&config)
}

/// Builds from the `PARALLELIZER` environment variable (a spec), else
/// returns the default.
///
/// ```
/// // With PARALLELIZER unset this is the default (serial unless one is entered).
/// let par = parallelizer_core::from_env().unwrap();
/// # let _ = par;
/// ```
pub fn from_env() -> Result<Arc<dyn Parallelizer>> {
    match std::env::var("PARALLELIZER") {
        Ok(spec) if !spec.trim().is_empty() => from_config(spec.as_str()).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("PARALLELIZER={spec}: {m}")),
            other => other,
        }),
        _ => Ok(get_default()),
    }
}

/// The default parallelizer: inside a region, the calling rank's handle
/// (so library code that asks for "the active parallelizer" can take part in
/// collectives); outside, the innermost entered one, else the one given to
/// [`set_default`], else a stock serial parallelizer.
///
/// ```
/// let d = parallelizer_core::get_default();
/// assert_eq!(d.mode(), "serial");
/// ```
pub fn get_default() -> Arc<dyn Parallelizer> {
    runtime::current_rank()
        .or_else(runtime::entered_or_base)
        .unwrap_or_else(|| runtime::stock_default(stock_serial))
}

/// The stock default: `serial`, built through the registry like any mode.
fn stock_serial() -> Arc<dyn Parallelizer> {
    match from_config("serial") {
        Ok(par) => par,
        // The serial backend is part of this crate and always registered.
        Err(e) => unreachable!("the built-in serial backend is missing: {e}"),
    }
}

/// Makes `par` the default when nothing is entered.
pub fn set_default(par: Arc<dyn Parallelizer>) {
    runtime::set_base(Some(par));
}

/// Undoes [`set_default`]: the default is serial again when nothing is entered.
pub fn reset_default() {
    runtime::set_base(None);
}

/// The names of the registered parallelizers that are still alive.
pub fn registered_names() -> Vec<String> {
    runtime::named_alive()
}

/// What [`lookup`] accepts.
#[derive(Clone)]
pub enum Key {
    /// The default.
    Default,
    /// A registered name, or a mode spec.
    Name(String),
    /// An instance, returned as is.
    Instance(Arc<dyn Parallelizer>),
}

impl From<Option<&str>> for Key {
    fn from(k: Option<&str>) -> Key {
        k.map_or(Key::Default, |s| Key::Name(s.to_string()))
    }
}
impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Name(s.to_string())
    }
}
impl From<String> for Key {
    fn from(s: String) -> Key {
        Key::Name(s)
    }
}
impl From<Arc<dyn Parallelizer>> for Key {
    fn from(p: Arc<dyn Parallelizer>) -> Key {
        Key::Instance(p)
    }
}
impl From<&Arc<dyn Parallelizer>> for Key {
    fn from(p: &Arc<dyn Parallelizer>) -> Key {
        Key::Instance(p.clone())
    }
}

/// Finds a parallelizer the way McUtils' `Parallelizer.lookup` does: an
/// instance is returned as is; `None` gives the default; a registered name
/// gives that parallelizer; a mode spec (`threads:4`) builds a fresh one;
/// anything else falls back to the default. Use [`from_config`] to get an
/// error for an unknown name instead.
///
/// ```
/// use parallelizer_core::{lookup, from_config};
/// let par = from_config("threads:2").unwrap();
/// par.register("solver");
/// assert_eq!(lookup("solver").nprocs(), 2);
/// assert_eq!(lookup("no-such-name").mode(), "serial");
/// assert_eq!(lookup(None).mode(), "serial");
/// ```
pub fn lookup(key: impl Into<Key>) -> Arc<dyn Parallelizer> {
    match key.into() {
        Key::Instance(p) => p,
        Key::Default => get_default(),
        Key::Name(name) => {
            if let Some(par) = runtime::named(&name) {
                return par;
            }
            let built = name.parse::<Config>().and_then(|config| {
                backend(&config.mode)?;
                from_config(config)
            });
            built.unwrap_or_else(|why| {
                // McUtils falls back to the default silently; say so.
                let default = get_default();
                tracing::warn!(
                    name = %crate::config::clip(&name),
                    fallback = default.mode(),
                    "lookup(`{}`) found no parallelizer registered under that name and \
                     could not build one ({why}); returning the default ({})",
                    crate::config::clip(&name),
                    default.mode(),
                );
                default
            })
        }
    }
}

/// Inside a region, the calling rank's handle; outside, the default.
///
/// ```
/// use parallelizer_core::{current, from_config, Parallelizer};
/// let par = from_config("threads:2").unwrap();
/// let ids = par.run(|_: &dyn Parallelizer, ()| current().id(), ()).unwrap();
/// assert_eq!(ids, 0); // main's result
/// ```
pub fn current() -> Arc<dyn Parallelizer> {
    get_default()
}

/// This thread's rank handle in a region of `par`, if this thread is running
/// one.
pub(crate) fn rank_of(par: &dyn Parallelizer) -> Option<Arc<dyn Parallelizer>> {
    runtime::rank_in(par.core().uid())
}
