//! Reads across shards: each request goes to one replica of every shard it concerns, as the same public request
//! on the shard's local collection, and the answers are merged here — top-k hits with
//! [`quiver_index::merge_top_k`] (the merge segments use), scroll pages by id, counts summed.

use std::collections::HashMap;

use crate::wire::ReadToken;
use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::future::join_all;
use quiver_cluster::CollectionSpec;
use quiver_cluster::route;
use quiver_engine::PointId;
use quiver_index::{Metric, Neighbor, merge_top_k, prepare_query};
use serde_json::{Map, Value, json};

use super::{Cluster, ShardReply};
use crate::access::Access;
use crate::embedding;
use crate::error::{ApiError, ApiResult};
use crate::state::blocking;

/// Parses a shard's reply: its `result`, or its error (the shard's local name replaced by the collection's).
pub fn shard_result(spec: &CollectionSpec, shard: u32, r: ShardReply) -> ApiResult<Value> {
    let local = spec.shard_collection(shard);
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if r.status.is_success() {
        return Ok(v.get("result").cloned().unwrap_or(Value::Null));
    }
    let msg = v
        .pointer("/status/error")
        .and_then(Value::as_str)
        .map_or_else(|| String::from_utf8_lossy(&r.body).into_owned(), str::to_owned)
        .replace(&local, &spec.name);
    Err(ApiError::new(r.status, msg))
}

/// `path` on shard `shard`'s local collection (`suffix` starts with `/` or is empty).
pub fn shard_path(spec: &CollectionSpec, shard: u32, suffix: &str) -> String {
    format!("/collections/{}{suffix}", spec.shard_collection(shard))
}

/// Sends `bodies[i]` to shard `shards[i]` (in parallel), returning each shard's `result` in the same order.
pub async fn fanout(
    c: &Cluster,
    spec: &CollectionSpec,
    method: &str,
    suffix: &str,
    requests: Vec<(u32, Bytes)>,
) -> ApiResult<Vec<(u32, Value)>> {
    let calls = requests.into_iter().map(|(shard, body)| async move {
        let path = shard_path(spec, shard, suffix);
        let r = c.call_shard(spec, shard, method, &path, body).await?;
        Ok::<_, ApiError>((shard, shard_result(spec, shard, r)?))
    });
    join_all(calls).await.into_iter().collect()
}

/// The same body to every shard in `shards`.
pub async fn broadcast(
    c: &Cluster,
    spec: &CollectionSpec,
    shards: &[u32],
    method: &str,
    suffix: &str,
    body: Bytes,
) -> ApiResult<Vec<(u32, Value)>> {
    fanout(c, spec, method, suffix, shards.iter().map(|&s| (s, body.clone())).collect()).await
}

fn all_shards(spec: &CollectionSpec) -> Vec<u32> {
    (0..spec.shard_number).collect()
}

pub(crate) fn body_object(body: &[u8], empty_ok: bool) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if empty_ok {
            return Ok(Map::new());
        }
        return Err(ApiError::bad_request("expected a JSON body, got an empty body"));
    }
    match crate::extract::parse_json::<Value>(body)? {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_request(format!("invalid JSON body: expected an object, got {other}"))),
    }
}

pub(crate) fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Takes a read's `read_token` out of its body (each shard is sent its own `min_seq` instead); a bare `min_seq`
/// is refused (each shard has its own log, so one number cannot say how far to wait).
pub(crate) fn take_read_token(m: &mut Map<String, Value>, spec: &CollectionSpec) -> ApiResult<Option<ReadToken>> {
    if m.get("min_seq").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid(
            "min_seq",
            "absent in cluster mode (each shard has its own log: pass a write's `read_token` instead)",
            "a value",
        ));
    }
    m.remove("min_seq");
    match m.remove("read_token") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => {
            let token = ReadToken::parse(&t).map_err(|e| ApiError::invalid("read_token", e, format!("{t:?}")))?;
            if let Some(s) = token.0.keys().find(|&&s| s >= spec.shard_number) {
                return Err(ApiError::invalid(
                    "read_token",
                    format!("shards 0 to {} (the collection has {} shards)", spec.shard_number - 1, spec.shard_number),
                    format!("shard {s}"),
                ));
            }
            Ok(Some(token))
        }
        Some(other) => {
            Err(ApiError::invalid("read_token", "a string like \"0:17,2:40\" (a write's read_token)", other))
        }
    }
}

