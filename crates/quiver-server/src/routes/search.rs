//! Nearest-neighbour search: Qdrant's `search`, `search/batch`, and the nearest case of `query` / `query/batch`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use quiver_engine::{Collection, SearchRequest as EngineSearch};

use super::CollectionPath;
use super::points::MIN_SEQ_WAIT;
use crate::convert::{self, PayloadSel};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Reply, Started};
use crate::state::{AppState, ServerConfig, blocking};
use crate::wire::{
    Envelope, ErrorBody, NearestInput, QueryBatch, QueryInput, QueryRequest, QueryResponse, ScoredPoint, SearchBatch,
    SearchRequest,
};

/// A parsed search, ready for the engine.
struct Plan {
    req: EngineSearch,
    payload: PayloadSel,
    /// Query by a stored point: look its vector up first.
    by_id: Option<quiver_engine::PointId>,
}

fn plan_search(r: SearchRequest, cfg: &ServerConfig) -> ApiResult<Plan> {
    let offset = r.offset.unwrap_or(0);
    convert::check_limit(r.limit, offset, cfg)?;
    let payload = PayloadSel::from_wire(r.with_payload, false);
    let req = EngineSearch {
        vector: convert::search_vector(r.vector)?,
        limit: r.limit,
        offset,
        filter: r.filter,
        params: convert::search_params(r.params)?,
        with_payload: payload.wanted(),
        with_vector: convert::with_vector(r.with_vector),
        score_threshold: r.score_threshold,
        explain: false,
        min_seq: r.min_seq,
    };
    Ok(Plan { req, payload, by_id: None })
}

fn plan_query(r: QueryRequest, cfg: &ServerConfig) -> ApiResult<Plan> {
    if r.prefetch.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid("prefetch", "absent (only the nearest-vector query is supported)", "a value"));
    }
    if r.lookup_from.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid("lookup_from", "absent", "a value (not supported)"));
    }
    if let Some(u) = &r.using
        && !u.is_empty()
    {
        return Err(ApiError::invalid("using", "\"\" or absent (one unnamed vector)", format!("{u:?}")));
    }
    let limit = r.limit.unwrap_or(10);
    let offset = r.offset.unwrap_or(0);
    convert::check_limit(limit, offset, cfg)?;
    let (vector, by_id) = match r.query {
        None => {
            return Err(ApiError::invalid(
                "query",
                "a vector, a point id or {\"nearest\": …} (use /points/scroll to list points)",
                "nothing",
            ));
        }
        Some(QueryInput::Vector(v)) | Some(QueryInput::Nearest { nearest: NearestInput::Vector(v) }) => (v, None),
        Some(QueryInput::Id(id)) | Some(QueryInput::Nearest { nearest: NearestInput::Id(id) }) => {
            (Vec::new(), Some(id.0))
        }
    };
    let payload = PayloadSel::from_wire(r.with_payload, false);
    let filter = match by_id {
        Some(id) => Some(convert::exclude_id(r.filter, id)),
        None => r.filter,
    };
    let req = EngineSearch {
        vector,
        limit,
        offset,
        filter,
        params: convert::search_params(r.params)?,
        with_payload: payload.wanted(),
        with_vector: convert::with_vector(r.with_vector),
        score_threshold: r.score_threshold,
        explain: r.explain.unwrap_or(false),
        min_seq: r.min_seq,
    };
    Ok(Plan { req, payload, by_id })
}

