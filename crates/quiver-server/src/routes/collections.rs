//! Collections and payload indexes.

use axum::Extension;
use axum::extract::{Path, State};
use quiver_engine::{CollectionConfig, EmbeddingConfig, FieldType, TextOptions};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

use super::{CollectionPath, WriteParams, finish_write};
use crate::access::Access;
use crate::convert;
use crate::embedding;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Reply, Started};
use crate::state::{AppState, blocking};
use crate::wire::{
    CollectionDescription, CollectionExistence, CollectionInfo, CollectionsResponse, CreateCollection,
    CreateFieldIndex, Envelope, ErrorBody, FieldSchema, UpdateResult,
};

/// Lists collections.
#[utoipa::path(get, path = "/collections", tag = "collections",
    responses((status = 200, body = Envelope<CollectionsResponse>), (status = "4XX", body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(access): Extension<Access>,
    t: Started,
) -> ApiResult<Reply<CollectionsResponse>> {
    let db = s.db()?;
    let collections = db
        .list()
        .into_iter()
        .filter(|c| access.can_read(&c.name))
        .map(|c| CollectionDescription { name: c.name, unavailable: c.unavailable })
        .collect();
    Ok(Reply(CollectionsResponse { collections }, t))
}

/// The embedding model a create request names, checked (its name is used to find a directory; a `url` is checked
/// for shape).
pub fn requested_model(body: &CreateCollection) -> ApiResult<Option<EmbeddingConfig>> {
    let Some(v) = body.embedding.as_ref().filter(|v| !v.is_null()) else { return Ok(None) };
    let e: EmbeddingConfig = serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid embedding: {e} (expected {{\"model\": \"<name>\"}}, optionally with \"url\" and \"api_key_env\")"
        ))
    })?;
    e.validate()?;
    Ok(Some(e))
}

/// The dimension of the model a create request names (loading it, or asking its endpoint), if it names one.
pub async fn requested_model_dim(s: &AppState, body: &CreateCollection) -> ApiResult<Option<usize>> {
    let Some(e) = requested_model(body)? else { return Ok(None) };
    let state = s.clone();
    Ok(Some(blocking(move || Ok(state.embedders().for_embedding(&e)?.dim())).await?))
}

