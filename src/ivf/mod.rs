//! The `ivfflat` index access method: glue between Postgres' index AM API
//! and the inverted lists of `crates/ivf`, which work on `BufferStore`
//! pages.

mod build;
mod cost;
mod insert;
mod options;
mod scan;
mod vacuum;

pub use options::*;

use crate::am;
use crate::storage::BufferStore;
use distance::Metric;
use ivf::format::Meta;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;

/// # Safety
/// `index` must be a valid, open ivfflat index relation.
unsafe fn opclass_metric(index: pg_sys::Relation) -> (Metric, distance::Storage) {
    // SAFETY: per the contract.
    let (metric, storage) = unsafe { am::opclass_metric(index, "ivfflat") };
    if metric.is_sparse() {
        // no ivfflat opclass orders sparsevec (none in pgvector either)
        am::error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "type not supported for ivfflat index".into(),
            None,
        );
    }
    (metric, storage)
}

/// Reads the metapage of an open index.
fn read_meta(store: &BufferStore) -> Meta {
    ivf::lists::read_meta(store).unwrap_or_else(|e| am::corrupted_index(store.relation(), e))
}

am::am_handler!(pg_finfo_vx_ivfflat_handler, vx_ivfflat_handler, 5);
