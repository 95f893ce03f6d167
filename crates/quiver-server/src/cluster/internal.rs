//! A cluster node's internal router: what other nodes (over NATS request/reply) and this node itself call to
//! reach its local shards. It serves the ordinary handlers over the local database (never in cluster mode, so a
//! shard request is answered by the shard alone), without the API-key layer (NATS carries these requests, not
//! the public listener), plus routes of its own:
//!
//! - `POST /internal/plan/{collection}/{kind}?min_seq=N` — once the shard has applied log entry `N`, resolves a write (`delete`, `set_payload`, `overwrite_payload`,
//!   `delete_payload`, `clear_payload`, `create_index`, `delete_index`, and `rewrite` — `{"points": ids}` as they
//!   are now, which moving points between shards copies; the body is the public route's body) on
//!   the local shard without logging it. Answer: 8 bytes, the applied sequence number it was resolved at
//!   (little-endian), then the encoded operation (nothing when the write changes nothing).
//! - `POST /internal/wait/{collection}?seq=N` — waits (at most [`super::APPLY_WAIT`]) until the shard has
//!   applied log entry `N`.
//! - `GET /internal/status` — every local collection and its applied sequence number.
//! - `POST /internal/sample/{collection}?n=N&from=F&count=C` — rows `F..F+C` of `N` of the shard's vectors evenly
//!   spaced in id order, as little-endian `f32`s (what centroid training runs k-means on, fetched in parts).
//! - `POST /internal/map-sample/{collection}` — body `{n, filter, keys}`: an even sample of the shard for a map:
//!   ids, the payload values at `keys`, and the vectors (see `map_sample` for the bytes).
//! - `POST /internal/misplaced/{collection}?min_seq=N` — body `{centroids, shard, after, scan}`: scans up to
//!   `scan` points from id `after` and answers `{ids, next}`, the ids whose nearest centroid is not `shard`'s.
//! - `POST /internal/bm25-stats/{collection}?min_seq=N` — body `{key, text}`: the shard's BM25 statistics for the
//!   text (`{docs, total_len, df}`); a cluster sums them so every shard scores with the whole collection's.
//! - `POST /internal/fence/{collection}?uid=&epoch=` — answered by the node itself (it needs the cluster): see
//!   [`super::place`].
//! - `POST /internal/snapshot/{collection}/{shard}` — answered by the node itself before this router (it needs the
//!   cluster): snapshots the local replica of a shard into the object store (see [`super::snapshots`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::IntoResponse;
use quiver_engine::WriteRequest;
use serde::Deserialize;

use super::{APPLY_WAIT, LocalShard};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_json;
use crate::routes::collections::field_type;
use crate::state::{AppState, ServerConfig, blocking};
use crate::wire::{CreateFieldIndex, DeletePayload, PointsSelector, SetPayload};

/// The internal router over `state` (a local twin: see [`AppState::local_twin`]).
pub fn router(state: AppState) -> Router {
    let (public, _) = crate::router_and_doc();
    let limit = state.config().max_body_bytes.max(64 << 20);
    public
        .route("/internal/plan/{collection}/{kind}", axum::routing::post(plan))
        .route("/internal/wait/{collection}", axum::routing::post(wait))
        .route("/internal/status", axum::routing::get(status))
        .route("/internal/sample/{collection}", axum::routing::post(sample))
        .route("/internal/misplaced/{collection}", axum::routing::post(misplaced))
        .route("/internal/map-sample/{collection}", axum::routing::post(map_sample))
        .route("/internal/bm25-stats/{collection}", axum::routing::post(bm25_stats))
        .layer(DefaultBodyLimit::max(limit))
        // Other nodes and this node itself: the caller was checked where the request entered the cluster.
        .layer(axum::Extension(crate::access::Access::Manage))
        .with_state(state)
}

