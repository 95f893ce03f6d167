//! Collection configuration: dimension, metric, the index of sealed segments (any kind of the family, with its
//! parameters, quantization included), durability, the tiering policy and the optimizer's thresholds.
//!
//! Every field but `dimension` has a default; unknown fields are errors; [`CollectionConfig::validate`] checks
//! the values (and index parameters, by building an empty index of the kind) before a collection is created.

use std::collections::BTreeMap;
use std::time::Duration;

use quiver_index::{IndexKind, Metric, Params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::feed::{DEFAULT_CHANGE_FEED_BYTES, MAX_CHANGE_FEED_BYTES};
use crate::payload::DEFAULT_MAX_PAYLOAD_BYTES;

/// Largest vector dimension a collection accepts.
pub const MAX_DIMENSION: usize = 65_536;

/// A collection's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Vector length.
    pub dimension: usize,
    /// `cosine` (default), `dot` or `euclidean`.
    #[serde(default = "default_metric", with = "metric_name")]
    pub metric: Metric,
    /// Index of sealed (hot) segments. Default: HNSW with its default parameters.
    #[serde(default = "IndexConfig::hnsw")]
    pub index: IndexConfig,
    /// When a write is acknowledged.
    #[serde(default)]
    pub durability: DurabilityConfig,
    /// Move old points to a cheaper index (`None`: every sealed segment uses `index`).
    #[serde(default)]
    pub tiering: Option<TieringConfig>,
    /// Sealing, merging and vacuuming thresholds.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// Largest payload of one point, bytes of compact JSON.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// Bytes of recent operations the in-memory change feed keeps (`Collection::changes_since`), counted as
    /// their encoded size plus a small overhead each; 0 disables the feed. Default 64 MiB, at most 4 GiB.
    #[serde(default = "default_change_feed_bytes")]
    pub change_feed_bytes: u64,
    /// The text embedding model of the collection, if any: points may then be written and searched with text
    /// (the server embeds it). The engine stores this setting and checks its shape; it never runs the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingConfig>,
    /// Searches whose answers are kept for repeats (0, the default: no cache); see [`crate::cache`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub query_cache_entries: usize,
    /// Named vectors: the name of the first vector, the one `dimension`, `metric`, `index` and `embedding`
    /// describe. `None`: the collection has one unnamed vector (and `more_vectors` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_name: Option<String>,
    /// Named vectors beyond the first, by name. A point carries any subset of the collection's named vectors;
    /// each has its own index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub more_vectors: BTreeMap<String, VectorSpace>,
    /// Sparse vectors by name (`{"indices", "values"}` per point), each searched exactly by dot product through
    /// an inverted index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sparse_vectors: BTreeMap<String, SparseVectorConfig>,
    /// A collection of sparse vectors only: points carry no dense vector and searches name a sparse one. Each row
    /// keeps a one-number zero in the dense vector's place (`dimension` 1, `dot`, `flat`), never returned or
    /// searched, so segments keep one shape; see [`CollectionConfig::sparse_only`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse_only: bool,
    /// The recall@10 searches aim for when they name no `ef`/`nprobe` (a query's own `target_recall` wins): each
    /// indexed segment's search width is picked from its measured recall; see [`crate::recall`]. `None`: the
    /// index's default width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_recall: Option<f64>,
}

/// A sparse vector of a collection: scores are exact dot products, of the query's weights as given or scaled by
/// each term's inverse document frequency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseVectorConfig {
    /// `none` (default) or `idf`.
    #[serde(default, skip_serializing_if = "SparseModifier::is_none")]
    pub modifier: SparseModifier,
}

/// How a sparse query's weights are scaled before scoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseModifier {
    /// As given.
    #[default]
    None,
    /// Each term's weight times its inverse document frequency over the collection's live points that have the
    /// vector, `ln((N − n + 0.5) / (n + 0.5) + 1)` for `n` of `N` points holding the term (BM25's IDF, as Qdrant
    /// computes it): store term frequencies as the values, and the collection supplies the IDF at query time.
    Idf,
}

impl SparseModifier {
    fn is_none(&self) -> bool {
        *self == SparseModifier::None
    }
}

/// Longest vector name.
pub const MAX_VECTOR_NAME_LEN: usize = 64;

