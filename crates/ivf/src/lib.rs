//! IVFFlat: vectors grouped into lists around k-means centers, each list a
//! chain of pages; a search ranks the centers and scans the nearest lists.
//!
//! Pure algorithms over `pagestore::PageStore`, no Postgres dependency:
//! `kmeans` (seeding, bounded Lloyd iterations on a rayon pool), `format`
//! (every page and tuple layout), `lists` (reading lists and their chains),
//! `build` (writing lists), `insert`, `scan`, `vacuum` and `check`.

#![forbid(unsafe_code)]

pub mod build;
pub mod check;
pub mod format;
pub mod insert;
pub mod kmeans;
pub mod lists;
pub mod scan;
pub mod vacuum;

pub use distance::{Metric, Storage};

#[cfg(test)]
mod tests;
