//! Multi-stage queries (`prefetch`, `fusion`/`rrf`) across shards. Each stage that ranks by itself — a vector,
//! a stored point, a text, or `bm25` — is one plain query sent to the shards and merged here like any search; a
//! stage with prefetches either fuses their lists here ([`quiver_engine::query::fuse`], the engine's own) or
//! ranks only the points they found (its shard query gets `has_id` of those). The final page's payloads and
//! vectors are read from the shards that hold them.
//!
//! BM25 on a shard uses that shard's statistics (document count, lengths, term frequencies), as Elasticsearch's
//! default does; with points spread by hash they agree closely, but scores are not exactly a single node's.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use quiver_engine::query::{DEFAULT_RRF_K, Fusion, MAX_PREFETCH_DEPTH, check_weights, fuse_weighted};
use quiver_engine::{Payload, PointId};
use serde_json::{Map, Value, json};

use super::Cluster;
use super::read::{SearchKind, get_points, higher_is_better, search_once};
use crate::convert::PayloadSel;
use crate::error::{ApiError, ApiResult};
use quiver_cluster::CollectionSpec;

/// Runs a staged query body; the hits, best first, in the server's reply shape. `unlimited`: a grouped query's
/// candidate rounds, which may pass `max_limit`.
pub async fn query(
    c: &Cluster,
    spec: &CollectionSpec,
    mut m: Map<String, Value>,
    unlimited: bool,
) -> ApiResult<Vec<Value>> {
    let offset = uint(&m, "offset", 0)?;
    let limit = uint(&m, "limit", 10)?;
    if !unlimited {
        crate::convert::check_limit(limit, offset, c.state().config())?;
    }
    let with_payload = m.remove("with_payload").unwrap_or(Value::Bool(false));
    // `true`, or a list of vector names: passed on to the shards the page's points are read from.
    let with_vector = m.remove("with_vector").filter(|v| !v.is_null() && *v != Value::Bool(false));
    if m.get("explain").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::invalid("explain", "false or absent with prefetch or fusion", "true"));
    }
    for k in ["explain", "shards_to_search", "min_seq"] {
        m.remove(k);
    }
    let token = m.get("read_token").cloned();
    let ranked = stage(c, spec, m, None, token, offset + limit, "".into(), 1).await?;
    let page: Vec<(PointId, f32)> = ranked.hits.into_iter().skip(offset).take(limit).collect();
    let sel = match with_payload {
        Value::Null => PayloadSel::None,
        w => PayloadSel::from_wire(
            Some(serde_json::from_value(w).map_err(|e| ApiError::invalid("with_payload", "a bool or a selection", e))?),
            false,
        ),
    };
    let wants_payload = sel.wanted();
    let mut records: HashMap<PointId, Value> = HashMap::new();
    if wants_payload || with_vector.is_some() {
        let ids: Vec<PointId> = page.iter().map(|(id, _)| *id).collect();
        let vectors = with_vector.clone().unwrap_or(Value::Bool(false));
        for r in get_points(c, spec, &ids, true, &vectors, None).await? {
            if let Some(id) = r.get("id").and_then(|v| serde_json::from_value::<PointId>(v.clone()).ok()) {
                records.insert(id, r);
            }
        }
    }
    Ok(page
        .into_iter()
        .map(|(id, score)| {
            let mut h = json!({"id": id, "version": 0, "score": f32_json(score)});
            if let Some(r) = records.get(&id) {
                if wants_payload {
                    let p = r.get("payload").and_then(|p| serde_json::from_value::<Payload>(p.clone()).ok());
                    h["payload"] = serde_json::to_value(sel.apply(p)).unwrap_or(Value::Null);
                }
                if with_vector.is_some() {
                    h["vector"] = r.get("vector").cloned().unwrap_or(Value::Null);
                }
            }
            h
        })
        .collect())
}

/// A score as one node writes it: the shortest decimal that reads back as the same `f32` (not the `f64`
/// expansion of its bits, which `json!` would write).
fn f32_json(x: f32) -> Value {
    x.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

/// A stage's hits, best first, and whether their scores grow with relevance.
struct Ranked {
    hits: Vec<(PointId, f32)>,
    higher: bool,
}

fn uint(m: &Map<String, Value>, k: &str, default: usize) -> ApiResult<usize> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| ApiError::invalid(k, "a non-negative integer", v)),
    }
}

fn and(a: Option<&Value>, b: Option<Value>) -> Option<Value> {
    match (a, b.filter(|b| !b.is_null())) {
        (None, b) => b,
        (Some(a), None) => Some(a.clone()),
        (Some(a), Some(b)) => Some(json!({"must": [a, b]})),
    }
}