/// Builds the engine configuration from Qdrant's fields and QuiverDB's; `model_dim` is the dimension of the
/// embedding model the request names (it sets the vector size when `vectors` is left out, and must match it
/// otherwise).
pub fn engine_config(body: CreateCollection, model_dim: Option<usize>) -> ApiResult<CollectionConfig> {
    let body_vectors = body.vectors.clone();
    let sparse = body.sparse_vectors.clone().filter(|v| !v.is_null());
    // Sparse vectors and no dense one (`vectors` absent or `{}`, no model): a collection of sparse vectors only.
    let sparse_only = model_dim.is_none()
        && sparse.as_ref().and_then(Value::as_object).is_some_and(|m| !m.is_empty())
        && match &body.vectors {
            None => true,
            Some(crate::wire::VectorsConfig::Named(m)) => m.is_empty(),
            Some(_) => false,
        };
    let spaces = match &body.vectors {
        _ if sparse_only => Vec::new(),
        Some(v) => convert::vector_spaces(v)?,
        None => Vec::new(),
    };
    if spaces.first().is_some_and(|s| s.0.is_some()) && body.embedding.as_ref().is_some_and(|e| !e.is_null()) {
        return Err(ApiError::invalid(
            "embedding",
            "absent with named vectors (give each named vector its own model: `vectors.<name>.embedding`)",
            "a model for the whole collection",
        ));
    }
    let (dim, metric) = match (spaces.first(), model_dim) {
        _ if sparse_only => (1, quiver_index::Metric::Dot),
        (Some((_, d, m)), _) => (*d, *m),
        (None, Some(d)) => (d, quiver_index::Metric::Cosine),
        (None, None) => {
            return Err(ApiError::invalid(
                "vectors",
                "{\"size\": N, \"distance\": \"Cosine\"} (or an `embedding` model to take its size, or \
                 `sparse_vectors` alone)",
                "nothing",
            ));
        }
    };
    if let (Some(model), Some(d)) = (requested_model(&body)?, model_dim) {
        embedding::check_dimension(&model.model, d, dim)?;
    }
    for (name, v) in [("shard_number", body.shard_number), ("replication_factor", body.replication_factor)] {
        if let Some(n) = v
            && n != 1
        {
            return Err(ApiError::invalid(name, "1 (a single node)", n));
        }
    }
    if let Some(s) = body.sharding.as_ref().filter(|v| !v.is_null())
        && s != &json!({"method": "hash"})
    {
        return Err(ApiError::invalid("sharding", "absent or {\"method\": \"hash\"} on a single node", s));
    }
    for (name, v) in [("quantization_config", &body.quantization_config), ("init_from", &body.init_from)] {
        if v.as_ref().is_some_and(|v| !v.is_null()) {
            let hint = if name == "quantization_config" {
                " (set `index.params.quantization` to sq8, sq4 or pq instead)"
            } else {
                ""
            };
            return Err(ApiError::invalid(name, format!("absent{hint}"), "a value (not supported)"));
        }
    }
    let mut m = Map::new();
    m.insert("dimension".into(), json!(dim));
    m.insert("metric".into(), json!(quiver_metric_name(metric)));
    for (k, v) in [
        ("index", body.index),
        ("tiering", body.tiering),
        ("durability", body.durability),
        ("optimizer", body.optimizer),
        ("max_payload_bytes", body.max_payload_bytes.map(Value::from)),
        ("change_feed_bytes", body.change_feed_bytes.map(Value::from)),
        ("query_cache_entries", body.query_cache_entries.map(Value::from)),
        ("target_recall", body.target_recall.map(Value::from)),
        ("embedding", body.embedding.filter(|v| !v.is_null())),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    if let Some(h) = body.hnsw_config {
        let index = m.entry("index").or_insert_with(|| json!({"kind": "hnsw"}));
        let is_hnsw = index.get("kind").and_then(Value::as_str) == Some("hnsw");
        if (h.m.is_some() || h.ef_construct.is_some()) && !is_hnsw {
            return Err(ApiError::invalid("hnsw_config", "absent when `index.kind` is not hnsw", "hnsw settings"));
        }
        if let Some(obj) = index.as_object_mut() {
            let params = obj.entry("params").or_insert_with(|| json!({}));
            if let Some(p) = params.as_object_mut() {
                if let Some(mm) = h.m {
                    p.insert("m".into(), json!(mm));
                }
                if let Some(ef) = h.ef_construct {
                    p.insert("ef_construction".into(), json!(ef));
                }
            }
        }
    }
    if sparse_only {
        m.entry("index").or_insert_with(|| json!({"kind": "flat"}));
    }
    let bytes = serde_json::to_vec(&Value::Object(m)).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut cfg: CollectionConfig = crate::extract::parse_json(&bytes)?;
    cfg.sparse_only = sparse_only;
    // Named vectors: the first by name is space 0 (the fields above); the others share its index settings.
    let models = named_models(body_vectors.as_ref())?;
    cfg.sparse_vectors = sparse_configs(sparse.as_ref())?;
    if let Some((Some(first), _, _)) = spaces.first() {
        cfg.vector_name = Some(first.clone());
        for (name, dim, metric) in spaces.iter().skip(1) {
            let name = name.clone().unwrap_or_default();
            let mut space = quiver_engine::config::VectorSpace::new(*dim, *metric);
            space.index = cfg.index.clone();
            space.embedding = models.get(&name).cloned();
            cfg.more_vectors.insert(name, space);
        }
        cfg.embedding = models.get(first).cloned();
    }
    cfg.validate().map_err(|e| match e {
        // A named vector's settings are under `vectors.<name>` in the request.
        quiver_engine::Error::InvalidArgument { field, expected, got } if field.starts_with("more_vectors.") => {
            ApiError::invalid(format!("vectors.{}", &field["more_vectors.".len()..]), expected, got)
        }
        other => other.into(),
    })?;
    Ok(cfg)
}

/// Qdrant's `sparse_vectors` (`{"terms": {"index": {...}, "modifier": "idf"}}`) → the engine's. `index`
/// settings (on disk, full-scan threshold, data type) have no effect: every sparse search is exact through the
/// in-memory inverted index.
fn sparse_configs(
    v: Option<&Value>,
) -> ApiResult<std::collections::BTreeMap<String, quiver_engine::config::SparseVectorConfig>> {
    let mut out = std::collections::BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let Some(m) = v.as_object() else {
        return Err(ApiError::invalid("sparse_vectors", "an object of sparse vectors by name", v));
    };
    for (name, p) in m {
        let at = format!("sparse_vectors.{name}");
        let Some(p) = p.as_object() else {
            return Err(ApiError::invalid(at, "an object ({} or {\"modifier\": \"none\"})", p));
        };
        let mut cfg = quiver_engine::config::SparseVectorConfig::default();
        for (k, v) in p {
            match (k.as_str(), v) {
                ("index", Value::Object(_) | Value::Null) => {}
                ("modifier", Value::Null) => {}
                ("modifier", Value::String(s)) if s == "none" => {}
                ("modifier", Value::String(s)) if s == "idf" => {
                    cfg.modifier = quiver_engine::config::SparseModifier::Idf
                }
                ("modifier", other) => {
                    return Err(ApiError::invalid(format!("{at}.modifier"), "\"none\", \"idf\" or absent", other));
                }
                (other, _) => {
                    return Err(ApiError::invalid(
                        format!("{at}.{other}"),
                        "`index` or `modifier`",
                        "an unknown field",
                    ));
                }
            }
        }
        out.insert(name.clone(), cfg);
    }
    Ok(out)
}

/// The embedding models of named vectors (`vectors.<name>.embedding`), by name.
fn named_models(
    vectors: Option<&crate::wire::VectorsConfig>,
) -> ApiResult<std::collections::BTreeMap<String, quiver_engine::EmbeddingConfig>> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(crate::wire::VectorsConfig::Named(m)) = vectors {
        for (name, p) in m {
            if let Some(e) = p.embedding.as_ref().filter(|e| !e.is_null()) {
                let field = format!("vectors.{name}.embedding");
                let bytes = serde_json::to_vec(e).map_err(|e| ApiError::internal(e.to_string()))?;
                let cfg: quiver_engine::EmbeddingConfig = crate::extract::parse_json(&bytes).map_err(|mut e| {
                    e.message = format!("{field}: {}", e.message);
                    e
                })?;
                cfg.validate().map_err(|e| ApiError::from(e.prefixed(&field)))?;
                out.insert(name.clone(), cfg);
            }
        }
    }
    Ok(out)
}

