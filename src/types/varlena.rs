//! The in-memory layout of `vector` and `halfvec`, byte for byte pgvector's:
//! `int32 varlena header | int16 dim | int16 unused | element x[dim]` with
//! float4 elements for vector and IEEE binary16 for halfvec.

use crate::error::corrupted;
use distance::CosineParts;
use half::f16;
use pgrx::pg_sys;
use std::marker::PhantomData;
use vecfmt::VectorError;

pub const VECTOR_HEADER: usize = 8;

#[inline]
pub fn dense_size<E: Element>(dim: usize) -> usize {
    VECTOR_HEADER + std::mem::size_of::<E>() * dim
}

/// An element type of a dense vector type: its SQL type name, conversions
/// and distance kernels.
pub trait Element: Copy + PartialEq + 'static {
    const TYPE_NAME: &'static str;
    fn to_f32(self) -> f32;
    /// The nearest element value; may be infinite (callers check).
    fn from_f32_unchecked(v: f32) -> Self;
    /// The nearest element value, or pgvector's out-of-range error when a
    /// finite `v` does not fit.
    fn from_f32(v: f32) -> Result<Self, VectorError>;
    fn l2_squared(a: &[Self], b: &[Self]) -> f32;
    fn dot(a: &[Self], b: &[Self]) -> f32;
    fn l1(a: &[Self], b: &[Self]) -> f32;
    fn cosine_parts(a: &[Self], b: &[Self]) -> CosineParts;
    /// Euclidean norm accumulated in f64.
    fn norm_f64(a: &[Self]) -> f64;
}

impl Element for f32 {
    const TYPE_NAME: &'static str = "vector";
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32_unchecked(v: f32) -> Self {
        v
    }
    #[inline]
    fn from_f32(v: f32) -> Result<Self, VectorError> {
        Ok(v)
    }
    #[inline]
    fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        distance::l2_squared(a, b)
    }
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        distance::dot(a, b)
    }
    #[inline]
    fn l1(a: &[f32], b: &[f32]) -> f32 {
        distance::l1(a, b)
    }
    #[inline]
    fn cosine_parts(a: &[f32], b: &[f32]) -> CosineParts {
        distance::cosine_parts(a, b)
    }
    fn norm_f64(a: &[f32]) -> f64 {
        distance::scalar::norm_f64(a)
    }
}

impl Element for f16 {
    const TYPE_NAME: &'static str = "halfvec";
    #[inline]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline]
    fn from_f32_unchecked(v: f32) -> Self {
        f16::from_f32(v)
    }
    #[inline]
    fn from_f32(v: f32) -> Result<Self, VectorError> {
        vecfmt::f32_to_f16(Self::TYPE_NAME, v)
    }
    #[inline]
    fn l2_squared(a: &[f16], b: &[f16]) -> f32 {
        distance::l2_squared_f16(a, b)
    }
    #[inline]
    fn dot(a: &[f16], b: &[f16]) -> f32 {
        distance::dot_f16(a, b)
    }
    #[inline]
    fn l1(a: &[f16], b: &[f16]) -> f32 {
        distance::l1_f16(a, b)
    }
    #[inline]
    fn cosine_parts(a: &[f16], b: &[f16]) -> CosineParts {
        distance::cosine_parts_f16(a, b)
    }
    fn norm_f64(a: &[f16]) -> f64 {
        // fold from +0: f64's Sum starts at -0
        a.iter()
            .fold(0.0f64, |acc, x| {
                let x = x.to_f32() as f64;
                acc + x * x
            })
            .sqrt()
    }
}

/// Returns a pointer to a varlena with a plain 4-byte header: the datum
/// itself when it already is one (the common, free case), else a detoasted
/// copy in the current memory context.
#[inline]
pub fn detoast(d: pg_sys::Datum) -> *const u8 {
    let p = d.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: every varlena starts with at least one header byte; on
    // little-endian machines a 4-byte uncompressed header has low bits 00.
    let first = unsafe { *(p as *const u8) };
    if cfg!(target_endian = "little") && first & 0x03 == 0 {
        return p as *const u8;
    }
    // SAFETY: p is a varlena datum of one of our types; pg_detoast_datum
    // returns it (or a palloc'd copy) with a 4-byte uncompressed header.
    unsafe { pg_sys::pg_detoast_datum(p) as *const u8 }
}

/// Asks the CPU to start loading the first `bytes` of a datum's memory.
///
/// In a sequential scan each vector lives in a different heap tuple, and
/// tuples are laid out backwards in the page, so the hardware prefetcher
/// retrains on every row: the header load misses, and only then do the
/// element loads start. Prefetching the lines up front overlaps those misses.
/// Prefetch instructions never fault, so reading past the datum is harmless.
#[inline(always)]
pub fn prefetch(d: pg_sys::Datum, before: usize, after: usize) {
    prefetch_lines(
        (d.cast_mut_ptr::<i8>() as *const i8).wrapping_sub(before),
        before + after,
    );
}

