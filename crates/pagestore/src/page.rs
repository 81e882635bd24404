//! Postgres' page layout (bufpage.h), checked on every access.
//!
//! Header (24 bytes): pd_lsn u64, pd_checksum u16, pd_flags u16, pd_lower u16,
//! pd_upper u16, pd_special u16, pd_pagesize_version u16, pd_prune_xid u32.
//! Line pointer (4 bytes): lp_off:15 | lp_flags:2 | lp_len:15.

use crate::{Corrupt, PAGE_SIZE};

pub const HEADER_SIZE: usize = 24;
const LINE_POINTER_SIZE: usize = 4;
const LP_NORMAL: u32 = 1;
const LP_UNUSED: u32 = 0;
/// pd_pagesize_version: page size | layout version 4.
const PAGESIZE_VERSION: u16 = PAGE_SIZE as u16 | 4;

fn u16_at(p: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([p[at], p[at + 1]])
}

fn set_u16(p: &mut [u8], at: usize, v: u16) {
    p[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn maxalign(n: usize) -> usize {
    (n + 7) & !7
}

fn lower(p: &[u8]) -> usize {
    u16_at(p, 12) as usize
}
fn upper(p: &[u8]) -> usize {
    u16_at(p, 14) as usize
}
fn special_start(p: &[u8]) -> usize {
    u16_at(p, 16) as usize
}

/// PageInit: an empty page with `special` bytes of special space.
pub fn init(p: &mut [u8], special: usize) {
    assert!(
        p.len() == PAGE_SIZE && special == maxalign(special) && special < PAGE_SIZE - HEADER_SIZE
    );
    p.fill(0);
    set_u16(p, 12, HEADER_SIZE as u16);
    set_u16(p, 14, (PAGE_SIZE - special) as u16);
    set_u16(p, 16, (PAGE_SIZE - special) as u16);
    set_u16(p, 18, PAGESIZE_VERSION);
}

/// PageIsNew: an all-zero page, as a relation extension leaves it when a
/// crash comes before the page's initialisation reached the WAL. Indexes
/// treat it as unused space.
pub fn is_new(p: &[u8]) -> bool {
    upper(p) == 0
}

/// Checks the header fields every other accessor relies on.
pub fn check(p: &[u8]) -> Result<(), Corrupt> {
    let (lo, up, sp) = (lower(p), upper(p), special_start(p));
    if p.len() != PAGE_SIZE || u16_at(p, 18) != PAGESIZE_VERSION {
        return Err(Corrupt("page has a wrong size or layout version".into()));
    }
    if lo < HEADER_SIZE
        || lo > up
        || up > sp
        || sp > PAGE_SIZE
        || !(lo - HEADER_SIZE).is_multiple_of(LINE_POINTER_SIZE)
    {
        return Err(Corrupt(format!(
            "page header is inconsistent (lower {lo}, upper {up}, special {sp})"
        )));
    }
    Ok(())
}

/// Number of line pointers (PageGetMaxOffsetNumber).
pub fn max_offset(p: &[u8]) -> Result<u16, Corrupt> {
    check(p)?;
    Ok(((lower(p) - HEADER_SIZE) / LINE_POINTER_SIZE) as u16)
}

/// Bytes a new tuple of `len` bytes may still use (its line pointer included).
pub fn free_space(p: &[u8]) -> usize {
    let (lo, up) = (lower(p), upper(p));
    up.saturating_sub(lo).saturating_sub(LINE_POINTER_SIZE)
}

/// Whether a tuple of `len` bytes fits.
pub fn fits(p: &[u8], len: usize) -> bool {
    free_space(p) >= maxalign(len)
}

/// PageAddItem at the next offset; None when the tuple does not fit.
pub fn add_item(p: &mut [u8], data: &[u8]) -> Option<u16> {
    check(p).ok()?;
    if !fits(p, data.len()) || data.len() >= 1 << 15 {
        return None;
    }
    let start = upper(p) - maxalign(data.len());
    p[start..start + data.len()].copy_from_slice(data);
    let lo = lower(p);
    let lp = (start as u32) | (LP_NORMAL << 15) | ((data.len() as u32) << 17);
    p[lo..lo + 4].copy_from_slice(&lp.to_le_bytes());
    set_u16(p, 12, (lo + LINE_POINTER_SIZE) as u16);
    set_u16(p, 14, start as u16);
    Some(((lo - HEADER_SIZE) / LINE_POINTER_SIZE + 1) as u16)
}

fn item_range(p: &[u8], offset: u16) -> Result<std::ops::Range<usize>, Corrupt> {
    let max = max_offset(p)?;
    if offset == 0 || offset > max {
        return Err(Corrupt(format!(
            "line pointer {offset} is past the end of the page ({max})"
        )));
    }
    let at = HEADER_SIZE + (offset as usize - 1) * LINE_POINTER_SIZE;
    let lp = u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
    let (off, flags, len) = ((lp & 0x7fff) as usize, (lp >> 15) & 3, (lp >> 17) as usize);
    if flags == LP_UNUSED {
        return Err(Corrupt(format!("line pointer {offset} is unused")));
    }
    if off < upper(p) || off + len > special_start(p) || len == 0 {
        return Err(Corrupt(format!(
            "line pointer {offset} points outside the tuple space"
        )));
    }
    Ok(off..off + len)
}

/// The tuple at `offset` (PageGetItem), bounds-checked.
pub fn item(p: &[u8], offset: u16) -> Result<&[u8], Corrupt> {
    let r = item_range(p, offset)?;
    Ok(&p[r])
}

/// The tuple at `offset`, writable in place (same length).
pub fn item_mut(p: &mut [u8], offset: u16) -> Result<&mut [u8], Corrupt> {
    let r = item_range(p, offset)?;
    Ok(&mut p[r])
}

/// The special space (PageGetSpecialPointer).
pub fn special(p: &[u8]) -> Result<&[u8], Corrupt> {
    check(p)?;
    Ok(&p[special_start(p)..])
}

pub fn special_mut(p: &mut [u8]) -> Result<&mut [u8], Corrupt> {
    check(p)?;
    let s = special_start(p);
    Ok(&mut p[s..])
}

/// Sets pd_lower past `len` bytes of contents right after the header, for
/// a metapage whose contents are not tuples: a full-page WAL image would
/// otherwise treat them as the free "hole" and drop them.
pub fn set_contents_len(p: &mut [u8], len: usize) {
    set_u16(p, 12, (HEADER_SIZE + len) as u16);
}

/// Writes a metapage's contents `t` right after the page header (and
/// `set_contents_len`).
pub fn store_contents<T: bytemuck::Pod>(p: &mut [u8], t: &T) {
    let b = bytemuck::bytes_of(t);
    p[HEADER_SIZE..HEADER_SIZE + b.len()].copy_from_slice(b);
    set_contents_len(p, b.len());
}

/// A metapage's contents, viewed in place (`T` of alignment 1, as the
/// `le` types are), after checking the page header.
pub fn contents<T: bytemuck::Pod>(p: &[u8]) -> Result<&T, Corrupt> {
    check(p)?;
    Ok(bytemuck::from_bytes(
        &p[HEADER_SIZE..HEADER_SIZE + std::mem::size_of::<T>()],
    ))
}

/// The start every metapage of this project's indexes shares: a magic
/// number naming the access method and the version of its layout.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MetaHead {
    pub magic: crate::le::U32,
    pub version: crate::le::U32,
}

impl MetaHead {
    pub const fn new(magic: u32, version: u32) -> MetaHead {
        MetaHead {
            magic: crate::le::U32::new(magic),
            version: crate::le::U32::new(version),
        }
    }

    /// Checks that the metapage is `am`'s (`magic`) and of the layout
    /// `version` this build reads.
    pub fn check(&self, magic: u32, version: u32, am: &str) -> Result<(), Corrupt> {
        if self.magic.get() != magic {
            return Err(Corrupt(format!(
                "metapage does not belong to a vector_ext {am} index"
            )));
        }
        if self.version.get() != version {
            return Err(Corrupt(format!(
                "unsupported {am} layout version {} (expected {version})",
                self.version.get()
            )));
        }
        Ok(())
    }
}

/// What the last VACUUM that vacuumed an index did, as the index's metapage
/// keeps it (after the access method's own fields). A metapage written
/// before the record existed ends before it, and a page is zeroed past its
/// contents: all zeros, `at` 0, reads as no VACUUM recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VacuumRecord {
    /// When it finished: PostgreSQL's TimestampTz (microseconds since
    /// 2000-01-01 UTC); 0 when no VACUUM is recorded.
    pub at: i64,
    /// Heap TIDs it removed from the index.
    pub removed: u64,
    /// Heap TIDs the index held after it.
    pub remaining: u64,
    /// Space it gave back for inserts: hnsw elements flagged free for
    /// reuse, ivfflat pages a crash left outside every list.
    pub reused: u64,
    /// hnsw: elements no search reached, linked back in.
    pub relinked: u64,
    /// hnsw: the bytes the reachability pass needed when it did not run
    /// (over `maintenance_work_mem`); 0 when it ran.
    pub reach_skipped_bytes: u64,
}

