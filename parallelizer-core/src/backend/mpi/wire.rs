//! How messages travel: the tags of point-to-point messages, the header
//! words that describe a message, and framed broadcasts.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_int;

use super::calls;
use super::handles::{Comm, byte_type, u64_type};
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};

/// Tag of the header (encoding, length) of a point-to-point message longer
/// than [`INLINE`] bytes.
pub(super) const TAG_HEADER: c_int = 1;
/// Tag of the pieces of such a message's body.
pub(super) const TAG_BODY: c_int = 2;
/// Tag of a whole plain-data message in one MPI message (no header: its
/// receive learns the length from MPI).
pub(super) const TAG_POD: c_int = 3;
/// Tag of a whole serde message in one MPI message.
pub(super) const TAG_SERDE: c_int = 4;
/// Tag of a whole plain-data message of 8-byte-aligned elements (`f64`,
/// `u64`, ...), received into 8-byte words the receiver's `Vec<T>` takes over.
pub(super) const TAG_POD8: c_int = 5;

/// The longest point-to-point message sent whole; a longer one goes as a
/// header and then its body. A receive of unknown length can then be
/// posted on a buffer of this size before the message comes, which takes
/// it with one copy and one match, where a probe first makes MPI take it
/// as an unexpected message (copied once more) and match it twice. 4 KiB
/// is Open MPI's shared-memory eager limit: past it MPI answers with a
/// rendezvous anyway, which the 16-byte header ahead of it barely delays.
pub(super) const INLINE: usize = 4096;

/// The two header words that describe a message of `len` wire bytes: its
/// encoding and its length.
pub(super) fn describe(encoding: Encoding, len: usize) -> [u64; 2] {
    let encoding = match encoding {
        Encoding::Pod => 1,
        _ => 0,
    };
    [encoding, len as u64]
}

/// The header of a point-to-point message of `len` bytes sent as `tag`
/// ([`TAG_POD`], [`TAG_POD8`] or [`TAG_SERDE`]): [`describe`]'s words, with
/// plain data in whole 8-byte elements marked so that its receiver takes
/// the body into words.
pub(super) fn headed(tag: c_int, len: usize) -> [u64; 2] {
    let encoding = match tag {
        TAG_POD8 => 2,
        TAG_POD => 1,
        _ => 0,
    };
    [encoding, len as u64]
}

/// What the header words `desc` (as [`describe`] or [`headed`] made them)
/// say: whether the message is plain data, and its length in wire bytes.
pub(super) fn described(desc: &[u64]) -> (bool, usize) {
    (desc[0] != 0, desc[1] as usize)
}

/// Whether the header words `desc` say plain data of whole 8-byte elements
/// ([`headed`] with [`TAG_POD8`]).
pub(super) fn in_words(desc: &[u64]) -> bool {
    desc[0] == 2 && desc[1].is_multiple_of(8)
}

thread_local! {
    /// This thread's buffer for receives of unknown length ([`with_inbox`]).
    static INBOX: RefCell<Box<[u8]>> = RefCell::new(vec![0; INLINE].into_boxed_slice());
}

/// Runs `f` on this thread's inbox of [`INLINE`] bytes, on which a receive
/// of unknown length is posted (allocated once per thread, so such a
/// receive allocates nothing it does not return).
pub(super) fn with_inbox<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    INBOX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut inbox) => f(&mut inbox),
        // Taken further up this thread's stack (the backend never does
        // this itself): a buffer of its own.
        Err(_) => f(&mut vec![0; INLINE]),
    })
}

/// Where a message of `len` bytes lands: the receive buffer `fitted`
/// when it has a place for it, else `scratch` (zeroed to `len` bytes) with
/// the error, returned once the message is taken, so that the next receive
/// does not find it.
pub(super) fn or_scratch<'a>(
    fitted: Result<&'a mut [u8]>,
    len: usize,
    scratch: &'a mut Vec<u8>,
) -> (&'a mut [u8], Option<Error>) {
    match fitted {
        Ok(bytes) => (bytes, None),
        Err(e) => {
            *scratch = vec![0u8; len];
            (&mut scratch[..], Some(e))
        }
    }
}

/// The message that arrived as `bytes` with the header words `desc` (as
/// [`describe`] made them).
pub(super) fn arrived(desc: &[u64], bytes: Vec<u8>) -> Msg {
    let encoding = if described(desc).0 {
        Encoding::Pod
    } else {
        Encoding::Serde
    };
    Msg::from_bytes(encoding, bytes)
}

/// The lengths in a header of [`describe`] pairs, one pair per rank.
pub(super) fn lengths(header: &[u64]) -> Vec<usize> {
    header.chunks(2).map(|desc| described(desc).1).collect()
}

/// The wire bytes of `msg`, borrowed for plain data.
pub(super) fn wire(msg: &Msg) -> Result<Cow<'_, [u8]>> {
    Ok(match msg.pod_bytes() {
        Some(b) => Cow::Borrowed(b),
        None => Cow::Owned(msg.to_bytes()?),
    })
}

/// Broadcast of a few u64 words from `root`.
pub(super) fn bcast_words(comm: Comm, words: &mut [u64], root: usize) -> Result<()> {
    let n = words.len();
    calls::bcast(comm, u64_type(), bytemuck::cast_slice_mut(words), root, n)
}

/// Broadcast from `root` of a header of u64 words whose last word is the
/// length of a body of bytes, then of the body, in pieces of at most
/// `limit` bytes. The root passes `Some(body)` (it sets the length word);
/// the others pass `None`. Every rank gets the header and the body.
pub(super) fn bcast_framed(
    comm: Comm,
    root: usize,
    header: &mut [u64],
    body: Option<Vec<u8>>,
    limit: usize,
) -> Result<Vec<u8>> {
    let last = header.len() - 1;
    if let Some(body) = &body {
        header[last] = body.len() as u64;
    }
    bcast_words(comm, header, root)?;
    let mut body = body.unwrap_or_else(|| vec![0; header[last] as usize]);
    calls::bcast(comm, byte_type(), &mut body, root, limit)?;
    Ok(body)
}
