//! Reduction operations: the built-in [`Reduce`] ops on numbers (and
//! element-wise on vectors of numbers), any `Fn(T, T) -> T`, and how both
//! combine two values ([`ReduceOp`]).

use std::any::{Any, type_name};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::Data;
use crate::plain::PodType;

/// A built-in reduction operation, as MPI has them (`MPI_SUM`, ...): on the
/// primitive numbers, element-wise on `Vec`s of them, and the logical ones
/// also on `bool`. On the MPI backend they run as MPI's own operations
/// (`MPI_Allreduce` with `MPI_SUM`, ...).
///
/// | op | numbers | `bool` |
/// |---|---|---|
/// | `Sum`, `Product` | integers wrap on overflow, as in C | no |
/// | `Min`, `Max` | yes (floats: `f64::min`/`max`) | and / or |
/// | `And`, `Or` | integers, as truth values (the result is 0 or 1) | yes |
/// | `BitAnd`, `BitOr`, `BitXor` | integers | yes |
///
/// An op a type does not have (a bitwise op on `f64`) is an error of the
/// call, as in MPI.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer, Reduce};
/// let par = from_config("threads:4").unwrap();
/// let got = par.run(|p: &dyn Parallelizer, ()| {
///     let id = p.id() as u64;
///     let sum = p.allreduce(id + 1, Reduce::Sum).unwrap();
///     let max = p.allreduce(vec![id, 10 - id], Reduce::Max).unwrap();
///     (sum, max)
/// }, ()).unwrap();
/// assert_eq!(got, (10, vec![3, 10]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reduce {
    /// `a + b`.
    Sum,
    /// `a * b`.
    Product,
    /// The smaller.
    Min,
    /// The larger.
    Max,
    /// Logical and (`MPI_LAND`).
    And,
    /// Logical or (`MPI_LOR`).
    Or,
    /// Bitwise and (`MPI_BAND`).
    BitAnd,
    /// Bitwise or (`MPI_BOR`).
    BitOr,
    /// Bitwise exclusive or (`MPI_BXOR`).
    BitXor,
}

impl Reduce {
    /// The op's name, as errors print it.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Product => "product",
            Reduce::Min => "min",
            Reduce::Max => "max",
            Reduce::And => "logical and",
            Reduce::Or => "logical or",
            Reduce::BitAnd => "bitwise and",
            Reduce::BitOr => "bitwise or",
            Reduce::BitXor => "bitwise xor",
        }
    }
}

