//! Collections: creating them, describing them, payload field indexes, snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Vector distance, Qdrant's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Distance {
    /// Cosine similarity (vectors are normalised on write); higher is closer.
    Cosine,
    /// Inner product; higher is closer.
    Dot,
    /// Euclidean distance; lower is closer.
    Euclid,
    /// Not supported (rejected with 400).
    Manhattan,
}

/// One vector of a point: its size and distance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VectorParams {
    /// Dimension.
    pub size: usize,
    /// Distance.
    pub distance: Distance,
    /// Accepted for compatibility; QuiverDB decides where vectors live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// QuiverDB, named vectors only: this vector's embedding model (`{"model": "all-MiniLM-L6-v2"}`), so that
    /// points and queries may give it as `{"text": …}` or `{"image": …}`.
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Value>,
}

/// `vectors` of a collection: one unnamed vector, or named vectors by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VectorsConfig {
    /// `{"size": 384, "distance": "Cosine"}`
    Single(VectorParams),
    /// `{"title": {"size": 384, "distance": "Cosine"}, "body": {...}}`: several vectors per point, each searched
    /// by name (`using`).
    Named(BTreeMap<String, VectorParams>),
}

/// Qdrant's HNSW settings: `m` and `ef_construct` become the HNSW index's `m` and `ef_construction`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct HnswConfigDiff {
    /// Edges per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    /// Candidate list while building.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef_construct: Option<usize>,
    /// Accepted, no effect (QuiverDB's planner has its own `optimizer.exact_below`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_scan_threshold: Option<usize>,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_indexing_threads: Option<usize>,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

/// `PUT /collections/{collection_name}`: Qdrant's fields, plus QuiverDB's `index`, `tiering`, `durability`,
/// `optimizer`, `max_payload_bytes` and `change_feed_bytes` (see docs/engine.md for their meaning).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    /// The vector's size and distance. May be left out when `embedding` names a model: the model's dimension
    /// and Cosine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<VectorsConfig>,
    /// HNSW `m` / `ef_construct` (only with the default HNSW index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hnsw_config: Option<HnswConfigDiff>,
    /// Must be 1 when given (one node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_number: Option<u32>,
    /// Must be 1 when given (one node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_consistency_factor: Option<u32>,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_disk_payload: Option<bool>,
    /// Accepted, no effect (QuiverDB's optimizer is configured with `optimizer`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizers_config: Option<Value>,
    /// Accepted, no effect (the WAL is configured with `durability`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_config: Option<Value>,
    /// Not supported in this shape: quantization is an index parameter (`index.params.quantization`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<Value>,
    /// Sparse vectors by name: `{"terms": {}}` or `{"terms": {"modifier": "idf"}}` (Qdrant's `index` settings
    /// are accepted with no effect).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<Value>,
    /// Not supported.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<Value>,
    /// QuiverDB: the index of sealed segments, `{"kind": "hnsw"|"ivf"|"kdtree"|"lsh"|"kd-lsh"|"flat", "params": {…}}`.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    /// QuiverDB: `{"hot_age_secs": …, "cold_index": {…}}` — old points move to a cheaper index.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiering: Option<Value>,
    /// QuiverDB: `"fsync"` (default), `{"batch": {"max_delay_ms": 2}}` or `"none"`.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<Value>,
    /// QuiverDB: optimizer thresholds (`seal_points`, `max_segments`, …).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<Value>,
    /// QuiverDB: largest payload of one point in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payload_bytes: Option<usize>,
    /// QuiverDB: bytes of recent operations the change feed keeps for resuming clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_feed_bytes: Option<u64>,
    /// QuiverDB: keep the answers of up to this many distinct searches for repeats (default 0: no cache); a
    /// write or a point's expiry makes older answers miss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_cache_entries: Option<usize>,
    /// QuiverDB: the recall@10 searches aim for when they name no `hnsw_ef`/`nprobe` (in (0, 1]): each segment's
    /// search width is picked from its measured recall. A query's `params.target_recall` wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_recall: Option<f64>,
    /// QuiverDB: the text embedding model, `{"model": "all-MiniLM-L6-v2"}`: points and searches may then carry
    /// `text` instead of a vector.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Value>,
    /// QuiverDB cluster mode: how points are spread over shards — `{"method": "hash"}` (default),
    /// `{"method": "payload_key", "key": "tenant"}` or `{"method": "centroid", "centroids": [[…], …]}`. A single
    /// node takes only the default.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharding: Option<Value>,
}

/// One entry of `GET /collections`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionDescription {
    /// Name.
    pub name: String,
    /// QuiverDB: why the collection could not be opened, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// `GET /collections`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionsResponse {
    /// Every collection.
    pub collections: Vec<CollectionDescription>,
}

/// `GET /collections/{collection_name}/exists`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionExistence {
    /// Whether it exists.
    pub exists: bool,
}

