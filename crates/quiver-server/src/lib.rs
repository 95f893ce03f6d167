//! QuiverDB's HTTP server: a REST API shaped like Qdrant's for the common operations (so existing clients and
//! habits carry over) over [`quiver_engine`], with an OpenAPI document generated from the handlers, API keys
//! (full and read-only), limits, Prometheus metrics, request ids and graceful shutdown.
//!
//! [`app`] builds the whole router from an [`AppState`]; tests drive it without sockets (`tower::ServiceExt::
//! oneshot`). [`serve`] binds, recovers the data directory in the background (`/readyz` turns 200 when done),
//! and on SIGTERM/Ctrl-C drains requests, syncs every WAL and returns.
//!
//! This is the only crate that knows HTTP and the wire JSON; see `docs/server.md` for the API.

pub mod access;
pub mod cluster;
pub mod console;
pub mod convert;
pub mod documents;
pub mod embedding;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod mcp;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod tls;
pub use quiver_wire as wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult};
pub use state::{AppState, ServerConfig};

use routes::{changes, collections, points, search, service, snapshots};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "QuiverDB", description = "Vector database with a Qdrant-shaped REST API. Every reply is \
        `{\"result\": …, \"status\": \"ok\", \"time\": seconds}`; errors are `{\"status\": {\"error\": …}}` with a \
        4xx naming the field at fault, or a 5xx with a request id. The OpenAI-compatible routes `/v1/embeddings` \
        and `/v1/models` answer in OpenAI's shapes instead."),
    components(schemas(wire::ErrorBody)),
    modifiers(&ApiKeyScheme),
    security(("api-key" = []), ("bearer" = [])),
)]
struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme("api-key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))));
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes and their OpenAPI document, from the same registrations (the document cannot drift from the code).
pub fn router_and_doc() -> (Router<AppState>, OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(service::root))
        .routes(routes!(service::healthz))
        .routes(routes!(service::readyz))
        .routes(routes!(service::metrics))
        .routes(routes!(service::telemetry))
        .routes(routes!(routes::cluster::status))
        .routes(routes!(routes::cluster::rebalance))
        .routes(routes!(routes::cluster::snapshot))
        .routes(routes!(routes::cluster::train))
        .routes(routes!(routes::cluster::copy))
        .routes(routes!(routes::cluster::drain, routes::cluster::undrain))
        .routes(routes!(routes::cluster::remove_node))
        .routes(routes!(collections::list))
        .routes(routes!(collections::create, collections::delete, collections::info))
        .routes(routes!(collections::exists))
        .routes(routes!(routes::map::map))
        .routes(routes!(collections::create_index))
        .routes(routes!(collections::delete_index))
        .routes(routes!(points::upsert, points::retrieve))
        .routes(routes!(points::get_one))
        .routes(routes!(points::delete))
        .routes(routes!(points::set_payload, points::overwrite_payload))
        .routes(routes!(points::delete_payload))
        .routes(routes!(points::clear_payload))
        .routes(routes!(points::scroll))
        .routes(routes!(points::count))
        .routes(routes!(search::search))
        .routes(routes!(search::search_batch))
        .routes(routes!(search::query))
        .routes(routes!(search::query_batch))
        .routes(routes!(routes::documents::upsert))
        .routes(routes!(routes::documents::delete))
        .routes(routes!(routes::embeddings::embeddings))
        .routes(routes!(routes::embeddings::models))
        .routes(routes!(search::search_groups))
        .routes(routes!(search::query_groups))
        .routes(routes!(changes::sse))
        .routes(routes!(changes::ws))
        .routes(routes!(snapshots::create, snapshots::list))
        .routes(routes!(snapshots::download, snapshots::delete))
        .routes(routes!(snapshots::upload))
        .routes(routes!(snapshots::recover))
        .split_for_parts()
}

/// The OpenAPI 3 document.
pub fn openapi() -> OpenApi {
    router_and_doc().1
}

/// The routes, `/openapi.json` and `/mcp`, without state or middleware: built once per process (the OpenAPI
/// document takes a few milliseconds), cloned by every [`app`] (the MCP endpoint makes one per request).
fn routes() -> Router<AppState> {
    static ROUTES: std::sync::OnceLock<Router<AppState>> = std::sync::OnceLock::new();
    ROUTES
        .get_or_init(|| {
            let (router, doc) = router_and_doc();
            let doc = Arc::new(doc);
            router
                .route(
                    "/openapi.json",
                    axum::routing::get(move |axum::extract::State(s): axum::extract::State<AppState>| {
                        let doc = doc.clone();
                        async move { axum::Json(served_doc(&doc, &s)) }
                    }),
                )
                // The web console's static files (not REST routes, so not in the OpenAPI document).
                .route("/console", axum::routing::get(console::index))
                .route("/console/", axum::routing::get(console::slash))
                .route("/console/{file}", axum::routing::get(console::asset))
                // MCP's streamable-HTTP transport (not a REST route, so not in the OpenAPI document).
                .route(
                    "/mcp",
                    axum::routing::post(mcp::http_endpoint).get(mcp::http_not_allowed).delete(mcp::http_not_allowed),
                )
        })
        .clone()
}

/// The document as this server answers it: a server started without API keys asks for none, so its document
/// lists no security requirement (a client generated from it, or a fuzzer, is told the truth).
fn doc_for(doc: &OpenApi, s: &AppState) -> OpenApi {
    let mut doc = doc.clone();
    let cfg = s.config();
    if cfg.api_key.is_none() && cfg.read_only_api_key.is_none() {
        doc.security = None;
        if let Some(c) = doc.components.as_mut() {
            c.security_schemes.clear();
        }
    }
    doc
}

