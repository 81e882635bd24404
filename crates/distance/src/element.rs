//! The element/query seam: what an index stores (`Element`, one variant
//! per element format, viewed in place; `ElementBuf`, owned) and what a
//! search compares it with (`Query`: a prepared query). A distance is always
//! computed between two typed values (`Metric::between`), so bit strings
//! and sparse vectors are never read as floats.
//!
//! How to add an element format (for example a quantized code):
//! 1. a variant in `Element` and `ElementBuf` (and their `as_element`,
//!    `to_buf`, `dims`, `same`, `append_words`), and a `Storage` variant
//!    with its code, `element_size`, `encode_element` and `with_view` (its
//!    page bytes are read and written there only);
//! 2. the pairs it is compared in, in `Metric::between` (and, for a query
//!    form that is not itself an element, such as a rotated query or a
//!    lookup table, a field of `Query` that `Query::distance` uses first);
//! 3. which metrics it serves (`Metric::stores_as`) and what preparing a
//!    vector for it does (`Metric::prepare`; `Storage::round_buf` when
//!    storing loses precision, so that build distances equal scan ones);
//! 4. in the extension, the opclass or reloption that picks it
//!    (`src/am/opclass.rs`; `src/hnsw/options.rs` and `index_formats` in
//!    `src/hnsw/mod.rs`, where the column's format, `input`, and the
//!    pages', `stored`, may differ: `WITH (storage = 'halfvec')` stores a
//!    vector column in binary16 that way), the datum it is read from
//!    (`src/am/datum.rs`, `with_vector`) and the values it cannot hold
//!    (`check_value` in `src/hnsw/mod.rs`).
//!
//! How to add a metric: a variant and code in `Metric`, its kernels in
//! `Metric::between` for each element format it serves, `stores_as`, and in
//! the extension its support function in `src/am/opclass.rs` and its
//! operator class in `sql/`.
//!
//! In memory (an in-memory build, an insert's cache of neighbours) vectors
//! are kept in 32-bit words (`Element::append_words`) and viewed back as
//! elements (`Metric::element_of_words`) for every distance.

use crate::rabitq::{Estimate, PreparedQuery};
use crate::sparse::{self, Sparse};
use crate::{Metric, Storage};
use half::f16;

/// A vector in one of the formats indexes store, viewed in place.
#[derive(Clone, Copy, Debug)]
pub enum Element<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    /// A bit string's bytes in string order, padded with zero bytes to
    /// whole 32-bit words (as pages hold it: its dimensions count words).
    Bits(&'a [u8]),
    /// A sparse vector of `dim` dimensions.
    Sparse {
        dim: u32,
        v: Sparse<'a>,
    },
    /// A RaBitQ code in stored form (`crate::rabitq::with_code`): only a
    /// `Query` carrying the query prepared for its quantizer measures it.
    Code(&'a [u8]),
}

/// An owned `Element`.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementBuf {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Bits(Vec<u8>),
    Sparse {
        dim: u32,
        indices: Vec<u32>,
        values: Vec<f32>,
    },
    Code(Vec<u8>),
}

impl<'a> From<&'a [f32]> for Element<'a> {
    fn from(v: &'a [f32]) -> Self {
        Element::F32(v)
    }
}

impl<'a> Element<'a> {
    /// What an index's dimensions count: values, 32-bit words of a bit
    /// string, a sparse vector's type dimensions.
    pub fn dims(&self) -> usize {
        match self {
            Element::F32(v) => v.len(),
            Element::F16(v) => v.len(),
            Element::Bits(b) => b.len().div_ceil(4),
            Element::Sparse { dim, .. } => *dim as usize,
            // the code's bits (its dimensions depend on its bits per level)
            Element::Code(b) => b.len().saturating_sub(crate::rabitq::FACTOR_BYTES) * 8,
        }
    }

