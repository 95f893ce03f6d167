//! In cluster mode, every request under `/collections` is answered here instead of by the single-node handlers:
//! a middleware placed inside the auth and metrics layers, so keys, limits and request metrics apply as usual.
//! The table below maps each route of the API to its cluster form; the routes with no cluster form yet (the
//! change feed, snapshots) answer 400 saying so.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Cluster;
use super::read::{self, SearchKind};
use super::write::{self, wait_param};
use crate::access::Access;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Reply, Started};
use crate::state::AppState;

/// The middleware: passes everything through outside cluster mode or outside `/collections`.
pub async fn dispatch(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(c) = s.cluster().cloned() else { return next.run(req).await };
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/collections") else { return next.run(req).await };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return next.run(req).await;
    }
    let started = Started(Instant::now());
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    // Set by the auth layer; absent only where no rule grants anything, so absent sees nothing.
    let access = req.extensions().get::<Access>().cloned().unwrap_or(Access::Collections(Default::default()));
    let body = match crate::extract::read_body(req, &s).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let segs: Vec<String> = rest.split('/').filter(|p| !p.is_empty()).map(percent_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let deadline = match deadline(started.0, query.as_deref(), s.config().request_timeout()) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    match super::with_deadline(deadline, route(&c, &access, &method, &segs, query.as_deref(), &body)).await {
        Ok(v) => Reply(v, started).into_response(),
        Err(e) => e.into_response(),
    }
}

/// When the request is due: the server's request timeout, or sooner when `?timeout=` (seconds, as Qdrant's API
/// takes it) asks for less.
fn deadline(
    started: Instant,
    query: Option<&str>,
    server_limit: std::time::Duration,
) -> ApiResult<tokio::time::Instant> {
    let mut limit = server_limit;
    for pair in query.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("timeout=") {
            let secs = v.parse::<u64>().ok().filter(|&n| n >= 1).ok_or_else(|| {
                ApiError::invalid("timeout", "a whole number of seconds, at least 1", format!("{v:?}"))
            })?;
            limit = limit.min(std::time::Duration::from_secs(secs));
        }
    }
    let started = tokio::time::Instant::from_std(started);
    // A limit too far off to add is no limit: a day.
    Ok(started.checked_add(limit).unwrap_or_else(|| started + std::time::Duration::from_secs(86_400)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len() + 1 && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(x) => {
                out.push(x);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_here(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{what} is not available in cluster mode yet (it works on a single node; see docs/cluster.md)"
    ))
}

fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}

async fn route(
    c: &Cluster,
    access: &Access,
    m: &Method,
    segs: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> ApiResult<Value> {
    let get = *m == Method::GET;
    let post = *m == Method::POST;
    let put = *m == Method::PUT;
    let delete = *m == Method::DELETE;
    let Some((&name, rest)) = segs.split_first() else {
        if get {
            let collections: Vec<Value> =
                c.specs().iter().filter(|s| access.can_read(&s.name)).map(|s| json!({"name": s.name})).collect();
            return Ok(json!({"collections": collections}));
        }
        return Err(method_not_allowed());
    };
    match rest {
        [] if put => return write::create(c, name, body).await,
        [] if delete => return write::drop_collection(c, name).await,
        ["exists"] if get => return Ok(json!({"exists": c.spec(name).is_ok()})),
        _ => {}
    }
    let spec = c.spec(name)?;
    let spec: &quiver_cluster::CollectionSpec = &spec;
    match rest {
        [] if get => read::info(c, spec).await,
        ["index"] if put => write::planned(c, spec, "create_index", None, body, wait_param(query)?).await,
        ["index", field] if delete => {
            write::planned(c, spec, "delete_index", Some(field), b"", wait_param(query)?).await
        }
        ["points"] if put => write::upsert(c, spec, body, wait_param(query)?).await,
        ["points"] if post => read::retrieve(c, spec, body).await,
        ["points", "delete"] if post => write::delete(c, spec, body, wait_param(query)?).await,
        ["points", "payload"] if post => write::planned(c, spec, "set_payload", None, body, wait_param(query)?).await,
        ["points", "payload"] if put => {
            write::planned(c, spec, "overwrite_payload", None, body, wait_param(query)?).await
        }
        ["points", "payload", "delete"] if post => {
            write::planned(c, spec, "delete_payload", None, body, wait_param(query)?).await
        }
        ["points", "payload", "clear"] if post => {
            write::planned(c, spec, "clear_payload", None, body, wait_param(query)?).await
        }
        ["points", "scroll"] if post => read::scroll(c, spec, body).await,
        ["points", "count"] if post => read::count(c, spec, body).await,
        ["points", "search"] if post => read::search(c, access, spec, SearchKind::Search, body).await,
        ["points", "query"] if post => read::search(c, access, spec, SearchKind::Query, body).await,
        ["points", "search", "batch"] if post => read::search_batch(c, access, spec, SearchKind::Search, body).await,
        ["points", "query", "batch"] if post => read::search_batch(c, access, spec, SearchKind::Query, body).await,
        ["points", "search", "groups"] if post => {
            super::groups::groups(c, access, spec, SearchKind::Search, body).await
        }
        ["points", "query", "groups"] if post => super::groups::groups(c, access, spec, SearchKind::Query, body).await,
        ["points", id] if get => read::get_one(c, spec, id).await,
        ["documents"] if post => write::upsert_documents(c, spec, body, wait_param(query)?).await,
        ["documents", doc_id] if delete => write::delete_document(c, spec, doc_id, wait_param(query)?).await,
        ["map"] if get => super::map::map(c, spec, query).await,
        ["changes", ..] => Err(not_here("the change feed")),
        ["snapshots", ..] => Err(not_here("snapshots")),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "no such route; GET /openapi.json lists them")),
    }
}
