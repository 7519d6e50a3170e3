//! The process-global state of the runtime, all of it: the default
//! parallelizer and the stack of entered ones, weakly registered names, the
//! rank handle each thread is running (`current()`), the test a thread runs
//! and the counter of parallelizer ids.
//!
//! Everything else that lives for the whole process is either immutable (the
//! tables of link-time registrations, built once next to their registry) or
//! private to one backend (the MPI world, the processes launcher thread).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::error::Result;
use crate::outcome::Outcome;
use crate::parallelizer::Parallelizer;

/// The mutable, shared part: defaults and names.
struct Shared {
    named: HashMap<String, Weak<dyn Parallelizer>>,
    base: Option<Arc<dyn Parallelizer>>,
    entered: Vec<(u64, Arc<dyn Parallelizer>)>,
    next_token: u64,
}

fn shared() -> MutexGuard<'static, Shared> {
    static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            Mutex::new(Shared {
                named: HashMap::new(),
                base: None,
                entered: Vec::new(),
                next_token: 0,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The rank handles this thread is running, innermost last.
    static CURRENT: RefCell<Vec<Arc<dyn Parallelizer>>> = const { RefCell::new(Vec::new()) };
    /// The `#[parallelizer::test]` this thread runs, by path.
    static CURRENT_TEST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Whether main relays this process's output line by line with a
/// `[rank N] ` prefix (a processes worker): set when it joins.
static OUTPUT_RELAYED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The mark that starts a line which main's relay of a worker's output
/// prints as is, without its `[rank N] ` prefix (ASCII record separator,
/// removed by the relay).
pub(crate) const UNPREFIXED: &str = "\u{1e}";

/// Records that main relays this process's output with a prefix (only the
/// processes backend, Linux-only, does).
#[cfg(target_os = "linux")]
pub(crate) fn set_output_relayed() {
    OUTPUT_RELAYED.store(true, Ordering::Relaxed);
}

/// Whether main relays this process's output with a prefix.
pub(crate) fn output_relayed() -> bool {
    OUTPUT_RELAYED.load(Ordering::Relaxed)
}

/// Threads of this process computing a rank's share while the rank's own
/// thread waits on messages (main of a dynamically scheduled map). While
/// there are any, the backends' waits sleep at once rather than spin: a
/// spinning scheduler took a core from them (pool-style fine map on
/// processes:2, alternated: 11.1-12.1 ms with these waits sleeping,
/// 11.9-14.7 ms spinning).
static ALONGSIDE: AtomicUsize = AtomicUsize::new(0);

/// One more of something live in this process (a count in a static) for
/// as long as it lives.
pub(crate) struct Counted(&'static AtomicUsize);

impl Counted {
    pub(crate) fn new(count: &'static AtomicUsize) -> Counted {
        count.fetch_add(1, Ordering::SeqCst);
        Counted(count)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts this thread among those computing alongside a waiting one until
/// the guard is dropped ([`computing_alongside`]).
pub(crate) fn alongside() -> Counted {
    Counted::new(&ALONGSIDE)
}

/// Whether a thread of this process computes alongside one that waits on
/// messages: then waits should leave the core rather than spin (the waits
/// that spin are the processes backend's, MPI's and a wait for posts on
/// threads).
pub(crate) fn computing_alongside() -> bool {
    ALONGSIDE.load(Ordering::SeqCst) > 0
}

/// The cores this process may run on (1 if unknown): the default rank
/// count of the local backends. Asked once: `available_parallelism` reads
/// the cgroup files each time (about 10 µs), and the threads backend asks
/// on every region.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A new process-unique parallelizer id.
pub(crate) fn next_uid() -> u64 {
    static NEXT_UID: AtomicU64 = AtomicU64::new(1);
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}

/// The serial parallelizer that is the default when nothing else is, built
/// once by `build`.
pub(crate) fn stock_default(build: fn() -> Arc<dyn Parallelizer>) -> Arc<dyn Parallelizer> {
    static STOCK: OnceLock<Arc<dyn Parallelizer>> = OnceLock::new();
    STOCK.get_or_init(build).clone()
}

/// The innermost entered parallelizer, else the one set as the base default.
pub(crate) fn entered_or_base() -> Option<Arc<dyn Parallelizer>> {
    let st = shared();
    st.entered
        .last()
        .map(|(_, p)| p.clone())
        .or_else(|| st.base.clone())
}

/// Sets (or with `None` clears) the default used when nothing is entered.
pub(crate) fn set_base(par: Option<Arc<dyn Parallelizer>>) {
    shared().base = par;
}

/// Pushes an entered parallelizer; the token removes it again.
pub(crate) fn push_entered(par: Arc<dyn Parallelizer>) -> u64 {
    let mut st = shared();
    st.next_token += 1;
    let token = st.next_token;
    st.entered.push((token, par));
    token
}

/// Whether `par` is the innermost entered parallelizer (the default
/// outside a region).
pub(crate) fn is_innermost_entered(par: &dyn Parallelizer) -> bool {
    let par = std::ptr::from_ref(par).cast::<()>();
    shared()
        .entered
        .last()
        .is_some_and(|(_, top)| Arc::as_ptr(top).cast::<()>() == par)
}

/// Removes the entry `token` (guards may drop out of order).
pub(crate) fn pop_entered(token: u64) {
    shared().entered.retain(|(t, _)| *t != token);
}

/// Registers `par` under `name`, weakly.
pub(crate) fn register_named(name: &str, par: &Arc<dyn Parallelizer>) {
    shared().named.insert(name.to_string(), Arc::downgrade(par));
}

/// The live parallelizer registered under `name`.
pub(crate) fn named(name: &str) -> Option<Arc<dyn Parallelizer>> {
    let mut st = shared();
    match st.named.get(name).map(Weak::upgrade) {
        Some(Some(par)) => Some(par),
        Some(None) => {
            st.named.remove(name);
            None
        }
        None => None,
    }
}

/// The names of the registered parallelizers still alive, sorted.
pub(crate) fn named_alive() -> Vec<String> {
    let mut st = shared();
    st.named.retain(|_, w| w.strong_count() > 0);
    let mut names: Vec<String> = st.named.keys().cloned().collect();
    names.sort();
    names
}

/// The rank handle this thread runs, innermost.
pub(crate) fn current_rank() -> Option<Arc<dyn Parallelizer>> {
    CURRENT.with(|c| c.borrow().last().cloned())
}

/// The rank handle this thread runs in a region of the parallelizer whose
/// id is `uid` (rank handles carry their parallelizer's id as their family).
pub(crate) fn rank_in(uid: u64) -> Option<Arc<dyn Parallelizer>> {
    if uid == 0 {
        return None; // not built through `new`: no rank handle can be its
    }
    CURRENT.with(|c| {
        c.borrow()
            .iter()
            .rev()
            .find(|r| r.core().uid() == uid && r.in_region())
            .cloned()
    })
}

/// Whether this thread is running `par` as a rank handle (it is
/// [`current`](crate::current), or further out in a nested region).
pub(crate) fn is_current(par: &dyn Parallelizer) -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .iter()
            .any(|r| std::ptr::addr_eq(Arc::as_ptr(r), par as *const dyn Parallelizer))
    })
}

/// The `Arc` of `par` if this thread runs it as a rank handle.
pub(crate) fn current_as(par: &dyn Parallelizer) -> Option<Arc<dyn Parallelizer>> {
    CURRENT.with(|c| {
        c.borrow()
            .iter()
            .rev()
            .find(|r| std::ptr::addr_eq(Arc::as_ptr(r), par as *const dyn Parallelizer))
            .cloned()
    })
}

/// Runs `f` as rank `rank`: [`current`](crate::current) is `rank` on this
/// thread meanwhile, and a panic is caught into the [`Outcome`]. Every
/// backend runs each rank's part of a region through this.
///
/// ```
/// use parallelizer_core::{current, get_default, backend::{run_as, Outcome}};
/// let par = get_default();
/// let out = run_as(&par, |p| Ok(p.nprocs() + current().nprocs()));
/// assert!(matches!(out, Outcome::Done(2)));
/// ```
pub fn run_as<P, T>(rank: &Arc<P>, f: impl FnOnce(&P) -> Result<T>) -> Outcome<T>
where
    P: Parallelizer + ?Sized,
    Arc<P>: Into<Arc<dyn Parallelizer>>,
{
    let handle: Arc<dyn Parallelizer> = rank.clone().into();
    let _current = set_current(handle);
    Outcome::catch(|| f(rank))
}

/// Makes `rank` what [`current`](crate::current) returns on this thread
/// until the guard drops. Backends call this around every task they run.
///
/// ```
/// use parallelizer_core::{current, from_config, backend::set_current};
/// let par = from_config("threads:2").unwrap();
/// {
///     let _g = set_current(par.clone());
///     assert_eq!(current().nprocs(), 2);
/// }
/// assert_eq!(current().nprocs(), 1);
/// ```
pub fn set_current(rank: Arc<dyn Parallelizer>) -> CurrentGuard {
    CURRENT.with(|c| c.borrow_mut().push(rank));
    CurrentGuard(())
}

/// Restores the previous [`current`](crate::current) on drop.
#[must_use = "current() is restored when the guard drops"]
pub struct CurrentGuard(());

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().pop());
    }
}

/// Records the `#[parallelizer::test]` this thread runs.
pub(crate) fn set_current_test(path: &str) {
    CURRENT_TEST.with(|t| *t.borrow_mut() = Some(path.to_string()));
}

/// The path of the `#[parallelizer::test]` this thread runs.
pub(crate) fn current_test_path() -> Option<String> {
    CURRENT_TEST.with(|t| t.borrow().clone())
}

#[cfg(all(test, any(target_os = "linux", feature = "mpi")))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_computes_alongside_while_any_of_its_guards_lives() {
        let outer = alongside();
        assert!(computing_alongside());
        drop(alongside());
        // (Other tests' maps may hold guards too: only presence is checked.)
        assert!(computing_alongside(), "the outer guard still counts");
        drop(outer);
    }
}