/// Turns a public write body of `kind` into the engine's request.
pub fn write_request(kind: &str, body: &[u8], field: Option<&str>, cfg: &ServerConfig) -> ApiResult<WriteRequest> {
    Ok(match kind {
        "delete" => {
            let b: PointsSelector = parse_json(body)?;
            WriteRequest::Delete(convert::selector(b.points, b.filter, cfg)?)
        }
        "clear_payload" => {
            let b: PointsSelector = parse_json(body)?;
            WriteRequest::ClearPayload(convert::selector(b.points, b.filter, cfg)?)
        }
        "set_payload" => {
            let b: SetPayload = parse_json(body)?;
            if let Some(k) = b.key.as_deref().filter(|k| !quiver_engine::filter::is_valid_key(k)) {
                return Err(ApiError::invalid(
                    "key",
                    "a dotted payload key without empty segments (like `meta.tags`)",
                    format!("{k:?}"),
                ));
            }
            WriteRequest::SetPayload {
                selector: convert::selector(b.points, b.filter, cfg)?,
                payload: b.payload,
                key: b.key,
            }
        }
        "overwrite_payload" => {
            let b: SetPayload = parse_json(body)?;
            if b.key.is_some() {
                return Err(ApiError::invalid("key", "absent when overwriting (use POST to set under a key)", "a key"));
            }
            WriteRequest::OverwritePayload { selector: convert::selector(b.points, b.filter, cfg)?, payload: b.payload }
        }
        "delete_payload" => {
            let b: DeletePayload = parse_json(body)?;
            WriteRequest::DeletePayloadKeys { selector: convert::selector(b.points, b.filter, cfg)?, keys: b.keys }
        }
        "create_index" => {
            let b: CreateFieldIndex = parse_json(body)?;
            WriteRequest::CreateFieldIndex { ty: field_type(b.field_schema)?, key: b.field_name }
        }
        "rewrite" => {
            let b: PointsSelector = parse_json(body)?;
            if b.filter.is_some() {
                return Err(ApiError::invalid("filter", "absent (a rewrite names its points)", "a filter"));
            }
            WriteRequest::Rewrite(b.points.unwrap_or_default())
        }
        "delete_index" => WriteRequest::DropFieldIndex {
            key: field.ok_or_else(|| ApiError::bad_request("delete_index needs ?field="))?.to_owned(),
        },
        other => return Err(ApiError::bad_request(format!("unknown write kind {other:?}"))),
    })
}

#[derive(Debug, Deserialize)]
struct PlanQuery {
    field: Option<String>,
    /// Resolve only once the shard has applied this log entry (the log's last one when the write began).
    min_seq: Option<u64>,
}

