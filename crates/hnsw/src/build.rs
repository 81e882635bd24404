//! Building an HNSW graph in memory (HNSW paper, algorithms 1 and 4).
//!
//! Vectors are appended first (`push`), then linked by `insert_pending` in
//! batches run on the current rayon pool. Threads only compute: each node's
//! links sit behind their own mutex, and the entry point behind a RwLock. The
//! caller's closure runs between batches on the caller's thread, so it may
//! call into Postgres (interrupt checks, progress).

use crate::aligned::Aligned;
use crate::codec::Codec;
use crate::repair::{repair, repair_slot, Offer, Proposal, Repairable, Slot};
use crate::search::{search_layer, search_levels, Candidate, Graph};
use crate::select::{link_update, merge_duplicate, random_level, select_neighbors, trim, LinkList};
use crate::{Metric, Storage, Visited};
use distance::{Element, Query};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};

#[derive(Default)]
struct Node {
    /// Neighbour lists, level 0 first.
    links: Vec<Vec<u32>>,
    /// Per link (parallel to `links`): its distance and whether the
    /// heuristic keeps it as diverse, so a link-back updates the list with a
    /// few comparisons instead of re-running the heuristic (as pgvector's
    /// closer flags do).
    info: Vec<Vec<LinkInfo>>,
    /// What the node stands for (heap TIDs); empty for a merged duplicate.
    payloads: Vec<u64>,
    /// Set when this vector was merged into another node and is not linked.
    merged: bool,
}

#[derive(Clone, Copy, Debug)]
struct LinkInfo {
    distance: f32,
    diverse: bool,
}

/// A node's list on one level, as the heuristics change it.
struct NodeList<'a> {
    ids: &'a mut Vec<u32>,
    info: &'a mut Vec<LinkInfo>,
}

impl LinkList for NodeList<'_> {
    type Id = u32;
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn id(&self, i: usize) -> u32 {
        self.ids[i]
    }
    fn distance(&self, i: usize) -> f32 {
        self.info[i].distance
    }
    fn diverse(&self, i: usize) -> bool {
        self.info[i].diverse
    }
    fn set(&mut self, i: usize, distance: f32, diverse: bool) {
        self.info[i] = LinkInfo { distance, diverse };
    }
    fn push(&mut self, id: u32, distance: f32, diverse: bool) {
        self.ids.push(id);
        self.info.push(LinkInfo { distance, diverse });
    }
    fn swap_remove(&mut self, i: usize) {
        self.ids.swap_remove(i);
        self.info.swap_remove(i);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct BuildParams {
    /// Neighbours per node on levels >= 1 (2 * m on level 0).
    pub m: usize,
    pub ef_construction: usize,
    pub metric: Metric,
    /// Seed of the level assignment, so a build is reproducible.
    pub seed: u64,
    /// How pages store the vectors. Pushed vectors must already be rounded
    /// to it (`Storage::round`) so that build distances equal scan ones.
    /// With `quantize`, how the build holds them (f32 or binary16, as the
    /// column has them).
    pub storage: Storage,
    /// Some: pages hold RaBitQ codes of the vectors (`Storage::RaBitQ`);
    /// the graph is built on the full vectors all the same, and each is
    /// encoded as it is written.
    pub quantize: Option<Quantize>,
}

/// How an index of codes makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantize {
    /// The rotation's seed.
    pub seed: u64,
    /// Bits per dimension (`distance::rabitq::SUPPORTED_BITS`).
    pub bits: u32,
}

impl BuildParams {
    /// How the pages will hold the vectors.
    pub fn page_storage(&self) -> Storage {
        if self.quantize.is_some() {
            Storage::RaBitQ
        } else {
            self.storage
        }
    }

    /// The codec that writes vectors of `dims` onto the pages, codes made
    /// around `center`.
    pub fn codec(&self, dims: usize, center: Option<Vec<f32>>) -> crate::codec::Codec {
        let (seed, bits) = self.quantize.map_or((0, 1), |q| (q.seed, q.bits));
        crate::codec::Codec::new(self.page_storage(), dims, seed, bits, center)
    }

    /// Bytes a vector of `dims` (`words` for sparse ones) takes on a page.
    pub fn page_vector_bytes(&self, dims: usize, words: usize) -> usize {
        match self.quantize {
            Some(q) => distance::rabitq::code_bytes(dims, q.bits),
            None if self.storage.fixed_length() => self.storage.bytes(dims),
            None => self.storage.bytes(words),
        }
    }
}

