//! vector_ext: vector similarity search for PostgreSQL, SQL-compatible with
//! pgvector. This crate is the thin pgrx glue; algorithms live in crates/.

#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod fmgr;
mod types;

::pgrx::pg_module_magic!();

// The whole SQL surface, written by hand to match pgvector name for name.
::pgrx::extension_sql_file!("../sql/vector_ext.sql", name = "vector_ext_sql", bootstrap);