    /// Whether two vectors are the same by their bytes (a NaN pattern in a
    /// float equals itself here, as pgvector compares datums).
    pub fn same(&self, other: &Element) -> bool {
        use bytemuck::cast_slice as bytes;
        match (self, other) {
            (Element::F32(a), Element::F32(b)) => bytes::<f32, u8>(a) == bytes::<f32, u8>(b),
            (Element::F16(a), Element::F16(b)) => bytes::<f16, u8>(a) == bytes::<f16, u8>(b),
            (Element::Bits(a), Element::Bits(b)) | (Element::Code(a), Element::Code(b)) => a == b,
            (Element::Sparse { dim: da, v: a }, Element::Sparse { dim: db, v: b }) => {
                da == db
                    && a.indices == b.indices
                    && bytes::<f32, u8>(a.values) == bytes::<f32, u8>(b.values)
            }
            _ => false,
        }
    }

    pub fn to_buf(&self) -> ElementBuf {
        match *self {
            Element::F32(v) => ElementBuf::F32(v.to_vec()),
            Element::F16(v) => ElementBuf::F16(v.to_vec()),
            Element::Bits(b) => ElementBuf::Bits(b.to_vec()),
            Element::Sparse { dim, v } => ElementBuf::Sparse {
                dim,
                indices: v.indices.to_vec(),
                values: v.values.to_vec(),
            },
            Element::Code(b) => ElementBuf::Code(b.to_vec()),
        }
    }

    /// Appends the vector in the word form it is held in memory
    /// (`Metric::element_of_words`): dense values as f32, a bit string 32
    /// bits to a word (zero-padded), a sparse vector as
    /// `[dim, nnz, indices, values]` (`crate::sparse`).
    pub fn append_words(&self, out: &mut Vec<f32>) {
        match *self {
            Element::F32(v) => out.extend_from_slice(v),
            Element::F16(v) => out.extend(v.iter().map(|x| x.to_f32())),
            Element::Bits(b) | Element::Code(b) => out.extend(b.chunks(4).map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                f32::from_bits(u32::from_ne_bytes(w))
            })),
            Element::Sparse { dim, v } => sparse::to_words(dim, v, out),
        }
    }

    /// The dense values as f32 (binary16 widens exactly); None for bit
    /// strings and sparse vectors.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match *self {
            Element::F32(v) => Some(v.to_vec()),
            Element::F16(v) => Some(v.iter().map(|x| x.to_f32()).collect()),
            Element::Bits(_) | Element::Sparse { .. } | Element::Code(_) => None,
        }
    }
}

impl ElementBuf {
    pub fn as_element(&self) -> Element<'_> {
        match self {
            ElementBuf::F32(v) => Element::F32(v),
            ElementBuf::F16(v) => Element::F16(v),
            ElementBuf::Bits(b) => Element::Bits(b),
            ElementBuf::Sparse {
                dim,
                indices,
                values,
            } => Element::Sparse {
                dim: *dim,
                v: Sparse { indices, values },
            },
            ElementBuf::Code(b) => Element::Code(b),
        }
    }
}

/// A query prepared for one index (`Metric::prepare`d, so unit length for
/// cosine): what searches compare stored elements with. For an index of
/// RaBitQ codes it also carries the query prepared for the index's
/// quantizer (`with_code`), built once per search.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    metric: Metric,
    vector: Element<'a>,
    code: Option<&'a PreparedQuery>,
}

impl<'a> Query<'a> {
    /// `vector` must be prepared for `metric` already.
    pub fn new(metric: Metric, vector: Element<'a>) -> Self {
        Query {
            metric,
            vector,
            code: None,
        }
    }

    /// The query with its form for codes (`Quantizer::prepare` of the same
    /// vector), which distances to `Element::Code`s use.
    pub fn with_code(self, code: Option<&'a PreparedQuery>) -> Self {
        Query { code, ..self }
    }

