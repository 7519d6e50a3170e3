//! Point-to-point MPI calls: blocking sends and receives of bytes (one
//! message, or pieces of at most `limit` elements), a receive of any tag
//! posted on the caller's buffer, and probes. Conventions as in
//! `calls.rs`.

use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::time::Instant;

use mpi::ffi;

use super::super::handles::{
    self, Comm, Datatype, byte_type, call, call_or_truncated, int, mpi_error,
};
use super::super::plan::pieces;
use super::super::ulfm;
use super::super::wait::poll_until;
use crate::error::{Error, Result};

/// Sends `count` elements of `ty` at the start of `bytes` (which holds
/// exactly that many) to `to`.
fn send_piece(comm: Comm, ty: Datatype<'_>, bytes: &[u8], to: c_int, tag: c_int) -> Result<()> {
    let count = int(bytes.len() / ty.size().max(1), "MPI_Send", "count")?;
    call("MPI_Send", || {
        // SAFETY: `bytes` holds `count` elements of `ty` (callers pass whole
        // elements), only read.
        unsafe { ffi::MPI_Send(bytes.as_ptr().cast(), count, ty.raw(), to, tag, comm.raw()) }
    })
}

/// Starts sending `buf`, which lives as long as the program, to `to` as one
/// message and lets it complete on its own (`MPI_Isend`, then
/// `MPI_Request_free`): the sender does not wait for the receiver.
pub(crate) fn isend_static(comm: Comm, buf: &'static [u8], to: usize, tag: c_int) -> Result<()> {
    // SAFETY: `buf` is never freed, so it outlives the send.
    let mut request = unsafe { isend_raw(comm, buf.as_ptr(), buf.len(), to, tag)? };
    call("MPI_Request_free", || {
        // SAFETY: `request` is the active request just started; freeing it
        // lets the send complete without a wait (its buffer is static).
        unsafe { ffi::MPI_Request_free(&mut request) }
    })
}

/// Sends `buf` to `to` as exactly one MPI message of bytes (also when empty).
pub(crate) fn send_one(comm: Comm, buf: &[u8], to: usize, tag: c_int) -> Result<()> {
    send_piece(comm, byte_type(), buf, int(to, "MPI_Send", "rank")?, tag)
}

/// Receives exactly one MPI message of `buf.len()` bytes from `from` into
/// `buf` (also when empty: a zero-length message is taken too).
pub(crate) fn recv_one(comm: Comm, buf: &mut [u8], from: usize, tag: c_int) -> Result<()> {
    // SAFETY: `buf` holds `buf.len()` bytes.
    unsafe { recv_bytes(comm, buf.as_mut_ptr().cast(), buf.len(), from, tag) }.map(drop)
}

/// One receive of at most `len` bytes from `from` with `tag` into `buf`
/// ([`receive`]); its status.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes.
unsafe fn recv_bytes(
    comm: Comm,
    buf: *mut c_void,
    len: usize,
    from: usize,
    tag: c_int,
) -> Result<ffi::MPI_Status> {
    let count = int(len, "MPI_Recv", "count")?;
    let from = int(from, "MPI_Recv", "rank")?;
    // SAFETY: the caller's contract: `buf` takes `count` bytes.
    let (_, status) = unsafe { receive(comm, byte_type(), buf, count, from, tag, false)? };
    Ok(status)
}

