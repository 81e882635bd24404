//! The `sparsevec` type: I/O, typmod, casts with vector, halfvec and
//! arrays, distances over the sorted indices, norms and comparison.
//! In memory, as pgvector lays it out: `int32 varlena header | int32 dim |
//! int32 nnz | int32 unused | int32 indices[nnz] (0-based, ascending) |
//! float4 values[nnz]` (no zeros).

use super::array::{numeric_to_f32, ArrayArg};
use super::varlena::{detoast, set_varsize, varsize, Element, NewDense};
use crate::error::{corrupted, raise, OrRaise};
use crate::fmgr::{float8_datum, pg_function, Args};
use distance::sparse;
use half::f16;
use pgrx::pg_sys;
use vecfmt::{check_dim, check_element, check_expected_dim, VectorError};

const TYPE_NAME: &str = "sparsevec";
const HEADER: usize = 16;

/// A detoasted sparsevec argument, borrowed for one call.
pub struct SparseRef<'a> {
    pub dim: i32,
    pub indices: &'a [i32],
    pub values: &'a [f32],
}

impl SparseRef<'_> {
    /// # Safety
    /// `d` must be a non-null sparsevec datum valid for the call.
    pub(crate) unsafe fn from_datum<'a>(d: pg_sys::Datum) -> SparseRef<'a> {
        let p = detoast(d);
        let size = varsize(p);
        if size < HEADER {
            corrupted(TYPE_NAME);
        }
        // SAFETY: the 16-byte header is there (checked above).
        let (dim, nnz) = unsafe { (*(p.add(4) as *const i32), *(p.add(8) as *const i32)) };
        if nnz < 0 || dim < 0 || size != HEADER + 8 * nnz as usize {
            corrupted(TYPE_NAME);
        }
        let n = nnz as usize;
        // SAFETY: size checked: n indices then n values follow the header,
        // 4-byte aligned as the varlena is.
        unsafe {
            SparseRef {
                dim,
                indices: std::slice::from_raw_parts(p.add(HEADER) as *const i32, n),
                values: std::slice::from_raw_parts(p.add(HEADER + 4 * n) as *const f32, n),
            }
        }
    }
}

impl Args {
    fn sparse(&self, i: usize) -> SparseRef<'_> {
        // SAFETY: the SQL declaration gives argument i type sparsevec and
        // the function is STRICT.
        unsafe { SparseRef::from_datum(self.datum(i)) }
    }

    fn sparse_pair(&self) -> (SparseRef<'_>, SparseRef<'_>) {
        let (a, b) = (self.sparse(0), self.sparse(1));
        super::dense::same_dims(TYPE_NAME, a.dim as usize, b.dim as usize);
        (a, b)
    }
}

/// A palloc'd sparsevec.
fn new_sparse(dim: i32, indices: &[i32], values: &[f32]) -> pg_sys::Datum {
    let n = indices.len();
    let size = HEADER + 8 * n;
    // SAFETY: palloc0 returns `size` zeroed bytes or raises an ERROR; the
    // fields are written inside them.
    unsafe {
        let p = pg_sys::palloc0(size) as *mut u8;
        set_varsize(p, size);
        *(p.add(4) as *mut i32) = dim;
        *(p.add(8) as *mut i32) = n as i32;
        std::ptr::copy_nonoverlapping(indices.as_ptr(), p.add(HEADER) as *mut i32, n);
        std::ptr::copy_nonoverlapping(values.as_ptr(), p.add(HEADER + 4 * n) as *mut f32, n);
        pg_sys::Datum::from(p)
    }
}

// ------------------------------------------------------------------ I/O --

pg_function!(pg_finfo_vx_sparsevec_in, vx_sparsevec_in, |args| {
    let s = vecfmt::parse_sparse(args.cstr(0).to_bytes(), args.i32(2)).or_raise();
    new_sparse(s.dim, &s.indices, &s.values)
});

pg_function!(pg_finfo_vx_sparsevec_out, vx_sparsevec_out, |args| {
    let s = args.sparse(0);
    let mut out = String::with_capacity(16 + 16 * s.indices.len());
    vecfmt::format_sparse(s.dim, s.indices, s.values, &mut out);
    super::dense::cstring(&out)
});

pg_function!(
    pg_finfo_vx_sparsevec_typmod_in,
    vx_sparsevec_typmod_in,
    |args| pg_sys::Datum::from(super::typmod_in(args, TYPE_NAME))
);