/// Prefetches bytes [from, to) of a datum.
#[inline(always)]
pub fn prefetch_range(d: pg_sys::Datum, from: usize, to: usize) {
    prefetch_lines(
        (d.cast_mut_ptr::<i8>() as *const i8).wrapping_add(from),
        to.saturating_sub(from),
    );
}

#[inline(always)]
pub fn prefetch_lines(p: *const i8, len: usize) {
    distance::prefetch_bytes(p as *const u8, len)
}

/// Total size from a 4-byte uncompressed varlena header.
#[inline]
pub fn varsize(p: *const u8) -> usize {
    // SAFETY: callers pass the result of `detoast`, which has a 4-byte header;
    // read_unaligned because short-header copies need not be aligned.
    let header = unsafe { (p as *const u32).read_unaligned() };
    (u32::from_le(header) >> 2) as usize & 0x3FFF_FFFF
}

/// Writes a 4-byte uncompressed varlena header (SET_VARSIZE).
#[inline]
pub fn set_varsize(p: *mut u8, size: usize) {
    // SAFETY: callers pass a fresh allocation of at least `size` >= 4 bytes.
    unsafe { (p as *mut u32).write_unaligned(((size as u32) << 2).to_le()) }
}

/// A detoasted vector or halfvec argument, borrowed for one call.
#[derive(Clone, Copy)]
pub struct DenseRef<'a, E: Element> {
    ptr: *const u8,
    dim: usize,
    _life: PhantomData<&'a [E]>,
}

impl<'a, E: Element> DenseRef<'a, E> {
    /// # Safety
    /// `d` must be a non-null datum of E's type valid for `'a`.
    #[inline]
    pub unsafe fn from_datum(d: pg_sys::Datum) -> Self {
        let ptr = detoast(d);
        if varsize(ptr) < VECTOR_HEADER {
            corrupted(E::TYPE_NAME);
        }
        // SAFETY: the value holds its 8-byte header (checked above); the
        // size is checked against `dim` right below.
        let dim = unsafe { (ptr.add(4) as *const i16).read_unaligned() };
        if dim < 0 || varsize(ptr) != dense_size::<E>(dim as usize) {
            corrupted(E::TYPE_NAME);
        }
        DenseRef {
            ptr,
            dim: dim as usize,
            _life: PhantomData,
        }
    }

    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[inline]
    pub fn unused(&self) -> i16 {
        // SAFETY: the header is 8 bytes (checked in from_datum).
        unsafe { (self.ptr.add(6) as *const i16).read_unaligned() }
    }

    #[inline]
    pub fn as_slice(&self) -> &'a [E] {
        // SAFETY: from_datum checked that the varlena holds `dim` elements
        // after the header; a 4-byte-header varlena is at least int-aligned
        // (palloc and tuple attribute alignment), so they are aligned.
        unsafe { std::slice::from_raw_parts(self.ptr.add(VECTOR_HEADER) as *const E, self.dim) }
    }

    #[inline]
    pub fn datum(&self) -> pg_sys::Datum {
        pg_sys::Datum::from(self.ptr)
    }

    /// Writable access for in-place aggregate updates.
    ///
    /// # Safety
    /// The caller must own the memory (an aggregate transition state).
    pub unsafe fn as_mut_slice(&self) -> &'a mut [E] {
        // SAFETY: as in as_slice, and the caller owns the state.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(VECTOR_HEADER) as *mut E, self.dim) }
    }
}

/// A new zeroed vector or halfvec in the current memory context.
pub struct NewDense<E: Element> {
    ptr: *mut u8,
    dim: usize,
    _elem: PhantomData<E>,
}

impl<E: Element> NewDense<E> {
    pub fn zeroed(dim: usize) -> Self {
        let size = dense_size::<E>(dim);
        // SAFETY: palloc0 returns `size` zeroed bytes or raises an ERROR.
        let ptr = unsafe { pg_sys::palloc0(size) } as *mut u8;
        set_varsize(ptr, size);
        // SAFETY: the allocation holds the 8-byte header.
        unsafe { (ptr.add(4) as *mut i16).write(dim as i16) };
        NewDense {
            ptr,
            dim,
            _elem: PhantomData,
        }
    }

    pub fn from_slice(values: &[E]) -> Self {
        let mut v = Self::zeroed(values.len());
        v.values_mut().copy_from_slice(values);
        v
    }

    #[inline]
    pub fn values_mut(&mut self) -> &mut [E] {
        // SAFETY: palloc memory is MAXALIGNed and holds dim elements after
        // the header (zero bits are 0.0 for both element types).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(VECTOR_HEADER) as *mut E, self.dim) }
    }

    #[inline]
    pub fn into_datum(self) -> pg_sys::Datum {
        pg_sys::Datum::from(self.ptr)
    }
}
