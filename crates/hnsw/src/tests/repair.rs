//! The reachability repair on a small graph held in plain lists, checked
//! against its rules: every lost member is linked back when hosts have
//! room, diverse links are never given up, and a replaced link's target
//! stays reachable.

use crate::repair::{repair, repair_slot, Offer, Proposal, Repairable, Slot};
use crate::select::LinkList;
use crate::Candidate;
use std::convert::Infallible;
use testkit::Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
struct L {
    to: usize,
    distance: f32,
    diverse: bool,
}

impl LinkList for Vec<L> {
    type Id = usize;
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn id(&self, i: usize) -> usize {
        self[i].to
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
    fn push(&mut self, to: usize, distance: f32, diverse: bool) {
        Vec::push(
            self,
            L {
                to,
                distance,
                diverse,
            },
        )
    }
    fn swap_remove(&mut self, i: usize) {
        Vec::swap_remove(self, i);
    }
}

/// Points in the plane; element 0 is the entry; `dead` elements are not
/// members.
struct Toy {
    points: Vec<(f32, f32)>,
    lists: Vec<Vec<L>>,
    dead: Vec<bool>,
    max: usize,
    betweens: usize,
}

impl Toy {
    fn d(&self, a: usize, b: usize) -> f32 {
        let (p, q) = (self.points[a], self.points[b]);
        (p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)
    }

    fn reached(&self) -> Vec<bool> {
        let mut seen = vec![false; self.points.len()];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(n) = stack.pop() {
            if n != 0 && self.dead[n] {
                continue;
            }
            for l in &self.lists[n] {
                if !seen[l.to] {
                    seen[l.to] = true;
                    stack.push(l.to);
                }
            }
        }
        seen
    }

