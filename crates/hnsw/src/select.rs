//! The HNSW heuristics, written once for the in-memory build, the insert
//! on pages and VACUUM: the level an element gets, which candidates become
//! neighbours (`select_neighbors`), how a neighbour list takes a new link
//! (`link_update`, with the diverse flag) and which link an overfull list
//! drops (`trim`). They see lists through `LinkList`, whatever holds them
//! (a node's vectors in memory, a neighbour tuple's slots read from a
//! page).

use crate::search::Candidate;

/// Highest level a node can get; 16 levels with m = 2 hold billions of nodes.
pub const MAX_LEVEL: usize = 15;

/// floor(-ln(U) / ln(m)) for a U drawn from (seed, id): levels are
/// geometric with ratio 1/m, as the paper prescribes (mL = 1/ln m), capped
/// where a neighbour tuple still fits a page.
pub fn random_level(seed: u64, id: u32, m: usize) -> usize {
    let mut x = seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
    let level = (-u.ln() / (m as f64).ln()).floor() as usize;
    level.min(MAX_LEVEL).min(crate::format::max_level(m))
}

/// The neighbour-selection heuristic: walk candidates (sorted nearest first)
/// and keep one only if it is nearer to the base than to every node kept so
/// far, which spreads links in all directions. Returns the kept ids and how
/// many of them (the first ones) the heuristic chose: the diverse ones.
///
/// On level 0 the free slots are then filled with the nearest pruned
/// candidates (as pgvector does): full lists raise recall on real
/// embeddings (`tests::real_embeddings_recall`; bench/README.md has the
/// figures). Upper levels stay sparse: their long links lead a search into
/// the right region, and filling evicts them.
pub fn select_neighbors<Id: Copy + PartialEq + Ord>(
    sorted: &[Candidate<Id>],
    max: usize,
    level: usize,
    distance: impl Fn(Id, Id) -> f32,
) -> (Vec<Id>, usize) {
    let mut kept: Vec<Id> = Vec::with_capacity(max);
    for c in sorted {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|&k| distance(c.id, k) > c.distance) {
            kept.push(c.id);
        }
    }
    let diverse = kept.len();
    if level == 0 {
        for c in sorted {
            if kept.len() >= max {
                break;
            }
            if !kept.contains(&c.id) {
                kept.push(c.id);
            }
        }
    }
    (kept, diverse)
}

/// Duplicate merging, written once for the build and the insert on pages:
/// of the level-0 candidates a search found for a vector, only those at the
/// vector's distance to itself can hold the same vector; `take(id)`
/// compares the stored vectors by their bytes (`distance::Element::same`,
/// as pgvector compares datums) and moves the row into the
/// element when it has room. Returns the element that took it, nearest
/// first.
pub fn merge_duplicate<Id: Copy, E>(
    found: &[Candidate<Id>],
    self_distance: f32,
    mut take: impl FnMut(Id) -> Result<bool, E>,
) -> Result<Option<Id>, E> {
    for c in found.iter().filter(|c| c.distance == self_distance) {
        if take(c.id)? {
            return Ok(Some(c.id));
        }
    }
    Ok(None)
}

/// A neighbour list as the heuristics change it: per link its target, its
/// distance from the list's owner and whether it is diverse.
pub trait LinkList {
    type Id: Copy + PartialEq;
    fn len(&self) -> usize;
    fn id(&self, i: usize) -> Self::Id;
    fn distance(&self, i: usize) -> f32;
    fn diverse(&self, i: usize) -> bool;
    fn set(&mut self, i: usize, distance: f32, diverse: bool);
    fn push(&mut self, id: Self::Id, distance: f32, diverse: bool);
    fn swap_remove(&mut self, i: usize);
}

impl LinkList for Vec<crate::format::Link> {
    type Id = pagestore::Tid;
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn id(&self, i: usize) -> pagestore::Tid {
        self[i].tid
    }
    fn distance(&self, i: usize) -> f32 {
        self[i].distance
    }
    fn diverse(&self, i: usize) -> bool {
        self[i].diverse
    }
    fn set(&mut self, i: usize, distance: f32, diverse: bool) {
        (self[i].distance, self[i].diverse) = (distance, diverse);
    }
    fn push(&mut self, id: pagestore::Tid, distance: f32, diverse: bool) {
        Vec::push(
            self,
            crate::format::Link {
                tid: id,
                distance,
                diverse,
            },
        )
    }
    fn swap_remove(&mut self, i: usize) {
        Vec::swap_remove(self, i);
    }
}

