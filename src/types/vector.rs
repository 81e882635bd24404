//! The `vector` type: I/O, typmod, casts, distances, arithmetic, comparison
//! and aggregate support. SQL declarations are in sql/vector_ext.sql.

use super::array::{float8_state, new_float4_array, new_float8_array, numeric_to_f32, ArrayArg};
use super::varlena::{NewVector, VectorRef};
use crate::error::{raise, OrRaise};
use crate::fmgr::{float8_datum, pg_function, Args};
use pgrx::pg_sys;
use vecfmt::{check_dim, check_element, check_expected_dim, VectorError};

const TYPE_NAME: &str = "vector";

/// How much to prefetch around each distance argument: 2 KiB from its start
/// (all of a 384-d vector) and 2 KiB below it, where a sequential scan finds
/// the next tuple of the page. Measured on 100k x 384 (bench/): 0 KiB below
/// 49 ms, 1 KiB 45 ms, 2 KiB 42 ms, 4 KiB 42 ms per exact scan.
const PREFETCH_BYTES: usize = 2048;

impl Args {
    /// Both vector arguments of a distance function, with their memory
    /// prefetched before either header is read (see `varlena::prefetch`).
    #[inline]
    pub fn vector_pair(&self) -> (VectorRef<'_>, VectorRef<'_>) {
        super::varlena::prefetch(self.datum(0), PREFETCH_BYTES, PREFETCH_BYTES);
        super::varlena::prefetch(self.datum(1), PREFETCH_BYTES, PREFETCH_BYTES);
        let (a, b) = (self.vector(0), self.vector(1));
        // The rest of a large vector, now that its size is known.
        for v in [&a, &b] {
            let size = super::varlena::vector_size(v.dim());
            if size > PREFETCH_BYTES {
                super::varlena::prefetch_range(v.datum(), PREFETCH_BYTES, size);
            }
        }
        (a, b)
    }

    #[inline]
    pub fn vector(&self, i: usize) -> VectorRef<'_> {
        // SAFETY: the SQL declaration gives argument i type vector, and the
        // function is STRICT, so the datum is a non-null vector.
        unsafe { VectorRef::from_datum(self.datum(i)) }
    }
}

#[inline]
fn same_dims(a: &VectorRef, b: &VectorRef) {
    if a.dim() != b.dim() {
        raise(VectorError::DifferentDimensions {
            a: a.dim() as i64,
            b: b.dim() as i64,
        });
    }
}

/// Raises pgvector's overflow error if any element became infinite.
#[inline]
fn check_overflow(values: &[f32]) {
    if values.iter().any(|v| v.is_infinite()) {
        raise(VectorError::Overflow);
    }
}

