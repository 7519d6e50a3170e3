//! Segments: memory that every rank of a parallelizer can address, the
//! storage of shared arrays.
//!
//! A [`Segment`] is a handle (cheap to clone) to one block of memory that a
//! [`Backing`] provides: one heap allocation for ranks that are threads of
//! one process, a memfd that every process maps for `processes` and for the
//! `mpi` ranks of one node. Every segment starts with a header that holds
//! its layout and the borrow table (`table`) through which the safe views of
//! a shared array are granted; the data follows, 128-byte aligned.
//!
//! Handles travel in messages as references, never as bytes: a segment
//! whose backing [exports](Export) itself as an attachment is registered
//! with the message being encoded ([`crate::backend::attach`]) and found
//! again on the receiver; one that exports an inline token (`mpi`: the
//! sender's `/proc/PID/fd/FD`) writes the token with the node that made it,
//! and a rank on another node refuses it by name (`node`).
//!
//! The memory is released when the last handle to it in this process
//! drops.

mod heap;
#[cfg(target_os = "linux")]
mod memfd;
mod node;
mod table;

use std::any::Any;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attach::{attach, attached, explain};
use crate::error::{Error, Result};

pub use heap::{HEAP, Heap, HeapBacking};
#[cfg(target_os = "linux")]
pub use memfd::{MEMFD_BY_TOKEN, MemfdBacking, MemfdByToken, resolve};
pub(crate) use table::{Access, Table};

/// The alignment of a segment's memory and of its data.
pub const SEGMENT_ALIGN: usize = 128;

/// What a segment holds: `data_len` bytes of data and a borrow table of
/// `slots` entries (the most borrows that can be held at once).
///
/// ```
/// # use parallelizer_core::backend::Layout;
/// let l = Layout::new(1000, 8);
/// assert_eq!(l.data_offset() % 128, 0);
/// assert_eq!(l.bytes(), l.data_offset() + 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    data_len: usize,
    slots: usize,
}

impl Layout {
    /// A layout of `data_len` data bytes and `slots` borrow slots (at least 1).
    pub fn new(data_len: usize, slots: usize) -> Layout {
        Layout {
            data_len,
            slots: slots.max(1),
        }
    }

    /// The layout of a shared array on a parallelizer of `nprocs` ranks:
    /// room for two borrows per rank and some to spare.
    pub fn for_ranks(data_len: usize, nprocs: usize) -> Layout {
        Layout::new(data_len, (32 + 2 * nprocs).min(1 << 16))
    }

    /// Data bytes.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Where the data starts, from the segment's start.
    pub fn data_offset(&self) -> usize {
        (table::HEADER + self.slots * table::SLOT).next_multiple_of(SEGMENT_ALIGN)
    }

    /// The bytes a backing must provide.
    pub fn bytes(&self) -> usize {
        self.data_offset() + self.data_len
    }
}

/// How a handle to a segment is written into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// As an attachment of the message ([`crate::backend::Attachment`]):
    /// the transport moves the segment itself (in-process transports) or
    /// something another process can map (a memfd).
    Attach,
    /// As this token, which every rank of the sender's node resolves with
    /// the resolver the backend registered ([`set_token_resolver`]); ranks
    /// on other nodes refuse it (`mpi`: the sender's `/proc/PID/fd/FD`).
    Token(u64),
}

/// Memory a [`Segment`] lives in.
///
/// # Safety
///
/// [`base`](Backing::base) must be valid for reads and writes of
/// [`size`](Backing::size) bytes, aligned to [`SEGMENT_ALIGN`], for as long as
/// the backing lives, and must not move. Other processes may map the same
/// memory; the backing must keep it mapped (never shrink it under the
/// mapping) while it lives. Its bytes must be zero when it is handed to
/// [`Segment::create`].
pub unsafe trait Backing: Send + Sync + 'static {
    /// The start of the memory.
    fn base(&self) -> NonNull<u8>;
    /// Its size in bytes.
    fn size(&self) -> usize;
    /// How a handle is written into a message.
    fn export(&self) -> Export;
    /// What kind of memory it is, for messages (`"heap"`, `"memfd"`, ...).
    fn kind(&self) -> &'static str;
    /// An identity of the memory: two backings in one process with the same
    /// identity and kind are the same memory.
    fn identity(&self) -> (u64, u64);
    /// The backing itself, for a transport that needs its concrete type.
    fn as_any(&self) -> &dyn Any;
}

