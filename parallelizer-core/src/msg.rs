//! Messages: what moves between ranks.
//!
//! A [`Msg`] is either a value that has not been encoded yet (threads move it
//! as is; the wire backends encode it when it leaves the process) or the bytes
//! that arrived from another process. The receiver decodes with the same
//! typed call the sender used, so one type serves every backend.

use std::any::{Any, type_name};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attach::{Attachment, INCOMING, reason, with_slot};
use crate::error::{Error, Result};
use crate::plain::{PlainBuf, PlainOps, PodType, vec_ops};
mod slice;
pub(crate) use slice::Parts;
mod wire;

/// What a payload must be to travel between ranks: serializable for the
/// process and MPI backends, `Send + 'static` for the threads backend, which
/// moves it without serializing.
///
/// Blanket-implemented; never implement it by hand.
///
/// ```
/// fn takes<T: parallelizer_core::Data>(_: T) {}
/// takes(vec![1.0f64, 2.0]);
/// takes((String::from("a"), 3u8));
/// ```
pub trait Data: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Data for T {}

/// How the bytes of a message are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// The serde codec (postcard).
    Serde,
    /// The raw bytes of a slice of plain data (`bytemuck::Pod`), no codec.
    Pod,
}

/// A payload on its way between ranks: either a value that has not been
/// encoded yet (threads move it as is; the wire backends encode it when it
/// leaves the process) or the bytes that arrived from another process. The
/// receiver decodes with the same typed call the sender used.
pub struct Msg {
    repr: Repr,
    /// For bytes from another process: the sender's type name, which the
    /// receiver checks against the type it asks for.
    sent_as: Option<Box<str>>,
    /// For bytes: what the value refers to out of band ([`Attachment`]).
    attached: Vec<Attachment>,
}

enum Repr {
    Value(Box<dyn Payload>),
    Bytes(Encoding, Bytes),
}

/// Received bytes: owned, or a shared read-only mapping (a large message
/// received through shared memory, read in place instead of copied out).
enum Bytes {
    Owned(Vec<u8>),
    /// `len` bytes in 8-byte words: plain data of 8-byte-aligned elements
    /// received straight into an allocation a `Vec<f64>` (say) can take over.
    Words(Vec<u64>, usize),
    Shared(Arc<dyn AsRef<[u8]> + Send + Sync>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Words(w, len) => &bytemuck::cast_slice(w)[..*len],
            Bytes::Shared(s) => (**s).as_ref(),
        }
    }
}

impl Bytes {
    fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Words(w, len) => bytemuck::cast_slice(&w)[..len].to_vec(),
            Bytes::Shared(s) => (*s).as_ref().to_vec(),
        }
    }

    fn cheap_clone(&self) -> Bytes {
        match self {
            Bytes::Owned(v) => Bytes::Owned(v.clone()),
            Bytes::Words(w, len) => Bytes::Words(w.clone(), *len),
            Bytes::Shared(s) => Bytes::Shared(s.clone()),
        }
    }
}

/// A value not yet encoded. Object-safe so that a backend can move, clone or
/// encode it without knowing its type.
trait Payload: Send {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    fn encoding(&self) -> Encoding;
    fn encode(&self, out: &mut Vec<u8>) -> Result<()>;
    fn pod_bytes(&self) -> Option<&[u8]>;
    /// The alignment of a plain-data payload's elements (1 otherwise).
    fn pod_align(&self) -> usize {
        1
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>>;
    fn type_name(&self) -> &'static str;
}

struct SerdeValue<T>(T);
struct CloneValue<T>(T);
struct PodVec<T>(Vec<T>);
/// A `Vec` of plain data that a generic call was given (`send(Vec<f64>)`):
/// on the wire it is its raw bytes, as with [`PodVec`].
struct PlainValue {
    vec: Box<dyn Any + Send>,
    ops: &'static dyn PlainOps,
}

impl Payload for PlainValue {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self.vec
    }
    fn encoding(&self) -> Encoding {
        Encoding::Pod
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(self.ops.bytes(&*self.vec));
        Ok(())
    }
    fn pod_bytes(&self) -> Option<&[u8]> {
        Some(self.ops.bytes(&*self.vec))
    }
    fn pod_align(&self) -> usize {
        self.ops.align()
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>> {
        Some(Box::new(PlainValue {
            vec: self.ops.clone_vec(&*self.vec),
            ops: self.ops,
        }))
    }
    fn type_name(&self) -> &'static str {
        self.ops.vec_name()
    }
}