    /// Its form for codes, if it has one.
    pub fn code(&self) -> Option<&'a PreparedQuery> {
        self.code
    }

    /// The estimated distance to a code, in this metric's order (squared
    /// L2, negative inner product), with its error bound; None for a
    /// metric codes do not serve, a query without its code form, or bytes
    /// that are not a whole code.
    pub fn estimate(&self, code: &[u8]) -> Option<Estimate> {
        let p = self.code?;
        let metric = self.metric;
        crate::rabitq::with_code(code, |bits, f| match metric {
            Metric::L2 => Some(p.l2_squared(bits, f)),
            Metric::InnerProduct | Metric::Cosine => {
                let e = p.inner_product(bits, f);
                Some(Estimate {
                    value: -e.value,
                    error: e.error,
                })
            }
            _ => None,
        })
        .flatten()
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn vector(&self) -> Element<'a> {
        self.vector
    }

    /// The distance from the query to a stored element (estimated for a
    /// code, as `estimate`'s value; infinite when the code cannot be
    /// measured).
    #[inline]
    pub fn distance(&self, e: Element) -> f32 {
        match e {
            Element::Code(b) => self.code_distance(b),
            _ => self.metric.between(self.vector, e),
        }
    }

    fn code_distance(&self, code: &[u8]) -> f32 {
        let Some(p) = self.code else {
            return f32::INFINITY;
        };
        let metric = self.metric;
        crate::rabitq::with_code(code, |bits, f| match metric {
            Metric::L2 => p.l2_squared_value(bits, f),
            Metric::InnerProduct | Metric::Cosine => -p.inner_product_value(bits, f),
            _ => f32::INFINITY,
        })
        .unwrap_or(f32::INFINITY)
    }
}

/// A query's distances to stored elements of one format, the kernel chosen
/// once: a scan over a list computes thousands, and a dispatch per element
/// (format, then metric) cost an ivfflat scan several percent of its
/// queries per second. Dense f32 queries against f32 or binary16 pages take
/// the kernel directly; every other pair goes through `Query::distance`.
#[derive(Clone, Copy)]
pub struct Scorer<'q> {
    query: Query<'q>,
    storage: Storage,
    direct: Direct<'q>,
}

#[derive(Clone, Copy)]
enum Direct<'q> {
    None,
    F32(&'q [f32], fn(&[f32], &[f32]) -> f32, f32),
    F16(&'q [f32], fn(&[f32], &[f16]) -> f32, f32),
}

impl<'q> Query<'q> {
    /// This query's distances to elements stored as `storage` keeps them.
    pub fn scorer(&self, storage: Storage) -> Scorer<'q> {
        /// The kernel of a dense metric and the sign its distance takes.
        fn pick<T>(metric: Metric, l2: T, dot: T, l1: T) -> Option<(T, f32)> {
            match metric {
                Metric::L2 => Some((l2, 1.0)),
                Metric::InnerProduct | Metric::Cosine => Some((dot, -1.0)),
                Metric::L1 => Some((l1, 1.0)),
                _ => None,
            }
        }
        let (k, m) = (crate::kernels(), self.metric);
        let direct = match (self.vector, storage) {
            (Element::F32(q), Storage::F32) => pick(m, k.l2_squared, k.dot, k.l1)
                .map_or(Direct::None, |(f, sign)| Direct::F32(q, f, sign)),
            (Element::F32(q), Storage::F16) => pick(m, k.l2_squared_mixed, k.dot_mixed, k.l1_mixed)
                .map_or(Direct::None, |(f, sign)| Direct::F16(q, f, sign)),
            _ => Direct::None,
        };
        Scorer {
            query: *self,
            storage,
            direct,
        }
    }
}

impl Scorer<'_> {
    /// The distance to an element in stored form (as `Storage::with_view`
    /// reads it).
    #[inline]
    pub fn distance(&self, bytes: &[u8]) -> f32 {
        if cfg!(target_endian = "little") {
            match self.direct {
                Direct::F32(q, f, sign) => {
                    if let Ok(v) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
                        if v.len() == q.len() {
                            return sign * f(q, v);
                        }
                    }
                }
                Direct::F16(q, f, sign) => {
                    if let Ok(v) = bytemuck::try_cast_slice::<u8, f16>(bytes) {
                        if v.len() == q.len() {
                            return sign * f(q, v);
                        }
                    }
                }
                Direct::None => {}
            }
        }
        self.storage.with_view(bytes, |e| self.query.distance(e))
    }
}

