//! The function bodies shared by the dense types `vector` (f32 elements)
//! and `halfvec` (binary16): I/O, typmod, casts, distances, arithmetic,
//! comparison and aggregate support, generic over `Element`. `vector.rs`
//! and `halfvec.rs` export them under each type's C symbols; the SQL
//! declarations are in sql/vector_ext.sql.
//!
//! halfvec computes in f32 and rounds each result to binary16, raising
//! pgvector's overflow error when a finite result does not fit.

use super::array::{float8_state, new_float4_array, new_float8_array, numeric_to_f32, ArrayArg};
use super::varlena::{dense_size, DenseRef, Element, NewDense};
use crate::error::{raise, OrRaise};
use crate::fmgr::{float8_datum, Args};
use pgrx::pg_sys;
use vecfmt::{check_dim, check_element, check_expected_dim, VectorError};

/// How much to prefetch around each distance argument: 2 KiB from its start
/// (all of a 384-d vector) and 2 KiB below it, where a sequential scan finds
/// the next tuple of the page. Measured on 100k x 384 (bench/): 0 KiB below
/// 49 ms, 1 KiB 45 ms, 2 KiB 42 ms, 4 KiB 42 ms per exact scan.
const PREFETCH_BYTES: usize = 2048;

impl Args {
    /// Both arguments of a distance function, with their memory prefetched
    /// before either header is read (see `varlena::prefetch`).
    #[inline]
    pub fn dense_pair<E: Element>(&self) -> (DenseRef<'_, E>, DenseRef<'_, E>) {
        super::varlena::prefetch(self.datum(0), PREFETCH_BYTES, PREFETCH_BYTES);
        super::varlena::prefetch(self.datum(1), PREFETCH_BYTES, PREFETCH_BYTES);
        let (a, b) = (self.dense::<E>(0), self.dense::<E>(1));
        // The rest of a large vector, now that its size is known.
        for v in [&a, &b] {
            let size = dense_size::<E>(v.dim());
            if size > PREFETCH_BYTES {
                super::varlena::prefetch_range(v.datum(), PREFETCH_BYTES, size);
            }
        }
        same_dims(E::TYPE_NAME, a.dim(), b.dim());
        (a, b)
    }

    #[inline]
    pub fn dense<E: Element>(&self, i: usize) -> DenseRef<'_, E> {
        // SAFETY: the SQL declaration gives argument i E's type, and the
        // function is STRICT, so the datum is a non-null value of it.
        unsafe { DenseRef::from_datum(self.datum(i)) }
    }
}

/// Raises pgvector's error for two arguments of different dimensions.
#[inline]
pub fn same_dims(type_name: &'static str, a: usize, b: usize) {
    if a != b {
        raise(VectorError::DifferentDimensions {
            type_name,
            a: a as i64,
            b: b as i64,
        });
    }
}

/// Raises pgvector's overflow error if any element became infinite.
#[inline]
fn check_overflow<E: Element>(values: &[E]) {
    if values.iter().any(|v| v.to_f32().is_infinite()) {
        raise(VectorError::Overflow);
    }
}

/// f32 results rounded to E, with the overflow check.
fn new_from_f32<E: Element>(values: impl ExactSizeIterator<Item = f32>) -> NewDense<E> {
    let mut out = NewDense::<E>::zeroed(values.len());
    for (r, v) in out.values_mut().iter_mut().zip(values) {
        *r = E::from_f32_unchecked(v);
    }
    check_overflow(out.values_mut());
    out
}