/// Checks a read token against the shard logs (a sequence past a log's end is no write of this collection: 400)
/// and, while a centroid-sharded collection's points are moving, raises it to every shard's last entry: a write
/// acknowledged on one shard may have been copied to another since.
pub(crate) async fn settle_token(
    c: &Cluster,
    spec: &CollectionSpec,
    token: Option<ReadToken>,
) -> ApiResult<Option<ReadToken>> {
    let Some(mut token) = token else { return Ok(None) };
    let moving = spec.sharding.moving();
    let shards: Vec<u32> = if moving { all_shards(spec) } else { token.0.keys().copied().collect() };
    let lasts = join_all(shards.iter().map(|&s| async move { (s, c.nats().last_seq(spec, s).await) })).await;
    for (s, last) in lasts {
        let last = last.map_err(ApiError::from)?;
        if let Some(&seq) = token.0.get(&s)
            && seq > last
        {
            return Err(ApiError::invalid(
                "read_token",
                format!("sequence numbers this collection's logs have reached (shard {s} is at {last})"),
                format!("{seq} for shard {s} (a token of another collection, or of one dropped and created again?)"),
            ));
        }
        if moving {
            let e = token.0.entry(s).or_insert(0);
            *e = (*e).max(last);
        }
    }
    Ok(Some(token))
}

/// One body per shard: `m`, with the shard's `min_seq` when `token` names the shard.
pub(crate) fn per_shard(m: &Map<String, Value>, shards: &[u32], token: Option<&ReadToken>) -> Vec<(u32, Bytes)> {
    let plain = to_bytes(&Value::Object(m.clone()));
    shards
        .iter()
        .map(|&s| match token.and_then(|t| t.0.get(&s)) {
            Some(&seq) => {
                let mut b = m.clone();
                b.insert("min_seq".into(), json!(seq));
                (s, to_bytes(&Value::Object(b)))
            }
            None => (s, plain.clone()),
        })
        .collect()
}

/// A search body made ready to forward, with what the merge needs.
pub(crate) struct Prepared {
    body: Map<String, Value>,
    offset: usize,
    limit: usize,
    vector: Option<Vec<f32>>,
    shards_to_search: Option<usize>,
    token: Option<ReadToken>,
}

/// Where a search's query is in its body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchKind {
    /// `POST …/points/search`: `vector` or `text`, hits as a list.
    Search,
    /// `POST …/points/query`: `query`, hits under `points`.
    Query,
}

/// One search (or query) body made ready to forward: text embedded once here, a point id resolved to its
/// vector, `offset` folded into `limit`; returns the body, the original offset and limit, and the query vector.
/// Whether a plain query body asks for BM25 (scores higher-is-better whatever the metric).
fn is_bm25(m: &Map<String, Value>) -> bool {
    m.get("query").and_then(Value::as_object).is_some_and(|q| q.contains_key("bm25"))
}

/// The vector a search or query body names: `using` (`/points/query`) or `vector.name` (`/points/search`);
/// `None`: the unnamed one.
pub(crate) fn using_of(m: &Map<String, Value>) -> Option<&str> {
    m.get("using")
        .and_then(Value::as_str)
        .or_else(|| m.get("vector").and_then(|v| v.get("name")).and_then(Value::as_str))
        .filter(|u| !u.is_empty())
}

/// The metric of the vector `using` names; `None` for a sparse vector (dot product) or a name the collection
/// lacks (its shards answer that with a 400).
fn metric_of(spec: &CollectionSpec, using: Option<&str>) -> Option<Metric> {
    let cfg = &spec.config;
    if using.is_some_and(|u| cfg.sparse_of(u).is_some()) {
        return None;
    }
    let space = cfg.space_of(using, "using").ok()?;
    cfg.spaces().get(space).map(|s| s.metric)
}

/// The vector `using` of a point record read with its vectors (a list, or an object by name when the collection
/// has named or sparse vectors, the unnamed one under `""`): 400 naming `at` when the point has no such vector.
pub(crate) fn record_vector(rec: &Value, using: Option<&str>, id: PointId, at: &str) -> ApiResult<Value> {
    let name = using.unwrap_or("");
    let v = match rec.get("vector") {
        Some(v @ Value::Array(_)) if name.is_empty() => Some(v.clone()),
        Some(Value::Object(by_name)) => by_name.get(name).filter(|v| !v.is_null()).cloned(),
        _ => None,
    };
    v.ok_or_else(|| {
        ApiError::invalid(at, format!("a point with a {name:?} vector"), format!("point {id}, which has none"))
    })
}