/// Receives `count` elements of `ty` from `from` with `tag` (or
/// `MPI_ANY_TAG`) into `buf`: whether the message was longer than `buf`
/// (allowed if `cut_ok`: MPI kept what fit and dropped the rest; else that
/// is an error too), and its status.
///
/// One `MPI_Recv`, except under ULFM: there an `MPI_Irecv` is polled
/// until it completes or `comm` is revoked. Open MPI 5.0.11 does not
/// always complete a receive blocked inside MPI when another thread of the
/// same rank revokes its communicator: once in a CI run and once in 24
/// runs of the fault-matrix cell of a late rank, main stayed in its
/// `MPI_Recv` after its own deadline watchdog's revoke (`fate.rs`) while
/// the others waited for it in their agreement (and once in 30 runs of the
/// whole fault-matrix job; the polled build 0 in 30). Polled, the receive
/// sees the revoke itself, cancels, and fails as the released call would (a
/// release: see `handles::revoked`).
///
/// # Safety
///
/// `buf` must be valid for writes of `count` elements of `ty`; MPI writes
/// no more (a longer message is an `MPI_ERR_TRUNCATE`, not a write past
/// them), and none after this returns.
unsafe fn receive(
    comm: Comm,
    ty: Datatype<'_>,
    buf: *mut c_void,
    count: c_int,
    from: c_int,
    tag: c_int,
    cut_ok: bool,
) -> Result<(bool, ffi::MPI_Status)> {
    let mut status = empty_status();
    if !handles::ulfm_active() {
        let cut = finish(cut_ok, "MPI_Recv", || {
            // SAFETY: the caller's contract covers `buf`; `status` is a
            // valid out-parameter; `comm` and `ty` are valid handles
            // (`handles.rs`).
            unsafe { ffi::MPI_Recv(buf, count, ty.raw(), from, tag, comm.raw(), &mut status) }
        })?;
        return Ok((cut, status));
    }
    // SAFETY: reads a constant of rsmpi's C shim.
    let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
    let null = request;
    call("MPI_Irecv", || {
        // SAFETY: as for MPI_Recv above; `buf` stays valid until the
        // request completes or is cancelled and waited for, below, before
        // this returns; `request` is a valid out-parameter.
        unsafe { ffi::MPI_Irecv(buf, count, ty.raw(), from, tag, comm.raw(), &mut request) }
    })?;
    let mut cut = false;
    let polled = poll_until(None, || {
        let mut done: c_int = 0;
        cut = finish(cut_ok, "MPI_Recv", || {
            // SAFETY: `request` is the receive started above (or null once
            // complete); `done` and `status` are valid out-parameters.
            unsafe { ffi::MPI_Test(&mut request, &mut done, &mut status) }
        })?;
        Ok(done != 0 || cut || ulfm::is_revoked(comm))
    });
    if request == null {
        // Completed: received, cut, or failed (a release among failures).
        return polled.map(|_| (cut, status));
    }
    // Revoked while pending, or the test itself failed: MPI must be done
    // with `buf` before it is given back.
    // SAFETY: `request` is the pending receive started above.
    let received = unsafe { cancel(&mut request, &mut status, cut_ok) };
    match (polled, received) {
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(Some(cut))) => Ok((cut, status)),
        (Ok(_), Ok(None)) => Err(handles::revoked("MPI_Recv")),
    }
}

/// [`call`], or [`call_or_truncated`] if `cut_ok` (`Ok(true)`: cut).
fn finish(cut_ok: bool, name: &str, f: impl FnOnce() -> c_int) -> Result<bool> {
    if cut_ok {
        call_or_truncated(name, f)
    } else {
        call(name, f).map(|()| false)
    }
}

/// Cancels the pending receive `request` and waits for it (a wait for a
/// cancelled operation returns whatever the other ranks do): `None` if it
/// was cancelled, else its message came first and was received (`Some`:
/// whether it was cut, see [`receive`]).
///
/// # Safety
///
/// `request` must be a pending receive this thread started.
unsafe fn cancel(
    request: &mut ffi::MPI_Request,
    status: &mut ffi::MPI_Status,
    cut_ok: bool,
) -> Result<Option<bool>> {
    // A failed cancel leaves the receive to complete: the wait still ends
    // it (and reports how).
    let _ = call("MPI_Cancel", || {
        // SAFETY: the caller's contract.
        unsafe { ffi::MPI_Cancel(request) }
    });
    let cut = finish(cut_ok, "MPI_Wait", || {
        // SAFETY: `request` is the receive just cancelled; `status` is a
        // valid out-parameter.
        unsafe { ffi::MPI_Wait(request, status) }
    })?;
    let mut cancelled: c_int = 0;
    call("MPI_Test_cancelled", || {
        // SAFETY: `status` was filled in by the wait; `cancelled` is a
        // valid out-parameter.
        unsafe { ffi::MPI_Test_cancelled(status, &mut cancelled) }
    })?;
    Ok((cancelled == 0).then_some(cut))
}

