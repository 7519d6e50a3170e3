//! A map's progress on main: the user's callback and the indicatif bar, fed
//! with every completed chunk, whichever rank computed it.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::op::Op;
use crate::parallelizer::Parallelizer;

/// How far a map has got, as [`Mapper::on_progress`](super::Mapper::on_progress)
/// reports it on main after each completed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Items done so far, on every rank.
    pub done: usize,
    /// Items in the map.
    pub total: usize,
    /// The rank that completed the chunk just reported.
    pub rank: usize,
    /// Items in that chunk.
    pub items: usize,
}

/// Who watches a map's progress, as [`Mapper`](super::Mapper) sets it.
#[derive(Clone, Default)]
pub(crate) struct Watch {
    /// The bar: `None` leaves it to the configuration (and by default to
    /// whether stderr is a terminal and the map is long).
    pub(crate) bar: Option<bool>,
    /// The user's callback.
    pub(crate) report: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    /// Where the bar is drawn instead of stderr (tests).
    pub(crate) draw: Option<Arc<dyn Fn() -> ProgressDrawTarget + Send + Sync>>,
}

/// A map shows its bar (when not forced) once it has run this long, or
/// earlier when it is expected to run this long.
const LONG: Duration = Duration::from_secs(1);
/// How long a map runs before its expected duration is trusted.
const ESTIMATE_AFTER: Duration = Duration::from_millis(200);

/// Whether and where the bar is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bar {
    Never,
    /// On stderr if it is a terminal, once the map is long.
    Auto,
    /// From the start, on stderr whatever it is.
    Always,
}

/// Main's record of a map's progress. Shared by the thread that hands out
/// chunks and the one that computes main's; every method is cheap when
/// nobody watches (no callback, no bar).
pub(crate) struct Tracker {
    inner: Option<Inner>,
}

struct Inner {
    op: Op,
    total: usize,
    start: Instant,
    mode: Bar,
    report: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
    draw: Option<Arc<dyn Fn() -> ProgressDrawTarget + Send + Sync>>,
    state: Mutex<State>,
}

struct State {
    done: usize,
    bar: Option<ProgressBar>,
}

impl Tracker {
    /// The tracker of a map of `total` items on main (`par`).
    pub(crate) fn start(par: &dyn Parallelizer, op: Op, total: usize, watch: &Watch) -> Tracker {
        let mode = match watch.bar.or(par.core().config().progress) {
            Some(true) => Bar::Always,
            Some(false) => Bar::Never,
            // A test's target stands for a terminal.
            None if watch.draw.is_some() || std::io::stderr().is_terminal() => Bar::Auto,
            None => Bar::Never,
        };
        if mode == Bar::Never && watch.report.is_none() {
            return Tracker { inner: None };
        }
        let inner = Inner {
            op,
            total,
            start: Instant::now(),
            mode,
            report: watch.report.clone(),
            draw: watch.draw.clone(),
            state: Mutex::new(State { done: 0, bar: None }),
        };
        if mode == Bar::Always {
            let mut st = inner.lock();
            st.bar = Some(inner.bar(0));
        }
        Tracker { inner: Some(inner) }
    }

    /// `items` more items done, by `rank`.
    pub(crate) fn add(&self, rank: usize, items: usize) {
        let Some(inner) = &self.inner else { return };
        let mut st = inner.lock();
        st.done += items;
        let done = st.done;
        match &st.bar {
            Some(bar) => bar.set_position(done as u64),
            None => inner.maybe_show(&mut st),
        }
        if let Some(report) = &inner.report {
            report(Progress {
                done,
                total: inner.total,
                rank,
                items,
            });
        }
    }

    /// When the thread that waits for chunks should look at the clock again
    /// (to show the bar of a map that turned out long); `None`: never.
    pub(crate) fn next_look(&self) -> Option<Instant> {
        let inner = self.inner.as_ref()?;
        let st = inner.lock();
        if inner.mode != Bar::Auto || st.bar.is_some() || st.done >= inner.total {
            return None;
        }
        Some(inner.start + LONG)
    }

    /// Shows the bar if the map has become long.
    pub(crate) fn look(&self) {
        if let Some(inner) = &self.inner {
            let mut st = inner.lock();
            if st.bar.is_none() {
                inner.maybe_show(&mut st);
            }
        }
    }

    /// The end of the map: the bar stays as it is, full if the map
    /// succeeded.
    pub(crate) fn finish(&self, ok: bool) {
        let Some(inner) = &self.inner else { return };
        let st = inner.lock();
        if let Some(bar) = &st.bar {
            if ok {
                bar.finish();
            } else {
                bar.abandon();
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Auto mode: the bar appears once the map has run [`LONG`], or is
    /// expected to from the chunks done so far.
    fn maybe_show(&self, st: &mut State) {
        if self.mode != Bar::Auto || st.done >= self.total {
            return;
        }
        let ran = self.start.elapsed();
        let expected = (st.done > 0 && ran >= ESTIMATE_AFTER)
            .then(|| ran.mul_f64(self.total as f64 / st.done as f64));
        if ran >= LONG || expected.is_some_and(|e| e >= LONG) {
            st.bar = Some(self.bar(st.done));
        }
    }

    fn bar(&self, done: usize) -> ProgressBar {
        let target = match (&self.draw, self.mode) {
            (Some(draw), _) => draw(),
            (None, Bar::Always) if !std::io::stderr().is_terminal() => {
                ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 1)
            }
            (None, _) => ProgressDrawTarget::stderr(),
        };
        let style = ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] [{bar:30}] {pos}/{len} items ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(self.total as u64), target)
            .with_style(style)
            .with_prefix(self.op.name())
            .with_elapsed(self.start.elapsed())
            .with_position(done as u64);
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }
}

/// stderr when it is not a terminal (a log file, a pipe) and the bar was
/// forced on: the bar's lines as they are drawn, without cursor motion.
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        // Each redraw on a line of its own; the padding that would blank
        // the rest of a terminal line is left out.
        if s.trim().is_empty() {
            return Ok(());
        }
        writeln!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}