struct Inner {
    backing: Box<dyn Backing>,
    layout: Layout,
}

/// A handle to a block of shared memory with a borrow table at its start
/// (in the memory itself, so every process that maps it sees the same
/// table); clones are handles to the same memory.
///
/// Users meet segments only through shared arrays; backends create them in
/// their [`SharedMemory`](crate::backend::SharedMemory) implementation.
#[derive(Clone)]
pub struct Segment(Arc<Inner>);

// SAFETY: a `Segment` only hands out its memory through the borrow table
// (`Table`, all atomic) or as raw pointers to the data; the views built on
// them (shared arrays) take borrows before they create references. The
// backing is `Send + Sync` itself.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`: `&Segment` only gives access to atomics and raw
// pointers.
unsafe impl Sync for Segment {}

/// Segments allocated or mapped by this process and not
/// released yet; see [`segments_in_use`].
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// How many blocks of shared memory this process holds: heap segments,
/// and mapped memfds not yet freed. Tests check it returns to
/// where it was once every handle is gone.
///
/// ```
/// # use parallelizer_core::{from_config, Array, backend::segments_in_use};
/// let par = from_config("serial").unwrap();
/// let a = par.share(Array::from(vec![1.0f64; 8])).unwrap();
/// assert!(segments_in_use() >= 1, "at least `a`");
/// ```
pub fn segments_in_use() -> usize {
    IN_USE.load(Ordering::SeqCst)
}

/// Counts one block of shared memory taken (`true`) or given back.
pub fn count_in_use(taken: bool) {
    if taken {
        IN_USE.fetch_add(1, Ordering::SeqCst);
    } else {
        IN_USE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Segment {
    /// Makes a segment of `layout` in `backing`, whose bytes are zero:
    /// writes the header. The creating rank calls it once; the others
    /// [`open`](Segment::open) the same memory.
    pub fn create(backing: Box<dyn Backing>, layout: Layout) -> Result<Segment> {
        check_backing(&*backing, layout.bytes())?;
        let seg = Segment(Arc::new(Inner { backing, layout }));
        let t = seg.table();
        t.word(table::W_SLOTS)
            .store(layout.slots as u64, Ordering::Relaxed);
        t.word(table::W_DATA_OFFSET)
            .store(layout.data_offset() as u64, Ordering::Relaxed);
        t.word(table::W_DATA_LEN)
            .store(layout.data_len as u64, Ordering::Relaxed);
        t.word(table::W_MAGIC)
            .store(table::MAGIC, Ordering::Release);
        Ok(seg)
    }

    /// A handle to a segment that another rank [created](Segment::create)
    /// in the memory `backing` maps: its header is checked (and its layout
    /// read once; later changes to the header are never trusted).
    pub fn open(backing: Box<dyn Backing>) -> Result<Segment> {
        check_backing(&*backing, table::HEADER)?;
        let len = backing.size();
        // Read the header words before the segment exists.
        // SAFETY: the backing is valid for `len >= HEADER` bytes, aligned
        // (checked above), and its header is only accessed atomically.
        let t = unsafe { Table::new(backing.base(), 0) };
        let word = |i: usize| t.word(i).load(Ordering::Acquire);
        let bad = |why: &str| {
            Error::Codec(format!(
                "a shared-memory segment ({} bytes of {}) {why}",
                len,
                backing.kind()
            ))
        };
        if word(table::W_MAGIC) != table::MAGIC {
            return Err(bad("is not a parallelizer segment"));
        }
        let slots = usize::try_from(word(table::W_SLOTS)).unwrap_or(usize::MAX);
        let data_len = usize::try_from(word(table::W_DATA_LEN)).unwrap_or(usize::MAX);
        let offset = word(table::W_DATA_OFFSET);
        if slots == 0 || slots > 1 << 16 {
            return Err(bad("has a corrupt header"));
        }
        let layout = Layout::new(data_len, slots);
        if layout.data_offset() as u64 != offset || layout.bytes() > len {
            return Err(bad("has a corrupt header"));
        }
        Ok(Segment(Arc::new(Inner { backing, layout })))
    }

    /// The segment's layout.
    pub fn layout(&self) -> Layout {
        self.0.layout
    }

    /// The kind of its memory (`"heap"`, `"memfd"`).
    pub fn kind(&self) -> &'static str {
        self.0.backing.kind()
    }

    /// Its backing, if it is a `B` (transports use it to find a memfd).
    pub fn backing<B: Backing>(&self) -> Option<&B> {
        self.0.backing.as_any().downcast_ref::<B>()
    }

    /// Whether both handles are to the same memory.
    pub fn same_memory(&self, other: &Segment) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.kind() == other.kind()
                && self.0.backing.identity() == other.0.backing.identity())
    }

    /// A handle that does not keep the memory alive (a backend's registry
    /// of what this process has mapped).
    pub fn downgrade(&self) -> WeakSegment {
        WeakSegment(Arc::downgrade(&self.0))
    }

    /// The borrow table.
    pub(crate) fn table(&self) -> Table {
        // SAFETY: the backing holds at least `layout.bytes()` bytes, which
        // start with the header and its `slots` slots, aligned to 128;
        // the header is only accessed through the table (atomically), and
        // the table is used while `self` (and so the backing) lives.
        unsafe { Table::new(self.0.backing.base(), self.0.layout.slots) }
    }

    /// The start of the data (`layout().data_len()` bytes, 128-aligned).
    /// Accessing it is sound only under a borrow of the table (or as
    /// atomics under an atomic borrow).
    pub(crate) fn data(&self) -> NonNull<u8> {
        let offset = self.0.layout.data_offset();
        // SAFETY: `offset <= layout.bytes() <= backing.size()`, so the
        // result is inside (or one past the end of) the backing's memory.
        unsafe { self.0.backing.base().add(offset) }
    }
}

