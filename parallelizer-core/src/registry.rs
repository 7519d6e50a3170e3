//! The one process-global registry: backends by mode name (inventory),
//! named parallelizers (weak), the default and the stack of entered
//! parallelizers, and `current()`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::backend::serial::Serial;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::parallelizer::Parallelizer;

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
/// use parallelizer_core::{Config, FromConfig, backend::Threads};
/// let t = Threads::from_config(&Config::new("threads").nprocs(2)).unwrap();
/// ```
pub trait FromConfig: Parallelizer + Sized {
    /// Builds the parallelizer; a bad configuration is [`Error::Config`].
    fn from_config(config: &Config) -> Result<Self>;
}

/// The `build` fn of a [`BackendEntry`] for `T`.
#[doc(hidden)]
pub fn build_backend<T: FromConfig>(config: &Config) -> Result<Arc<dyn Parallelizer>> {
    Ok(new(T::from_config(config)?))
}

/// Puts a parallelizer in an `Arc` that `enter` and `run` can make the
/// default; how user code builds a backend it constructed itself.
///
/// ```
/// use parallelizer_core::{new, Config, FromConfig, backend::Serial};
/// let par = new(Serial::from_config(&Config::new("serial")).unwrap());
/// assert_eq!(par.nprocs(), 1);
/// ```
pub fn new<P: Parallelizer>(par: P) -> Arc<dyn Parallelizer> {
    let arc: Arc<dyn Parallelizer> = Arc::new(par);
    arc.core().bind(Arc::downgrade(&arc));
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

fn backend(mode: &str) -> Result<&'static BackendEntry> {
    match backends().get(mode) {
        Some(Ok(entry)) => Ok(entry),
        Some(Err(types)) => Err(Error::Config(format!(
            "mode `{mode}` is registered twice, by {types}; rename one of them"
        ))),
        None => Err(Error::UnknownParallelizer {
            name: mode.to_string(),
            known: modes(),
        }),
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
/// known ones (McUtils `from_config`, which also knows `serial` here).
///
/// ```
/// use parallelizer_core::{from_config, Config, Error};
/// assert_eq!(from_config("threads:4").unwrap().nprocs(), 4);
/// assert_eq!(from_config(&Config::new("serial")).unwrap().mode(), "serial");
/// assert!(matches!(from_config("threads:abc"), Err(Error::Config(_))));
/// ```
pub fn from_config(spec: impl Into<Spec>) -> Result<Arc<dyn Parallelizer>> {
    let config = match spec.into() {
        Spec::Config(c) => c,
        Spec::Text(text) => {
            if let Some(par) = registered(&text) {
                return Ok(par);
            }
            text.parse::<Config>()?
        }
    };
    (backend(&config.mode)?.build)(&config)
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

struct State {
    named: HashMap<String, Weak<dyn Parallelizer>>,
    base: Option<Arc<dyn Parallelizer>>,
    entered: Vec<(u64, Arc<dyn Parallelizer>)>,
    next_token: u64,
}

fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            Mutex::new(State {
                named: HashMap::new(),
                base: None,
                entered: Vec::new(),
                next_token: 0,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn stock_serial() -> Arc<dyn Parallelizer> {
    static SERIAL: OnceLock<Arc<dyn Parallelizer>> = OnceLock::new();
    SERIAL
        .get_or_init(|| new(Serial::new(Config::new("serial"))))
        .clone()
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
    if let Some(rank) = CURRENT.with(|c| c.borrow().last().cloned()) {
        return rank;
    }
    let st = state();
    st.entered
        .last()
        .map(|(_, p)| p.clone())
        .or_else(|| st.base.clone())
        .unwrap_or_else(stock_serial)
}

/// Makes `par` the default when nothing is entered.
pub fn set_default(par: Arc<dyn Parallelizer>) {
    state().base = Some(par);
}

/// Undoes [`set_default`]: the default is serial again when nothing is entered.
pub fn reset_default() {
    state().base = None;
}

pub(crate) fn push_entered(par: Arc<dyn Parallelizer>) -> u64 {
    let mut st = state();
    st.next_token += 1;
    let token = st.next_token;
    st.entered.push((token, par));
    token
}

pub(crate) fn pop_entered(token: u64) {
    // Guards may drop out of order; each removes its own entry.
    state().entered.retain(|(t, _)| *t != token);
}

pub(crate) fn register_named(name: &str, par: &Arc<dyn Parallelizer>) {
    state().named.insert(name.to_string(), Arc::downgrade(par));
}

fn registered(name: &str) -> Option<Arc<dyn Parallelizer>> {
    let mut st = state();
    match st.named.get(name).map(Weak::upgrade) {
        Some(Some(par)) => Some(par),
        Some(None) => {
            st.named.remove(name);
            None
        }
        None => None,
    }
}

/// The names of the registered parallelizers that are still alive.
pub fn registered_names() -> Vec<String> {
    let mut st = state();
    st.named.retain(|_, w| w.strong_count() > 0);
    let mut names: Vec<String> = st.named.keys().cloned().collect();
    names.sort();
    names
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
        Key::Name(name) => registered(&name)
            .or_else(|| {
                let config = name.parse::<Config>().ok()?;
                backend(&config.mode).ok()?;
                from_config(config).ok()
            })
            .unwrap_or_else(get_default),
    }
}

thread_local! {
    static CURRENT: RefCell<Vec<Arc<dyn Parallelizer>>> = const { RefCell::new(Vec::new()) };
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
/// one (rank handles share their parallelizer's configuration).
pub(crate) fn rank_of(par: &dyn Parallelizer) -> Option<Arc<dyn Parallelizer>> {
    CURRENT.with(|c| {
        c.borrow()
            .iter()
            .rev()
            .find(|r| Arc::ptr_eq(r.core().config_arc(), par.core().config_arc()) && r.in_region())
            .cloned()
    })
}

/// Makes `rank` what [`current`] returns on this thread until the guard drops.
/// Backends call this around every task they run.
pub fn set_current(rank: Arc<dyn Parallelizer>) -> CurrentGuard {
    CURRENT.with(|c| c.borrow_mut().push(rank));
    CurrentGuard(())
}

/// Restores the previous [`current`] on drop.
#[must_use = "current() is restored when the guard drops"]
pub struct CurrentGuard(());

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().pop());
    }
}