/// A palloc'd NUL-terminated copy of `s`, returned as a cstring Datum.
fn cstring_datum(s: &str) -> pg_sys::Datum {
    // SAFETY: palloc returns len+1 writable bytes or raises an ERROR.
    unsafe {
        let p = pg_sys::palloc(s.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
        pg_sys::Datum::from(p)
    }
}

// ------------------------------------------------------------------ I/O --

pg_function!(pg_finfo_vx_vector_in, vx_vector_in, |args| {
    let mut values = Vec::new();
    vecfmt::parse_dense(TYPE_NAME, args.cstr(0).to_bytes(), args.i32(2), &mut values).or_raise();
    NewVector::from_slice(&values).into_datum()
});

pg_function!(pg_finfo_vx_vector_out, vx_vector_out, |args| {
    let v = args.vector(0);
    let mut s = String::with_capacity(v.dim() * 12 + 2);
    vecfmt::format_dense(v.as_slice().iter().copied(), &mut s);
    cstring_datum(&s)
});

pg_function!(pg_finfo_vx_vector_typmod_in, vx_vector_typmod_in, |args| {
    pg_sys::Datum::from(super::typmod_in(args, TYPE_NAME))
});

pg_function!(pg_finfo_vx_vector_recv, vx_vector_recv, |args| {
    let buf = args.datum(0).cast_mut_ptr::<pg_sys::StringInfoData>();
    // SAFETY: argument 0 is the `internal` StringInfo of a receive function;
    // data[cursor..len] are the unread message bytes.
    let bytes = unsafe {
        let b = &*buf;
        std::slice::from_raw_parts(
            (b.data as *const u8).add(b.cursor as usize),
            (b.len - b.cursor) as usize,
        )
    };
    let (values, used) = vecfmt::decode_dense_f32(TYPE_NAME, bytes, args.i32(2)).or_raise();
    // SAFETY: `used` <= the unread length, so the cursor stays within len.
    unsafe { (*buf).cursor += used as i32 };
    NewVector::from_slice(&values).into_datum()
});

pg_function!(pg_finfo_vx_vector_send, vx_vector_send, |args| {
    let v = args.vector(0);
    let mut out = Vec::with_capacity(4 + 4 * v.dim());
    out.extend_from_slice(&(v.dim() as u16).to_be_bytes());
    out.extend_from_slice(&(v.unused() as u16).to_be_bytes());
    for x in v.as_slice() {
        out.extend_from_slice(&x.to_be_bytes());
    }
    super::bytea_datum(&out)
});

// ---------------------------------------------------------------- casts --

pg_function!(pg_finfo_vx_vector, vx_vector, |args| {
    let v = args.vector(0);
    check_expected_dim(args.i32(1), v.dim()).or_raise();
    args.datum(0)
});

pg_function!(pg_finfo_vx_array_to_vector, vx_array_to_vector, |args| {
    let array = ArrayArg::new(args.datum(0));
    let values = array.to_f32(numeric_to_f32);
    check_dim(TYPE_NAME, values.len()).or_raise();
    check_expected_dim(args.i32(1), values.len()).or_raise();
    for &x in &values {
        check_element(TYPE_NAME, x).or_raise();
    }
    NewVector::from_slice(&values).into_datum()
});

pg_function!(pg_finfo_vx_vector_to_float4, vx_vector_to_float4, |args| {
    new_float4_array(args.vector(0).as_slice())
});

// ------------------------------------------------------------ distances --

pg_function!(pg_finfo_vx_l2_distance, vx_l2_distance, |args| {
    let (a, b) = args.vector_pair();
    same_dims(&a, &b);
    float8_datum((distance::l2_squared(a.as_slice(), b.as_slice()) as f64).sqrt())
});

pg_function!(
    pg_finfo_vx_vector_l2_squared_distance,
    vx_vector_l2_squared_distance,
    |args| {
        let (a, b) = args.vector_pair();
        same_dims(&a, &b);
        float8_datum(distance::l2_squared(a.as_slice(), b.as_slice()) as f64)
    }
);

pg_function!(pg_finfo_vx_inner_product, vx_inner_product, |args| {
    let (a, b) = args.vector_pair();
    same_dims(&a, &b);
    float8_datum(distance::dot(a.as_slice(), b.as_slice()) as f64)
});

pg_function!(
    pg_finfo_vx_vector_negative_inner_product,
    vx_vector_negative_inner_product,
    |args| {
        let (a, b) = args.vector_pair();
        same_dims(&a, &b);
        float8_datum(-(distance::dot(a.as_slice(), b.as_slice()) as f64))
    }
);

pg_function!(pg_finfo_vx_cosine_distance, vx_cosine_distance, |args| {
    let (a, b) = args.vector_pair();
    same_dims(&a, &b);
    let p = distance::cosine_parts(a.as_slice(), b.as_slice());
    float8_datum(distance::cosine_distance_from_parts(
        p.dot, p.norm_a, p.norm_b,
    ))
});

pg_function!(
    pg_finfo_vx_vector_spherical_distance,
    vx_vector_spherical_distance,
    |args| {
        let (a, b) = args.vector_pair();
        same_dims(&a, &b);
        // Inputs are unit vectors (k-means for ip/cosine); angular distance
        // satisfies the triangle inequality.
        let dot = (distance::dot(a.as_slice(), b.as_slice()) as f64).clamp(-1.0, 1.0);
        float8_datum(dot.acos() / std::f64::consts::PI)
    }
);

pg_function!(pg_finfo_vx_l1_distance, vx_l1_distance, |args| {
    let (a, b) = args.vector_pair();
    same_dims(&a, &b);
    float8_datum(distance::l1(a.as_slice(), b.as_slice()) as f64)
});

// ------------------------------------------------------ other functions --

pg_function!(pg_finfo_vx_vector_dims, vx_vector_dims, |args| {
    pg_sys::Datum::from(args.vector(0).dim() as i32)
});

pg_function!(pg_finfo_vx_vector_norm, vx_vector_norm, |args| {
    float8_datum(distance::scalar::norm_f64(args.vector(0).as_slice()))
});

pg_function!(pg_finfo_vx_l2_normalize, vx_l2_normalize, |args| {
    let a = args.vector(0);
    let norm = distance::scalar::norm_f64(a.as_slice());
    let mut out = NewVector::zeroed(a.dim());
    // A zero vector normalises to itself.
    if norm > 0.0 {
        for (r, x) in out.values_mut().iter_mut().zip(a.as_slice()) {
            *r = (*x as f64 / norm) as f32;
        }
        check_overflow(out.values_mut());
    }
    out.into_datum()
});

pg_function!(pg_finfo_vx_binary_quantize, vx_binary_quantize, |args| {
    let a = args.vector(0);
    super::bit_datum(a.dim(), |i| a.as_slice()[i] > 0.0)
});

pg_function!(pg_finfo_vx_subvector, vx_subvector, |args| {
    let a = args.vector(0);
    let range = super::subvector_range(a.dim(), args.i32(1), args.i32(2), TYPE_NAME).or_raise();
    NewVector::from_slice(&a.as_slice()[range]).into_datum()
});

// ----------------------------------------------------------- arithmetic --

/// Element-wise `op`, updating the aggregate state in place when called as
/// the transition or combine function of sum(vector).
fn elementwise(args: Args, allow_in_place: bool, op: impl Fn(f32, f32) -> f32) -> pg_sys::Datum {
    let (a, b) = (args.vector(0), args.vector(1));
    same_dims(&a, &b);
    let in_place = allow_in_place
        && args.aggregate_context().is_some()
        && a.datum().value() == args.datum(0).value();
    let (datum, out) = if in_place {
        // SAFETY: in an aggregate call argument 0 is the transition state,
        // which the aggregate owns and lets its functions modify.
        (a.datum(), unsafe { a.as_mut_slice() })
    } else {
        let mut v = NewVector::zeroed(a.dim());
        let out: *mut [f32] = v.values_mut();
        // SAFETY: the palloc'd vector outlives this call (memory context).
        (v.into_datum(), unsafe { &mut *out })
    };
    for (r, (x, y)) in out.iter_mut().zip(a.as_slice().iter().zip(b.as_slice())) {
        *r = op(*x, *y);
    }
    check_overflow(out);
    datum
}

pg_function!(pg_finfo_vx_vector_add, vx_vector_add, |args| elementwise(
    args,
    true,
    |x, y| x + y
));

pg_function!(pg_finfo_vx_vector_sub, vx_vector_sub, |args| elementwise(
    args,
    true,
    |x, y| x - y
));

pg_function!(pg_finfo_vx_vector_mul, vx_vector_mul, |args| {
    let (a, b) = (args.vector(0), args.vector(1));
    // Never in place: the underflow check below reads the inputs again.
    let datum = elementwise(args, false, |x, y| x * y);
    // SAFETY: datum is the vector just written by `elementwise`.
    let r = unsafe { VectorRef::from_datum(datum) };
    let underflow = r
        .as_slice()
        .iter()
        .zip(a.as_slice().iter().zip(b.as_slice()))
        .any(|(r, (x, y))| *r == 0.0 && *x != 0.0 && *y != 0.0);
    if underflow {
        raise(VectorError::Underflow);
    }
    datum
});

pg_function!(pg_finfo_vx_vector_concat, vx_vector_concat, |args| {
    let (a, b) = (args.vector(0), args.vector(1));
    check_dim(TYPE_NAME, a.dim() + b.dim()).or_raise();
    let mut out = NewVector::zeroed(a.dim() + b.dim());
    let (left, right) = out.values_mut().split_at_mut(a.dim());
    left.copy_from_slice(a.as_slice());
    right.copy_from_slice(b.as_slice());
    out.into_datum()
});

// ----------------------------------------------------------- comparison --

/// Element by element, then by dimension count (like Postgres arrays).
fn compare(args: &Args) -> i32 {
    let (a, b) = (args.vector(0), args.vector(1));
    for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
        if x < y {
            return -1;
        }
        if x > y {
            return 1;
        }
    }
    a.dim().cmp(&b.dim()) as i32
}

