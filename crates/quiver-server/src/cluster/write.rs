//! Writes across shards. Every write becomes one self-contained operation per shard it touches, appended to that
//! shard's JetStream stream; the stream's acknowledgement (stored on a quorum of its replicas) is the write's.
//!
//! - Upserts are prepared here (validated, normalised, routed by id / payload key / nearest centroid) and appended
//!   as they are.
//! - Deletes by id under hash sharding are appended as they are, to the ids' shards.
//! - Everything that depends on a shard's state (payload updates, deletes by filter, payload indexes) is resolved
//!   on a replica of the shard ([`quiver_engine::Collection::plan_write`], at applied sequence `s`) and appended
//!   only if the stream's last sequence is still `s` (JetStream's expected-last-sequence check): a write that
//!   landed in between makes the append fail, and the write is resolved again. So the operation in the log is
//!   what the request means at that position of the log — no lost updates between concurrent writers.
//!
//! A request that spans shards is atomic per shard, not across shards: a failure part-way leaves the shards
//! already written written (every operation is idempotent, so the client can retry the whole request).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::future::join_all;
use quiver_cluster::map::{CollectionSpec, Sharding, assign_replicas};
use quiver_cluster::route;
use quiver_engine::ops::{Operation, PointWrite};
use quiver_engine::{PointId, PointInput, prepare_points};
use serde_json::{Map, Value, json};

use super::read::{body_object, to_bytes};
use super::{Cluster, now_ms};
use crate::convert;
use crate::embedding;
use crate::error::{ApiError, ApiResult};
use crate::state::blocking;
use crate::wire::{CreateCollection, ReadToken, UpsertPoints};

/// How often a resolved write is retried when other writes keep landing first.
const CAS_ATTEMPTS: usize = 50;
/// Most runs of a per-shard write that keeps overlapping point moves.
const MOVE_REDO: usize = 8;

fn cerr(e: quiver_cluster::Error) -> ApiError {
    ApiError::from(e)
}

/// `PUT /collections/{name}`: Qdrant's body with `shard_number`, `replication_factor` and QuiverDB's `sharding`.
pub async fn create(c: &Cluster, name: &str, body: &[u8]) -> ApiResult<Value> {
    let mut m = body_object(body, false)?;
    let num = |m: &mut Map<String, Value>, key: &str, default: u32| -> ApiResult<u32> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::invalid(key, "a positive integer", &v)),
        }
    };
    let shard_number = num(&mut m, "shard_number", 1)?;
    let replication_factor = num(&mut m, "replication_factor", 1)?;
    let sharding = match m.remove("sharding") {
        None | Some(Value::Null) => Sharding::Hash,
        Some(v) => parse_sharding(v)?,
    };
    let rest: CreateCollection = crate::extract::parse_json(&to_bytes(&Value::Object(m)))?;
    let model_dim = crate::routes::collections::requested_model_dim(c.state(), &rest).await?;
    let config = crate::routes::collections::engine_config(rest, model_dim)?;
    // Each named vector's model loads and gives vectors of that vector's size (as on one node).
    let (state, checked) = (c.state().clone(), config.clone());
    let collection = name.to_owned();
    blocking(move || state.embedders().check_spaces(&collection, &checked)).await?;
    let spec = new_spec(c, name, config, shard_number, replication_factor, sharding).await?;
    create_spec(c, spec).await?;
    Ok(json!(true))
}

/// The `sharding` of a request body.
pub(crate) fn parse_sharding(v: Value) -> ApiResult<Sharding> {
    serde_json::from_value(v).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid sharding: {e} (expected {{\"method\": \"hash\"}}, {{\"method\": \"payload_key\", \"key\": \
             \"tenant\"}} or {{\"method\": \"centroid\"}}, optionally with \"centroids\": [[…], …] or \"train_after\": N)"
        ))
    })
}