impl std::fmt::Display for Reduce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a reduction combines two values: a built-in [`Reduce`] op (on the
/// types that have it, [`Reducible`]), or any `Fn(T, T) -> T`.
///
/// A closure must be associative; it need not be commutative: values are
/// combined in rank order, `f(lower ranks, higher ranks)`, so for example
/// string concatenation gives the ranks' strings in order. On MPI a closure
/// runs where the values are gathered (main, or every rank), built-in ops
/// run as MPI's.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// let par = from_config("threads:3").unwrap();
/// let names = par.run(|p: &dyn Parallelizer, ()| {
///     p.reduce(format!("r{}", p.id()), |a: String, b: String| a + "," + &b).unwrap()
/// }, ()).unwrap();
/// assert_eq!(names.as_deref(), Some("r0,r1,r2"));
/// ```
pub trait ReduceOp<T>: Send + Sync {
    /// `a` (lower ranks) combined with `b` (higher ranks).
    fn combine(&self, a: T, b: T) -> Result<T>;

    /// The built-in op, if this is one (the backend may run it natively).
    #[doc(hidden)]
    fn builtin(&self) -> Option<Reduce> {
        None
    }

    /// `first` combined with each item of `rest` in turn (a rank folding
    /// its items): a built-in op on numbers picks its operation once, not
    /// once per item.
    #[doc(hidden)]
    fn fold_items(&self, first: T, rest: impl Iterator<Item = T>) -> Result<T>
    where
        Self: Sized,
    {
        let mut rest = rest;
        rest.try_fold(first, |a, b| self.combine(a, b))
    }
}

impl<T: Reducible> ReduceOp<T> for Reduce {
    fn combine(&self, a: T, b: T) -> Result<T> {
        T::apply(*self, a, b)
    }

    fn fold_items(&self, first: T, rest: impl Iterator<Item = T>) -> Result<T> {
        T::fold_all(*self, first, rest)
    }

    fn builtin(&self) -> Option<Reduce> {
        Some(*self)
    }
}

impl<T, F> ReduceOp<T> for F
where
    F: Fn(T, T) -> T + Send + Sync,
{
    fn combine(&self, a: T, b: T) -> Result<T> {
        Ok(self(a, b))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The types the built-in [`Reduce`] ops apply to: the primitive numbers,
/// `bool`, and `Vec`s of them (element-wise; every rank passes the same
/// length). Sealed.
pub trait Reducible: Data + Clone + sealed::Sealed {
    /// `a op b` (element-wise for vectors), statically dispatched: what a
    /// fold over a rank's items calls per item.
    #[doc(hidden)]
    fn apply(op: Reduce, a: Self, b: Self) -> Result<Self>;

    /// `first` combined with each of `rest` in turn
    /// ([`ReduceOp::fold_items`]).
    #[doc(hidden)]
    fn fold_all(op: Reduce, first: Self, rest: impl Iterator<Item = Self>) -> Result<Self> {
        let mut rest = rest;
        rest.try_fold(first, |a, b| Self::apply(op, a, b))
    }
}

/// The items of `rest` folded into `first` with the loop for `op` chosen
/// once: the ops every number type has; the others item by item.
macro_rules! fold_numbers {
    ($t:ty, $op:expr, $first:expr, $rest:expr, $sum:expr, $product:expr) => {{
        let mut rest = $rest;
        match $op {
            Reduce::Sum => Ok(rest.fold($first, $sum)),
            Reduce::Product => Ok(rest.fold($first, $product)),
            Reduce::Min => Ok(rest.fold($first, |a: $t, b: $t| a.min(b))),
            Reduce::Max => Ok(rest.fold($first, |a: $t, b: $t| a.max(b))),
            op => rest.try_fold($first, |a, b| <$t as Reducible>::apply(op, a, b)),
        }
    }};
}

/// A number (or `bool`) that the built-in ops know.
trait Num: Copy + 'static {
    /// `op` applied to `a` and `b`; `None` if the type does not have it.
    fn op(op: Reduce, a: Self, b: Self) -> Option<Self>;
    /// The value that `op` leaves the other operand unchanged with.
    fn identity(op: Reduce) -> Option<Self>;
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn op(op: Reduce, a: $t, b: $t) -> Option<$t> {
                Some(match op {
                    Reduce::Sum => a.wrapping_add(b),
                    Reduce::Product => a.wrapping_mul(b),
                    Reduce::Min => a.min(b),
                    Reduce::Max => a.max(b),
                    Reduce::And => <$t>::from(a != 0 && b != 0),
                    Reduce::Or => <$t>::from(a != 0 || b != 0),
                    Reduce::BitAnd => a & b,
                    Reduce::BitOr => a | b,
                    Reduce::BitXor => a ^ b,
                })
            }
            fn identity(op: Reduce) -> Option<$t> {
                Some(match op {
                    Reduce::Sum | Reduce::Or | Reduce::BitOr | Reduce::BitXor => 0,
                    Reduce::Product | Reduce::And => 1,
                    Reduce::Min => <$t>::MAX,
                    Reduce::Max => <$t>::MIN,
                    Reduce::BitAnd => !0,
                })
            }
        }
        impl sealed::Sealed for $t {}
        impl Reducible for $t {
            #[inline]
            fn apply(op: Reduce, a: $t, b: $t) -> Result<$t> {
                <$t as Num>::op(op, a, b).ok_or_else(|| undefined(op, type_name::<$t>()))
            }
            fn fold_all(op: Reduce, first: $t, rest: impl Iterator<Item = $t>) -> Result<$t> {
                fold_numbers!($t, op, first, rest, <$t>::wrapping_add, <$t>::wrapping_mul)
            }
        }
        impl sealed::Sealed for Vec<$t> {}
        impl Reducible for Vec<$t> {
            fn apply(op: Reduce, mut a: Vec<$t>, b: Vec<$t>) -> Result<Vec<$t>> {
                elementwise(op, &mut a, &b)?;
                Ok(a)
            }
        }
    )*};
}
int_num!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