impl Metric {
    /// The distance between two vectors of formats this metric compares
    /// (see `stores_as`; a dense f32 vector compares with a binary16 one).
    /// Other pairs are a caller's bug: metapages and opclasses keep them
    /// apart.
    #[inline]
    pub fn between(self, a: Element, b: Element) -> f32 {
        use Element as E;
        match (a, b) {
            (E::F32(x), E::F32(y)) => match self {
                Metric::L2 => crate::l2_squared(x, y),
                Metric::InnerProduct | Metric::Cosine => -crate::dot(x, y),
                Metric::L1 => crate::l1(x, y),
                _ => self.mismatch(a, b),
            },
            (E::F32(x), E::F16(y)) | (E::F16(y), E::F32(x)) => match self {
                Metric::L2 => crate::l2_squared_mixed(x, y),
                Metric::InnerProduct | Metric::Cosine => -crate::dot_mixed(x, y),
                Metric::L1 => crate::l1_mixed(x, y),
                _ => self.mismatch(a, b),
            },
            (E::F16(x), E::F16(y)) => match self {
                Metric::L2 => crate::l2_squared_f16(x, y),
                Metric::InnerProduct | Metric::Cosine => -crate::dot_f16(x, y),
                Metric::L1 => crate::l1_f16(x, y),
                _ => self.mismatch(a, b),
            },
            (E::Bits(x), E::Bits(y)) => match self {
                Metric::Hamming => crate::hamming(x, y) as f32,
                Metric::Jaccard => crate::jaccard(x, y) as f32,
                _ => self.mismatch(a, b),
            },
            (E::Sparse { v: x, .. }, E::Sparse { v: y, .. }) => match self {
                Metric::SparseL2 => sparse::l2_squared(x, y),
                Metric::SparseInnerProduct | Metric::SparseCosine => -sparse::dot(x, y),
                Metric::SparseL1 => sparse::l1(x, y),
                _ => self.mismatch(a, b),
            },
            _ => self.mismatch(a, b),
        }
    }

    /// Whether this metric compares vectors of `v`'s format (the formats
    /// `between` takes for it).
    pub fn compares(self, v: Element) -> bool {
        match v {
            Element::F32(_) | Element::F16(_) => self.is_dense(),
            Element::Bits(_) => self.is_bits(),
            Element::Sparse { .. } => self.is_sparse(),
            Element::Code(_) => false,
        }
    }

    #[cold]
    fn mismatch(self, a: Element, b: Element) -> ! {
        let kind = |e: &Element| match e {
            Element::F32(_) => "f32",
            Element::F16(_) => "binary16",
            Element::Bits(_) => "bit",
            Element::Sparse { .. } => "sparse",
            Element::Code(_) => "RaBitQ code",
        };
        panic!(
            "{self:?} cannot compare a {} vector with a {} one",
            kind(&a),
            kind(&b)
        )
    }

    /// `between(query, prepare(v))` for a prepared `query` and a row `v`
    /// as it is, without the prepared copy for dense rows: the distance a
    /// re-rank measures a heap row by (for cosine `-<q, v> / |v|`, the
    /// norm from the same pass). None where `prepare` gives None (a zero
    /// row under cosine).
    pub fn between_unprepared(self, query: Element, v: Element) -> Option<f32> {
        match (self, query, v) {
            (
                Metric::L2 | Metric::InnerProduct,
                Element::F32(_),
                Element::F32(_) | Element::F16(_),
            ) => Some(self.between(query, v)),
            (Metric::Cosine, Element::F32(q), Element::F32(x)) if q.len() == x.len() => {
                let (dot, norm_sq) = crate::dot_and_norm(x, q);
                let norm = (norm_sq as f64).sqrt();
                (norm > 0.0 && norm.is_finite()).then(|| -((dot as f64 / norm) as f32))
            }
            (Metric::Cosine, Element::F32(q), Element::F16(x)) if q.len() == x.len() => {
                let dot = crate::dot_mixed(q, x);
                let norm = (crate::dot_f16(x, x) as f64).sqrt();
                (norm > 0.0 && norm.is_finite()).then(|| -((dot as f64 / norm) as f32))
            }
            _ => Some(self.between(query, self.prepare(v)?.as_element())),
        }
    }