impl<T: Data> Payload for SerdeValue<T> {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.0)
    }
    fn encoding(&self) -> Encoding {
        Encoding::Serde
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_serde(&self.0, out)
    }
    fn pod_bytes(&self) -> Option<&[u8]> {
        None
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>> {
        None
    }
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
}

impl<T: Data + Clone> Payload for CloneValue<T> {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.0)
    }
    fn encoding(&self) -> Encoding {
        Encoding::Serde
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_serde(&self.0, out)
    }
    fn pod_bytes(&self) -> Option<&[u8]> {
        None
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>> {
        Some(Box::new(CloneValue(self.0.clone())))
    }
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
}

impl<T: bytemuck::Pod + Send> Payload for PodVec<T> {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.0)
    }
    fn encoding(&self) -> Encoding {
        Encoding::Pod
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(bytemuck::cast_slice(&self.0));
        Ok(())
    }
    fn pod_bytes(&self) -> Option<&[u8]> {
        Some(bytemuck::cast_slice(&self.0))
    }
    fn pod_align(&self) -> usize {
        std::mem::align_of::<T>()
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>> {
        Some(Box::new(PodVec(self.0.clone())))
    }
    fn type_name(&self) -> &'static str {
        type_name::<Vec<T>>()
    }
}

// The codec is postcard (varint integers, no framing of its own), chosen
// over bincode 2 (standard configuration) by measurement: the same sizes
// within 2%, and faster decoding (Vec<f64> 1M: 1.4-1.9 ms vs 2.2-4.2 ms;
// Vec<u32> 1M: 1.4-2.0 vs 3.5-4.9; 100k structs: 13-19 vs 14-23), with
// encoding a tie. Figures: README, "Measurements" of the `processes` mode.

/// Encodes `value` with the framework's serde codec, appending to `out`.
pub(crate) fn encode_serde<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    crate::attach::clear_reason();
    postcard::to_extend(value, std::mem::take(out))
        .map(|bytes| *out = bytes)
        .map_err(|e| Error::Codec(format!("cannot encode {}: {}", type_name::<T>(), reason(e))))
}

/// Decodes a `T` from bytes made by [`encode_serde`]; trailing bytes are an error.
pub(crate) fn decode_serde<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    crate::attach::clear_reason();
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| Error::Codec(format!("cannot decode {}: {}", type_name::<T>(), reason(e))))?;
    if !rest.is_empty() {
        return Err(Error::Codec(format!(
            "decoding {} used {} of {} bytes: the sender sent another type",
            type_name::<T>(),
            bytes.len() - rest.len(),
            bytes.len()
        )));
    }
    Ok(value)
}

impl Msg {
    fn of(repr: Repr) -> Msg {
        Msg {
            repr,
            sent_as: None,
            attached: Vec::new(),
        }
    }

    /// The type of the value: its name for a value, the sender's for bytes
    /// that carry it ([`Msg::sent_as`]); `None` for bytes that do not.
    pub fn type_name(&self) -> Option<&str> {
        match &self.repr {
            Repr::Value(v) => Some(v.type_name()),
            Repr::Bytes(..) => self.sent_as.as_deref(),
        }
    }

