//! HNSW graph algorithms, independent of Postgres.
//!
//! `search` works on any `Graph` (the in-memory build graph here, pages of an
//! index through `page_graph::PageGraph::walk`), so the code that answers
//! queries is the code the tests check against brute force. `BuildGraph`
//! builds a graph in memory with rayon threads doing pure computation only;
//! the caller's thread gets control between batches (to check for
//! interrupts and report progress).
//!
//! Layout: `format` owns every page and tuple layout (no byte offset of a
//! tuple outside it); `select` the heuristics every writer shares (level
//! draw, neighbour selection, link update with the diverse flag, trim);
//! `search` the greedy searches and the descent; `build` and `write` the
//! in-memory build and its writing onto pages; `page_graph` reads pages as
//! a graph; `insert`, `vacuum` (with `reuse` and `reach`) and `check` work
//! on pages through `pagestore::PageStore`. `repair` keeps every element
//! reachable, for the build (per level) and for VACUUM (`reach`, on pages).

#![forbid(unsafe_code)]

mod aligned;
mod build;
pub mod check;
pub mod codec;
pub mod format;
pub mod insert;
pub mod iterative;
pub mod page_graph;
pub mod reach;
pub mod repair;
pub mod rerank;
mod reuse;
mod search;
pub mod select;
pub mod vacuum;
mod visited;
pub mod write;

pub use build::{BuildGraph, BuildParams, Quantize};
pub use distance::{Metric, Storage};
pub use format::MAX_PAYLOADS;
pub use search::{search, search_layer, search_layer_counting, Candidate, Graph};
pub use select::select_neighbors;
pub use visited::{IdHasher, Visited};

#[cfg(test)]
mod tests;