/// Whether a query's scores grow with relevance: BM25, sparse vectors (dot product), every metric but Euclid,
/// and queries scored against several examples (`discover`, `context`, `recommend` by `best_score` or
/// `sum_scores`).
pub(crate) fn higher_is_better(m: &Map<String, Value>, spec: &CollectionSpec) -> bool {
    let by_examples = m.get("query").and_then(Value::as_object).is_some_and(|q| {
        q.contains_key("discover")
            || q.contains_key("context")
            || q.get("recommend")
                .and_then(|r| r.get("strategy"))
                .and_then(Value::as_str)
                .is_some_and(|s| s == "best_score" || s == "sum_scores")
    });
    is_bm25(m) || by_examples || metric_of(spec, using_of(m)) != Some(Metric::Euclidean)
}

/// The pairs of a `context` value (a list, or one pair object): each side's slot, with where it is.
fn pair_slots<'a>(v: &'a mut Value, at: &str, out: &mut Vec<(String, &'a mut Value)>) {
    let list: Vec<&'a mut Value> = match v {
        Value::Array(a) => a.iter_mut().collect(),
        one => vec![one],
    };
    for (i, p) in list.into_iter().enumerate() {
        if let Value::Object(p) = p {
            for (side, v) in p.iter_mut().filter(|(k, _)| *k == "positive" || *k == "negative") {
                out.push((format!("{at}[{i}].{side}"), v));
            }
        }
    }
}

/// The example slots of a query by examples (`recommend`'s positives and negatives, `discover`'s target and
/// pairs, `context`'s pairs), with where each is in the request.
pub(crate) fn example_slots(q: &mut Map<String, Value>) -> Vec<(String, &mut Value)> {
    let mut out = Vec::new();
    for (key, val) in q.iter_mut() {
        match (key.as_str(), val) {
            ("recommend", Value::Object(r)) => {
                for (side, list) in r.iter_mut().filter(|(k, _)| *k == "positive" || *k == "negative") {
                    if let Value::Array(a) = list {
                        let at = |i: usize| format!("query.recommend.{side}[{i}]");
                        out.extend(a.iter_mut().enumerate().map(|(i, v)| (at(i), v)));
                    }
                }
            }
            ("discover", Value::Object(d)) => {
                for (k, v) in d.iter_mut() {
                    match k.as_str() {
                        "target" => out.push(("query.discover.target".to_string(), v)),
                        "context" => pair_slots(v, "query.discover.context", &mut out),
                        _ => {}
                    }
                }
            }
            ("context", v) => pair_slots(v, "query.context", &mut out),
            _ => {}
        }
    }
    out
}

/// A query by examples across shards: each example given as a stored point's id is looked up wherever it lives
/// and put in as its vector (every shard then scores against the same vectors), and those points are left out of
/// the answer.
async fn resolve_examples(
    c: &Cluster,
    spec: &CollectionSpec,
    m: &mut Map<String, Value>,
    token: Option<&ReadToken>,
) -> ApiResult<()> {
    let Some(Value::Object(q)) = m.get_mut("query") else { return Ok(()) };
    let mut ids: Vec<(String, PointId)> = Vec::new();
    for (at, v) in example_slots(q) {
        if let Value::Number(_) | Value::String(_) = v {
            let id: PointId = serde_json::from_value(v.clone())
                .map_err(|_| ApiError::invalid(&at, "a vector, a point id or a text", &*v))?;
            ids.push((at, id));
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let mut unique: Vec<PointId> = ids.iter().map(|(_, id)| *id).collect();
    unique.sort_unstable();
    unique.dedup();
    let using = using_of(m).map(str::to_owned);
    let found: std::collections::HashMap<PointId, Value> = get_points(c, spec, &unique, false, &json!(true), token)
        .await?
        .into_iter()
        .filter_map(|r| Some((serde_json::from_value::<PointId>(r.get("id")?.clone()).ok()?, r)))
        .collect();
    let mut vectors = Vec::with_capacity(ids.len());
    for (at, id) in &ids {
        let Some(rec) = found.get(id) else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("{at}: point {id} does not exist")));
        };
        vectors.push(record_vector(rec, using.as_deref(), *id, at)?);
    }
    if let Some(Value::Object(q)) = m.get_mut("query") {
        let slots = example_slots(q).into_iter().filter(|(_, v)| matches!(v, Value::Number(_) | Value::String(_)));
        for ((_, v), vector) in slots.zip(vectors) {
            *v = vector;
        }
    }
    exclude_ids(m, unique.into_iter().map(|id| json!(id)).collect());
    Ok(())
}

