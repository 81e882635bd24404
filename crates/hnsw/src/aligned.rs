//! A growable buffer that starts on a cache line.
//!
//! Rust's `Vec<f32>` of a big graph's vectors comes from `mmap` through
//! malloc, 16 bytes past a page boundary: every 384-d vector then spans 25
//! cache lines instead of 24 (13 instead of 12 in binary16), and half of
//! the wide loads a distance kernel makes straddle two lines. The build
//! reads vectors at random, so this costs memory traffic it is bound by.

use bytemuck::Pod;

/// Elements of `T` (a size dividing 64), contiguous from a 64-byte
/// boundary, so element `i * k` starts a line whenever `k * size_of::<T>()`
/// is a multiple of 64. It lives in a plain `Vec<T>` a few elements past
/// its start: a `Vec` of over-aligned lines would grow by allocate-and-copy,
/// where a big `Vec<T>` grows in place (`mremap`); when a growth moves the
/// buffer to another offset in its line, the elements move along (only
/// ever at small sizes: malloc hands every big block out at the same
/// offset).
pub struct Aligned<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Pod> Default for Aligned<T> {
    fn default() -> Self {
        Aligned {
            buf: Vec::new(),
            start: 0,
            len: 0,
        }
    }
}

impl<T: Pod> Aligned<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated.
    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<T>()
    }

    pub fn as_slice(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }

    /// Makes room for `additional` more elements (growing as
    /// `extend_from_slice` would), or says the allocation failed. True when
    /// the buffer grew.
    pub fn try_reserve(
        &mut self,
        additional: usize,
    ) -> Result<bool, std::collections::TryReserveError> {
        self.grow(additional, false)
    }

    /// `try_reserve` growing to room for exactly `additional` more (and no
    /// more), where a doubling would reserve past what the caller may hold.
    pub fn try_reserve_exact(
        &mut self,
        additional: usize,
    ) -> Result<bool, std::collections::TryReserveError> {
        self.grow(additional, true)
    }

    fn grow(
        &mut self,
        additional: usize,
        exact: bool,
    ) -> Result<bool, std::collections::TryReserveError> {
        let end = self.len + additional + 64 / std::mem::size_of::<T>();
        if end <= self.buf.capacity() {
            return Ok(false);
        }
        let more = end - self.buf.len();
        match exact {
            true => self.buf.try_reserve_exact(more)?,
            false => self.buf.try_reserve(more)?,
        }
        Ok(true)
    }

    pub fn extend_from_slice(&mut self, v: &[T]) {
        let size = std::mem::size_of::<T>();
        let end = self.len + v.len() + 64 / size;
        if end > self.buf.len() {
            // Vec's growth keeps this amortised constant time
            self.buf.resize(end, T::zeroed());
        }
        let want = (self.buf.as_ptr() as usize).wrapping_neg() % 64 / size;
        if want != self.start {
            self.buf
                .copy_within(self.start..self.start + self.len, want);
            self.start = want;
        }
        let at = self.start + self.len;
        self.buf[at..at + v.len()].copy_from_slice(v);
        self.len += v.len();
    }
}

impl<T: Pod> FromIterator<T> for Aligned<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = Aligned::default();
        let mut chunk = Vec::with_capacity(1024);
        for x in iter {
            chunk.push(x);
            if chunk.len() == chunk.capacity() {
                out.extend_from_slice(&chunk);
                chunk.clear();
            }
        }
        out.extend_from_slice(&chunk);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Aligned;

    #[test]
    fn elements_start_on_a_line_and_keep_their_order() {
        let mut a: Aligned<f32> = Aligned::default();
        let mut want = Vec::new();
        for i in 0..1000 {
            let v: Vec<f32> = (0..(i % 37)).map(|j| (i * 100 + j) as f32).collect();
            a.extend_from_slice(&v);
            want.extend_from_slice(&v);
            assert_eq!(a.as_slice().as_ptr() as usize % 64, 0);
        }
        assert_eq!(a.as_slice(), &want[..]);
        assert!(a.capacity_bytes() >= want.len() * 4);
        let h: Aligned<half::f16> = want.iter().map(|x| half::f16::from_f32(*x)).collect();
        assert_eq!(h.len(), want.len());
        assert_eq!(
            h.as_slice()[999].to_f32(),
            half::f16::from_f32(want[999]).to_f32()
        );
        assert_eq!(h.as_slice().as_ptr() as usize % 64, 0);
    }
}
