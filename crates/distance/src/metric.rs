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
}

impl Metric {
    /// The byte index metapages store the metric as.
    pub fn code(self) -> u8 {
        match self {
            Metric::L2 => 1,
            Metric::InnerProduct => 2,
            Metric::Cosine => 3,
            Metric::L1 => 4,
        }
    }

    pub fn from_code(c: u8) -> Option<Metric> {
        Some(match c {
            1 => Metric::L2,
            2 => Metric::InnerProduct,
            3 => Metric::Cosine,
            4 => Metric::L1,
            _ => return None,
        })
    }

    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => crate::l2_squared(a, b),
            Metric::InnerProduct | Metric::Cosine => -crate::dot(a, b),
            Metric::L1 => crate::l1(a, b),
        }
    }

    /// The form a vector is stored and searched in: unit length for cosine.
    /// Returns None for a vector cosine cannot order (zero norm): such rows
    /// are not indexed, as in pgvector.
    pub fn prepare(self, v: &[f32]) -> Option<Vec<f32>> {
        if self != Metric::Cosine {
            return Some(v.to_vec());
        }
        let norm = crate::scalar::norm_f64(v);
        if norm == 0.0 || !norm.is_finite() {
            return None;
        }
        Some(v.iter().map(|x| (*x as f64 / norm) as f32).collect())
    }
}