/// A [`Segment`] handle that does not keep the memory alive.
#[derive(Clone, Debug, Default)]
pub struct WeakSegment(Weak<Inner>);

impl WeakSegment {
    /// The segment, if a handle to it is still alive in this process.
    pub fn upgrade(&self) -> Option<Segment> {
        self.0.upgrade().map(Segment)
    }
}

/// Checks what a [`Backing`] promises that can be checked: size and alignment.
fn check_backing(b: &dyn Backing, need: usize) -> Result<()> {
    if b.size() < need {
        return Err(Error::Codec(format!(
            "a shared-memory segment of {} bytes is smaller than the {need} its layout needs",
            b.size()
        )));
    }
    if !(b.base().as_ptr() as usize).is_multiple_of(SEGMENT_ALIGN) {
        return Err(Error::Codec(format!(
            "shared memory ({}) at {:p} is not {SEGMENT_ALIGN}-byte aligned",
            b.kind(),
            b.base()
        )));
    }
    Ok(())
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("kind", &self.kind())
            .field("data_len", &self.0.layout.data_len)
            .finish()
    }
}

/// Memory every rank of a parallelizer can address, for shared arrays
/// ([`Parallelizer::shared_memory`](crate::Parallelizer::shared_memory)).
///
/// ```
/// # use parallelizer_core::backend::{HEAP, Layout, SharedMemory};
/// let segs = HEAP.allocate(&[Layout::new(64, 4)]).unwrap();
/// assert_eq!(segs[0].layout().data_len(), 64);
/// ```
pub trait SharedMemory: Send + Sync {
    /// Zeroed segments of `layouts`, their headers written
    /// ([`Segment::create`]), allocated by this rank alone: main outside a
    /// region, main for every rank of a region (which then broadcasts the
    /// handles), or any rank that reallocates an entry of its own shared
    /// map. Another rank sees one when it receives a handle to it.
    fn allocate(&self, layouts: &[Layout]) -> Result<Vec<Segment>>;
}

