//! Printing from ranks (McUtils `print`, `main_print`, `worker_print`).

use std::fmt::Display;

use crate::config::LogLevel;
use crate::parallelizer::Parallelizer;
use crate::runtime;

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
    /// (McUtils failed on non-strings and braces). Prints at
    /// [`LogLevel::NORMAL`], so a verbosity of [`LogLevel::QUIET`] or
    /// [`LogLevel::WARNINGS`] (`Config::log_level`, `PARALLELIZER_LOG`)
    /// silences it.
    ///
    /// ```
    /// use parallelizer_core::{get_default, Where};
    /// get_default().print(Where::Both, 1);
    /// get_default().print(Where::Main, "{'a': 1}");
    /// ```
    pub fn print(&self, place: Where, msg: impl Display) {
        self.log(LogLevel::NORMAL, place, msg);
    }

    /// Prints `msg` as is (at [`LogLevel::NORMAL`]).
    pub fn main_print(&self, msg: impl Display) {
        if self.prints(LogLevel::NORMAL) {
            println!("{msg}");
        }
    }

    /// Prints `On Worker {id} ({pid}): msg` (at [`LogLevel::NORMAL`]).
    pub fn worker_print(&self, msg: impl Display) {
        if self.prints(LogLevel::NORMAL) {
            self.worker_line(msg);
        }
    }

    /// `print` at `level` (McUtils `print(..., log_level=...)`): it prints
    /// only if `level` is at most the verbosity.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Config, LogLevel, Where};
    /// let par = from_config(Config::new("serial").log_level(LogLevel::NORMAL)).unwrap();
    /// par.log(LogLevel::DEBUG, Where::Both, "not printed");
    /// par.log(LogLevel::WARNINGS, Where::Both, "printed");
    /// assert!(par.prints(LogLevel::NORMAL) && !par.prints(LogLevel::DEBUG));
    /// ```
    pub fn log(&self, level: LogLevel, place: Where, msg: impl Display) {
        if !self.prints(level) {
            return;
        }
        match (self.on_main(), place) {
            (true, Where::Both | Where::Main) => println!("{msg}"),
            (false, Where::Both | Where::Worker) => self.worker_line(msg),
            _ => {}
        }
    }

    /// Whether a message at `level` prints on this parallelizer.
    pub fn prints(&self, level: LogLevel) -> bool {
        level <= self.core().config().verbosity()
    }

    fn worker_line(&self, msg: impl Display) {
        // A processes worker whose output main relays with a `[rank N] `
        // prefix marks the line, so it shows one prefix, not two.
        let mark = if runtime::output_relayed() {
            runtime::UNPREFIXED
        } else {
            ""
        };
        println!("{mark}On Worker {} ({}): {msg}", self.id(), self.pid());
    }
}