macro_rules! float_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn op(op: Reduce, a: $t, b: $t) -> Option<$t> {
                match op {
                    Reduce::Sum => Some(a + b),
                    Reduce::Product => Some(a * b),
                    Reduce::Min => Some(a.min(b)),
                    Reduce::Max => Some(a.max(b)),
                    _ => None,
                }
            }
            fn identity(op: Reduce) -> Option<$t> {
                match op {
                    Reduce::Sum => Some(0.0),
                    Reduce::Product => Some(1.0),
                    Reduce::Min => Some(<$t>::INFINITY),
                    Reduce::Max => Some(<$t>::NEG_INFINITY),
                    _ => None,
                }
            }
        }
        impl sealed::Sealed for $t {}
        impl Reducible for $t {
            #[inline]
            fn apply(op: Reduce, a: $t, b: $t) -> Result<$t> {
                <$t as Num>::op(op, a, b).ok_or_else(|| undefined(op, type_name::<$t>()))
            }
            fn fold_all(op: Reduce, first: $t, rest: impl Iterator<Item = $t>) -> Result<$t> {
                fold_numbers!($t, op, first, rest, |a: $t, b: $t| a + b, |a: $t, b: $t| a * b)
            }
        }
        impl sealed::Sealed for Vec<$t> {}
        impl Reducible for Vec<$t> {
            fn apply(op: Reduce, mut a: Vec<$t>, b: Vec<$t>) -> Result<Vec<$t>> {
                elementwise(op, &mut a, &b)?;
                Ok(a)
            }
        }
    )*};
}
float_num!(f32, f64);

impl Num for bool {
    fn op(op: Reduce, a: bool, b: bool) -> Option<bool> {
        match op {
            Reduce::Min | Reduce::And | Reduce::BitAnd => Some(a && b),
            Reduce::Max | Reduce::Or | Reduce::BitOr => Some(a || b),
            Reduce::BitXor => Some(a ^ b),
            Reduce::Sum | Reduce::Product => None,
        }
    }
    fn identity(op: Reduce) -> Option<bool> {
        match op {
            Reduce::Min | Reduce::And | Reduce::BitAnd => Some(true),
            Reduce::Max | Reduce::Or | Reduce::BitOr | Reduce::BitXor => Some(false),
            Reduce::Sum | Reduce::Product => None,
        }
    }
}
impl sealed::Sealed for bool {}
impl Reducible for bool {
    fn apply(op: Reduce, a: bool, b: bool) -> Result<bool> {
        <bool as Num>::op(op, a, b).ok_or_else(|| undefined(op, "bool"))
    }
}
impl sealed::Sealed for Vec<bool> {}
impl Reducible for Vec<bool> {
    fn apply(op: Reduce, mut a: Vec<bool>, b: Vec<bool>) -> Result<Vec<bool>> {
        elementwise(op, &mut a, &b)?;
        Ok(a)
    }
}

/// The error of an op that a type does not have.
fn undefined(op: Reduce, ty: &str) -> Error {
    Error::ContractViolation(format!(
        "the reduction `{op}` is not defined for {ty}; pass a closure instead"
    ))
}

/// `a op b` element-wise, into `a`.
fn elementwise<N: Num>(op: Reduce, a: &mut [N], b: &[N]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::ContractViolation(format!(
            "element-wise {op} of vectors of {} and {} elements: every rank must pass the \
             same length",
            a.len(),
            b.len()
        )));
    }
    for (x, &y) in a.iter_mut().zip(b) {
        *x = N::op(op, *x, y).ok_or_else(|| undefined(op, type_name::<N>()))?;
    }
    Ok(())
}

