//! What a collection costs in memory, estimated from its configuration and size, and the database's memory budget
//! that refuses a create or a write that would not fit.
//!
//! The estimate counts the heap (graph and codes, ids and times, the growing segment's vectors and payloads, the
//! change feed's window) apart from the vectors and payloads read in place from the segment files (`mapped`: page
//! cache, resident while read), at the peak: the growing segment full (`seal_points` rows) while a seal copies it.
//! Per sealed point, for a `d`-dimensional vector: row bookkeeping [`ROW_BYTES`]; HNSW `8 + 3 + 4·(2m + 1) + 4·(m + 1)/(m − 1)` (id, flags, layer-0 and the expected upper
//! links; a segment's graph is built over its rows, so it keeps no id map) + codes (SQ8 `d + 4`, PQ `pq_m`, bits `8·⌈d/64⌉`); IVF `8` + codes or `4·d` when it keeps vectors; KD-tree
//! and LSH `4·d + 32`. It is an estimate: `info().memory_bytes` is the engine's own count of what is there now.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use quiver_index::{IndexKind, Quantization};
use serde::Serialize;

use crate::config::{CollectionConfig, IndexConfig};
use crate::error::{Error, Result};

/// Heap bytes per sealed row for its id (32), times (16) and its place in id order (4), whatever the index.
pub const ROW_BYTES: u64 = 52;
/// Heap bytes the change feed holds per operation beyond the vectors it carries.
const FEED_OP_BYTES: u64 = 64;

/// A collection's estimated memory (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEstimate {
    /// Points the estimate is for.
    pub points: u64,
    /// Heap bytes.
    pub heap_bytes: u64,
    /// Bytes of vectors read in place from segment files (page cache).
    pub mapped_bytes: u64,
    /// Heap bytes each further point adds, once sealed.
    pub heap_bytes_per_point: u64,
}

fn param<'a>(cfg: &'a IndexConfig, key: &str) -> Option<&'a serde_json::Value> {
    cfg.params.get(key)
}

fn usize_param(cfg: &IndexConfig, key: &str, default: u64) -> u64 {
    param(cfg, key).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).unwrap_or(default)
}

/// Heap bytes per point of a sealed segment's index of `cfg` over `dim`-dimensional vectors.
pub fn index_bytes_per_point(cfg: &IndexConfig, dim: u64) -> u64 {
    let quantization = param(cfg, "quantization")
        .and_then(|v| v.as_str())
        .and_then(|q| Quantization::parse(q).ok())
        .unwrap_or(Quantization::None);
    let pq_m = match usize_param(cfg, "pq_m", 0) {
        0 => quiver_index::Pq::default_m(dim as usize) as u64,
        m => m,
    };
    let codes = match quantization {
        Quantization::None => 0,
        Quantization::Sq8 => dim + 4,
        Quantization::Sq4 => dim.div_ceil(2) + 4,
        Quantization::Pq => pq_m,
        Quantization::Bits => 8 * dim.div_ceil(64),
    };
    match cfg.kind {
        IndexKind::Flat => 0,
        IndexKind::Hnsw => {
            let m = usize_param(cfg, "m", 16).max(2);
            8 + 3 + 4 * (2 * m + 1) + (4 * (m + 1)).div_ceil(m - 1) + codes
        }
        IndexKind::Ivf => {
            let keeps = param(cfg, "store_vectors").and_then(|v| v.as_bool()).unwrap_or(true);
            8 + codes + if quantization == Quantization::None || keeps { 4 * dim } else { 0 }
        }
        IndexKind::KdTree | IndexKind::Lsh | IndexKind::KdLsh => 4 * dim + 32,
    }
}

/// The estimate for `points` points with `payload_bytes` of heap per payload on average.
pub fn estimate(cfg: &CollectionConfig, points: u64, payload_bytes: u64) -> MemoryEstimate {
    // Every vector space (named vectors each have their own) counts its vector and its index.
    let spaces = cfg.spaces();
    let vector: u64 = spaces.iter().map(|s| 4 * s.dimension as u64).sum();
    let per_point = ROW_BYTES + spaces.iter().map(|s| index_bytes_per_point(s.index, s.dimension as u64)).sum::<u64>();
    // The growing segment at its fullest. (A seal streams its vectors to a scratch file and builds the index over
    // them in place: no second heap copy.)
    let growing = points.min(cfg.optimizer.seal_points as u64) * (vector + payload_bytes);
    let feed = cfg.change_feed_bytes.min(points.saturating_mul(vector + FEED_OP_BYTES + payload_bytes));
    MemoryEstimate {
        points,
        heap_bytes: points.saturating_mul(per_point).saturating_add(growing).saturating_add(feed),
        mapped_bytes: points.saturating_mul(vector),
        heap_bytes_per_point: per_point,
    }
}