/// Which link an overfull list drops: on upper levels a non-diverse one
/// (they keep diverse links only), else the farthest non-diverse link,
/// else the farthest. `n` > 0 links, described by `diverse` and `distance`.
fn trim_victim(
    level: usize,
    n: usize,
    diverse: impl Fn(usize) -> bool,
    distance: impl Fn(usize) -> f32,
) -> usize {
    if level > 0 {
        if let Some(i) = (0..n).find(|i| !diverse(*i)) {
            return i;
        }
    }
    let farthest = |want: Option<bool>| {
        (0..n)
            .filter(|i| want.is_none_or(|d| diverse(*i) == d))
            .max_by(|a, b| distance(*a).total_cmp(&distance(*b)))
    };
    farthest(Some(false))
        .or_else(|| farthest(None))
        .expect("a non-empty list")
}

/// Brings a list back within `max` links: upper levels keep diverse links
/// only (the plain heuristic); level 0 evicts the farthest non-diverse
/// link first (the filled heuristic). Ties go to the farthest overall.
pub fn trim<L: LinkList>(list: &mut L, max: usize, level: usize) {
    while list.len() > max {
        let victim = trim_victim(level, list.len(), |i| list.diverse(i), |i| list.distance(i));
        list.swap_remove(victim);
    }
}