    /// The form a vector is stored and searched in: unit length for cosine
    /// (computed in f64), dense values as f32, bit strings padded to whole
    /// words. None for a vector cosine cannot order (zero norm): such rows
    /// are not indexed, as in pgvector.
    pub fn prepare(self, v: Element) -> Option<ElementBuf> {
        match v {
            Element::F32(_) | Element::F16(_) => {
                let mut x = v.to_f32().expect("dense");
                if matches!(self, Metric::Cosine) {
                    let norm = crate::scalar::norm_f64(&x);
                    if norm == 0.0 || !norm.is_finite() {
                        return None;
                    }
                    x.iter_mut().for_each(|e| *e = (*e as f64 / norm) as f32);
                }
                Some(ElementBuf::F32(x))
            }
            Element::Bits(b) => {
                let mut bytes = b.to_vec();
                bytes.resize(b.len().div_ceil(4) * 4, 0);
                Some(ElementBuf::Bits(bytes))
            }
            Element::Sparse { dim, v } => {
                let mut values = v.values.to_vec();
                if self == Metric::SparseCosine {
                    let norm = sparse::norm_f64(v);
                    if norm == 0.0 || !norm.is_finite() {
                        return None;
                    }
                    values
                        .iter_mut()
                        .for_each(|e| *e = (*e as f64 / norm) as f32);
                }
                Some(ElementBuf::Sparse {
                    dim,
                    indices: v.indices.to_vec(),
                    values,
                })
            }
            Element::Code(b) => Some(ElementBuf::Code(b.to_vec())),
        }
    }
}

impl Storage {
    /// Rounds a prepared vector to what storing it keeps (binary16 values
    /// for `F16`, held as f32), so that distances computed before storing
    /// (an in-memory build, an insert's search) equal those after.
    pub fn round_buf(self, v: &mut ElementBuf) {
        if let (Storage::F16, ElementBuf::F32(x)) = (self, v) {
            self.round(x);
        }
    }

