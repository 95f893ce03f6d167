//! QuiverDB's vector indexes: in memory, synchronous, no files, no payloads.
//!
//! - [`VectorSet`]: validated contiguous vectors; [`Metric`] and the distance convention (smaller is closer);
//!   [`Neighbor`] / [`TopK`] for results.
//! - [`VectorIndex`] (search) and [`MutableIndex`] (insert / remove); [`IdFilter`] restricts a search to allowed
//!   ids (metadata filters and deletions arrive as filters).
//! - [`QueryScorer`] / [`VectorStorage`]: distances come from a per-query scorer, so quantized codes plug in
//!   without new index types.
//! - [`FlatIndex`]: the exact oracle. [`AnyIndex`] / [`IndexKind`]: the closed set of kinds.
//! - [`dataset`]: TEXMEX `fvecs` / `ivecs` / `bvecs` files and benchmark sets.

#![warn(missing_docs)]

mod any;
mod codec;
pub mod dataset;
mod error;
mod filter;
mod flat;
mod metric;
mod neighbor;
mod params;
mod storage;
mod traits;
mod vectors;

pub use any::{AnyIndex, IndexKind};
pub use error::{Error, Result};
pub use filter::{FnFilter, IdFilter, IdSet};
pub use flat::{FlatIndex, QUERY_CHUNK};
pub use metric::Metric;
pub use neighbor::{Neighbor, TopK, merge_top_k};
pub use params::{Params, SearchParams};
pub use storage::{QueryScorer, RawScorer, RawStorage, VectorStorage};
pub use traits::{MutableIndex, VectorIndex, prepare_query};
pub use vectors::{VectorSet, validate_dim, validate_vector};