pub struct BuildGraph {
    params: BuildParams,
    /// The vectors' dimensions (for sparse vectors, the type's; their
    /// words vary).
    dim: usize,
    vectors: Aligned<f32>,
    /// Whether linking may read a binary16 copy of the vectors (see
    /// `use_half_copy`), and the copy while `insert_pending` links.
    half_copy: bool,
    halves: Aligned<half::f16>,
    /// Where each vector starts in `vectors`, plus the end, for sparse
    /// vectors; empty for fixed-length ones (`dim` words each).
    starts: Vec<usize>,
    levels: Vec<u8>,
    nodes: Vec<Mutex<Node>>,
    /// A copy of every level-0 list, `2m + 1` words per node (length, then
    /// ids), that searches read without taking the node's lock: one
    /// contiguous read instead of three dependent ones. Writers update it
    /// under the node's lock after changing the list; a reader racing a
    /// writer may see a mix of the old and new list, which only changes
    /// which valid nodes it visits.
    level0: Vec<AtomicU32>,
    entry: RwLock<Option<(u32, usize)>>,
    linked: usize,
    /// Bytes of links and node bookkeeping the pushed nodes will hold once
    /// linked (kept up to date by `push`).
    node_bytes: usize,
    /// Heap TIDs a node of fixed length may hold (what its element tuple
    /// will have room for).
    payload_slots: usize,
    /// Whether linking may measure codes instead of vectors (`use_codes`).
    code_link: bool,
    /// The caller's memory budget (`set_memory_limit`): the vectors' array
    /// grows to what it allows rather than doubling past it.
    memory_limit: usize,
    /// The codes linking measures, once made (kept after linking: the
    /// pages take them when they hold codes of the same bits).
    codes: Option<LinkCodes>,
    /// Whether distances come from `codes` (while `insert_pending` links).
    on_codes: bool,
}

/// RaBitQ codes of `LINK_BITS` of every pushed vector, made around one
/// center, each `words` 64-bit words in stored form (`Quantizer::encode_bytes`).
struct LinkCodes {
    codec: Codec,
    center: Option<Vec<f32>>,
    words: usize,
    codes: Vec<u64>,
}

/// Bits per dimension of the codes linking measures: four, whatever the
/// pages hold (one-bit estimates point too loosely to choose neighbours by).
const LINK_BITS: u32 = 4;

impl LinkCodes {
    fn code(&self, id: u32) -> &[u8] {
        let at = id as usize * self.words;
        bytemuck::cast_slice(&self.codes[at..at + self.words])
    }

    fn len(&self) -> usize {
        self.codes.len() / self.words
    }
}

impl BuildGraph {
    pub fn new(params: BuildParams, dim: usize) -> Self {
        assert!(params.m >= 2 && dim >= 1);
        assert!(params.metric.stores_as(params.storage));
        let fixed = params.storage.fixed_length();
        BuildGraph {
            params,
            dim,
            vectors: Aligned::default(),
            half_copy: false,
            halves: Aligned::default(),
            starts: if fixed { Vec::new() } else { vec![0] },
            levels: Vec::new(),
            nodes: Vec::new(),
            level0: Vec::new(),
            entry: RwLock::new(None),
            linked: 0,
            node_bytes: 0,
            payload_slots: crate::format::payload_slots(
                params.page_storage(),
                params.page_vector_bytes(dim, 0),
                params.m,
            ),
            code_link: false,
            memory_limit: usize::MAX,
            codes: None,
            on_codes: false,
        }
    }

    /// The bytes the caller keeps `memory_bytes() + write_bytes()` within
    /// (the extension: maintenance_work_mem): the vectors' array of fixed
    /// length vectors then grows by doubling only while the doubled array
    /// fits it, and to the room it leaves after that. At 256 MB and 384
    /// dimensions, doubling from 65,536 vectors' room to 131,072 left the
    /// graph room for 80,478 tuples (bench/README.md, "1M rows").
    pub fn set_memory_limit(&mut self, bytes: usize) {
        self.memory_limit = bytes;
    }

    /// Grows the vectors' array for `words` more: as `Vec` does, or to what
    /// the memory limit leaves room for when that is less than a doubling.
    /// True when it grew.
    fn grow_vectors(&mut self, words: usize) -> Result<bool, std::collections::TryReserveError> {
        let cap = self.vectors.capacity_bytes() / 4;
        if !self.starts.is_empty() || self.vectors.len() + words + 16 <= cap {
            return self.vectors.try_reserve(words);
        }
        let per_node = self.bytes_per_node() + crate::write::WRITE_BYTES_PER_NODE;
        let affordable = (self.memory_limit / per_node.max(1)).saturating_mul(words);
        let doubled = cap.max(words) * 2;
        // past the limit (a caller that pushes on) it doubles again, so
        // pushes stay amortised constant time
        if affordable >= doubled || affordable < self.vectors.len() + words {
            return self.vectors.try_reserve(words);
        }
        self.vectors
            .try_reserve_exact(affordable - self.vectors.len())
    }

