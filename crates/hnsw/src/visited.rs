use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Multiply-shift hashing: ids are integers (node numbers or packed TIDs),
/// SipHash would cost more than the distance it guards.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64)
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The nodes a search has already looked at; reusable across searches.
pub struct Visited<Id> {
    set: HashSet<Id, BuildHasherDefault<IdHasher>>,
}

impl<Id: Hash + Eq + Copy> Default for Visited<Id> {
    fn default() -> Self {
        Visited {
            set: HashSet::default(),
        }
    }
}

impl<Id: Hash + Eq + Copy> Visited<Id> {
    /// Sized for about `n` nodes, so a search does not rehash as it grows.
    pub fn with_capacity(n: usize) -> Self {
        Visited {
            set: HashSet::with_capacity_and_hasher(n, BuildHasherDefault::default()),
        }
    }

    /// True the first time `id` is seen.
    #[inline]
    pub fn insert(&mut self, id: Id) -> bool {
        self.set.insert(id)
    }

    /// Room for `n` more ids, or the allocator's error.
    pub fn try_reserve(&mut self, n: usize) -> Result<(), std::collections::TryReserveError> {
        self.set.try_reserve(n)
    }

    pub fn clear(&mut self) {
        self.set.clear();
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
