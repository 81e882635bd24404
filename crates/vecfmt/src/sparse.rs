//! `{1:1.5,3:2}/5`: the text form of sparsevec (1-based indices, zeros
//! dropped), and its binary form (int32 dim, int32 nnz, int32 unused, then
//! nnz 0-based int32 indices and nnz float4 values, big-endian). Checks and
//! errors follow pgvector's order.

use crate::float::{scan_float, write_shortest_f32};
use crate::SPARSE_MAX_NNZ;
use crate::{check_dim, check_element, check_expected_dim, is_pg_space, VectorError};

/// A sparse vector: 0-based indices, ascending, with their non-zero values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sparse {
    pub dim: i32,
    pub indices: Vec<i32>,
    pub values: Vec<f32>,
}

/// pgvector's CheckNnz.
pub fn check_nnz(nnz: i64, dim: i64) -> Result<(), VectorError> {
    if nnz < 0 {
        return Err(VectorError::NegativeNnz);
    }
    if nnz > SPARSE_MAX_NNZ as i64 {
        return Err(VectorError::TooManyNnz);
    }
    if nnz > dim {
        return Err(VectorError::MoreNnzThanDimensions);
    }
    Ok(())
}

/// pgvector's CheckIndex for element `i` of `indices`.
fn check_index(indices: &[i32], i: usize, dim: i32) -> Result<(), VectorError> {
    let index = indices[i];
    if index < 0 || index >= dim {
        return Err(VectorError::IndexOutOfBounds);
    }
    if i > 0 {
        if index < indices[i - 1] {
            return Err(VectorError::IndicesNotAscending);
        }
        if index == indices[i - 1] {
            return Err(VectorError::DuplicateIndices);
        }
    }
    Ok(())
}

/// strtol at the start of `s` (leading whitespace and a sign allowed),
/// clamped to `lo..=hi`; None without digits.
fn scan_int(s: &[u8], lo: i64, hi: i64) -> Option<(i64, usize)> {
    let (_, negative, i) = crate::float::space_and_sign(s);
    let digits = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for c in &s[i..i + digits] {
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    let v = if negative { -v } else { v };
    Some((v.clamp(lo, hi), i + digits))
}

/// Whether a number's text has a non-zero digit in its mantissa (so a
/// value of zero means it underflowed).
fn nonzero_mantissa(token: &[u8]) -> bool {
    let hex = token.len() > 2 && token[0] == b'0' && (token[1] | 0x20) == b'x';
    let body = if hex { &token[2..] } else { token };
    body.iter()
        .take_while(|c| !matches!(c, b'e' | b'E' | b'p' | b'P') || hex && matches!(c, b'e' | b'E'))
        .any(|c| {
            if hex {
                c.is_ascii_hexdigit() && *c != b'0'
            } else {
                (b'1'..=b'9').contains(c)
            }
        })
}

/// Parses a sparsevec literal, checking it against `typmod`.
pub fn parse_sparse(input: &[u8], typmod: i32) -> Result<Sparse, VectorError> {
    let lit = || String::from_utf8_lossy(input).into_owned();
    let syntax = || VectorError::InvalidSyntax {
        type_name: "sparsevec",
        input: lit(),
    };
    let max_nnz = 1 + input.iter().filter(|c| **c == b',').count();
    if max_nnz > SPARSE_MAX_NNZ {
        return Err(VectorError::TooManyNnz);
    }
    let skip = |mut p: usize| {
        while p < input.len() && is_pg_space(input[p]) {
            p += 1;
        }
        p
    };
    let mut p = skip(0);
    if input.get(p) != Some(&b'{') {
        return Err(VectorError::MustStartWithBrace { input: lit() });
    }
    p = skip(p + 1);
    let mut elements: Vec<(i32, f32)> = Vec::new();
    if input.get(p) == Some(&b'}') {
        p += 1;
    } else {
        loop {
            p = skip(p);
            if p >= input.len() {
                return Err(syntax());
            }
            let (index, used) =
                scan_int(&input[p..], i32::MIN as i64 + 1, i32::MAX as i64).ok_or_else(syntax)?;
            p = skip(p + used);
            if input.get(p) != Some(&b':') {
                return Err(syntax());
            }
            p = skip(p + 1);
            let f = scan_float(&input[p..]).ok_or_else(syntax)?;
            let token = &input[p + f.start..p + f.len];
            if f.overflow || (f.value == 0.0 && nonzero_mantissa(token)) {
                let token = String::from_utf8_lossy(token).into_owned();
                return Err(VectorError::OutOfRange {
                    type_name: "sparsevec",
                    token,
                });
            }
            check_element("sparsevec", f.value)?;
            if f.value != 0.0 {
                elements.push(((index - 1) as i32, f.value));
            }
            p = skip(p + f.len);
            match input.get(p) {
                Some(b',') => p += 1,
                Some(b'}') => {
                    p += 1;
                    break;
                }
                _ => return Err(syntax()),
            }
        }
    }
    p = skip(p);
    if input.get(p) != Some(&b'/') {
        return Err(VectorError::UnexpectedEnd { input: lit() });
    }
    p = skip(p + 1);
    let (dim, used) = scan_int(&input[p..], i32::MIN as i64, i32::MAX as i64).ok_or_else(syntax)?;
    p = skip(p + used);
    if p != input.len() {
        return Err(VectorError::JunkAfterSparse { input: lit() });
    }
    check_dim("sparsevec", dim.max(0) as usize)?;
    check_expected_dim(typmod, dim as usize)?;
    elements.sort_by_key(|e| e.0);
    let dim = dim as i32;
    let mut s = Sparse {
        dim,
        indices: elements.iter().map(|e| e.0).collect(),
        values: elements.iter().map(|e| e.1).collect(),
    };
    for i in 0..s.indices.len() {
        check_index(&s.indices, i, dim)?;
    }
    s.indices.shrink_to_fit();
    Ok(s)
}

/// `{i:v,...}/dim` with 1-based indices and shortest round-trip values.
pub fn format_sparse(dim: i32, indices: &[i32], values: &[f32], out: &mut String) {
    use std::fmt::Write;
    out.push('{');
    for (n, (i, v)) in indices.iter().zip(values).enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:", *i as i64 + 1);
        write_shortest_f32(*v, out);
    }
    let _ = write!(out, "}}/{dim}");
}

