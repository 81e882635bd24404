/// How the index orders vectors. Cosine is stored as unit vectors and
/// searched by inner product, so every metric is one kernel call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Squared Euclidean distance (same order as `<->`).
    L2,
    /// Negative inner product (`<#>`).
    InnerProduct,
    /// Negative inner product of unit vectors (same order as `<=>`).
    Cosine,
    /// Taxicab distance (`<+>`).
    L1,
    /// Hamming distance of bit strings (`<~>`), stored as `Storage::Bits`.
    Hamming,
    /// Jaccard distance of bit strings (`<%>`), stored as `Storage::Bits`.
    Jaccard,
    /// `L2`, `InnerProduct`, `Cosine` and `L1` of sparse vectors, carried
    /// in the word form of `crate::sparse` (`Storage::Sparse`).
    SparseL2,
    SparseInnerProduct,
    SparseCosine,
    SparseL1,
}

impl Metric {
    /// Its name in reports (`vector_ext_index_stats`): the distance, of
    /// dense and sparse vectors alike.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 | Metric::SparseL2 => "l2",
            Metric::InnerProduct | Metric::SparseInnerProduct => "inner_product",
            Metric::Cosine | Metric::SparseCosine => "cosine",
            Metric::L1 | Metric::SparseL1 => "l1",
            Metric::Hamming => "hamming",
            Metric::Jaccard => "jaccard",
        }
    }

    /// The byte index metapages store the metric as.
    pub fn code(self) -> u8 {
        match self {
            Metric::L2 => 1,
            Metric::InnerProduct => 2,
            Metric::Cosine => 3,
            Metric::L1 => 4,
            Metric::Hamming => 5,
            Metric::Jaccard => 6,
            Metric::SparseL2 => 7,
            Metric::SparseInnerProduct => 8,
            Metric::SparseCosine => 9,
            Metric::SparseL1 => 10,
        }
    }

    pub fn from_code(c: u8) -> Option<Metric> {
        Some(match c {
            1 => Metric::L2,
            2 => Metric::InnerProduct,
            3 => Metric::Cosine,
            4 => Metric::L1,
            5 => Metric::Hamming,
            6 => Metric::Jaccard,
            7 => Metric::SparseL2,
            8 => Metric::SparseInnerProduct,
            9 => Metric::SparseCosine,
            10 => Metric::SparseL1,
            _ => return None,
        })
    }

    /// Whether vectors are sparse, in the word form of `crate::sparse`.
    pub fn is_sparse(self) -> bool {
        matches!(
            self,
            Metric::SparseL2 | Metric::SparseInnerProduct | Metric::SparseCosine | Metric::SparseL1
        )
    }

    /// The metric and storage an index's metapage records by code, when
    /// both are known and go together; else what is wrong, in words.
    pub fn from_codes(metric: u8, storage: u8) -> Result<(Metric, Storage), String> {
        let m = Metric::from_code(metric)
            .ok_or_else(|| format!("unknown metric code {metric} in metapage"))?;
        let s = Storage::from_code(storage)
            .ok_or_else(|| format!("unknown storage code {storage} in metapage"))?;
        if !m.stores_as(s) {
            return Err(format!("metapage pairs metric {m:?} with storage {s:?}"));
        }
        Ok((m, s))
    }

    /// Whether vectors ordered by this metric can be stored so (bit and
    /// sparse metrics need their own storage, the others f32 or binary16).
    pub fn stores_as(self, storage: Storage) -> bool {
        if self.is_bits() {
            storage == Storage::Bits
        } else if self.is_sparse() {
            storage == Storage::Sparse
        } else {
            matches!(storage, Storage::F32 | Storage::F16)
                || (storage == Storage::RaBitQ
                    && matches!(self, Metric::L2 | Metric::InnerProduct | Metric::Cosine))
        }
    }

    /// Whether vectors are dense (f32 or binary16 values).
    pub fn is_dense(self) -> bool {
        !self.is_bits() && !self.is_sparse()
    }

    /// Whether vectors are bit strings carried in f32 words (no arithmetic
    /// on them is meaningful).
    pub fn is_bits(self) -> bool {
        matches!(self, Metric::Hamming | Metric::Jaccard)
    }
}

