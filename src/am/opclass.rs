//! What an index stores, from its definition: the column's dimensions and
//! the metric and storage its operator class stands for.

use super::error;
use distance::{Metric, Storage};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;

/// The dimensions of the indexed column (its typmod), checked against what
/// the access method can store.
///
/// # Safety
/// `index` must be a valid, open index relation with at least one column.
pub unsafe fn column_dimensions(index: pg_sys::Relation, am: &str, max: usize) -> usize {
    // SAFETY: an open index has a tuple descriptor with its key columns.
    let typmod = unsafe { crate::pg_compat::attribute((*index).rd_att, 0).atttypmod };
    if typmod < 0 {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "column does not have dimensions".into(),
            None,
        );
    }
    if typmod as usize > max {
        error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("column cannot have more than {max} dimensions for {am} index"),
            None,
        );
    }
    typmod as usize
}

/// The dimensions an index works in: the column's (checked as
/// `column_dimensions` does against `max` elements), or for bit strings
/// the 32-bit words holding the column's bits (at most 32 x `max` bits).
///
/// # Safety
/// As for `column_dimensions`.
pub unsafe fn index_dimensions(
    index: pg_sys::Relation,
    am: &str,
    storage: Storage,
    max: usize,
) -> usize {
    // SAFETY: per the contract.
    unsafe {
        match storage {
            Storage::Bits => {
                // bit strings of one length only, as pgvector: a bit varying
                // column may mix lengths, whatever its bound
                let attr = crate::pg_compat::attribute((*index).rd_att, 0);
                if attr.atttypid == pg_sys::VARBITOID {
                    error(
                        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                        format!("type not supported for {am} index"),
                        None,
                    );
                }
                column_dimensions(index, am, 32 * max).div_ceil(32)
            }
            Storage::F32 | Storage::F16 | Storage::Sparse | Storage::RaBitQ => {
                column_dimensions(index, am, max)
            }
        }
    }
}

/// Which metric the operator class orders by, from its support functions:
/// 1 is the distance, and a norm function as support 2 means cosine
/// (vectors are normalised and compared by inner product), as in pgvector.
///
/// # Safety
/// `index` must be a valid, open index relation of one of our access methods.
pub unsafe fn opclass_metric(index: pg_sys::Relation, am_name: &str) -> (Metric, Storage) {
    use crate::types::halfvec as h;
    use crate::types::sparsevec as s;
    use crate::types::vector as v;
    // SAFETY: every opclass of ours declares support function 1 (amvalidate is
    // permissive, so check); index_getprocid returns InvalidOid when absent.
    let (addr, has_norm) = unsafe {
        if pg_sys::index_getprocid(index, 1, 1) == pg_sys::InvalidOid {
            error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("operator class has no distance function for {am_name} index"),
                None,
            );
        }
        let info = pg_sys::index_getprocinfo(index, 1, 1);
        (
            (*info).fn_addr.map_or(0, |f| f as usize),
            pg_sys::index_getprocid(index, 1, 2) != pg_sys::InvalidOid,
        )
    };
    type V1 = unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    let is = |f: V1| addr == f as usize;
    let ip = if has_norm {
        Metric::Cosine
    } else {
        Metric::InnerProduct
    };
    if is(v::vx_vector_l2_squared_distance) {
        (Metric::L2, Storage::F32)
    } else if is(v::vx_vector_negative_inner_product) {
        (ip, Storage::F32)
    } else if is(v::vx_l1_distance) {
        (Metric::L1, Storage::F32)
    } else if is(h::vx_halfvec_l2_squared_distance) {
        (Metric::L2, Storage::F16)
    } else if is(h::vx_halfvec_negative_inner_product) {
        (ip, Storage::F16)
    } else if is(h::vx_halfvec_l1_distance) {
        (Metric::L1, Storage::F16)
    } else if is(crate::types::bit::vx_hamming_distance) {
        (Metric::Hamming, Storage::Bits)
    } else if is(crate::types::bit::vx_jaccard_distance) {
        (Metric::Jaccard, Storage::Bits)
    } else if is(s::vx_sparsevec_l2_squared_distance) {
        (Metric::SparseL2, Storage::Sparse)
    } else if is(s::vx_sparsevec_negative_inner_product) {
        let cosine = has_norm;
        (
            if cosine {
                Metric::SparseCosine
            } else {
                Metric::SparseInnerProduct
            },
            Storage::Sparse,
        )
    } else if is(s::vx_sparsevec_l1_distance) {
        (Metric::SparseL1, Storage::Sparse)
    } else {
        error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("type not supported for {am_name} index"),
            None,
        )
    }
}
