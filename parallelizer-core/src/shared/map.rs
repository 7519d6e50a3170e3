//! `SharedMap` (McUtils' `SharedMemoryDict`): string keys to values kept by
//! value and arrays kept in shared memory; `OwnedMap`, its unshared form.

use std::any::type_name;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Data, decode_serde, encode_serde};
use crate::parallelizer::Parallelizer;
use crate::registry::current;
use crate::segment::{Layout, Segment};

use super::owned::elements;
use super::{Array, Elem, Plan, Share, SharedArray, fmt_shape, short};

/// A value kept by value in a map: its serde bytes, its type and how it
/// prints. Reading it back needs the type it was stored as.
///
/// ```
/// # use parallelizer_core::MapValue;
/// let v = MapValue::new(&-76.2413f64).unwrap();
/// assert_eq!(v.get::<f64>().unwrap(), -76.2413);
/// assert!(v.get::<f32>().is_err());
/// assert_eq!(format!("{v:?}"), "-76.2413");
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MapValue {
    type_name: String,
    bytes: Vec<u8>,
    repr: String,
}

impl MapValue {
    /// Keeps a copy of `value`.
    pub fn new<T: Serialize + fmt::Debug>(value: &T) -> Result<MapValue> {
        let mut bytes = Vec::new();
        encode_serde(value, &mut bytes)?;
        Ok(MapValue {
            type_name: type_name::<T>().to_string(),
            bytes,
            repr: format!("{value:?}"),
        })
    }

    /// The value, which must be read as the type it was stored as.
    pub fn get<T: Data>(&self) -> Result<T> {
        if self.type_name != type_name::<T>() {
            return Err(Error::Codec(format!(
                "the value {} was stored as {}, not {}",
                self.repr,
                self.type_name,
                type_name::<T>()
            )));
        }
        decode_serde(&self.bytes)
    }

    /// The type it was stored as.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
}

impl fmt::Debug for MapValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

/// An owned array of a type only known by name (the arrays of an
/// [`OwnedMap`]); [`typed`](OwnedArray::typed) gives the [`Array`].
#[derive(Clone, PartialEq)]
pub struct OwnedArray {
    elem: Elem,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedArray {
    /// The array, as elements of `T` (the type it was made of).
    pub fn typed<T: Pod>(&self) -> Result<Array<T>> {
        self.elem.expect::<T>()?;
        Array::new(
            self.shape.clone(),
            bytemuck::pod_collect_to_vec(&self.bytes),
        )
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type's name (`"f64"`).
    pub fn dtype(&self) -> &str {
        &self.elem.name
    }
}

impl<T: Pod> From<Array<T>> for OwnedArray {
    fn from(a: Array<T>) -> OwnedArray {
        OwnedArray {
            elem: Elem::of::<T>(),
            shape: a.shape().to_vec(),
            bytes: bytemuck::cast_slice(a.as_slice()).to_vec(),
        }
    }
}

impl fmt::Debug for OwnedArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Array({}, dtype={})",
            fmt_shape(&self.shape),
            self.elem.name
        )
    }
}

/// An entry of an [`OwnedMap`], and what [`SharedMap::set`] takes: an
/// array, a value, or a nested map.
#[derive(Clone, PartialEq)]
pub enum Owned {
    /// An array (shared memory in a [`SharedMap`]).
    Array(OwnedArray),
    /// A value, kept by value.
    Value(MapValue),
    /// A nested map.
    Map(OwnedMap),
}

impl Owned {
    /// A value entry of any serializable type.
    ///
    /// ```
    /// # use parallelizer_core::{Owned, OwnedMap};
    /// let mut m = OwnedMap::new();
    /// m.insert("method", Owned::value(&vec!["CCSD(T)".to_string()]).unwrap());
    /// assert_eq!(m.value::<Vec<String>>("method").unwrap(), ["CCSD(T)"]);
    /// ```
    pub fn value<T: Serialize + fmt::Debug>(value: &T) -> Result<Owned> {
        MapValue::new(value).map(Owned::Value)
    }
}

