//! Postgres arrays: casts from numeric arrays, to real[], and the float8[]
//! state of avg().

use super::varlena::{detoast, varsize};
use crate::error::{raise, OrRaise};
use crate::fmgr::{float4_datum, float4_from_datum, float8_datum, float8_from_datum, Args};
use pgrx::pg_sys;
use vecfmt::VectorError;

/// sizeof(ArrayType) + one dimension and one lower bound, MAXALIGNed.
const ONE_DIM_DATA_OFFSET: usize = 24;

/// A detoasted array argument.
pub struct ArrayArg {
    ptr: *mut pg_sys::ArrayType,
}

impl ArrayArg {
    pub fn new(d: pg_sys::Datum) -> Self {
        ArrayArg {
            ptr: detoast(d) as *mut pg_sys::ArrayType,
        }
    }

    fn header(&self) -> &pg_sys::ArrayType {
        // SAFETY: ptr is a detoasted array, whose fixed header is always present.
        unsafe { &*self.ptr }
    }

    /// Converts a 1-D int4, float4, float8 or numeric array to f32s.
    pub fn to_f32(&self, numeric: impl Fn(pg_sys::Datum) -> f32) -> Vec<f32> {
        let h = self.header();
        if h.ndim > 1 {
            raise(VectorError::ArrayNotOneDimensional);
        }
        // SAFETY: array_contains_nulls reads the array's own null bitmap.
        if h.dataoffset != 0 && unsafe { pg_sys::array_contains_nulls(self.ptr) } {
            raise(VectorError::ArrayHasNulls);
        }
        let elemtype = h.elemtype;
        let convert: &dyn Fn(pg_sys::Datum) -> f32 = match elemtype {
            pg_sys::INT4OID => &|d| d.value() as i32 as f32,
            pg_sys::FLOAT4OID => &|d| float4_from_datum(d),
            pg_sys::FLOAT8OID => &|d| float8_from_datum(d) as f32,
            pg_sys::NUMERICOID => &numeric,
            _ => raise(VectorError::UnsupportedArrayType),
        };
        let (mut typlen, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut n = 0;
        // SAFETY: the array is 1-D or empty, without nulls, of the element
        // type whose storage parameters we look up; deconstruct_array fills a
        // palloc'd Datum array of n entries.
        let datums = unsafe {
            pg_sys::get_typlenbyvalalign(elemtype, &mut typlen, &mut byval, &mut align);
            pg_sys::deconstruct_array(
                self.ptr,
                elemtype,
                typlen as i32,
                byval,
                align,
                &mut elems,
                std::ptr::null_mut(),
                &mut n,
            );
            if n == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(elems, n as usize)
            }
        };
        datums.iter().map(|d| convert(*d)).collect()
    }
}

