//! Reading an index on pages as a graph (`PageGraph`, what scans, inserts
//! and VACUUM search), and the compare-and-swap of one level's neighbour
//! slots that every writer of links uses.

use crate::codec::{Codec, OwnedQuery};
use crate::format::{
    links_from_bytes, page_elements, read_element, read_neighbors, Link, Meta, ELEMENT_HEADER_MAX,
};
use crate::search::{Candidate, Graph, SWEEP_PAGES};
use distance::rabitq::Estimate;
use distance::Query;
use pagestore::page;
use pagestore::{Corrupt, PageStore, Tid};
use std::cell::RefCell;

/// An element as `PageGraph::element` reads it.
#[derive(Clone, Debug)]
pub struct ElementInfo {
    pub vector: Vec<f32>,
    pub level: usize,
    pub neighbors: Tid,
    pub deleted: bool,
}

/// Read access to an index on pages. Reads of one element return
/// `Result`; searches run through `walk`, which returns the first
/// corruption they met.
pub struct PageGraph<'s, S: PageStore> {
    store: &'s S,
    meta: Meta,
    codec: Codec,
}

impl<'s, S: PageStore> PageGraph<'s, S> {
    pub fn open(store: &'s S) -> Result<Self, Corrupt> {
        if store.nblocks() == 0 {
            return Err(Corrupt("index has no metapage".into()));
        }
        let meta = store.read(0, Meta::decode)?;
        let codec = Codec::open(store, &meta)?;
        Ok(PageGraph { store, meta, codec })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// How the pages hold vectors.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    pub fn store(&self) -> &'s S {
        self.store
    }

    /// The element searches start from and its level, as the metapage said
    /// when the graph was opened; None for an empty index.
    pub fn entry_point(&self) -> Option<(Tid, usize)> {
        self.meta
            .entry
            .is_valid()
            .then_some((self.meta.entry, self.meta.entry_level as usize))
    }

    /// Runs `f` on the page holding `t` (a tuple a link or the metapage
    /// pointed at: it must lie inside the index).
    fn read<R>(&self, t: Tid, f: impl FnOnce(&[u8]) -> Result<R, Corrupt>) -> Result<R, Corrupt> {
        inside(self.store, t)?;
        self.store.read(t.block, f)
    }

    /// An element's vector, level, neighbour tuple and deleted flag.
    pub fn element(&self, t: Tid) -> Result<ElementInfo, Corrupt> {
        let bytes = self.meta.vector_bytes();
        self.read(t, |p| {
            let e = read_element(p, t, bytes)?;
            let mut v = Vec::with_capacity(self.meta.dims as usize);
            self.codec.decode(e.vector(), &mut v)?;
            Ok(ElementInfo {
                vector: v,
                level: e.level(),
                neighbors: e.neighbors(),
                deleted: e.deleted(),
            })
        })
    }

    /// A hint that these elements are about to be read.
    pub fn prefetch_elements(&self, ts: &[Tid]) {
        self.store
            .prefetch(ts, ELEMENT_HEADER_MAX + self.meta.vector_bytes());
    }

    /// Appends an element's vector to `out`; returns whether the element is
    /// flagged deleted, its level and its neighbour tuple.
    pub fn read_vector(&self, t: Tid, out: &mut Vec<f32>) -> Result<(bool, usize, Tid), Corrupt> {
        let bytes = self.meta.vector_bytes();
        self.read(t, |p| {
            let e = read_element(p, t, bytes)?;
            self.codec.decode(e.vector(), out)?;
            Ok((e.deleted(), e.level(), e.neighbors()))
        })
    }

    /// The heap TIDs an element stands for.
    pub fn heap_tids(&self, t: Tid) -> Result<Vec<Tid>, Corrupt> {
        let bytes = self.meta.vector_bytes();
        self.read(t, |p| Ok(read_element(p, t, bytes)?.heap_tids().collect()))
    }

