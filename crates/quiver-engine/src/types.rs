//! Request and response types of the collection API (the server maps its JSON onto these).

use std::collections::BTreeMap;

use quiver_index::SearchParams;
use serde::Serialize;

use crate::filter::Filter;
use crate::id::PointId;
use crate::payload::Payload;
use crate::payload_index::FieldType;
use crate::segment::{SegmentPlan, Tier};
use crate::sparse::SparseVector;

/// A point to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInput {
    /// The id.
    pub id: PointId,
    /// The vector (the collection's dimension, finite numbers). Empty in a collection with named vectors.
    pub vector: Vec<f32>,
    /// Named vectors, by name (any subset of the collection's; empty in a collection with one unnamed vector).
    pub named: BTreeMap<String, Vec<f32>>,
    /// Sparse vectors, by name (any subset of the collection's).
    pub sparse: BTreeMap<String, SparseVector>,
    /// The payload (none: an empty object).
    pub payload: Option<Payload>,
    /// Time to live in seconds from the write; the point disappears from every read once it passes.
    pub ttl_secs: Option<u64>,
}

impl PointInput {
    /// A point with no payload and no expiry.
    pub fn new(id: impl Into<PointId>, vector: Vec<f32>) -> Self {
        PointInput {
            id: id.into(),
            vector,
            named: BTreeMap::new(),
            sparse: BTreeMap::new(),
            payload: None,
            ttl_secs: None,
        }
    }

    /// A point with these named vectors, no payload and no expiry.
    pub fn named(id: impl Into<PointId>, vectors: impl IntoIterator<Item = (String, Vec<f32>)>) -> Self {
        PointInput { named: vectors.into_iter().collect(), ..PointInput::new(id, Vec::new()) }
    }

    /// With a payload.
    pub fn with_payload(mut self, payload: Payload) -> Self {
        self.payload = Some(payload);
        self
    }
}

/// Which points a write addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// These ids (missing ones are an error for payload updates, ignored for deletes).
    Ids(Vec<PointId>),
    /// Every point the filter admits at the time of the write.
    Filter(Filter),
}

/// A stored point as returned by reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The id.
    pub id: PointId,
    /// The payload, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// The vector (as stored: normalised under cosine), when asked for (a collection with one unnamed vector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// The named vectors the point has, when asked for (a collection with named vectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<BTreeMap<String, Vec<f32>>>,
    /// The sparse vectors the point has, when asked for (a collection with sparse vectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<BTreeMap<String, SparseVector>>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredPoint {
    /// The id.
    pub id: PointId,
    /// Cosine similarity, inner product, or Euclidean distance (by the collection's metric).
    pub score: f32,
    /// The payload, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// The vector, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// The named vectors, when asked for (a collection with named vectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<BTreeMap<String, Vec<f32>>>,
    /// The sparse vectors, when asked for (a collection with sparse vectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<BTreeMap<String, SparseVector>>,
}

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The query vector.
    pub vector: Vec<f32>,
    /// Which named vector to search (`None`: the collection's one unnamed vector); a sparse vector's name with
    /// `sparse` set.
    pub using: Option<String>,
    /// The query of a sparse vector search (`using` names the sparse vector; `vector` is then empty).
    pub sparse: Option<SparseVector>,
    /// How many results.
    pub limit: usize,
    /// Results to skip (pagination).
    pub offset: usize,
    /// Only points this filter admits.
    pub filter: Option<Filter>,
    /// Index search parameters (`ef`, `nprobe`, `rerank`, `exact`, ...).
    pub params: SearchParams,
    /// Attach payloads.
    pub with_payload: bool,
    /// Attach vectors.
    pub with_vector: bool,
    /// Drop hits scoring worse than this (below it for similarities, above it for Euclidean distance).
    pub score_threshold: Option<f32>,
    /// Return the plan.
    pub explain: bool,
    /// Wait until the operation with this sequence number is applied (read-your-writes).
    pub min_seq: Option<u64>,
}

impl SearchRequest {
    /// The `limit` nearest points to `vector`, with payloads, default parameters.
    pub fn new(vector: Vec<f32>, limit: usize) -> Self {
        SearchRequest {
            vector,
            using: None,
            sparse: None,
            limit,
            offset: 0,
            filter: None,
            params: SearchParams::default(),
            with_payload: true,
            with_vector: false,
            score_threshold: None,
            explain: false,
            min_seq: None,
        }
    }

    /// With a filter.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// A search of the sparse vector `name` for `query`.
    pub fn sparse(name: impl Into<String>, query: SparseVector, limit: usize) -> Self {
        let mut r = SearchRequest::new(Vec::new(), limit);
        r.using = Some(name.into());
        r.sparse = Some(query);
        r
    }