/// A palloc'd NUL-terminated copy of `s`, returned as a cstring Datum.
pub fn cstring(s: &str) -> pg_sys::Datum {
    // SAFETY: palloc returns len+1 writable bytes or raises an ERROR.
    unsafe {
        let p = pg_sys::palloc(s.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
        pg_sys::Datum::from(p)
    }
}

/// The unread bytes of a receive function's StringInfo argument.
pub fn unread_message(args: &Args) -> (*mut pg_sys::StringInfoData, &[u8]) {
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
    (buf, bytes)
}

/// Marks `used` bytes of a receive function's message as read.
pub fn consume(buf: *mut pg_sys::StringInfoData, used: usize) {
    // SAFETY: `used` <= the unread length, so the cursor stays within len.
    unsafe { (*buf).cursor += used as i32 };
}

// ------------------------------------------------------------------ I/O --

pub fn text_in<E: Element>(args: Args) -> pg_sys::Datum {
    let mut values = Vec::new();
    let input = args.cstr(0).to_bytes();
    let fits = |v: f32| E::from_f32(v).is_ok();
    vecfmt::parse_dense_within(E::TYPE_NAME, input, args.i32(2), fits, &mut values).or_raise();
    let mut out = NewDense::<E>::zeroed(values.len());
    for (r, v) in out.values_mut().iter_mut().zip(&values) {
        *r = E::from_f32_unchecked(*v);
    }
    out.into_datum()
}

pub fn text_out<E: Element>(args: Args) -> pg_sys::Datum {
    let v = args.dense::<E>(0);
    let mut s = String::with_capacity(v.dim() * 12 + 2);
    vecfmt::format_dense(v.as_slice().iter().map(|x| x.to_f32()), &mut s);
    cstring(&s)
}

pub fn recv_f32(args: Args) -> pg_sys::Datum {
    let (buf, bytes) = unread_message(&args);
    let (values, used) = vecfmt::decode_dense_f32("vector", bytes, args.i32(2)).or_raise();
    consume(buf, used);
    NewDense::from_slice(&values).into_datum()
}

pub fn recv_f16(args: Args) -> pg_sys::Datum {
    let (buf, bytes) = unread_message(&args);
    let (values, used) = vecfmt::decode_dense_f16("halfvec", bytes, args.i32(2)).or_raise();
    consume(buf, used);
    NewDense::from_slice(&values).into_datum()
}

pub fn send<E: Element>(args: Args, element: impl Fn(E, &mut Vec<u8>)) -> pg_sys::Datum {
    let v = args.dense::<E>(0);
    let mut out = Vec::with_capacity(4 + std::mem::size_of::<E>() * v.dim());
    out.extend_from_slice(&(v.dim() as u16).to_be_bytes());
    out.extend_from_slice(&(v.unused() as u16).to_be_bytes());
    for x in v.as_slice() {
        element(*x, &mut out);
    }
    super::bytea_datum(&out)
}

// ---------------------------------------------------------------- casts --

/// The typmod coercion `'...'::vector(n)`.
pub fn with_typmod<E: Element>(args: Args) -> pg_sys::Datum {
    let v = args.dense::<E>(0);
    check_expected_dim(args.i32(1), v.dim()).or_raise();
    args.datum(0)
}

pub fn from_array<E: Element>(args: Args) -> pg_sys::Datum {
    let array = ArrayArg::new(args.datum(0));
    let values = array.to_f32(numeric_to_f32);
    check_dim(E::TYPE_NAME, values.len()).or_raise();
    check_expected_dim(args.i32(1), values.len()).or_raise();
    // pgvector converts every element (range errors) before checking any
    let converted: Vec<E> = values.iter().map(|x| E::from_f32(*x).or_raise()).collect();
    for x in &converted {
        check_element(E::TYPE_NAME, x.to_f32()).or_raise();
    }
    NewDense::from_slice(&converted).into_datum()
}

pub fn to_float4_array<E: Element>(args: Args) -> pg_sys::Datum {
    let v = args.dense::<E>(0);
    let values: Vec<f32> = v.as_slice().iter().map(|x| x.to_f32()).collect();
    new_float4_array(&values)
}

/// vector <-> halfvec: element by element, range-checked into `To`.
pub fn convert<From: Element, To: Element>(args: Args) -> pg_sys::Datum {
    let v = args.dense::<From>(0);
    check_dim(To::TYPE_NAME, v.dim()).or_raise();
    check_expected_dim(args.i32(1), v.dim()).or_raise();
    let mut out = NewDense::<To>::zeroed(v.dim());
    for (r, x) in out.values_mut().iter_mut().zip(v.as_slice()) {
        *r = To::from_f32(x.to_f32()).or_raise();
    }
    out.into_datum()
}

// ------------------------------------------------------------ distances --

pub fn l2_distance<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    float8_datum((E::l2_squared(a.as_slice(), b.as_slice()) as f64).sqrt())
}

