use super::page::*;
use super::*;

fn new_page(special: usize) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE];
    init(&mut p, special);
    p
}

#[test]
fn items_round_trip_until_the_page_is_full() {
    let mut p = new_page(16);
    let mut stored = Vec::new();
    for i in 0..10_000u32 {
        let data: Vec<u8> = (0..(i % 50 + 1)).map(|b| (b + i) as u8).collect();
        match add_item(&mut p, &data) {
            Some(off) => stored.push((off, data)),
            None => break,
        }
    }
    assert!(stored.len() > 100 && free_space(&p) < 64);
    assert_eq!(max_offset(&p).unwrap() as usize, stored.len());
    for (off, data) in &stored {
        assert_eq!(item(&p, *off).unwrap(), &data[..]);
    }
    assert_eq!(special(&p).unwrap().len(), 16);
    item_mut(&mut p, 1).unwrap()[0] = 99;
    assert_eq!(item(&p, 1).unwrap()[0], 99);
}

#[test]
fn layout_matches_postgres() {
    let mut p = new_page(8);
    assert_eq!(&p[12..20], &[24, 0, 0xf8, 0x1f, 0xf8, 0x1f, 0x04, 0x20]);
    assert_eq!(add_item(&mut p, &[1, 2, 3]), Some(1));
    // tuple MAXALIGNed below the special space; lp_off | NORMAL << 15 | len << 17
    let lp = u32::from_le_bytes(p[24..28].try_into().unwrap());
    assert_eq!(
        (lp & 0x7fff, (lp >> 15) & 3, lp >> 17),
        (8192 - 8 - 8, 1, 3)
    );
}

#[test]
fn corruption_is_an_error_not_a_panic() {
    let mut p = new_page(0);
    add_item(&mut p, b"hello").unwrap();
    assert!(item(&p, 0).is_err() && item(&p, 2).is_err());
    let mut bad = p.clone();
    bad[18] = 0; // layout version
    assert!(item(&bad, 1).is_err());
    let mut bad = p.clone();
    bad[12] = 0xff; // pd_lower past pd_upper
    assert!(max_offset(&bad).is_err());
    let mut bad = p.clone();
    bad[24..28].copy_from_slice(&(8190u32 | 1 << 15 | 100 << 17).to_le_bytes());
    assert!(item(&bad, 1).is_err(), "tuple running past the page");
    // every single-byte flip of the header and line pointer is handled
    for at in 0..28 {
        for bit in 0..8 {
            let mut bad = p.clone();
            bad[at] ^= 1 << bit;
            if let Ok(t) = item(&bad, 1) {
                assert!(t.len() <= PAGE_SIZE);
            }
        }
    }
}

#[test]
fn mem_store_reads_writes_and_extends() {
    let s = MemStore::new();
    assert_eq!(s.nblocks(), 0);
    let (b, off) = s.extend(|b, p| {
        init(p, 0);
        (b, add_item(p, b"abc").unwrap())
    });
    assert_eq!((b, off, s.nblocks()), (0, 1, 1));
    s.write(0, |p| item_mut(p, 1).unwrap()[0] = b'x');
    assert_eq!(s.read(0, |p| item(p, 1).unwrap().to_vec()), b"xbc");
    let t = Tid {
        block: 7,
        offset: 3,
    };
    assert_eq!(Tid::from_bytes(&t.to_bytes()), t);
    assert!(!Tid::INVALID.is_valid());
}
