//! Points: upsert, retrieve, delete, payload updates, scroll, count.

use std::time::Duration;

use axum::extract::{Path, State};
use quiver_engine::PointId;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{CollectionPath, WriteParams, finish_write};
use crate::convert::{self, PayloadSel, VectorSel};
use crate::embedding;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, MaybeJson, Reply, Started};
use crate::state::{AppState, abandon_guard, blocking};
use crate::wire::{
    CountRequest, CountResult, DeletePayload, Envelope, ErrorBody, PointRequest, PointsSelector, Record, ScrollRequest,
    ScrollResult, SetPayload, UpdateResult, UpsertPoints,
};

/// How long a read waits for `min_seq` to be applied.
pub const MIN_SEQ_WAIT: Duration = Duration::from_secs(10);

/// Checks a read's `min_seq`. On a single node a sequence number above every one handed to a write so far names
/// no write at all: a 409 at once (it conflicts with the collection's state) rather than a 504 after
/// [`MIN_SEQ_WAIT`]. A cluster replica still catching up with its shard's log waits for it instead.
pub(super) fn check_min_seq(s: &AppState, col: &quiver_engine::Collection, seq: Option<u64>) -> ApiResult<()> {
    if let Some(seq) = seq
        && !s.follows_a_log()
    {
        let assigned = col.assigned_seq();
        if seq > assigned {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "invalid min_seq: expected a sequence number a write to this collection returned (at most \
                     {assigned}), got {seq}"
                ),
            ));
        }
    }
    Ok(())
}