    pub fn params(&self) -> &BuildParams {
        &self.params
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Most neighbours a node keeps on `level`.
    pub fn max_links(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Adds a vector (not yet linked) standing for `payload` and returns its
    /// node number, or None when the metric cannot order it (a zero vector
    /// under cosine).
    pub fn push(&mut self, v: Element, payload: u64) -> Option<u32> {
        self.try_push(v, payload)
            .expect("memory for the build graph")
    }

    /// `push`, or the error of an allocation that failed (nothing pushed).
    /// The graph's arrays grow by doubling; when they do, the memory the
    /// nodes until the next growth will allocate one by one (their lists)
    /// is asked for once, and given back, so that a build running out of
    /// memory fails here and not in an infallible small allocation.
    pub fn try_push(
        &mut self,
        v: Element,
        payload: u64,
    ) -> Result<Option<u32>, std::collections::TryReserveError> {
        assert_eq!(v.dims(), self.dim, "vector of the wrong dimension");
        let Some(mut prepared) = self.params.metric.prepare(v) else {
            return Ok(None);
        };
        self.params.storage.round_buf(&mut prepared);
        let mut words = Vec::new();
        prepared.as_element().append_words(&mut words);
        if self.starts.is_empty() {
            assert_eq!(words.len(), self.dim, "a vector of another format");
        }
        if self.grow_vectors(words.len())? {
            let room = self.vectors.capacity_bytes() / 4 - self.vectors.len();
            let window = room / words.len().max(1) + 1;
            let level0 = window * (2 * self.params.m + 1);
            self.levels.try_reserve(window)?;
            self.nodes.try_reserve(window)?;
            self.level0.try_reserve(level0)?;
            if !self.starts.is_empty() {
                self.starts.try_reserve(window)?;
            }
            let lists = window.saturating_mul(Self::node_bytes(1, self.params.m));
            Vec::<u8>::new().try_reserve_exact(lists)?;
        }

        let id = self.levels.len() as u32;
        let level = random_level(self.params.seed, id, self.params.m);
        self.vectors.extend_from_slice(&words);
        if !self.starts.is_empty() {
            self.starts.push(self.vectors.len());
        }
        self.levels.push(level as u8);
        self.level0
            .extend((0..=2 * self.params.m).map(|_| AtomicU32::new(0)));
        self.nodes.push(Mutex::new(Node {
            // Room for a full list plus the one a link-back adds before
            // trimming: lists then never reallocate while the graph grows.
            links: (0..=level)
                .map(|l| Vec::with_capacity(self.max_links(l) + 1))
                .collect(),
            info: (0..=level)
                .map(|l| Vec::with_capacity(self.max_links(l) + 1))
                .collect(),
            payloads: vec![payload],
            merged: false,
        }));
        self.node_bytes += Self::node_bytes(level, self.params.m);
        Ok(Some(id))
    }

    /// What one node costs besides its vector once linked: the node, its
    /// level byte, one list header per level and a link plus its cached
    /// `LinkInfo` per slot.
    fn node_bytes(level: usize, m: usize) -> usize {
        let slots = 2 * m + level * m + level + 1; // lists hold one spare slot
        std::mem::size_of::<Mutex<Node>>()
            + 1
            + 8
            + (level + 1) * 2 * 24
            + slots * (4 + std::mem::size_of::<LinkInfo>())
            + (2 * m + 1) * 4
    }

    /// Bytes the graph will hold once every pushed node is linked, for the
    /// caller's memory budget. Constant time.
    pub fn memory_bytes(&self) -> usize {
        self.vectors.capacity_bytes() + self.starts.capacity() * 8 + self.node_bytes
    }

    /// What writing the graph onto pages allocates besides the graph
    /// (`write::WRITE_BYTES_PER_NODE` a node, and the codes of an index of
    /// codes unless the graph linked on codes the pages take): a build
    /// keeps `memory_bytes() + write_bytes()` within its limit.
    pub fn write_bytes(&self) -> usize {
        let codes = match self.params.quantize {
            Some(q) if !(q.bits == LINK_BITS && self.code_link) => {
                // a Vec a code
                distance::rabitq::code_bytes(self.dim, q.bits) + 24
            }
            _ => 0,
        };
        self.len() * (crate::write::WRITE_BYTES_PER_NODE + codes)
    }

    /// What pushing one more vector would add to `memory_bytes` (on average
    /// over levels, ignoring vector capacity doubling).
    /// Sparse vectors count as the average pushed so far (64 words before
    /// the first).
    pub fn bytes_per_node(&self) -> usize {
        let vector = if self.starts.is_empty() {
            self.dim * 4
        } else if self.is_empty() {
            64 * 4 + 8
        } else {
            self.vectors.len() * 4 / self.len() + 8
        };
        vector + Self::node_bytes(0, self.params.m) + 12 + 48 / self.params.m
    }

    /// Node `id`'s vector (prepared, rounded to the storage), as the
    /// element it is.
    pub fn element(&self, id: u32) -> Element<'_> {
        self.params.metric.element_of_words(self.vector(id))
    }

    /// Node `id`'s vector as the query of a search for its neighbours
    /// (with `code` when linking measures codes, `node_query`).
    fn query_of(&self, id: u32) -> Query<'_> {
        Query::new(self.params.metric, self.element(id))
    }