/// Qdrant's `vectors` of a collection's configuration: one `{size, distance}`, or one per named vector (with its
/// embedding model, if any).
pub fn vectors_json(cfg: &CollectionConfig) -> Value {
    let one = |dim: usize, metric, embedding: Option<&quiver_engine::EmbeddingConfig>| {
        let mut v = json!({"size": dim, "distance": convert::distance_name(metric)});
        if let Some(e) = embedding {
            v["embedding"] = json!(e);
        }
        v
    };
    if !cfg.has_dense() {
        return json!({});
    }
    if !cfg.is_named() {
        return one(cfg.dimension, cfg.metric, None);
    }
    let named: Map<String, Value> =
        cfg.spaces().iter().map(|s| (s.name.to_owned(), one(s.dimension, s.metric, s.embedding))).collect();
    Value::Object(named)
}

fn quiver_metric_name(m: quiver_index::Metric) -> &'static str {
    match m {
        quiver_index::Metric::Cosine => "cosine",
        quiver_index::Metric::Dot => "dot",
        quiver_index::Metric::Euclidean => "euclidean",
    }
}

/// Creates a collection.
#[utoipa::path(put, path = "/collections/{collection_name}", tag = "collections", params(CollectionPath),
    request_body = CreateCollection,
    responses((status = 200, body = Envelope<bool>), (status = 409, body = ErrorBody), (status = "4XX", body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<CreateCollection>,
) -> ApiResult<Reply<bool>> {
    let model_dim = requested_model_dim(&s, &body).await?;
    let cfg = engine_config(body, model_dim)?;
    let db = s.db()?;
    let state = s.clone();
    blocking(move || {
        // Each named vector's model loads and gives vectors of that vector's size.
        state.embedders().check_spaces(&p.collection_name, &cfg)?;
        Ok(db.create_collection(&p.collection_name, cfg).map(drop)?)
    })
    .await?;
    Ok(Reply(true, t))
}

/// Deletes a collection and its files. `false` when there was none (as Qdrant answers).
#[utoipa::path(delete, path = "/collections/{collection_name}", tag = "collections", params(CollectionPath),
    responses((status = 200, body = Envelope<bool>), (status = "4XX", body = ErrorBody)))]