/// Most named vectors in one collection.
pub const MAX_NAMED_VECTORS: usize = 16;

/// One named vector of a collection beyond the first: its own dimension, metric, index and embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSpace {
    /// Vector length.
    pub dimension: usize,
    /// `cosine` (default), `dot` or `euclidean`.
    #[serde(default = "default_metric", with = "metric_name")]
    pub metric: Metric,
    /// Index of sealed segments. Default: HNSW with its default parameters.
    #[serde(default = "IndexConfig::hnsw")]
    pub index: IndexConfig,
    /// The embedding model of this vector, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingConfig>,
}

impl VectorSpace {
    /// A vector of `dimension` under `metric`, HNSW-indexed, with no model.
    pub fn new(dimension: usize, metric: Metric) -> Self {
        VectorSpace { dimension, metric, index: IndexConfig::hnsw(), embedding: None }
    }
}

/// One vector space of a collection as the engine addresses it: space 0 is the first (or only) vector, the
/// others follow in name order.
#[derive(Debug, Clone, Copy)]
pub struct SpaceRef<'a> {
    /// The name (`""` for the unnamed vector).
    pub name: &'a str,
    /// Vector length.
    pub dimension: usize,
    /// Metric.
    pub metric: Metric,
    /// Index of sealed segments.
    pub index: &'a IndexConfig,
    /// Embedding model.
    pub embedding: Option<&'a EmbeddingConfig>,
}

fn check_vector_name(name: &str, field: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_VECTOR_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("a vector name of 1..={MAX_VECTOR_NAME_LEN} printable characters"),
            format!("{name:?}"),
        ));
    }
    Ok(())
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Longest embedding model name.
pub const MAX_MODEL_NAME_LEN: usize = 200;

/// A collection's text embedding model: built in (`{"model": "all-MiniLM-L6-v2"}`), or served by an
/// OpenAI-compatible embeddings endpoint (`{"model": "text-embedding-3-small", "url": "https://api.openai.com/v1",
/// "api_key_env": "OPENAI_API_KEY"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// The model's name: a directory name under the server's model directory, optionally with an owner prefix as
    /// on Hugging Face (`sentence-transformers/all-MiniLM-L6-v2`). Letters, digits, `.`, `_`, `-` and one `/`.
    /// With `url`, the name the endpoint knows the model by.
    pub model: String,
    /// An OpenAI-compatible embeddings endpoint (`http://` or `https://`): its base (`…/v1`, to which
    /// `/embeddings` is added) or the full `…/embeddings` address. None: the built-in model `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The name of the server's environment variable holding the endpoint's API key (sent as
    /// `Authorization: Bearer …`). The key itself is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// Longest `embedding.url`.
pub const MAX_EMBEDDING_URL_LEN: usize = 2048;

impl EmbeddingConfig {
    /// Checks the model name; the error names `embedding.model`.
    pub fn validate(&self) -> Result<()> {
        let name = &self.model;
        if self.url.is_some() {
            // The endpoint's own name for the model (`text-embedding-3-small`, `nomic-embed-text:latest`): any
            // printable text, since it is only sent, never used as a path here.
            if name.is_empty() || name.len() > MAX_MODEL_NAME_LEN || name.chars().any(|c| c.is_control()) {
                return Err(Error::invalid(
                    "embedding.model",
                    format!("the endpoint's model name, 1..={MAX_MODEL_NAME_LEN} printable characters"),
                    format!("{name:?}"),
                ));
            }
        }
        let parts: Vec<&str> = name.split('/').collect();
        let ok = self.url.is_some()
            || !name.is_empty()
                && name.len() <= MAX_MODEL_NAME_LEN
                && parts.len() <= 2
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && *p != "."
                        && *p != ".."
                        && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                });
        if !ok {
            return Err(Error::invalid(
                "embedding.model",
                format!(
                    "a model name of 1..={MAX_MODEL_NAME_LEN} letters, digits, '.', '_', '-', with at most one '/' \
                     (e.g. all-MiniLM-L6-v2)"
                ),
                format!("{name:?}"),
            ));
        }
        if let Some(url) = &self.url {
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            let ok = url.len() <= MAX_EMBEDDING_URL_LEN
                && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(Error::invalid(
                    "embedding.url",
                    format!(
                        "an http:// or https:// address of at most {MAX_EMBEDDING_URL_LEN} characters without spaces \
                         (e.g. https://api.openai.com/v1)"
                    ),
                    format!("{url:?}"),
                ));
            }
        }
        if let Some(env) = &self.api_key_env {
            if self.url.is_none() {
                return Err(Error::invalid(
                    "embedding.api_key_env",
                    "absent unless `embedding.url` names an endpoint (built-in models need no key)",
                    format!("{env:?}"),
                ));
            }
            let ok = !env.is_empty() && env.len() <= 128 && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(Error::invalid(
                    "embedding.api_key_env",
                    "the name of an environment variable: 1..=128 letters, digits and '_' (e.g. OPENAI_API_KEY)",
                    format!("{env:?}"),
                ));
            }
        }
        Ok(())
    }
}