    /// Records the sender's type name on bytes from another process, so the
    /// receiver's typed call can check it (a wrong-type receive is then
    /// [`Error::Codec`] naming both types instead of decoding the bytes as
    /// the wrong type).
    ///
    /// ```
    /// # use parallelizer_core::{Error, backend::{Encoding, Msg}};
    /// let m = Msg::new(123456789u64);
    /// let wire = Msg::from_bytes(Encoding::Serde, m.to_bytes().unwrap()).sent_as("u64");
    /// let err = wire.into_value::<i64>().unwrap_err();
    /// assert!(matches!(&err, Error::Codec(m) if m.contains("i64") && m.contains("u64")), "{err}");
    /// ```
    pub fn sent_as(mut self, type_name: &str) -> Msg {
        self.sent_as = Some(type_name.into());
        self
    }

    /// An error unless bytes that carry their sender's type name were sent
    /// as `expected`.
    fn check_sent_as(&self, expected: &str) -> Result<()> {
        match self.sent_as.as_deref() {
            Some(sent) if sent != expected => Err(Error::Codec(format!(
                "type mismatch: expected {expected} but the sender sent {sent}"
            ))),
            _ => Ok(()),
        }
    }

    /// Wraps a value; it is encoded only if it leaves the process.
    ///
    /// ```
    /// # use parallelizer_core::backend::Msg;
    /// let m = Msg::new(vec!["a".to_string()]);
    /// assert_eq!(m.into_value::<Vec<String>>().unwrap(), ["a"]);
    /// ```
    ///
    /// A `Vec` of plain data ([`is_plain`](crate::is_plain)) becomes a
    /// plain-data message: on the wire it is its raw bytes, as
    /// [`Msg::pod`] makes, so either typed call receives it.
    pub fn new<T: Data>(value: T) -> Msg {
        if let Some(ops) = vec_ops::<T>() {
            return Msg::plain(Box::new(value), ops);
        }
        Msg::of(Repr::Value(Box::new(SerdeValue(value))))
    }

    /// Wraps a value that always travels through the serde codec, even a
    /// vector of plain data: what regions' arguments are, which every
    /// backend sends as serde bytes.
    pub(crate) fn serde<T: Data>(value: T) -> Msg {
        Msg::of(Repr::Value(Box::new(SerdeValue(value))))
    }

    /// Wraps a value that backends may clone (broadcast hands every rank its
    /// own copy without serializing it).
    pub fn cloneable<T: Data + Clone>(value: T) -> Msg {
        if let Some(ops) = vec_ops::<T>() {
            return Msg::plain(Box::new(value), ops);
        }
        Msg::of(Repr::Value(Box::new(CloneValue(value))))
    }

    fn plain(vec: Box<dyn Any + Send>, ops: &'static dyn PlainOps) -> Msg {
        Msg::of(Repr::Value(Box::new(PlainValue { vec, ops })))
    }

    /// Wraps a vector of plain data; on the wire it is its raw bytes.
    ///
    /// ```
    /// # use parallelizer_core::backend::Msg;
    /// let m = Msg::pod(vec![1.5f64, 2.5]);
    /// assert_eq!(m.pod_bytes().unwrap().len(), 16);
    /// let wire = Msg::from_bytes(parallelizer_core::backend::Encoding::Pod, m.to_bytes().unwrap());
    /// assert_eq!(wire.into_pod::<f64>().unwrap(), [1.5, 2.5]);
    /// ```
    pub fn pod<T: bytemuck::Pod + Send>(values: Vec<T>) -> Msg {
        Msg::of(Repr::Value(Box::new(PodVec(values))))
    }

    /// The alignment of a plain-data value's elements, so a wire backend can
    /// receive it into memory the receiver's `Vec<T>` can take over; 1 for
    /// everything else.
    pub fn pod_align(&self) -> usize {
        match &self.repr {
            Repr::Value(v) => v.pod_align(),
            Repr::Bytes(..) => 1,
        }
    }

