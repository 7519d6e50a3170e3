//! `CallerContract`: the collectives every rank must issue, checked per rank.

use crate::error::{Error, Result};

/// A cyclic sequence of collective names that each rank checks its own calls
/// against (McUtils `CallerContract`). A mismatch is
/// [`Error::ContractViolation`] naming the expected and the actual call.
///
/// The names are those of the typed API: `send`, `receive`, `broadcast`,
/// `scatter`, `gather`, `map` (and `map_with`, `map_chunks`, `starmap`) and
/// `wait`. Unlike McUtils, `map` and `wait` count as one call each, not as
/// the scatter/broadcast/gather they are made of.
///
/// ```
/// use parallelizer_core::CallerContract;
/// let mut c = CallerContract::new(["scatter", "gather"]);
/// c.check(3, "scatter").unwrap();
/// c.check(3, "gather").unwrap();
/// c.check(3, "scatter").unwrap(); // cyclic
/// let err = c.check(3, "scatter").unwrap_err().to_string();
/// assert!(err.contains("expected `gather`"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerContract {
    calls: Vec<String>,
    next: usize,
}

impl CallerContract {
    /// A contract over `calls`, starting at the first.
    pub fn new<S: Into<String>>(calls: impl IntoIterator<Item = S>) -> CallerContract {
        CallerContract {
            calls: calls.into_iter().map(Into::into).collect(),
            next: 0,
        }
    }

    /// Checks that rank `rank` may issue `call` now, and advances.
    pub fn check(&mut self, rank: usize, call: &str) -> Result<()> {
        let Some(expected) = self.calls.get(self.next) else {
            return Ok(());
        };
        if expected != call {
            return Err(Error::ContractViolation(format!(
                "rank {rank} called `{call}` but the contract expected `{expected}` \
                 (call {} of the cycle [{}])",
                self.next + 1,
                self.calls.join(", ")
            )));
        }
        self.next = (self.next + 1) % self.calls.len();
        Ok(())
    }

    /// The calls of the cycle.
    pub fn calls(&self) -> &[String] {
        &self.calls
    }
}