fn default_change_feed_bytes() -> u64 {
    DEFAULT_CHANGE_FEED_BYTES
}

fn default_metric() -> Metric {
    Metric::Cosine
}

fn default_max_payload() -> usize {
    DEFAULT_MAX_PAYLOAD_BYTES
}

impl CollectionConfig {
    /// A configuration with every default and the given dimension and metric.
    pub fn new(dimension: usize, metric: Metric) -> Self {
        CollectionConfig {
            dimension,
            metric,
            index: IndexConfig::hnsw(),
            durability: DurabilityConfig::default(),
            tiering: None,
            optimizer: OptimizerConfig::default(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            change_feed_bytes: DEFAULT_CHANGE_FEED_BYTES,
            embedding: None,
            query_cache_entries: 0,
            vector_name: None,
            more_vectors: BTreeMap::new(),
            sparse_vectors: BTreeMap::new(),
            sparse_only: false,
            target_recall: None,
        }
    }

    /// A configuration with every default and these sparse vectors only (no dense vector).
    pub fn sparse_only(sparse_vectors: BTreeMap<String, SparseVectorConfig>) -> Self {
        let mut c = CollectionConfig::new(1, Metric::Dot);
        c.index = IndexConfig { kind: IndexKind::Flat, params: BTreeMap::new() };
        c.sparse_vectors = sparse_vectors;
        c.sparse_only = true;
        c
    }

    /// Whether points have a dense vector (every collection but one of sparse vectors only).
    pub fn has_dense(&self) -> bool {
        !self.sparse_only
    }

    /// The position of sparse vector `name` among the collection's sparse vectors (name order), if it has one.
    pub fn sparse_of(&self, name: &str) -> Option<usize> {
        self.sparse_vectors.keys().position(|n| n == name)
    }

    /// A configuration with every default and these named vectors (at least one): the first by name becomes
    /// space 0 (`dimension`, `metric`, `index`, `embedding`), the others `more_vectors`.
    pub fn with_named_vectors(vectors: BTreeMap<String, VectorSpace>) -> Result<Self> {
        let mut it = vectors.into_iter();
        let Some((first, space)) = it.next() else {
            return Err(Error::invalid("vectors", "at least one named vector", "none"));
        };
        let mut c = CollectionConfig::new(space.dimension, space.metric);
        c.index = space.index;
        c.embedding = space.embedding;
        c.vector_name = Some(first);
        c.more_vectors = it.collect();
        Ok(c)
    }

    /// Whether the collection's vectors are named.
    pub fn is_named(&self) -> bool {
        self.vector_name.is_some()
    }

    /// The collection's vector spaces: the first, then `more_vectors` in name order.
    pub fn spaces(&self) -> Vec<SpaceRef<'_>> {
        (0..self.space_count()).filter_map(|i| self.space(i)).collect()
    }

    /// How many vector spaces the collection has (1 + `more_vectors`).
    pub fn space_count(&self) -> usize {
        1 + self.more_vectors.len()
    }