/// `GET /collections/{collection_name}`: Qdrant's summary plus `quiver`, the engine's full report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CollectionInfo {
    /// `green` (idle), `yellow` (optimizing), `red` (the last optimizer job failed).
    pub status: String,
    /// `"ok"` or `{"error": "…"}`.
    #[schema(value_type = Object)]
    pub optimizer_status: Value,
    /// Live points.
    pub points_count: u64,
    /// Same as points (one vector per point).
    pub vectors_count: u64,
    /// Points in segments with a built index.
    pub indexed_vectors_count: u64,
    /// Segments.
    pub segments_count: u64,
    /// Configuration in Qdrant's shape.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Indexed payload fields: `{"key": {"data_type": "keyword"}}`.
    #[schema(value_type = Object)]
    pub payload_schema: Value,
    /// QuiverDB's report: segments, tiers, memory, disk, optimizer counters, sequence numbers.
    #[schema(value_type = Object)]
    pub quiver: Value,
}

/// Field type of a payload index: a name or `{"type": name, …}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FieldSchema {
    /// `keyword`, `integer`, `float`, `bool`, `datetime` (also `uuid` → keyword).
    Name(String),
    /// `{"type": "keyword", …}`; for `text`, Qdrant's text-index settings. Other settings are accepted and
    /// ignored.
    Params {
        /// The type name.
        #[serde(rename = "type")]
        ty: String,
        /// Text: `word` (the default; Unicode word boundaries) is the one tokenizer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokenizer: Option<String>,
        /// Text: must be `true` or absent (text is always lower-cased).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lowercase: Option<bool>,
        /// Text: `{"type": "snowball", "language": "english"}` stems English words.
        #[schema(value_type = Object)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stemmer: Option<Value>,
        /// Text: `"english"` (or `{"languages": ["english"]}`) drops English stop words.
        #[schema(value_type = Object)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopwords: Option<Value>,
        /// Text: not supported (400 when set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_token_len: Option<usize>,
        /// Text: not supported (400 when set).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_token_len: Option<usize>,
        /// Text: not supported (400 when `true`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phrase_matching: Option<bool>,
    },
}

/// `PUT /collections/{collection_name}/index`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFieldIndex {
    /// Dotted payload key.
    pub field_name: String,
    /// Its type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_schema: Option<FieldSchema>,
}

/// A snapshot archive.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotDescription {
    /// Archive name.
    pub name: String,
    /// RFC 3339 UTC time of creation (read as empty when a server leaves it out).
    #[serde(default)]
    pub creation_time: String,
    /// Bytes.
    pub size: u64,
}

/// `PUT /collections/{collection_name}/snapshots/recover`: restore from an archive already on the server.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRecover {
    /// `file:///…` is refused; the name of an archive in this collection's snapshot list (`snap-….qsnap`).
    pub location: String,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// `POST /cluster/collections/{collection_name}/train`: new centroids for a collection sharded by centroid.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainCentroids {
    /// One centroid per shard, each of the collection's dimension; absent: k-means over a sample of the
    /// collection's points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centroids: Option<Vec<Vec<f32>>>,
}

/// `POST /cluster/collections/{collection_name}/copy`: a new collection holding the source's points, with another
/// shard count, replication factor or sharding.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyCollection {
    /// The new collection's name.
    pub to: String,
    /// Its number of shards (default: the source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_number: Option<u32>,
    /// Its replication factor (default: the source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
    /// Its sharding, as at creation (default: the source's method; centroids are trained anew).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharding: Option<serde_json::Value>,
}

/// A point on a collection's map (`GET /collections/{collection_name}/map`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MapPoint {
    /// Id.
    #[schema(value_type = crate::PointIdSchema)]
    pub id: crate::PointId,
    /// Position in `[0, 1]` (both axes share one scale).
    pub x: f32,
    /// Position in `[0, 1]`.
    pub y: f32,
    /// The payload value at `color_by`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Value>,
    /// The start of the point's text (at `text_field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Where an IVF cell sits on the map: the mean position of the sampled points nearest its centroid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MapCell {
    /// Position in `[0, 1]`.
    pub x: f32,
    /// Position in `[0, 1]`.
    pub y: f32,
    /// Sampled points in the cell.
    pub points: usize,
}

/// A 2-D map of (a sample of) a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollectionMap {
    /// `pca` or `umap`.
    pub method: String,
    /// Points the filter admits (all live points without one).
    pub total: u64,
    /// The sampled points, in id order.
    pub points: Vec<MapPoint>,
    /// IVF cells (of the largest segment with an IVF index), if any.
    pub cells: Vec<MapCell>,
    /// Share of the variance along the first two principal components.
    pub explained_variance: [f64; 2],
    /// The payload key the texts came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_field: Option<String>,
    /// Milliseconds spent computing the map.
    pub took_ms: u64,
}

impl From<quiver_engine::map::CollectionMap> for CollectionMap {
    fn from(m: quiver_engine::map::CollectionMap) -> Self {
        CollectionMap {
            method: m.method.to_owned(),
            total: m.total,
            points: m
                .points
                .into_iter()
                .map(|p| MapPoint { id: p.id, x: p.x, y: p.y, color: p.color, text: p.text })
                .collect(),
            cells: m.cells.into_iter().map(|c| MapCell { x: c.x, y: c.y, points: c.points }).collect(),
            explained_variance: m.explained_variance,
            text_field: m.text_field,
            took_ms: m.took_ms,
        }
    }
}