    /// Node `id`'s vector as a query, with its form for the codes while
    /// linking measures them; `.query()` lends it.
    fn node_query(&self, id: u32) -> NodeQuery<'_> {
        let prepared = match (&self.codes, self.on_codes) {
            (Some(c), true) => c.codec.query_of(self.params.metric, self.element(id)),
            _ => return NodeQuery::Plain(self.query_of(id)),
        };
        NodeQuery::Coded(prepared)
    }

    /// The distance between two nodes: their codes' estimate while linking
    /// measures codes (`Quantizer::between_codes`), else node `a`'s vector
    /// against node `b`.
    fn pair_distance(&self, a: u32, b: u32) -> f32 {
        match (&self.codes, self.on_codes) {
            (Some(c), true) => c
                .codec
                .between_codes(self.params.metric, c.code(a), c.code(b)),
            _ => self.distance(&self.query_of(a), b),
        }
    }

    /// Node `id`'s vector in the word form it is kept in
    /// (`Metric::element_of_words`).
    pub fn vector(&self, id: u32) -> &[f32] {
        if self.starts.is_empty() {
            let start = id as usize * self.dim;
            &self.vectors.as_slice()[start..start + self.dim]
        } else {
            &self.vectors.as_slice()[self.starts[id as usize]..self.starts[id as usize + 1]]
        }
    }

    /// Heap TIDs node `id`'s element has room for.
    pub fn payload_slots(&self, id: u32) -> usize {
        if self.starts.is_empty() {
            return self.payload_slots;
        }
        let bytes = self.page_vector_bytes(id);
        crate::format::payload_slots(self.params.page_storage(), bytes, self.params.m)
    }

    /// Bytes node `id`'s vector takes on a page.
    pub fn page_vector_bytes(&self, id: u32) -> usize {
        self.params
            .page_vector_bytes(self.dim, self.vector(id).len())
    }

    pub fn level(&self, id: u32) -> usize {
        self.levels[id as usize] as usize
    }

    /// The payloads a node stands for (several for duplicate vectors).
    pub fn payloads(&self, id: u32) -> Vec<u64> {
        self.nodes[id as usize]
            .lock()
            .expect("node lock")
            .payloads
            .clone()
    }

    /// False for a vector merged into an identical node (not in the graph).
    pub fn is_linked_node(&self, id: u32) -> bool {
        !self.nodes[id as usize].lock().expect("node lock").merged
    }

    /// A copy of a node's neighbour list on one level.
    pub fn links(&self, id: u32, level: usize) -> Vec<u32> {
        let mut out = Vec::new();
        self.neighbors(id, level, &mut out);
        out
    }

    /// A node's links on one level with their distances and diverse flags.
    pub fn link_infos(&self, id: u32, level: usize) -> Vec<(u32, f32, bool)> {
        let node = self.nodes[id as usize].lock().expect("node lock");
        match (node.links.get(level), node.info.get(level)) {
            (Some(l), Some(i)) => l
                .iter()
                .zip(i)
                .map(|(n, i)| (*n, i.distance, i.diverse))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Bytes the binary16 copy of `use_half_copy` takes while linking (0
    /// for metrics that cannot have one).
    pub fn half_copy_bytes(&self) -> usize {
        if self.half_copy_metric() {
            self.vectors.len() * std::mem::size_of::<half::f16>()
        } else {
            0
        }
    }

    fn half_copy_metric(&self) -> bool {
        self.params.metric.is_dense() && self.params.storage.fixed_length()
    }

    /// Lets `insert_pending` link on a binary16 copy of the vectors
    /// (`half_copy_bytes` more memory while it runs), for the dense metrics
    /// and vectors whose largest element is within [2^-8, 2^15] (or zero).
    /// The query side stays f32 (the inserted node's own vector), so each
    /// distance is off by about 2^-12 relative, and a level search reads
    /// half the bytes: the build is memory-bound (a 384-d vector is 24
    /// cache lines, a search reads about a thousand of them at random).
    /// Every link's distance is recomputed exactly once linked, so what the
    /// pages keep is as without. Linking gets faster at the same recall
    /// (`a_half_copy_links_as_well_as_f32`; the times are in bench/README.md,
    /// "Measurements behind design choices"). Off by default: it needs the
    /// memory.
    pub fn use_half_copy(&mut self, on: bool) {
        self.half_copy = on;
    }

    /// Lets `insert_pending` link an index of codes on four-bit RaBitQ
    /// codes of the vectors (`link_code_bytes` more memory) instead of the
    /// vectors: a search reads a code of an eighth of an f32 vector's bytes
    /// and measures it with integer products, and graph builds are
    /// memory-bound. Searches and neighbour selection compare estimates;
    /// every link's distance is recomputed exactly once linked, as for
    /// `use_half_copy`. The codes stay for the pages when those hold
    /// four-bit codes (`page_code`). Ignored for indexes of full vectors.
    pub fn use_codes(&mut self, on: bool) {
        self.code_link = on;
    }

    /// Bytes the codes of `use_codes` take (0 for an index of full vectors).
    pub fn link_code_bytes(&self) -> usize {
        if self.params.quantize.is_none() {
            return 0;
        }
        self.len() * distance::rabitq::code_bytes(self.dim, LINK_BITS)
    }

    /// The center an index of codes makes its codes around: the one the
    /// link codes were made with, else the rows' mean (zero for inner
    /// products, whose estimates' error grows with `|q - c|` while queries
    /// need not lie among the rows: spread64 of tests/python, recall@10
    /// 0.69 around the mean, 0.79 around zero; full vectors 0.80) and for
    /// an empty graph. None for an index of full vectors.
    pub fn code_center(&self) -> Option<Vec<f32>> {
        self.params.quantize?;
        if let Some(c) = &self.codes {
            return c.center.clone();
        }
        let centred = self.params.metric != Metric::InnerProduct;
        (!self.is_empty() && centred).then(|| {
            let mut sum = vec![0.0f64; self.dim];
            for id in 0..self.len() as u32 {
                sum.iter_mut()
                    .zip(self.vector(id))
                    .for_each(|(s, &x)| *s += x as f64);
            }
            sum.iter().map(|s| (s / self.len() as f64) as f32).collect()
        })
    }

    /// Node `id`'s code in the pages' stored form, when the link codes are
    /// what the pages hold (four bits a dimension, every node encoded).
    pub fn page_code(&self, id: u32) -> Option<&[u8]> {
        let c = self.codes.as_ref()?;
        (self.params.quantize?.bits == LINK_BITS && (id as usize) < c.len()).then(|| c.code(id))
    }

    /// Makes the codes of `use_codes` for every node without one, batches
    /// of `ENCODE_BATCH` on `pool`, `between` after each.
    fn make_codes(&mut self, pool: &rayon::ThreadPool, between: &mut impl FnMut(usize)) {
        let Some(q) = self.params.quantize else {
            return;
        };
        if !self.code_link || !self.params.storage.fixed_length() {
            return;
        }
        let mut codes = match self.codes.take() {
            Some(c) => c,
            None => {
                let center = self.code_center();
                let bytes = distance::rabitq::code_bytes(self.dim, LINK_BITS);
                LinkCodes {
                    codec: Codec::new(Storage::RaBitQ, self.dim, q.seed, LINK_BITS, center.clone()),
                    center,
                    words: bytes / 8,
                    codes: Vec::new(),
                }
            }
        };
        if codes
            .codes
            .try_reserve_exact((self.len() - codes.len()) * codes.words)
            .is_err()
        {
            return; // no room: linking measures vectors
        }
        while codes.len() < self.len() {
            let first = codes.len();
            let end = (first + ENCODE_BATCH).min(self.len());
            let graph = &*self;
            let batch: Vec<Vec<u8>> = pool.install(|| {
                (first..end)
                    .into_par_iter()
                    .map(|id| codes.codec.encoded(graph.vector(id as u32)))
                    .collect()
            });
            for code in batch {
                assert_eq!(
                    code.len(),
                    codes.words * 8,
                    "a code of the link codes' size"
                );
                codes.codes.extend(
                    code.chunks_exact(8)
                        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))),
                );
            }
            between(self.linked);
        }
        self.codes = Some(codes);
    }

    /// The binary16 copy for linking, or nothing when a vector would lose
    /// more than rounding to it (too large for binary16, or so small that
    /// its elements become subnormal).
    fn make_half_copy(&self) -> Aligned<half::f16> {
        if !self.half_copy || !self.half_copy_metric() {
            return Aligned::default();
        }
        let fits = |v: &[f32]| {
            let most = v.iter().fold(0f32, |a, x| a.max(x.abs()));
            most == 0.0 || (HALF_COPY_RANGE.0..=HALF_COPY_RANGE.1).contains(&most)
        };
        if !self.vectors.as_slice().chunks_exact(self.dim).all(fits) {
            return Aligned::default();
        }
        let mut halves = Aligned::default();
        if halves.try_reserve(self.vectors.len()).is_err() {
            return halves; // no room: linking reads the f32 vectors
        }
        let mut chunk = Vec::with_capacity(1024);
        for words in self.vectors.as_slice().chunks(1024) {
            chunk.clear();
            chunk.extend(words.iter().map(|x| half::f16::from_f32(*x)));
            halves.extend_from_slice(&chunk); // within the room reserved
        }
        halves
    }

    /// Node `id`'s vector in the binary16 copy, while linking reads one.
    fn half(&self, id: u32) -> Option<&[half::f16]> {
        let start = id as usize * self.dim;
        (!self.halves.is_empty()).then(|| &self.halves.as_slice()[start..start + self.dim])
    }

    /// Replaces every link's distance with the exact one (after linking
    /// on the binary16 copy), `RECOMPUTE_BATCH` nodes per parallel step.
    fn recompute_link_distances(&self, pool: &rayon::ThreadPool, between: &mut impl FnMut(usize)) {
        let metric = self.params.metric;
        let mut start = 0;
        while start < self.len() {
            let end = (start + RECOMPUTE_BATCH).min(self.len());
            pool.install(|| {
                (start..end).into_par_iter().for_each(|id| {
                    let v = self.element(id as u32);
                    let mut guard = self.nodes[id].lock().expect("node lock");
                    let node = &mut *guard;
                    for (list, info) in node.links.iter().zip(node.info.iter_mut()) {
                        for (&n, i) in list.iter().zip(info.iter_mut()) {
                            i.distance = metric.between(v, self.element(n));
                        }
                    }
                })
            });
            start = end;
            between(self.linked);
        }
    }

    /// Links every pushed node not linked yet, `batch` nodes per parallel
    /// step on `pool`; `between(linked_so_far)` runs on this (the caller's)
    /// thread after each step, never on a pool thread.
    pub fn insert_pending(
        &mut self,
        pool: &rayon::ThreadPool,
        batch: usize,
        mut between: impl FnMut(usize),
    ) {
        let batch = batch.max(1);
        if self.linked < self.len() {
            self.make_codes(pool, &mut between);
            self.on_codes = self.codes.is_some();
            if !self.on_codes {
                self.halves = self.make_half_copy();
            }
        }
        while self.linked < self.len() {
            // A batch is never larger than the graph already linked: nodes
            // inserted together cannot see each other, and hundreds of them
            // linking into a handful of nodes would be pruned away unreachable.
            let step = batch.min(self.linked.max(1));
            let end = (self.linked + step).min(self.len());
            let graph = &*self;
            pool.install(|| {
                (self.linked..end)
                    .into_par_iter()
                    .for_each(|id| graph.insert(id as u32))
            });
            self.linked = end;
            between(end);
        }
        if !self.halves.is_empty() || self.on_codes {
            self.halves = Aligned::default();
            self.on_codes = false;
            self.recompute_link_distances(pool, &mut between);
        }
        self.repair_reachability();
    }

    /// Nodes on each level that a search from the entry point can reach.
    pub fn reachable(&self, level: usize) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let Some((entry, top)) = self.entry_point() else {
            return seen;
        };
        if level > top {
            return seen;
        }
        // The entry point is on every level; on lower levels, so are the
        // nodes reached through it.
        let mut stack = vec![entry];
        seen[entry as usize] = true;
        let mut links = Vec::new();
        while let Some(n) = stack.pop() {
            self.neighbors(n, level, &mut links);
            for &m in &links {
                if !seen[m as usize] {
                    seen[m as usize] = true;
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// Links in every node no search can reach, level by level
    /// (`repair::repair`).
    fn repair_reachability(&mut self) {
        let Some((_, top)) = self.entry_point() else {
            return;
        };
        for level in 0..=top {
            let Ok(_) = repair(&mut LevelRepair { graph: self, level });
        }
    }

    /// Best-first search of one level started at the entry point itself, so
    /// it only sees what is reachable on that level (a descent through upper
    /// levels could enter the very region that is cut off below).
    fn nearest_reachable(&self, query: &Query, level: usize, ef: usize) -> Vec<Candidate<u32>> {
        let Some((entry, _)) = self.entry_point() else {
            return Vec::new();
        };
        let ep = [Candidate {
            distance: self.distance(query, entry),
            id: entry,
        }];
        search_layer(self, query, &ep, ef, level, &mut Visited::default())
    }

    fn insert(&self, q: u32) {
        let level = self.level(q);
        let Some((entry, top)) = *self.entry.read().expect("entry lock") else {
            let mut e = self.entry.write().expect("entry lock");
            if e.is_none() {
                *e = Some((q, level));
                return;
            }
            drop(e);
            return self.insert(q);
        };
        // A level-0 search at ef_construction touches about ef * 2m nodes;
        // each thread keeps one set of that size for all its inserts.
        VISITED.with(|v| {
            let mut v = v.borrow_mut();
            v.clear();
            self.insert_with(q, level, entry, top, &mut v)
        })
    }

    fn insert_with(
        &self,
        q: u32,
        level: usize,
        entry: u32,
        top: usize,
        visited: &mut Visited<u32>,
    ) {
        let node_query = self.node_query(q);
        let query = node_query.query();
        let ef = self.params.ef_construction;
        let found_per_level = search_levels(
            self,
            &query,
            (entry, top),
            level,
            ef,
            Some(q),
            visited,
            false,
        );
        if let Some((0, level0)) = found_per_level.last() {
            if self.merge_duplicate(q, &query, level0) {
                return;
            }
        }
        // Link level 0 first and upper levels last: a search that reaches q
        // through an upper level descends from it, so q's lower lists must
        // be in place by then. Linked top down, a concurrent insert could
        // reach q on level 1 before q had any level-0 link, find nothing
        // else on level 0 and keep q as its only neighbour (an element cut
        // off from its region, found by a 3000-row stress test).
        for (l, found) in found_per_level.into_iter().rev() {
            let (selected, diverse) = self.select(&found, self.max_links(l), l);
            let distance_to = |n: u32| {
                found
                    .iter()
                    .find(|c| c.id == n)
                    .map_or(f32::INFINITY, |c| c.distance)
            };
            // Other inserters may already have linked themselves to q: merge.
            {
                let mut guard = self.nodes[q as usize].lock().expect("node lock");
                let node = &mut *guard;
                for (i, &n) in selected.iter().enumerate() {
                    if !node.links[l].contains(&n) {
                        node.links[l].push(n);
                        node.info[l].push(LinkInfo {
                            distance: distance_to(n),
                            diverse: i < diverse,
                        });
                    }
                }
                self.trim(&mut node.links[l], &mut node.info[l], l);
                self.publish(q, l, &node.links[l]);
            }
            for n in selected {
                self.add_link(n, q, &query, l, distance_to(n));
            }
        }
        if level > top {
            let mut e = self.entry.write().expect("entry lock");
            if e.is_none_or(|(_, t)| level > t) {
                *e = Some((q, level));
            }
        }
    }

    /// Moves q's payload into a node holding the same vector, if one with
    /// room is among `candidates` (`select::merge_duplicate`).
    fn merge_duplicate(&self, q: u32, query: &Query, candidates: &[Candidate<u32>]) -> bool {
        let v = self.element(q);
        let take = |id: u32| {
            if !v.same(&self.element(id)) {
                return Ok(false);
            }
            let mut target = self.nodes[id as usize].lock().expect("node lock");
            if target.merged || target.payloads.len() >= self.payload_slots(id) {
                return Ok(false);
            }
            // Holding two locks cannot deadlock: q is not linked yet, so no
            // other thread can reach q to merge into it.
            let mut node = self.nodes[q as usize].lock().expect("node lock");
            target.payloads.append(&mut node.payloads);
            node.merged = true;
            Ok::<_, std::convert::Infallible>(true)
        };
        let Ok(merged) = merge_duplicate(candidates, self.distance(query, q), take);
        merged.is_some()
    }

    /// Adds `q` (at distance `dq` from `n`) to `n`'s list on `level`.
    /// Only the comparisons `q` can change are made: q is diverse unless a
    /// diverse link nearer to `n` is also near to q, and q can make diverse
    /// links farther than itself non-diverse. Symmetric distances make dq
    /// the distance found while searching for q's neighbours.
    fn add_link(&self, n: u32, q: u32, qv: &Query, level: usize, dq: f32) {
        let from_q = |k: u32| Ok::<_, std::convert::Infallible>(Some(self.distance(qv, k)));
        let mut guard = self.nodes[n as usize].lock().expect("node lock");
        let node = &mut *guard;
        let (ids, info) = (&mut node.links[level], &mut node.info[level]);
        if ids.contains(&q) {
            return;
        }
        let mut list = NodeList { ids, info };
        let max = self.max_links(level);
        let Ok(_) = link_update(&mut list, q, dq, max, level, false, from_q);
        self.publish(n, level, list.ids);
    }

    /// Brings a list back within its bound (`select::trim`).
    fn trim(&self, ids: &mut Vec<u32>, info: &mut Vec<LinkInfo>, level: usize) {
        trim(&mut NodeList { ids, info }, self.max_links(level), level);
    }

    /// Mirrors a level-0 list into `level0` (called with the node locked).
    fn publish(&self, id: u32, level: usize, list: &[u32]) {
        if level != 0 {
            return;
        }
        let words = &self.level0[id as usize * (2 * self.params.m + 1)..];
        for (w, &n) in words[1..].iter().zip(list) {
            w.store(n, Ordering::Relaxed);
        }
        words[0].store(list.len() as u32, Ordering::Release);
    }

    fn select(&self, sorted: &[Candidate<u32>], max: usize, level: usize) -> (Vec<u32>, usize) {
        select_neighbors(sorted, max, level, |a, b| self.pair_distance(a, b))
    }
}

impl Graph for BuildGraph {
    type Id = u32;

    fn entry_point(&self) -> Option<(u32, usize)> {
        *self.entry.read().expect("entry lock")
    }

    fn neighbors(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        if level == 0 {
            let words = &self.level0[id as usize * (2 * self.params.m + 1)..];
            let len = (words[0].load(Ordering::Acquire) as usize).min(2 * self.params.m);
            out.extend(words[1..=len].iter().map(|w| w.load(Ordering::Relaxed)));
            return;
        }
        let node = self.nodes[id as usize].lock().expect("node lock");
        if let Some(l) = node.links.get(level) {
            out.extend_from_slice(l);
        }
    }

    fn distance(&self, query: &Query, id: u32) -> f32 {
        if let (Some(c), true) = (&self.codes, self.on_codes) {
            return query.distance(Element::Code(c.code(id)));
        }
        match self.half(id) {
            Some(h) => query.distance(Element::F16(h)),
            None => query.distance(self.element(id)),
        }
    }

    fn sweep_nodes(&self, from: u64, out: &mut Vec<u32>) -> Option<u64> {
        out.clear();
        let len = self.len() as u64;
        let first = from.saturating_mul(crate::search::SWEEP_NODES).min(len);
        let end = first.saturating_add(crate::search::SWEEP_NODES).min(len);
        out.extend(first as u32..end as u32);
        (end < len).then_some(from + 1)
    }

    fn distances(&self, query: &Query, ids: &[u32], out: &mut Vec<f32>) {
        for &id in ids {
            match (&self.codes, self.on_codes, self.half(id)) {
                (Some(c), true, _) => distance::prefetch(c.code(id), PREFETCH_BYTES),
                (_, _, Some(h)) => distance::prefetch(h, PREFETCH_BYTES),
                _ => distance::prefetch(self.vector(id), PREFETCH_BYTES),
            }
        }
        out.clear();
        out.extend(ids.iter().map(|&id| self.distance(query, id)));
    }
}

thread_local! {
    /// The visited set of the inserts a build thread runs, reused.
    static VISITED: std::cell::RefCell<Visited<u32>> = std::cell::RefCell::new(Visited::with_capacity(4096));
}

/// Largest element (absolute) a vector must have for linking on a
/// binary16 copy: above 2^15 it may overflow binary16's 65504 once rounded;
/// below 2^-8 its elements under 2^-14 go subnormal and lose more than
/// 2^-17 of the largest one.
const HALF_COPY_RANGE: (f32, f32) = (1.0 / 256.0, 32768.0);

/// Nodes encoded per parallel step (`make_codes`).
const ENCODE_BATCH: usize = 4096;

/// A node's vector as a query: as it is, or with its form for the link
/// codes (owned).
enum NodeQuery<'a> {
    Plain(Query<'a>),
    Coded(crate::codec::OwnedQuery),
}

impl NodeQuery<'_> {
    fn query(&self) -> Query<'_> {
        match self {
            NodeQuery::Plain(q) => *q,
            NodeQuery::Coded(o) => o.query(),
        }
    }
}

