//! The middleware stack: request ids, tracing spans, metrics, the request timeout, API keys, panics → 500.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::access::{self, Access, Rule};
use crate::error::ApiError;
use crate::state::AppState;

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

/// Turns the request's credential into an [`Access`] (put in the request's extensions for the handlers that list
/// collections) and refuses the request when the route's [`Rule`] asks for more: 401 without a valid credential,
/// 403 when the credential does not reach this route or collection.
async fn auth(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let cfg = s.config();
    let Some(full) = cfg.api_key.as_deref() else {
        req.extensions_mut().insert(Access::Manage);
        return next.run(req).await;
    };
    let route = req.extensions().get::<MatchedPath>().map_or("", |m| m.as_str()).to_owned();
    let Some(rule) = access::rule(req.method(), &route) else {
        // Fail closed: a route added without a rule is refused (and a test walking every route fails).
        return ApiError::new(StatusCode::FORBIDDEN, format!("no access rule for {} {route}", req.method()))
            .into_response();
    };
    if rule == Rule::Open {
        return next.run(req).await;
    }
    let access = match presented_key(req.headers()) {
        None => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing API key: send the header `api-key: <key>` or `Authorization: Bearer <key>`",
            )
            .into_response();
        }
        Some(k) if same(k, full) => Access::Manage,
        Some(k) if cfg.read_only_api_key.as_deref().is_some_and(|ro| same(k, ro)) => Access::ReadAll,
        Some(k) if cfg.jwt_rbac && access::looks_like_token(k) => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            match access::verify(k, full, now) {
                Ok(a) => a,
                Err(msg) => return ApiError::new(StatusCode::UNAUTHORIZED, msg).into_response(),
            }
        }
        Some(_) => return ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key").into_response(),
    };
    let collection = match rule {
        Rule::Read | Rule::Write => {
            use axum::RequestPartsExt as _;
            let (mut parts, body) = req.into_parts();
            let params = parts.extract::<axum::extract::RawPathParams>().await;
            let name =
                params.ok().and_then(|p| p.iter().find(|(k, _)| *k == "collection_name").map(|(_, v)| v.to_owned()));
            req = Request::from_parts(parts, body);
            name
        }
        _ => None,
    };
    if !access.allows(rule, collection.as_deref()) {
        let what = match (rule, &collection) {
            (Rule::Read, Some(c)) => format!("read collection `{c}`"),
            (Rule::Write, Some(c)) => format!("write collection `{c}`"),
            (Rule::ReadAll, _) => "read every collection".to_owned(),
            _ => "manage the server (needs full access)".to_owned(),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} cannot {what}: {} {route} refused", access.describe(), req.method()),
        )
        .into_response();
    }
    req.extensions_mut().insert(access);
    next.run(req).await
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
}
