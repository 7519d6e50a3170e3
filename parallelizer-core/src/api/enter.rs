//! Entering a parallelizer (initialize, become the default) and naming it.

use crate::error::Result;
use crate::parallelizer::Parallelizer;
use crate::runtime;

/// Keeps a parallelizer entered (initialized and the default) until dropped;
/// see `enter`.
#[must_use = "the parallelizer is left when the guard drops"]
pub struct EnterGuard<'a> {
    par: &'a dyn Parallelizer,
    token: Option<u64>,
    done: bool,
}

impl EnterGuard<'_> {
    /// Leaves now and reports what finalizing returned (dropping the guard
    /// does the same but can only print a failure).
    pub fn exit(mut self) -> Result<()> {
        self.leave()
    }

    fn leave(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        if let Some(token) = self.token {
            runtime::pop_entered(token);
        }
        if self.par.core().leave_depth() == 0 {
            self.par.finalize()
        } else {
            Ok(())
        }
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.leave() {
            eprintln!("parallelizer: finalizing `{}` failed: {e}", self.par.mode());
        }
    }
}

impl dyn Parallelizer {
    /// Initializes (outermost call only) and makes this parallelizer the
    /// default until the guard drops; nests. The outermost drop restores the
    /// previous default and finalizes (workers shut down and reaped).
    ///
    /// ```
    /// use parallelizer_core::{from_config, get_default};
    /// let par = from_config("threads:2").unwrap();
    /// {
    ///     let _outer = par.enter().unwrap();
    ///     let _inner = par.enter().unwrap();
    ///     assert_eq!(get_default().nprocs(), 2);
    /// }
    /// assert_eq!(get_default().mode(), "serial");
    /// ```
    pub fn enter(&self) -> Result<EnterGuard<'_>> {
        self.enter_as(true)
    }

    /// `enter` for the length of one `run`: where this parallelizer is
    /// already the innermost entered one (`run` after `enter`, the usual
    /// case), only its depth counts (so it stays initialized); it is the
    /// default already, and each `run` saves pushing and removing it again.
    pub(crate) fn enter_for_run(&self) -> Result<EnterGuard<'_>> {
        self.enter_as(!runtime::is_innermost_entered(self))
    }

    /// Enters; `push` says whether to make this the innermost entered one.
    fn enter_as(&self, push: bool) -> Result<EnterGuard<'_>> {
        let core = self.core();
        if core.enter_depth() == 0 {
            if let Err(e) = self.initialize() {
                core.leave_depth();
                return Err(e);
            }
        }
        let token = if push {
            core.this().map(runtime::push_entered)
        } else {
            None
        };
        Ok(EnterGuard {
            par: self,
            token,
            done: false,
        })
    }

    /// Whether this parallelizer is running (McUtils `active`): entered
    /// (an `enter` guard or a `run` is alive), or a rank's handle inside a
    /// region, on every rank.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// assert!(!par.is_active());
    /// let all = par.run(|p: &dyn Parallelizer, ()| p.gather(p.is_active()).unwrap(), ()).unwrap();
    /// assert_eq!(all, Some(vec![true; 3]));
    /// let _entered = par.enter().unwrap();
    /// assert!(par.is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        let core = self.core();
        core.is_active() || core.is_rank() || runtime::is_current(self)
    }

    /// Registers this parallelizer under `name`, weakly: the name is gone
    /// when the last `Arc` drops (McUtils `register`).
    ///
    /// ```
    /// use parallelizer_core::{from_config, lookup};
    /// let par = from_config("threads:3").unwrap();
    /// par.register("mine");
    /// assert_eq!(lookup("mine").nprocs(), 3);
    /// drop(par);
    /// assert_eq!(lookup("mine").mode(), "serial");
    /// ```
    pub fn register(&self, name: &str) {
        if let Some(this) = self.core().this() {
            runtime::register_named(name, &this);
        }
    }
}
