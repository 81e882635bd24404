//! Binary send/recv form: int16 dim, int16 unused, then dim elements
//! (float4 for vector, IEEE binary16 for halfvec), big-endian.

use crate::{check_dim, check_element, check_expected_dim, VectorError};

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], VectorError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or(VectorError::InsufficientData)?;
        self.pos += N;
        Ok(bytes.try_into().expect("slice of length N"))
    }
}

/// Decodes a vector from `buf`; returns the values and the bytes consumed.
/// Checks run in pgvector's order: dimensions, typmod, unused, then elements.
pub fn decode_dense_f32(
    type_name: &'static str,
    buf: &[u8],
    typmod: i32,
) -> Result<(Vec<f32>, usize), VectorError> {
    decode_dense(type_name, buf, typmod, |r| {
        let v = f32::from_be_bytes(r.take()?);
        Ok((v, v))
    })
}

/// `decode_dense_f32` for halfvec's binary16 elements.
pub fn decode_dense_f16(
    type_name: &'static str,
    buf: &[u8],
    typmod: i32,
) -> Result<(Vec<half::f16>, usize), VectorError> {
    decode_dense(type_name, buf, typmod, |r| {
        let v = half::f16::from_bits(u16::from_be_bytes(r.take()?));
        Ok((v, v.to_f32()))
    })
}

/// The header checks, then `element` (the value and its f32 for the
/// element checks) `dim` times.
fn decode_dense<T>(
    type_name: &'static str,
    buf: &[u8],
    typmod: i32,
    element: impl Fn(&mut Reader) -> Result<(T, f32), VectorError>,
) -> Result<(Vec<T>, usize), VectorError> {
    let mut r = Reader { buf, pos: 0 };
    let dim = u16::from_be_bytes(r.take()?) as usize;
    let unused = u16::from_be_bytes(r.take()?);
    check_dim(type_name, dim)?;
    check_expected_dim(typmod, dim)?;
    if unused != 0 {
        return Err(VectorError::UnusedNotZero {
            unused: unused as i64,
        });
    }
    let mut values = Vec::with_capacity(dim);
    for _ in 0..dim {
        let (v, f) = element(&mut r)?;
        check_element(type_name, f)?;
        values.push(v);
    }
    Ok((values, r.pos))
}

/// Encodes in the form `decode_dense_f32` reads (unused is always 0).
pub fn encode_dense_f32(values: &[f32], out: &mut Vec<u8>) {
    out.reserve(4 + 4 * values.len());
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Encodes in the form `decode_dense_f16` reads (unused is always 0).
pub fn encode_dense_f16(values: &[half::f16], out: &mut Vec<u8>) {
    out.reserve(4 + 2 * values.len());
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for v in values {
        out.extend_from_slice(&v.to_bits().to_be_bytes());
    }
}
