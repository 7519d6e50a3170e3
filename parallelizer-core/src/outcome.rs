//! How one rank's part of a region ends, and how main turns the endings of
//! every rank into one result — the region protocol's catch, first failure
//! and settle, written once for every backend (what `JobResult` and
//! `unwind` are to rayon-core's jobs).
//!
//! A backend runs each rank's task through [`Outcome::catch`], records the
//! first real failure of the region in a [`FirstFailure`] (on main, or
//! wherever the ranks can see it), releases the other ranks (its transport's
//! business; the generic `link` layer does it for message-passing backends)
//! and finally calls [`settle`] on main.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The payload of a caught panic.
pub type Panic = Box<dyn Any + Send>;

/// How one rank's part of a region ended.
///
/// ```
/// use parallelizer_core::{Error, backend::Outcome};
/// let ok = Outcome::catch(|| Ok(7));
/// assert!(matches!(ok, Outcome::Done(7)));
/// let boom: Outcome<()> = Outcome::catch(|| panic!("boom"));
/// assert!(matches!(boom.failure(3), Some(Error::WorkerPanicked { rank: 3, ref message }) if message == "boom"));
/// ```
pub enum Outcome<T> {
    /// The task returned its value.
    Done(T),
    /// The task, or the framework under it, returned an error.
    Failed(Error),
    /// The task panicked; the payload can be resumed on main.
    Panicked(Panic),
}

impl<T> Outcome<T> {
    /// Runs `f`, catching a panic (rayon's `halt_unwinding`).
    pub fn catch(f: impl FnOnce() -> Result<T>) -> Outcome<T> {
        match halt_unwinding(f) {
            Ok(Ok(v)) => Outcome::Done(v),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(panic) => Outcome::Panicked(panic),
        }
    }

    /// What this ending tells the other ranks, if it is a failure: the
    /// error itself, or [`Error::WorkerPanicked`] naming `rank` for a panic.
    pub fn failure(&self, rank: usize) -> Option<Error> {
        match self {
            Outcome::Done(_) => None,
            Outcome::Failed(e) => Some(e.clone()),
            Outcome::Panicked(p) => Some(Error::WorkerPanicked {
                rank,
                message: panic_message(&**p),
            }),
        }
    }

    /// Whether this is a failure of this rank's own, not a release because
    /// another rank failed first ([`Error::is_secondary`]).
    pub fn is_own_failure(&self) -> bool {
        match self {
            Outcome::Done(_) => false,
            Outcome::Failed(e) => !e.is_secondary(),
            Outcome::Panicked(_) => true,
        }
    }

    /// The value, or the failure as an error (a panic becomes
    /// [`Error::WorkerPanicked`] naming `rank`; it is not resumed).
    pub fn into_result(self, rank: usize) -> Result<T> {
        match self {
            Outcome::Done(v) => Ok(v),
            Outcome::Failed(e) => Err(e),
            Outcome::Panicked(p) => Err(Error::WorkerPanicked {
                rank,
                message: panic_message(&*p),
            }),
        }
    }

    /// Maps the value, keeping a failure.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(v) => Outcome::Done(f(v)),
            Outcome::Failed(e) => Outcome::Failed(e),
            Outcome::Panicked(p) => Outcome::Panicked(p),
        }
    }
}

impl<T> std::fmt::Debug for Outcome<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Done(_) => f.write_str("Done(..)"),
            Outcome::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            Outcome::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(&**p))
                .finish(),
        }
    }
}

/// Runs `f` and returns its value, or the payload of its panic.
pub fn halt_unwinding<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
}

/// Continues a panic caught by [`halt_unwinding`] on this thread.
pub fn resume_unwinding(payload: Panic) -> ! {
    resume_unwind(payload)
}

