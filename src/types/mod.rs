//! The vector types. Each type module holds the fmgr functions its SQL
//! declarations call; shared varlena and array plumbing lives beside them.

pub mod array;
pub mod bit;
pub mod dense;
pub mod halfvec;
pub mod sparsevec;
pub mod varlena;
pub mod vector;

use crate::error::OrRaise;
use crate::fmgr::Args;
use pgrx::pg_sys;
use std::ops::Range;
use varlena::{detoast, set_varsize};
use vecfmt::VectorError;

/// typmod_in for every vector type: exactly one modifier, 1..=the type's limit.
pub fn typmod_in(args: Args, type_name: &'static str) -> i32 {
    let array = detoast(args.datum(0)) as *mut pg_sys::ArrayType;
    let mut n = 0;
    // SAFETY: argument 0 is the cstring[] of type modifiers; the function
    // validates it and returns n integers (or raises an ERROR).
    let mods = unsafe { pg_sys::ArrayGetIntegerTypmods(array, &mut n) };
    let result = if n != 1 {
        Err(VectorError::TypmodNotOne)
    } else {
        // SAFETY: n == 1, so one integer is there.
        let m = unsafe { *mods };
        if m < 1 {
            Err(VectorError::TypmodTooSmall { type_name })
        } else if m as usize > vecfmt::max_dim(type_name) {
            Err(VectorError::TypmodTooLarge { type_name })
        } else {
            Ok(m)
        }
    };
    result.or_raise()
}

/// A palloc'd bytea holding `bytes`.
pub fn bytea_datum(bytes: &[u8]) -> pg_sys::Datum {
    let size = 4 + bytes.len();
    // SAFETY: palloc returns `size` writable bytes or raises an ERROR.
    unsafe {
        let p = pg_sys::palloc(size) as *mut u8;
        set_varsize(p, size);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(4), bytes.len());
        pg_sys::Datum::from(p)
    }
}

/// A palloc'd `bit(nbits)` value whose bit i (most significant first) is f(i).
pub fn bit_datum(nbits: usize, f: impl Fn(usize) -> bool) -> pg_sys::Datum {
    let nbytes = nbits.div_ceil(8);
    let size = 4 + 4 + nbytes;
    // SAFETY: palloc0 returns `size` zeroed bytes; VarBit is a varlena header,
    // an int32 bit length, then the bits.
    unsafe {
        let p = pg_sys::palloc0(size) as *mut u8;
        set_varsize(p, size);
        (p.add(4) as *mut i32).write_unaligned(nbits as i32);
        let bits = std::slice::from_raw_parts_mut(p.add(8), nbytes);
        for i in 0..nbits {
            if f(i) {
                bits[i / 8] |= 0x80 >> (i % 8);
            }
        }
        pg_sys::Datum::from(p)
    }
}

/// The elements `subvector(v, start, count)` selects (1-based like
/// substring; a range running off either end is cut, an empty one is an error).
pub fn subvector_range(
    dim: usize,
    start: i32,
    count: i32,
    type_name: &'static str,
) -> Result<Range<usize>, VectorError> {
    let (dim, mut start, count) = (dim as i64, start as i64, count as i64);
    if count < 1 {
        return Err(VectorError::NoDimensions { type_name });
    }
    let end = if start > dim - count {
        dim + 1
    } else {
        start + count
    };
    if start < 1 {
        start = 1;
    } else if start > dim {
        return Err(VectorError::NoDimensions { type_name });
    }
    let len = end - start;
    if len < 1 {
        return Err(VectorError::NoDimensions { type_name });
    }
    vecfmt::check_dim(type_name, len as usize)?;
    Ok((start - 1) as usize..(start - 1 + len) as usize)
}