/// Runs one plan (blocking).
fn run(col: &Collection, mut plan: Plan) -> ApiResult<(Vec<ScoredPoint>, Option<serde_json::Value>)> {
    if let Some(id) = plan.by_id {
        if let Some(seq) = plan.req.min_seq {
            col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        let mut rec = col.get(&[id], false, true)?;
        let Some(v) = rec.pop().and_then(|r| r.vector) else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("query: point {id} does not exist")));
        };
        plan.req.vector = v;
    }
    let resp = col.search(&plan.req)?;
    let hits = resp
        .hits
        .into_iter()
        .map(|h| ScoredPoint {
            id: h.id,
            version: 0,
            score: h.score,
            payload: plan.payload.apply(h.payload),
            vector: h.vector,
        })
        .collect();
    let explain = match resp.explain {
        Some(e) => Some(serde_json::to_value(e).map_err(|e| ApiError::internal(e.to_string()))?),
        None => None,
    };
    Ok((hits, explain))
}

/// The `limit` nearest points to a vector, best first.
#[utoipa::path(post, path = "/collections/{collection_name}/points/search", tag = "search", params(CollectionPath),
    request_body = SearchRequest,
    responses((status = 200, body = Envelope<Vec<ScoredPoint>>), (status = "4XX", body = ErrorBody)))]
pub async fn search(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<SearchRequest>,
) -> ApiResult<Reply<Vec<ScoredPoint>>> {
    let plan = plan_search(body, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let (hits, _) = blocking(move || run(&col, plan)).await?;
    Ok(Reply(hits, t))
}

/// Several searches in one request (answers in the same order).
#[utoipa::path(post, path = "/collections/{collection_name}/points/search/batch", tag = "search",
    params(CollectionPath), request_body = SearchBatch,
    responses((status = 200, body = Envelope<Vec<Vec<ScoredPoint>>>), (status = "4XX", body = ErrorBody)))]
pub async fn search_batch(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<SearchBatch>,
) -> ApiResult<Reply<Vec<Vec<ScoredPoint>>>> {
    check_batch_len(body.searches.len(), s.config())?;
    let plans = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, r)| plan_search(r, s.config()).map_err(|e| prefix(e, &format!("searches[{i}]"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let col = s.collection(&p.collection_name)?;
    let out = blocking(move || plans.into_iter().map(|pl| run(&col, pl).map(|r| r.0)).collect()).await?;
    Ok(Reply(out, t))
}

/// The nearest points to a vector or to a stored point (Qdrant's universal query, nearest case).
#[utoipa::path(post, path = "/collections/{collection_name}/points/query", tag = "search", params(CollectionPath),
    request_body = QueryRequest,
    responses((status = 200, body = Envelope<QueryResponse>), (status = "4XX", body = ErrorBody)))]
pub async fn query(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<QueryRequest>,
) -> ApiResult<Reply<QueryResponse>> {
    let plan = plan_query(body, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let (points, explain) = blocking(move || run(&col, plan)).await?;
    Ok(Reply(QueryResponse { points, explain }, t))
}

/// Several queries in one request.
#[utoipa::path(post, path = "/collections/{collection_name}/points/query/batch", tag = "search",
    params(CollectionPath), request_body = QueryBatch,
    responses((status = 200, body = Envelope<Vec<QueryResponse>>), (status = "4XX", body = ErrorBody)))]
pub async fn query_batch(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<QueryBatch>,
) -> ApiResult<Reply<Vec<QueryResponse>>> {
    check_batch_len(body.searches.len(), s.config())?;
    let plans = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, r)| plan_query(r, s.config()).map_err(|e| prefix(e, &format!("searches[{i}]"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let col = s.collection(&p.collection_name)?;
    let out = blocking(move || {
        plans.into_iter().map(|pl| run(&col, pl).map(|(points, explain)| QueryResponse { points, explain })).collect()
    })
    .await?;
    Ok(Reply(out, t))
}

fn check_batch_len(n: usize, cfg: &ServerConfig) -> ApiResult<()> {
    if n == 0 || n > cfg.max_search_batch {
        return Err(ApiError::invalid("searches", format!("1..={} searches", cfg.max_search_batch), n));
    }
    Ok(())
}

fn prefix(mut e: ApiError, at: &str) -> ApiError {
    e.message = format!("{at}: {}", e.message);
    e
}
