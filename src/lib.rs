//! vector_ext: vector similarity search for PostgreSQL, SQL-compatible with
//! pgvector. This crate is the thin pgrx glue; algorithms live in crates/.

#![deny(unsafe_op_in_unsafe_fn)]

mod am;
mod check;
mod error;
mod fmgr;
mod hnsw;
mod ivf;
mod pg_compat;
mod planner;
mod storage;
mod types;

::pgrx::pg_module_magic!();

// The whole SQL surface, written by hand to match pgvector name for name.
::pgrx::extension_sql_file!("../sql/vector_ext.sql", name = "vector_ext_sql", bootstrap);

/// Registers index options and settings when the library is loaded.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    hnsw::init();
    ivf::init();
}