/// Adds `must_not: has_id` for `ids` to the request's filter.
fn exclude_ids(m: &mut Map<String, Value>, ids: Vec<Value>) {
    let mut f = match m.remove("filter") {
        Some(Value::Object(f)) => f,
        _ => Map::new(),
    };
    let mut must_not = match f.remove("must_not") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(one) => vec![one],
    };
    must_not.push(json!({"has_id": ids}));
    f.insert("must_not".into(), Value::Array(must_not));
    m.insert("filter".into(), Value::Object(f));
}

/// Whether a query body has stages (prefetch, fusion): [`super::staged`] runs those.
pub(crate) fn is_staged(m: &Map<String, Value>) -> bool {
    let fused =
        m.get("query").and_then(Value::as_object).is_some_and(|q| q.contains_key("fusion") || q.contains_key("rrf"));
    fused || m.get("prefetch").is_some_and(|p| !p.is_null())
}

/// What reaches a shard as one request: no stages (those run in [`super::staged`]); `lookup_from` was resolved
/// before ([`super::lookup`]).
fn refuse_staged(m: &Map<String, Value>) -> ApiResult<()> {
    if is_staged(m) {
        return Err(ApiError::invalid(
            "query",
            "a query without prefetch or fusion here (grouped queries take one stage)",
            "a staged query",
        ));
    }
    Ok(())
}

async fn prepare_search(
    c: &Cluster,
    spec: &CollectionSpec,
    kind: SearchKind,
    mut m: Map<String, Value>,
    unlimited: bool,
) -> ApiResult<Prepared> {
    if matches!(kind, SearchKind::Query) {
        refuse_staged(&m)?;
    }
    let token = take_read_token(&mut m, spec)?;
    let token = settle_token(c, spec, token).await?;
    let shards_to_search = match m.remove("shards_to_search") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            ApiError::invalid("shards_to_search", format!("an integer from 1 to {}", spec.shard_number), &v)
        })? as usize),
    };
    let offset = match m.get("offset") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or_else(|| ApiError::invalid("offset", "a non-negative integer", v))? as usize,
    };
    let limit = match (kind, m.get("limit")) {
        (SearchKind::Query, None | Some(Value::Null)) => 10,
        (SearchKind::Search, None | Some(Value::Null)) => {
            return Err(ApiError::bad_request("invalid JSON body: missing field `limit`"));
        }
        (_, Some(v)) => v.as_u64().ok_or_else(|| ApiError::invalid("limit", "a non-negative integer", v))? as usize,
    };
    if !unlimited {
        crate::convert::check_limit(limit, offset, c.state().config())?;
    }
    m.insert("limit".into(), json!(offset + limit));
    m.remove("offset");
    // The query text or image, if any: embed it here once (every shard would otherwise embed it).
    use crate::convert::Content;
    let content = match kind {
        SearchKind::Search => match (m.get("text").and_then(Value::as_str), m.get("image").and_then(Value::as_str)) {
            (Some(t), _) => Some((Content::Text(t.to_owned()), None, "text".to_string())),
            (None, Some(i)) => Some((Content::Image(crate::convert::image_bytes(i, "image")?), None, "image".into())),
            (None, None) => None,
        },
        SearchKind::Query => {
            let q = m.get("query").map(|q| q.get("nearest").unwrap_or(q));
            let model = q.and_then(|q| q.get("model")).and_then(Value::as_str).map(str::to_owned);
            match (q.and_then(|q| q.get("text")).and_then(Value::as_str), q.and_then(|q| q.get("image"))) {
                (Some(t), _) => Some((Content::Text(t.to_owned()), model, "query".to_string())),
                (None, Some(Value::String(i))) => {
                    let field = "query.image".to_string();
                    Some((Content::Image(crate::convert::image_bytes(i, &field)?), model, field))
                }
                _ => None,
            }
        }
    };
    if let Some((content, model, field)) = content {
        let cfg = spec.config.clone();
        let name = spec.name.clone();
        let state = c.state().clone();
        let using = using_of(&m).map(str::to_owned);
        let v = blocking(move || {
            let m = state.embedders().for_using(&name, &cfg, using.as_deref())?;
            embedding::check_named_model(model.as_deref(), m.model_name(), &field)?;
            embedding::embed_content(m.as_ref(), &content, &field)
        })
        .await?;
        match kind {
            SearchKind::Search => {
                m.remove("text");
                m.remove("image");
                m.insert("vector".into(), json!(v));
            }
            SearchKind::Query => {
                m.insert("query".into(), json!(v));
            }
        }
    }
    // A query by a stored point's id: look its vector up, and leave the point itself out of the results.
    if kind == SearchKind::Query {
        let q = m.get("query").map(|q| q.get("nearest").unwrap_or(q)).cloned();
        if let Some(q @ (Value::Number(_) | Value::String(_))) = q {
            let id: PointId = serde_json::from_value(q.clone())
                .map_err(|_| ApiError::invalid("query", "a vector, a point id or {\"nearest\": …}", &q))?;
            let rec = get_points(c, spec, &[id], false, &json!(true), token.as_ref()).await?;
            let Some(rec) = rec.first() else {
                return Err(ApiError::new(StatusCode::NOT_FOUND, format!("query: point {id} does not exist")));
            };
            let v = record_vector(rec, using_of(&m), id, "query")?;
            m.insert("query".into(), v);
            exclude_ids(&mut m, vec![q]);
        }
        resolve_examples(c, spec, &mut m, token.as_ref()).await?;
    }
    if kind == SearchKind::Query && is_bm25(&m) {
        global_bm25_stats(c, spec, &mut m, token.as_ref()).await?;
    }
    let vector = match kind {
        SearchKind::Search => m.get("vector").map(|v| v.get("vector").unwrap_or(v)),
        SearchKind::Query => m.get("query").map(|q| q.get("nearest").unwrap_or(q)),
    }
    .and_then(|v| serde_json::from_value::<Vec<f32>>(v.clone()).ok())
    // Only the unnamed vector places points (centroid sharding takes no named vectors).
    .filter(|_| using_of(&m).is_none())
    .and_then(|v| prepare_query(spec.config.metric, spec.config.dimension, &v).ok());
    Ok(Prepared { body: m, offset, limit, vector, shards_to_search, token })
}

