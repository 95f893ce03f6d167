//! The JSON shapes of QuiverDB's REST API: Qdrant's for the operations it shares (so its clients and habits
//! carry over), QuiverDB's own beside them. One definition for both ends: the server reads requests and writes
//! replies with these types, `quiver-client` writes requests and reads replies with the same ones, so the two
//! cannot drift apart. Every type is `Serialize + Deserialize`; request types leave absent options out of the
//! JSON they write. Only the server's routes and the clients know these shapes; the engine has its own types.

use std::collections::BTreeMap;

pub use quiver_engine::{Filter, Payload, PointId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A point id: an unsigned integer or a UUID string.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ExtendedPointId)]
#[allow(dead_code)] // documentation only
pub enum PointIdSchema {
    /// `42`
    Num(u64),
    /// `"550e8400-e29b-41d4-a716-446655440000"`
    Uuid(String),
}

/// A point id inside an untagged enum (where a field attribute cannot name its schema).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireId(pub PointId);

impl utoipa::PartialSchema for WireId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PointIdSchema as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for WireId {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExtendedPointId".into()
    }
}

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

/// One unnamed vector per point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VectorParams {
    /// Dimension.
    pub size: usize,
    /// Distance.
    pub distance: Distance,
    /// Accepted for compatibility; QuiverDB decides where vectors live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<bool>,
}

/// `vectors` of a collection: one unnamed vector (named vectors are rejected with a clear error).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VectorsConfig {
    /// `{"size": 384, "distance": "Cosine"}`
    Single(VectorParams),
    /// `{"name": {...}}` — not supported.
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
    /// Not supported.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_vectors: Option<Value>,
    /// Not supported.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<Value>,
    /// QuiverDB: the index of sealed segments, `{"kind": "hnsw"|"ivf"|"kd-tree"|"lsh"|"kd-lsh"|"flat", "params": {…}}`.
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

/// A vector in a point: a plain array, or `{"": [...]}` (Qdrant's unnamed vector).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VectorInput {
    /// `[0.1, 0.2, …]`
    Plain(Vec<f32>),
    /// `{"": [0.1, …]}`
    Named(BTreeMap<String, Vec<f32>>),
    /// `{"text": "…", "model": "…"}` (Qdrant's document form): embedded by the collection's model; `model`, when
    /// given, must be that model.
    Document(TextInput),
}

/// Text to embed with the collection's model (Qdrant's `Document`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    /// The text.
    pub text: String,
    /// The model; must match the collection's when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Accepted for Qdrant compatibility; must be absent or empty.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// A point to upsert.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointStruct {
    /// Id.
    #[schema(value_type = PointIdSchema)]
    pub id: PointId,
    /// Vector (or give `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<VectorInput>,
    /// QuiverDB: text to embed with the collection's model instead of a vector; kept in the payload as `text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// JSON object.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// QuiverDB: seconds until the point expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// Column-wise points.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Ids.
    #[schema(value_type = Vec<PointIdSchema>)]
    pub ids: Vec<PointId>,
    /// Vectors, one per id (or give `texts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<Vec<Vec<f32>>>,
    /// QuiverDB: texts, one per id, embedded with the collection's model; kept in the payloads as `text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<String>>,
    /// Payloads, one per id (or absent).
    #[schema(value_type = Vec<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<Vec<Option<Payload>>>,
}

/// `PUT /collections/{collection_name}/points`: `points` or `batch`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertPoints {
    /// Row-wise points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<PointStruct>>,
    /// Column-wise points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

/// `completed`: applied (and durable, with `wait=true`); `acknowledged`: applied, durable per the collection's
/// durability setting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// Applied and durable.
    Completed,
    /// Applied; durable as the collection's durability setting says.
    Acknowledged,
}

/// The reply to a write.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UpdateResult {
    /// The operation's sequence number (pass it as `min_seq` to read your own write anywhere).
    pub operation_id: u64,
    /// Status.
    pub status: UpdateStatus,
}