/// What [`recv_any_tag`] took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Took {
    /// The message's tag.
    pub tag: c_int,
    /// Its length in bytes; `None` if it was longer than the buffer (MPI
    /// kept what fit and dropped the rest).
    pub len: Option<usize>,
}

/// Receives the next point-to-point message from `from`, whatever its tag,
/// straight into `buf`: one receive with `MPI_ANY_TAG` ([`receive`]). Unlike a probe
/// followed by a receive, a receive posted before the message arrives
/// takes it without the copy MPI makes of an unexpected message, and
/// matches once.
pub(crate) fn recv_any_tag(comm: Comm, buf: &mut [u8], from: usize) -> Result<Took> {
    let count = int(buf.len(), "MPI_Recv", "count")?;
    let from = int(from, "MPI_Recv", "rank")?;
    // SAFETY: `buf` holds exactly `count` bytes; MPI_ANY_TAG is a
    // predefined constant of rsmpi's C shim.
    let (cut, status) = unsafe {
        receive(
            comm,
            byte_type(),
            buf.as_mut_ptr().cast(),
            count,
            from,
            ffi::RSMPI_ANY_TAG,
            true,
        )?
    };
    let len = if cut {
        None
    } else {
        Some(byte_count(&status, "MPI_Recv")?)
    };
    Ok(Took {
        tag: status.MPI_TAG,
        len,
    })
}

/// Blocking send of `buf` (elements of `ty`) to `to`, in messages of at
/// most `limit` elements.
pub(crate) fn send(
    comm: Comm,
    ty: Datatype<'_>,
    buf: &[u8],
    to: usize,
    tag: c_int,
    limit: usize,
) -> Result<()> {
    let size = ty.size();
    let to = int(to, "MPI_Send", "rank")?;
    for piece in pieces(buf.len() / size.max(1), limit) {
        send_piece(
            comm,
            ty,
            &buf[piece.start * size..piece.end * size],
            to,
            tag,
        )?;
    }
    Ok(())
}

/// Starts sending the `len` bytes at `ptr` to `to` as one message
/// (`MPI_Isend`); its request, for [`test_all`].
///
/// # Safety
///
/// The bytes must stay valid and unchanged until the request completes.
pub(crate) unsafe fn isend_raw(
    comm: Comm,
    ptr: *const u8,
    len: usize,
    to: usize,
    tag: c_int,
) -> Result<ffi::MPI_Request> {
    let count = int(len, "MPI_Isend", "count")?;
    let to = int(to, "MPI_Isend", "rank")?;
    let mut request = MaybeUninit::<ffi::MPI_Request>::uninit();
    call("MPI_Isend", || {
        // SAFETY: the caller's contract: `ptr` holds `count` bytes that
        // outlive the send, only read; `request` is a valid out-parameter.
        unsafe {
            ffi::MPI_Isend(
                ptr.cast(),
                count,
                byte_type().raw(),
                to,
                tag,
                comm.raw(),
                request.as_mut_ptr(),
            )
        }
    })?;
    // SAFETY: MPI_Isend succeeded, so it wrote the request handle.
    Ok(unsafe { request.assume_init() })
}