pub async fn delete(State(s): State<AppState>, Path(p): Path<CollectionPath>, t: Started) -> ApiResult<Reply<bool>> {
    let db = s.db()?;
    let existed = blocking(move || match db.drop_collection(&p.collection_name) {
        Ok(()) => Ok(true),
        Err(quiver_engine::Error::CollectionNotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    })
    .await?;
    Ok(Reply(existed, t))
}

/// Whether a collection exists.
#[utoipa::path(get, path = "/collections/{collection_name}/exists", tag = "collections", params(CollectionPath),
    responses((status = 200, body = Envelope<CollectionExistence>)))]
pub async fn exists(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
) -> ApiResult<Reply<CollectionExistence>> {
    let db = s.db()?;
    let exists = db.list().iter().any(|c| c.name == p.collection_name);
    Ok(Reply(CollectionExistence { exists }, t))
}

/// A collection's configuration and state.
#[utoipa::path(get, path = "/collections/{collection_name}", tag = "collections", params(CollectionPath),
    responses((status = 200, body = Envelope<CollectionInfo>), (status = 404, body = ErrorBody)))]
pub async fn info(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
) -> ApiResult<Reply<CollectionInfo>> {
    let col = s.collection(&p.collection_name)?;
    let (info, indexed_points) = blocking(move || {
        let info = col.info()?;
        // Qdrant reports, per payload index, how many points hold a value at the key.
        let mut counts = Vec::with_capacity(info.payload_indexes.len());
        for (key, _) in &info.payload_indexes {
            let f = quiver_engine::Filter {
                must_not: vec![quiver_engine::filter::Condition::IsEmpty { key: key.clone() }],
                ..Default::default()
            };
            counts.push(col.count(Some(&f))?);
        }
        Ok((info, counts))
    })
    .await?;
    let cfg = &info.config;
    let (status, optimizer_status) = match (&info.optimizer.last_error, &info.optimizer.running) {
        (Some(e), _) => ("red", json!({ "error": e })),
        (None, Some(_)) => ("yellow", json!("ok")),
        (None, None) => ("green", json!("ok")),
    };
    let indexed: u64 = info.segments.iter().filter(|s| s.index != "exact").map(|s| s.live).sum();
    let hnsw = if cfg.index.kind == quiver_index::IndexKind::Hnsw {
        json!({
            "m": cfg.index.params.get("m").cloned().unwrap_or(json!(16)),
            "ef_construct": cfg.index.params.get("ef_construction").cloned().unwrap_or(json!(100)),
            "full_scan_threshold": cfg.optimizer.exact_below,
        })
    } else {
        json!({"m": 0, "ef_construct": 0, "full_scan_threshold": cfg.optimizer.exact_below})
    };
    let config = json!({
        "params": {
            "vectors": vectors_json(cfg),
            "sparse_vectors": cfg.sparse_vectors.iter().map(|(k, c)| (k.clone(), json!(c))).collect::<Map<String, Value>>(),
            "shard_number": 1, "replication_factor": 1, "write_consistency_factor": 1, "on_disk_payload": false,
        },
        "hnsw_config": hnsw,
        "optimizer_config": {
            "deleted_threshold": cfg.optimizer.vacuum_deleted_ratio,
            "vacuum_min_vector_number": 0,
            "default_segment_number": cfg.optimizer.max_segments,
            "indexing_threshold": cfg.optimizer.seal_points,
            "flush_interval_sec": 1,
        },
        "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
        "embedding": cfg.embedding,
    });
    let payload_schema: Map<String, Value> = info
        .payload_indexes
        .iter()
        .zip(indexed_points)
        .map(|((k, ty), n)| (k.clone(), json!({ "data_type": ty.name(), "params": index_params(*ty), "points": n })))
        .collect();
    let out = CollectionInfo {
        status: status.to_owned(),
        optimizer_status,
        points_count: info.points,
        vectors_count: info.points,
        indexed_vectors_count: indexed,
        segments_count: info.segments.len() as u64,
        config,
        payload_schema: Value::Object(payload_schema),
        quiver: serde_json::to_value(&info).map_err(|e| ApiError::internal(e.to_string()))?,
    };
    Ok(Reply(out, t))
}