/// Which points a write addresses: `points` (ids) or `filter`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsSelector {
    /// Ids.
    #[schema(value_type = Vec<PointIdSchema>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<PointId>>,
    /// A filter.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// Set or overwrite payload.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPayload {
    /// Keys and values to set.
    #[schema(value_type = Object)]
    pub payload: Payload,
    /// Ids.
    #[schema(value_type = Vec<PointIdSchema>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<PointId>>,
    /// A filter.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Set under this dotted key instead of at the top level (set only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Delete payload keys.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletePayload {
    /// Dotted keys to remove.
    pub keys: Vec<String>,
    /// Ids.
    #[schema(value_type = Vec<PointIdSchema>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<PointId>>,
    /// A filter.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
}

/// `with_payload`: `true`/`false`, a list of keys, or `{"include": [...]}` / `{"exclude": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WithPayload {
    /// All or nothing.
    Bool(bool),
    /// Only these keys.
    Keys(Vec<String>),
    /// Include or exclude keys.
    Selector {
        /// Only these keys.
        #[serde(skip_serializing_if = "Option::is_none")]
        include: Option<Vec<String>>,
        /// All but these keys.
        #[serde(skip_serializing_if = "Option::is_none")]
        exclude: Option<Vec<String>>,
    },
}

/// `with_vector`: `true`/`false` (or a list of vector names: any name means the one vector).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WithVector {
    /// Whether to attach the vector.
    Bool(bool),
    /// Vector names.
    Names(Vec<String>),
}

/// `POST /collections/{collection_name}/points`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointRequest {
    /// Ids.
    #[schema(value_type = Vec<PointIdSchema>)]
    pub ids: Vec<PointId>,
    /// Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_payload: Option<WithPayload>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_vector: Option<WithVector>,
}

/// A stored point.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Record {
    /// Id.
    #[schema(value_type = PointIdSchema)]
    pub id: PointId,
    /// Payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub payload: Option<Payload>,
    /// Vector (normalised under cosine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// A search hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScoredPoint {
    /// Id.
    #[schema(value_type = PointIdSchema)]
    pub id: PointId,
    /// Always 0: QuiverDB does not keep per-point versions (writes return `operation_id`). Read as 0 when a
    /// Qdrant-shaped server leaves it out.
    #[serde(default)]
    pub version: u64,
    /// Similarity (cosine, dot: higher is closer) or distance (Euclid: lower is closer).
    pub score: f32,
    /// Payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub payload: Option<Payload>,
    /// Vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// Qdrant's quantization search settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct QuantizationSearchParams {
    /// Accepted; QuiverDB always searches its codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore: Option<bool>,
    /// Rescore candidates exactly (default true with quantized indexes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescore: Option<bool>,
    /// Candidates rescored, as a multiple of `limit` (QuiverDB's `rerank`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oversampling: Option<f64>,
}

/// Search parameters: Qdrant's `hnsw_ef`, `exact`, `quantization`, and QuiverDB's per-index ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// HNSW candidate list (QuiverDB's `ef`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hnsw_ef: Option<usize>,
    /// Exact scan, no index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
    /// Quantization settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantizationSearchParams>,
    /// Accepted; QuiverDB's planner decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed_only: Option<bool>,
    /// QuiverDB: HNSW `ef`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// QuiverDB: IVF lists / KD-LSH regions probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nprobe: Option<usize>,
    /// QuiverDB: exact rescoring factor for quantized codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<usize>,
    /// QuiverDB: KD-tree leaves visited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_leaves: Option<usize>,
    /// QuiverDB: LSH buckets probed per table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<usize>,
}

/// The query vector of a search: a plain array or `{"name": "", "vector": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SearchVector {
    /// `[0.1, …]`
    Plain(Vec<f32>),
    /// `{"name": "", "vector": [...]}`
    Named {
        /// Vector name (must be empty: one unnamed vector).
        name: String,
        /// The vector.
        vector: Vec<f32>,
    },
}

