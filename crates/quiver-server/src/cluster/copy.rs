//! Copying a collection into a new one online — with another shard count, replication factor or sharding — while
//! the source keeps answering reads and writes (`POST /cluster/collections/{name}/copy`). The way to reshard:
//! copy, move clients to the copy, drop the source.
//!
//! Each source shard is copied on its own: its last log position `L` is noted; every point it holds once a replica
//! has applied `L` is read whole (vector, payload, creation time, expiry: a `rewrite` plan) and appended to the
//! copy's shards by the copy's routing; then the source shard's log is replayed from `L + 1` until the copy has
//! caught up with it (each entry's points routed again; deletes and payload indexes to every shard that can hold
//! them). Every operation is idempotent, so replaying entries the first phase already saw converges to the
//! source's state at the position reached. The answer says how far each source shard was copied (a read token
//! of the source): writes to the source after that are not carried over.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use futures_util::future::join_all;
use quiver_cluster::map::Sharding;
use quiver_cluster::{CollectionSpec, route};
use quiver_engine::ops::{Operation, PointWrite};
use quiver_engine::{PointId, PointInput};
use serde_json::{Value, json};

use super::Cluster;
use super::read::{shard_path, shard_result, to_bytes};
use crate::error::{ApiError, ApiResult};
use crate::wire::{CopyCollection, ReadToken};

/// Points read from a source shard per page (whole points travel in one NATS message, 1 MiB by default).
const PAGE: usize = 128;
/// How long the replay waits for the next log entry it knows exists.
const ENTRY_WAIT: Duration = Duration::from_secs(10);

fn cerr(e: quiver_cluster::Error) -> ApiError {
    ApiError::from(e)
}

/// `POST /cluster/collections/{name}/copy`.
pub async fn copy(c: &Cluster, name: &str, req: CopyCollection) -> ApiResult<Value> {
    let src = c.spec(name)?;
    let shard_number = req.shard_number.unwrap_or(src.shard_number);
    let replication_factor = req.replication_factor.unwrap_or(src.replication_factor);
    let sharding = match req.sharding {
        Some(v) => super::write::parse_sharding(v)?,
        // The source's method; centroids are trained anew (their number is the shard count).
        None => match &src.sharding {
            Sharding::Centroid { train_after, .. } => {
                Sharding::Centroid { centroids: Vec::new(), train_after: *train_after, epoch: 0, placed: 0 }
            }
            other => other.clone(),
        },
    };
    let spec =
        super::write::new_spec(c, &req.to, src.config.clone(), shard_number, replication_factor, sharding).await?;
    super::write::create_spec(c, spec).await?;
    let dst = c.spec(&req.to)?;
    let runs = (0..src.shard_number).map(|s| {
        let (src, dst) = (&src, &dst);
        async move { copy_shard(c, src, dst, s).await.map(|r| (s, r)) }
    });
    let mut copied = 0;
    let mut replayed = 0;
    let mut upto = ReadToken::default();
    for r in join_all(runs).await {
        let (s, (n, entries, at)) = r.map_err(|e| {
            ApiError::new(
                e.status,
                format!("{} (the copy {:?} was created and is incomplete: drop it and copy again)", e.message, req.to),
            )
        })?;
        copied += n;
        replayed += entries;
        upto.0.insert(s, at);
    }
    // Applied by a replica of every shard of the copy before answering: reads of it then see all of it.
    for t in 0..dst.shard_number {
        let last = c.nats().last_seq(&dst, t).await.map_err(cerr)?;
        let path = format!("/internal/wait/{}?seq={last}", dst.shard_collection(t));
        let r = c.call_shard(&dst, t, "POST", &path, bytes::Bytes::new()).await?;
        shard_result(&dst, t, r)?;
    }
    c.state().metrics().cluster_write();
    Ok(json!({
        "from": name, "to": req.to, "points_copied": copied, "log_entries_replayed": replayed,
        "source_read_token": upto.to_string(),
    }))
}

