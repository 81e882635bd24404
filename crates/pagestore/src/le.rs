//! Little-endian integers and TIDs as they sit in tuples on index pages:
//! byte arrays (alignment 1), so a tuple's header can be viewed in place at
//! any offset of a page (`bytemuck::from_bytes`), whatever the host's byte
//! order, with the same bytes the writers have always put there.

use crate::Tid;
use bytemuck::{Pod, Zeroable};

/// Little-endian unsigned integers: U16, U32, U64.
macro_rules! le_uint {
    ($($name:ident($t:ty, $n:literal), $doc:literal;)*) => {$(
        #[doc = $doc]
        #[repr(transparent)]
        #[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
        pub struct $name([u8; $n]);

        impl $name {
            pub const fn new(v: $t) -> $name {
                $name(v.to_le_bytes())
            }
            pub const fn get(self) -> $t {
                <$t>::from_le_bytes(self.0)
            }
            pub fn set(&mut self, v: $t) {
                *self = $name::new(v)
            }
        }
    )*};
}

le_uint! {
    U16(u16, 2), "A little-endian u16.";
    U32(u32, 4), "A little-endian u32.";
    U64(u64, 8), "A little-endian u64.";
}

/// A TID in six bytes: block (u32), then offset (u16), little-endian
/// (`Tid::to_bytes`). An unused slot holds `Tid::INVALID`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct TidLe {
    block: U32,
    offset: U16,
}

impl TidLe {
    pub const INVALID: TidLe = TidLe::new(Tid::INVALID);

    pub const fn new(t: Tid) -> TidLe {
        TidLe {
            block: U32::new(t.block),
            offset: U16::new(t.offset),
        }
    }
    pub const fn get(self) -> Tid {
        Tid {
            block: self.block.get(),
            offset: self.offset.get(),
        }
    }
    pub fn set(&mut self, t: Tid) {
        *self = TidLe::new(t)
    }
}

impl From<Tid> for TidLe {
    fn from(t: Tid) -> TidLe {
        TidLe::new(t)
    }
}

impl std::fmt::Debug for TidLe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

const _: () = assert!(std::mem::size_of::<TidLe>() == 6 && std::mem::align_of::<TidLe>() == 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids_and_integers_keep_their_bytes() {
        let t = Tid {
            block: 0x0102_0304,
            offset: 0x0506,
        };
        assert_eq!(bytemuck::bytes_of(&TidLe::new(t)), t.to_bytes());
        assert_eq!(TidLe::new(t).get(), t);
        assert_eq!(bytemuck::bytes_of(&U32::new(0x0102_0304)), [4, 3, 2, 1]);
        assert_eq!(bytemuck::bytes_of(&U16::new(0x0102)), [2, 1]);
        assert_eq!(TidLe::INVALID.get(), Tid::INVALID);
    }
}