/// `POST /collections/{collection_name}/points/search`.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Query vector (or give `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<SearchVector>,
    /// QuiverDB: query text, embedded with the collection's model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Only points this filter admits.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Index parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<SearchParams>,
    /// How many results (k).
    pub limit: usize,
    /// Results to skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_payload: Option<WithPayload>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_vector: Option<WithVector>,
    /// Worse hits are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
    /// QuiverDB: wait until this operation is applied (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB cluster mode: probe only this many shards nearest the query (centroid sharding; default all).
    /// No effect on a single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards_to_search: Option<usize>,
}

/// `POST /collections/{collection_name}/points/search/batch`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBatch {
    /// The searches.
    pub searches: Vec<SearchRequest>,
}

/// What a query looks for: a vector, the id of a stored point (its vector, the point itself excluded), or
/// `{"nearest": <either>}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum QueryInput {
    /// `[0.1, …]`
    Vector(Vec<f32>),
    /// `42` or a UUID.
    Id(WireId),
    /// `{"nearest": [...]}` or `{"nearest": 42}`
    Nearest {
        /// The vector or id.
        nearest: NearestInput,
    },
    /// `{"text": "…"}`: text embedded by the collection's model (Qdrant's document form).
    Text(TextInput),
}

/// The target of `nearest`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NearestInput {
    /// A vector.
    Vector(Vec<f32>),
    /// A stored point's id.
    Id(WireId),
    /// Text embedded by the collection's model.
    Text(TextInput),
}

/// `POST /collections/{collection_name}/points/query` (the nearest-vector case of Qdrant's universal query).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// What to look for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryInput>,
    /// Vector name: must be empty or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    /// Not supported (400).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<Value>,
    /// Only points this filter admits.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Index parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<SearchParams>,
    /// How many results (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Results to skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_payload: Option<WithPayload>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_vector: Option<WithVector>,
    /// Worse hits are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
    /// Not supported (400).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_from: Option<Value>,
    /// QuiverDB: return the plan (per segment: exact or index, estimated and real filter counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<bool>,
    /// QuiverDB: wait until this operation is applied (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB cluster mode: probe only this many shards nearest the query (centroid sharding; default all).
    /// No effect on a single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards_to_search: Option<usize>,
}

/// The answer to a query.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueryResponse {
    /// Hits, best first.
    pub points: Vec<ScoredPoint>,
    /// QuiverDB: the plan, when `explain` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub explain: Option<Value>,
}

/// `POST /collections/{collection_name}/points/query/batch`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBatch {
    /// The queries.
    pub searches: Vec<QueryRequest>,
}

/// `POST /collections/{collection_name}/points/scroll`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrollRequest {
    /// Start at this id (the previous page's `next_page_offset`).
    #[schema(value_type = PointIdSchema)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<PointId>,
    /// Page size (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only points this filter admits.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_payload: Option<WithPayload>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_vector: Option<WithVector>,
    /// Not supported (400): pages are in id order.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_by: Option<Value>,
    /// QuiverDB: wait until this operation is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
}

/// A page of points.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScrollResult {
    /// Points in id order.
    pub points: Vec<Record>,
    /// The next page's `offset`; `null` at the end.
    #[schema(value_type = PointIdSchema)]
    pub next_page_offset: Option<PointId>,
}

/// `POST /collections/{collection_name}/points/count`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    /// Only points this filter admits.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Accepted; counts are always exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
}

/// A count.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountResult {
    /// Points.
    pub count: u64,
}

/// Field type of a payload index: a name or `{"type": name, …}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FieldSchema {
    /// `keyword`, `integer`, `float`, `bool`, `datetime` (also `uuid` → keyword).
    Name(String),
    /// `{"type": "keyword", …}`: other settings are accepted and ignored.
    Params {
        /// The type name.
        #[serde(rename = "type")]
        ty: String,
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

/// `GET /`: name and versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// `quiverdb`.
    pub title: String,
    /// The Qdrant REST API version whose common operations this server speaks (clients check it).
    pub version: String,
    /// QuiverDB's own version.
    pub quiverdb_version: String,
}

