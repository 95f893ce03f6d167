//! Distance is not the index's business: an index asks a per-query [`QueryScorer`] for distances by row, and the
//! storage decides how they are computed: full-precision floats ([`RawStorage`]) or SQ8 codes
//! ([`crate::Sq8Storage`]); PQ and bit codes plug in the same way.

use crate::metric::Metric;
use crate::vectors::VectorSet;

/// Distances from one prepared query to stored rows.
pub trait QueryScorer {
    /// Distance to row `row` (smaller is closer).
    fn distance(&self, row: usize) -> f32;
    /// Distances to rows `start..start + out.len()`, written to `out`.
    fn distances(&self, start: usize, out: &mut [f32]);
    /// Hints that row `row` will be scored soon.
    fn prefetch(&self, row: usize);
    /// How many rows ahead of the one being scored a graph search should keep prefetched: `usize::MAX` asks for
    /// every unvisited neighbour of a node before scoring any (the default), a small number keeps that many in
    /// flight (see `quiver-index/src/hnsw.rs`, `search_layer`).
    fn prefetch_ahead(&self) -> usize {
        usize::MAX
    }
}

/// Rows of vectors that can be scored against a query.
pub trait VectorStorage: Send + Sync {
    /// The scorer type, borrowing the storage and the query.
    type Scorer<'a>: QueryScorer
    where
        Self: 'a;
    /// A scorer for a query already prepared for this storage's metric.
    fn scorer<'a>(&'a self, query: &'a [f32]) -> Self::Scorer<'a>;
    /// Number of rows.
    fn rows(&self) -> usize;
    /// Heap bytes held.
    fn memory_bytes(&self) -> usize;
}

/// Full-precision storage: prepared (for cosine, unit-length) f32 vectors and their metric.
#[derive(Clone, Debug, PartialEq)]
pub struct RawStorage {
    pub(crate) metric: Metric,
    pub(crate) vectors: VectorSet,
}

impl RawStorage {
    /// Wraps vectors that are already prepared for `metric`.
    pub fn new(metric: Metric, vectors: VectorSet) -> Self {
        Self { metric, vectors }
    }

    /// The stored vectors.
    pub fn vectors(&self) -> &VectorSet {
        &self.vectors
    }

    /// Raw kernel values (inner products, or squared L2 for Euclidean) between every query of `queries`
    /// (row-major, prepared) and rows `start..start + nr`: `out[i * nr + j]`, `nr = out.len() / nq`.
    pub(crate) fn raw_tile(&self, queries: &[f32], start: usize, nr: usize, out: &mut [f32]) {
        let rows = self.vectors.rows(start, start + nr);
        let dim = self.vectors.dim();
        let k = quiver_kernels::active();
        if self.metric.uses_dot() { k.dot_tile(queries, rows, dim, out) } else { k.l2sq_tile(queries, rows, dim, out) }
    }
}

/// Scores a query against [`RawStorage`].
#[derive(Debug)]
pub struct RawScorer<'a> {
    storage: &'a RawStorage,
    query: &'a [f32],
}

impl QueryScorer for RawScorer<'_> {
    #[inline]
    fn distance(&self, row: usize) -> f32 {
        self.storage.metric.distance(self.query, self.storage.vectors.get(row))
    }

    fn distances(&self, start: usize, out: &mut [f32]) {
        self.storage.raw_tile(self.query, start, out.len(), out);
        let m = self.storage.metric;
        out.iter_mut().for_each(|v| *v = m.distance_from_raw(*v));
    }

    #[inline]
    fn prefetch(&self, row: usize) {
        quiver_kernels::prefetch(self.storage.vectors.get(row), 4);
    }
}

impl VectorStorage for RawStorage {
    type Scorer<'a> = RawScorer<'a>;

    fn scorer<'a>(&'a self, query: &'a [f32]) -> RawScorer<'a> {
        RawScorer { storage: self, query }
    }

    fn rows(&self) -> usize {
        self.vectors.len()
    }

    fn memory_bytes(&self) -> usize {
        self.vectors.memory_bytes()
    }
}