    /// Vector space `i` of [`CollectionConfig::spaces`], without building the list.
    pub fn space(&self, i: usize) -> Option<SpaceRef<'_>> {
        if i == 0 {
            return Some(SpaceRef {
                name: self.vector_name.as_deref().unwrap_or(""),
                dimension: self.dimension,
                metric: self.metric,
                index: &self.index,
                embedding: self.embedding.as_ref(),
            });
        }
        self.more_vectors.iter().nth(i - 1).map(|(name, v)| SpaceRef {
            name,
            dimension: v.dimension,
            metric: v.metric,
            index: &v.index,
            embedding: v.embedding.as_ref(),
        })
    }

    /// The names of the collection's vectors, in space order (empty when it has one unnamed vector).
    pub fn vector_names(&self) -> Vec<&str> {
        if self.is_named() { self.spaces().into_iter().map(|s| s.name).collect() } else { Vec::new() }
    }

    /// The space a request's `using` names: absent or `""` is the unnamed vector of an unnamed collection; a
    /// named collection needs one of its names. The error names `field`.
    pub fn space_of(&self, using: Option<&str>, field: &str) -> Result<usize> {
        let using = using.unwrap_or("");
        if !self.is_named() {
            if using.is_empty() {
                return Ok(0);
            }
            return Err(Error::invalid(
                field,
                "absent or \"\" (the collection has one unnamed vector)",
                format!("{using:?}"),
            ));
        }
        self.spaces().iter().position(|s| s.name == using).ok_or_else(|| {
            Error::invalid(
                field,
                format!("one of the collection's vectors {:?}", self.vector_names()),
                format!("{using:?}"),
            )
        })
    }

    /// What a collection of sparse vectors only requires: sparse vectors, the placeholder's shape, and nothing
    /// that needs a dense vector.
    fn validate_sparse_only(&self) -> Result<()> {
        let dense =
            |field: &str| Err(Error::invalid(field, "absent for a collection of sparse vectors only", "a value"));
        if self.sparse_vectors.is_empty() {
            return Err(Error::invalid("sparse_vectors", "at least one sparse vector (sparse_only is set)", "none"));
        }
        if self.dimension != 1 || self.metric != Metric::Dot {
            return Err(Error::invalid(
                "dimension",
                "1 under dot (a collection of sparse vectors only keeps a one-number placeholder)",
                self.dimension,
            ));
        }
        if self.vector_name.is_some() || !self.more_vectors.is_empty() {
            return dense("vector_name");
        }
        if self.embedding.is_some() {
            return dense("embedding");
        }
        if self.tiering.is_some() {
            return dense("tiering");
        }
        if self.index.kind != IndexKind::Flat || !self.index.params.is_empty() {
            return Err(Error::invalid(
                "index",
                "flat with no parameters for a collection of sparse vectors only (each has its own index)",
                self.index.kind.name(),
            ));
        }
        Ok(())
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.sparse_only {
            self.validate_sparse_only()?;
        }
        if !(1..=MAX_DIMENSION).contains(&self.dimension) {
            return Err(Error::invalid("dimension", format!("1..={MAX_DIMENSION}"), self.dimension));
        }
        self.index.validate("index", self.metric, self.dimension)?;
        match &self.vector_name {
            None if !self.more_vectors.is_empty() => {
                return Err(Error::invalid(
                    "vector_name",
                    "the first vector's name when `more_vectors` is given",
                    "absent",
                ));
            }
            None => {}
            Some(first) => {
                check_vector_name(first, "vector_name")?;
                if self.more_vectors.len() + 1 > MAX_NAMED_VECTORS {
                    return Err(Error::invalid(
                        "more_vectors",
                        format!("at most {MAX_NAMED_VECTORS} named vectors in all"),
                        self.more_vectors.len() + 1,
                    ));
                }
                if self.more_vectors.contains_key(first) {
                    return Err(Error::invalid(
                        format!("more_vectors.{first}"),
                        "names other than `vector_name`",
                        format!("{first:?} twice"),
                    ));
                }
                for (name, v) in &self.more_vectors {
                    let at = format!("more_vectors.{name}");
                    check_vector_name(name, &at)?;
                    if !(1..=MAX_DIMENSION).contains(&v.dimension) {
                        return Err(Error::invalid(
                            format!("{at}.dimension"),
                            format!("1..={MAX_DIMENSION}"),
                            v.dimension,
                        ));
                    }
                    v.index.validate(&format!("{at}.index"), v.metric, v.dimension)?;
                    if let Some(e) = &v.embedding {
                        e.validate().map_err(|e| e.prefixed(&at))?;
                    }
                }
            }
        }
        for name in self.sparse_vectors.keys() {
            check_vector_name(name, &format!("sparse_vectors.{name}"))?;
            if self.vector_name.as_deref() == Some(name.as_str()) || self.more_vectors.contains_key(name) {
                return Err(Error::invalid(
                    format!("sparse_vectors.{name}"),
                    "a name no dense vector has",
                    format!("{name:?}, also a dense vector"),
                ));
            }
        }
        if self.sparse_vectors.len() > MAX_NAMED_VECTORS {
            return Err(Error::invalid(
                "sparse_vectors",
                format!("at most {MAX_NAMED_VECTORS} sparse vectors"),
                self.sparse_vectors.len(),
            ));
        }
        if let Some(t) = &self.tiering {
            // Cold segments index every dense vector with the cold index (sparse vectors keep their own).
            for space in self.spaces() {
                t.cold_index.validate("tiering.cold_index", space.metric, space.dimension)?;
            }
            if t.hot_age_secs == 0 {
                return Err(Error::invalid("tiering.hot_age_secs", "at least 1", 0));
            }
        }
        self.optimizer.validate()?;
        if let Some(e) = &self.embedding {
            e.validate()?;
        }
        if !(64..=(64 << 20)).contains(&self.max_payload_bytes) {
            return Err(Error::invalid("max_payload_bytes", "64..=67108864", self.max_payload_bytes));
        }
        if self.change_feed_bytes > MAX_CHANGE_FEED_BYTES {
            return Err(Error::invalid(
                "change_feed_bytes",
                format!("0..={MAX_CHANGE_FEED_BYTES} (0 disables the change feed)"),
                self.change_feed_bytes,
            ));
        }
        if self.query_cache_entries > crate::cache::MAX_QUERY_CACHE_ENTRIES {
            return Err(Error::invalid(
                "query_cache_entries",
                format!("0..={} (0: no cache)", crate::cache::MAX_QUERY_CACHE_ENTRIES),
                self.query_cache_entries,
            ));
        }
        if let Some(t) = self.target_recall
            && !(t > 0.0 && t <= 1.0)
        {
            return Err(Error::invalid("target_recall", "a number in (0, 1]", t));
        }
        if let DurabilityConfig::Batch { max_delay_ms } = self.durability
            && max_delay_ms > 1000
        {
            return Err(Error::invalid("durability.max_delay_ms", "0..=1000", max_delay_ms));
        }
        Ok(())
    }

    /// The storage layer's durability mode.
    pub(crate) fn wal_durability(&self) -> quiver_storage::Durability {
        match self.durability {
            DurabilityConfig::Fsync => quiver_storage::Durability::Fsync,
            DurabilityConfig::Batch { max_delay_ms } => {
                quiver_storage::Durability::Batch { max_delay: Duration::from_millis(max_delay_ms) }
            }
            DurabilityConfig::None => quiver_storage::Durability::None,
        }
    }
}