/// Inserts or replaces points (whole batch validated first: one bad point rejects all, nothing is written). A
/// collection with an embedding model also takes `text` (or `{"text": …}` as the vector) and keeps it in the
/// payload.
#[utoipa::path(put, path = "/collections/{collection_name}/points", tag = "points",
    params(CollectionPath, WriteParams), request_body = UpsertPoints,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn upsert(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<UpsertPoints>,
) -> ApiResult<Reply<UpdateResult>> {
    let up = convert::points(body, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let state = s.clone();
    let (_guard, abandoned) = abandon_guard();
    let r = blocking(move || {
        let points = embedding::resolve_upsert(state.embedders(), &p.collection_name, col.config(), up)?;
        abandoned.check()?;
        let seq = col.upsert(points)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

/// Deletes points by ids (missing ids are ignored) or by filter.
#[utoipa::path(post, path = "/collections/{collection_name}/points/delete", tag = "points",
    params(CollectionPath, WriteParams), request_body = PointsSelector,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<PointsSelector>,
) -> ApiResult<Reply<UpdateResult>> {
    let sel = convert::selector(body.points, body.filter, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.delete(sel)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

/// Merges keys into payloads (at the dotted `key` when given). Missing ids are a 404.
#[utoipa::path(post, path = "/collections/{collection_name}/points/payload", tag = "points",
    params(CollectionPath, WriteParams), request_body = SetPayload,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn set_payload(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<SetPayload>,
) -> ApiResult<Reply<UpdateResult>> {
    let sel = convert::selector(body.points, body.filter, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.set_payload(sel, body.payload, body.key.as_deref())?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

/// Replaces payloads.
#[utoipa::path(put, path = "/collections/{collection_name}/points/payload", tag = "points",
    params(CollectionPath, WriteParams), request_body = SetPayload,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn overwrite_payload(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<SetPayload>,
) -> ApiResult<Reply<UpdateResult>> {
    if body.key.is_some() {
        return Err(ApiError::invalid("key", "absent when overwriting (use POST to set under a key)", "a key"));
    }
    let sel = convert::selector(body.points, body.filter, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.overwrite_payload(sel, body.payload)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

/// Removes payload keys.
#[utoipa::path(post, path = "/collections/{collection_name}/points/payload/delete", tag = "points",
    params(CollectionPath, WriteParams), request_body = DeletePayload,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn delete_payload(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<DeletePayload>,
) -> ApiResult<Reply<UpdateResult>> {
    let sel = convert::selector(body.points, body.filter, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.delete_payload_keys(sel, &body.keys)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

/// Empties payloads.
#[utoipa::path(post, path = "/collections/{collection_name}/points/payload/clear", tag = "points",
    params(CollectionPath, WriteParams), request_body = PointsSelector,
    responses((status = 200, body = Envelope<UpdateResult>), (status = "4XX", body = ErrorBody)))]
pub async fn clear_payload(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(w): ApiQuery<WriteParams>,
    t: Started,
    ApiJson(body): ApiJson<PointsSelector>,
) -> ApiResult<Reply<UpdateResult>> {
    let sel = convert::selector(body.points, body.filter, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let wait = w.wait.unwrap_or(false);
    let r = blocking(move || {
        let seq = col.clear_payload(sel)?;
        finish_write(&col, seq, wait)
    })
    .await?;
    Ok(Reply(r, t))
}

fn to_records(recs: Vec<quiver_engine::Record>, sel: &PayloadSel, vsel: &VectorSel) -> Vec<Record> {
    recs.into_iter()
        .map(|r| Record {
            id: r.id,
            payload: sel.apply(r.payload),
            vector: vsel.apply(r.vector, r.vectors, r.sparse),
            order_value: None,
        })
        .collect()
}

/// An ordered scroll's value as JSON: an integer when it is one (as Qdrant answers for an integer key).
fn order_number(x: f64) -> Option<serde_json::Number> {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Some(serde_json::Number::from(x as i64))
    } else {
        serde_json::Number::from_f64(x)
    }
}

/// Points by id (missing ids are left out).
#[utoipa::path(post, path = "/collections/{collection_name}/points", tag = "points", params(CollectionPath),
    request_body = PointRequest,
    responses((status = 200, body = Envelope<Vec<Record>>), (status = "4XX", body = ErrorBody)))]
pub async fn retrieve(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<PointRequest>,
) -> ApiResult<Reply<Vec<Record>>> {
    convert::check_batch("ids", body.ids.len(), s.config())?;
    let sel = PayloadSel::from_wire(body.with_payload, true);
    let vsel = VectorSel::from_wire(body.with_vector);
    let wv = vsel.wanted();
    let col = s.collection(&p.collection_name)?;
    let wanted = sel.wanted();
    let min_seq = convert::min_seq(body.min_seq, body.read_token.as_deref())?;
    check_min_seq(&s, &col, min_seq)?;
    let recs = blocking(move || {
        if let Some(seq) = min_seq {
            col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        Ok(col.get(&body.ids, wanted, wv)?)
    })
    .await?;
    Ok(Reply(to_records(recs, &sel, &vsel), t))
}

/// The collection and point in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PointPath {
    /// Collection name.
    pub collection_name: String,
    /// Point id (integer or UUID).
    #[param(pattern = r"^([0-9]{1,19}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub id: String,
}

/// One point with payload and vector; 404 when there is none.
#[utoipa::path(get, path = "/collections/{collection_name}/points/{id}", tag = "points", params(PointPath),
    responses((status = 200, body = Envelope<Record>), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(s): State<AppState>, Path(p): Path<PointPath>, t: Started) -> ApiResult<Reply<Record>> {
    let id: PointId =
        p.id.parse().map_err(|_| ApiError::invalid("id", "an unsigned integer or a UUID", format!("{:?}", p.id)))?;
    let col = s.collection(&p.collection_name)?;
    let mut recs = blocking(move || Ok(col.get(&[id], true, true)?)).await?;
    let Some(r) = recs.pop() else {
        return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("point {id} does not exist")));
    };
    let vector = VectorSel::All.apply(r.vector, r.vectors, r.sparse);
    Ok(Reply(Record { id: r.id, payload: r.payload, vector, order_value: None }, t))
}

/// Pages through points in id order.
#[utoipa::path(post, path = "/collections/{collection_name}/points/scroll", tag = "points", params(CollectionPath),
    request_body = ScrollRequest,
    responses((status = 200, body = Envelope<ScrollResult>), (status = "4XX", body = ErrorBody)))]
pub async fn scroll(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    MaybeJson(mut body): MaybeJson<ScrollRequest>,
) -> ApiResult<Reply<ScrollResult>> {
    let order = match body.order_by.take() {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(order_by(v)?),
    };
    if order.is_some() && body.offset.is_some() {
        return Err(ApiError::invalid("offset", "absent with order_by (continue with order_by.start_from)", "a value"));
    }
    let limit = body.limit.unwrap_or(10);
    convert::check_limit(limit, 0, s.config())?;
    let col = s.collection(&p.collection_name)?;
    let min_seq = convert::min_seq(body.min_seq, body.read_token.as_deref())?;
    check_min_seq(&s, &col, min_seq)?;
    let sel = PayloadSel::from_wire(body.with_payload, true);
    let vsel = VectorSel::from_wire(body.with_vector);
    let wv = vsel.wanted();
    let sel2 = sel.clone();
    let page = blocking(move || {
        if let Some(seq) = min_seq {
            col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        Ok(match &order {
            Some(o) => {
                let page = col.scroll_ordered(body.filter.as_ref(), o, limit, sel2.wanted(), wv)?;
                let values = page.iter().map(|r| order_number(r.order_value)).collect();
                let points = page.into_iter().map(|r| r.record).collect();
                (quiver_engine::ScrollPage { points, next_offset: None }, values)
            }
            None => (col.scroll(body.filter.as_ref(), body.offset, limit, sel2.wanted(), wv)?, Vec::new()),
        })
    })
    .await?;
    let (page, values) = page;
    let mut points = to_records(page.points, &sel, &vsel);
    for (p, v) in points.iter_mut().zip(values) {
        p.order_value = v;
    }
    Ok(Reply(ScrollResult { points, next_page_offset: page.next_offset }, t))
}

/// `"key"` or `{"key", "direction": "asc" | "desc", "start_from": number | datetime}`.
fn order_by(v: serde_json::Value) -> ApiResult<quiver_engine::query::OrderBy> {
    let (key, dir, start_from) = match v {
        serde_json::Value::String(key) => (key, None, None),
        serde_json::Value::Object(mut m) => {
            if let Some(extra) = m.keys().find(|k| !["key", "direction", "start_from"].contains(&k.as_str())) {
                return Err(ApiError::invalid(
                    format!("order_by.{extra}"),
                    "absent (key, direction, start_from)",
                    "a value",
                ));
            }
            let key = match m.remove("key") {
                Some(serde_json::Value::String(k)) => k,
                other => return Err(ApiError::invalid("order_by.key", "a payload key", format!("{other:?}"))),
            };
            (key, m.remove("direction"), m.remove("start_from"))
        }
        other => {
            return Err(ApiError::invalid(
                "order_by",
                "a payload key or {\"key\", \"direction\", \"start_from\"}",
                other,
            ));
        }
    };
    if key.is_empty() {
        return Err(ApiError::invalid("order_by.key", "a payload key", "\"\""));
    }
    let descending = match dir.as_ref().and_then(|d| d.as_str()) {
        None if dir.as_ref().is_none_or(serde_json::Value::is_null) => false,
        Some("asc") => false,
        Some("desc") => true,
        _ => return Err(ApiError::invalid("order_by.direction", "\"asc\" or \"desc\"", format!("{dir:?}"))),
    };
    Ok(quiver_engine::query::OrderBy { key, descending, start_from })
}

/// Counts points (exactly).
#[utoipa::path(post, path = "/collections/{collection_name}/points/count", tag = "points", params(CollectionPath),
    request_body = CountRequest,
    responses((status = 200, body = Envelope<CountResult>), (status = "4XX", body = ErrorBody)))]
pub async fn count(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    MaybeJson(body): MaybeJson<CountRequest>,
) -> ApiResult<Reply<CountResult>> {
    let col = s.collection(&p.collection_name)?;
    let min_seq = convert::min_seq(body.min_seq, body.read_token.as_deref())?;
    check_min_seq(&s, &col, min_seq)?;
    let count = blocking(move || {
        if let Some(seq) = min_seq {
            col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        Ok(col.count(body.filter.as_ref())?)
    })
    .await?;
    Ok(Reply(CountResult { count }, t))
}
