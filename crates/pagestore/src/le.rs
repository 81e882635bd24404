//! Little-endian integers and TIDs as they sit in tuples on index pages:
//! byte arrays (alignment 1), so a tuple's header can be viewed in place at
//! any offset of a page (`bytemuck::from_bytes`), whatever the host's byte
//! order, with the same bytes the writers have always put there.

use crate::Tid;
use bytemuck::{Pod, Zeroable};

/// A little-endian u16.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct U16([u8; 2]);

impl U16 {
    pub const fn new(v: u16) -> U16 {
        U16(v.to_le_bytes())
    }
    pub const fn get(self) -> u16 {
        u16::from_le_bytes(self.0)
    }
    pub fn set(&mut self, v: u16) {
        *self = U16::new(v)
    }
}

/// A little-endian u32.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct U32([u8; 4]);

impl U32 {
    pub const fn new(v: u32) -> U32 {
        U32(v.to_le_bytes())
    }
    pub const fn get(self) -> u32 {
        u32::from_le_bytes(self.0)
    }
    pub fn set(&mut self, v: u32) {
        *self = U32::new(v)
    }
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