/// Which index and with which build parameters (`{"kind": "hnsw", "params": {"m": 16, "quantization": "sq8"}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// `flat`, `hnsw`, `ivf`, `kdtree`, `lsh` or `kd-lsh`.
    #[serde(with = "kind_name")]
    pub kind: IndexKind,
    /// Build parameters of that kind (numbers, strings or booleans).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

impl IndexConfig {
    /// HNSW with default parameters.
    pub fn hnsw() -> Self {
        IndexConfig { kind: IndexKind::Hnsw, params: BTreeMap::new() }
    }

    /// IVF-PQ (the default cold tier): `quantization=pq`, `nlist` chosen from the segment size.
    pub fn ivf_pq() -> Self {
        let mut params = BTreeMap::new();
        params.insert("quantization".to_owned(), serde_json::Value::from("pq"));
        IndexConfig { kind: IndexKind::Ivf, params }
    }

    /// The build parameters in the index crate's form.
    pub fn to_params(&self) -> Result<Params> {
        let mut p = Params::new();
        for (k, v) in &self.params {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => return Err(Error::invalid(format!("index.params.{k}"), "a number, string or boolean", other)),
            };
            p.set(k, s);
        }
        Ok(p)
    }

    fn validate(&self, field: &str, metric: Metric, dim: usize) -> Result<()> {
        let params = self.to_params()?;
        for key in params.keys() {
            if !self.kind.build_params().contains(&key) {
                return Err(Error::invalid(
                    format!("{field}.params.{key}"),
                    format!("one of {:?} for a {} index", self.kind.build_params(), self.kind),
                    key,
                ));
            }
        }
        let _ = metric;
        if let Some(m) = params.get("pq_m").and_then(|m| m.parse::<usize>().ok())
            && m > 0
            && !dim.is_multiple_of(m)
        {
            return Err(Error::invalid(format!("{field}.params.pq_m"), format!("a divisor of the dimension {dim}"), m));
        }
        self.kind.check_params(params).map_err(|e| Error::InvalidArgument {
            field: format!("{field}.params"),
            expected: format!("valid {} parameters", self.kind),
            got: e.to_string(),
        })?;
        Ok(())
    }
}