/// Sends each of `parts` (a receiver and its bytes) as one message of
/// `tag`, all started (`MPI_Isend`) before any is waited for, then polled
/// to completion (`wait.rs`): receivers that copy a large message out of
/// the sender's memory themselves (Open MPI's shared-memory transport) then
/// copy at once rather than one after the other. `meanwhile` runs once the
/// sends are started and before they are waited for (the sender's own
/// work, which then overlaps the receivers' copies); its error is returned
/// after the sends completed, unless starting or completing them failed
/// first.
pub(crate) fn send_all(
    comm: Comm,
    parts: &[(usize, &[u8])],
    tag: c_int,
    meanwhile: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let count = int(parts.len(), "MPI_Testall", "count")?;
    // SAFETY: reads a constant of rsmpi's C shim.
    let null = unsafe { ffi::RSMPI_REQUEST_NULL };
    let mut requests = vec![null; parts.len()];
    let mut started = Ok(());
    for (request, &(to, bytes)) in requests.iter_mut().zip(parts) {
        // SAFETY: `bytes` outlives the send: every request started here is
        // complete before this function returns (waited for below on every
        // path).
        match unsafe { isend_raw(comm, bytes.as_ptr(), bytes.len(), to, tag) } {
            Ok(started) => *request = started,
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    // A panic of `meanwhile` waits for the sends too: they read `parts`,
    // which its unwinding may free.
    let own = started
        .is_ok()
        .then(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(meanwhile)));
    let sent = started.and_then(|()| poll_until(None, || test_all(&mut requests, "MPI_Testall")));
    if sent.is_err() && requests.iter().any(|r| *r != null) {
        // MPI may read the parts until their sends complete, which a failed
        // peer's do (with an error, ignored: `sent` says it).
        let _ = call("MPI_Waitall", || {
            // SAFETY: as for MPI_Testall above.
            unsafe { ffi::MPI_Waitall(count, requests.as_mut_ptr(), ffi::RSMPI_STATUSES_IGNORE) }
        });
    }
    match own {
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        Some(Ok(own)) => sent.and(own),
        None => sent.map(drop),
    }
}

/// Whether the operations of all `requests` completed (`MPI_Testall`,
/// which then sets them to `MPI_REQUEST_NULL`; null requests are complete);
/// a failure is named `name`.
pub(crate) fn test_all(requests: &mut [ffi::MPI_Request], name: &str) -> Result<bool> {
    let count = int(requests.len(), name, "count")?;
    let mut done: c_int = 0;
    call(name, || {
        // SAFETY: `requests` holds `count` requests this rank started, or
        // MPI_REQUEST_NULL; MPI_STATUSES_IGNORE is a predefined constant of
        // rsmpi's C shim.
        unsafe {
            ffi::MPI_Testall(
                count,
                requests.as_mut_ptr(),
                &mut done,
                ffi::RSMPI_STATUSES_IGNORE,
            )
        }
    })?;
    Ok(done != 0)
}

/// Blocking receive of exactly `buf.len()` bytes (elements of `ty`) from
/// `from`, in messages of at most `limit` elements.
pub(crate) fn recv(
    comm: Comm,
    ty: Datatype<'_>,
    buf: &mut [u8],
    from: usize,
    tag: c_int,
    limit: usize,
) -> Result<()> {
    let size = ty.size();
    let from = int(from, "MPI_Recv", "rank")?;
    for piece in pieces(buf.len() / size.max(1), limit) {
        let bytes = &mut buf[piece.start * size..piece.end * size];
        let count = int(piece.len(), "MPI_Recv", "count")?;
        // SAFETY: `bytes` holds exactly `count` elements of `ty`.
        unsafe { receive(comm, ty, bytes.as_mut_ptr().cast(), count, from, tag, false)? };
    }
    Ok(())
}

/// An all-zero status, the starting value of an out-parameter.
fn empty_status() -> ffi::MPI_Status {
    // SAFETY: MPI_Status is a C struct of integer fields, for which all
    // zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The number of bytes a received or probed message holds.
fn byte_count(status: &ffi::MPI_Status, name: &str) -> Result<usize> {
    let mut count: c_int = 0;
    call("MPI_Get_count", || {
        // SAFETY: `status` was filled in by a successful receive or probe.
        unsafe { ffi::MPI_Get_count(status, byte_type().raw(), &mut count) }
    })?;
    // MPI_UNDEFINED (negative) cannot happen for bytes, but is no length.
    match usize::try_from(count) {
        Ok(count) => Ok(count),
        Err(_) => Err(no_size(name, count)),
    }
}

/// The error of [`byte_count`]: a count that is no size.
#[cold]
#[inline(never)]
fn no_size(name: &str, count: c_int) -> Error {
    mpi_error(name, format_args!("message size {count}"))
}

/// Receives `count` bytes from `from` with `tag`, sent as messages of at
/// most `limit` bytes (one message when `count` is within it, also when
/// empty), into a fresh `Vec<W>` (bytes, or 8-byte words for plain data
/// the receiver's `Vec<f64>` can take over) that is written once, not
/// zeroed first. `count` must be a whole number of `W`s.
pub(crate) fn recv_exact<W: bytemuck::Pod>(
    comm: Comm,
    from: usize,
    tag: c_int,
    count: usize,
    limit: usize,
) -> Result<Vec<W>> {
    let width = std::mem::size_of::<W>();
    if !count.is_multiple_of(width) {
        return Err(mpi_error(
            "MPI_Recv",
            format_args!("{count} bytes are not whole {width}-byte words"),
        ));
    }
    let n = count / width;
    let mut body: Vec<W> = Vec::with_capacity(n);
    let start: *mut u8 = body.as_mut_ptr().cast();
    let one = std::iter::once(0..0).filter(|_| count == 0);
    for piece in pieces(count, limit).chain(one) {
        // SAFETY: `piece` lies within the `count` bytes `body` has capacity
        // for.
        let status =
            unsafe { recv_bytes(comm, start.add(piece.start).cast(), piece.len(), from, tag)? };
        // Another thread receiving from the same rank may have taken the
        // expected message: only what arrived is initialized.
        let got = byte_count(&status, "MPI_Recv")?;
        if got != piece.len() {
            return Err(mpi_error(
                "MPI_Recv",
                format_args!(
                    "expected {} bytes from rank {from}, got {got} (another thread receiving \
                     from that rank?)",
                    piece.len()
                ),
            ));
        }
    }
    // SAFETY: the receives wrote every one of the `count` bytes (each piece
    // checked just above), which are `n` whole elements of a type valid for
    // any bit pattern.
    unsafe { body.set_len(n) };
    Ok(body)
}

/// Waits for the next point-to-point message from `from`, whatever its tag:
/// `Some((tag, bytes))`, or `None` if `deadline` passed first. Without a
/// deadline it blocks inside MPI, except under ULFM, where it polls until
/// the message comes or `comm` is revoked (see [`receive`]).
pub(crate) fn probe_any(
    comm: Comm,
    from: usize,
    deadline: Option<Instant>,
) -> Result<Option<(c_int, usize)>> {
    let from = int(from, "MPI_Probe", "rank")?;
    let mut status = empty_status();
    if deadline.is_none() && !handles::ulfm_active() {
        call("MPI_Probe", || {
            // SAFETY: `status` is a valid out-parameter; MPI_ANY_TAG is a
            // predefined constant of rsmpi's C shim.
            unsafe { ffi::MPI_Probe(from, ffi::RSMPI_ANY_TAG, comm.raw(), &mut status) }
        })?;
        return Ok(Some((status.MPI_TAG, byte_count(&status, "MPI_Probe")?)));
    }
    let mut found = false;
    let stop = poll_until(deadline, || {
        let mut flag: c_int = 0;
        call("MPI_Iprobe", || {
            // SAFETY: `flag` and `status` are valid out-parameters;
            // MPI_ANY_TAG is a predefined constant of rsmpi's C shim.
            unsafe { ffi::MPI_Iprobe(from, ffi::RSMPI_ANY_TAG, comm.raw(), &mut flag, &mut status) }
        })?;
        found = flag != 0;
        Ok(found || ulfm::is_revoked(comm))
    })?;
    match (stop, found) {
        (_, true) => Ok(Some((status.MPI_TAG, byte_count(&status, "MPI_Probe")?))),
        (true, false) => Err(handles::revoked("MPI_Probe")),
        (false, false) => Ok(None),
    }
}