#[allow(clippy::too_many_arguments)]
fn stage<'a>(
    c: &'a Cluster,
    spec: &'a CollectionSpec,
    mut m: Map<String, Value>,
    inherited: Option<&'a Value>,
    token: Option<Value>,
    limit: usize,
    path: String,
    depth: usize,
) -> BoxFuture<'a, ApiResult<Ranked>> {
    Box::pin(async move {
        let at = |f: &str| if path.is_empty() { f.to_owned() } else { format!("{path}.{f}") };
        if depth > MAX_PREFETCH_DEPTH {
            return Err(ApiError::invalid(
                at("prefetch"),
                format!("at most {MAX_PREFETCH_DEPTH} nested levels"),
                depth,
            ));
        }
        let filter = and(inherited, m.remove("filter"));
        let prefetch = match m.remove("prefetch") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(o @ Value::Object(_)) => vec![o],
            Some(other) => return Err(ApiError::invalid(at("prefetch"), "a prefetch object or a list of them", other)),
        };
        let mut lists = Vec::with_capacity(prefetch.len());
        let mut dirs = Vec::with_capacity(prefetch.len());
        for (i, p) in prefetch.into_iter().enumerate() {
            let here = format!("{}[{i}]", at("prefetch"));
            let Value::Object(p) = p else {
                return Err(ApiError::invalid(here, "a prefetch object", "another value"));
            };
            let n = uint(&p, "limit", 10).map_err(|e| ApiError::new(e.status, format!("{here}: {}", e.message)))?;
            let r = stage(c, spec, p, filter.as_ref(), token.clone(), n, here, depth + 1).await?;
            lists.push(r.hits);
            dirs.push(r.higher);
        }
        let query = m.remove("query");
        let fusion = match query.as_ref().and_then(Value::as_object) {
            Some(q) if q.contains_key("fusion") => Some(match q.get("fusion").and_then(Value::as_str) {
                Some("rrf") => Fusion::Rrf { k: DEFAULT_RRF_K },
                Some("dbsf") => Fusion::Dbsf,
                _ => return Err(ApiError::invalid(at("query.fusion"), "\"rrf\" or \"dbsf\"", q["fusion"].clone())),
            }),
            Some(q) if q.contains_key("rrf") => {
                let k = q["rrf"].get("k").map_or(Some(DEFAULT_RRF_K as u64), Value::as_u64);
                match k {
                    Some(k) if k >= 1 && k <= u64::from(u32::MAX) => Some(Fusion::Rrf { k: k as u32 }),
                    _ => return Err(ApiError::invalid(at("query.rrf.k"), "a positive integer", q["rrf"].clone())),
                }
            }
            _ => None,
        };
        let weights: Vec<f32> = match query.as_ref().and_then(|q| q.get("rrf")).and_then(|r| r.get("weights")) {
            None | Some(Value::Null) => Vec::new(),
            Some(w) => serde_json::from_value(w.clone())
                .map_err(|_| ApiError::invalid(at("query.rrf.weights"), "a list of numbers", w))?,
        };
        if let Some(method) = fusion {
            if lists.is_empty() {
                return Err(ApiError::invalid(at("prefetch"), "at least one prefetch to fuse", "none"));
            }
            check_weights(&weights, lists.len()).map_err(|e| {
                let e = ApiError::from(e);
                ApiError::new(e.status, format!("{}: {}", at("query.rrf"), e.message))
            })?;
            let threshold = m.get("score_threshold").and_then(Value::as_f64).map(|t| t as f32);
            let hits = fuse_weighted(method, &lists, &dirs, &weights)
                .into_iter()
                .take_while(|(_, s)| threshold.is_none_or(|t| *s >= t))
                .take(limit)
                .collect();
            return Ok(Ranked { hits, higher: true });
        }
        let Some(query) = query else {
            return Err(ApiError::invalid(
                at("query"),
                "a vector, a point id, {\"text\"}, {\"bm25\"} or a fusion",
                "nothing",
            ));
        };
        // One plain query to the shards, restricted to the prefetched points when there are any.
        let mut body = m;
        body.insert("query".into(), query);
        body.insert("limit".into(), json!(limit));
        body.insert("with_payload".into(), json!(false));
        body.remove("offset");
        let filter = if lists.is_empty() {
            filter
        } else {
            let mut ids: Vec<PointId> = lists.iter().flatten().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            and(filter.as_ref(), Some(json!({"must": [{"has_id": ids}]})))
        };
        if let Some(f) = filter {
            body.insert("filter".into(), f);
        }
        if let Some(t) = token {
            body.insert("read_token".into(), t);
        }
        let higher = higher_is_better(&body, spec);
        let (hits, _) = search_once(c, spec, SearchKind::Query, body, false)
            .await
            .map_err(|e| if path.is_empty() { e } else { ApiError::new(e.status, format!("{path}: {}", e.message)) })?;
        let hits = hits
            .into_iter()
            .filter_map(|h| {
                let id = serde_json::from_value::<PointId>(h.get("id")?.clone()).ok()?;
                Some((id, h.get("score")?.as_f64()? as f32))
            })
            .collect();
        Ok(Ranked { hits, higher })
    })
}
