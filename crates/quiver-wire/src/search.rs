//! Search and query: the requests (vector, stored point, text; filters, parameters, groups) and the hits.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{Filter, ImageInput, Payload, PointId, PointIdSchema, TextInput, WireId, WithPayload, WithVector};

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
    /// Vector, or named vectors by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<crate::VectorOutput>,
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
    /// QuiverDB: the recall@10 wanted, in (0, 1], instead of a width: each segment picks its `ef`/`nprobe` from
    /// its measured recall (a named `hnsw_ef`/`nprobe` wins; 1 searches exactly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_recall: Option<f64>,
}

/// The query vector of a search: a plain array or `{"name": "title", "vector": [...]}` (a named vector).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SearchVector {
    /// `[0.1, …]`
    Plain(Vec<f32>),
    /// `{"name": "", "vector": [...]}`
    Named {
        /// Vector name (`""`: the unnamed vector).
        name: String,
        /// The vector.
        vector: Vec<f32>,
    },
    /// `{"name": "terms", "vector": {"indices": [...], "values": [...]}}`: a sparse vector's query.
    NamedSparse {
        /// The sparse vector's name.
        name: String,
        /// The query.
        vector: crate::SparseVectorInput,
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
    /// QuiverDB: query image (base64 or a `data:` URL), embedded with the collection's image model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
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
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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
    /// `{"fusion": "rrf"}` or `{"fusion": "dbsf"}`: fuse the `prefetch` results.
    Fusion {
        /// How.
        fusion: FusionName,
    },
    /// `{"rrf": {"k": 60}}`: reciprocal rank fusion of the `prefetch` results with its rank constant.
    Rrf {
        /// Its parameters.
        rrf: RrfParams,
    },
    /// `{"recommend": {"positive": [...], "negative": [...]}}`: points like the positive examples and unlike the
    /// negative ones (ids, vectors or texts), the examples themselves left out.
    Recommend {
        /// The examples.
        recommend: RecommendInput,
    },
    /// `{"discover": {"target": …, "context": [{"positive": …, "negative": …}, …]}}`: points like the target,
    /// constrained to the positive side of each context pair.
    Discover {
        /// The target and the pairs.
        discover: DiscoverInput,
    },
    /// `{"context": [{"positive": …, "negative": …}, …]}` (or one pair): points on the positive side of every pair.
    Context {
        /// The pairs.
        context: ContextInput,
    },
    /// QuiverDB: `{"bm25": {"key": "body", "text": "…"}}`: BM25 full-text ranking over a payload key with a text
    /// index.
    Bm25 {
        /// The key and the text.
        bm25: Bm25Input,
    },
    /// `{"text": "…"}`: text embedded by the collection's model (Qdrant's document form).
    Text(TextInput),
    /// `{"image": "<base64>"}`: an image embedded by the collection's image model (Qdrant's image form).
    Image(ImageInput),
    /// `{"indices": [...], "values": [...]}`: a sparse query, for the sparse vector `using` names.
    Sparse(crate::SparseVectorInput),
}

/// A fusion method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FusionName {
    /// Reciprocal rank fusion (k = 60).
    Rrf,
    /// Distribution-based score fusion.
    Dbsf,
}

/// Reciprocal rank fusion's parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RrfParams {
    /// The rank constant (default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// One weight per prefetch (≥ 0; default all 1): weighted RRF, `Σ wᵢ / (k + rankᵢ)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f32>>,
}

/// Examples for a recommendation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendInput {
    /// Points, vectors or texts to look like (at least one).
    #[serde(default)]
    pub positive: Vec<NearestInput>,
    /// Points, vectors or texts to look unlike.
    #[serde(default)]
    pub negative: Vec<NearestInput>,
    /// `average_vector` (the default: search near `2·mean(positive) − mean(negative)`), `best_score` (each point
    /// scored by its closest example, negative when that is a negative one) or `sum_scores` (similarities to the
    /// positives minus those to the negatives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// `lookup_from`: the point ids of a query (the query itself, recommend's examples, discovery's target and
/// pairs) name points of another collection, whose vectors are used.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupLocation {
    /// The collection the ids are in (the caller must be allowed to read it).
    pub collection: String,
    /// Which of its vectors (absent: its unnamed vector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    /// Not supported (refused when given).
    #[schema(value_type = Object)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<Value>,
}

/// A discovery query: a target and context pairs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverInput {
    /// What to look for: a point id, a vector, a text or an image.
    pub target: NearestInput,
    /// The pairs constraining where to look.
    pub context: ContextInput,
}

/// Context pairs: a list, or a single pair.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ContextInput {
    /// Several pairs.
    Pairs(Vec<ContextPair>),
    /// One pair.
    Pair(ContextPair),
}

impl ContextInput {
    /// The pairs as a list.
    pub fn into_pairs(self) -> Vec<ContextPair> {
        match self {
            ContextInput::Pairs(p) => p,
            ContextInput::Pair(p) => vec![p],
        }
    }
}

/// A positive and a negative example: the points wanted are closer to the first than to the second.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextPair {
    /// The side to be on: a point id, a vector, a text or an image.
    pub positive: NearestInput,
    /// The side to stay away from.
    pub negative: NearestInput,
}

/// A BM25 full-text query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bm25Input {
    /// The payload key with a text index.
    pub key: String,
    /// The query text.
    pub text: String,
    /// Statistics to score with instead of the collection's own (a cluster node sends every shard the sum of
    /// theirs, so scores match one collection's). Rarely set by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Bm25Stats>,
}

/// The figures BM25 scores with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bm25Stats {
    /// Points holding at least one term in the key.
    pub docs: u64,
    /// Their total length in terms.
    pub total_len: u64,
    /// For each distinct term of the analyzed query text, in order of first appearance, the points holding it.
    pub df: Vec<u64>,
}

/// One stage run before the query (Qdrant's `prefetch`): its hits feed the fusion, or are the only points the
/// query ranks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prefetch {
    /// Stages run before this one (one object or a list).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<Value>,
    /// What this stage looks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryInput>,
    /// Vector name: must be empty or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    /// Only points this filter admits (the request's top-level filter applies as well).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Index parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<SearchParams>,
    /// Worse hits are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
    /// How many hits this stage passes on (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Not supported (400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_from: Option<LookupLocation>,
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
    /// An image embedded by the collection's image model.
    Image(ImageInput),
    /// A sparse query.
    Sparse(crate::SparseVectorInput),
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
    /// Stages run first (one [`Prefetch`] object or a list): fused by a `fusion`/`rrf` query, or the only points
    /// a nearest or `bm25` query ranks.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_from: Option<LookupLocation>,
    /// QuiverDB: return the plan (per segment: exact or index, estimated and real filter counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<bool>,
    /// QuiverDB: wait until this operation is applied (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_from: Option<LookupLocation>,
    /// QuiverDB: wait until this operation is applied (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// QuiverDB: a write's `read_token`: wait until every shard has applied that far (read your writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
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
