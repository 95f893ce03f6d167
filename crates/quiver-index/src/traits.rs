//! The index traits: reading (search) and writing (insert/remove) are separate, so code that only searches
//! takes `&dyn VectorIndex`.

use crate::any::IndexKind;
use crate::error::{Error, Result};
use crate::filter::IdFilter;
use crate::metric::Metric;
use crate::neighbor::Neighbor;
use crate::params::SearchParams;
use crate::vectors::validate_vector;
use rayon::prelude::*;

/// Search over a set of vectors with ids.
///
/// Contract for every implementation:
/// - results are sorted closest first ([`Neighbor`] order), hold distinct ids, and at most `k` of them;
/// - an id rejected by the filter is never returned; a removed id is never returned;
/// - a query of the wrong dimension or with a NaN/infinite component is an error, never a panic;
/// - `k == 0` returns an empty list.
pub trait VectorIndex: Send + Sync + std::fmt::Debug {
    /// Which kind of index this is.
    fn kind(&self) -> IndexKind;
    /// The metric distances are measured in.
    fn metric(&self) -> Metric;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Number of live (not removed) points.
    fn len(&self) -> usize;
    /// True when there are no live points.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether `id` is a live point.
    fn contains(&self, id: u64) -> bool;
    /// The `k` nearest live points to `query` that `filter` allows.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Neighbor>>;
    /// Searches many queries (row-major, `len = nq * dim`) in parallel on the current rayon pool; result `i`
    /// belongs to query `i`. The default runs [`VectorIndex::search`] per query; indexes with a faster batch
    /// path override it.
    fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let dim = self.dim();
        check_batch(queries, dim)?;
        queries.par_chunks_exact(dim).map(|q| self.search(q, k, params, filter)).collect()
    }
    /// Heap bytes held by the index (vectors, ids, graph or lists, codes).
    fn memory_bytes(&self) -> usize;
    /// The index in its versioned, checksummed byte layout (`docs/format.md`).
    fn to_bytes(&self) -> Vec<u8>;
}

/// An index that accepts changes.
pub trait MutableIndex: VectorIndex {
    /// Inserts a point, or replaces the vector of an existing id (upsert). The vector is validated first; on
    /// error nothing changes.
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()>;
    /// Removes a point; returns whether it existed.
    fn remove(&mut self, id: u64) -> bool;
}

/// Validates a query and brings it into the index's space (normalised for cosine).
pub fn prepare_query(metric: Metric, dim: usize, query: &[f32]) -> Result<Vec<f32>> {
    validate_vector(query, dim)?;
    let mut q = query.to_vec();
    metric.prepare(&mut q)?;
    Ok(q)
}

/// Checks that a batch of queries is whole rows of `dim`.
pub(crate) fn check_batch(queries: &[f32], dim: usize) -> Result<()> {
    if queries.len().is_multiple_of(dim) {
        Ok(())
    } else {
        Err(Error::DimensionMismatch { expected: dim, got: queries.len() % dim })
    }
}