/// Resolves a segment [token](Export::Token) on this rank.
pub type TokenResolver = fn(u64) -> Result<Segment>;

static RESOLVER: OnceLock<TokenResolver> = OnceLock::new();

/// Registers the resolver of [`Export::Token`]s (the MPI backend's
/// memfd tokens). One per process; a second registration is ignored.
pub fn set_token_resolver(resolve: TokenResolver) {
    let _ = RESOLVER.set(resolve);
}

/// The wire form of a segment handle. It carries the memory's identity,
/// which the receiver checks against what it got: a transport that handed
/// over the wrong attachment is an error, never other memory.
#[derive(Serialize, Deserialize)]
enum Wire {
    /// Attachment number `index` of the message.
    Attached {
        index: u32,
        layout: Layout,
        identity: (u64, u64),
    },
    /// A token the backend resolves, on the node that made it.
    Token {
        token: u64,
        layout: Layout,
        identity: (u64, u64),
        node: node::Node,
    },
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let layout = self.layout();
        let identity = self.0.backing.identity();
        let wire = match self.0.backing.export() {
            Export::Token(token) => Wire::Token {
                token,
                layout,
                identity,
                node: node::this_node().clone(),
            },
            Export::Attach => {
                let index = attach(Arc::new(self.clone())).ok_or_else(|| {
                    serde::ser::Error::custom(explain(format!(
                        "shared memory ({}) cannot be sent this way: shared arrays travel \
                         only in the messages of the parallelizer that made them \
                         (and {} memory only to ranks that can map it); \
                         `unshare()` gives an owned copy",
                        self.kind(),
                        self.kind()
                    )))
                })?;
                Wire::Attached {
                    index,
                    layout,
                    identity,
                }
            }
        };
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Segment, D::Error> {
        let (seg, layout, identity) = match Wire::deserialize(d)? {
            Wire::Attached {
                index,
                layout,
                identity,
            } => {
                let a = attached(index).ok_or_else(|| {
                    D::Error::custom(explain(format!(
                        "a shared-memory handle refers to attachment {index}, which did not \
                         arrive with the message"
                    )))
                })?;
                let seg = match (a.downcast_ref::<Segment>(), a.downcast_ref::<Error>()) {
                    (Some(seg), _) => seg.clone(),
                    // The transport could not open it; it says why.
                    (None, Some(e)) => return Err(D::Error::custom(explain(e))),
                    (None, None) => {
                        return Err(D::Error::custom(explain(
                            "the attachment of a shared-memory handle is not a segment",
                        )));
                    }
                };
                (seg, layout, identity)
            }
            Wire::Token {
                token,
                layout,
                identity,
                node,
            } => {
                let here = node::this_node();
                if node != *here {
                    return Err(D::Error::custom(explain(format!(
                        "a shared array made on {node} reached a rank on {here}: shared \
                         arrays are shared by the ranks of one node only; send the values \
                         (`unshare()`) to ranks on other nodes"
                    ))));
                }
                let resolve = RESOLVER.get().ok_or_else(|| {
                    D::Error::custom(explain(
                        "a shared-memory token, but no backend resolves tokens here",
                    ))
                })?;
                (
                    resolve(token).map_err(|e| D::Error::custom(explain(e)))?,
                    layout,
                    identity,
                )
            }
        };
        if seg.0.backing.identity() != identity {
            return Err(D::Error::custom(explain(format!(
                "a shared-memory handle arrived with other memory than it refers to \
                 ({} {:?}, expected {identity:?})",
                seg.kind(),
                seg.0.backing.identity()
            ))));
        }
        if seg.layout() != layout {
            return Err(D::Error::custom(explain(format!(
                "a shared-memory handle announces {layout:?} but its memory holds {:?}",
                seg.layout()
            ))));
        }
        Ok(seg)
    }
}

/// Segment handles as one message (what a backend broadcasts when main
/// allocates for every rank).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segments(pub Vec<Segment>);
