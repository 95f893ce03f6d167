//! `GET /collections/{c}/map` in cluster mode: every shard sends an even sample (its share of the total, by its
//! count under the filter) with only the payload values the map shows, and this node lays the union out with
//! the same code as a single node ([`quiver_engine::map::map_records`]). A centroid-sharded collection's
//! centroids are drawn as the cells.

use bytes::Bytes;
use quiver_cluster::CollectionSpec;
use quiver_engine::map::map_records;
use quiver_engine::types::Record;
use quiver_engine::{Payload, PointId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Cluster;
use super::read::{broadcast, to_bytes};
use crate::error::{ApiError, ApiResult};
use crate::routes::map::MapParams;
use crate::state::blocking;

#[derive(Deserialize)]
struct Header {
    ids: Vec<PointId>,
    payloads: Vec<Payload>,
}

/// The map of a cluster collection; `query` is the request's query string.
pub async fn map(c: &Cluster, spec: &CollectionSpec, query: Option<&str>) -> ApiResult<Value> {
    let uri: axum::http::Uri = format!("/?{}", query.unwrap_or(""))
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    let params = axum::extract::Query::<MapParams>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(format!("invalid query string {query:?}: {}", e.body_text())))?;
    let req = params.0.request()?;
    req.validate()?;
    if !spec.config.has_dense() {
        return Err(ApiError::invalid(
            "collection",
            "a collection with a dense vector (the map lays one out)",
            "a collection of sparse vectors only",
        ));
    }
    let shards: Vec<u32> = (0..spec.shard_number).collect();
    let filter = req.filter.as_ref().map_or(json!({}), |f| json!({"filter": f}));
    let counts = broadcast(c, spec, &shards, "POST", "/points/count", to_bytes(&filter)).await?;
    let counts: Vec<(u32, u64)> =
        counts.iter().map(|(s, v)| (*s, v.get("count").and_then(Value::as_u64).unwrap_or(0))).collect();
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let mut keys: Vec<String> = req.color_by.iter().cloned().collect();
    keys.push(req.text_field.clone().unwrap_or_else(|| "text".to_owned()));
    let dim = spec.config.dimension;
    let calls = counts.iter().filter(|(_, n)| *n > 0).map(|&(s, n)| {
        // The shard's share of the sample (at least one point of a shard that has any).
        let share = ((req.sample as u128 * n as u128).div_ceil(total.max(1) as u128) as usize).max(1);
        let body = to_bytes(&json!({"n": share, "filter": req.filter, "keys": keys}));
        let path = format!("/internal/map-sample/{}", spec.shard_collection(s));
        async move {
            let r = c.call_shard(spec, s, "POST", &path, body).await?;
            if !r.status.is_success() {
                return Err(ApiError::new(r.status, String::from_utf8_lossy(&r.body).into_owned()));
            }
            decode(&r.body, dim).map_err(|e| ApiError::internal(format!("shard {s}'s map sample: {e}")))
        }
    });
    let mut records = Vec::new();
    for part in futures_util::future::join_all(calls).await {
        records.extend(part?);
    }
    records.sort_by_key(|r| r.id);
    // The shares were rounded up: thin evenly back to the sample size.
    if records.len() > req.sample {
        let n = records.len();
        records = (0..req.sample).map(|i| records[i * n / req.sample].clone()).collect();
    }
    let centroids: Option<Vec<f32>> = spec.sharding.settled_centroids().map(|c| c.concat());
    let metric = spec.config.metric;
    let m = blocking(move || Ok(map_records(&records, total, dim, metric, centroids.as_deref(), &req)?)).await?;
    serde_json::to_value(crate::wire::CollectionMap::from(m))
        .map_err(|e| ApiError::internal(format!("encoding the map: {e}")))
}

/// Decodes a shard's `/internal/map-sample` reply into records with vectors and the map's payload values.
fn decode(b: &Bytes, dim: usize) -> Result<Vec<Record>, String> {
    let len = b.get(..4).ok_or("shorter than its header length")?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let header = b.get(4..4 + len).ok_or("shorter than its header")?;
    let h: Header = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let rows = &b[4 + len..];
    if h.ids.len() != h.payloads.len() || rows.len() != h.ids.len() * dim * 4 {
        return Err(format!(
            "{} ids, {} payloads and {} vector bytes do not agree",
            h.ids.len(),
            h.payloads.len(),
            rows.len()
        ));
    }
    Ok(h.ids
        .into_iter()
        .zip(h.payloads)
        .zip(rows.chunks_exact(dim * 4))
        .map(|((id, payload), v)| Record {
            id,
            payload: Some(payload),
            vector: Some(v.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect()),
            vectors: None,
            sparse: None,
        })
        .collect())
}