    /// The heap TIDs element `t` stands for and, in an index of codes, the
    /// estimate of its distance from the query with its error bound (what
    /// `Rerank::push_estimate` orders measurements by): one read of its page.
    pub fn rows_and_estimate(
        &self,
        query: &Query,
        t: Tid,
    ) -> Result<(Vec<Tid>, Option<Estimate>), Corrupt> {
        let bytes = self.meta.vector_bytes();
        let quantized = self.meta.storage.is_quantized();
        self.read(t, |p| {
            let e = read_element(p, t, bytes)?;
            let estimate = if quantized {
                query.estimate(e.vector())
            } else {
                None
            };
            Ok((e.heap_tids().collect(), estimate))
        })
    }

    /// Runs `f`, a search (any function of a `Graph`: `search`,
    /// `search_layer`, an `IterativeSearch` batch), over the pages. Graph
    /// callbacks cannot fail, so the first corruption met ends that path
    /// of the search as a dead end and becomes this function's error once
    /// `f` returns: a search over a damaged index ends in `Err`, with
    /// nothing for the caller to remember to collect.
    pub fn walk<R>(&self, f: impl FnOnce(&Walk<'_, 's, S>) -> R) -> Result<R, Corrupt> {
        let w = Walk {
            graph: self,
            error: RefCell::new(None),
        };
        let r = f(&w);
        match w.error.into_inner() {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }

    /// A vector read by `element` (in words) as the query of a search
    /// (`OwnedQuery::query`; for a code, the vector it points at).
    pub fn query_of(&self, words: &[f32]) -> Result<OwnedQuery, Corrupt> {
        self.codec.query_stored(self.meta.metric, words)
    }

    /// The distance between two vectors read by `element`.
    pub fn distance_between(&self, a: &[f32], b: &[f32]) -> f32 {
        self.codec.distance(self.meta.metric, a, b)
    }

    /// Distance from a prepared query to element `t`.
    pub fn distance(&self, query: &Query, t: Tid) -> Result<f32, Corrupt> {
        let storage = self.meta.storage;
        self.read(t, |p| {
            let e = read_element(p, t, self.meta.vector_bytes())?;
            Ok(storage.with_view(e.vector(), |v| query.distance(v)))
        })
    }

    /// `search` over the pages.
    pub fn search(
        &self,
        query: &Query,
        k: usize,
        ef: usize,
    ) -> Result<Vec<Candidate<Tid>>, Corrupt> {
        self.walk(|w| crate::search::search(w, query, k, ef))
    }
}

/// A `PageGraph` as one search sees it (`PageGraph::walk`): the `Graph`
/// whose callbacks keep the first corruption met.
pub struct Walk<'g, 's, S: PageStore> {
    graph: &'g PageGraph<'s, S>,
    error: RefCell<Option<Corrupt>>,
}

impl<S: PageStore> Walk<'_, '_, S> {
    /// The result of one read, its error kept (the first one) as the walk's.
    fn keep<R>(&self, r: Result<R, Corrupt>) -> Option<R> {
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    /// Distance from the query to element `id`, and whether it is flagged
    /// deleted; None when it cannot be read.
    fn distance_flagged(&self, query: &Query, id: Tid) -> Option<(f32, bool)> {
        let g = self.graph;
        let storage = g.meta.storage;
        self.keep(g.read(id, |p| {
            let e = read_element(p, id, g.meta.vector_bytes())?;
            // Tuples are MAXALIGNed and the vector starts 4-aligned inside
            // its tuple (`format::payload_slots`), so on a page buffer it
            // is read in place.
            let d = storage.with_view(e.vector(), |v| query.distance(v));
            Ok((d, e.deleted()))
        }))
    }
}

impl<S: PageStore> Graph for Walk<'_, '_, S> {
    type Id = Tid;

    fn entry_point(&self) -> Option<(Tid, usize)> {
        self.graph.entry_point()
    }

    fn neighbors(&self, id: Tid, level: usize, out: &mut Vec<Tid>) {
        out.clear();
        let g = self.graph;
        let (bytes, m) = (g.meta.vector_bytes(), g.meta.m as usize);
        let Some((nt, elevel)) = self.keep(g.read(id, |p| {
            let e = read_element(p, id, bytes)?;
            Ok((e.neighbors(), e.level()))
        })) else {
            return;
        };
        if level > elevel {
            return;
        }
        let found = self.keep(g.read(nt, |p| {
            Ok(read_neighbors(p, nt, m, Some(elevel))?
                .tids(level)
                .collect::<Vec<_>>())
        }));
        if let Some(f) = found {
            *out = f;
        }
    }