/// When a write is acknowledged (`"fsync"`, `{"batch": {"max_delay_ms": 2}}`, `"none"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum DurabilityConfig {
    /// After the write's own fsync (default).
    #[default]
    Fsync,
    /// Group commit: concurrent writes share an fsync; acknowledged once it covers them.
    Batch {
        /// How long a group waits for more writers.
        #[serde(default)]
        max_delay_ms: u64,
    },
    /// No fsync: a process crash loses nothing, a power cut may lose the last writes.
    None,
}

/// The time-tiered hybrid: recent points in the hot index, older ones in the cold index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TieringConfig {
    /// A sealed segment whose newest point is older than this moves to the cold tier.
    pub hot_age_secs: u64,
    /// Index of cold segments (default IVF-PQ).
    #[serde(default = "IndexConfig::ivf_pq")]
    pub cold_index: IndexConfig,
}

/// Optimizer thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// Seal the growing segment once it holds this many points.
    pub seal_points: usize,
    /// ... or once its oldest write is this old (seconds; 0 = never by age).
    pub seal_age_secs: u64,
    /// ... or once it holds more than `exact_below` points and has taken no write for this long (seconds; 0 =
    /// never when idle): the tail of a bulk load is indexed instead of being scanned exactly until more writes come.
    pub seal_idle_secs: u64,
    /// Sealed segments below this many live points are merged together.
    pub merge_below_points: usize,
    /// Most sealed segments per tier before the smallest are merged; 0 = one per available core (searches run
    /// the segments in parallel, so that many cost about as much as one).
    pub max_segments: usize,
    /// Rewrite a sealed segment once this share of its rows is deleted or expired.
    pub vacuum_deleted_ratio: f64,
    /// How often the background optimizer looks for work (milliseconds; 0 = no background thread, jobs run only
    /// when asked).
    pub interval_ms: u64,
    /// A filtered search scores a segment's admitted points exactly when they are at most this many, or at most
    /// `sqrt(2000 · live points)` (the planner's cost model, `segment::EXACT_COST_RATIO`); otherwise it runs the
    /// segment's index with the filter.
    pub exact_below: usize,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            seal_points: 50_000,
            seal_age_secs: 0,
            seal_idle_secs: 10,
            merge_below_points: 20_000,
            max_segments: 0,
            vacuum_deleted_ratio: 0.2,
            interval_ms: 1000,
            exact_below: 2048,
        }
    }
}

impl OptimizerConfig {
    /// `max_segments`, with 0 resolved to the number of available cores (at least 2).
    pub fn max_segments_per_tier(&self) -> usize {
        match self.max_segments {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            n => n,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(1..=(1 << 26)).contains(&self.seal_points) {
            return Err(Error::invalid("optimizer.seal_points", "1..=67108864", self.seal_points));
        }
        if !(self.vacuum_deleted_ratio > 0.0 && self.vacuum_deleted_ratio <= 1.0) {
            return Err(Error::invalid(
                "optimizer.vacuum_deleted_ratio",
                "a number in (0, 1]",
                self.vacuum_deleted_ratio,
            ));
        }
        Ok(())
    }
}

mod metric_name {
    use quiver_index::Metric;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let s = String::deserialize(d)?;
        Metric::parse(&s.to_ascii_lowercase()).map_err(D::Error::custom)
    }
}

