//! How an index's vectors are held on its pages (`Codec`): as they are,
//! in the metapage's `Storage`, or as RaBitQ codes (`Storage::RaBitQ`),
//! made with a quantizer the metapage defines (its dimensions and seed).
//! Every writer encodes through it and every reader decodes through it, and
//! searches measure codes with a query carrying its form for the quantizer
//! (`PreparedQuery`, built by `Codec::query`).
//!
//! Codes are made around a center: the mean of the rows a build wrote
//! (kept on pages of its own, `format::center_tuples`), or the zero vector
//! for an index built empty. Rows far from the origin need it: inner
//! products of rows shifted off it lost a tenth of their recall at the same
//! window around zero (`tests::quantized`); on the 384-d set of unit
//! vectors it moves less (0.969 against 0.986 of the true top 10 among the
//! 40 best estimates).

use crate::format::{read_center_page, Meta, CENTER_PER_PAGE};
use distance::rabitq::{PreparedQuery, Quantizer};
use distance::{Element, ElementBuf, Metric, Query, Storage};
use pagestore::{Corrupt, PageStore};

/// The encoding of one index's vectors.
#[derive(Clone, Debug)]
pub enum Codec {
    /// Vectors as the storage holds them (f32, binary16, bits, sparse).
    Plain(Storage),
    /// RaBitQ codes (`Storage::RaBitQ`).
    Quantized(Box<Quantizer>),
}

impl Codec {
    /// The codec of vectors of `dims` in `storage`, codes of `bits` per
    /// dimension made around `center` (zero when None) and rotated with
    /// `seed` (all unused by other storages).
    pub fn new(
        storage: Storage,
        dims: usize,
        seed: u64,
        bits: u32,
        center: Option<Vec<f32>>,
    ) -> Codec {
        if storage.is_quantized() {
            let center = center.unwrap_or_else(|| vec![0.0; dims.max(1)]);
            assert_eq!(
                center.len(),
                dims.max(1),
                "a center of the vectors' dimensions"
            );
            Codec::Quantized(Box::new(Quantizer::with_bits(center, seed, bits)))
        } else {
            Codec::Plain(storage)
        }
    }

    /// The codec of the index in `store`, whose metapage is `meta` (its
    /// center read from its pages).
    pub fn open<S: PageStore>(store: &S, meta: &Meta) -> Result<Codec, Corrupt> {
        let dims = meta.dims as usize;
        let center = if meta.storage.is_quantized() && meta.center != 0 {
            let mut c = Vec::with_capacity(dims);
            let pages = dims.div_ceil(CENTER_PER_PAGE);
            for i in 0..pages {
                let block = meta
                    .center
                    .checked_add(i as u32)
                    .filter(|b| store.contains(*b));
                let Some(block) = block else {
                    return Err(Corrupt(format!(
                        "the center's page {i} lies past the index"
                    )));
                };
                store.read(block, |p| read_center_page(p, block, i, &mut c))?;
            }
            if c.len() != dims || c.iter().any(|x| !x.is_finite()) {
                return Err(Corrupt(format!(
                    "a center of {} values where {dims} belong, or not finite",
                    c.len()
                )));
            }
            Some(c)
        } else {
            None
        };
        Ok(Codec::new(
            meta.storage,
            dims,
            meta.seed,
            meta.bits as u32,
            center,
        ))
    }

    pub fn storage(&self) -> Storage {
        match self {
            Codec::Plain(s) => *s,
            Codec::Quantized(_) => Storage::RaBitQ,
        }
    }

    /// Appends the stored form of a prepared vector held in words
    /// (`Metric::element_of_words`) to `out`.
    pub fn encode(&self, words: &[f32], out: &mut Vec<u8>) {
        match self {
            Codec::Plain(s) => s.encode(words, out),
            Codec::Quantized(q) => q.encode_bytes(words, &mut Vec::new(), out),
        }
    }

    /// The stored form of a prepared vector held in words.
    pub fn encoded(&self, words: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(words, &mut out);
        out
    }