/// A BM25 query's statistics for the whole collection: every shard's (for the query's terms) summed and put in
/// the query as `bm25.stats`, so each shard scores as one collection of all the points would — the scores match
/// a single node's, whatever the sharding. Left as given when the query has them.
async fn global_bm25_stats(
    c: &Cluster,
    spec: &CollectionSpec,
    m: &mut Map<String, Value>,
    token: Option<&ReadToken>,
) -> ApiResult<()> {
    let Some(Value::Object(bm25)) = m.get_mut("query").and_then(|q| q.get_mut("bm25")) else { return Ok(()) };
    if bm25.get("stats").is_some_and(|s| !s.is_null()) {
        return Ok(());
    }
    let (Some(key), Some(text)) = (bm25.get("key").and_then(Value::as_str), bm25.get("text").and_then(Value::as_str))
    else {
        return Ok(()); // malformed: the shards answer with the field named
    };
    let body = to_bytes(&json!({"key": key, "text": text}));
    let calls = all_shards(spec).into_iter().map(|s| {
        let body = body.clone();
        async move {
            let mut path = format!("/internal/bm25-stats/{}", spec.shard_collection(s));
            if let Some(&seq) = token.and_then(|t| t.0.get(&s)) {
                path.push_str(&format!("?min_seq={seq}"));
            }
            let r = c.call_shard(spec, s, "POST", &path, body).await?;
            if !r.status.is_success() {
                return shard_result(spec, s, r).map(|_| quiver_engine::TextStats::default());
            }
            serde_json::from_slice::<quiver_engine::TextStats>(&r.body)
                .map_err(|e| ApiError::internal(format!("shard {s} answered BM25 statistics that do not parse: {e}")))
        }
    });
    let mut total = quiver_engine::TextStats::default();
    for r in join_all(calls).await {
        total.add(&r?);
    }
    bm25.insert("stats".into(), serde_json::to_value(&total).unwrap_or(Value::Null));
    Ok(())
}