pg_function!(pg_finfo_vx_vector_lt, vx_vector_lt, |args| {
    pg_sys::Datum::from(compare(&args) < 0)
});
pg_function!(pg_finfo_vx_vector_le, vx_vector_le, |args| {
    pg_sys::Datum::from(compare(&args) <= 0)
});
pg_function!(pg_finfo_vx_vector_eq, vx_vector_eq, |args| {
    pg_sys::Datum::from(compare(&args) == 0)
});
pg_function!(pg_finfo_vx_vector_ne, vx_vector_ne, |args| {
    pg_sys::Datum::from(compare(&args) != 0)
});
pg_function!(pg_finfo_vx_vector_ge, vx_vector_ge, |args| {
    pg_sys::Datum::from(compare(&args) >= 0)
});
pg_function!(pg_finfo_vx_vector_gt, vx_vector_gt, |args| {
    pg_sys::Datum::from(compare(&args) > 0)
});
pg_function!(pg_finfo_vx_vector_cmp, vx_vector_cmp, |args| {
    pg_sys::Datum::from(compare(&args))
});

// ----------------------------------------------------------- aggregates --

// avg(vector) keeps a float8[] state {n, sum_1, ..., sum_dim}, like
// float4_accum; the empty state '{0}' has no sums yet.

pg_function!(pg_finfo_vx_vector_accum, vx_vector_accum, |args| {
    let v = args.vector(1);
    let state = float8_state(args.datum(0), "vector_accum");
    if state.dims() == 0 {
        let mut values = Vec::with_capacity(v.dim() + 1);
        values.push(state.count() + 1.0);
        values.extend(v.as_slice().iter().map(|x| *x as f64));
        return new_float8_array(&values);
    }
    check_expected_dim(state.dims() as i32, v.dim()).or_raise();
    if args.aggregate_context().is_some() {
        // SAFETY: argument 0 is the aggregate's own transition state.
        let values = unsafe { state.values_mut() };
        super::array::accumulate(values, v.as_slice().iter().map(|x| *x as f64));
        values[0] += 1.0;
        return state.datum();
    }
    let mut values = state.values().to_vec();
    super::array::accumulate(&mut values, v.as_slice().iter().map(|x| *x as f64));
    values[0] += 1.0;
    new_float8_array(&values)
});

pg_function!(pg_finfo_vx_vector_combine, vx_vector_combine, |args| {
    super::array::combine_states(args)
});

pg_function!(pg_finfo_vx_vector_avg, vx_vector_avg, |args| {
    let state = float8_state(args.datum(0), "vector_avg");
    let n = state.count();
    if n == 0.0 {
        return args.return_null();
    }
    check_dim(TYPE_NAME, state.dims()).or_raise();
    let mut out = NewVector::zeroed(state.dims());
    for (r, s) in out.values_mut().iter_mut().zip(&state.values()[1..]) {
        *r = (*s / n) as f32;
        check_element(TYPE_NAME, *r).or_raise();
    }
    out.into_datum()
});