impl fmt::Debug for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owned::Array(a) => a.fmt(f),
            Owned::Value(v) => v.fmt(f),
            Owned::Map(m) => m.fmt(f),
        }
    }
}

impl<T: Pod> From<Array<T>> for Owned {
    fn from(a: Array<T>) -> Owned {
        Owned::Array(a.into())
    }
}

impl From<OwnedMap> for Owned {
    fn from(m: OwnedMap) -> Owned {
        Owned::Map(m)
    }
}

impl From<MapValue> for Owned {
    fn from(v: MapValue) -> Owned {
        Owned::Value(v)
    }
}

macro_rules! scalar_values {
    ($($t:ty),*) => {$(
        impl From<$t> for Owned {
            /// A value entry.
            fn from(v: $t) -> Owned {
                Owned::value(&v).expect("a scalar always encodes")
            }
        }
    )*};
}

scalar_values!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64, bool, char, String
);

impl From<&str> for Owned {
    /// A `String` value entry.
    fn from(v: &str) -> Owned {
        Owned::from(v.to_string())
    }
}

/// A map of string keys to owned arrays, values and nested maps: what
/// [`SharedMap::unshare`] returns and what `par.share` takes to make a
/// [`SharedMap`]. Keys are kept in sorted order.
///
/// ```
/// use parallelizer_core::{Array, OwnedMap};
/// let mut m = OwnedMap::new();
/// m.insert("a", Array::new([2, 2], vec![1.0f64; 4]).unwrap());
/// m.insert("iteration", 12i64);
/// m.insert("d", OwnedMap::new());
/// assert_eq!(m.value::<i64>("iteration").unwrap(), 12);
/// assert_eq!(m.array::<f64>("a").unwrap().shape(), [2, 2]);
/// assert_eq!(format!("{m:?}"), r#"{"a": Array((2, 2), dtype=f64), "d": {}, "iteration": 12}"#);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct OwnedMap {
    entries: BTreeMap<String, Owned>,
}

impl OwnedMap {
    /// An empty map.
    pub fn new() -> OwnedMap {
        OwnedMap::default()
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Owned>) {
        self.entries.insert(key.into(), value.into());
    }

    /// The entry of `key`.
    pub fn get(&self, key: &str) -> Option<&Owned> {
        self.entries.get(key)
    }

    /// The array of `key`, as elements of `T`.
    pub fn array<T: Pod>(&self, key: &str) -> Result<Array<T>> {
        match self.entries.get(key) {
            Some(Owned::Array(a)) => a.typed(),
            other => Err(wrong_entry(key, "an array", other.map(kind_of))),
        }
    }

    /// The value of `key`, as the type it was stored as.
    pub fn value<T: Data>(&self, key: &str) -> Result<T> {
        match self.entries.get(key) {
            Some(Owned::Value(v)) => v.get(),
            other => Err(wrong_entry(key, "a value", other.map(kind_of))),
        }
    }

    /// The nested map of `key`.
    pub fn map(&self, key: &str) -> Result<&OwnedMap> {
        match self.entries.get(key) {
            Some(Owned::Map(m)) => Ok(m),
            other => Err(wrong_entry(key, "a map", other.map(kind_of))),
        }
    }

