//! The `hnsw` index access method: glue between Postgres' index AM API and
//! the graph algorithms of `crates/hnsw`, which work on `BufferStore` pages.

mod build;
mod cost;
mod insert;
mod options;
mod rerank;
mod scan;
mod vacuum;

pub use options::*;

use crate::am;
use crate::storage::BufferStore;
use distance::Element;
use hnsw::format::Meta;
use hnsw::Metric;
use pagestore::PageStore;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;

/// # Safety
/// `index` must be a valid, open hnsw index relation.
unsafe fn opclass_metric(index: pg_sys::Relation) -> (Metric, hnsw::Storage) {
    // SAFETY: per the contract.
    unsafe { am::opclass_metric(index, "hnsw") }
}

/// The metric an index orders by, the format of the values it is given
/// (its column's type) and the format its pages store (the `storage`
/// reloption: `'halfvec'` stores vector values in binary16; the
/// `quantization` reloption: `'rabitq'` stores codes).
#[derive(Clone, Copy, Debug)]
struct Formats {
    metric: Metric,
    input: hnsw::Storage,
    stored: hnsw::Storage,
    /// Bits per dimension of codes (`stored` is `RaBitQ`), else 0.
    bits: u32,
}

/// The seed of the rotation of every index of RaBitQ codes: any seed
/// gives a random rotation, and one seed for all keeps builds
/// reproducible (the metapage records it, so it may change).
const ROTATION_SEED: u64 = 0x5658_5251_0000_0001;

/// # Safety
/// `index` must be a valid, open hnsw index relation.
unsafe fn index_formats(index: pg_sys::Relation) -> Formats {
    use hnsw::Storage;
    // SAFETY: per the contract.
    let (metric, input) = unsafe { opclass_metric(index) };
    // SAFETY: per the contract.
    let (storage, quantization, bits) = unsafe {
        (
            storage_option(index),
            quantization_option(index),
            bits_option(index),
        )
    };
    if quantization != QUANTIZATION_RABITQ && bits != BITS_UNSET {
        am::error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "bits is only for quantization \"rabitq\"".into(),
            None,
        );
    }
    if quantization == QUANTIZATION_RABITQ {
        let bits = match bits {
            BITS_UNSET => DEFAULT_BITS,
            b if distance::rabitq::SUPPORTED_BITS.contains(&(b as u32)) => b as u32,
            _ => am::error(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "bits must be 1 or 4 for quantization \"rabitq\"".into(),
                None,
            ),
        };
        if storage == STORAGE_HALFVEC {
            am::error(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "storage \"halfvec\" cannot be combined with quantization".into(),
                Some("A quantized index re-ranks by the rows' own vectors."),
            );
        }
        let dense = matches!(input, Storage::F32 | Storage::F16);
        if !dense || !matches!(metric, Metric::L2 | Metric::InnerProduct | Metric::Cosine) {
            am::error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "quantization \"rabitq\" is only for vector and halfvec columns with L2, inner product or cosine distance".into(),
                None,
            );
        }
        return Formats {
            metric,
            input,
            stored: Storage::RaBitQ,
            bits,
        };
    }
    let stored = match (storage, input) {
        (STORAGE_HALFVEC, Storage::F32 | Storage::F16) => Storage::F16,
        (STORAGE_HALFVEC, _) => am::error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "storage \"halfvec\" is only for vector and halfvec columns".into(),
            None,
        ),
        _ => input,
    };
    Formats {
        metric,
        input,
        stored,
        bits: 0,
    }
}

/// pgvector's checks of a value the index takes: the index's dimensions,
/// and for a sparse vector the non-zeros one element can hold on a page.
fn check_value(v: Element, dims: usize, stored: hnsw::Storage) {
    am::expect_dims(v, dims);
    // storage = 'halfvec': what a cast to halfvec refuses
    if let (hnsw::Storage::F16, Element::F32(x)) = (stored, v) {
        if let Err(e) = x
            .iter()
            .try_for_each(|e| vecfmt::f32_to_f16("halfvec", *e).map(|_| ()))
        {
            crate::error::raise(e);
        }
    }
    let most = hnsw::format::max_sparse_nnz();
    if matches!(v, Element::Sparse { v, .. } if v.indices.len() > most) {
        am::error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("sparsevec cannot have more than {most} non-zero elements for hnsw index"),
            None,
        );
    }
}

/// Reads the metapage of an open index.
fn read_meta(store: &BufferStore) -> Meta {
    if store.nblocks() == 0 {
        am::corrupted_index(
            store.relation(),
            pagestore::Corrupt("index has no metapage".into()),
        );
    }
    store
        .read(0, Meta::decode)
        .unwrap_or_else(|e| am::corrupted_index(store.relation(), e))
}

/// Seed of the level each element gets (mixed with its heap TID).
const LEVEL_SEED: u64 = 0x5658_484E_5357_0001;

am::am_handler!(pg_finfo_vx_hnsw_handler, vx_hnsw_handler, 3);