impl VacuumRecord {
    /// What one VACUUM did in two index passes (a VACUUM whose dead rows
    /// overflow its memory vacuums the indexes more than once): `self`,
    /// then `later`.
    pub fn then(self, later: VacuumRecord) -> VacuumRecord {
        VacuumRecord {
            at: later.at,
            removed: self.removed + later.removed,
            remaining: later.remaining,
            reused: self.reused + later.reused,
            relinked: self.relinked + later.relinked,
            reach_skipped_bytes: later.reach_skipped_bytes,
        }
    }
}

/// `VacuumRecord` on the page.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct VacuumRecordLe {
    at: crate::le::U64,
    removed: crate::le::U64,
    remaining: crate::le::U64,
    reused: crate::le::U64,
    relinked: crate::le::U64,
    reach_skipped_bytes: crate::le::U64,
}

impl From<VacuumRecord> for VacuumRecordLe {
    fn from(r: VacuumRecord) -> Self {
        use crate::le::U64;
        VacuumRecordLe {
            at: U64::new(r.at as u64),
            removed: U64::new(r.removed),
            remaining: U64::new(r.remaining),
            reused: U64::new(r.reused),
            relinked: U64::new(r.relinked),
            reach_skipped_bytes: U64::new(r.reach_skipped_bytes),
        }
    }
}

