//! Grouped search across shards: candidates are fetched from every probed shard as one merged search (with
//! payloads), grouped here with the single-node grouping, in growing rounds as on one node — so a group whose
//! points live on several shards (payload-key sharding keeps them on one) is assembled from all of them. A
//! grouped query with stages (prefetch, fusion, `bm25`) runs as [`super::staged`] does, its final limit growing.

use serde_json::{Map, Value, json};

use super::Cluster;
use super::read::{SearchKind, body_object, is_staged, search_once};
use crate::access::Access;
use crate::convert::PayloadSel;
use crate::error::{ApiError, ApiResult};
use crate::routes::search::{GroupSpec, group_hits};
use crate::wire::WithPayload;
use quiver_cluster::CollectionSpec;

/// `POST …/points/search/groups` and `…/points/query/groups`.
pub async fn groups(
    c: &Cluster,
    access: &Access,
    spec: &CollectionSpec,
    kind: SearchKind,
    body: &[u8],
) -> ApiResult<Value> {
    let mut m = body_object(body, false)?;
    if kind == SearchKind::Query {
        super::lookup::resolve(c, access, &mut m, String::new()).await?;
    }
    let group_by = match m.remove("group_by") {
        Some(Value::String(s)) => s,
        Some(v) => return Err(ApiError::invalid("group_by", "a dotted payload key like `doc_id`", v)),
        None => return Err(ApiError::bad_request("invalid JSON body: missing field `group_by`")),
    };
    let usize_of = |v: Option<Value>, key: &str| -> ApiResult<Option<usize>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| ApiError::invalid(key, "a positive integer", v))
            }
        }
    };
    let group_size = usize_of(m.remove("group_size"), "group_size")?;
    let limit = usize_of(m.remove("limit"), "limit")?;
    let gs = GroupSpec::new(&group_by, group_size, limit, c.state().config())?;
    let user_payload = match m.remove("with_payload") {
        None | Some(Value::Null) => PayloadSel::from_wire(None, false),
        Some(v) => PayloadSel::from_wire(
            Some(
                serde_json::from_value::<WithPayload>(v)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON body at with_payload: {e}")))?,
            ),
            false,
        ),
    };
    m.insert("with_payload".into(), json!(true));
    m.remove("offset");
    let mut fetch = gs.first_fetch();
    let groups = loop {
        let mut req: Map<String, Value> = m.clone();
        req.insert("limit".into(), json!(fetch));
        let hits = if kind == SearchKind::Query && is_staged(&req) {
            super::staged::query(c, spec, req, true).await?
        } else {
            search_once(c, spec, kind, req, true).await?.0
        };
        let exhausted = hits.len() < fetch || fetch >= gs.cap;
        let groups = group_hits(
            hits,
            |h: &Value| h.get("payload").and_then(Value::as_object),
            &gs.group_by,
            gs.group_size,
            gs.limit,
        );
        if groups.len() >= gs.limit || exhausted {
            break groups;
        }
        fetch = fetch.saturating_mul(4).min(gs.cap);
    };
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(id, hits)| {
            let hits: Vec<Value> = hits
                .into_iter()
                .map(|mut h| {
                    if let Some(o) = h.as_object_mut() {
                        let p = o.remove("payload").and_then(|p| match p {
                            Value::Object(p) => Some(p),
                            _ => None,
                        });
                        if let Some(p) = user_payload.apply(p) {
                            o.insert("payload".into(), Value::Object(p));
                        }
                    }
                    h
                })
                .collect();
            json!({"id": id, "hits": hits})
        })
        .collect();
    Ok(json!({"groups": groups}))
}
