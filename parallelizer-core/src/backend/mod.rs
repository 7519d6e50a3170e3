//! For backend authors: what a backend implements and what it gets for
//! free, and the built-in backends, one per module.
//!
//! A backend is a struct that implements [`Parallelizer`](crate::Parallelizer)
//! and [`FromConfig`], registered by mode name with
//! `#[parallelizer(name = ...)]`, exactly as the built-ins are. It runs each
//! rank's part of a region through [`run_as`] (current rank set, panics
//! caught into an [`Outcome`]), keeps the region's [`FirstFailure`], releases
//! the ranks blocked with a failed one, and returns [`settle`]'s result on
//! main.

pub use crate::attach::{Attachment, attach, attached};
pub use crate::config::Options;
pub use crate::entry::{WorkerHook, current_test};
pub use crate::link::{
    Board, Channels, Event, Finish, Kind, Landing, Limits, LinkRank, POST_BYTES, Packet, Post,
    PostCell, Transport, run_on_threads, type_code,
};
pub use crate::msg::{Encoding, Msg};
pub use crate::op::Tag;
pub use crate::outcome::{
    FirstFailure, Outcome, Panic, halt_unwinding, panic_message, resume_unwinding, settle,
};
pub use crate::parallelizer::{
    AnySource, Core, Job, LocalTask, NativePod, NativeReduce, PlainBuf, PodType, Posted, Reach,
    Region, RegionTask, check_rank, collective,
};
pub use crate::registry::{FromConfig, new};
pub use crate::runtime::{CurrentGuard, run_as, set_current};
pub use crate::segment::{
    Backing, Export, HEAP, Heap, HeapBacking, Layout, SEGMENT_ALIGN, Segment, Segments,
    SharedMemory, TokenResolver, WeakSegment, count_in_use, segments_in_use, set_token_resolver,
};
#[cfg(target_os = "linux")]
pub use crate::segment::{
    MEMFD_BY_TOKEN, MemfdBacking, MemfdByToken, resolve as resolve_memfd_token,
};
pub use crate::task::{
    MapForm, MapWorker, TaskEntry, TaskKind, initializer_region, region_task, task_by_id,
    task_by_path, task_of, tasks,
};
pub use crate::tree::Combine;

#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(target_os = "linux")]
pub mod processes;
pub mod serial;
pub mod threads;

#[cfg(feature = "mpi")]
pub use mpi::Mpi;
#[cfg(target_os = "linux")]
pub use processes::Processes;
pub use serial::Serial;
pub use threads::Threads;
