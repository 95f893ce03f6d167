//! The closed set of index kinds. Code that must handle every kind matches [`AnyIndex`] without a wildcard, so
//! adding a kind fails to compile until every site handles it.

use crate::error::{Error, Result};
use crate::flat::FlatIndex;
use crate::hnsw::{HnswIndex, HnswParams};
use crate::ivf::{IvfIndex, IvfParams};
use crate::kdlsh::{KdLshIndex, KdLshParams};
use crate::kdtree::{KdTreeIndex, KdTreeParams};
use crate::lsh::{LshIndex, LshParams};
use crate::metric::Metric;
use crate::params::Params;
use crate::traits::{MutableIndex, VectorIndex};
use crate::vectors::VectorSet;

/// Names an index kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// Exact scan ([`FlatIndex`]).
    Flat,
    /// Hierarchical navigable small-world graph ([`HnswIndex`]).
    Hnsw,
    /// Inverted file over k-means cells, f32 or PQ codes ([`IvfIndex`]).
    Ivf,
    /// KD-tree, exact branch and bound or best-bin-first ([`KdTreeIndex`]).
    KdTree,
    /// Locality-sensitive hashing with multi-probe ([`LshIndex`]).
    Lsh,
    /// KD-tree regions with LSH tables inside ([`KdLshIndex`]).
    KdLsh,
}

impl IndexKind {
    /// Every kind.
    pub const ALL: [IndexKind; 6] =
        [IndexKind::Flat, IndexKind::Hnsw, IndexKind::Ivf, IndexKind::KdTree, IndexKind::Lsh, IndexKind::KdLsh];

    /// Name used in configs, the CLI and the API.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Flat => "flat",
            IndexKind::Hnsw => "hnsw",
            IndexKind::Ivf => "ivf",
            IndexKind::KdTree => "kdtree",
            IndexKind::Lsh => "lsh",
            IndexKind::KdLsh => "kd-lsh",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self> {
        let want = s.trim().to_ascii_lowercase();
        IndexKind::ALL.into_iter().find(|k| k.name() == want).ok_or_else(|| Error::UnknownName {
            what: "index kind",
            got: s.to_owned(),
            known: IndexKind::ALL.map(IndexKind::name).join(", "),
        })
    }

    /// Tag in serialised bytes.
    pub(crate) fn tag(self) -> u8 {
        match self {
            IndexKind::Flat => 1,
            IndexKind::Hnsw => 2,
            IndexKind::Ivf => 3,
            IndexKind::KdTree => 10,
            IndexKind::Lsh => 11,
            IndexKind::KdLsh => 12,
        }
    }

    /// Build parameters this kind accepts.
    pub fn build_params(self) -> &'static [&'static str] {
        match self {
            IndexKind::Flat => FlatIndex::BUILD_PARAMS,
            IndexKind::Hnsw => HnswParams::NAMES,
            IndexKind::Ivf => IvfParams::NAMES,
            IndexKind::KdTree => KdTreeParams::NAMES,
            IndexKind::Lsh => LshParams::NAMES,
            IndexKind::KdLsh => KdLshParams::NAMES,
        }
    }

    /// Parses build `params` with this kind's own checks (names, ranges, types) without building anything.
    pub fn check_params(self, params: Params) -> Result<()> {
        match self {
            IndexKind::Flat => params.finish("flat index (build)", FlatIndex::BUILD_PARAMS),
            IndexKind::Hnsw => HnswParams::from_params(params).map(drop),
            IndexKind::Ivf => IvfParams::from_params(params).map(drop),
            IndexKind::KdTree => KdTreeParams::from_params(params).map(drop),
            IndexKind::Lsh => LshParams::from_params(params).map(drop),
            IndexKind::KdLsh => KdLshParams::from_params(params).map(drop),
        }
    }

    /// Search parameters this kind accepts.
    pub fn search_params(self) -> &'static [&'static str] {
        match self {
            IndexKind::Flat => FlatIndex::SEARCH_PARAMS,
            IndexKind::Hnsw => HnswIndex::SEARCH_PARAMS,
            IndexKind::Ivf => IvfIndex::SEARCH_PARAMS,
            IndexKind::KdTree => KdTreeIndex::SEARCH_PARAMS,
            IndexKind::Lsh => LshIndex::SEARCH_PARAMS,
            IndexKind::KdLsh => KdLshIndex::SEARCH_PARAMS,
        }
    }
}

impl std::fmt::Display for IndexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Any index, by kind.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a few per collection; boxing would only add an indirection
pub enum AnyIndex {
    /// Exact scan.
    Flat(FlatIndex),
    /// Graph.
    Hnsw(HnswIndex),
    /// Inverted file.
    Ivf(IvfIndex),
    /// KD-tree.
    KdTree(KdTreeIndex),
    /// LSH.
    Lsh(LshIndex),
    /// KD-tree + LSH.
    KdLsh(KdLshIndex),
}

