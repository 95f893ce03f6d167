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
//!
//! ```
//! use quiver_index::{FlatIndex, IdSet, Metric, MutableIndex, Params, SearchParams, VectorIndex, VectorSet};
//!
//! let vectors = VectorSet::from_rows(2, [[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])?;
//! let mut index = FlatIndex::build(Metric::Cosine, vectors, vec![10, 20, 30], Params::new())?;
//! index.insert(40, &[-1.0, 0.0])?;
//!
//! let hits = index.search(&[0.9, 0.1], 2, &SearchParams::new(), None)?;
//! assert_eq!(hits.iter().map(|n| n.id).collect::<Vec<_>>(), [10, 30]);
//! assert!(Metric::Cosine.score(hits[0].distance) > 0.99); // cosine similarity
//!
//! // Only ids the filter allows come back.
//! let allowed: IdSet = [20, 40].into_iter().collect();
//! let hits = index.search(&[0.9, 0.1], 2, &SearchParams::new(), Some(&allowed))?;
//! assert_eq!(hits.iter().map(|n| n.id).collect::<Vec<_>>(), [20, 40]);
//!
//! // Bad input is an error naming what was wrong, never a panic.
//! assert!(index.search(&[1.0, 2.0, 3.0], 1, &SearchParams::new(), None).is_err());
//! # Ok::<(), quiver_index::Error>(())
//! ```

#![warn(missing_docs)]

mod any;
mod code_rows;
mod codec;
pub mod dataset;
mod error;
mod filter;
mod flat;
mod hnsw;
mod huge;
mod ivf;
mod kdlsh;
mod kdtree;
pub mod kmeans;
pub mod layout;
mod lsh;
mod metric;
mod neighbor;
mod params;
mod points;
mod quant;
#[allow(unsafe_code)]
mod shared;
mod sq4;
mod storage;
mod traits;
mod vectors;

pub use any::{AnyIndex, IndexKind};
pub use error::{Error, Result};
pub use filter::{FnFilter, IdFilter, IdSet};
pub use flat::{FlatIndex, QUERY_CHUNK};
pub use hnsw::{HnswIndex, HnswParams, HnswStats};
pub use ivf::{IvfIndex, IvfParams, IvfStats};
pub use kdlsh::{KdLshIndex, KdLshParams};
pub use kdtree::{KdTreeIndex, KdTreeParams};
pub use lsh::{LshIndex, LshParams};
pub use metric::Metric;
pub use neighbor::{Neighbor, TopK, merge_top_k};
pub use params::{Params, SearchParams};
pub use quant::{
    BitQuantizer, BitScorer, BitStorage, Pq, PqScorer, PqStorage, PqTable, Quantization, Sq8, Sq8Query, Sq8Scorer,
    Sq8Storage,
};
pub use shared::FloatSource;
pub use sq4::{Sq4, Sq4Scorer, Sq4Storage};
pub use storage::{QueryScorer, RawScorer, RawStorage, VectorStorage};
pub use traits::{MutableIndex, VectorIndex, prepare_query};
pub use vectors::{VectorSet, validate_dim, validate_vector};
