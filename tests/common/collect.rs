//! A `tracing` subscriber that keeps every event, for the tests that check
//! what the runtime reports (regions, collectives, workers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::subscriber::NoSubscriber;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber, span};

/// One event: its level, target, message and fields (as text).
#[derive(Debug, Clone)]
pub struct Seen {
    pub level: Level,
    pub target: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Seen {
    /// The field `name`, as text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Keeps every event it is given; clones share the record.
#[derive(Clone)]
pub struct Collector {
    seen: Arc<Mutex<Vec<Seen>>>,
    next_span: Arc<AtomicU64>,
}

/// A second scoped dispatcher that lives as long as the test binary.
/// With a single one registered, tracing-core (0.1.36) rebuilds a
/// callsite's interest, and the global maximum level, from the default
/// dispatcher *of the thread that registers the callsite*: a test running
/// alongside, with no subscriber, that reached a callsite first turned
/// every event off for a `Collector` installed with `with_default` (the
/// threads tracing test failed whenever a threads fault test ran beside
/// it). With two registered, the rebuild asks every live dispatcher.
static SECOND: OnceLock<Dispatch> = OnceLock::new();

impl Default for Collector {
    fn default() -> Collector {
        SECOND.get_or_init(|| Dispatch::new(NoSubscriber::default()));
        Collector {
            seen: Arc::default(),
            next_span: Arc::default(),
        }
    }
}

impl Collector {
    /// The events so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The events of `target` whose message contains `text`.
    pub fn with(&self, target: &str, text: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.target == target && s.message.contains(text))
            .collect()
    }
}

struct Fields<'a>(&'a mut Seen);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.insert(field.name().to_string(), text);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.message = value.to_string();
        } else {
            self.0
                .fields
                .insert(field.name().to_string(), value.to_string());
        }
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut seen = Seen {
            level: *meta.level(),
            target: meta.target().to_string(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Fields(&mut seen));
        self.seen.lock().unwrap().push(seen);
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