/// A new collection's spec: centroids prepared, replicas assigned over the live members not being drained,
/// validated.
pub(crate) async fn new_spec(
    c: &Cluster,
    name: &str,
    config: quiver_engine::CollectionConfig,
    shard_number: u32,
    replication_factor: u32,
    sharding: Sharding,
) -> ApiResult<CollectionSpec> {
    if (config.is_named() || !config.has_dense()) && matches!(sharding, Sharding::Centroid { .. }) {
        return Err(ApiError::invalid(
            "sharding",
            "hash or payload_key sharding for named or sparse vectors only (centroid sharding places points by \
             one unnamed dense vector)",
            format!("centroid sharding with vectors {:?}", config.vector_names()),
        ));
    }
    let sharding = match sharding {
        Sharding::Centroid { centroids, train_after, .. } => {
            let centroids = prepare_centroids(&config, &centroids, "sharding.centroids")?;
            // Given centroids place every point from the start (epoch 1, nothing to move); none: by id until
            // trained.
            let epoch = u64::from(!centroids.is_empty());
            Sharding::Centroid { centroids, train_after, epoch, placed: epoch }
        }
        s => s,
    };
    // Live members that are not being drained (a member whose lease lapsed gets no new replicas).
    let members = c.members();
    let nodes: Vec<u32> = c.map().nodes().await.map_err(cerr)?.into_keys().filter(|&n| members.eligible(n)).collect();
    let replicas = assign_replicas(&nodes, shard_number.clamp(1, quiver_cluster::map::MAX_SHARDS), replication_factor)
        .map_err(cerr)?;
    let spec = CollectionSpec {
        name: name.to_owned(),
        uid: route_uid(c.node_id()),
        config,
        shard_number,
        replication_factor,
        sharding,
        replicas,
        joining: Vec::new(),
        created_ms: now_ms(),
    };
    spec.validate().map_err(cerr)?;
    Ok(spec)
}

