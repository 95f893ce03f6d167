//! `GET /cluster`: the cluster's members and shard map.

use axum::extract::State;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Reply, Started};
use crate::state::AppState;
use crate::wire::ErrorBody;

/// The cluster: this node's id, the members (and whether each answered just now), and every collection's
/// shards with each replica's applied sequence number and lag behind the shard's log. 400 on a single node.
#[utoipa::path(get, path = "/cluster", tag = "cluster",
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn status(State(s): State<AppState>, t: Started) -> ApiResult<Reply<serde_json::Value>> {
    let Some(c) = s.cluster() else {
        return Err(ApiError::bad_request(
            "this server is not in cluster mode (start it with `quiver serve --cluster nats://…`)",
        ));
    };
    Ok(Reply(c.status().await, t))
}
