//! `lookup_from` across shards: the point ids of a query (the query itself, `{"nearest": id}`, recommend's
//! examples, discovery's target and pairs, context pairs) name points of another collection of the cluster. The
//! receiving node reads those points from the shards that hold them and puts their vectors in place of the ids,
//! stage by stage (each prefetch has its own `lookup_from`), before the query goes on as usual — so the ids are
//! not left out of the answer, as on one node.

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::Cluster;
use super::read::{example_slots, get_points, record_vector};
use crate::access::Access;
use crate::error::{ApiError, ApiResult};
use crate::wire::LookupLocation;
use axum::http::StatusCode;
use quiver_engine::PointId;

/// Replaces the ids of every stage of `m` that has a `lookup_from` (`path`: where `m` is in the request) with the
/// vectors of the points they name, and removes the `lookup_from`s. Refused as on one node: 403 when `access`
/// may not read the collection, 404 when it does not exist (also when the query names no ids), 400 on a stage
/// without ids to look up (a fusion, BM25) or with a `shard_key`.
pub(crate) fn resolve<'a>(
    c: &'a Cluster,
    access: &'a Access,
    m: &'a mut Map<String, Value>,
    path: String,
) -> BoxFuture<'a, ApiResult<()>> {
    Box::pin(async move {
        let at = |f: &str| if path.is_empty() { f.to_owned() } else { format!("{path}.{f}") };
        let prefetch: Vec<&mut Value> = match m.get_mut("prefetch") {
            Some(Value::Array(a)) => a.iter_mut().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => Vec::new(),
        };
        for (i, p) in prefetch.into_iter().enumerate() {
            if let Value::Object(p) = p {
                resolve(c, access, p, format!("{}[{i}]", at("prefetch"))).await?;
            }
        }
        let l = match m.remove("lookup_from") {
            None | Some(Value::Null) => return Ok(()),
            Some(l) => l,
        };
        let field = at("lookup_from");
        let l: LookupLocation = serde_json::from_value(l)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body at {field}: {e}")))?;
        if l.shard_key.as_ref().is_some_and(|k| !k.is_null()) {
            return Err(ApiError::invalid(format!("{field}.shard_key"), "absent (not supported)", "a value"));
        }
        if !access.can_read(&l.collection) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{field}.collection: {} may not read collection {:?}", access.describe(), l.collection),
            ));
        }
        let spec =
            c.spec(&l.collection).map_err(|e| ApiError::new(e.status, format!("{field}.collection: {}", e.message)))?;
        let query_at = at("query");
        let shape = match m.get("query") {
            Some(Value::Number(_) | Value::String(_)) => Shape::Id,
            Some(Value::Object(q)) if q.contains_key("fusion") || q.contains_key("rrf") || q.contains_key("bm25") => {
                return Err(ApiError::invalid(
                    field,
                    "absent unless the query names points (an id, recommend, discover or context)",
                    "a collection",
                ));
            }
            Some(Value::Object(q)) if q.contains_key("nearest") => Shape::Nearest,
            Some(Value::Object(_)) => Shape::Examples,
            _ => Shape::Other,
        };
        let mut slots: Vec<(String, &mut Value)> = Vec::new();
        match (shape, m.get_mut("query")) {
            (Shape::Id, Some(v)) => slots.push((query_at, v)),
            (Shape::Nearest, Some(Value::Object(q))) => {
                if let Some(v @ (Value::Number(_) | Value::String(_))) = q.get_mut("nearest") {
                    slots.push((format!("{query_at}.nearest"), v));
                }
            }
            (Shape::Examples, Some(Value::Object(q))) => {
                let ids =
                    example_slots(q).into_iter().filter(|(_, v)| matches!(v, Value::Number(_) | Value::String(_)));
                slots.extend(ids.map(|(f, v)| (at(&f), v)));
            }
            _ => {}
        }
        if slots.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(slots.len());
        for (f, v) in &slots {
            ids.push(
                serde_json::from_value::<PointId>((**v).clone())
                    .map_err(|_| ApiError::invalid(f, "a vector, a point id or a text", &**v))?,
            );
        }
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        let records = get_points(c, &spec, &unique, false, &json!(true), None).await?;
        let by_id: std::collections::HashMap<PointId, Value> = records
            .into_iter()
            .filter_map(|r| Some((serde_json::from_value::<PointId>(r.get("id")?.clone()).ok()?, r)))
            .collect();
        let using = l.vector.as_deref().filter(|v| !v.is_empty());
        for ((f, v), id) in slots.into_iter().zip(ids) {
            let Some(rec) = by_id.get(&id) else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("{f}: point {id} does not exist in collection {:?}", l.collection),
                ));
            };
            *v = record_vector(rec, using, id, &f)?;
        }
        Ok(())
    })
}

/// Where a stage's query may hold point ids.
#[derive(Clone, Copy)]
enum Shape {
    /// The query is an id.
    Id,
    /// `{"nearest": …}`.
    Nearest,
    /// Recommend, discover or context examples.
    Examples,
    /// A vector, a text, or nothing.
    Other,
}
