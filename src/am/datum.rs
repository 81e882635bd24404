//! Vector datums as the index code takes them: values as f32 (or words),
//! checked for the index's dimensions.

use super::tid_from_pointer;
use distance::Storage;
use pagestore::Tid;
use pgrx::pg_sys;

/// The dimensions of a vector as `with_vector` gives it.
pub(super) fn dims_of(v: &[f32], storage: Storage) -> usize {
    match storage {
        Storage::Sparse => distance::sparse::dim_of(v) as usize,
        Storage::F32 | Storage::F16 | Storage::Bits => v.len(),
    }
}

/// Raises pgvector's error for a value whose dimensions differ from the
/// index's.
pub fn expect_dims(v: &[f32], dims: usize, storage: Storage) {
    let got = dims_of(v, storage);
    if got != dims {
        crate::error::raise(vecfmt::VectorError::ExpectedDimensions {
            expected: dims as i64,
            got: got as i64,
        });
    }
}

/// Calls `f` with the values of a non-null vector (F32) or halfvec (F16)
/// datum as f32 (binary16 widens exactly), the words of a bit string
/// (Bits) or of a sparsevec (Sparse, `distance::sparse`'s word form).
///
/// # Safety
/// `value` must be a non-null datum of the type `storage` stands for.
pub unsafe fn with_vector<R>(
    value: pg_sys::Datum,
    storage: Storage,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    use crate::types::varlena::DenseRef;
    match storage {
        // SAFETY: per the contract.
        Storage::F32 => f(unsafe { DenseRef::<f32>::from_datum(value) }.as_slice()),
        Storage::Bits => {
            let (_, bytes) = crate::types::bit::varbit(value);
            // 32 bits to a word, the bytes in string order (see Storage::Bits)
            let words: Vec<f32> = bytes
                .chunks(4)
                .map(|c| {
                    let mut w = [0u8; 4];
                    w[..c.len()].copy_from_slice(c);
                    f32::from_bits(u32::from_ne_bytes(w))
                })
                .collect();
            f(&words)
        }
        Storage::F16 => {
            // SAFETY: per the contract.
            let h = unsafe { DenseRef::<half::f16>::from_datum(value) };
            let v: Vec<f32> = h.as_slice().iter().map(|x| x.to_f32()).collect();
            f(&v)
        }
        Storage::Sparse => {
            // SAFETY: per the contract.
            let s = unsafe { crate::types::sparsevec::SparseRef::from_datum(value) };
            let mut words = Vec::with_capacity(distance::sparse::words(s.indices.len()));
            let kernel = distance::sparse::Sparse::from_signed(s.indices, s.values);
            distance::sparse::to_words(s.dim as u32, kernel, &mut words);
            f(&words)
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