async fn plan(
    State(s): State<AppState>,
    Path((collection, kind)): Path<(String, String)>,
    Query(q): Query<PlanQuery>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let req = write_request(&kind, &body, q.field.as_deref(), s.config())?;
    let col = s.collection(&collection)?;
    let planned = blocking(move || {
        if let Some(seq) = q.min_seq {
            col.wait_for(seq, APPLY_WAIT)?;
        }
        Ok(col.plan_write(req)?)
    })
    .await?;
    let mut out = planned.at_seq.to_le_bytes().to_vec();
    if let Some(op) = planned.op {
        out.extend_from_slice(&op.encode());
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    seq: u64,
}

async fn wait(
    State(s): State<AppState>,
    Path(collection): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<axum::Json<u64>> {
    let col = s.collection(&collection)?;
    let applied = blocking(move || {
        col.wait_for(q.seq, APPLY_WAIT)?;
        Ok(col.applied_seq())
    })
    .await?;
    Ok(axum::Json(applied))
}

async fn status(State(s): State<AppState>) -> ApiResult<axum::Json<Vec<LocalShard>>> {
    let db = s.db()?;
    let mut out = Vec::new();
    for c in db.list() {
        if let Ok(col) = db.collection(&c.name) {
            out.push(LocalShard { collection: c.name, applied_seq: col.applied_seq() });
        }
    }
    Ok(axum::Json(out))
}

#[derive(Debug, Deserialize)]
struct SampleQuery {
    /// Size of the whole sample.
    n: usize,
    /// First row of the sample to answer.
    #[serde(default)]
    from: usize,
    /// Most rows to answer.
    count: usize,
}

/// Pages of the shard read when sampling or scanning it.
const PAGE: usize = 10_000;

/// Rows `from..from + count` of an evenly spaced sample of `n` of the shard's vectors (every `⌈len / n⌉`-th in id
/// order), as little-endian `f32`s, row after row: binary, since a sample in JSON would pass NATS's message limit.
async fn sample(
    State(s): State<AppState>,
    Path(collection): Path<String>,
    Query(q): Query<SampleQuery>,
) -> ApiResult<Vec<u8>> {
    let col = s.collection(&collection)?;
    let n = q.n.clamp(1, 1_000_000);
    let bytes = blocking(move || {
        let (_, rows) = col.sample(n, None, false, true)?;
        let end = q.from.saturating_add(q.count).min(rows.len());
        let mut out = Vec::new();
        for r in rows.get(q.from.min(end)..end).unwrap_or_default() {
            if let Some(v) = &r.vector {
                out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            }
        }
        Ok(out)
    })
    .await?;
    Ok(bytes)
}

#[derive(Debug, Deserialize)]
struct MapSampleBody {
    n: usize,
    #[serde(default)]
    filter: Option<quiver_engine::Filter>,
    #[serde(default)]
    keys: Vec<String>,
}

/// `POST /internal/map-sample/{collection}` `{"n", "filter", "keys"}`: an even sample of the shard for a map, as
/// bytes: a little-endian u32 header length, the header JSON `{"total", "ids", "payloads"}` (each payload only
/// the map's `keys`, see [`quiver_engine::map::map_payload`]), then the vectors as little-endian f32 rows.
async fn map_sample(State(s): State<AppState>, Path(collection): Path<String>, body: Bytes) -> ApiResult<Vec<u8>> {
    let b: MapSampleBody = parse_json(&body)?;
    let col = s.collection(&collection)?;
    blocking(move || {
        let (total, rows) = col.sample(b.n.min(quiver_engine::map::MAX_MAP_SAMPLE), b.filter.as_ref(), true, true)?;
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        let payloads: Vec<_> = rows
            .iter()
            .map(|r| r.payload.as_ref().map(|p| quiver_engine::map::map_payload(p, &b.keys)).unwrap_or_default())
            .collect();
        let header = serde_json::to_vec(&serde_json::json!({"total": total, "ids": ids, "payloads": payloads}))
            .map_err(|e| ApiError::internal(format!("encoding a map sample: {e}")))?;
        let mut out = Vec::with_capacity(4 + header.len() + rows.len() * col.config().dimension * 4);
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(header);
        for r in &rows {
            out.extend(r.vector.as_deref().unwrap_or_default().iter().flat_map(|x| x.to_le_bytes()));
        }
        Ok(out)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct MisplacedBody {
    centroids: Vec<Vec<f32>>,
    shard: u32,
    after: Option<quiver_engine::PointId>,
    scan: usize,
}

#[derive(Debug, Deserialize)]
struct MinSeqQuery {
    min_seq: Option<u64>,
}

async fn misplaced(
    State(s): State<AppState>,
    Path(collection): Path<String>,
    Query(q): Query<MinSeqQuery>,
    body: Bytes,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let b: MisplacedBody = parse_json(&body)?;
    let col = s.collection(&collection)?;
    let out = blocking(move || {
        if let Some(seq) = q.min_seq {
            col.wait_for(seq, APPLY_WAIT)?;
        }
        let metric = col.config().metric;
        let page = col.scroll(None, b.after, b.scan.clamp(1, PAGE), false, true)?;
        let ids: Vec<quiver_engine::PointId> = page
            .points
            .iter()
            .filter(|r| {
                r.vector
                    .as_ref()
                    .is_some_and(|v| quiver_cluster::route::nearest_shard(&b.centroids, metric, v) != b.shard)
            })
            .map(|r| r.id)
            .collect();
        Ok(serde_json::json!({"ids": ids, "next": page.next_offset}))
    })
    .await?;
    Ok(axum::Json(out))
}

#[derive(Debug, Deserialize)]
struct Bm25StatsBody {
    key: String,
    text: String,
}

/// The shard's BM25 statistics for a query text (once it has applied `min_seq`).
async fn bm25_stats(
    State(s): State<AppState>,
    Path(collection): Path<String>,
    Query(q): Query<MinSeqQuery>,
    body: Bytes,
) -> ApiResult<axum::Json<quiver_engine::TextStats>> {
    let b: Bm25StatsBody = parse_json(&body)?;
    let col = s.collection(&collection)?;
    let stats = blocking(move || {
        if let Some(seq) = q.min_seq {
            col.wait_for(seq, APPLY_WAIT)?;
        }
        Ok(col.text_stats(&b.key, &b.text)?)
    })
    .await?;
    Ok(axum::Json(stats))
}