/// Decodes the binary form; returns the vector and the bytes consumed.
pub fn decode_sparse(buf: &[u8], typmod: i32) -> Result<(Sparse, usize), VectorError> {
    let mut pos = 0;
    let mut int = || -> Result<i32, VectorError> {
        let b = buf.get(pos..pos + 4).ok_or(VectorError::InsufficientData)?;
        pos += 4;
        Ok(i32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let dim = int()?;
    let nnz = int()?;
    let unused = int()?;
    if dim < 1 {
        return Err(VectorError::NoDimensions {
            type_name: "sparsevec",
        });
    }
    check_dim("sparsevec", dim as usize)?;
    check_nnz(nnz as i64, dim as i64)?;
    check_expected_dim(typmod, dim as usize)?;
    if unused != 0 {
        return Err(VectorError::UnusedNotZero {
            unused: unused as i64,
        });
    }
    let mut s = Sparse {
        dim,
        indices: Vec::with_capacity(nnz as usize),
        values: Vec::with_capacity(nnz as usize),
    };
    for i in 0..nnz as usize {
        s.indices.push(int()?);
        check_index(&s.indices, i, dim)?;
    }
    for _ in 0..nnz {
        let v = f32::from_bits(int()? as u32);
        check_element("sparsevec", v)?;
        if v == 0.0 {
            return Err(VectorError::ZeroInBinary);
        }
        s.values.push(v);
    }
    Ok((s, pos))
}

/// Encodes in the form `decode_sparse` reads (unused is always 0).
pub fn encode_sparse(dim: i32, indices: &[i32], values: &[f32], out: &mut Vec<u8>) {
    out.extend_from_slice(&dim.to_be_bytes());
    out.extend_from_slice(&(indices.len() as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    for i in indices {
        out.extend_from_slice(&i.to_be_bytes());
    }
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}
