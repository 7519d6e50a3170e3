//! Code that runs only on main or only on workers (McUtils
//! `main_restricted`, `worker_restricted`, `InMainProcess`, `InWorkerProcess`).

use crate::parallelizer::Parallelizer;

/// The result of a guarded fn: its value where it ran, else a marker of
/// where it did not. Not `#[must_use]`: calling a guarded fn for its side
/// effects is the common case. Serializable, so ranks can gather what
/// their guarded calls returned.
///
/// ```
/// use parallelizer_core::{get_default, main_restricted, worker_restricted, Restricted};
/// let par = get_default(); // serial: always main
/// assert_eq!(main_restricted(&*par, || 1), Restricted::Ran(1));
/// assert_eq!(worker_restricted(&*par, || 1), Restricted::InMainProcess);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Restricted<T> {
    /// The fn ran here and returned this.
    Ran(T),
    /// A worker-only fn was called on main.
    InMainProcess,
    /// A main-only fn was called on a worker.
    InWorkerProcess,
}

impl<T> Restricted<T> {
    /// The value, if the fn ran.
    pub fn ran(self) -> Option<T> {
        match self {
            Restricted::Ran(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the fn ran.
    pub fn is_ran(&self) -> bool {
        matches!(self, Restricted::Ran(_))
    }

    /// The value; panics with where the fn did not run.
    ///
    /// ```should_panic
    /// parallelizer_core::Restricted::<()>::InWorkerProcess.unwrap();
    /// ```
    #[track_caller]
    pub fn unwrap(self) -> T {
        self.expect("the restricted fn did not run here")
    }

    /// The value; panics with `msg` and where the fn did not run.
    #[track_caller]
    pub fn expect(self, msg: &str) -> T {
        match self {
            Restricted::Ran(v) => v,
            Restricted::InMainProcess => panic!("{msg}: called on main (InMainProcess)"),
            Restricted::InWorkerProcess => panic!("{msg}: called on a worker (InWorkerProcess)"),
        }
    }

    /// Maps the value, keeping the marker.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Restricted<U> {
        match self {
            Restricted::Ran(v) => Restricted::Ran(f(v)),
            Restricted::InMainProcess => Restricted::InMainProcess,
            Restricted::InWorkerProcess => Restricted::InWorkerProcess,
        }
    }
}

/// Runs `f` only on main; on a worker returns [`Restricted::InWorkerProcess`].
/// `#[main_restricted]` expands to this.
pub fn main_restricted<T>(par: &dyn Parallelizer, f: impl FnOnce() -> T) -> Restricted<T> {
    if par.on_main() {
        Restricted::Ran(f())
    } else {
        Restricted::InWorkerProcess
    }
}

/// Runs `f` only on workers; on main returns [`Restricted::InMainProcess`].
/// `#[worker_restricted]` expands to this.
pub fn worker_restricted<T>(par: &dyn Parallelizer, f: impl FnOnce() -> T) -> Restricted<T> {
    if par.on_main() {
        Restricted::InMainProcess
    } else {
        Restricted::Ran(f())
    }
}

/// Anything the guards can read a rank from: `dyn Parallelizer`, a concrete
/// backend, an `Arc` of either. Call it with method syntax so references
/// auto-deref: `par.as_parallelizer()`.
///
/// ```
/// use parallelizer_core::{AsParallelizer, get_default};
/// let par = get_default();
/// assert!(par.as_parallelizer().on_main());
/// ```
pub trait AsParallelizer {
    /// The parallelizer to ask `on_main()`.
    fn as_parallelizer(&self) -> &dyn Parallelizer;
}

impl<P: Parallelizer> AsParallelizer for P {
    fn as_parallelizer(&self) -> &dyn Parallelizer {
        self
    }
}
impl AsParallelizer for dyn Parallelizer {
    fn as_parallelizer(&self) -> &dyn Parallelizer {
        self
    }
}
impl<P: AsParallelizer + ?Sized> AsParallelizer for std::sync::Arc<P> {
    fn as_parallelizer(&self) -> &dyn Parallelizer {
        (**self).as_parallelizer()
    }
}
