//! `Array<T>`: an owned n-dimensional array of plain data, row-major.

use std::any::type_name;
use std::fmt;

use bytemuck::Pod;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attach::explain;
use crate::error::{Error, Result};

use super::{Elem, fmt_shape};

/// The flat (row-major) position of `index` in an array of `shape`.
pub(super) fn flat(shape: &[usize], index: &[usize]) -> Option<usize> {
    if index.len() != shape.len() {
        return None;
    }
    let mut at = 0usize;
    for (&i, &n) in index.iter().zip(shape) {
        if i >= n {
            return None;
        }
        at = at * n + i;
    }
    Some(at)
}

/// The number of elements of `shape` (1 for a 0-d array), if it fits.
pub(super) fn elements(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Config(format!("array shape {shape:?} is too large")))
}

pub(super) fn bad_index(shape: &[usize], index: &[usize]) -> Error {
    Error::ContractViolation(format!(
        "index {index:?} is outside an array of shape {}",
        fmt_shape(shape)
    ))
}

/// An owned n-dimensional array of plain data, row-major: what
/// [`SharedArray::unshare`](crate::SharedArray::unshare) returns and what `share` takes (McUtils' numpy
/// arrays).
///
/// ```
/// use parallelizer_core::Array;
/// let mut a = Array::new([2, 3], (0..6).map(f64::from).collect()).unwrap();
/// assert_eq!(a[[1, 2]], 5.0);
/// a[[0, 1]] = 9.0;
/// assert_eq!(a.as_slice()[1], 9.0);
/// assert_eq!(a.shape(), [2, 3]);
/// assert!(Array::<f64>::new([2, 2], vec![0.0; 3]).is_err());
/// ```
#[derive(Clone, PartialEq)]
pub struct Array<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Pod> Array<T> {
    /// An array of `shape` holding `data` in row-major order; an error
    /// unless `data` has exactly as many elements as the shape.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<T>) -> Result<Array<T>> {
        let shape = shape.into();
        let n = elements(&shape)?;
        if n != data.len() {
            return Err(Error::ContractViolation(format!(
                "an array of shape {} needs {n} elements, not {}",
                fmt_shape(&shape),
                data.len()
            )));
        }
        Ok(Array { shape, data })
    }

    /// An array of `shape` filled with zero bytes.
    ///
    /// ```
    /// # use parallelizer_core::Array;
    /// assert_eq!(Array::<u8>::zeros([2, 2]).unwrap().as_slice(), [0; 4]);
    /// ```
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Result<Array<T>> {
        let shape = shape.into();
        let n = elements(&shape)?;
        Ok(Array {
            shape,
            data: vec![T::zeroed(); n],
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements, by value.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The element at `index` (one coordinate per axis), if it is inside.
    pub fn get(&self, index: &[usize]) -> Option<&T> {
        flat(&self.shape, index).map(|i| &self.data[i])
    }

    /// The element at `index`, mutable, if it is inside.
    pub fn get_mut(&mut self, index: &[usize]) -> Option<&mut T> {
        flat(&self.shape, index).map(|i| &mut self.data[i])
    }
}

impl<T: Pod> From<Vec<T>> for Array<T> {
    /// A one-dimensional array.
    fn from(data: Vec<T>) -> Array<T> {
        Array {
            shape: vec![data.len()],
            data,
        }
    }
}

impl<T: Pod, const N: usize> std::ops::Index<[usize; N]> for Array<T> {
    type Output = T;
    fn index(&self, index: [usize; N]) -> &T {
        match self.get(&index) {
            Some(v) => v,
            None => panic!("{}", bad_index(&self.shape, &index)),
        }
    }
}

impl<T: Pod, const N: usize> std::ops::IndexMut<[usize; N]> for Array<T> {
    fn index_mut(&mut self, index: [usize; N]) -> &mut T {
        let shape = self.shape.clone();
        match self.get_mut(&index) {
            Some(v) => v,
            None => panic!("{}", bad_index(&shape, &index)),
        }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    /// `Array((2, 3), dtype=f64, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])`, the
    /// first eight elements of larger arrays followed by `...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Array({}, dtype={}, [",
            fmt_shape(&self.shape),
            type_name::<T>()
        )?;
        for (i, v) in self.data.iter().take(8).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v:?}")?;
        }
        if self.data.len() > 8 {
            f.write_str(", ...")?;
        }
        f.write_str("])")
    }
}

/// The wire form of an [`Array`]: shape and raw bytes.
#[derive(Serialize, Deserialize)]
struct ArrayWire<'a> {
    elem: Elem,
    shape: Vec<usize>,
    #[serde(borrow)]
    bytes: std::borrow::Cow<'a, [u8]>,
}

impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        ArrayWire {
            elem: Elem::of::<T>(),
            shape: self.shape.clone(),
            bytes: std::borrow::Cow::Borrowed(bytemuck::cast_slice(&self.data)),
        }
        .serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Array<T>, D::Error> {
        let w = ArrayWire::deserialize(d)?;
        w.elem
            .expect::<T>()
            .map_err(|e| D::Error::custom(explain(e)))?;
        if w.bytes.len() % std::mem::size_of::<T>().max(1) != 0 {
            return Err(D::Error::custom(explain(
                "array bytes are not whole elements",
            )));
        }
        Array::new(w.shape, bytemuck::pod_collect_to_vec(&w.bytes))
            .map_err(|e| D::Error::custom(explain(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_indexes_are_row_major() {
        assert_eq!(flat(&[10, 5, 5], &[1, 0, 0]), Some(25));
        assert_eq!(flat(&[10, 5, 5], &[9, 4, 4]), Some(249));
        assert_eq!(flat(&[10, 5, 5], &[10, 0, 0]), None);
        assert_eq!(flat(&[10, 5, 5], &[1, 0]), None);
        assert_eq!(flat(&[], &[]), Some(0));
    }

    #[test]
    fn arrays_roundtrip_through_serde() {
        let a = Array::new([2, 2], vec![1.5f32, 2.5, 3.5, 4.5]).unwrap();
        let bytes = postcard::to_stdvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Array<f32>>(&bytes).unwrap(), a);
        assert!(postcard::from_bytes::<Array<u32>>(&bytes).is_err());
        assert_eq!(
            format!("{a:?}"),
            "Array((2, 2), dtype=f32, [1.5, 2.5, 3.5, 4.5])"
        );
    }
}