    /// Removes `key`; its entry, if it had one.
    pub fn remove(&mut self, key: &str) -> Option<Owned> {
        self.entries.remove(key)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The entries, by sorted key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Owned)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<Owned>> FromIterator<(K, V)> for OwnedMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> OwnedMap {
        OwnedMap {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl fmt::Debug for OwnedMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

fn kind_of(o: &Owned) -> &'static str {
    match o {
        Owned::Array(_) => "an array",
        Owned::Value(_) => "a value",
        Owned::Map(_) => "a map",
    }
}

fn wrong_entry(key: &str, want: &str, got: Option<&str>) -> Error {
    match got {
        None => Error::ContractViolation(format!("the map has no key {key:?}")),
        Some(got) => {
            Error::ContractViolation(format!("entry {key:?} of the map is {got}, not {want}"))
        }
    }
}

/// An array of a map: a shared array whose element type is known by name.
#[derive(Clone, Serialize, Deserialize)]
struct AnyShared {
    seg: Segment,
    shape: Vec<usize>,
    elem: Elem,
}

impl AnyShared {
    fn typed<T: Pod>(&self) -> Result<SharedArray<T>> {
        self.elem.expect::<T>()?;
        SharedArray::from_segment(self.seg.clone(), self.shape.clone())
    }

    /// An owned copy, as bytes.
    fn unshare(&self) -> Result<OwnedArray> {
        let bytes = self.as_bytes().unshare()?.into_vec();
        Ok(OwnedArray {
            elem: self.elem.clone(),
            shape: self.shape.clone(),
            bytes,
        })
    }

    /// The array as bytes of the same memory (for copies, whatever `T`).
    fn as_bytes(&self) -> SharedArray<u8> {
        SharedArray::from_segment(self.seg.clone(), vec![self.seg.layout().data_len()])
            .expect("a segment holds its data length in bytes")
    }
}

#[derive(Clone, Serialize, Deserialize)]
enum Entry {
    Array(AnyShared),
    Value(MapValue),
    Map(SharedMap),
}

/// A map of string keys to values kept by value and to arrays kept in
/// shared memory (McUtils' `SharedMemoryDict`), made by `par.share(map)` or
/// [`SharedMap::new`], and sent to the ranks of a region like any value.
///
/// - Arrays are shared: a rank that writes into one (through
///   [`array`](SharedMap::array)) writes into the memory every rank's map
///   sees. [`set`](SharedMap::set) of an array of the same element type and
///   shape as the entry's writes in place, seen through every handle taken
///   before; another shape (or a new key) allocates new memory, which the
///   entry then holds (earlier handles keep the old memory).
/// - Everything else is by value: values ([`MapValue`]), nested maps, and the
///   map's set of keys are each rank's own; a change one rank makes to
///   them is not seen by the others (McUtils: a worker's change to a
///   nested dict stays local).
/// - [`unshare`](SharedMap::unshare) gives an [`OwnedMap`] of copies.
///
/// New memory is allocated by this rank alone (on MPI, inside a region,
/// it is memory of this rank only; see the README).
///
/// ```
/// use parallelizer_core::{from_config, Array, OwnedMap, Parallelizer, SharedMap};
/// let par = from_config("threads:2").unwrap();
/// let mut data = OwnedMap::new();
/// data.insert("a", Array::new([10, 5, 5], vec![0.0f64; 250]).unwrap());
/// data.insert("d", OwnedMap::new());
/// let shared = par.share(data).unwrap();
/// par.run(|p: &dyn Parallelizer, mut m: SharedMap| {
///     if p.id() == 1 {
///         m.array::<f64>("a").unwrap().set(&[1, 0, 0], 5.0).unwrap();
///         m.map_mut("d").unwrap().set("key", 5).unwrap(); // stays on rank 1
///     }
/// }, shared.clone()).unwrap();
/// assert_eq!(shared.array::<f64>("a").unwrap().get(&[1, 0, 0]).unwrap(), 5.0);
/// assert!(shared.map("d").unwrap().is_empty());
/// assert_eq!(format!("{shared:?}"),
///     r#"SharedMap({"a": SharedArray((10, 5, 5), dtype=f64), "d": {}})"#);
/// ```
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SharedMap {
    entries: BTreeMap<String, Entry>,
    /// The parallelizer it was made with (on the rank that made it), for
    /// allocations; `current()` elsewhere.
    #[serde(skip)]
    par: Option<Weak<dyn Parallelizer>>,
}

impl SharedMap {
    /// An empty map whose arrays `par` allocates.
    ///
    /// ```
    /// # use parallelizer_core::{from_config, SharedMap};
    /// let par = from_config("serial").unwrap();
    /// let mut state = SharedMap::new(&*par);
    /// state.set("iteration", 12i64).unwrap();
    /// state.set("energy", -76.2413).unwrap();
    /// assert_eq!(format!("{state:?}"), r#"SharedMap({"energy": -76.2413, "iteration": 12})"#);
    /// ```
    pub fn new(par: &dyn Parallelizer) -> SharedMap {
        SharedMap {
            entries: BTreeMap::new(),
            par: par.core().this().map(|p| Arc::downgrade(&p)),
        }
    }

    /// The parallelizer that allocates new arrays.
    fn allocator(&self) -> Arc<dyn Parallelizer> {
        self.par
            .as_ref()
            .and_then(Weak::upgrade)
            .unwrap_or_else(current)
    }

    /// Sets `key` to `value` (an [`Array`], a value, an [`OwnedMap`]; see
    /// [`Owned`]). An array over an array entry of the same element type
    /// and shape is written in place (every handle sees it); any other
    /// array gets new shared memory. A map over a map entry sets each of
    /// its keys the same way and removes the others.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Owned>) -> Result<()> {
        let key = key.into();
        match (self.entries.get_mut(&key), value.into()) {
            (Some(Entry::Array(old)), Owned::Array(new))
                if old.elem == new.elem && old.shape == new.shape =>
            {
                old.as_bytes().assign(&new.bytes)
            }
            (Some(Entry::Map(old)), Owned::Map(new)) => {
                old.entries.retain(|k, _| new.entries.contains_key(k));
                for (k, v) in new.entries {
                    old.set(k, v)?;
                }
                Ok(())
            }
            (_, Owned::Value(v)) => {
                self.entries.insert(key, Entry::Value(v));
                Ok(())
            }
            (_, Owned::Array(new)) => {
                let par = self.allocator();
                let n = elements(&new.shape)?;
                let layout = Layout::for_ranks(n * new.elem.size, par.nprocs());
                let seg = par
                    .shared_memory()?
                    .allocate(&[layout])?
                    .pop()
                    .ok_or_else(short)?;
                let array = AnyShared {
                    seg,
                    shape: new.shape,
                    elem: new.elem,
                };
                array.as_bytes().assign(&new.bytes)?;
                self.entries.insert(key, Entry::Array(array));
                Ok(())
            }
            (_, Owned::Map(new)) => {
                let mut map = SharedMap {
                    entries: BTreeMap::new(),
                    par: self.par.clone(),
                };
                for (k, v) in new.entries {
                    map.set(k, v)?;
                }
                self.entries.insert(key, Entry::Map(map));
                Ok(())
            }
        }
    }

    /// Stores a handle to `array` under `key` (the entry shares its memory).
    pub fn set_shared<T: Pod>(&mut self, key: impl Into<String>, array: &SharedArray<T>) {
        let entry = AnyShared {
            seg: array.segment().clone(),
            shape: array.shape().to_vec(),
            elem: Elem::of::<T>(),
        };
        self.entries.insert(key.into(), Entry::Array(entry));
    }

    /// A handle to the array of `key`, whose elements must be `T`.
    pub fn array<T: Pod>(&self, key: &str) -> Result<SharedArray<T>> {
        match self.entries.get(key) {
            Some(Entry::Array(a)) => a.typed(),
            other => Err(wrong_entry(key, "an array", other.map(entry_kind))),
        }
    }

    /// The value of `key`, read as the type it was stored as.
    pub fn get<T: Data>(&self, key: &str) -> Result<T> {
        match self.entries.get(key) {
            Some(Entry::Value(v)) => v.get(),
            other => Err(wrong_entry(key, "a value", other.map(entry_kind))),
        }
    }

    /// The nested map of `key`.
    pub fn map(&self, key: &str) -> Result<&SharedMap> {
        match self.entries.get(key) {
            Some(Entry::Map(m)) => Ok(m),
            other => Err(wrong_entry(key, "a map", other.map(entry_kind))),
        }
    }

    /// The nested map of `key`, to change (this rank's copy).
    pub fn map_mut(&mut self, key: &str) -> Result<&mut SharedMap> {
        match self.entries.get_mut(key) {
            Some(Entry::Map(m)) => Ok(m),
            other => Err(wrong_entry(key, "a map", other.map(|e| entry_kind(e)))),
        }
    }

    /// Removes `key` from this rank's map; whether it was there. The memory
    /// of an array is released once no handle to it is left.
    pub fn remove(&mut self, key: &str) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Whether `key` has an entry.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An owned copy of every entry (McUtils `unshare`): arrays copied out
    /// of shared memory.
    pub fn unshare(&self) -> Result<OwnedMap> {
        let mut out = OwnedMap::new();
        for (k, e) in &self.entries {
            let owned = match e {
                Entry::Array(a) => Owned::Array(a.unshare()?),
                Entry::Value(v) => Owned::Value(v.clone()),
                Entry::Map(m) => Owned::Map(m.unshare()?),
            };
            out.entries.insert(k.clone(), owned);
        }
        Ok(out)
    }

    fn fmt_entries(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct E<'a>(&'a Entry);
        impl fmt::Debug for E<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Entry::Array(a) => write!(
                        f,
                        "SharedArray({}, dtype={})",
                        fmt_shape(&a.shape),
                        a.elem.name
                    ),
                    Entry::Value(v) => v.fmt(f),
                    Entry::Map(m) => m.fmt_entries(f),
                }
            }
        }
        f.debug_map()
            .entries(self.entries.iter().map(|(k, e)| (k, E(e))))
            .finish()
    }
}