/// The document `/openapi.json` answers: [`doc_for`], refined by [`openapi::refine`] for this server's caps.
fn served_doc(doc: &OpenApi, s: &AppState) -> serde_json::Value {
    let mut v = serde_json::to_value(doc_for(doc, s)).unwrap_or_default();
    let missing = openapi::refine(&mut v, s.config());
    if !missing.is_empty() {
        tracing::warn!(?missing, "OpenAPI refinements found nothing to refine");
    }
    v
}

/// The whole application: routes, `/openapi.json`, `/mcp`, and the middleware stack (request id, metrics, auth,
/// timeout, body limit).
pub fn app(state: AppState) -> Router {
    // In cluster mode, requests about collections are routed across the cluster (innermost: after auth).
    let router = routes().route_layer(axum::middleware::from_fn_with_state(state.clone(), cluster::dispatch::dispatch));
    middleware::wrap(router, state.clone())
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .with_state(state)
}

/// Binds `config.bind`, opens the database in the background (requests get 503 until recovery finishes),
/// serves until SIGTERM/Ctrl-C, drains in-flight requests (at most `shutdown_grace_secs`), then closes the
/// database (every WAL synced).
pub async fn serve(config: ServerConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.bind).await?;
    serve_on(listener, config, shutdown_signal()).await
}

/// [`serve`] on a bound listener, stopping when `stop` completes (tests pass their own).
pub async fn serve_on(
    listener: TcpListener,
    config: ServerConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_node(listener, config, None, stop).await
}

/// [`serve_on`], as a cluster node when `cluster` is given: once the data directory is open the node joins the
/// cluster (connects to NATS, registers, opens its shards), and only then answers `/readyz` with 200.
pub async fn serve_node(
    listener: TcpListener,
    config: ServerConfig,
    cluster: Option<cluster::ClusterOptions>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let tls = match config.tls_files() {
        Some(files) => Some(tls::Tls::load(files).map_err(std::io::Error::other)?),
        None => None,
    };
    if !addr.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            %addr,
            "SERVING PLAIN HTTP BEYOND LOOPBACK: keys and data cross the network unencrypted. Set --tls-cert and \
             --tls-key (or terminate TLS in front of the server)."
        );
    }
    if !addr.ip().is_loopback() && config.api_key.is_none() {
        tracing::warn!(
            %addr,
            "LISTENING BEYOND LOOPBACK WITHOUT AN API KEY: anyone who can reach this address can read and \
             change all data. Set --api-key (or QUIVER_API_KEY)."
        );
    }
    let state = AppState::new(config.clone());
    let opener = {
        let state = state.clone();
        let dir = config.data_dir.clone();
        async move {
            let t = std::time::Instant::now();
            let d = dir.clone();
            let db = match tokio::task::spawn_blocking(move || quiver_engine::Database::open(&d)).await {
                Ok(Ok(db)) => Arc::new(db),
                Ok(Err(e)) => return Err(format!("opening the data directory {}: {e}", dir.display())),
                Err(e) => return Err(format!("opening the data directory {}: {e}", dir.display())),
            };
            if let Some(opts) = cluster {
                let c = cluster::Cluster::start(opts, addr, state.clone(), Arc::clone(&db))
                    .await
                    .map_err(|e| format!("joining the cluster: {e}"))?;
                state.set_cluster(c);
            }
            let n = db.list().len();
            state.set_database(db);
            tracing::info!(dir = %dir.display(), collections = n, secs = t.elapsed().as_secs_f64(), "ready");
            Ok::<(), String>(())
        }
    };
    tracing::info!(%addr, data_dir = %config.data_dir.display(), tls = tls.is_some(), "listening");
    state.embedders().log_status();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop_rx.await;
    };
    let grpc = match config.grpc_port {
        Some(port) => {
            let l = TcpListener::bind((addr.ip(), port)).await?;
            tracing::info!(grpc_addr = %l.local_addr()?, "gRPC API served");
            let router = grpc::Grpc::new(app(state.clone())).into_router();
            let mut rx = state.shutdown_signal();
            let stopped = async move {
                let _ = rx.wait_for(|down| *down).await;
            };
            Some(tokio::spawn(axum::serve(l, router).with_graceful_shutdown(stopped).into_future()))
        }
        None => None,
    };
    let server = match tls {
        None => tokio::spawn(axum::serve(listener, app(state.clone())).with_graceful_shutdown(stopped).into_future()),
        Some(tls) => {
            tls.reload_on_sighup();
            tokio::spawn(tls::serve(listener, app(state.clone()), tls, stopped))
        }
    };
    let mut stop = Box::pin(stop);
    let failed = tokio::select! {
        r = opener => match r {
            Ok(()) => {
                (&mut stop).await;
                None
            }
            Err(e) => Some(e),
        },
        () = &mut stop => None,
    };
    tracing::info!("shutting down: draining in-flight requests");
    state.begin_shutdown();
    let _ = stop_tx.send(());
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error"),
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!(secs = grace.as_secs(), "in-flight requests did not finish in time; exiting anyway"),
    }
    if let Some(g) = grpc
        && tokio::time::timeout(grace, g).await.is_err()
    {
        tracing::warn!("in-flight gRPC calls did not finish in time; exiting anyway");
    }
    close(&state).await;
    match failed {
        Some(msg) => Err(std::io::Error::other(msg)),
        None => Ok(()),
    }
}

async fn close(state: &AppState) {
    if let Some(db) = state.db_if_ready() {
        match tokio::task::spawn_blocking(move || db.close()).await {
            Ok(Ok(())) => tracing::info!("closed: every WAL synced"),
            Ok(Err(e)) => tracing::error!(error = %e, "closing the database failed"),
            Err(e) => tracing::error!(error = %e, "closing the database panicked"),
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