/// Adds `new` (at distance `dq` from the list's owner) to `list`, keeping
/// at most `max` links. Only the comparisons `new` can change are made:
/// `new` is diverse unless a diverse link nearer to the owner is at least
/// as near to `new`, and `new` takes the flag from diverse links farther
/// than itself that it is nearer to than the owner is; an overfull list
/// then drops a link (`trim`). `from_new(k)` is the distance from `new` to
/// link `k`'s target, None when the target is gone (it covers nothing).
/// `force`: `new` stays, in place of another link (an element every
/// neighbour refuses would be unreachable). Returns whether `new` is in
/// the list.
pub fn link_update<L: LinkList, E>(
    list: &mut L,
    new: L::Id,
    dq: f32,
    max: usize,
    level: usize,
    force: bool,
    mut from_new: impl FnMut(L::Id) -> Result<Option<f32>, E>,
) -> Result<bool, E> {
    let mut diverse = true;
    for i in 0..list.len() {
        if list.diverse(i)
            && list.distance(i) < dq
            && from_new(list.id(i))?.is_some_and(|d| d <= dq)
        {
            diverse = false;
            break;
        }
    }
    if diverse {
        for i in 0..list.len() {
            let di = list.distance(i);
            if list.diverse(i) && di > dq && from_new(list.id(i))?.is_some_and(|d| d <= di) {
                list.set(i, di, false);
            }
        }
    }
    // forced: new counts as diverse and nearest, so trimming evicts
    // another link (the farthest non-diverse one if there is one)
    let at = if force { f32::NEG_INFINITY } else { dq };
    list.push(new, at, diverse || force);
    trim(list, max, level);
    let Some(kept) = (0..list.len()).find(|i| list.id(*i) == new) else {
        return Ok(false);
    };
    let flag = list.diverse(kept);
    list.set(kept, dq, flag);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a line: the distance is the difference.
    impl LinkList for Vec<(i32, f32, bool)> {
        type Id = i32;
        fn len(&self) -> usize {
            Vec::len(self)
        }
        fn id(&self, i: usize) -> i32 {
            self[i].0
        }
        fn distance(&self, i: usize) -> f32 {
            self[i].1
        }
        fn diverse(&self, i: usize) -> bool {
            self[i].2
        }
        fn set(&mut self, i: usize, distance: f32, diverse: bool) {
            (self[i].1, self[i].2) = (distance, diverse);
        }
        fn push(&mut self, id: i32, distance: f32, diverse: bool) {
            Vec::push(self, (id, distance, diverse))
        }
        fn swap_remove(&mut self, i: usize) {
            Vec::swap_remove(self, i);
        }
    }

    fn on_line(owner: i32, ids: &[i32]) -> Vec<(i32, f32, bool)> {
        let cands: Vec<Candidate<i32>> = ids
            .iter()
            .map(|&id| Candidate {
                distance: (id - owner).abs() as f32,
                id,
            })
            .collect();
        let mut sorted = cands.clone();
        sorted.sort();
        let (kept, diverse) = select_neighbors(&sorted, ids.len(), 0, |a, b| (a - b).abs() as f32);
        kept.iter()
            .enumerate()
            .map(|(i, &id)| (id, (id - owner).abs() as f32, i < diverse))
            .collect()
    }

    #[test]
    fn the_heuristic_keeps_one_link_per_direction_and_fills_level_0() {
        // owner 0: 1 covers 2 and 3 on the right, -4 is the left
        let sorted: Vec<Candidate<i32>> = [1, 2, 3, -4]
            .iter()
            .map(|&id| Candidate {
                distance: (id as f32).abs(),
                id,
            })
            .collect();
        let d = |a: i32, b: i32| (a - b).abs() as f32;
        assert_eq!(select_neighbors(&sorted, 4, 0, d), (vec![1, -4, 2, 3], 2));
        assert_eq!(select_neighbors(&sorted, 4, 1, d), (vec![1, -4], 2));
        assert_eq!(select_neighbors(&sorted, 1, 0, d), (vec![1], 1));
    }

    #[test]
    fn a_new_link_takes_the_flag_from_links_it_covers() {
        let mut list = on_line(0, &[5, -3]);
        assert_eq!(list, vec![(-3, 3.0, true), (5, 5.0, true)]);
        // 4 is nearer to 5 than 5 is to the owner: 5 loses its flag, 4 is
        // diverse (no diverse link nearer to 0 lies on its side)
        let from = |k: i32| Ok::<_, ()>(Some((k - 4) as f32).map(f32::abs));
        assert_eq!(link_update(&mut list, 4, 4.0, 3, 0, false, from), Ok(true));
        assert_eq!(list, vec![(-3, 3.0, true), (5, 5.0, false), (4, 4.0, true)]);
        // -2 takes the flag from -3 (nearer to it than to the owner); the
        // full list drops its farthest non-diverse link, 5
        let from = |k: i32| Ok::<_, ()>(Some((k + 2) as f32).map(f32::abs));
        assert_eq!(link_update(&mut list, -2, 2.0, 3, 0, false, from), Ok(true));
        assert_eq!(
            list,
            vec![(-3, 3.0, false), (-2, 2.0, true), (4, 4.0, true)]
        );
        // a link nobody needs is refused by a full list of nearer ones...
        let from = |k: i32| Ok::<_, ()>(Some((k - 9) as f32).map(f32::abs));
        assert_eq!(link_update(&mut list, 9, 9.0, 3, 0, false, from), Ok(false));
        // ...unless forced in; a gone target covers nothing
        let from = |k: i32| Ok::<_, ()>((k != 4).then_some((k - 9).abs() as f32));
        assert_eq!(link_update(&mut list, 9, 9.0, 3, 0, true, from), Ok(true));
        assert!(list.contains(&(9, 9.0, true)), "{list:?}");
        assert_eq!(list.len(), 3);
        // errors from reading a target end the update
        let fail = |_| Err::<Option<f32>, _>("unreadable");
        assert_eq!(
            link_update(&mut list, 7, 7.0, 3, 0, false, fail),
            Err("unreadable")
        );
    }

    #[test]
    fn upper_levels_keep_diverse_links_only() {
        let mut list = vec![(1, 1.0, true), (2, 2.0, false), (-3, 3.0, true)];
        trim(&mut list, 2, 1);
        assert_eq!(list, vec![(1, 1.0, true), (-3, 3.0, true)]);
        trim(&mut list, 1, 1);
        assert_eq!(list, vec![(1, 1.0, true)], "then the farthest");
    }

    #[test]
    fn levels_are_geometric() {
        let m = 16;
        let n = 200_000;
        let above = (0..n).filter(|i| random_level(7, *i, m) >= 1).count();
        let expect = n as f64 / m as f64;
        assert!((above as f64 - expect).abs() < 0.05 * expect, "{above}");
    }
}