/// Nodes per parallel step when link distances are recomputed.
const RECOMPUTE_BATCH: usize = 16384;

/// How much of each vector a batch of distances prefetches up front; the
/// hardware prefetcher streams the rest once a vector is being read.
const PREFETCH_BYTES: usize = 2048;

/// One level of the build graph as the reachability repair sees it.
struct LevelRepair<'a> {
    graph: &'a BuildGraph,
    level: usize,
}

impl Repairable for LevelRepair<'_> {
    type Error = std::convert::Infallible;

    fn len(&self) -> usize {
        self.graph.len()
    }

    fn entry(&self) -> Option<usize> {
        self.graph.entry_point().map(|(e, _)| e as usize)
    }

    fn member(&self, i: usize) -> bool {
        let id = i as u32;
        self.graph.level(id) >= self.level && self.graph.is_linked_node(id)
    }

    fn links(&self, i: usize, out: &mut Vec<usize>) {
        out.extend(
            self.graph
                .links(i as u32, self.level)
                .iter()
                .map(|&n| n as usize),
        );
    }

    fn distance(&self, from: usize, to: usize) -> Result<f32, Self::Error> {
        let g = self.graph;
        Ok(g.distance(&g.query_of(from as u32), to as u32))
    }

    fn nearest(&self, i: usize) -> Result<Vec<Candidate<usize>>, Self::Error> {
        let g = self.graph;
        let found =
            g.nearest_reachable(&g.query_of(i as u32), self.level, g.params.ef_construction);
        Ok(found
            .into_iter()
            .map(|c| Candidate {
                distance: c.distance,
                id: c.id as usize,
            })
            .collect())
    }

    fn offer(&mut self, link: Proposal, in_degree: &[u8]) -> Result<Offer, Self::Error> {
        let Proposal {
            host,
            lost,
            distance,
        } = link;
        let (g, level, q) = (self.graph, self.level, lost as u32);
        let mut guard = g.nodes[host].lock().expect("node lock");
        let node = &mut *guard;
        let mut list = NodeList {
            ids: &mut node.links[level],
            info: &mut node.info[level],
        };
        if list.ids.contains(&q) {
            return Ok(Offer::Present);
        }
        let slot = repair_slot(
            &list,
            g.max_links(level),
            |_| false,
            |n| in_degree[n as usize],
        );
        let offer = match slot {
            None => return Ok(Offer::Refused),
            Some(Slot::Append) => {
                list.push(q, distance, true);
                Offer::Linked { replaced: None }
            }
            Some(Slot::Replace(i)) => {
                let replaced = list.ids[i] as usize;
                list.ids[i] = q;
                list.set(i, distance, true);
                Offer::Linked {
                    replaced: Some(replaced),
                }
            }
        };
        g.publish(host as u32, level, list.ids);
        Ok(offer)
    }
}