/// Copies source shard `s`; answers the points read whole, the log entries replayed, and the position reached.
async fn copy_shard(c: &Cluster, src: &CollectionSpec, dst: &CollectionSpec, s: u32) -> ApiResult<(u64, u64, u64)> {
    let start = c.nats().last_seq(src, s).await.map_err(cerr)?;
    let mut copied = 0;
    let mut offset: Option<PointId> = None;
    loop {
        let body =
            json!({"limit": PAGE, "offset": offset, "with_payload": false, "with_vector": false, "min_seq": start});
        let r = c.call_shard(src, s, "POST", &shard_path(src, s, "/points/scroll"), to_bytes(&body)).await?;
        let page = shard_result(src, s, r)?;
        let ids: Vec<PointId> = page["points"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| serde_json::from_value(p["id"].clone()).ok()).collect())
            .unwrap_or_default();
        if !ids.is_empty() {
            let (_, points) = c.current_points(src, s, &ids).await?;
            copied += points.len() as u64;
            write_points(c, dst, points).await?;
        }
        match serde_json::from_value::<PointId>(page["next_page_offset"].clone()) {
            Ok(next) => offset = Some(next),
            Err(_) => break,
        }
    }
    // The log from `start` on, until the copy has caught up with it.
    let mut at = start;
    let mut last = c.nats().last_seq(src, s).await.map_err(cerr)?;
    let mut replayed = 0;
    if last > at {
        let stream = src.stream_name(s);
        let mut entries = c.nats().consume(src, s, at + 1).await.map_err(cerr)?;
        while at < last {
            let next = tokio::time::timeout(ENTRY_WAIT, entries.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(unavailable(format!("reading {stream}: {e}"))),
                Ok(None) | Err(_) => return Err(unavailable(format!("{stream} stopped delivering at {at}"))),
            };
            let seq = m
                .info()
                .map_err(|e| unavailable(format!("an entry of {stream} without its position: {e}")))?
                .stream_sequence;
            if seq <= at {
                continue;
            }
            if seq > at + 1 {
                return Err(unavailable(format!(
                    "{stream} was truncated under the copy (wanted entry {}, got {seq})",
                    at + 1
                )));
            }
            let op = Operation::decode(&m.payload, Path::new(&stream), seq)
                .map_err(|e| ApiError::internal(format!("entry {seq} of {stream} does not decode: {e}")))?;
            replay(c, src, dst, op).await?;
            at = seq;
            replayed += 1;
            if at >= last {
                last = c.nats().last_seq(src, s).await.map_err(cerr)?;
            }
        }
    }
    Ok((copied, replayed, at))
}

/// One source log entry, on the copy.
async fn replay(c: &Cluster, src: &CollectionSpec, dst: &CollectionSpec, op: Operation) -> ApiResult<()> {
    match op {
        Operation::Upsert(points) => write_points(c, dst, points).await,
        Operation::Delete(mut ids) => {
            if !src.sharding.routes_by_id() {
                // Under payload-key or centroid sharding a delete on one source shard may be a point moving to
                // another one: only ids the source no longer holds anywhere are deleted from the copy.
                let live = super::read::get_points(c, src, &ids, false, &Value::Bool(false), None).await?;
                let live: std::collections::HashSet<PointId> =
                    live.iter().filter_map(|r| serde_json::from_value(r["id"].clone()).ok()).collect();
                ids.retain(|id| !live.contains(id));
            }
            for (t, ids) in route::ids_by_shard(dst, &ids) {
                if !ids.is_empty() {
                    c.nats().append(dst, t, Operation::Delete(ids).encode(), None).await.map_err(cerr)?;
                }
            }
            Ok(())
        }
        op @ (Operation::CreateFieldIndex { .. } | Operation::DropFieldIndex { .. }) => {
            let bytes = op.encode();
            for t in 0..dst.shard_number {
                c.nats().append(dst, t, bytes.clone(), None).await.map_err(cerr)?;
            }
            Ok(())
        }
    }
}

/// Appends whole points to the copy's shards by its routing (and, where a point's shard is not fixed by its id,
/// removes it from the copy's other shards, as an upsert does).
async fn write_points(c: &Cluster, dst: &CollectionSpec, points: Vec<PointWrite>) -> ApiResult<()> {
    let mut per_shard: std::collections::BTreeMap<u32, Vec<PointWrite>> = std::collections::BTreeMap::new();
    for (i, w) in points.into_iter().enumerate() {
        let input =
            PointInput { payload: Some(w.payload.clone()), ttl_secs: None, ..PointInput::new(w.id, Vec::new()) };
        let t = route::shard_for_point(dst, &input, &w.vector, &format!("points[{i}]")).map_err(cerr)?;
        per_shard.entry(t).or_default().push(w);
    }
    let assigned: std::collections::BTreeMap<u32, Vec<PointId>> =
        per_shard.iter().map(|(t, ws)| (*t, ws.iter().map(|w| w.id).collect())).collect();
    for (t, ws) in per_shard {
        c.nats().append(dst, t, Operation::Upsert(ws).encode(), None).await.map_err(cerr)?;
    }
    if !dst.sharding.routes_by_id() && dst.shard_number > 1 {
        super::write::remove_elsewhere(c, dst, &assigned).await?;
    }
    Ok(())
}

fn unavailable(msg: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{msg}; the copy stopped"))
}
