//! Shared server state: the database (set once recovery finishes), limits, keys and metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use quiver_engine::{Collection, Database};
use serde::Deserialize;

use crate::embedding::Embedders;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Everything `quiver serve` can be told (flags, environment, TOML file — see the CLI). Every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:6333`: loopback only).
    pub bind: SocketAddr,
    /// Data directory (default `./quiver-data`).
    pub data_dir: PathBuf,
    /// Key for full access (`api-key: …` or `Authorization: Bearer …`); none: no authentication.
    pub api_key: Option<String>,
    /// Key for read-only access (search, retrieve, scroll, count, listing, downloads).
    pub read_only_api_key: Option<String>,
    /// Also accept signed tokens (JWT, HS256, signed with `api_key`) carrying per-collection read or read-write
    /// access and an expiry (see [`crate::access`]).
    pub jwt_rbac: bool,
    /// Largest request body in bytes (413 above it); snapshot uploads use `max_snapshot_bytes`.
    pub max_body_bytes: usize,
    /// Largest snapshot upload in bytes.
    pub max_snapshot_bytes: u64,
    /// Most points in one upsert, ids in one retrieve or delete.
    pub max_batch_points: usize,
    /// Largest `limit` (k) of a search, query or scroll; `offset` is capped at 10× this.
    pub max_limit: usize,
    /// Most searches in one batch request.
    pub max_search_batch: usize,
    /// Requests taking longer are answered 408 (the change feed and snapshot transfers are exempt).
    pub request_timeout_secs: u64,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    pub shutdown_grace_secs: u64,
    /// Directory of embedding models, one sentence-transformers directory per model named as collections name
    /// it (`<models_dir>/all-MiniLM-L6-v2`). The default model is also found where `quiver embed` finds it.
    pub models_dir: Option<PathBuf>,
    /// Heap bytes the collections may take together, by their memory estimates (`info().estimated_memory`): a
    /// create or upsert that would pass it is answered 507 with the estimate. None: no limit.
    pub memory_budget_bytes: Option<u64>,
    /// PEM certificate chain: with `tls_key`, the server speaks HTTPS only (reloaded on SIGHUP).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate that chains to one of them (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Port of the gRPC API (Qdrant's interface; `qdrant-client` expects 6334), on `bind`'s address; 0 picks a free
    /// port. None: no gRPC.
    pub grpc_port: Option<u16>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 6333)),
            data_dir: PathBuf::from("quiver-data"),
            api_key: None,
            read_only_api_key: None,
            jwt_rbac: false,
            max_body_bytes: 64 << 20,
            max_snapshot_bytes: 64 << 30,
            max_batch_points: 10_000,
            max_limit: 10_000,
            max_search_batch: 100,
            request_timeout_secs: 60,
            shutdown_grace_secs: 30,
            models_dir: None,
            memory_budget_bytes: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            grpc_port: None,
        }
    }
}

impl ServerConfig {
    /// Checks values that would make the server useless or unsafe; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_snapshot_bytes", self.max_snapshot_bytes),
            ("max_batch_points", self.max_batch_points as u64),
            ("max_limit", self.max_limit as u64),
            ("max_search_batch", self.max_search_batch as u64),
            ("request_timeout_secs", self.request_timeout_secs),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("invalid {name}: expected at least 1, got 0"));
            }
        }
        for (name, key) in [("api_key", &self.api_key), ("read_only_api_key", &self.read_only_api_key)] {
            if let Some(k) = key
                && k.len() < 8
            {
                return Err(format!("invalid {name}: expected at least 8 characters, got {}", k.len()));
            }
        }
        if self.read_only_api_key.is_some() && self.api_key.is_none() {
            return Err(
                "invalid read_only_api_key: set api_key too (a read-only key alone would leave writes open)".into()
            );
        }
        if self.jwt_rbac && self.api_key.is_none() {
            return Err("invalid jwt_rbac: set api_key too (tokens are signed with it)".into());
        }
        if self.api_key.is_some() && self.api_key == self.read_only_api_key {
            return Err("invalid read_only_api_key: expected a key different from api_key".into());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err("invalid tls_cert: set tls_key too (the certificate's private key)".into()),
            (None, Some(_)) => return Err("invalid tls_key: set tls_cert too (the key's certificate chain)".into()),
            _ => {}
        }
        if self.grpc_port.is_some() && self.tls_cert.is_some() {
            return Err("invalid grpc_port: gRPC is served as plain HTTP/2 only; with tls_cert set, leave it off or \
                 terminate TLS for gRPC in front of the server"
                .into());
        }
        if self.grpc_port.is_some_and(|p| p != 0 && p == self.bind.port()) {
            return Err(format!("invalid grpc_port: expected a port other than bind's, got {}", self.bind.port()));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err("invalid tls_client_ca: client certificates need TLS (set tls_cert and tls_key)".into());
        }
        Ok(())
    }

    /// The TLS files, when TLS is configured.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// The state every handler sees.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    db: OnceLock<Arc<Database>>,
    metrics: Metrics,
    embedders: Arc<Embedders>,
    shutdown: tokio::sync::watch::Sender<bool>,
    cluster: OnceLock<Arc<crate::cluster::Cluster>>,
    /// A cluster node's internal router: its collections are shard replicas fed by their shard logs.
    shard_local: bool,
}

impl AppState {
    /// State with no database yet (`/readyz` answers 503 until [`AppState::set_database`]).
    pub fn new(config: ServerConfig) -> Self {
        let embedders = Arc::new(Embedders::new(config.models_dir.clone()));
        AppState::from_parts(config, embedders, false)
    }

    fn from_parts(config: ServerConfig, embedders: Arc<Embedders>, shard_local: bool) -> Self {
        let (shutdown, _) = tokio::sync::watch::channel(false);
        AppState {
            inner: Arc::new(Inner {
                config,
                db: OnceLock::new(),
                metrics: Metrics::default(),
                embedders,
                shutdown,
                cluster: OnceLock::new(),
                shard_local,
            }),
        }
    }

    /// A state over the same database and models that is never in cluster mode: what a cluster node's internal
    /// router (shard-local requests from other nodes) runs handlers with.
    pub fn local_twin(&self, db: Arc<Database>) -> AppState {
        // The routing node checked the client's limits; what it forwards (a shard's share of a search, a grouped
        // search's candidate rounds) may exceed them.
        let config = ServerConfig {
            max_limit: usize::MAX / 16,
            max_batch_points: usize::MAX / 16,
            max_search_batch: usize::MAX / 16,
            ..self.inner.config.clone()
        };
        let s = AppState::from_parts(config, Arc::clone(&self.inner.embedders), true);
        s.set_database(db);
        s
    }

    /// Puts the node in cluster mode: requests about collections are routed across the cluster.
    pub fn set_cluster(&self, c: Arc<crate::cluster::Cluster>) {
        let _ = self.inner.cluster.set(c);
    }

    /// Whether this serves a cluster node's shard replicas, whose logs may run ahead of what they applied (a
    /// read's `min_seq` from another node is waited for, never refused). The routing node itself also counts.
    pub fn follows_a_log(&self) -> bool {
        self.inner.shard_local || self.cluster().is_some()
    }

    /// The cluster, in cluster mode.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.inner.cluster.get()
    }

    /// State over an open database (tests, embedding).
    pub fn with_database(config: ServerConfig, db: Arc<Database>) -> Self {
        let s = AppState::new(config);
        s.set_database(db);
        s
    }

    /// Marks recovery done: requests are served from now on. Applies the configured memory budget.
    pub fn set_database(&self, db: Arc<Database>) {
        db.set_memory_budget(self.inner.config.memory_budget_bytes);
        let _ = self.inner.db.set(db);
    }

    /// The database, or 503 while recovering.
    pub fn db(&self) -> ApiResult<Arc<Database>> {
        self.inner.db.get().cloned().ok_or_else(ApiError::starting)
    }

    /// The database if recovery finished.
    pub fn db_if_ready(&self) -> Option<Arc<Database>> {
        self.inner.db.get().cloned()
    }

    /// Collection `name` (404 / 503 as the engine says).
    pub fn collection(&self, name: &str) -> ApiResult<Collection> {
        Ok(self.db()?.collection(name)?)
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The embedding models (loaded on first use).
    pub fn embedders(&self) -> &Embedders {
        &self.inner.embedders
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Tells long-lived streams (the change feed) to end: the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// A receiver that turns `true` when shutdown begins.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }
}

/// Runs blocking engine work on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(format!("a blocking task failed: {e}"))),
    }
}

/// Tells a blocking job that the request which started it is gone (timed out, or the client hung up), so a job
/// that has been busy embedding stops before it writes: an answered 408 then means nothing was written.
#[derive(Debug)]
pub struct AbandonGuard(Arc<std::sync::atomic::AtomicBool>);

/// The job's side of an [`AbandonGuard`].
#[derive(Debug, Clone)]
pub struct Abandoned(Arc<std::sync::atomic::AtomicBool>);

/// A guard to hold in the request's future (past the blocking job's end) and the flag it sets when dropped.
pub fn abandon_guard() -> (AbandonGuard, Abandoned) {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    (AbandonGuard(Arc::clone(&flag)), Abandoned(flag))
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Abandoned {
    /// 408 when the request is gone; call right before writing.
    pub fn check(&self) -> ApiResult<()> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "the request was abandoned before its write began; nothing was written",
            ));
        }
        Ok(())
    }
}
