//! Printing from ranks (McUtils `print`, `main_print`, `worker_print`).

use std::fmt::Display;

use crate::parallelizer::Parallelizer;

/// Where `print` prints (McUtils `where=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Where {
    /// On main and on workers.
    #[default]
    Both,
    /// On main only.
    Main,
    /// On workers only.
    Worker,
}

impl dyn Parallelizer {
    /// Prints `msg` on the ranks `place` selects: plainly on main,
    /// `On Worker {id} ({pid}): msg` on workers. Any `Display` value works
    /// (McUtils failed on non-strings and braces).
    ///
    /// ```
    /// use parallelizer_core::{get_default, Where};
    /// get_default().print(Where::Both, 1);
    /// get_default().print(Where::Main, "{'a': 1}");
    /// ```
    pub fn print(&self, place: Where, msg: impl Display) {
        match (self.on_main(), place) {
            (true, Where::Both | Where::Main) => self.main_print(msg),
            (false, Where::Both | Where::Worker) => self.worker_print(msg),
            _ => {}
        }
    }

    /// Prints `msg` as is.
    pub fn main_print(&self, msg: impl Display) {
        println!("{msg}");
    }

    /// Prints `On Worker {id} ({pid}): msg`.
    pub fn worker_print(&self, msg: impl Display) {
        println!("On Worker {} ({}): {msg}", self.id(), self.pid());
    }
}