/// Merges shards' hits (each best first) into the best `offset + limit`, then drops the first `offset`.
pub fn merge_hits(higher_is_better: bool, lists: Vec<Vec<Value>>, offset: usize, limit: usize) -> Vec<Value> {
    // Sorted by point id, a hit's index orders ties the way the engine does (by id).
    let mut all: Vec<(PointId, f32, Value)> = lists
        .into_iter()
        .flatten()
        .filter_map(|h| {
            let id: PointId = serde_json::from_value(h.get("id")?.clone()).ok()?;
            let score = h.get("score")?.as_f64()? as f32;
            Some((id, score, h))
        })
        .collect();
    all.sort_by_key(|a| a.0);
    let key = |score: f32| if higher_is_better { -score } else { score };
    let neighbors: Vec<Neighbor> =
        all.iter().enumerate().map(|(i, (_, s, _))| Neighbor { id: i as u64, distance: key(*s) }).collect();
    let mut seen = std::collections::HashSet::new();
    let best = merge_top_k([neighbors], (offset + limit).saturating_mul(2).max(1));
    best.into_iter()
        .filter(|n| seen.insert(all[n.id as usize].0))
        .skip(offset)
        .take(limit)
        .map(|n| all[n.id as usize].2.clone())
        .collect()
}

/// One search or query (without stages) across the shards it selects; the hits, best first, and the shards'
/// explanations. `unlimited`: the grouped search's candidate rounds, which may exceed `max_limit`.
pub(crate) async fn search_once(
    c: &Cluster,
    spec: &CollectionSpec,
    kind: SearchKind,
    m: Map<String, Value>,
    unlimited: bool,
) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    let Prepared { body: m, offset, limit, vector, shards_to_search: wanted, token } =
        prepare_search(c, spec, kind, m, unlimited).await?;
    let shards = route::shards_to_search(spec, vector.as_deref(), wanted).map_err(ApiError::from)?;
    let suffix = match kind {
        SearchKind::Search => "/points/search",
        SearchKind::Query => "/points/query",
    };
    c.state().metrics().cluster_fanout(shards.len());
    let results = fanout(c, spec, "POST", suffix, per_shard(&m, &shards, token.as_ref())).await?;
    let mut lists = Vec::with_capacity(results.len());
    let mut explains = Vec::new();
    for (shard, r) in results {
        let hits = match kind {
            SearchKind::Search => r,
            SearchKind::Query => {
                if let Some(e) = r.get("explain") {
                    explains.push(json!({"shard": shard, "explain": e}));
                }
                r.get("points").cloned().unwrap_or(Value::Null)
            }
        };
        lists.push(match hits {
            Value::Array(a) => a,
            _ => Vec::new(),
        });
    }
    Ok((merge_hits(higher_is_better(&m, spec), lists, offset, limit), explains))
}

/// One search or query body, whatever its shape: `lookup_from` resolved, then staged ([`super::staged`]) or
/// plain; the hits, best first, and the shards' explanations.
async fn search_any(
    c: &Cluster,
    access: &Access,
    spec: &CollectionSpec,
    kind: SearchKind,
    mut m: Map<String, Value>,
) -> ApiResult<(Vec<Value>, Vec<Value>)> {
    if kind == SearchKind::Query {
        super::lookup::resolve(c, access, &mut m, String::new()).await?;
        if is_staged(&m) {
            return Ok((super::staged::query(c, spec, m, false).await?, Vec::new()));
        }
    }
    search_once(c, spec, kind, m, false).await
}

/// `POST …/points/search` and `…/points/query`.
pub async fn search(
    c: &Cluster,
    access: &Access,
    spec: &CollectionSpec,
    kind: SearchKind,
    body: &[u8],
) -> ApiResult<Value> {
    let m = body_object(body, false)?;
    let (hits, explains) = search_any(c, access, spec, kind, m).await?;
    Ok(match kind {
        SearchKind::Search => Value::Array(hits),
        SearchKind::Query if explains.is_empty() => json!({"points": hits}),
        SearchKind::Query => json!({"points": hits, "explain": {"shards": explains}}),
    })
}

/// `POST …/points/search/batch` and `…/points/query/batch`: each search on its own, in parallel.
pub async fn search_batch(
    c: &Cluster,
    access: &Access,
    spec: &CollectionSpec,
    kind: SearchKind,
    body: &[u8],
) -> ApiResult<Value> {
    let mut m = body_object(body, false)?;
    let Some(Value::Array(searches)) = m.remove("searches") else {
        return Err(ApiError::invalid("searches", "a list of searches", "nothing"));
    };
    let most = c.state().config().max_search_batch;
    if searches.is_empty() || searches.len() > most {
        return Err(ApiError::invalid("searches", format!("1 to {most} searches"), searches.len()));
    }
    let runs = searches.into_iter().enumerate().map(|(i, s)| async move {
        let Value::Object(s) = s else {
            return Err(ApiError::invalid(format!("searches[{i}]"), "an object", "another value"));
        };
        search_any(c, access, spec, kind, s)
            .await
            .map_err(|e| ApiError::new(e.status, format!("searches[{i}]: {}", e.message)))
    });
    let mut out = Vec::new();
    for r in join_all(runs).await {
        let (hits, _) = r?;
        out.push(match kind {
            SearchKind::Search => Value::Array(hits),
            SearchKind::Query => json!({"points": hits}),
        });
    }
    Ok(Value::Array(out))
}