    /// Appends `v` in stored form (little-endian): dense values as f32 or
    /// binary16, a bit string's bytes, a sparse vector as its dimensions,
    /// count, indices and values in 32-bit words.
    pub fn encode_element(self, v: Element, out: &mut Vec<u8>) {
        match (self, v) {
            (Storage::F32 | Storage::F16, Element::F32(x)) => self.encode(x, out),
            (Storage::F16, Element::F16(x)) => x
                .iter()
                .for_each(|h| out.extend_from_slice(&h.to_le_bytes())),
            (Storage::F32, Element::F16(x)) => x
                .iter()
                .for_each(|h| out.extend_from_slice(&h.to_f32().to_le_bytes())),
            (Storage::Bits, Element::Bits(b)) => {
                out.extend_from_slice(b);
                out.resize(out.len() + (4 - b.len() % 4) % 4, 0);
            }
            (Storage::Sparse, Element::Sparse { dim, v }) => {
                out.extend_from_slice(&dim.to_le_bytes());
                out.extend_from_slice(&(v.indices.len() as u32).to_le_bytes());
                v.indices
                    .iter()
                    .for_each(|i| out.extend_from_slice(&i.to_le_bytes()));
                v.values
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            (s, v) => panic!("{s:?} storage cannot hold {v:?}"),
        }
    }

    /// Calls `f` with stored bytes viewed as an element: in place when they
    /// are aligned for their type (as on a page), else from a copy. A
    /// malformed sparse vector reads as the empty one (pages are checked
    /// where they are read).
    #[inline]
    pub fn with_view<R>(self, bytes: &[u8], f: impl FnOnce(Element) -> R) -> R {
        let little = cfg!(target_endian = "little");
        match self {
            Storage::F32 => match bytemuck::try_cast_slice::<u8, f32>(bytes) {
                Ok(v) if little => f(Element::F32(v)),
                _ => f(Element::F32(&read_words::<f32>(bytes))),
            },
            Storage::F16 => match bytemuck::try_cast_slice::<u8, f16>(bytes) {
                Ok(v) if little => f(Element::F16(v)),
                _ => {
                    let v: Vec<f16> = bytes
                        .chunks_exact(2)
                        .map(|c| f16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    f(Element::F16(&v))
                }
            },
            Storage::Bits => f(Element::Bits(bytes)),
            Storage::RaBitQ => f(Element::Code(bytes)),
            Storage::Sparse => {
                let word = |i: usize| {
                    bytes
                        .get(4 * i..4 * i + 4)
                        .map_or(0, |c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                };
                let (dim, nnz) = (word(0), word(1) as usize);
                let whole = bytes.len().is_multiple_of(4)
                    && bytes.len() / 4 == sparse::words(nnz)
                    && bytes.len() >= 4 * sparse::WORDS_HEADER;
                if !whole {
                    let v = Sparse {
                        indices: &[],
                        values: &[],
                    };
                    return f(Element::Sparse { dim, v });
                }
                let (ib, vb) = bytes[4 * sparse::WORDS_HEADER..].split_at(4 * nnz);
                match (
                    bytemuck::try_cast_slice::<u8, u32>(ib),
                    bytemuck::try_cast_slice::<u8, f32>(vb),
                ) {
                    (Ok(indices), Ok(values)) if little => f(Element::Sparse {
                        dim,
                        v: Sparse { indices, values },
                    }),
                    _ => {
                        let (indices, values) = (read_words::<u32>(ib), read_words::<f32>(vb));
                        let v = Sparse {
                            indices: &indices,
                            values: &values,
                        };
                        f(Element::Sparse { dim, v })
                    }
                }
            }
        }
    }
}

/// Little-endian 32-bit words, copied out of unaligned bytes.
fn read_words<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    bytes
        .chunks_exact(4)
        .map(|c| bytemuck::cast(u32::from_le_bytes(c.try_into().expect("4 bytes"))))
        .collect()
}

/// The word form builds and inserts keep vectors in (32-bit words; see
/// the module docs), viewed as elements for every distance.
impl Metric {
    /// The distance between two vectors in the word form this metric's
    /// element format is held in memory (`element_of_words`).
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        self.between(self.element_of_words(a), self.element_of_words(b))
    }

    /// Views a vector held in words as the element it is: dense values,
    /// a bit string's bytes (32 to a word, in string order) or a sparse
    /// vector (`crate::sparse`'s word form). Builds and inserts keep their
    /// vectors so; every distance is computed on the element.
    #[inline]
    pub fn element_of_words(self, w: &[f32]) -> crate::Element<'_> {
        if self.is_bits() {
            crate::Element::Bits(bits(w))
        } else if self.is_sparse() {
            crate::Element::Sparse {
                dim: sparse::dim_of(w),
                v: sparse::from_words(w),
            }
        } else {
            crate::Element::F32(w)
        }
    }

    /// `prepare` for a vector held in words (`element_of_words`).
    pub fn prepare_words(self, v: &[f32]) -> Option<Vec<f32>> {
        match self.prepare(self.element_of_words(v))? {
            ElementBuf::F32(x) => Some(x), // dense: the prepared values are the words
            other => {
                let mut out = Vec::with_capacity(v.len());
                other.as_element().append_words(&mut out);
                Some(out)
            }
        }
    }

    /// `distance(query, v)` for a query in words and a `v` in stored form,
    /// read in place when the bytes are aligned for their element type (as
    /// on a page).
    #[inline]
    pub fn distance_stored(self, storage: Storage, query: &[f32], bytes: &[u8]) -> f32 {
        let q = self.element_of_words(query);
        storage.with_view(bytes, |v| self.between(q, v))
    }
}

impl Storage {
    /// Appends a stored vector to `out` in the word form it is held in
    /// memory (`Metric::element_of_words`).
    pub fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        self.with_view(bytes, |e| e.append_words(out))
    }
}

/// The bytes of a bit string held in words.
#[inline]
fn bits(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}
