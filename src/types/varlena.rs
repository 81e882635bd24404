//! The in-memory layout of `vector`, byte for byte pgvector's:
//! `int32 varlena header | int16 dim | int16 unused | float4 x[dim]`.

use crate::error::corrupted;
use pgrx::pg_sys;
use std::marker::PhantomData;

pub const VECTOR_HEADER: usize = 8;

#[inline]
pub fn vector_size(dim: usize) -> usize {
    VECTOR_HEADER + 4 * dim
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

/// A detoasted vector argument, borrowed for the duration of one call.
#[derive(Clone, Copy)]
pub struct VectorRef<'a> {
    ptr: *const u8,
    dim: usize,
    _life: PhantomData<&'a [f32]>,
}

impl<'a> VectorRef<'a> {
    /// # Safety
    /// `d` must be a non-null datum of type vector valid for `'a`.
    #[inline]
    pub unsafe fn from_datum(d: pg_sys::Datum) -> Self {
        let ptr = detoast(d);
        // SAFETY: a detoasted vector has at least its 8-byte header, checked
        // against the varlena size right below.
        let dim = unsafe { (ptr.add(4) as *const i16).read_unaligned() };
        if dim < 0 || varsize(ptr) != vector_size(dim as usize) {
            corrupted("vector");
        }
        VectorRef {
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
    pub fn as_slice(&self) -> &'a [f32] {
        // SAFETY: from_datum checked that the varlena holds `dim` floats after
        // the header; a 4-byte-header varlena is at least int-aligned (palloc
        // and tuple attribute alignment), so the floats are aligned.
        unsafe { std::slice::from_raw_parts(self.ptr.add(VECTOR_HEADER) as *const f32, self.dim) }
    }

    #[inline]
    pub fn datum(&self) -> pg_sys::Datum {
        pg_sys::Datum::from(self.ptr)
    }

    /// Writable access for in-place aggregate updates.
    ///
    /// # Safety
    /// The caller must own the memory (an aggregate transition state).
    pub unsafe fn as_mut_slice(&self) -> &'a mut [f32] {
        // SAFETY: as in as_slice, and the caller owns the state.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(VECTOR_HEADER) as *mut f32, self.dim) }
    }
}

/// A new zeroed vector in the current memory context.
pub struct NewVector {
    ptr: *mut u8,
    dim: usize,
}

impl NewVector {
    pub fn zeroed(dim: usize) -> Self {
        let size = vector_size(dim);
        // SAFETY: palloc0 returns `size` zeroed bytes or raises an ERROR.
        let ptr = unsafe { pg_sys::palloc0(size) } as *mut u8;
        set_varsize(ptr, size);
        // SAFETY: the allocation holds the 8-byte header.
        unsafe { (ptr.add(4) as *mut i16).write(dim as i16) };
        NewVector { ptr, dim }
    }

    pub fn from_slice(values: &[f32]) -> Self {
        let mut v = Self::zeroed(values.len());
        v.values_mut().copy_from_slice(values);
        v
    }

    #[inline]
    pub fn values_mut(&mut self) -> &mut [f32] {
        // SAFETY: palloc memory is MAXALIGNed and holds dim floats after the header.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(VECTOR_HEADER) as *mut f32, self.dim) }
    }

    #[inline]
    pub fn into_datum(self) -> pg_sys::Datum {
        pg_sys::Datum::from(self.ptr)
    }
}
