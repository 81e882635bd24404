//! Vector datums as the index code takes them: typed elements
//! (`distance::Element`), checked for the index's dimensions.

use super::tid_from_pointer;
use distance::{Element, Storage};
use pagestore::Tid;
use pgrx::pg_sys;

/// Raises pgvector's error for a value whose dimensions differ from the
/// index's.
pub fn expect_dims(v: Element, dims: usize) {
    let got = v.dims();
    if got != dims {
        crate::error::raise(vecfmt::VectorError::ExpectedDimensions {
            expected: dims as i64,
            got: got as i64,
        });
    }
}

/// Calls `f` with a non-null datum of the type `storage` stands for, as
/// the element it is: a vector's f32 values (F32), a halfvec's binary16
/// values (F16), a bit string's bytes (Bits), a sparsevec (Sparse).
///
/// # Safety
/// `value` must be a non-null datum of the type `storage` stands for.
pub unsafe fn with_vector<R>(
    value: pg_sys::Datum,
    storage: Storage,
    f: impl FnOnce(Element) -> R,
) -> R {
    use crate::types::varlena::DenseRef;
    match storage {
        // SAFETY: per the contract.
        Storage::F32 => f(Element::F32(
            unsafe { DenseRef::<f32>::from_datum(value) }.as_slice(),
        )),
        Storage::Bits => f(Element::Bits(crate::types::bit::varbit(value).1)),
        // SAFETY: per the contract.
        Storage::F16 => f(Element::F16(
            unsafe { DenseRef::<half::f16>::from_datum(value) }.as_slice(),
        )),
        Storage::RaBitQ => unreachable!("columns hold vectors, never codes"),
        Storage::Sparse => {
            // SAFETY: per the contract.
            let s = unsafe { crate::types::sparsevec::SparseRef::from_datum(value) };
            f(Element::Sparse {
                dim: s.dim as u32,
                v: distance::sparse::Sparse::from_signed(s.indices, s.values),
            })
        }
    }
}

/// Calls `f` with a dense vector or bit string in the word form the ivf
/// crate takes (`Metric::element_of_words`); f32 values as they are.
pub fn with_words<R>(v: Element, f: impl FnOnce(&[f32]) -> R) -> R {
    match v {
        Element::F32(x) => f(x),
        _ => {
            let mut w = Vec::new();
            v.append_words(&mut w);
            f(&w)
        }
    }
}

/// The value aminsert got and its heap TID; None for a NULL (not indexed).
///
/// # Safety
/// The arguments must be aminsert's (one index column).
pub unsafe fn insert_value(
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
) -> Option<(pg_sys::Datum, Tid)> {
    // SAFETY: per the contract.
    unsafe { (!*isnull).then(|| (*values, tid_from_pointer(&*heap_tid))) }
}
