//! Service routes: version, health, readiness, metrics.

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::access::Access;
use crate::extract::{Reply, Started};
use crate::state::AppState;
use crate::wire::VersionInfo;

/// The Qdrant REST API version whose common operations this server speaks (tested with qdrant-client 1.20.0).
pub const QDRANT_API_VERSION: &str = "1.20.0";

/// Name and versions (Qdrant clients read `version` to check compatibility).
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = VersionInfo)))]
pub async fn root() -> axum::Json<VersionInfo> {
    axum::Json(VersionInfo {
        title: "quiverdb".to_owned(),
        version: QDRANT_API_VERSION.to_owned(),
        quiverdb_version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// Liveness: the process answers. No authentication.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 once the data directory is recovered and collections are open, 503 before. No authentication.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "ready"), (status = 503, description = "recovering")))]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.db_if_ready().is_some() { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "recovering") }
}

/// Prometheus metrics (text exposition format 0.0.4). Series labelled with a collection the caller may not read
/// are left out.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "metrics text")))]
pub async fn metrics(State(s): State<AppState>, Extension(access): Extension<Access>) -> impl IntoResponse {
    let db = s.db_if_ready();
    let st = s.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut text = st.metrics().render(db.as_deref());
        st.embedders().stats().render(&mut text);
        text
    })
    .await
    .unwrap_or_default();
    let mut text = text;
    if let Some(c) = s.cluster() {
        s.metrics().render_cluster(&mut text);
        c.render_lag(&mut text).await;
    }
    if access != Access::Manage && access != Access::ReadAll {
        text = crate::metrics::only_collections(&text, |c| access.can_read(c));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// Server-level summary: uptime-independent facts (the collections the caller may read and whether recovery
/// finished).
#[utoipa::path(get, path = "/telemetry", tag = "service", responses((status = 200, body = Object)))]
pub async fn telemetry(
    State(s): State<AppState>,
    Extension(access): Extension<Access>,
    t: Started,
) -> Reply<serde_json::Value> {
    let ready = s.db_if_ready();
    let collections =
        ready.as_ref().map(|db| db.list().iter().filter(|c| access.can_read(&c.name)).count()).unwrap_or(0);
    Reply(
        serde_json::json!({"ready": ready.is_some(), "collections": collections, "version": env!("CARGO_PKG_VERSION")}),
        t,
    )
}
