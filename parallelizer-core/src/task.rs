//! Tasks registered by name at link time, so a worker process can run them.
//!
//! A closure cannot cross a process boundary; a function can, by name, the
//! way Python pickles a module-level function. `#[parallelizer::task]` adds
//! a [`TaskEntry`] to the [`TASKS`] slice (linkme); every rank sorts the
//! slice by path, so the same binary gives every task the same dense id.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::parallelizer::{LocalTask, Parallelizer, Region, RegionTask};

/// Every task registered with `#[parallelizer::task]` in this binary.
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// One registered task.
///
/// Written by `#[parallelizer::task]`; the fields are public so the macro
/// can build it in a `static`.
#[derive(Debug)]
pub struct TaskEntry {
    /// `module::path::name` of the fn, the task's name on every rank.
    pub path: &'static str,
    /// `std::any::type_name` of the fn item, which `run(f, ..)` looks up.
    pub type_name: fn() -> &'static str,
    /// How a worker runs it.
    pub kind: TaskKind,
}

/// How a worker runs a registered task.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TaskKind {
    /// `fn(par: &dyn Parallelizer, args: A) -> R`, run by `run`: decode the
    /// args, call, drop the value, return the task's `Err` if it has one.
    Region(fn(&dyn Parallelizer, Msg) -> Result<()>),
    /// A fn that pool-style maps apply to items (`fn(item: T) -> R`,
    /// `fn(items: Vec<T>, extra: &E) -> Vec<R>`, ...): for each map call it
    /// serves, how a worker takes part in it.
    Map(&'static [MapWorker]),
}

impl TaskKind {
    /// Whether a worker can take part in the map call `form` with this task.
    pub fn serves(&self, form: MapForm) -> bool {
        matches!(self, TaskKind::Map(forms) if forms.iter().any(|w| w.form == form))
    }
}

/// The map calls a registered fn can serve on a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MapForm {
    /// `map(f, data)`: `f(item) -> R`.
    Map,
    /// `map_with(f, data, extra)`: `f(item, &extra) -> R`.
    MapWith,
    /// `map_chunks(f, data)`: `f(items: Vec<T>) -> Vec<R>`.
    MapChunks,
    /// `map_chunks_with(f, data, extra)`: `f(items: Vec<T>, &extra) -> Vec<R>`.
    MapChunksWith,
    /// `starmap(f, data)`: `f(a, b, ..) -> R` over tuples `(a, b, ..)`.
    Starmap,
    /// `starmap_with(f, data, extra)`: `f(a, b, .., &extra) -> R`.
    StarmapWith,
}

impl MapForm {
    /// The call, as a user writes it.
    pub fn name(self) -> &'static str {
        match self {
            MapForm::Map => "map",
            MapForm::MapWith => "map_with",
            MapForm::MapChunks => "map_chunks",
            MapForm::MapChunksWith => "map_chunks_with",
            MapForm::Starmap => "starmap",
            MapForm::StarmapWith => "starmap_with",
        }
    }
}

/// How a worker takes part in one map call with a registered fn: the code
/// `#[parallelizer::task]` generates calls that map on the worker's handle
/// with the fn and no data.
#[derive(Debug, Clone, Copy)]
pub struct MapWorker {
    /// The call.
    pub form: MapForm,
    /// The worker's part of it.
    pub run: fn(&dyn Parallelizer) -> Result<()>,
}

impl TaskEntry {
    /// Runs this task on a worker rank. A map task's `args` name the call
    /// ([`MapForm`]) main made.
    pub fn invoke(&self, par: &dyn Parallelizer, args: Msg) -> Result<()> {
        match self.kind {
            TaskKind::Region(f) => f(par, args),
            TaskKind::Map(forms) => {
                let form: MapForm = args.into_value()?;
                let worker = forms.iter().find(|w| w.form == form).ok_or_else(|| {
                    Error::Protocol(format!(
                        "task `{}` does not serve `{}` on this rank; \
                         are all ranks running the same executable?",
                        self.path,
                        form.name()
                    ))
                })?;
                (worker.run)(par)
            }
        }
    }

    /// This task as a closure run in this process: its value is dropped
    /// (only main's typed value is ever returned) and an `Err` reported.
    pub fn as_local(&'static self) -> LocalTask {
        Arc::new(move |par: &dyn Parallelizer, args: Msg| {
            self.invoke(par, args).map(|()| Msg::local(()))
        })
    }

    /// This task's dense id, the same on every rank of one binary.
    pub fn id(&'static self) -> u32 {
        tasks()
            .iter()
            .position(|t| std::ptr::eq(*t, self))
            .expect("a TaskEntry outside TASKS") as u32
    }
}

/// The registered tasks sorted by path: index = dense id.
///
/// ```
/// let paths: Vec<_> = parallelizer_core::backend::tasks().iter().map(|t| t.path).collect();
/// assert!(paths.windows(2).all(|w| w[0] <= w[1]));
/// ```
pub fn tasks() -> &'static [&'static TaskEntry] {
    static SORTED: OnceLock<Vec<&'static TaskEntry>> = OnceLock::new();
    SORTED.get_or_init(|| {
        let mut all: Vec<&'static TaskEntry> = TASKS.iter().collect();
        all.sort_by_key(|t| t.path);
        all
    })
}

