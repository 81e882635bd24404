//! Text and binary formats of the dense vector types, independent of Postgres.
//!
//! The grammar and every error follow pgvector's behaviour, so that clients
//! and tests that compare error text keep working; `VectorError` carries the
//! message, DETAIL and SQLSTATE and the extension only raises it.

#![forbid(unsafe_code)]

mod binary;
mod error;
mod float;
mod sparse;
mod text;

#[cfg(test)]
mod fuzz;

pub use binary::{decode_dense_f16, decode_dense_f32, encode_dense_f16, encode_dense_f32};
pub use error::{SqlState, VectorError};
pub use float::{scan_float, write_shortest_f32, ScannedFloat};
pub use sparse::{check_nnz, decode_sparse, encode_sparse, format_sparse, parse_sparse, Sparse};
pub use text::{format_dense, parse_dense, parse_dense_within};

/// Most dimensions any vector value may have (pgvector's VECTOR_MAX_DIM).
pub const MAX_DIM: usize = 16000;

/// Most dimensions a sparsevec may have, and most non-zero elements.
pub const SPARSE_MAX_DIM: usize = 1_000_000_000;
pub const SPARSE_MAX_NNZ: usize = 16000;

/// The dimension limit of a type by name.
pub fn max_dim(type_name: &str) -> usize {
    if type_name == "sparsevec" {
        SPARSE_MAX_DIM
    } else {
        MAX_DIM
    }
}

/// Characters Postgres' scanner treats as whitespace (scanner_isspace).
#[inline]
pub fn is_pg_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Checks a dimension count as pgvector's CheckDim does.
pub fn check_dim(type_name: &'static str, dim: usize) -> Result<(), VectorError> {
    if dim < 1 {
        return Err(VectorError::NoDimensions { type_name });
    }
    if dim > max_dim(type_name) {
        return Err(VectorError::TooManyDimensions { type_name });
    }
    Ok(())
}

/// Checks a value against a typmod (-1 means unconstrained).
pub fn check_expected_dim(typmod: i32, dim: usize) -> Result<(), VectorError> {
    if typmod != -1 && typmod as i64 != dim as i64 {
        return Err(VectorError::ExpectedDimensions {
            expected: typmod as i64,
            got: dim as i64,
        });
    }
    Ok(())
}

/// The half-precision value of `v` (round to nearest even), or an
/// out-of-range error naming `v` in shortest form when a finite `v` is too
/// large for it. NaN and infinities pass through (callers check elements).
pub fn f32_to_f16(type_name: &'static str, v: f32) -> Result<half::f16, VectorError> {
    let h = half::f16::from_f32(v);
    if h.is_infinite() && v.is_finite() {
        let mut token = String::new();
        write_shortest_f32(v, &mut token);
        return Err(VectorError::OutOfRange { type_name, token });
    }
    Ok(h)
}

/// Rejects NaN and infinities, which no vector type stores.
#[inline]
pub fn check_element(type_name: &'static str, v: f32) -> Result<(), VectorError> {
    if v.is_nan() {
        return Err(VectorError::NaN { type_name });
    }
    if v.is_infinite() {
        return Err(VectorError::Infinite { type_name });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
