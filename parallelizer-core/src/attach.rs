//! Objects that an encoded message refers to out of band (attachments),
//! and the reasons a `Serialize`/`Deserialize` impl gives for failing: the
//! thread-local side channels of the serde codec (`msg`).

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

/// An object that an encoded message refers to out of band, by its index in
/// the message's attachments: a shared-memory segment, which travels as a
/// reference (an `Arc` between threads, a file descriptor between
/// processes), never as bytes.
///
/// A value's `Serialize` impl registers one with [`attach`] while a message
/// is encoded by [`Msg::to_wire`](crate::backend::Msg::to_wire), and its `Deserialize` impl finds it again
/// with [`attached`] while the message is decoded. A transport that moves
/// bytes between processes turns each attachment into something the other
/// process can open (the processes backend passes a memfd with
/// `SCM_RIGHTS`) and hands the receiver's attachments to
/// [`Msg::from_wire`](crate::backend::Msg::from_wire).
pub type Attachment = Arc<dyn Any + Send + Sync>;

thread_local! {
    /// The attachments of the message being encoded on this thread by
    /// [`Msg::to_wire`](crate::backend::Msg::to_wire); `None` when the encoding carries none.
    pub(crate) static OUTGOING: RefCell<Option<Vec<Attachment>>> = const { RefCell::new(None) };
    /// The attachments of the message being decoded on this thread.
    pub(crate) static INCOMING: RefCell<Option<Vec<Attachment>>> = const { RefCell::new(None) };
}

/// Registers `a` with the message being encoded on this thread and returns
/// its index, for a `Serialize` impl of a value that travels by reference.
/// `None` when the encoding carries no attachments (plain
/// [`Msg::to_bytes`](crate::backend::Msg::to_bytes), or a transport that cannot move them): the value
/// cannot be sent that way.
pub fn attach(a: Attachment) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let list = o.as_mut()?;
        list.push(a);
        Some((list.len() - 1) as u32)
    })
}

/// Attachment `index` of the message being decoded on this thread, for a
/// `Deserialize` impl; `None` when there is no such attachment.
pub fn attached(index: u32) -> Option<Attachment> {
    INCOMING.with(|i| i.borrow().as_ref()?.get(index as usize).cloned())
}

/// Runs `f` with `slot` (of this thread) set to `value`, restoring what was
/// there before even if `f` panics.
pub(crate) fn with_slot<R>(
    slot: &'static std::thread::LocalKey<RefCell<Option<Vec<Attachment>>>>,
    value: Option<Vec<Attachment>>,
    f: impl FnOnce() -> R,
) -> (R, Option<Vec<Attachment>>) {
    struct Restore {
        slot: &'static std::thread::LocalKey<RefCell<Option<Vec<Attachment>>>>,
        previous: Option<Option<Vec<Attachment>>>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.previous.take() {
                self.slot.with(|s| *s.borrow_mut() = previous);
            }
        }
    }
    let previous = slot.with(|s| s.replace(value));
    let mut restore = Restore {
        slot,
        previous: Some(previous),
    };
    let r = f();
    let previous = restore.previous.take().expect("set above");
    let mine = slot.with(|s| s.replace(previous));
    (r, mine)
}

thread_local! {
    /// Why the last `Serialize`/`Deserialize` impl on this thread failed
    /// ([`explain`]): postcard keeps no message of a custom error.
    static REASON: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records `why` a `Serialize` or `Deserialize` impl fails and returns it,
/// for `serde::ser::Error::custom(explain(...))`: the codec's error then
/// says it (postcard reports only that a custom error happened).
pub(crate) fn explain(why: impl fmt::Display) -> String {
    let why = why.to_string();
    REASON.with(|r| *r.borrow_mut() = Some(why.clone()));
    why
}

/// The reason [`explain`] recorded for the codec error `e`, else `e`.
pub(crate) fn reason(e: postcard::Error) -> String {
    REASON.with(|r| r.take()).unwrap_or_else(|| e.to_string())
}

/// Forgets a reason recorded earlier (an encoding or decoding starts).
pub(crate) fn clear_reason() {
    REASON.with(|r| r.take());
}

/// A message encoded inside another one (a group region's arguments),
/// with its attachments: encoding it attaches them again to the outer
/// message, decoding finds them there, so shared arrays survive the
/// nesting.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nested {
    pub(crate) bytes: Vec<u8>,
    pub(crate) attached: Vec<Attachment>,
}

impl serde::Serialize for Nested {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let indexes = self
            .attached
            .iter()
            .map(|a| {
                attach(a.clone()).ok_or_else(|| {
                    serde::ser::Error::custom(explain(
                        "a message that holds shared memory cannot be sent this way",
                    ))
                })
            })
            .collect::<Result<Vec<u32>, S::Error>>()?;
        (&self.bytes, indexes).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Nested, D::Error> {
        let (bytes, indexes) = <(Vec<u8>, Vec<u32>)>::deserialize(d)?;
        let attached = indexes
            .into_iter()
            .map(|i| {
                attached(i).ok_or_else(|| {
                    serde::de::Error::custom(explain(format!(
                        "a nested message refers to attachment {i}, which did not arrive"
                    )))
                })
            })
            .collect::<Result<Vec<_>, D::Error>>()?;
        Ok(Nested { bytes, attached })
    }
}