/// The value of `T` that `op` leaves the other operand unchanged with, for
/// a number or `bool` (`None` for other types, and for ops the type does
/// not have).
pub(crate) fn identity<T: 'static>(op: Reduce) -> Option<T> {
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(v) = <$t>::identity(op) {
                if let Ok(v) = crate::plain::cast::<$t, T>(v) {
                    return Some(v);
                }
            }
        )*};
    }
    try_types!(
        f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool
    );
    None
}

/// How a value of a type that MPI can reduce natively is laid out: a
/// number, or a `Vec` of numbers (`bool` is left to the generic path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Scalar,
    Vector,
}

/// The element type and shape of `T` if the backend may reduce it natively:
/// a primitive number or a `Vec` of them.
pub(crate) fn numeric<T: 'static>() -> Option<(PodType, Shape)> {
    let id = std::any::TypeId::of::<T>();
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if id == std::any::TypeId::of::<$t>() {
                return Some((PodType::of::<$t>(), Shape::Scalar));
            }
            if id == std::any::TypeId::of::<Vec<$t>>() {
                return Some((PodType::of::<$t>(), Shape::Vector));
            }
        )*};
    }
    try_types!(f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
    None
}

/// The bytes of a value that [`numeric`] accepted (a number, or a `Vec` of
/// numbers), writable.
pub(crate) fn numeric_bytes(value: &mut dyn Any) -> Option<&mut [u8]> {
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if value.is::<$t>() {
                return value.downcast_mut::<$t>().map(|x| bytemuck::bytes_of_mut(x));
            }
            if value.is::<Vec<$t>>() {
                return value
                    .downcast_mut::<Vec<$t>>()
                    .map(|v| bytemuck::cast_slice_mut(v.as_mut_slice()));
            }
        )*};
    }
    try_types!(f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
    None
}

/// The number of type `T` (one that [`numeric`] calls a scalar) whose
/// bytes are `bytes`; `None` for another type or length.
pub(crate) fn numeric_from_bytes<T: 'static>(bytes: &[u8]) -> Option<T> {
    let id = std::any::TypeId::of::<T>();
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if id == std::any::TypeId::of::<$t>() {
                let n = bytemuck::try_pod_read_unaligned::<$t>(bytes).ok()?;
                return crate::plain::cast::<$t, T>(n).ok();
            }
        )*};
    }
    try_types!(f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
    None
}

/// An error unless the built-in `op` is defined on `T` (a number, `bool`,
/// or a `Vec` of them, that has the op): checked on every rank before any
/// message moves, so that every rank refuses the call alike.
pub(crate) fn check<T: 'static>(op: Reduce) -> Result<()> {
    let id = std::any::TypeId::of::<T>();
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if id == std::any::TypeId::of::<$t>() || id == std::any::TypeId::of::<Vec<$t>>() {
                let zero = <$t>::default();
                return match <$t>::op(op, zero, zero) {
                    Some(_) => Ok(()),
                    None => Err(undefined(op, type_name::<$t>())),
                };
            }
        )*};
    }
    try_types!(
        f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool
    );
    Err(undefined(op, type_name::<T>()))
}