pg_function!(pg_finfo_vx_sparsevec_recv, vx_sparsevec_recv, |args| {
    let (buf, bytes) = super::dense::unread_message(&args);
    let (s, used) = vecfmt::decode_sparse(bytes, args.i32(2)).or_raise();
    super::dense::consume(buf, used);
    new_sparse(s.dim, &s.indices, &s.values)
});

pg_function!(pg_finfo_vx_sparsevec_send, vx_sparsevec_send, |args| {
    let s = args.sparse(0);
    let mut out = Vec::with_capacity(12 + 8 * s.indices.len());
    vecfmt::encode_sparse(s.dim, s.indices, s.values, &mut out);
    super::bytea_datum(&out)
});

// ---------------------------------------------------------------- casts --

pg_function!(pg_finfo_vx_sparsevec, vx_sparsevec, |args| {
    check_expected_dim(args.i32(1), args.sparse(0).dim as usize).or_raise();
    args.datum(0)
});

/// The non-zero entries of dense values, checked as pgvector does.
fn from_dense(values: impl Iterator<Item = f32> + Clone, dim: usize, typmod: i32) -> pg_sys::Datum {
    check_dim(TYPE_NAME, dim).or_raise();
    check_expected_dim(typmod, dim).or_raise();
    let nnz = values.clone().filter(|v| *v != 0.0).count();
    vecfmt::check_nnz(nnz as i64, dim as i64).or_raise();
    let (mut indices, mut vals) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (i, v) in values.enumerate().filter(|(_, v)| *v != 0.0) {
        indices.push(i as i32);
        vals.push(v);
    }
    new_sparse(dim as i32, &indices, &vals)
}

fn dense_to_sparse<E: Element>(args: Args) -> pg_sys::Datum {
    let v = args.dense::<E>(0);
    from_dense(
        v.as_slice().iter().map(|x| x.to_f32()),
        v.dim(),
        args.i32(1),
    )
}

pg_function!(
    pg_finfo_vx_vector_to_sparsevec,
    vx_vector_to_sparsevec,
    |args| dense_to_sparse::<f32>(args)
);
pg_function!(
    pg_finfo_vx_halfvec_to_sparsevec,
    vx_halfvec_to_sparsevec,
    |args| dense_to_sparse::<f16>(args)
);

pg_function!(
    pg_finfo_vx_array_to_sparsevec,
    vx_array_to_sparsevec,
    |args| {
        let values = ArrayArg::new(args.datum(0)).to_f32(numeric_to_f32);
        check_dim(TYPE_NAME, values.len()).or_raise();
        for v in &values {
            check_element(TYPE_NAME, *v).or_raise();
        }
        from_dense(values.iter().copied(), values.len(), args.i32(1))
    }
);

fn sparse_to_dense<E: Element>(args: Args) -> pg_sys::Datum {
    let s = args.sparse(0);
    let dim = s.dim as usize;
    check_dim(E::TYPE_NAME, dim).or_raise();
    check_expected_dim(args.i32(1), dim).or_raise();
    let mut out = NewDense::<E>::zeroed(dim);
    let values = out.values_mut();
    for (i, v) in s.indices.iter().zip(s.values) {
        let Some(slot) = values.get_mut(*i as usize) else {
            corrupted(TYPE_NAME);
        };
        *slot = E::from_f32(*v).or_raise();
    }
    out.into_datum()
}

pg_function!(
    pg_finfo_vx_sparsevec_to_vector,
    vx_sparsevec_to_vector,
    |args| sparse_to_dense::<f32>(args)
);
pg_function!(
    pg_finfo_vx_sparsevec_to_halfvec,
    vx_sparsevec_to_halfvec,
    |args| sparse_to_dense::<f16>(args)
);

// ------------------------------------------------------------ distances --

impl SparseRef<'_> {
    /// The vector for `distance::sparse`'s kernels (indices are never
    /// negative: input checks them).
    fn kernel(&self) -> sparse::Sparse<'_> {
        sparse::Sparse::from_signed(self.indices, self.values)
    }
}

fn l2_squared(a: &SparseRef, b: &SparseRef) -> f32 {
    sparse::l2_squared(a.kernel(), b.kernel())
}

fn dot(a: &SparseRef, b: &SparseRef) -> f32 {
    sparse::dot(a.kernel(), b.kernel())
}

