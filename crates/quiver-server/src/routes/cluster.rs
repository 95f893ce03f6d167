//! `/cluster`: the cluster's members and shard map, rebalancing, draining and removing nodes.

use axum::extract::State;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Reply, Started};
use crate::state::AppState;
use crate::wire::ErrorBody;

/// The cluster: this node's id, the members (and whether each answered just now), and every collection's
/// shards with each replica's applied sequence number and lag behind the shard's log. 400 on a single node.
#[utoipa::path(get, path = "/cluster", tag = "cluster",
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn status(State(s): State<AppState>, t: Started) -> ApiResult<Reply<serde_json::Value>> {
    let c = cluster_of(&s)?;
    Ok(Reply(c.status().await, t))
}

/// The `{id}` of a node route (a JSON 400 naming it, not axum's plain-text rejection).
fn node_id(s: &str) -> ApiResult<u32> {
    s.parse().map_err(|_| ApiError::invalid("id", "a node id (0 to 4294967295)", format!("{s:?}")))
}

fn cluster_of(s: &AppState) -> ApiResult<std::sync::Arc<crate::cluster::Cluster>> {
    s.cluster().cloned().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "this server is not in cluster mode (start it with `quiver serve --cluster nats://…`)",
        )
    })
}

/// Plans now what the coordinator plans every second: replacements for dead or draining replicas, copies for
/// under-replicated shards, and moves that even out the nodes' loads. Answers the moves it wrote (each is then
/// carried out in the background: the joining node copies the shard and serves it once caught up; `GET
/// /cluster` shows the progress).
#[utoipa::path(post, path = "/cluster/rebalance", tag = "cluster",
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn rebalance(State(s): State<AppState>, t: Started) -> ApiResult<Reply<serde_json::Value>> {
    let c = cluster_of(&s)?;
    let changed = c.plan_all(true).await;
    Ok(Reply(serde_json::json!({"planned": changed}), t))
}

/// Marks node `id` as draining: its replicas are copied to other nodes and dropped from it once the copies serve;
/// it gets no new ones. Answers how many replicas it still holds.
#[utoipa::path(post, path = "/cluster/nodes/{id}/drain", tag = "cluster",
    params(("id" = u32, Path, description = "node id")),
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn drain(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    t: Started,
) -> ApiResult<Reply<serde_json::Value>> {
    let id = node_id(&id)?;
    let c = cluster_of(&s)?;
    Ok(Reply(c.set_draining(id, true).await?, t))
}

/// Ends a drain: node `id` may receive replicas again.
#[utoipa::path(delete, path = "/cluster/nodes/{id}/drain", tag = "cluster",
    params(("id" = u32, Path, description = "node id")),
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn undrain(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    t: Started,
) -> ApiResult<Reply<serde_json::Value>> {
    let id = node_id(&id)?;
    let c = cluster_of(&s)?;
    Ok(Reply(c.set_draining(id, false).await?, t))
}

/// Removes node `id` from the members: only once its lease has lapsed and it holds no replica.
#[utoipa::path(delete, path = "/cluster/nodes/{id}", tag = "cluster",
    params(("id" = u32, Path, description = "node id")),
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_node(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    t: Started,
) -> ApiResult<Reply<serde_json::Value>> {
    let id = node_id(&id)?;
    let c = cluster_of(&s)?;
    Ok(Reply(c.forget_node(id).await?, t))
}

/// Takes a snapshot of every shard now (each by its first live replica), stores it in the JetStream object store
/// and truncates the shard's log below what its replicas have applied. Answers one entry per shard.
#[utoipa::path(post, path = "/cluster/snapshot", tag = "cluster",
    responses((status = 200, body = Object), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn snapshot(State(s): State<AppState>, t: Started) -> ApiResult<Reply<serde_json::Value>> {
    let c = cluster_of(&s)?;
    Ok(Reply(c.snapshot_all().await?, t))
}

/// Sets new centroids for a collection sharded by centroid — the given ones, or k-means over a sample of its
/// points — and moves every point to the shard of its nearest centroid (with `wait=true` before answering,
/// otherwise in the background: `GET /cluster` shows `sharding.placed` reach `sharding.epoch`). Reads and
/// writes go on meanwhile; searches probe every shard until the points are placed. A collection created
/// without centroids is trained this way automatically once it holds `train_after` points.
#[utoipa::path(post, path = "/cluster/collections/{collection_name}/train", tag = "cluster",
    params(crate::routes::CollectionPath, crate::routes::WriteParams), request_body = crate::wire::TrainCentroids,
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn train(
    State(s): State<AppState>,
    axum::extract::Path(p): axum::extract::Path<crate::routes::CollectionPath>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<crate::routes::WriteParams>,
    t: Started,
    crate::extract::MaybeJson(body): crate::extract::MaybeJson<crate::wire::TrainCentroids>,
) -> ApiResult<Reply<serde_json::Value>> {
    let c = cluster_of(&s)?;
    Ok(Reply(c.train(&p.collection_name, body.centroids, q.wait.unwrap_or(false)).await?, t))
}

/// Copies a collection into a new one — with another `shard_number`, `replication_factor` or `sharding` — while
/// it keeps answering reads and writes: every point as it is, then the source's log replayed until the copy has
/// caught up. Answers the points copied and `source_read_token`, how far each source shard was copied (writes
/// to the source after that are not carried over). The way to reshard: copy, move clients, drop the source.
#[utoipa::path(post, path = "/cluster/collections/{collection_name}/copy", tag = "cluster",
    params(crate::routes::CollectionPath), request_body = crate::wire::CopyCollection,
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)))]
pub async fn copy(
    State(s): State<AppState>,
    axum::extract::Path(p): axum::extract::Path<crate::routes::CollectionPath>,
    t: Started,
    crate::extract::ApiJson(body): crate::extract::ApiJson<crate::wire::CopyCollection>,
) -> ApiResult<Reply<serde_json::Value>> {
    let c = cluster_of(&s)?;
    Ok(Reply(crate::cluster::copy::copy(&c, &p.collection_name, body).await?, t))
}
