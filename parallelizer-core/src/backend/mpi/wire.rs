//! How messages travel: the tags of point-to-point messages, the header
//! words that describe a message, and framed broadcasts.

use std::borrow::Cow;
use std::ffi::c_int;

use super::calls;
use super::handles::{Comm, byte_type, u64_type};
use crate::error::Result;
use crate::msg::{Encoding, Msg};

/// Tag of message headers (encoding, length) of point-to-point messages
/// too large for one MPI message.
pub(super) const TAG_HEADER: c_int = 1;
/// Tag of the pieces of such a message.
pub(super) const TAG_BODY: c_int = 2;
/// Tag of a whole plain-data message in one MPI message (its size comes
/// from the probe, so no header travels).
pub(super) const TAG_POD: c_int = 3;
/// Tag of a whole serde message in one MPI message.
pub(super) const TAG_SERDE: c_int = 4;
/// Tag of a whole plain-data message of 8-byte-aligned elements (`f64`,
/// `u64`, ...), received into 8-byte words the receiver's `Vec<T>` takes over.
pub(super) const TAG_POD8: c_int = 5;

/// The two header words that describe a message of `len` wire bytes: its
/// encoding and its length.
pub(super) fn describe(encoding: Encoding, len: usize) -> [u64; 2] {
    let encoding = match encoding {
        Encoding::Pod => 1,
        _ => 0,
    };
    [encoding, len as u64]
}

/// What the header words `desc` (as [`describe`] made them) say: whether
/// the message is plain data, and its length in wire bytes.
pub(super) fn described(desc: &[u64]) -> (bool, usize) {
    (desc[0] == 1, desc[1] as usize)
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