    /// Plain data that arrived as `len` bytes in 8-byte words (see
    /// [`Msg::pod_align`]).
    pub(crate) fn from_words(words: Vec<u64>, len: usize) -> Msg {
        debug_assert!(len <= words.len() * 8);
        Msg::of(Repr::Bytes(Encoding::Pod, Bytes::Words(words, len)))
    }

    /// A message that arrived as bytes from another process.
    pub fn from_bytes(encoding: Encoding, bytes: Vec<u8>) -> Msg {
        Msg::of(Repr::Bytes(encoding, Bytes::Owned(bytes)))
    }

    /// A message that arrived in shared memory, read in place: decoding or
    /// collecting plain data copies straight out of the mapping.
    pub fn from_shared(encoding: Encoding, bytes: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Msg {
        Msg::of(Repr::Bytes(encoding, Bytes::Shared(bytes)))
    }

    /// The encoding this message has or will have on the wire.
    pub fn encoding(&self) -> Encoding {
        match &self.repr {
            Repr::Value(v) => v.encoding(),
            Repr::Bytes(e, _) => *e,
        }
    }

    /// Whether this message is still an in-process value (not bytes).
    pub fn is_value(&self) -> bool {
        matches!(self.repr, Repr::Value(_))
    }

    /// Appends the wire form of this message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        match &self.repr {
            Repr::Value(v) => v.encode(out),
            Repr::Bytes(_, b) => {
                out.extend_from_slice(b);
                Ok(())
            }
        }
    }

    /// The wire form of this message.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Repr::Bytes(_, b) = &self.repr {
            return Ok(b.to_vec());
        }
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Turns this message into its wire form, without copying when it already is.
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        match self.repr {
            Repr::Bytes(_, b) => Ok(b.into_vec()),
            Repr::Value(v) => {
                let mut out = Vec::new();
                v.encode(&mut out)?;
                Ok(out)
            }
        }
    }

    /// The raw bytes of a plain-data message, borrowed (for vectored writes
    /// and shared memory); `None` for serde messages.
    pub fn pod_bytes(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Value(v) => v.pod_bytes(),
            Repr::Bytes(Encoding::Pod, b) => Some(b),
            Repr::Bytes(..) => None,
        }
    }

    /// The raw bytes of a message of plain data of type `ty`, checked: the
    /// sender's type (when the message carries it), the encoding, and a
    /// whole number of elements.
    pub(crate) fn plain_bytes(&self, ty: PodType) -> Result<&[u8]> {
        self.check_plain_type(ty)?;
        let bytes = self.pod_bytes().ok_or_else(|| {
            Error::Codec(format!(
                "expected plain data {} but the sender sent a serde value",
                ty.vec_name
            ))
        })?;
        if !ty.whole(bytes.len()) {
            return Err(Error::Codec(format!(
                "{} bytes is not a whole number of {}",
                bytes.len(),
                ty.name
            )));
        }
        Ok(bytes)
    }

    /// Whether this message's bytes are `shared`'s (a landed message:
    /// `link::Landing`).
    pub(crate) fn shares<T: ?Sized>(&self, shared: &Arc<T>) -> bool {
        match &self.repr {
            Repr::Bytes(_, Bytes::Shared(s)) => {
                std::ptr::addr_eq(Arc::as_ptr(s), Arc::as_ptr(shared))
            }
            _ => false,
        }
    }

    /// Checks that a message whose bytes are already in the caller's buffer
    /// (a landed one) is plain data of type `ty`.
    pub(crate) fn check_plain_type(&self, ty: PodType) -> Result<()> {
        match self.type_name() {
            Some(sent) if sent != ty.vec_name => Err(ty.mismatch(sent)),
            _ => Ok(()),
        }
    }

    /// Copies a message of plain data of type `ty` into `buf`, fitted to
    /// its length ([`PlainBuf::fit`]: a buffer of fixed length that is
    /// another length is [`Error::Length`]).
    pub(crate) fn copy_into(&self, ty: PodType, buf: &mut dyn PlainBuf) -> Result<()> {
        let bytes = self.plain_bytes(ty)?;
        buf.fit(ty.elements(bytes.len()))?.copy_from_slice(bytes);
        Ok(())
    }

    /// A message of the raw bytes of plain data of type `ty` (copied), in
    /// 8-byte words when `ty`'s elements are 8 bytes, so that a typed
    /// receive of a `Vec` of them takes the allocation over.
    pub(crate) fn plain_copy(ty: PodType, bytes: &[u8]) -> Msg {
        let msg = if ty.size.is_multiple_of(8) && ty.size > 0 {
            Msg::from_words(bytemuck::pod_collect_to_vec(bytes), bytes.len())
        } else {
            Msg::from_bytes(Encoding::Pod, bytes.to_vec())
        };
        msg.sent_as(ty.vec_name)
    }

    /// The message's size on the wire, when it is known without encoding
    /// it: bytes that arrived, and plain data; `None` for a value that was
    /// never encoded (the threads backend moves those as they are).
    pub fn byte_len(&self) -> Option<usize> {
        match &self.repr {
            Repr::Value(v) => v.pod_bytes().map(<[u8]>::len),
            Repr::Bytes(_, b) => Some(b.len()),
        }
    }

    /// A copy of this message, if it can be made without serializing
    /// (cloneable values, plain data and bytes).
    pub fn try_clone(&self) -> Option<Msg> {
        match &self.repr {
            Repr::Value(v) => v.try_clone().map(|v| Msg::of(Repr::Value(v))),
            Repr::Bytes(e, b) => Some(Msg {
                repr: Repr::Bytes(*e, b.cheap_clone()),
                sent_as: self.sent_as.clone(),
                attached: self.attached.clone(),
            }),
        }
    }

    /// A copy of this message, serializing it once if it cannot be cloned.
    pub fn duplicate(&self) -> Result<Msg> {
        match self.try_clone() {
            Some(m) => Ok(m),
            None => {
                let (bytes, attached) = self.to_wire()?;
                let bytes = Msg::from_wire(self.encoding(), bytes, attached);
                Ok(match self.type_name() {
                    Some(name) => bytes.sent_as(name),
                    None => bytes,
                })
            }
        }
    }

    /// Takes the value out, decoding it if it arrived as bytes.
    pub fn into_value<T: Data>(self) -> Result<T> {
        self.check_sent_as(type_name::<T>())?;
        match self.repr {
            Repr::Value(v) => downcast(v),
            Repr::Bytes(Encoding::Serde, b) if self.attached.is_empty() => decode_serde(&b),
            Repr::Bytes(Encoding::Serde, b) => {
                with_slot(&INCOMING, Some(self.attached), || decode_serde(&b)).0
            }
            Repr::Bytes(Encoding::Pod, b) => match vec_ops::<T>() {
                Some(ops) => {
                    let size = ops.pod_type().size.max(1);
                    if b.len() % size != 0 {
                        return Err(Error::Codec(format!(
                            "{} bytes is not a whole number of {}",
                            b.len(),
                            ops.pod_type().name
                        )));
                    }
                    let vec = match b {
                        Bytes::Owned(v) => ops.vec_from_owned(v),
                        Bytes::Words(w, len) => ops.vec_from_words(w, len),
                        shared => ops.vec_from_bytes(&shared),
                    };
                    Ok(*vec.downcast::<T>().expect("the ops of T's elements"))
                }
                None => Err(Error::Codec(format!(
                    "expected {} but the sender sent plain data (a *_pod call); \
                     use the matching *_pod call on every rank",
                    type_name::<T>()
                ))),
            },
        }
    }

    /// Takes a plain-data vector out, copying it out of the wire bytes.
    pub fn into_pod<T: bytemuck::Pod + Send>(self) -> Result<Vec<T>> {
        self.check_sent_as(type_name::<Vec<T>>())?;
        match self.repr {
            Repr::Value(v) => downcast(v),
            Repr::Bytes(Encoding::Pod, b) => {
                if b.len() % std::mem::size_of::<T>().max(1) != 0 {
                    return Err(Error::Codec(format!(
                        "{} bytes is not a whole number of {}",
                        b.len(),
                        type_name::<T>()
                    )));
                }
                // Byte-aligned types take the buffer as is; others are
                // copied into an allocation of their own alignment.
                // Buffers already aligned for `T` become the `Vec<T>` as
                // they are; others are copied into an allocation of `T`.
                match b {
                    Bytes::Owned(v) => match bytemuck::allocation::try_cast_vec::<u8, T>(v) {
                        Ok(v) => Ok(v),
                        Err((_, v)) => Ok(bytemuck::pod_collect_to_vec(&v)),
                    },
                    Bytes::Words(w, len) => match bytemuck::allocation::try_cast_vec::<u64, T>(w) {
                        Ok(mut v) => {
                            v.truncate(len / std::mem::size_of::<T>().max(1));
                            Ok(v)
                        }
                        Err((_, w)) => Ok(bytemuck::pod_collect_to_vec(
                            &bytemuck::cast_slice::<u64, u8>(&w)[..len],
                        )),
                    },
                    shared => Ok(bytemuck::pod_collect_to_vec(&shared)),
                }
            }
            Repr::Bytes(Encoding::Serde, _) => Err(Error::Codec(format!(
                "expected plain data Vec<{}> but the sender sent a serde value; \
                 use the matching call on every rank",
                type_name::<T>()
            ))),
        }
    }

    /// The in-process value of type `T` this message holds, or the message
    /// itself (a value of another type, or bytes): how a transport tells its
    /// own notes (a loan, a held body) from the messages it passes on.
    pub(crate) fn into_local_of<T: Send + 'static>(self) -> std::result::Result<T, Msg> {
        match &self.repr {
            Repr::Value(v) if v.type_name() == type_name::<T>() => Ok(self
                .into_local::<T>()
                .expect("a local value of this type name is of this type")),
            _ => Err(self),
        }
    }

    /// Takes an in-process value of any type out (values that never cross a
    /// process, such as a task's result on main).
    pub fn into_local<T: Send + 'static>(self) -> Result<T> {
        match self.repr {
            Repr::Value(v) => downcast(v),
            Repr::Bytes(..) => Err(Error::Codec(format!(
                "expected an in-process {} but got bytes from another process",
                type_name::<T>()
            ))),
        }
    }

    /// Wraps any in-process value that will not leave this process (it
    /// cannot be encoded; trying is a codec error).
    pub fn local<T: Send + 'static>(value: T) -> Msg {
        Msg::of(Repr::Value(Box::new(LocalValue(value))))
    }
}

struct LocalValue<T>(T);

impl<T: Send + 'static> Payload for LocalValue<T> {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.0)
    }
    fn encoding(&self) -> Encoding {
        Encoding::Serde
    }
    fn encode(&self, _: &mut Vec<u8>) -> Result<()> {
        Err(Error::Codec(format!(
            "{} is an in-process value and cannot be sent to another process",
            type_name::<T>()
        )))
    }
    fn pod_bytes(&self) -> Option<&[u8]> {
        None
    }
    fn try_clone(&self) -> Option<Box<dyn Payload>> {
        None
    }
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }
}

fn downcast<T: 'static>(v: Box<dyn Payload>) -> Result<T> {
    let sent = v.type_name();
    v.into_any().downcast::<T>().map(|b| *b).map_err(|_| {
        Error::Codec(format!(
            "type mismatch: expected {} but the sender sent {sent}",
            type_name::<T>()
        ))
    })
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Value(v) => write!(f, "Msg::Value({})", v.type_name()),
            Repr::Bytes(e, b) => write!(f, "Msg::Bytes({e:?}, {} bytes)", b.len()),
        }
    }
}

#[cfg(test)]
mod tests;