    /// Searching the named vector `name`.
    pub fn using(mut self, name: impl Into<String>) -> Self {
        self.using = Some(name.into());
        self
    }
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResponse {
    /// Hits, best first.
    pub hits: Vec<ScoredPoint>,
    /// The plan, when `explain` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// How a search was answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explain {
    /// Per segment: plan, estimate, real count.
    pub segments: Vec<SegmentPlan>,
    /// Points the filter admitted over all segments (live, unexpired).
    pub matched: Option<u64>,
    /// Filter keys that had no payload index (evaluated by reading payloads: slower).
    pub unindexed_keys: Vec<String>,
    /// The highest applied operation when the search ran.
    pub applied_seq: u64,
}

/// A page of a scroll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrollPage {
    /// Points in id order.
    pub points: Vec<Record>,
    /// Pass as `offset` to get the next page; `None` at the end.
    pub next_offset: Option<PointId>,
}

/// What a collection holds and does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectionInfo {
    /// Name.
    pub name: String,
    /// Configuration.
    pub config: crate::config::CollectionConfig,
    /// Live points.
    pub points: u64,
    /// Segments.
    pub segments: Vec<SegmentInfo>,
    /// Indexed payload fields.
    pub payload_indexes: Vec<(String, FieldType)>,
    /// Heap bytes (vectors of the growing segment, indexes, quantized codes, payloads; partly estimated).
    pub memory_bytes: u64,
    /// Bytes of vectors read in place from memory-mapped segment files: in the operating system's page cache,
    /// resident only while recently read, and not part of `memory_bytes`.
    pub mapped_bytes: u64,
    /// Bytes on disk (segment files, WAL, manifest).
    pub disk_bytes: u64,
    /// The memory estimated from the configuration and size (what the database's memory budget counts).
    pub estimated_memory: crate::budget::MemoryEstimate,
    /// Highest applied operation.
    pub applied_seq: u64,
    /// Operations at or below this are in segment files; the WAL holds the rest.
    pub wal_checkpoint: u64,
    /// The oldest sequence number the change feed still serves (`changes_since` accepts `after` from this
    /// minus one).
    pub change_feed_oldest: u64,
    /// Bytes the change feed's retained operations count against `change_feed_bytes`.
    pub change_feed_bytes: u64,
    /// Optimizer state.
    pub optimizer: OptimizerInfo,
    /// The result cache's figures, when the collection has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_cache: Option<crate::cache::QueryCacheInfo>,
    /// Estimated recall@10 of an unfiltered search (at `target_recall`'s widths when the collection has one, else
    /// at the indexes' defaults), weighted by live rows; `None` until a segment is calibrated (see
    /// [`crate::recall`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_recall: Option<f64>,
}

/// One segment in [`CollectionInfo`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentInfo {
    /// Id.
    pub id: u64,
    /// Tier.
    pub tier: Tier,
    /// Rows stored.
    pub rows: u64,
    /// Rows live now.
    pub live: u64,
    /// Rows deleted.
    pub deleted: u64,
    /// Index kind, or `exact`.
    pub index: String,
    /// Why no index was built, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_note: Option<String>,
    /// Heap bytes.
    pub memory_bytes: u64,
    /// Vector bytes read in place from the memory-mapped file.
    pub mapped_bytes: u64,
    /// File bytes.
    pub disk_bytes: u64,
    /// The measured recall of the (first) vector's index, once calibrated (see [`crate::recall`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<RecallEstimate>,
    /// With named vectors: each vector's own index kind (or `exact`) and note, by name (`index` above is the
    /// first one's). Empty otherwise.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub vectors: std::collections::BTreeMap<String, VectorIndexInfo>,
}

/// A segment's estimated recall@10 for an unfiltered search, at the collection's `target_recall` (else at the
/// index's default width).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallEstimate {
    /// `ef` or `nprobe`.
    pub param: String,
    /// The width chosen.
    pub width: usize,
    /// Mean recall@10 measured at it.
    pub estimated: f64,
    /// Recent queries measured.
    pub queries: usize,
}

/// The index of one named vector in one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VectorIndexInfo {
    /// Index kind, or `exact`.
    pub index: String,
    /// Why no index was built, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_note: Option<String>,
}

/// The optimizer's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OptimizerInfo {
    /// Whether a background thread runs.
    pub background: bool,
    /// The job running now, if any.
    pub running: Option<String>,
    /// Growing segments sealed.
    pub sealed: u64,
    /// Merge jobs done.
    pub merged: u64,
    /// Vacuum jobs done.
    pub vacuumed: u64,
    /// Segments moved to the cold tier.
    pub migrated: u64,
    /// Expired points purged.
    pub expired_purged: u64,
    /// The last job error, if the last job failed.
    pub last_error: Option<String>,
}