/// The message of a panic payload (`panic!` with a literal or a format).
///
/// ```
/// # use parallelizer_core::backend::{halt_unwinding, panic_message};
/// let p = halt_unwinding(|| panic!("rank {} failed", 2)).unwrap_err();
/// assert_eq!(panic_message(&*p), "rank 2 failed");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string())
}

/// The first real failure of a region: which rank failed and how.
///
/// Releases ([`Error::Aborted`]) are never recorded, and the first rank to
/// record wins, so the error main reports is the cause, not a symptom.
///
/// ```
/// use parallelizer_core::{Error, backend::FirstFailure};
/// let first = FirstFailure::default();
/// assert!(!first.record(1, Error::Aborted { by_rank: 2 }));
/// assert!(first.record(2, Error::TaskFailed { rank: 2, message: "bad".into() }));
/// assert!(!first.record(3, Error::TaskFailed { rank: 3, message: "later".into() }));
/// assert_eq!(first.rank(), Some(2));
/// ```
#[derive(Debug, Default)]
pub struct FirstFailure {
    cell: OnceLock<(usize, Error)>,
}

impl FirstFailure {
    /// Records `error` of `rank` if it is the region's first real failure;
    /// returns whether it was.
    pub fn record(&self, rank: usize, error: Error) -> bool {
        !error.is_secondary() && self.cell.set((rank, error)).is_ok()
    }

    /// The rank that failed first, if one did.
    pub fn rank(&self) -> Option<usize> {
        self.cell.get().map(|(rank, _)| *rank)
    }

    /// The first failure, if there was one.
    pub fn get(&self) -> Option<(usize, &Error)> {
        self.cell.get().map(|(rank, e)| (*rank, e))
    }

    /// The first failure, by value.
    pub fn into_inner(self) -> Option<(usize, Error)> {
        self.cell.into_inner()
    }
}

/// Main's result of a region, from main's own ending and the region's first
/// failure (rayon's `into_return_value`, for a whole region):
///
/// - nobody failed: main's value;
/// - another rank failed first: that rank's error, also when main failed or
///   panicked because of it (say, an `unwrap` of [`Error::Aborted`]);
/// - main failed first, or alone: main's error, and main's own panic resumes.
///
/// ```
/// use parallelizer_core::{Error, backend::{Outcome, settle}};
/// let failed = Error::WorkerPanicked { rank: 2, message: "boom".into() };
/// assert_eq!(settle(Outcome::Done(1), None).unwrap(), 1);
/// let aborted: Outcome<i32> = Outcome::Failed(Error::Aborted { by_rank: 2 });
/// assert_eq!(settle(aborted, Some((2, failed.clone()))).unwrap_err(), failed);
/// ```
pub fn settle<T>(main: Outcome<T>, first: Option<(usize, Error)>) -> Result<T> {
    match (main, first) {
        (Outcome::Done(v), None) => Ok(v),
        (Outcome::Panicked(p), None | Some((0, _))) => resume_unwinding(p),
        (Outcome::Failed(e), None) => Err(e),
        (_, Some((_, e))) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_panics_resume_unless_another_rank_failed_first() {
        let first = Error::TaskFailed {
            rank: 1,
            message: "x".into(),
        };
        let p: Outcome<()> = Outcome::catch(|| panic!("main"));
        assert_eq!(settle(p, Some((1, first.clone()))).unwrap_err(), first);
        let p: Outcome<()> = Outcome::catch(|| panic!("main"));
        let resumed = halt_unwinding(|| settle(p, None)).unwrap_err();
        assert_eq!(panic_message(&*resumed), "main");
        let main_err = Error::Codec("main".into());
        let f: Outcome<()> = Outcome::Failed(main_err.clone());
        assert_eq!(
            settle(f, Some((0, main_err.clone()))).unwrap_err(),
            main_err
        );
        // A worker failing fails the region even though main returned.
        assert_eq!(
            settle(Outcome::Done(()), Some((1, first.clone()))).unwrap_err(),
            first
        );
    }
}