mod kind_name {
    use quiver_index::IndexKind;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(k: &IndexKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IndexKind, D::Error> {
        let s = String::deserialize(d)?;
        IndexKind::parse(&s).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let c: CollectionConfig = serde_json::from_str(r#"{"dimension": 4}"#).unwrap();
        assert_eq!(c, CollectionConfig::new(4, Metric::Cosine));
        c.validate().unwrap();
        let back: CollectionConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let t: CollectionConfig = serde_json::from_str(
            r#"{"dimension": 8, "metric": "Euclidean", "durability": {"batch": {"max_delay_ms": 2}},
                "tiering": {"hot_age_secs": 60}, "index": {"kind": "hnsw", "params": {"m": 8, "quantization": "sq8"}}}"#,
        )
        .unwrap();
        t.validate().unwrap();
        assert_eq!(t.tiering.unwrap().cold_index, IndexConfig::ivf_pq());
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let err = |json: &str| -> String {
            match serde_json::from_str::<CollectionConfig>(json) {
                Err(e) => e.to_string(),
                Ok(c) => c.validate().unwrap_err().to_string(),
            }
        };
        assert!(err(r#"{"dimension": 0}"#).contains("dimension"));
        assert!(err(r#"{"dimension": 4, "metric": "manhattan"}"#).contains("manhattan"));
        assert!(err(r#"{"dimension": 4, "bogus": 1}"#).contains("bogus"));
        assert!(err(r#"{"dimension": 4, "index": {"kind": "hnsw", "params": {"mm": 3}}}"#).contains("index.params.mm"));
        assert!(
            err(r#"{"dimension": 4, "index": {"kind": "hnsw", "params": {"m": "lots"}}}"#).contains("index.params")
        );
        assert!(err(r#"{"dimension": 4, "index": {"kind": "btree"}}"#).contains("btree"));
        assert!(err(r#"{"dimension": 4, "tiering": {"hot_age_secs": 0}}"#).contains("tiering.hot_age_secs"));
        assert!(err(r#"{"dimension": 4, "change_feed_bytes": 4294967297}"#).contains("change_feed_bytes"));
        assert!(err(r#"{"dimension": 4, "change_feed_bytes": -1}"#).contains("invalid"));
    }

    #[test]
    fn embedding_endpoints_are_checked_and_old_configs_read_unchanged() {
        let ok = |json: &str| serde_json::from_str::<EmbeddingConfig>(json).unwrap().validate();
        ok(r#"{"model": "all-MiniLM-L6-v2"}"#).unwrap();
        ok(r#"{"model": "text-embedding-3-small", "url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"}"#)
            .unwrap();
        ok(r#"{"model": "nomic-embed-text:latest", "url": "http://127.0.0.1:11434/v1"}"#).unwrap();
        for (json, field) in [
            (r#"{"model": "m", "url": "ftp://x"}"#, "embedding.url"),
            (r#"{"model": "m", "url": "http://"}"#, "embedding.url"),
            (r#"{"model": "m", "url": "http://a b"}"#, "embedding.url"),
            (r#"{"model": "m", "api_key_env": "K"}"#, "embedding.api_key_env"),
            (r#"{"model": "m", "url": "http://h", "api_key_env": "A-B"}"#, "embedding.api_key_env"),
            (r#"{"model": "a:b"}"#, "embedding.model"),
            (r#"{"model": "", "url": "http://h"}"#, "embedding.model"),
        ] {
            let e = ok(json).unwrap_err().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
        // A built-in model's config is written exactly as before the endpoint fields existed.
        let c = EmbeddingConfig { model: "all-MiniLM-L6-v2".into(), ..Default::default() };
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"model":"all-MiniLM-L6-v2"}"#);
    }

    #[test]
    fn change_feed_bytes_defaults_for_old_config_files_and_accepts_zero() {
        // A config.json written before the field existed still loads, with the default.
        let old: CollectionConfig = serde_json::from_str(r#"{"dimension": 4, "max_payload_bytes": 1024}"#).unwrap();
        assert_eq!(old.change_feed_bytes, DEFAULT_CHANGE_FEED_BYTES);
        let off: CollectionConfig = serde_json::from_str(r#"{"dimension": 4, "change_feed_bytes": 0}"#).unwrap();
        off.validate().unwrap();
        let max: CollectionConfig =
            serde_json::from_str(&format!(r#"{{"dimension": 4, "change_feed_bytes": {MAX_CHANGE_FEED_BYTES}}}"#))
                .unwrap();
        max.validate().unwrap();
    }
}
