//! Distance operators on Postgres' own `bit(n)` type: `<~>` Hamming and
//! `<%>` Jaccard, as pgvector defines them (float8 results).

use super::varlena::{detoast, varsize};
use crate::error::{corrupted, raise};
use crate::fmgr::{float8_datum, pg_function, Args};
use vecfmt::VectorError;

fn bits(args: &Args, i: usize) -> (u32, &[u8]) {
    varbit(args.datum(i))
}

/// The bit length and bytes of a non-null `bit`/`varbit` datum
/// (`int32 varlena header | int32 bit length | bytes`), valid while the
/// datum is.
pub fn varbit<'a>(d: pgrx::pg_sys::Datum) -> (u32, &'a [u8]) {
    let p = detoast(d);
    let size = varsize(p);
    if size < 8 {
        corrupted("bit");
    }
    // SAFETY: the varlena holds at least its two 4-byte header words.
    let len = unsafe { (p.add(4) as *const i32).read_unaligned() };
    let bytes = size - 8;
    if len < 0 || (len as usize).div_ceil(8) != bytes {
        corrupted("bit");
    }
    // SAFETY: `bytes` bytes follow the headers (checked against the size).
    (len as u32, unsafe {
        std::slice::from_raw_parts(p.add(8), bytes)
    })
}

fn pair(args: &Args) -> (&[u8], &[u8]) {
    let ((la, a), (lb, b)) = (bits(args, 0), bits(args, 1));
    if la != lb {
        raise(VectorError::DifferentBitLengths { a: la, b: lb });
    }
    (a, b)
}

pg_function!(pg_finfo_vx_hamming_distance, vx_hamming_distance, |args| {
    let (a, b) = pair(&args);
    float8_datum(distance::hamming(a, b) as f64)
});

pg_function!(pg_finfo_vx_jaccard_distance, vx_jaccard_distance, |args| {
    let (a, b) = pair(&args);
    float8_datum(distance::jaccard(a, b))
});