impl AnyIndex {
    /// The index's own full-precision copy of the vectors it was built from, in build order, when it keeps one
    /// that a caller may serve rows from (HNSW); `None` for the others (IVF reorders its lists, the rest may
    /// keep codes only).
    pub fn row_vectors(&self) -> Option<&VectorSet> {
        match self {
            AnyIndex::Hnsw(h) => Some(h.vectors()),
            AnyIndex::Flat(_) | AnyIndex::Ivf(_) | AnyIndex::KdTree(_) | AnyIndex::Lsh(_) | AnyIndex::KdLsh(_) => None,
        }
    }

    /// The cells' centroids (row-major) of an IVF index; `None` for other kinds.
    pub fn cell_centroids(&self) -> Option<&[f32]> {
        match self {
            AnyIndex::Ivf(i) => Some(i.centroids()),
            _ => None,
        }
    }

    /// Builds an index of `kind` over `vectors` with the given `ids` and build `params`.
    pub fn build(kind: IndexKind, metric: Metric, vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        match kind {
            IndexKind::Flat => FlatIndex::build(metric, vectors, ids, params).map(AnyIndex::Flat),
            IndexKind::Hnsw => HnswIndex::build(metric, vectors, ids, params).map(AnyIndex::Hnsw),
            IndexKind::Ivf => IvfIndex::build(metric, vectors, ids, params).map(AnyIndex::Ivf),
            IndexKind::KdTree => KdTreeIndex::build(metric, vectors, ids, params).map(AnyIndex::KdTree),
            IndexKind::Lsh => LshIndex::build(metric, vectors, ids, params).map(AnyIndex::Lsh),
            IndexKind::KdLsh => KdLshIndex::build(metric, vectors, ids, params).map(AnyIndex::KdLsh),
        }
    }

    /// An empty index of `kind`, ready for inserts.
    pub fn empty(kind: IndexKind, metric: Metric, dim: usize, params: Params) -> Result<Self> {
        Self::build(kind, metric, VectorSet::new(dim)?, Vec::new(), params)
    }

    /// Decodes any index written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let tag = crate::codec::peek_kind(bytes, "index")?;
        let kind = IndexKind::ALL.into_iter().find(|k| k.tag() == tag).ok_or_else(|| Error::Corrupt {
            what: "index",
            offset: 6,
            detail: format!("unknown index kind tag {tag}"),
        })?;
        match kind {
            IndexKind::Flat => FlatIndex::from_bytes(bytes).map(AnyIndex::Flat),
            IndexKind::Hnsw => HnswIndex::from_bytes(bytes).map(AnyIndex::Hnsw),
            IndexKind::Ivf => IvfIndex::from_bytes(bytes).map(AnyIndex::Ivf),
            IndexKind::KdTree => KdTreeIndex::from_bytes(bytes).map(AnyIndex::KdTree),
            IndexKind::Lsh => LshIndex::from_bytes(bytes).map(AnyIndex::Lsh),
            IndexKind::KdLsh => KdLshIndex::from_bytes(bytes).map(AnyIndex::KdLsh),
        }
    }

    /// The index without the vectors it keeps in row order ([`AnyIndex::row_vectors`]), for a caller that stores
    /// them itself and hands them back to [`AnyIndex::from_bytes_with_vectors`]; `None` for kinds that keep no such
    /// copy (write them with [`VectorIndex::to_bytes`]).
    pub fn to_bytes_without_vectors(&self) -> Option<Vec<u8>> {
        match self {
            AnyIndex::Hnsw(h) => Some(h.to_bytes_without_vectors()),
            AnyIndex::Flat(_) | AnyIndex::Ivf(_) | AnyIndex::KdTree(_) | AnyIndex::Lsh(_) | AnyIndex::KdLsh(_) => None,
        }
    }

    /// Decodes any index, reading the vectors of one written by [`AnyIndex::to_bytes_without_vectors`] from
    /// `vectors` (row order, prepared for the metric) without copying them. Kinds that hold their own vectors
    /// ignore `vectors`.
    pub fn from_bytes_with_vectors(bytes: &[u8], vectors: VectorSet) -> Result<Self> {
        match crate::codec::peek_kind(bytes, "index")? {
            t if t == IndexKind::Hnsw.tag() => HnswIndex::from_bytes_with_vectors(bytes, vectors).map(AnyIndex::Hnsw),
            _ => Self::from_bytes(bytes),
        }
    }

    /// Read access.
    pub fn as_index(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
            AnyIndex::Ivf(i) => i,
            AnyIndex::KdTree(i) => i,
            AnyIndex::Lsh(i) => i,
            AnyIndex::KdLsh(i) => i,
        }
    }

    /// Write access.
    pub fn as_mutable(&mut self) -> &mut dyn MutableIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
            AnyIndex::Ivf(i) => i,
            AnyIndex::KdTree(i) => i,
            AnyIndex::Lsh(i) => i,
            AnyIndex::KdLsh(i) => i,
        }
    }
}