/// The database's memory budget, shared by its collections: each reports its estimate; a create or a write whose
/// estimate would take the total past the limit is refused with [`Error::MemoryBudget`] and changes nothing.
#[derive(Debug, Default)]
pub struct MemoryBudget {
    /// 0: no limit.
    limit: AtomicU64,
    usage: Mutex<BTreeMap<String, u64>>,
}

impl MemoryBudget {
    /// Sets the limit in heap bytes (`None`: no limit).
    pub fn set_limit(&self, bytes: Option<u64>) {
        self.limit.store(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l > 0)
    }

    /// Records `heap_bytes` as collection `name`'s estimate if the total stays within the limit; else refuses,
    /// naming the estimate, what the other collections hold and the limit.
    pub(crate) fn admit(&self, name: &str, heap_bytes: u64, what: &str) -> Result<()> {
        let mut usage = self.usage.lock();
        self.within(&usage, name, heap_bytes, what)?;
        usage.insert(name.to_owned(), heap_bytes);
        Ok(())
    }

    /// Checks that collection `name` may take `heap_bytes` for a while (the index a merge builds) without recording
    /// it; refuses like [`MemoryBudget::admit`].
    pub(crate) fn check(&self, name: &str, heap_bytes: u64, what: &str) -> Result<()> {
        self.within(&self.usage.lock(), name, heap_bytes, what)
    }

    fn within(&self, usage: &BTreeMap<String, u64>, name: &str, heap_bytes: u64, what: &str) -> Result<()> {
        let Some(limit) = self.limit() else { return Ok(()) };
        let others: u64 = usage.iter().filter(|(n, _)| n.as_str() != name).map(|(_, b)| *b).sum();
        if others.saturating_add(heap_bytes) > limit {
            return Err(Error::MemoryBudget {
                collection: name.to_owned(),
                what: what.to_owned(),
                needed: heap_bytes,
                others,
                limit,
            });
        }
        Ok(())
    }

    /// Records collection `name`'s estimate without checking it (a collection opened with its data).
    pub(crate) fn record(&self, name: &str, heap_bytes: u64) {
        self.usage.lock().insert(name.to_owned(), heap_bytes);
    }

    /// Forgets collection `name` (dropped or closed).
    pub(crate) fn release(&self, name: &str) {
        self.usage.lock().remove(name);
    }

    /// The estimates on record, by collection.
    pub fn usage(&self) -> BTreeMap<String, u64> {
        self.usage.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_index::Metric;

    #[test]
    fn estimates_follow_the_configuration() {
        let mut cfg = CollectionConfig::new(384, Metric::Cosine);
        let plain = estimate(&cfg, 1_000_000, 0);
        assert_eq!(plain.mapped_bytes, 1_000_000 * 384 * 4);
        // HNSW m=16, unquantized: links (~170 bytes a point) and row bookkeeping; the vectors are mapped.
        assert!((200..300).contains(&plain.heap_bytes_per_point), "{plain:?}");
        cfg.index.params.insert("quantization".into(), "sq8".into());
        let sq8 = estimate(&cfg, 1_000_000, 0);
        assert_eq!(sq8.heap_bytes_per_point, plain.heap_bytes_per_point + 388);
        // Ten million 384-d points with SQ8 codes: under 1 GB of heap per million points.
        let ten = estimate(&cfg, 10_000_000, 0);
        assert!(ten.heap_bytes < 10 * 1_000_000_000, "{ten:?}");
        let b = MemoryBudget::default();
        b.admit("a", 100, "upsert").unwrap();
        b.set_limit(Some(150));
        b.admit("a", 140, "upsert").unwrap();
        let err = b.admit("b", 20, "create").unwrap_err();
        assert!(err.to_string().contains("140"), "{err}");
        b.release("a");
        b.admit("b", 20, "create").unwrap();
    }
}