    fn sweep_nodes(&self, from: u64, out: &mut Vec<Tid>) -> Option<u64> {
        out.clear();
        let g = self.graph;
        let bytes = g.meta.vector_bytes();
        let blocks = g.store.nblocks() as u64;
        // stretch k: blocks 1 + k * SWEEP_PAGES onwards (0 is the metapage)
        let first = 1 + from.saturating_mul(SWEEP_PAGES);
        let end = first.saturating_add(SWEEP_PAGES).min(blocks);
        for block in first..end {
            let block = block as u32;
            let heads = g.store.read(block, |p| page_elements(p, block, bytes));
            let Some(heads) = self.keep(heads) else {
                return None;
            };
            out.extend(heads.iter().filter(|e| !e.deleted()).map(|e| e.tid));
        }
        (end < blocks).then_some(from + 1)
    }

    fn distances(&self, query: &Query, ids: &[Tid], out: &mut Vec<f32>) {
        self.graph.prefetch_elements(ids);
        out.clear();
        out.extend(ids.iter().map(|id| self.distance(query, *id)));
    }

    fn distances_flagged(
        &self,
        query: &Query,
        ids: &[Tid],
        out: &mut Vec<f32>,
        deleted: &mut Vec<bool>,
    ) {
        self.graph.prefetch_elements(ids);
        (out.clear(), deleted.clear());
        for id in ids {
            // an unreadable element counts as deleted: nothing to return
            let (d, gone) = self
                .distance_flagged(query, *id)
                .unwrap_or((f32::INFINITY, true));
            out.push(d);
            deleted.push(gone);
        }
    }

    fn distance(&self, query: &Query, id: Tid) -> f32 {
        self.distance_flagged(query, id)
            .map_or(f32::INFINITY, |(d, _)| d)
    }
}

/// Checks that a TID read from a page (a link, an element's neighbour
/// tuple, the entry point) names a data page of the index.
pub(crate) fn inside<S: PageStore>(store: &S, t: Tid) -> Result<(), Corrupt> {
    if t.block == 0 || !t.is_valid() || !store.contains(t.block) {
        return Err(Corrupt(format!(
            "link to ({},{}) points outside the index",
            t.block, t.offset
        )));
    }
    Ok(())
}

/// Replaces one level's slots in the neighbour tuple `nt` (of an element of
/// `element_level`) if they still equal `before`; false when a concurrent
/// writer changed them first.
pub(crate) fn write_slots_if_unchanged<S: PageStore>(
    store: &S,
    nt: Tid,
    m: usize,
    level: usize,
    before: &[u8],
    after: &[u8],
) -> Result<bool, Corrupt> {
    let range = crate::format::level_range(m, level);
    inside(store, nt)?;
    store.write(nt.block, |p| -> Result<bool, Corrupt> {
        crate::format::check_index_page(p)?;
        let raw = page::item_mut(p, nt.offset)?;
        if raw.len() < range.end || raw[range.clone()] != *before {
            return Ok(false);
        }
        raw[range].copy_from_slice(after);
        Ok(true)
    })
}

/// One level's slots of a neighbour tuple, as raw bytes (for a later
/// `write_slots_if_unchanged`) and as links (empty slots included).
pub(crate) fn read_links<S: PageStore>(
    store: &S,
    nt: Tid,
    m: usize,
    element_level: usize,
    level: usize,
) -> Result<(Vec<u8>, Vec<Link>), Corrupt> {
    inside(store, nt)?;
    store.read(nt.block, |p| -> Result<(Vec<u8>, Vec<Link>), Corrupt> {
        let bytes = read_neighbors(p, nt, m, Some(element_level))?
            .level_bytes(level)
            .to_vec();
        let links = links_from_bytes(level, &bytes);
        Ok((bytes, links))
    })
}

/// `read_links` with the TIDs only.
pub(crate) fn read_slots<S: PageStore>(
    store: &S,
    nt: Tid,
    m: usize,
    element_level: usize,
    level: usize,
) -> Result<(Vec<u8>, Vec<Tid>), Corrupt> {
    let (bytes, links) = read_links(store, nt, m, element_level, level)?;
    Ok((bytes, links.into_iter().map(|l| l.tid).collect()))
}