/// Points by id from the shards that can hold them, in the order asked (missing ones left out).
pub async fn get_points(
    c: &Cluster,
    spec: &CollectionSpec,
    ids: &[PointId],
    with_payload: bool,
    with_vector: &Value,
    token: Option<&ReadToken>,
) -> ApiResult<Vec<Value>> {
    let requests = route::ids_by_shard(spec, ids)
        .into_iter()
        .map(|(s, ids)| {
            let mut b = json!({"ids": ids, "with_payload": with_payload, "with_vector": with_vector});
            if let Some(&seq) = token.and_then(|t| t.0.get(&s)) {
                b["min_seq"] = json!(seq);
            }
            (s, to_bytes(&b))
        })
        .collect();
    order_records(fanout(c, spec, "POST", "/points", requests).await?, ids)
}

fn order_records(results: Vec<(u32, Value)>, ids: &[PointId]) -> ApiResult<Vec<Value>> {
    let mut by_id: HashMap<PointId, Value> = HashMap::new();
    for (_, r) in results {
        if let Value::Array(recs) = r {
            for rec in recs {
                if let Some(id) = rec.get("id").and_then(|v| serde_json::from_value::<PointId>(v.clone()).ok()) {
                    by_id.entry(id).or_insert(rec);
                }
            }
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// `POST …/points` (retrieve).
pub async fn retrieve(c: &Cluster, spec: &CollectionSpec, body: &[u8]) -> ApiResult<Value> {
    let mut m = body_object(body, false)?;
    let token = take_read_token(&mut m, spec)?;
    let token = settle_token(c, spec, token).await?;
    let ids: Vec<PointId> = match m.get("ids") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body at ids: {e}")))?,
        None => return Err(ApiError::bad_request("invalid JSON body: missing field `ids`")),
    };
    crate::convert::check_batch("ids", ids.len(), c.state().config())?;
    let requests = route::ids_by_shard(spec, &ids)
        .into_iter()
        .map(|(s, sub)| {
            let mut b = m.clone();
            b.insert("ids".into(), json!(sub));
            if let Some(&seq) = token.as_ref().and_then(|t| t.0.get(&s)) {
                b.insert("min_seq".into(), json!(seq));
            }
            (s, to_bytes(&Value::Object(b)))
        })
        .collect();
    Ok(Value::Array(order_records(fanout(c, spec, "POST", "/points", requests).await?, &ids)?))
}

/// `GET …/points/{id}`.
pub async fn get_one(c: &Cluster, spec: &CollectionSpec, id: &str) -> ApiResult<Value> {
    let pid: PointId =
        id.parse().map_err(|_| ApiError::invalid("id", "an unsigned integer or a UUID", format!("{id:?}")))?;
    let shards = if spec.sharding.routes_by_id() {
        vec![route::shard_for_id(&pid, spec.shard_number)]
    } else {
        all_shards(spec)
    };
    for s in shards {
        let path = shard_path(spec, s, &format!("/points/{pid}"));
        let r = c.call_shard(spec, s, "GET", &path, Bytes::new()).await?;
        if r.status == StatusCode::NOT_FOUND {
            continue;
        }
        return shard_result(spec, s, r);
    }
    Err(ApiError::new(StatusCode::NOT_FOUND, format!("point {pid} does not exist")))
}

/// `POST …/points/scroll`: every shard's page from `offset` in id order, merged; the next offset is the first
/// id not returned (stable: pages are cut by id, not by position).
pub async fn scroll(c: &Cluster, spec: &CollectionSpec, body: &[u8]) -> ApiResult<Value> {
    let mut m = body_object(body, true)?;
    let token = take_read_token(&mut m, spec)?;
    let token = settle_token(c, spec, token).await?;
    let limit = match m.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => v.as_u64().ok_or_else(|| ApiError::invalid("limit", "a non-negative integer", v))? as usize,
    };
    crate::convert::check_limit(limit, 0, c.state().config())?;
    let results = fanout(c, spec, "POST", "/points/scroll", per_shard(&m, &all_shards(spec), token.as_ref())).await?;
    if let Some(order) = m.get("order_by").filter(|v| !v.is_null()) {
        return Ok(merge_ordered(order, results, limit));
    }
    let mut points: Vec<(PointId, Value)> = Vec::new();
    let mut next: Option<PointId> = None;
    for (_, r) in results {
        if let Some(n) = r.get("next_page_offset").and_then(|v| serde_json::from_value::<PointId>(v.clone()).ok()) {
            next = Some(next.map_or(n, |x| x.min(n)));
        }
        if let Some(Value::Array(ps)) = r.get("points") {
            for p in ps {
                if let Some(id) = p.get("id").and_then(|v| serde_json::from_value::<PointId>(v.clone()).ok()) {
                    points.push((id, p.clone()));
                }
            }
        }
    }
    points.sort_by_key(|a| a.0);
    points.dedup_by(|a, b| a.0 == b.0);
    if points.len() > limit {
        next = Some(points[limit].0);
        points.truncate(limit);
    }
    let next = next.filter(|n| points.last().is_none_or(|(last, _)| n > last));
    Ok(json!({"points": points.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), "next_page_offset": next}))
}