impl From<VacuumRecordLe> for VacuumRecord {
    fn from(r: VacuumRecordLe) -> Self {
        VacuumRecord {
            at: r.at.get() as i64,
            removed: r.removed.get(),
            remaining: r.remaining.get(),
            reused: r.reused.get(),
            relinked: r.relinked.get(),
            reach_skipped_bytes: r.reach_skipped_bytes.get(),
        }
    }
}

#[cfg(test)]
mod vacuum_record_tests {
    use super::VacuumRecord;

    #[test]
    fn passes_of_one_vacuum_add_up() {
        let first = VacuumRecord {
            at: 10,
            removed: 100,
            remaining: 900,
            reused: 7,
            relinked: 2,
            reach_skipped_bytes: 0,
        };
        let second = VacuumRecord {
            at: 20,
            removed: 50,
            remaining: 850,
            reused: 3,
            relinked: 0,
            reach_skipped_bytes: 4096,
        };
        let both = first.then(second);
        assert_eq!(
            both,
            VacuumRecord {
                at: 20,
                removed: 150,
                remaining: 850,
                reused: 10,
                relinked: 2,
                reach_skipped_bytes: 4096,
            }
        );
        // the on-page form keeps every field
        let le: super::VacuumRecordLe = both.into();
        assert_eq!(VacuumRecord::from(le), both);
    }
}
