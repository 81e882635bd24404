//! `[1,2.5,3]`: the text form of vector and halfvec.

use crate::float::{scan_float, write_shortest_f32};
use crate::{check_dim, check_element, check_expected_dim, is_pg_space, VectorError, MAX_DIM};

/// Parses a literal into `out` (cleared first), checking it against `typmod`.
/// Errors come in the order pgvector raises them, so the first problem in the
/// input is the one reported.
pub fn parse_dense(
    type_name: &'static str,
    input: &[u8],
    typmod: i32,
    out: &mut Vec<f32>,
) -> Result<(), VectorError> {
    parse_dense_within(type_name, input, typmod, |_| true, out)
}

/// `parse_dense` for an element type narrower than f32: a finite number
/// `fits` rejects (one that would become infinite) is out of range, named
/// by its text, like a number too large for f32.
pub fn parse_dense_within(
    type_name: &'static str,
    input: &[u8],
    typmod: i32,
    fits: impl Fn(f32) -> bool,
    out: &mut Vec<f32>,
) -> Result<(), VectorError> {
    out.clear();
    let lit = || String::from_utf8_lossy(input).into_owned();
    let skip = |mut p: usize| {
        while p < input.len() && is_pg_space(input[p]) {
            p += 1;
        }
        p
    };
    let mut p = skip(0);
    if input.get(p) != Some(&b'[') {
        return Err(VectorError::MustStartWithBracket {
            type_name,
            input: lit(),
        });
    }
    p = skip(p + 1);
    if input.get(p) == Some(&b']') {
        return Err(VectorError::NoDimensions { type_name });
    }
    loop {
        if out.len() == MAX_DIM {
            return Err(VectorError::TooManyDimensions { type_name });
        }
        p = skip(p);
        let Some(f) = scan_float(&input[p..]) else {
            return Err(VectorError::InvalidSyntax {
                type_name,
                input: lit(),
            });
        };
        if f.overflow || (f.value.is_finite() && !fits(f.value)) {
            let token = String::from_utf8_lossy(&input[p + f.start..p + f.len]).into_owned();
            return Err(VectorError::OutOfRange { type_name, token });
        }
        check_element(type_name, f.value)?;
        out.push(f.value);
        p = skip(p + f.len);
        match input.get(p) {
            Some(b',') => p += 1,
            Some(b']') => {
                p += 1;
                break;
            }
            _ => {
                return Err(VectorError::InvalidSyntax {
                    type_name,
                    input: lit(),
                })
            }
        }
    }
    if skip(p) != input.len() {
        return Err(VectorError::JunkAfterClosingBracket {
            type_name,
            input: lit(),
        });
    }
    check_dim(type_name, out.len())?;
    check_expected_dim(typmod, out.len())
}

/// `[v1,v2,...]` with each value in shortest round-trip form.
pub fn format_dense(values: impl IntoIterator<Item = f32>, out: &mut String) {
    let values = values.into_iter();
    // most values print in 8 to 12 characters
    out.reserve(2 + 12 * values.size_hint().0);
    out.push('[');
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_shortest_f32(v, out);
    }
    out.push(']');
}