pub fn l2_squared_distance<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    float8_datum(E::l2_squared(a.as_slice(), b.as_slice()) as f64)
}

pub fn inner_product<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    float8_datum(E::dot(a.as_slice(), b.as_slice()) as f64)
}

pub fn negative_inner_product<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    float8_datum(-(E::dot(a.as_slice(), b.as_slice()) as f64))
}

pub fn cosine_distance<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    let p = E::cosine_parts(a.as_slice(), b.as_slice());
    float8_datum(distance::cosine_distance_from_parts(
        p.dot, p.norm_a, p.norm_b,
    ))
}

/// Angular distance of unit vectors (k-means for ip/cosine); it satisfies
/// the triangle inequality.
pub fn spherical_distance<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    let dot = (E::dot(a.as_slice(), b.as_slice()) as f64).clamp(-1.0, 1.0);
    float8_datum(dot.acos() / std::f64::consts::PI)
}

pub fn l1_distance<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = args.dense_pair::<E>();
    float8_datum(E::l1(a.as_slice(), b.as_slice()) as f64)
}

// ------------------------------------------------------ other functions --

pub fn dims<E: Element>(args: Args) -> pg_sys::Datum {
    pg_sys::Datum::from(args.dense::<E>(0).dim() as i32)
}

pub fn norm<E: Element>(args: Args) -> pg_sys::Datum {
    float8_datum(E::norm_f64(args.dense::<E>(0).as_slice()))
}

pub fn l2_normalize<E: Element>(args: Args) -> pg_sys::Datum {
    let a = args.dense::<E>(0);
    let norm = E::norm_f64(a.as_slice());
    if norm > 0.0 {
        let scaled = a
            .as_slice()
            .iter()
            .map(|x| (x.to_f32() as f64 / norm) as f32);
        new_from_f32::<E>(scaled).into_datum()
    } else {
        // A zero vector normalises to itself.
        NewDense::<E>::zeroed(a.dim()).into_datum()
    }
}

pub fn binary_quantize<E: Element>(args: Args) -> pg_sys::Datum {
    let a = args.dense::<E>(0);
    super::bit_datum(a.dim(), |i| a.as_slice()[i].to_f32() > 0.0)
}

pub fn subvector<E: Element>(args: Args) -> pg_sys::Datum {
    let a = args.dense::<E>(0);
    let range = super::subvector_range(a.dim(), args.i32(1), args.i32(2), E::TYPE_NAME).or_raise();
    NewDense::from_slice(&a.as_slice()[range]).into_datum()
}

// ----------------------------------------------------------- arithmetic --

/// Element-wise `op` (in f32, rounded to E), updating the aggregate state
/// in place when called as the transition or combine function of sum().
pub fn elementwise<E: Element>(
    args: Args,
    allow_in_place: bool,
    op: impl Fn(f32, f32) -> f32,
) -> pg_sys::Datum {
    let (a, b) = (args.dense::<E>(0), args.dense::<E>(1));
    same_dims(E::TYPE_NAME, a.dim(), b.dim());
    let in_place = allow_in_place
        && args.aggregate_context().is_some()
        && a.datum().value() == args.datum(0).value();
    let (datum, out) = if in_place {
        // SAFETY: in an aggregate call argument 0 is the transition state,
        // which the aggregate owns and lets its functions modify.
        (a.datum(), unsafe { a.as_mut_slice() })
    } else {
        let mut v = NewDense::<E>::zeroed(a.dim());
        let out: *mut [E] = v.values_mut();
        // SAFETY: the palloc'd value outlives this call (memory context).
        (v.into_datum(), unsafe { &mut *out })
    };
    for (r, (x, y)) in out.iter_mut().zip(a.as_slice().iter().zip(b.as_slice())) {
        *r = E::from_f32_unchecked(op(x.to_f32(), y.to_f32()));
    }
    check_overflow(out);
    datum
}