/// Creates shard `s`'s log stream, trying again for up to about 10 s while JetStream answers "no suitable peers
/// for placement": right after a NATS server starts, or while one is slow to answer its heartbeats under load,
/// the meta leader briefly counts it offline although the placement is possible; any other error fails at once.
async fn ensure_stream_retrying(c: &Cluster, spec: &CollectionSpec, s: u32) -> quiver_cluster::Result<()> {
    let mut pause = Duration::from_millis(250);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.nats().ensure_stream(spec, s).await {
            Err(e) if e.to_string().contains("no suitable peers") && tokio::time::Instant::now() < deadline => {
                tracing::warn!(collection = %spec.name, shard = s, error = %e, "shard log placement failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

/// Creates the collection `spec` describes: its shard logs, then its map entry (409 when the name is taken),
/// and waits until its replicas have opened their shards.
pub(crate) async fn create_spec(c: &Cluster, spec: CollectionSpec) -> ApiResult<()> {
    let name = spec.name.clone();
    let name = name.as_str();
    if c.map().collection(name).await.map_err(cerr)?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("collection {name:?} already exists")));
    }
    for s in 0..spec.shard_number {
        if let Err(e) = ensure_stream_retrying(c, &spec, s).await {
            let _ = c.nats().delete_streams(&spec).await;
            return Err(ApiError::bad_request(format!(
                "could not create the shard logs: {e} (this cluster has {} NATS servers)",
                c.nats().servers()
            )));
        }
    }
    let revision = match c.map().create_collection(&spec).await {
        Ok(r) => r,
        Err(e) => {
            let _ = c.nats().delete_streams(&spec).await;
            return Err(cerr(e));
        }
    };
    c.newer(name, revision);
    let spec = std::sync::Arc::new(spec);
    c.learn(std::sync::Arc::clone(&spec)).await;
    wait_ready(c, &spec).await;
    Ok(())
}

/// Centroids as given by a user, prepared like vectors (unit length under cosine); errors name the centroid.
pub(crate) fn prepare_centroids(
    config: &quiver_engine::CollectionConfig,
    centroids: &[Vec<f32>],
    field: &str,
) -> ApiResult<Vec<Vec<f32>>> {
    let mut prepared = Vec::with_capacity(centroids.len());
    for (i, v) in centroids.iter().enumerate() {
        prepared.push(quiver_index::prepare_query(config.metric, config.dimension, v).map_err(|e| {
            ApiError::invalid(format!("{field}[{i}]"), format!("{} finite numbers", config.dimension), e)
        })?);
    }
    Ok(prepared)
}

/// A fresh collection uid: time, node and a counter, mixed.
fn route_uid(node: u32) -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut z = t ^ (u64::from(node) << 48) ^ n.rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Waits (at most 10 s) until every replica of every shard has opened its local collection, so reads right after
/// the create find them.
async fn wait_ready(c: &Cluster, spec: &CollectionSpec) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for s in 0..spec.shard_number {
        for &node in &spec.replicas[s as usize] {
            let path = format!("/collections/{}/exists", spec.shard_collection(s));
            loop {
                let ok = match c.call(node, "GET", &path, Bytes::new()).await {
                    Ok(r) => serde_json::from_slice::<Value>(&r.body)
                        .ok()
                        .and_then(|v| v.pointer("/result/exists").and_then(Value::as_bool))
                        .unwrap_or(false),
                    Err(_) => false,
                };
                if ok || tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// `DELETE /collections/{name}`: removes it from the map (every node drops its shards) and deletes its streams.
pub async fn drop_collection(c: &Cluster, name: &str) -> ApiResult<Value> {
    let Some(cur) = c.map().collection(name).await.map_err(cerr)? else {
        return Ok(json!(false));
    };
    c.map().drop_collection(name, cur.revision).await.map_err(cerr)?;
    c.forget(name).await;
    c.nats().delete_streams(&cur.value).await.map_err(cerr)?;
    if let Err(e) = c.nats().delete_snapshots(&cur.value).await {
        tracing::warn!(collection = %name, error = %e, "could not delete the dropped collection's snapshots");
    }
    Ok(json!(true))
}

/// What a write answers: the highest log sequence it was appended at, whether it was applied (`wait`), and the
/// read token (each shard's sequence) that lets a read through any node see it.
fn update_result(token: &ReadToken, wait: bool) -> Value {
    json!({
        "operation_id": token.0.values().copied().max().unwrap_or(0),
        "status": if wait { "completed" } else { "acknowledged" },
        "read_token": token.to_string(),
    })
}

/// Collects per-shard results into the write's read token (the first error is the answer).
fn collect(results: Vec<ApiResult<(u32, u64)>>) -> ApiResult<ReadToken> {
    let mut token = ReadToken::default();
    for r in results {
        let (shard, seq) = r?;
        let e = token.0.entry(shard).or_insert(0);
        *e = (*e).max(seq);
    }
    Ok(token)
}

/// Whether `?wait=true`.
pub fn wait_param(query: Option<&str>) -> ApiResult<bool> {
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "wait" {
            return match v {
                "true" | "" => Ok(true),
                "false" => Ok(false),
                other => Err(ApiError::invalid("wait", "true or false", format!("{other:?}"))),
            };
        }
    }
    Ok(false)
}

/// Waits until a replica of `shard` — this node's when it holds one — has applied log entry `seq`.
async fn wait_applied(c: &Cluster, spec: &CollectionSpec, shard: u32, seq: u64) -> ApiResult<()> {
    let path = format!("/internal/wait/{}?seq={seq}", spec.shard_collection(shard));
    let r = c.call_shard(spec, shard, "POST", &path, Bytes::new()).await?;
    super::read::shard_result(spec, shard, r).map(drop)
}

/// Appends `op` to `shard` (unconditionally) and, with `wait`, waits until it is applied.
async fn append(c: &Cluster, spec: &CollectionSpec, shard: u32, op: &Operation, wait: bool) -> ApiResult<u64> {
    let seq = c.nats().append(spec, shard, op.encode(), None).await.map_err(cerr)?;
    if wait {
        wait_applied(c, spec, shard, seq).await?;
    }
    Ok(seq)
}

/// `PUT …/points`.
pub async fn upsert(c: &Cluster, spec: &CollectionSpec, body: &[u8], wait: bool) -> ApiResult<Value> {
    let body: UpsertPoints = crate::extract::parse_json(body)?;
    let up = convert::points(body, c.state().config())?;
    let state = c.state().clone();
    let config = spec.config.clone();
    let name = spec.name.clone();
    let inputs = blocking(move || embedding::resolve_upsert(state.embedders(), &name, &config, up)).await?;
    let token = upsert_points(c, spec, inputs, wait).await?;
    Ok(update_result(&token, wait))
}

/// Validates, routes and appends points that already have their vectors. Routing holds the node's routing gate
/// (shared) from reading the spec to the appends, so new centroids can wait for every upsert routed by the old
/// ones (see [`super::place`]). Under payload-key and centroid sharding a point's shard can change when it is
/// written again (another key value, another vector): the same ids are then deleted from every other shard that
/// still holds them, after the upsert (so the point is never missing).
async fn upsert_points(
    c: &Cluster,
    spec: &CollectionSpec,
    inputs: Vec<PointInput>,
    wait: bool,
) -> ApiResult<ReadToken> {
    let config = spec.config.clone();
    let (inputs, writes) = blocking(move || {
        let writes = prepare_points(&config, &inputs, now_ms())?;
        Ok((inputs, writes))
    })
    .await?;
    let gate = c.route_gate(&spec.name);
    let guard = gate.read().await;
    let fresh = c.spec(&spec.name).ok().filter(|s| s.uid == spec.uid);
    let spec: &CollectionSpec = fresh.as_deref().unwrap_or(spec);
    let mut per_shard: BTreeMap<u32, Vec<PointWrite>> = BTreeMap::new();
    for (i, (p, w)) in inputs.iter().zip(writes).enumerate() {
        let shard = route::shard_for_point(spec, p, &w.vector, &format!("points[{i}]")).map_err(cerr)?;
        per_shard.entry(shard).or_default().push(w);
    }
    let assigned: BTreeMap<u32, Vec<PointId>> =
        per_shard.iter().map(|(s, ws)| (*s, ws.iter().map(|w| w.id).collect())).collect();
    let appends = per_shard
        .into_iter()
        .map(|(shard, ws)| async move { Ok((shard, append(c, spec, shard, &Operation::Upsert(ws), false).await?)) });
    let mut token = collect(join_all(appends).await)?;
    // Under the gate too: a fence must also wait for the old copies' removal, or a move could copy this write
    // and then see its copy removed.
    if !spec.sharding.routes_by_id() && spec.shard_number > 1 {
        token.merge(&remove_elsewhere(c, spec, &assigned).await?);
    }
    drop(guard);
    if wait {
        wait_token(c, spec, &token).await?;
    }
    c.state().metrics().cluster_write();
    Ok(token)
}

/// Waits until a replica of every shard in `token` — this node's when it holds one — has applied that far.
async fn wait_token(c: &Cluster, spec: &CollectionSpec, token: &ReadToken) -> ApiResult<()> {
    let waits = token.0.iter().map(|(&s, &seq)| wait_applied(c, spec, s, seq));
    for r in join_all(waits).await {
        r?;
    }
    Ok(())
}

/// Deletes each id of `assigned` (shard → ids written there) from the other shards, where it is (resolved per
/// shard as a delete by `has_id`, appended only where something matched).
pub(crate) async fn remove_elsewhere(
    c: &Cluster,
    spec: &CollectionSpec,
    assigned: &BTreeMap<u32, Vec<PointId>>,
) -> ApiResult<ReadToken> {
    let requests: Vec<(u32, Bytes)> = (0..spec.shard_number)
        .filter_map(|s| {
            let ids: Vec<PointId> =
                assigned.iter().filter(|(t, _)| **t != s).flat_map(|(_, ids)| ids.iter().copied()).collect();
            (!ids.is_empty()).then(|| (s, to_bytes(&json!({"filter": {"must": [{"has_id": ids}]}}))))
        })
        .collect();
    per_shard_writes(c, spec, "delete", None, requests, false).await
}

/// Resolves and appends one write per shard (`requests`: shard → body). While a centroid-sharded collection's
/// points are moving, a write that overlapped a move batch (the move counter changed while it ran) runs again:
/// the batch may have copied a point to a shard this write had already resolved, and deleted it from the one
/// it resolved later, so the write would have matched it nowhere.
async fn per_shard_writes(
    c: &Cluster,
    spec: &CollectionSpec,
    kind: &str,
    field: Option<&str>,
    requests: Vec<(u32, Bytes)>,
    wait: bool,
) -> ApiResult<ReadToken> {
    let moving = spec.sharding.moving() || c.spec(&spec.name).is_ok_and(|s| s.sharding.moving());
    let mut token = ReadToken::default();
    for _round in 0..MOVE_REDO {
        let before = if moving { c.moves(&spec.name).await } else { None };
        let runs = requests
            .iter()
            .map(|(s, b)| async move { Ok((*s, plan_and_append(c, spec, *s, kind, field, b.clone(), wait).await?)) });
        token.merge(&collect(join_all(runs).await)?);
        if !moving || c.moves(&spec.name).await == before {
            break;
        }
    }
    Ok(token)
}

/// The ids of a selector body (`points`), when it selects by id.
fn selector_ids(m: &Map<String, Value>) -> ApiResult<Option<Vec<PointId>>> {
    match m.get("points") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body at points: {e}"))),
    }
}

/// A write resolved on a shard's replica and appended if the log has not moved since; retried otherwise.
async fn plan_and_append(
    c: &Cluster,
    spec: &CollectionSpec,
    shard: u32,
    kind: &str,
    field: Option<&str>,
    body: Bytes,
    wait: bool,
) -> ApiResult<u64> {
    let mut path = format!("/internal/plan/{}/{kind}", spec.shard_collection(shard));
    if let Some(f) = field {
        path.push_str("?field=");
        path.push_str(&percent(f));
    }
    for attempt in 0..CAS_ATTEMPTS {
        // Resolve on a replica that has applied everything the log held when this attempt began, so every write
        // acknowledged before this one is seen (also when the answer is "nothing matched" or a 404).
        let last = c.nats().last_seq(spec, shard).await.map_err(cerr)?;
        let sep = if path.contains('?') { '&' } else { '?' };
        let at = format!("{path}{sep}min_seq={last}");
        let r = c.call_shard(spec, shard, "POST", &at, body.clone()).await?;
        if !r.status.is_success() {
            return super::read::shard_result(spec, shard, r).map(|_| 0);
        }
        if r.body.len() < 8 {
            return Err(ApiError::internal("a replica answered a plan with fewer than 8 bytes"));
        }
        let at_seq = u64::from_le_bytes(r.body[..8].try_into().unwrap_or([0; 8]));
        if r.body.len() == 8 {
            // Nothing to do (nothing matched).
            return Ok(at_seq);
        }
        let op = r.body.slice(8..).to_vec();
        match c.nats().append(spec, shard, op, Some(at_seq)).await {
            Ok(seq) => {
                if wait {
                    wait_applied(c, spec, shard, seq).await?;
                }
                return Ok(seq);
            }
            Err(quiver_cluster::Error::Conflict { .. }) => {
                // The log moved on (or the replica is behind it): resolve again once it caught up.
                tokio::time::sleep(Duration::from_millis((2 * attempt as u64).min(50))).await;
            }
            Err(e) => return Err(cerr(e)),
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("shard {shard} of {:?}: other writes kept landing first; retry the request", spec.name),
    ))
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Writes whose operation depends on each shard's state (`kind` as in [`super::internal::write_request`]). A
/// selection by id under hash sharding goes to the ids' shards only; under other sharding every shard gets it as
/// a `has_id` filter (ids a shard does not hold are then skipped, not an error).
pub async fn planned(
    c: &Cluster,
    spec: &CollectionSpec,
    kind: &str,
    field: Option<&str>,
    body: &[u8],
    wait: bool,
) -> ApiResult<Value> {
    Ok(update_result(&planned_token(c, spec, kind, field, body, wait).await?, wait))
}

/// [`planned`], answering the read token.
async fn planned_token(
    c: &Cluster,
    spec: &CollectionSpec,
    kind: &str,
    field: Option<&str>,
    body: &[u8],
    wait: bool,
) -> ApiResult<ReadToken> {
    let by_selector = !matches!(kind, "create_index" | "delete_index");
    let mut requests: Vec<(u32, Bytes)> = Vec::new();
    let m = if by_selector || !body.is_empty() { body_object(body, !by_selector)? } else { Map::new() };
    match (by_selector, selector_ids(&m)?) {
        (true, Some(ids)) if spec.sharding.routes_by_id() => {
            for (s, sub) in route::ids_by_shard(spec, &ids) {
                let mut b = m.clone();
                b.insert("points".into(), json!(sub));
                requests.push((s, to_bytes(&Value::Object(b))));
            }
        }
        (true, Some(ids)) => {
            if m.get("filter").is_some_and(|f| !f.is_null()) {
                return Err(ApiError::invalid("points", "ids or a filter, not both", "both"));
            }
            let mut b = m.clone();
            b.remove("points");
            b.insert("filter".into(), json!({"must": [{"has_id": ids}]}));
            let bytes = to_bytes(&Value::Object(b));
            requests = (0..spec.shard_number).map(|s| (s, bytes.clone())).collect();
        }
        _ => {
            let bytes = to_bytes(&Value::Object(m));
            requests = (0..spec.shard_number).map(|s| (s, bytes.clone())).collect();
        }
    }
    let token = per_shard_writes(c, spec, kind, field, requests, wait).await?;
    c.state().metrics().cluster_write();
    Ok(token)
}

/// `POST …/points/delete`: by id under hash sharding straight to the ids' shards; otherwise resolved per shard.
pub async fn delete(c: &Cluster, spec: &CollectionSpec, body: &[u8], wait: bool) -> ApiResult<Value> {
    let m = body_object(body, false)?;
    let has_filter = m.get("filter").is_some_and(|f| !f.is_null());
    match selector_ids(&m)? {
        Some(ids) if spec.sharding.routes_by_id() && !has_filter => {
            convert::check_batch("points", ids.len(), c.state().config())?;
            let appends = route::ids_by_shard(spec, &ids)
                .into_iter()
                .map(|(s, ids)| async move { Ok((s, append(c, spec, s, &Operation::Delete(ids), wait).await?)) });
            Ok(update_result(&collect(join_all(appends).await)?, wait))
        }
        _ => planned(c, spec, "delete", None, body, wait).await,
    }
}

/// `POST …/documents`: chunked and embedded here, the chunks upserted across the shards, then the chunks left from
/// longer earlier versions deleted on every shard (as on one node: upsert first, so a document is never missing).
pub async fn upsert_documents(c: &Cluster, spec: &CollectionSpec, body: &[u8], wait: bool) -> ApiResult<Value> {
    let body: crate::wire::UpsertDocuments = crate::extract::parse_json(body)?;
    let most = c.state().config().max_batch_points;
    if body.documents.is_empty() || body.documents.len() > most {
        return Err(ApiError::invalid("documents", format!("1..={most} documents"), body.documents.len()));
    }
    let ch = body.chunking.unwrap_or_default();
    let options = quiver_embed::ChunkOptions::from_parts(ch.max_tokens, ch.overlap_tokens);
    let docs: Vec<crate::documents::Document> = body
        .documents
        .into_iter()
        .map(|d| crate::documents::Document {
            id: d.id.into_string(),
            text: d.text,
            metadata: d.metadata.unwrap_or_default(),
        })
        .collect();
    let state = c.state().clone();
    let config = spec.config.clone();
    let name = spec.name.clone();
    let (points, counts) = blocking(move || {
        let model = state.embedders().for_config(&name, &config)?;
        let (points, counts) = crate::documents::document_points(model.as_ref(), &docs, &options)?;
        if points.len() > most {
            return Err(ApiError::invalid(
                "documents",
                format!("at most {most} chunks in one request (send fewer or shorter documents)"),
                format!("{} chunks", points.len()),
            ));
        }
        Ok((points, counts))
    })
    .await?;
    let index = json!({"field_name": crate::documents::DOC_ID_KEY, "field_schema": "keyword"});
    let mut token = planned_token(c, spec, "create_index", None, &to_bytes(&index), true).await?;
    if !points.is_empty() {
        token.merge(&upsert_points(c, spec, points, wait).await?);
    }
    if !counts.is_empty() {
        let del = json!({"filter": crate::documents::stale_filter_json(&counts)});
        token.merge(&planned_token(c, spec, "delete", None, &to_bytes(&del), wait).await?);
    }
    let mut out = update_result(&token, wait);
    out["documents"] = json!(crate::documents::to_wire(&counts));
    Ok(out)
}

/// `DELETE …/documents/{doc_id}`: every chunk of the document, on every shard.
pub async fn delete_document(c: &Cluster, spec: &CollectionSpec, doc_id: &str, wait: bool) -> ApiResult<Value> {
    let del = json!({"filter": crate::documents::document_filter_json(doc_id)});
    planned(c, spec, "delete", None, &to_bytes(&del), wait).await
}