    /// Appends a stored vector to `out` in the words inserts and VACUUM
    /// hold it in: as it is (`Storage::decode`), or a code's bytes as they
    /// are, which `distance` and `query_stored` read.
    pub fn decode(&self, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), Corrupt> {
        match self {
            Codec::Plain(s) => s.decode(bytes, out),
            Codec::Quantized(q) => {
                let want = q.code_bytes();
                if bytes.len() != want {
                    return Err(Corrupt(format!(
                        "a code of {} bytes where {want} belong",
                        bytes.len()
                    )));
                }
                Element::Code(bytes).append_words(out);
            }
        }
        Ok(())
    }

    /// A new vector (prepared, in words) in the form `decode` gives for
    /// stored ones.
    pub fn held(&self, words: &[f32]) -> Vec<f32> {
        match self {
            Codec::Plain(_) => words.to_vec(),
            Codec::Quantized(_) => {
                let mut out = Vec::new();
                Element::Code(&self.encoded(words)).append_words(&mut out);
                out
            }
        }
    }

    /// The distance between two vectors held as `decode` gives them
    /// (estimated from both codes in an index of codes).
    pub fn distance(&self, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Codec::Plain(_) => metric.distance(a, b),
            // the code's bytes, as `decode` put them into words
            Codec::Quantized(_) => {
                self.between_codes(metric, bytemuck::cast_slice(a), bytemuck::cast_slice(b))
            }
        }
    }

    /// Two stored codes' estimated distance in `metric`'s order (squared
    /// L2, negative inner product; `Quantizer::between_codes`), infinite
    /// when they cannot be compared or the codec holds no codes.
    pub fn between_codes(&self, metric: Metric, a: &[u8], b: &[u8]) -> f32 {
        let Codec::Quantized(q) = self else {
            return f32::INFINITY;
        };
        match q.between_codes(a, b) {
            Some(e) if metric == Metric::L2 => e.l2_squared,
            Some(e) => -e.inner_product,
            None => f32::INFINITY,
        }
    }

    /// A prepared vector in words as a search's query, with its form for
    /// codes when the pages hold codes.
    pub fn query(&self, metric: Metric, words: &[f32]) -> OwnedQuery {
        self.query_of(metric, metric.element_of_words(words))
    }

    /// `query` for a prepared vector viewed as an element.
    pub fn query_of(&self, metric: Metric, vector: Element) -> OwnedQuery {
        let code = match (self, vector) {
            (Codec::Quantized(q), Element::F32(v)) => Some(q.prepare(v)),
            (Codec::Quantized(q), Element::F16(v)) => {
                Some(q.prepare(&v.iter().map(|x| x.to_f32()).collect::<Vec<_>>()))
            }
            _ => None,
        };
        OwnedQuery {
            metric,
            vector: vector.to_buf(),
            code,
        }
    }

    /// A vector held as `decode` gives it (an element read from a page) as
    /// a search's query: for a code, the vector it points at
    /// (`Quantizer::direction_bytes`).
    pub fn query_stored(&self, metric: Metric, words: &[f32]) -> Result<OwnedQuery, Corrupt> {
        match self {
            Codec::Plain(_) => Ok(self.query(metric, words)),
            Codec::Quantized(q) => {
                let bytes: Vec<u8> = words.iter().flat_map(|x| x.to_ne_bytes()).collect();
                let mut v = Vec::with_capacity(q.rotation().dims());
                if !q.direction_bytes(&bytes, &mut v) {
                    return Err(Corrupt(format!("a code of {} bytes", bytes.len())));
                }
                Ok(self.query(metric, &v))
            }
        }
    }
}

/// A query and (for codes) its prepared form, owned together; `query()`
/// lends the `Query` searches take.
#[derive(Clone, Debug)]
pub struct OwnedQuery {
    metric: Metric,
    vector: ElementBuf,
    code: Option<PreparedQuery>,
}

impl OwnedQuery {
    pub fn query(&self) -> Query<'_> {
        Query::new(self.metric, self.vector.as_element()).with_code(self.code.as_ref())
    }
}