/// The length of a value that the built-in ops reduce element-wise (a
/// `Vec` of numbers or of `bool`); `None` for scalars and other types.
pub(crate) fn vec_len(value: &dyn Any) -> Option<usize> {
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(v) = value.downcast_ref::<Vec<$t>>() {
                return Some(v.len());
            }
        )*};
    }
    try_types!(
        f64, f32, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, bool
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply<T: Reducible>(op: Reduce, a: T, b: T) -> Result<T> {
        T::apply(op, a, b)
    }

    #[test]
    fn every_op_on_numbers_and_vectors() {
        assert_eq!(apply(Reduce::Sum, 2.5f64, 1.0).unwrap(), 3.5);
        assert_eq!(apply(Reduce::Product, 3u8, 100).unwrap(), 44); // wraps
        assert_eq!(apply(Reduce::Min, -3i32, 2).unwrap(), -3);
        assert_eq!(
            apply(Reduce::Max, vec![1u64, 9], vec![5, 2]).unwrap(),
            [5, 9]
        );
        assert_eq!(apply(Reduce::And, 2i64, 0).unwrap(), 0);
        assert_eq!(apply(Reduce::Or, 0i64, 7).unwrap(), 1);
        assert_eq!(apply(Reduce::BitAnd, 0b1100u16, 0b1010).unwrap(), 0b1000);
        assert_eq!(apply(Reduce::BitOr, 0b1100u16, 0b1010).unwrap(), 0b1110);
        assert_eq!(apply(Reduce::BitXor, 0b1100u16, 0b1010).unwrap(), 0b0110);
        assert!(apply(Reduce::And, true, false).is_ok_and(|b| !b));
        assert_eq!(
            apply(Reduce::Or, vec![true, false], vec![false, false]).unwrap(),
            [true, false]
        );
    }

    #[test]
    fn a_fold_equals_the_op_applied_item_by_item() {
        use Reduce::*;
        let ops = [Sum, Product, Min, Max, And, Or, BitAnd, BitOr, BitXor];
        fn check<T: Reducible + PartialEq + std::fmt::Debug>(op: Reduce, items: &[T]) {
            let (first, rest) = (items[0].clone(), items[1..].iter().cloned());
            let folded = T::fold_all(op, first.clone(), rest.clone());
            let by_item = rest.clone().try_fold(first, |a, b| T::apply(op, a, b));
            match (folded, by_item) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{op:?}"),
                (a, b) => assert!(a.is_err() && b.is_err(), "{op:?}: {a:?} {b:?}"),
            }
        }
        for op in ops {
            check(op, &[3i32, -7, 12, 0, 5]);
            check(op, &[200u8, 100, 7, 255]);
            check(op, &[1.5f64, -2.0, 8.25, 0.5]);
            check(op, &[vec![1u64, 9], vec![5, 2]]);
            // One item: nothing to combine, whatever the op (also one the
            // type does not have).
            check(op, &[2.5f32]);
        }
        assert!(f64::fold_all(BitAnd, 1.0, [2.0].into_iter()).is_err());
        assert_eq!(f64::fold_all(BitAnd, 1.0, std::iter::empty()).unwrap(), 1.0);
    }

    #[test]
    fn ops_a_type_does_not_have_are_errors() {
        let err = apply(Reduce::BitAnd, 1.0f64, 2.0).unwrap_err();
        assert!(err.to_string().contains("bitwise and") && err.to_string().contains("f64"));
        assert!(apply(Reduce::Sum, true, true).is_err());
        assert!(check::<String>(Reduce::Sum).is_err());
        assert!(check::<Vec<u8>>(Reduce::BitXor).is_ok() && check::<f32>(Reduce::Or).is_err());
        let err = apply(Reduce::Sum, vec![1.0f64], vec![1.0, 2.0]).unwrap_err();
        assert!(err.to_string().contains("1 and 2"), "{err}");
    }

    #[test]
    fn identities_and_native_shapes() {
        for op in [Reduce::Sum, Reduce::Product, Reduce::Min, Reduce::Max] {
            let e: f64 = identity(op).unwrap();
            assert_eq!(apply(op, e, 2.5).unwrap(), 2.5);
            let e: i32 = identity(op).unwrap();
            assert_eq!(apply(op, e, -7).unwrap(), -7);
        }
        assert_eq!(identity::<u8>(Reduce::BitAnd), Some(255));
        assert_eq!(identity::<String>(Reduce::Sum), None);
        assert_eq!(numeric::<f64>().unwrap().1, Shape::Scalar);
        assert_eq!(
            numeric::<Vec<u16>>().unwrap(),
            (PodType::of::<u16>(), Shape::Vector)
        );
        assert!(numeric::<bool>().is_none() && numeric::<String>().is_none());
        let mut v = vec![1.0f64, 2.0];
        assert_eq!(numeric_bytes(&mut v).unwrap().len(), 16);
    }
}