pub fn add<E: Element>(args: Args) -> pg_sys::Datum {
    elementwise::<E>(args, true, |x, y| x + y)
}

pub fn sub<E: Element>(args: Args) -> pg_sys::Datum {
    elementwise::<E>(args, true, |x, y| x - y)
}

pub fn mul<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = (args.dense::<E>(0), args.dense::<E>(1));
    // Never in place: the underflow check below reads the inputs again.
    let datum = elementwise::<E>(args, false, |x, y| x * y);
    // SAFETY: datum is the value just written by `elementwise`.
    let r = unsafe { DenseRef::<E>::from_datum(datum) };
    let underflow = r
        .as_slice()
        .iter()
        .zip(a.as_slice().iter().zip(b.as_slice()))
        .any(|(r, (x, y))| r.to_f32() == 0.0 && x.to_f32() != 0.0 && y.to_f32() != 0.0);
    if underflow {
        raise(VectorError::Underflow);
    }
    datum
}

pub fn concat<E: Element>(args: Args) -> pg_sys::Datum {
    let (a, b) = (args.dense::<E>(0), args.dense::<E>(1));
    check_dim(E::TYPE_NAME, a.dim() + b.dim()).or_raise();
    let mut out = NewDense::<E>::zeroed(a.dim() + b.dim());
    let (left, right) = out.values_mut().split_at_mut(a.dim());
    left.copy_from_slice(a.as_slice());
    right.copy_from_slice(b.as_slice());
    out.into_datum()
}

// ----------------------------------------------------------- comparison --

/// Element by element, then by dimension count (like Postgres arrays).
pub fn compare<E: Element>(args: &Args) -> i32 {
    let (a, b) = (args.dense::<E>(0), args.dense::<E>(1));
    for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
        let (x, y) = (x.to_f32(), y.to_f32());
        if x < y {
            return -1;
        }
        if x > y {
            return 1;
        }
    }
    a.dim().cmp(&b.dim()) as i32
}

// ----------------------------------------------------------- aggregates --

// avg() keeps a float8[] state {n, sum_1, ..., sum_dim}, like float4_accum;
// the empty state '{0}' has no sums yet.

pub fn accum<E: Element>(args: Args, caller: &str) -> pg_sys::Datum {
    let v = args.dense::<E>(1);
    let mut state = float8_state(args.datum(0), caller);
    let add = || v.as_slice().iter().map(|x| x.to_f32() as f64);
    if state.dims() == 0 {
        let mut values = Vec::with_capacity(v.dim() + 1);
        values.push(state.count() + 1.0);
        values.extend(add());
        return new_float8_array(&values);
    }
    check_expected_dim(state.dims() as i32, v.dim()).or_raise();
    if args.aggregate_context().is_some() {
        // SAFETY: argument 0 is the aggregate's own transition state.
        let values = unsafe { state.values_mut() };
        super::array::accumulate(values, add());
        values[0] += 1.0;
        return state.datum();
    }
    let mut values = state.values().to_vec();
    super::array::accumulate(&mut values, add());
    values[0] += 1.0;
    new_float8_array(&values)
}

pub fn avg<E: Element>(args: Args, caller: &str) -> pg_sys::Datum {
    let state = float8_state(args.datum(0), caller);
    let n = state.count();
    if n == 0.0 {
        return args.return_null();
    }
    check_dim(E::TYPE_NAME, state.dims()).or_raise();
    let mut out = NewDense::<E>::zeroed(state.dims());
    for (r, s) in out.values_mut().iter_mut().zip(&state.values()[1..]) {
        *r = E::from_f32((*s / n) as f32).or_raise();
        check_element(E::TYPE_NAME, r.to_f32()).or_raise();
    }
    out.into_datum()
}