fn entry_kind(e: &Entry) -> &'static str {
    match e {
        Entry::Array(_) => "an array",
        Entry::Value(_) => "a value",
        Entry::Map(_) => "a map",
    }
}

impl fmt::Debug for SharedMap {
    /// `SharedMap({"a": SharedArray((10, 5, 5), dtype=f64), "d": {}})`, as
    /// McUtils prints a `SharedMemoryDict`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedMap(")?;
        self.fmt_entries(f)?;
        f.write_str(")")
    }
}

impl Share for OwnedMap {
    type Shared = SharedMap;

    fn plan(&self) -> Result<Plan> {
        let entries = self
            .entries
            .iter()
            .map(|(k, v)| {
                let plan = match v {
                    Owned::Array(a) => Plan::Array {
                        elem: a.elem.clone(),
                        shape: a.shape.clone(),
                    },
                    Owned::Value(v) => Plan::Value(v.clone()),
                    Owned::Map(m) => m.plan()?,
                };
                Ok((k.clone(), plan))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan::Map(entries))
    }

    fn fill(&self, segs: &mut dyn Iterator<Item = &Segment>) -> Result<()> {
        for v in self.entries.values() {
            match v {
                Owned::Array(a) => {
                    let seg = segs.next().ok_or_else(short)?;
                    let len = seg.layout().data_len();
                    SharedArray::<u8>::from_segment(seg.clone(), vec![len])?.assign(&a.bytes)?;
                }
                Owned::Value(_) => {}
                Owned::Map(m) => m.fill(segs)?,
            }
        }
        Ok(())
    }

    fn build(plan: Plan, segs: &mut dyn Iterator<Item = Segment>) -> Result<SharedMap> {
        let Plan::Map(entries) = plan else {
            return Err(short());
        };
        let mut map = SharedMap::default();
        for (k, plan) in entries {
            let entry = match plan {
                Plan::Array { elem, shape } => {
                    let seg = segs.next().ok_or_else(short)?;
                    if seg.layout().data_len() != elements(&shape)? * elem.size {
                        return Err(short());
                    }
                    Entry::Array(AnyShared { seg, shape, elem })
                }
                Plan::Value(v) => Entry::Value(v),
                plan @ Plan::Map(_) => Entry::Map(OwnedMap::build(plan, segs)?),
            };
            map.entries.insert(k, entry);
        }
        Ok(map)
    }

    fn bind(shared: &mut SharedMap, par: &dyn Parallelizer) {
        let weak = par.core().this().map(|p| Arc::downgrade(&p));
        fn bind_all(m: &mut SharedMap, weak: &Option<Weak<dyn Parallelizer>>) {
            m.par = weak.clone();
            for e in m.entries.values_mut() {
                if let Entry::Map(inner) = e {
                    bind_all(inner, weak);
                }
            }
        }
        bind_all(shared, &weak);
    }
}