pub fn field_type(s: Option<FieldSchema>) -> ApiResult<FieldType> {
    const TYPES: &str = "keyword, integer, float, bool, datetime, uuid, text or geo";
    let (name, text) = match s {
        None => {
            return Err(ApiError::invalid("field_schema", TYPES, "nothing (QuiverDB does not guess types)"));
        }
        Some(FieldSchema::Name(n)) => (n, TextOptions::default()),
        Some(FieldSchema::Params {
            ty,
            tokenizer,
            lowercase,
            stemmer,
            stopwords,
            min_token_len,
            max_token_len,
            phrase_matching,
        }) => {
            let mut o = TextOptions::default();
            if ty == "text" {
                if let Some(t) = tokenizer.filter(|t| t != "word") {
                    return Err(ApiError::invalid("field_schema.tokenizer", "\"word\" or absent", format!("{t:?}")));
                }
                if lowercase == Some(false) {
                    return Err(ApiError::invalid("field_schema.lowercase", "true or absent", "false"));
                }
                for (field, v) in [("min_token_len", min_token_len), ("max_token_len", max_token_len)] {
                    if let Some(v) = v {
                        return Err(ApiError::invalid(format!("field_schema.{field}"), "absent (not supported)", v));
                    }
                }
                if phrase_matching == Some(true) {
                    return Err(ApiError::invalid("field_schema.phrase_matching", "false or absent", "true"));
                }
                o.stem = match stemmer {
                    None | Some(Value::Null) => false,
                    Some(v) if v.get("type") == Some(&json!("snowball")) && is_english(v.get("language")) => true,
                    Some(v) => {
                        return Err(ApiError::invalid(
                            "field_schema.stemmer",
                            "{\"type\": \"snowball\", \"language\": \"english\"}",
                            v,
                        ));
                    }
                };
                o.stopwords = match stopwords {
                    None | Some(Value::Null) => false,
                    Some(v) if is_english(Some(&v)) => true,
                    Some(Value::Object(m))
                        if m.len() == 1
                            && m.get("languages")
                                .and_then(Value::as_array)
                                .is_some_and(|l| l.len() == 1 && is_english(l.first())) =>
                    {
                        true
                    }
                    Some(v) => {
                        return Err(ApiError::invalid(
                            "field_schema.stopwords",
                            "\"english\" or {\"languages\": [\"english\"]}",
                            v,
                        ));
                    }
                };
            }
            (ty, o)
        }
    };
    Ok(match name.as_str() {
        "keyword" | "uuid" => FieldType::Keyword,
        "integer" => FieldType::Integer,
        "float" => FieldType::Float,
        "bool" => FieldType::Bool,
        "datetime" => FieldType::Datetime,
        "text" => FieldType::Text(text),
        "geo" => FieldType::Geo,
        other => return Err(ApiError::invalid("field_schema", TYPES, format!("{other:?}"))),
    })
}

/// Qdrant's `params` of a payload index (text settings; `null` for the other types).
fn index_params(ty: FieldType) -> Value {
    match ty {
        FieldType::Text(o) => {
            let mut p = json!({"type": "text", "tokenizer": "word", "lowercase": true});
            if o.stem {
                p["stemmer"] = json!({"type": "snowball", "language": "english"});
            }
            if o.stopwords {
                p["stopwords"] = json!("english");
            }
            p
        }
        _ => Value::Null,
    }
}

fn is_english(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("english") || s.eq_ignore_ascii_case("en"))
}

/// Creates a payload index.
#[utoipa::path(put, path = "/collections/{collection_name}/index", tag = "collections",
    params(CollectionPath, WriteParams), request_body = CreateFieldIndex,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn create_index(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<CreateFieldIndex>,
) -> ApiResult<Reply<UpdateResult>> {
    let ty = field_type(body.field_schema)?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.create_field_index(&body.field_name, ty)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

/// The collection and field in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FieldPath {
    /// Collection name.
    pub collection_name: String,
    /// Dotted payload key.
    pub field_name: String,
}

/// Drops a payload index.
#[utoipa::path(delete, path = "/collections/{collection_name}/index/{field_name}", tag = "collections",
    params(FieldPath, WriteParams),
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn delete_index(
    State(s): State<AppState>,
    Path(p): Path<FieldPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
) -> ApiResult<Reply<UpdateResult>> {
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.drop_field_index(&p.field_name)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}