unsafe extern "C-unwind" {
    /// Postgres' own V1 numeric -> float4 cast, called only through fmgr.
    #[link_name = "numeric_float4"]
    fn pg_numeric_float4(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

/// numeric -> float4 with Postgres' own conversion (and its range errors).
pub fn numeric_to_f32(d: pg_sys::Datum) -> f32 {
    // SAFETY: numeric_float4 is a V1 function taking one numeric argument;
    // DirectFunctionCall1Coll (guarded by pgrx) turns its ERRORs into ours.
    let r =
        unsafe { pg_sys::DirectFunctionCall1Coll(Some(pg_numeric_float4), pg_sys::InvalidOid, d) };
    float4_from_datum(r)
}

pub fn new_float4_array(values: &[f32]) -> pg_sys::Datum {
    new_array(
        values.iter().map(|v| float4_datum(*v)),
        pg_sys::FLOAT4OID,
        4,
        b'i',
    )
}

pub fn new_float8_array(values: &[f64]) -> pg_sys::Datum {
    new_array(
        values.iter().map(|v| float8_datum(*v)),
        pg_sys::FLOAT8OID,
        8,
        b'd',
    )
}

/// A 1-D array of by-value datums of the given type.
fn new_array(
    datums: impl Iterator<Item = pg_sys::Datum>,
    elemtype: pg_sys::Oid,
    len: i32,
    align: u8,
) -> pg_sys::Datum {
    let datums: Vec<pg_sys::Datum> = datums.collect();
    // SAFETY: construct_array copies n by-value datums of `elemtype` (whose
    // length and alignment the callers pass) into a new palloc'd array.
    let a = unsafe {
        pg_sys::construct_array(
            datums.as_ptr() as *mut _,
            datums.len() as i32,
            elemtype,
            len,
            true,
            align as _,
        )
    };
    pg_sys::Datum::from(a)
}

/// The float8[] aggregate state {n, sum_1, ..., sum_dim}.
pub struct Float8State {
    ptr: *mut u8,
    len: usize,
}

/// Checks and borrows an avg() state array (an internal error if malformed:
/// only our own functions build these).
pub fn float8_state(d: pg_sys::Datum, caller: &str) -> Float8State {
    let ptr = detoast(d) as *mut u8;
    // SAFETY: the argument is declared double precision[], so the array
    // header is present; the first dimension is read only once the header
    // says there is one, and the values only when the size holds them all.
    let ok_len = unsafe {
        let h = &*(ptr as *const pg_sys::ArrayType);
        let shaped = h.ndim == 1 && h.dataoffset == 0 && h.elemtype == pg_sys::FLOAT8OID;
        let len = match shaped {
            true => *(ptr.add(std::mem::size_of::<pg_sys::ArrayType>()) as *const i32),
            false => 0,
        };
        (len >= 1 && varsize(ptr) >= ONE_DIM_DATA_OFFSET + 8 * len as usize).then_some(len)
    };
    let Some(len) = ok_len else {
        pgrx::error!("{caller}: expected state array");
    };
    Float8State {
        ptr,
        len: len as usize,
    }
}

impl Float8State {
    pub fn values(&self) -> &[f64] {
        // SAFETY: a 1-D float8 array without nulls stores len doubles at the
        // MAXALIGNed data offset.
        unsafe {
            std::slice::from_raw_parts(self.ptr.add(ONE_DIM_DATA_OFFSET) as *const f64, self.len)
        }
    }

    /// # Safety
    /// Only for the aggregate's own transition state.
    pub unsafe fn values_mut(&mut self) -> &mut [f64] {
        // SAFETY: as in values; the caller owns the memory.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(ONE_DIM_DATA_OFFSET) as *mut f64, self.len)
        }
    }

    pub fn count(&self) -> f64 {
        self.values()[0]
    }

    pub fn dims(&self) -> usize {
        self.len - 1
    }

    pub fn datum(&self) -> pg_sys::Datum {
        pg_sys::Datum::from(self.ptr)
    }
}

/// state[1..] += add, raising pgvector's overflow error on infinity.
pub fn accumulate(state: &mut [f64], add: impl Iterator<Item = f64>) {
    for (s, x) in state[1..].iter_mut().zip(add) {
        *s += x;
        if s.is_infinite() {
            raise(VectorError::Overflow);
        }
    }
}

/// avg()'s combine function, shared by vector and halfvec.
pub fn combine_states(args: Args) -> pg_sys::Datum {
    let s1 = float8_state(args.datum(0), "vector_combine");
    let s2 = float8_state(args.datum(1), "vector_combine");
    let n = s1.count() + s2.count();
    // states summed past what any vector may hold, as pgvector refuses them
    if s1.dims().max(s2.dims()) > vecfmt::MAX_DIM {
        crate::error::raise(vecfmt::VectorError::TooManyDimensions {
            type_name: "vector",
        });
    }
    let mut values = match (s1.dims(), s2.dims()) {
        (0, 0) => vec![0.0],
        (0, _) => s2.values().to_vec(),
        (_, 0) => s1.values().to_vec(),
        (d1, d2) => {
            vecfmt::check_expected_dim(d1 as i32, d2).or_raise();
            let mut v = s1.values().to_vec();
            accumulate(&mut v, s2.values()[1..].iter().copied());
            v
        }
    };
    values[0] = n;
    new_float8_array(&values)
}
