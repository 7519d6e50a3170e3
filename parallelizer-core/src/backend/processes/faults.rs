//! Fault injection for the backend's own tests: the region each thread
//! runs (so a task can reach its rank's sockets), and hooks that write
//! what a broken or hostile peer would. Not a public API.

use std::cell::RefCell;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::link::Packet;
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};

use super::frame::Header;
use super::port::Net;

thread_local! {
    /// The regions running on this thread, innermost last.
    static CURRENT: RefCell<Vec<(Arc<Net>, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with region `region` of `net` as this thread's current region.
pub(super) fn with_port<T>(net: &Arc<Net>, region: u64, f: impl FnOnce() -> T) -> T {
    CURRENT.with(|c| c.borrow_mut().push((net.clone(), region)));
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().pop());
        }
    }
    let _pop = Pop;
    f()
}

/// This thread's current sockets and region.
fn current(hook: &str) -> Result<(Arc<Net>, u64)> {
    CURRENT
        .with(|c| c.borrow().last().cloned())
        .ok_or_else(|| Error::ContractViolation(format!("{hook} outside a processes region")))
}

/// Raw bytes written to rank `to` from the rank running on this thread,
/// outside the framing.
#[doc(hidden)]
pub fn __inject_raw(to: usize, bytes: &[u8]) -> Result<()> {
    let (net, _) = current("inject_raw")?;
    net.write_raw(to, bytes)
}

/// A frame header announcing `len` payload bytes.
#[doc(hidden)]
pub fn __frame_header(len: u64) -> Vec<u8> {
    let p = Packet::data(u64::MAX / 2, Tag::new(Op::Gather, 0), Msg::new(()));
    Header::packet(&p, 0, Encoding::Serde, len)
        .encode()
        .to_vec()
}

/// Sends rank `to`, as this rank's message of its first gather in the
/// current region, a sealed but sparse memfd announcing `len` bytes of
/// `Vec<u8>` plain data.
#[doc(hidden)]
pub fn __inject_sparse_memfd(to: usize, len: u64) -> Result<()> {
    let (net, region) = current("inject_sparse_memfd")?;
    net.send_sparse(to, region, Tag::new(Op::Gather, 0), len)
}

/// Makes the calling thread refuse loans from other processes, as a system
/// that forbids `process_vm_readv` between them would (`on`), or stops:
/// its receives then get the bytes as messages (the fallback's tests).
#[doc(hidden)]
pub fn __refuse_peer_reads(on: bool) {
    crate::link::refuse_on_this_thread(on);
}