/// The task with dense id `id`.
pub fn task_by_id(id: u32) -> Result<&'static TaskEntry> {
    tasks().get(id as usize).copied().ok_or_else(|| {
        Error::Protocol(format!(
            "task id {id} is not registered in this binary ({} tasks); \
             are all ranks running the same executable?",
            tasks().len()
        ))
    })
}

/// The task registered under `path` (`module::name`).
pub fn task_by_path(path: &str) -> Result<&'static TaskEntry> {
    tasks()
        .binary_search_by_key(&path, |t| t.path)
        .map(|i| tasks()[i])
        .map_err(|_| Error::TaskNotRegistered {
            task: path.to_string(),
        })
}

/// The registration of the fn item type `F`, if it has one.
pub fn task_of<F>() -> Option<&'static TaskEntry> {
    registration_of::<F>().map(|r| r.entry)
}

/// A registration as `run` needs it, made once per task: its dense id and
/// its closure (every `run` of a registered task looks both up here).
struct Registration {
    type_name: &'static str,
    entry: &'static TaskEntry,
    id: u32,
    local: LocalTask,
}

fn registration_of<F>() -> Option<&'static Registration> {
    // Sorted by type name once.
    static BY_TYPE: OnceLock<Vec<Registration>> = OnceLock::new();
    let by_type = BY_TYPE.get_or_init(|| {
        let mut all: Vec<_> = tasks()
            .iter()
            .enumerate()
            .map(|(id, &entry)| Registration {
                type_name: (entry.type_name)(),
                entry,
                id: id as u32,
                local: entry.as_local(),
            })
            .collect();
        all.sort_by_key(|r| r.type_name);
        all
    });
    let name = std::any::type_name::<F>();
    by_type
        .binary_search_by_key(&name, |r| r.type_name)
        .ok()
        .map(|i| &by_type[i])
}

/// What a worker rank reports for a registered task that returned `r`:
/// `Ok(())`, or [`Error::TaskFailed`] with this rank and the error's
/// `Display`. Called by the code `#[parallelizer::task]` generates.
#[doc(hidden)]
pub fn task_outcome<T, E: std::fmt::Display>(
    par: &dyn Parallelizer,
    r: std::result::Result<T, E>,
) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::TaskFailed {
            rank: par.id(),
            message: e.to_string(),
        }),
    }
}

/// The [`RegionTask`] of the closure `main` whose fn item type is `F`:
/// registered (workers run the registration, ranks in other processes find
/// it by id) when `F` is a `#[parallelizer::task]` of a kind `fits`.
pub fn region_task<F>(main: LocalTask, fits: impl Fn(&TaskKind) -> bool) -> RegionTask {
    let name = std::any::type_name::<F>();
    match registration_of::<F>().filter(|r| fits(&r.entry.kind)) {
        Some(r) => RegionTask::registered(name, r.id, main, r.local.clone()),
        None => RegionTask::new(name, main),
    }
}

/// The region that runs `config`'s initializer (a registered task) on
/// every rank with its arguments; `None` when there is none.
pub fn initializer_region(config: &Config) -> Result<Option<Region>> {
    let Some((entry, args)) = initializer(config)? else {
        return Ok(None);
    };
    let local = entry.as_local();
    Ok(Some(Region::new(
        RegionTask::registered(entry.path, entry.id(), local.clone(), local),
        args,
    )))
}

/// `config`'s initializer and its arguments as a message; `None` when
/// there is none. A path that names no registered task is
/// [`Error::Config`] naming the path and the registered tasks.
pub fn initializer(config: &Config) -> Result<Option<(&'static TaskEntry, Msg)>> {
    let Some(path) = &config.initializer else {
        return Ok(None);
    };
    let entry = check_initializer(path)?;
    let (bytes, type_name) = config.initializer_args();
    let args = Msg::from_bytes(Encoding::Serde, bytes.to_vec()).sent_as(type_name);
    Ok(Some((entry, args)))
}

/// The registered task `path` names, or the error for a misspelled
/// initializer: the path, the nearest registered path, and the registered
/// tasks.
pub(crate) fn check_initializer(path: &str) -> Result<&'static TaskEntry> {
    if let Ok(entry) = task_by_path(path) {
        return Ok(entry);
    }
    let all: Vec<String> = tasks()
        .iter()
        .filter(|t| !t.path.starts_with("parallelizer_core::"))
        .map(|t| t.path.to_string())
        .collect();
    const SHOWN: usize = 24;
    let listed = match all.len() {
        0 => "none".to_string(),
        n if n <= SHOWN => all.join(", "),
        n => format!("{}, ... ({} more)", all[..SHOWN].join(", "), n - SHOWN),
    };
    Err(Error::Config(format!(
        "initializer `{}` is not a registered task{}; mark the fn with \
         `#[parallelizer::task]` and give its full path (`module::name`); registered \
         tasks: {listed}",
        crate::config::clip(path),
        crate::names::did_you_mean(path, all.iter().map(String::as_str)),
    )))
}
