//! Points: upserts (rows or columns), selectors, payload updates, retrieval, scroll and count.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{Filter, Payload, PointId, PointIdSchema};

/// A vector in a point: a plain array, named vectors `{"title": [...], "body": [...]}` (or `{"": [...]}`, Qdrant's
/// unnamed vector), or a text or image to embed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VectorInput {
    /// `[0.1, 0.2, …]`
    Plain(Vec<f32>),
    /// `{"title": [0.1, …], "body": {"text": "…"}}`: named vectors, each numbers or a text or image to embed
    /// with that vector's model.
    Named(BTreeMap<String, NamedVectorInput>),
    /// `{"text": "…", "model": "…"}` (Qdrant's document form): embedded by the collection's model; `model`, when
    /// given, must be that model.
    Document(TextInput),
    /// `{"image": "<base64>", "model": "…"}` (Qdrant's image form): embedded by the collection's image model.
    Image(ImageInput),
}

/// A sparse vector: `{"indices": [3, 17], "values": [0.5, 1.2]}` (one value per index).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparseVectorInput {
    /// Term or dimension ids (distinct).
    pub indices: Vec<u32>,
    /// One value per index.
    pub values: Vec<f32>,
}

impl From<SparseVectorInput> for quiver_engine::SparseVector {
    fn from(v: SparseVectorInput) -> Self {
        quiver_engine::SparseVector { indices: v.indices, values: v.values }
    }
}

impl From<quiver_engine::SparseVector> for SparseVectorInput {
    fn from(v: quiver_engine::SparseVector) -> Self {
        SparseVectorInput { indices: v.indices, values: v.values }
    }
}

/// One named vector of a point: numbers, a sparse vector, or a text or image to embed with that vector's model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NamedVectorInput {
    /// `[0.1, …]`
    Dense(Vec<f32>),
    /// `{"indices": [...], "values": [...]}`: a value of a sparse vector.
    Sparse(SparseVectorInput),
    /// `{"text": "…"}`
    Document(TextInput),
    /// `{"image": "<base64>"}`
    Image(ImageInput),
}

/// A stored vector as returned: one unnamed vector, or the point's named (and sparse) vectors by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum VectorOutput {
    /// `[0.1, …]`
    Plain(Vec<f32>),
    /// `{"title": [0.1, …], "terms": {"indices": [...], "values": [...]}}`
    Named(BTreeMap<String, NamedVectorOutput>),
}

/// One named vector as returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NamedVectorOutput {
    /// A dense vector.
    Dense(Vec<f32>),
    /// A sparse vector.
    Sparse(SparseVectorInput),
}

impl VectorOutput {
    /// The unnamed vector, if that is what this is.
    pub fn plain(&self) -> Option<&[f32]> {
        match self {
            VectorOutput::Plain(v) => Some(v),
            VectorOutput::Named(_) => None,
        }
    }

    /// The named vector `name` (`""`: the unnamed one).
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        match self {
            VectorOutput::Plain(v) if name.is_empty() => Some(v),
            VectorOutput::Plain(_) => None,
            VectorOutput::Named(m) => match m.get(name) {
                Some(NamedVectorOutput::Dense(v)) => Some(v),
                _ => None,
            },
        }
    }
}

/// An image to embed with the collection's image model (Qdrant's `Image`): the encoded file (JPEG, PNG, WebP, GIF
/// or BMP) in base64, or as a `data:image/…;base64,` URL. Images are not fetched from other URLs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    /// The image: base64 of the file's bytes, or a `data:` URL.
    pub image: String,
    /// The model; must match the collection's when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Accepted for Qdrant compatibility; must be absent or empty.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
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
    /// QuiverDB: an image (base64 or a `data:` URL) to embed with the collection's image model instead of a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
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
    /// Vectors, one per id (or give `texts`); with named vectors, `{"title": [[…], …], …}` (one per id for each
    /// name given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<BatchVectors>,
    /// QuiverDB: texts, one per id, embedded with the collection's model; kept in the payloads as `text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<String>>,
    /// QuiverDB: images (base64 or `data:` URLs), one per id, embedded with the collection's image model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Payloads, one per id (or absent).
    #[schema(value_type = Vec<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<Vec<Option<Payload>>>,
}

/// The vectors of a column-wise batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BatchVectors {
    /// One vector per id.
    Plain(Vec<Vec<f32>>),
    /// Per vector name, one vector per id (dense or sparse).
    Named(BTreeMap<String, Vec<BatchVector>>),
}

/// One vector of a named column of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BatchVector {
    /// Numbers.
    Dense(Vec<f32>),
    /// A sparse vector.
    Sparse(SparseVectorInput),
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
    /// QuiverDB: where the write landed in each shard's log (`"shard:seq,…"`; one node is shard 0). Pass it as
    /// `read_token` to a read through any node of a cluster to see this write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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

/// `with_vector`: `true`/`false`, or the names of the vectors to return.
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
    /// QuiverDB: wait until this operation is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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
    /// Vector (normalised under cosine), or named vectors by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<VectorOutput>,
    /// A scroll with `order_by`: the value the point was ordered by (an integer when it is one; a datetime key
    /// gives microseconds since 1970-01-01T00:00:00Z).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub order_value: Option<serde_json::Number>,
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
    /// Order by a payload key instead of by id: `"key"` or `{"key", "direction": "asc"|"desc", "start_from"}`
    /// (one page: no `offset`, no `next_page_offset`; continue with `start_from`).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_by: Option<Value>,
    /// QuiverDB: wait until this operation is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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
    /// QuiverDB: wait until this operation is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
}

/// A count.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountResult {
    /// Points.
    pub count: u64,
}
