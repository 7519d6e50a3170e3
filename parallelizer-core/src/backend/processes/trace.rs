//! Worker processes' `tracing` events, forwarded to main's subscriber.
//!
//! When main's subscribers want any events (`LevelFilter::current()` is not
//! `OFF`) and main relays the workers' output (`prefix_output`, the
//! default), each worker it launches gets the most verbose level wanted in
//! [`TRACE_ENV`]. A served worker then installs [`Forward`] as its global
//! subscriber: every event at that level or less verbose becomes one line
//! on its stderr, marked with [`MARK`]. Main's relay of that stderr
//! re-emits the line as an event of target `parallelizer::worker` with the
//! fields `rank` (the worker's), `origin` (the event's own target) and the
//! event's message and fields as text, into the subscriber that was the
//! default where the workers were started. Worker spans are not forwarded
//! (their events are, with their own fields). An SPMD worker runs the
//! user's `main`, which may install a subscriber of its own: it forwards
//! nothing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber, span};

use crate::trace::WORKER;

/// The environment variable that asks a worker to forward its events, and
/// up to which level.
pub(super) const TRACE_ENV: &str = "PARALLELIZER_TRACE";
/// The first byte of a stderr line that carries a forwarded event (ASCII
/// unit separator), which also separates its fields.
pub(super) const MARK: u8 = 0x1f;

/// Main: the level its workers should forward up to, if its subscribers
/// want any event at all.
pub(super) fn level_for_workers() -> Option<Level> {
    LevelFilter::current().into_level()
}

/// A served worker: forwards its events if main asked for them.
pub(super) fn forward_if_asked() {
    let Some(max) = std::env::var(TRACE_ENV)
        .ok()
        .and_then(|v| v.parse::<Level>().ok())
    else {
        return;
    };
    // A subscriber set already (by a worker hook) keeps its place.
    let _ = tracing::subscriber::set_global_default(Forward {
        max,
        next_span: AtomicU64::new(1),
    });
}

/// The subscriber of a worker whose events go to main.
struct Forward {
    max: Level,
    next_span: AtomicU64,
}

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        let meta = event.metadata();
        let mut line = Vec::with_capacity(text.0.len() + 64);
        line.push(MARK);
        line.extend_from_slice(meta.level().as_str().as_bytes());
        line.push(MARK);
        line.extend_from_slice(meta.target().as_bytes());
        line.push(MARK);
        // One event, one line.
        line.extend_from_slice(text.0.replace('\n', "\\n").as_bytes());
        line.push(b'\n');
        let _ = std::io::stderr().lock().write_all(&line);
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// An event's message and fields as text: `message k=v k=v`.
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// Main, in the relay of worker `rank`'s stderr: re-emits `line` if it is
/// a forwarded event (into `dispatch`); whether it was one.
pub(super) fn reemit(rank: usize, line: &[u8], dispatch: Option<&Dispatch>) -> bool {
    let Some(rest) = line.strip_prefix(&[MARK]) else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.trim_end_matches(['\n', '\r']).splitn(3, MARK as char);
    let (Some(level), Some(origin), Some(message)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(level) = level.parse::<Level>() else {
        return false;
    };
    let emit = || match level {
        Level::ERROR => tracing::error!(target: WORKER, rank, origin, "{message}"),
        Level::WARN => tracing::warn!(target: WORKER, rank, origin, "{message}"),
        Level::INFO => tracing::info!(target: WORKER, rank, origin, "{message}"),
        Level::DEBUG => tracing::debug!(target: WORKER, rank, origin, "{message}"),
        _ => tracing::trace!(target: WORKER, rank, origin, "{message}"),
    };
    match dispatch {
        Some(d) => tracing::dispatcher::with_default(d, emit),
        None => emit(),
    }
    true
}