/// How an index stores vectors on its pages: f32 (vector columns) or IEEE
/// binary16 (halfvec columns, half the space). Queries stay f32; a halfvec
/// query converts to f32 exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Storage {
    #[default]
    F32,
    F16,
    /// Bit strings, 32 bits to a word, each word's bytes in the string's
    /// order (carried as f32 bit patterns, never computed with).
    Bits,
    /// Sparse vectors in the word form of `crate::sparse`, stored word for
    /// word: their length varies from vector to vector.
    Sparse,
    /// RaBitQ codes of dense vectors (`crate::rabitq`): one bit per
    /// rotated dimension and the code's factors. Encoding and decoding need
    /// the index's `rabitq::Quantizer` (its rotation and center), so they
    /// go through it, never through `encode` or `decode` here; distances
    /// to a code are estimates, computed by a `Query` carrying the query
    /// prepared for the quantizer (`Query::with_code`).
    RaBitQ,
}

impl Storage {
    /// Its name in reports (`vector_ext_index_stats`).
    pub fn name(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::Bits => "bits",
            Storage::Sparse => "sparse",
            Storage::RaBitQ => "rabitq",
        }
    }

    /// The byte metapages store it as (0 for f32, so metapages written
    /// before halfvec support read as f32).
    pub fn code(self) -> u8 {
        match self {
            Storage::F32 => 0,
            Storage::F16 => 1,
            Storage::Bits => 2,
            Storage::Sparse => 3,
            Storage::RaBitQ => 4,
        }
    }

    pub fn from_code(c: u8) -> Option<Storage> {
        match c {
            0 => Some(Storage::F32),
            1 => Some(Storage::F16),
            2 => Some(Storage::Bits),
            3 => Some(Storage::Sparse),
            4 => Some(Storage::RaBitQ),
            _ => None,
        }
    }

    /// Bytes one element takes (for codes, the alignment their bytes
    /// need: 1; their size is `bytes`).
    pub fn element_size(self) -> usize {
        match self {
            Storage::F32 | Storage::Bits | Storage::Sparse => 4,
            Storage::F16 => 2,
            Storage::RaBitQ => 1,
        }
    }

    /// Whether vectors take as many bytes as their dimensions say (all
    /// but sparse ones, whose words vary with their non-zeros).
    pub fn fixed_length(self) -> bool {
        self != Storage::Sparse
    }

    /// Bytes a vector of `dims` elements (words, for `Sparse`) takes.
    pub fn bytes(self, dims: usize) -> usize {
        match self {
            // a code's size depends on its bits too (`rabitq::code_bytes`);
            // indexes of codes ask their quantizer
            Storage::RaBitQ => {
                unreachable!("the size of a code of {dims} dimensions needs its bits")
            }
            _ => self.element_size() * dims,
        }
    }

    /// Whether stored vectors are codes whose distances are estimates.
    pub fn is_quantized(self) -> bool {
        self == Storage::RaBitQ
    }

    /// Rounds `v` to what storing it keeps, so that distances computed
    /// before storing (an in-memory build) equal those computed after.
    pub fn round(self, v: &mut [f32]) {
        if self == Storage::F16 {
            for x in v {
                *x = half::f16::from_f32(*x).to_f32();
            }
        }
    }

    /// Appends `v` in stored form (little-endian).
    pub fn encode(self, v: &[f32], out: &mut Vec<u8>) {
        match self {
            Storage::F32 | Storage::Bits | Storage::Sparse => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Storage::F16 => v
                .iter()
                .for_each(|x| out.extend_from_slice(&half::f16::from_f32(*x).to_le_bytes())),
            Storage::RaBitQ => panic!("codes are encoded by their rabitq::Quantizer"),
        }
    }
}