    fn lost(&self) -> usize {
        let seen = self.reached();
        (0..self.points.len())
            .filter(|&i| !self.dead[i] && !seen[i])
            .count()
    }
}

impl Repairable for Toy {
    type Error = Infallible;
    fn len(&self) -> usize {
        self.points.len()
    }
    fn entry(&self) -> Option<usize> {
        (!self.points.is_empty()).then_some(0)
    }
    fn member(&self, i: usize) -> bool {
        !self.dead[i]
    }
    fn links(&self, i: usize, out: &mut Vec<usize>) {
        out.extend(self.lists[i].iter().map(|l| l.to));
    }
    fn distance(&self, from: usize, to: usize) -> Result<f32, Infallible> {
        Ok(self.d(from, to))
    }
    fn nearest(&self, i: usize) -> Result<Vec<Candidate<usize>>, Infallible> {
        let mut c: Vec<_> = (0..self.len())
            .filter(|&j| j != i && !self.dead[j])
            .map(|j| Candidate {
                distance: self.d(i, j),
                id: j,
            })
            .collect();
        c.sort();
        c.truncate(8);
        Ok(c)
    }
    fn offer(&mut self, link: Proposal, in_degree: &[u8]) -> Result<Offer, Infallible> {
        let Proposal {
            host,
            lost,
            distance,
        } = link;
        let list = &self.lists[host];
        if list.iter().any(|l| l.to == lost) {
            return Ok(Offer::Present);
        }
        let dead = &self.dead;
        let slot = repair_slot(list, self.max, |t| dead[t], |t| in_degree[t]);
        let link = L {
            to: lost,
            distance,
            diverse: true,
        };
        let list = &mut self.lists[host];
        Ok(match slot {
            None => Offer::Refused,
            Some(Slot::Append) => {
                list.push(link);
                Offer::Linked { replaced: None }
            }
            Some(Slot::Replace(i)) => {
                let replaced = list[i].to;
                list[i] = link;
                Offer::Linked {
                    replaced: Some(replaced),
                }
            }
        })
    }
    fn between(&mut self) {
        self.betweens += 1;
    }
}

/// Each element links to its `k` nearest among the elements before it
/// (the first `diverse` of them diverse), as inserts in order would; then
/// every link into the elements in `cut` is removed, so they are lost.
fn toy(n: usize, k: usize, diverse: usize, max: usize, cut: &[usize], seed: u64) -> Toy {
    let mut rng = Rng::new(seed);
    let points: Vec<(f32, f32)> = (0..n).map(|_| (rng.unit(), rng.unit())).collect();
    let mut toy = Toy {
        lists: vec![Vec::new(); n],
        dead: vec![false; n],
        points,
        max,
        betweens: 0,
    };
    for i in 1..n {
        let mut before: Vec<_> = (0..i)
            .map(|j| Candidate {
                distance: toy.d(i, j),
                id: j,
            })
            .collect();
        before.sort();
        for (r, c) in before.iter().take(k).enumerate() {
            let l = |to| L {
                to,
                distance: c.distance,
                diverse: r < diverse,
            };
            toy.lists[i].push(l(c.id));
            if toy.lists[c.id].len() < max {
                toy.lists[c.id].push(l(i));
            }
        }
    }
    for list in &mut toy.lists {
        list.retain(|l| !cut.contains(&l.to));
    }
    toy
}

fn diverse_links(t: &Toy) -> Vec<(usize, usize)> {
    let mut d = Vec::new();
    for (i, list) in t.lists.iter().enumerate() {
        d.extend(list.iter().filter(|l| l.diverse).map(|l| (i, l.to)));
    }
    d
}

#[test]
fn lost_elements_are_linked_back_and_diverse_links_kept() {
    for seed in 1..=20 {
        let cut: Vec<usize> = (5..300).step_by(7).collect();
        let mut t = toy(300, 4, 2, 6, &cut, seed);
        let lost = t.lost();
        assert!(lost >= cut.len(), "seed {seed}: {lost} lost");
        let diverse = diverse_links(&t);
        let Ok(relinked) = repair(&mut t);
        assert_eq!(t.lost(), 0, "seed {seed}");
        assert!(
            relinked as usize >= lost,
            "seed {seed}: {relinked} relinked, {lost} lost"
        );
        // diverse links survive (repair links are added as diverse)
        let after = diverse_links(&t);
        for d in diverse {
            assert!(
                after.contains(&d),
                "seed {seed}: diverse link {d:?} given up"
            );
        }
        assert!(t.lists.iter().all(|l| l.len() <= t.max));
        assert!(t.betweens as u64 >= relinked);
    }
}

#[test]
fn full_lists_give_up_only_links_whose_target_has_another() {
    // every list full: each repair link replaces one
    for seed in 1..=20 {
        let cut: Vec<usize> = (3..200).step_by(11).collect();
        let mut t = toy(200, 5, 1, 5, &cut, seed);
        let Ok(_) = repair(&mut t);
        assert_eq!(t.lost(), 0, "seed {seed}");
    }
}

#[test]
fn dead_elements_are_not_repaired_nor_walked_through() {
    let mut t = toy(100, 3, 1, 6, &[10, 20], 7);
    // 30 is dead: whatever only it reaches is lost and relinked, and 30
    // itself stays out
    t.dead[30] = true;
    for list in &mut t.lists {
        list.retain(|l| l.to != 30);
    }
    let Ok(_) = repair(&mut t);
    assert_eq!(t.lost(), 0);
    assert!(!t.reached()[30], "a dead element was linked back");
}

#[test]
fn nothing_lost_nothing_written() {
    let mut t = toy(50, 3, 1, 6, &[], 3);
    let before = t.lists.clone();
    let Ok(relinked) = repair(&mut t);
    assert_eq!(relinked, 0);
    assert_eq!(t.lists, before);
}

#[test]
fn repair_slot_prefers_room_then_gone_then_farthest_replaceable() {
    let l = |to, distance, diverse| L {
        to,
        distance,
        diverse,
    };
    let list = vec![
        l(1, 0.1, false),
        l(2, 0.5, true),
        l(3, 0.3, false),
        l(4, 0.2, false),
    ];
    let degree = |t: usize| if t == 3 { 1 } else { 2 };
    assert_eq!(repair_slot(&list, 5, |_| false, degree), Some(Slot::Append));
    assert_eq!(
        repair_slot(&list, 4, |t| t == 1, degree),
        Some(Slot::Replace(0))
    );
    // 2 is diverse (kept although farthest), 3 has no other way in
    assert_eq!(
        repair_slot(&list, 4, |_| false, degree),
        Some(Slot::Replace(3))
    );
    assert_eq!(repair_slot(&list, 4, |_| false, |_| 1), None);
}