pg_function!(
    pg_finfo_vx_sparsevec_l2_distance,
    vx_sparsevec_l2_distance,
    |args| {
        let (a, b) = args.sparse_pair();
        float8_datum((l2_squared(&a, &b) as f64).sqrt())
    }
);
pg_function!(
    pg_finfo_vx_sparsevec_l2_squared_distance,
    vx_sparsevec_l2_squared_distance,
    |args| {
        let (a, b) = args.sparse_pair();
        float8_datum(l2_squared(&a, &b) as f64)
    }
);
pg_function!(
    pg_finfo_vx_sparsevec_inner_product,
    vx_sparsevec_inner_product,
    |args| {
        let (a, b) = args.sparse_pair();
        float8_datum(dot(&a, &b) as f64)
    }
);
pg_function!(
    pg_finfo_vx_sparsevec_negative_inner_product,
    vx_sparsevec_negative_inner_product,
    |args| {
        let (a, b) = args.sparse_pair();
        float8_datum(-(dot(&a, &b) as f64))
    }
);
pg_function!(
    pg_finfo_vx_sparsevec_cosine_distance,
    vx_sparsevec_cosine_distance,
    |args| {
        let (a, b) = args.sparse_pair();
        let norm = |s: &SparseRef| sparse::norm_squared(s.kernel());
        float8_datum(distance::cosine_distance_from_parts(
            dot(&a, &b),
            norm(&a),
            norm(&b),
        ))
    }
);
pg_function!(
    pg_finfo_vx_sparsevec_l1_distance,
    vx_sparsevec_l1_distance,
    |args| {
        let (a, b) = args.sparse_pair();
        float8_datum(sparse::l1(a.kernel(), b.kernel()) as f64)
    }
);

// ------------------------------------------------------ other functions --

fn norm_f64(s: &SparseRef) -> f64 {
    sparse::norm_f64(s.kernel())
}

pg_function!(
    pg_finfo_vx_sparsevec_l2_norm,
    vx_sparsevec_l2_norm,
    |args| float8_datum(norm_f64(&args.sparse(0)))
);

pg_function!(
    pg_finfo_vx_sparsevec_l2_normalize,
    vx_sparsevec_l2_normalize,
    |args| {
        let s = args.sparse(0);
        let norm = norm_f64(&s);
        if norm == 0.0 {
            // a zero vector normalises to itself
            return new_sparse(s.dim, s.indices, s.values);
        }
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for (i, v) in s.indices.iter().zip(s.values) {
            let x = (*v as f64 / norm) as f32;
            if x.is_infinite() {
                raise(VectorError::Overflow);
            }
            // values that underflow to zero leave the vector
            if x != 0.0 {
                indices.push(*i);
                values.push(x);
            }
        }
        new_sparse(s.dim, &indices, &values)
    }
);

// ----------------------------------------------------------- comparison --

/// pgvector's order: as the dense vectors compare element by element
/// (then by dimensions), read off the sparse entries.
fn compare(args: &Args) -> i32 {
    let (a, b) = (args.sparse(0), args.sparse(1));
    let n = a.indices.len().min(b.indices.len());
    for i in 0..n {
        let (ai, bi, ax, bx) = (a.indices[i], b.indices[i], a.values[i], b.values[i]);
        if ai < bi {
            return if ax < 0.0 { -1 } else { 1 };
        }
        if ai > bi {
            return if bx < 0.0 { 1 } else { -1 };
        }
        if ax < bx {
            return -1;
        }
        if ax > bx {
            return 1;
        }
    }
    if a.indices.len() < b.indices.len() && b.indices[n] < a.dim {
        return if b.values[n] < 0.0 { 1 } else { -1 };
    }
    if a.indices.len() > b.indices.len() && a.indices[n] < b.dim {
        return if a.values[n] < 0.0 { -1 } else { 1 };
    }
    a.dim.cmp(&b.dim) as i32
}

pg_function!(pg_finfo_vx_sparsevec_lt, vx_sparsevec_lt, |a| (compare(&a)
    < 0)
.into());
pg_function!(pg_finfo_vx_sparsevec_le, vx_sparsevec_le, |a| (compare(&a)
    <= 0)
    .into());
pg_function!(pg_finfo_vx_sparsevec_eq, vx_sparsevec_eq, |a| (compare(&a)
    == 0)
    .into());
pg_function!(pg_finfo_vx_sparsevec_ne, vx_sparsevec_ne, |a| (compare(&a)
    != 0)
    .into());
pg_function!(pg_finfo_vx_sparsevec_ge, vx_sparsevec_ge, |a| (compare(&a)
    >= 0)
    .into());
pg_function!(pg_finfo_vx_sparsevec_gt, vx_sparsevec_gt, |a| (compare(&a)
    > 0)
.into());
pg_function!(pg_finfo_vx_sparsevec_cmp, vx_sparsevec_cmp, |a| compare(&a)
    .into());