/// Merges the shards' pages of a scroll with `order_by` (each in order, each point with its `order_value`) into
/// the first `limit` by value, then id — the order one node gives. The next page starts from the last value
/// (`order_by.start_from`), as on one node.
fn merge_ordered(order: &Value, results: Vec<(u32, Value)>, limit: usize) -> Value {
    let descending = order.get("direction").and_then(Value::as_str) == Some("desc");
    let mut points: Vec<(f64, PointId, Value)> = results
        .into_iter()
        .filter_map(|(_, mut r)| match r.get_mut("points").map(Value::take) {
            Some(Value::Array(ps)) => Some(ps),
            _ => None,
        })
        .flatten()
        .filter_map(|p| {
            let id = serde_json::from_value::<PointId>(p.get("id")?.clone()).ok()?;
            Some((p.get("order_value")?.as_f64()?, id, p))
        })
        .collect();
    points.sort_by(|a, b| {
        let by_value = if descending { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) };
        by_value.then(a.1.cmp(&b.1))
    });
    points.dedup_by(|a, b| a.1 == b.1);
    points.truncate(limit);
    json!({"points": points.into_iter().map(|(_, _, p)| p).collect::<Vec<_>>(), "next_page_offset": null})
}

/// `POST …/points/count`: the shards' exact counts, summed.
pub async fn count(c: &Cluster, spec: &CollectionSpec, body: &[u8]) -> ApiResult<Value> {
    let mut m = body_object(body, true)?;
    let token = take_read_token(&mut m, spec)?;
    let token = settle_token(c, spec, token).await?;
    let results = fanout(c, spec, "POST", "/points/count", per_shard(&m, &all_shards(spec), token.as_ref())).await?;
    let total: u64 = results.iter().filter_map(|(_, r)| r.get("count").and_then(Value::as_u64)).sum();
    Ok(json!({"count": total}))
}

/// `GET /collections/{name}`: shard 0's description with the counts of all shards summed and the cluster layout.
pub async fn info(c: &Cluster, spec: &CollectionSpec) -> ApiResult<Value> {
    let results = broadcast(c, spec, &all_shards(spec), "GET", "", Bytes::new()).await?;
    let mut out = results.first().map(|(_, r)| r.clone()).unwrap_or(Value::Null);
    for key in ["points_count", "vectors_count", "indexed_vectors_count", "segments_count"] {
        let sum: u64 = results.iter().filter_map(|(_, r)| r.get(key).and_then(Value::as_u64)).sum();
        if let Some(o) = out.as_object_mut() {
            o.insert(key.into(), json!(sum));
        }
    }
    if let Some(params) = out.pointer_mut("/config/params").and_then(Value::as_object_mut) {
        params.insert("shard_number".into(), json!(spec.shard_number));
        params.insert("replication_factor".into(), json!(spec.replication_factor));
        params.insert("sharding".into(), serde_json::to_value(&spec.sharding).unwrap_or(Value::Null));
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("status".into(), json!(worst_status(&results)));
    }
    Ok(out)
}

fn worst_status(results: &[(u32, Value)]) -> &'static str {
    let statuses: Vec<&str> = results.iter().filter_map(|(_, r)| r.get("status").and_then(Value::as_str)).collect();
    if statuses.contains(&"red") {
        "red"
    } else if statuses.contains(&"yellow") {
        "yellow"
    } else {
        "green"
    }
}
