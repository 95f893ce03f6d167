//! The middleware stack: request ids, tracing spans, metrics, the request timeout, API keys, panics → 500.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Routes that never ask for a key.
const OPEN_ROUTES: [&str; 5] = ["/healthz", "/readyz", "/console", "/console/", "/console/{file}"];

/// POST routes that only read (allowed with the read-only key).
const READ_POSTS: [&str; 9] = [
    // MCP: a read-only key gets a session with the read tools only (the handler checks which key it was).
    "/mcp",
    // Runs a model on the request's texts; reads and writes no data.
    "/v1/embeddings",
    "/collections/{collection_name}/points",
    "/collections/{collection_name}/points/search",
    "/collections/{collection_name}/points/search/batch",
    "/collections/{collection_name}/points/query",
    "/collections/{collection_name}/points/query/batch",
    "/collections/{collection_name}/points/scroll",
    "/collections/{collection_name}/points/count",
];

/// Whether `method route` only reads.
pub fn is_read_only(method: &Method, route: &str) -> bool {
    method == Method::GET || method == Method::HEAD || (method == Method::POST && READ_POSTS.contains(&route))
}

/// Routes exempt from the request timeout (long-lived streams and big transfers).
fn is_streaming(route: &str) -> bool {
    route.contains("/changes") || route.contains("/snapshots")
}

/// Adds the middleware to `router`.
pub fn wrap(router: Router<AppState>, state: AppState) -> Router<AppState> {
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route; GET /openapi.json lists them") })
        .route_layer(from_fn_with_state(state.clone(), auth))
        .route_layer(from_fn_with_state(state, observe))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a handler panicked").into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = req.method().clone();
    let start = Instant::now();
    let resp = if is_streaming(&route) {
        next.run(req).await
    } else {
        let limit = s.config().request_timeout();
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("request timed out after {} s (the server's request_timeout_secs)", limit.as_secs()),
            )
            .into_response(),
        }
    };
    s.metrics().observe(method.as_str(), &route, resp.status().as_u16(), start.elapsed());
    resp
}

/// The key a request presents: `api-key: K` or `Authorization: Bearer K`.
pub(crate) fn presented_key(h: &HeaderMap) -> Option<&str> {
    if let Some(k) = h.get("api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = h.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

/// Compares without an early exit on the first differing byte.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        diff |= u64::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff));
    }
    diff == 0
}

async fn auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = s.config();
    let Some(full) = cfg.api_key.as_deref() else { return next.run(req).await };
    let route = req.extensions().get::<MatchedPath>().map_or("", |m| m.as_str()).to_owned();
    if OPEN_ROUTES.contains(&route.as_str()) {
        return next.run(req).await;
    }
    match presented_key(req.headers()) {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API key: send the header `api-key: <key>` or `Authorization: Bearer <key>`",
        )
        .into_response(),
        Some(k) if same(k, full) => next.run(req).await,
        Some(k) if cfg.read_only_api_key.as_deref().is_some_and(|ro| same(k, ro)) => {
            if is_read_only(req.method(), &route) {
                next.run(req).await
            } else {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("the read-only API key cannot call {} {route}", req.method()),
                )
                .into_response()
            }
        }
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_exactly() {
        assert!(same("abcdefgh", "abcdefgh"));
        assert!(!same("abcdefgh", "abcdefgi"));
        assert!(!same("abcdefgh", "abcdefghi"));
        assert!(!same("", "a"));
        assert!(same("", ""));
    }

    #[test]
    fn bearer_and_header_keys_are_read() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer  secret-key ".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(presented_key(&h), Some("secret-key"));
        h.insert("api-key", "other".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(presented_key(&h), Some("other"));
    }

    #[test]
    fn read_only_routes() {
        assert!(is_read_only(&Method::GET, "/collections"));
        assert!(is_read_only(&Method::POST, "/collections/{collection_name}/points/search"));
        assert!(!is_read_only(&Method::POST, "/collections/{collection_name}/points/delete"));
        assert!(!is_read_only(&Method::PUT, "/collections/{collection_name}/points"));
        assert!(!is_read_only(&Method::DELETE, "/collections/{collection_name}"));
    }
}