/// Every successful reply: `{"result": …, "status": "ok", "time": <seconds>}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Envelope<T> {
    /// The answer.
    pub result: T,
    /// `ok`.
    #[serde(default)]
    pub status: String,
    /// Seconds spent.
    #[serde(default)]
    pub time: f64,
}

/// `{"error": "<message>"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorStatus {
    /// What was wrong (4xx: the field, what was expected and what was given).
    pub error: String,
}

/// Every error reply: `{"status": {"error": "…"}, "time": …}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub status: ErrorStatus,
    /// Seconds spent.
    #[serde(default)]
    pub time: f64,
}

/// A document id: a string, or an unsigned integer (stored as its decimal string).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DocIdInput {
    /// `"manual/intro.md"`
    Text(String),
    /// `42`
    Num(u64),
}

impl DocIdInput {
    /// The id as stored in `doc_id`.
    pub fn into_string(self) -> String {
        match self {
            DocIdInput::Text(s) => s,
            DocIdInput::Num(n) => n.to_string(),
        }
    }
}

/// One document of `POST /collections/{collection_name}/documents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The document's id; writing the same id again replaces the document.
    pub id: DocIdInput,
    /// The text, split into chunks.
    pub text: String,
    /// Copied into every chunk's payload (may not use `doc_id`, `chunk_index`, `chunk_count`, `text`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Payload>,
}

/// How documents are cut into chunks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkingParams {
    /// Most tokens per chunk (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Tokens repeated from the previous chunk (default 32; smaller than `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_tokens: Option<usize>,
}

/// `POST /collections/{collection_name}/documents`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertDocuments {
    /// The documents.
    pub documents: Vec<DocumentInput>,
    /// Chunk sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunking: Option<ChunkingParams>,
}

/// The answer to a documents write.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentsResult {
    /// Sequence number of the last operation of the write.
    pub operation_id: u64,
    /// As for points.
    pub status: UpdateStatus,
    /// Chunks per document, in request order.
    pub documents: Vec<DocumentChunks>,
}

/// `POST /collections/{collection_name}/points/search/groups` and `…/query/groups`: the best `limit` groups of
/// points sharing a payload value, up to `group_size` hits each.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchGroupsRequest {
    /// Query vector (or give `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<SearchVector>,
    /// QuiverDB: query text, embedded with the collection's model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The payload key to group by (`doc_id` for documents). Points without it are skipped.
    pub group_by: String,
    /// Hits per group (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// How many groups (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only points this filter admits.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Index parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<SearchParams>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_payload: Option<WithPayload>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_vector: Option<WithVector>,
    /// Worse hits are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
    /// QuiverDB: wait until this operation is applied (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB cluster mode: probe only this many shards nearest the query (centroid sharding; default all).
    /// No effect on a single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards_to_search: Option<usize>,
}

/// `POST /collections/{collection_name}/points/query/groups`.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryGroupsRequest {
    /// What to look for (as in `/points/query`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryInput>,
    /// Vector name: must be empty or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    /// Not supported (400).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<Value>,
    /// The payload key to group by. Points without it are skipped.
    pub group_by: String,
    /// Hits per group (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// How many groups (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only points this filter admits.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Index parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<SearchParams>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_payload: Option<WithPayload>,
    /// Default `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_vector: Option<WithVector>,
    /// Worse hits are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
    /// Not supported (400).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_from: Option<Value>,
    /// QuiverDB: wait until this operation is applied (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB cluster mode: probe only this many shards nearest the query (centroid sharding; default all).
    /// No effect on a single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards_to_search: Option<usize>,
}

/// One group of hits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PointGroup {
    /// The shared value of `group_by`.
    #[schema(value_type = Object)]
    pub id: Value,
    /// Its best hits, best first.
    pub hits: Vec<ScoredPoint>,
}

/// Groups, best first (by their best hit).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupsResult {
    /// The groups.
    pub groups: Vec<PointGroup>,
}

/// How many chunks a written document got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentChunks {
    /// The document id.
    pub id: String,
    /// Chunks written (0 for a text with nothing but whitespace: the document then has no points).
    pub chunks: usize,
}
