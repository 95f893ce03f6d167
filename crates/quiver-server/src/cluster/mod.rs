//! Cluster mode: this node as one of several `quiver serve --cluster …` processes over NATS JetStream.
//!
//! Every node serves the same REST API and routes any request about a collection itself (there is no router to
//! lose): writes are split by shard and appended to each shard's JetStream stream ([`write`]); reads go to one
//! replica per shard — this node's own when it holds one — and the answers are merged ([`read`]). A node holds
//! replicas as ordinary local collections named `<collection>_s<shard>`, each fed by a
//! [`quiver_cluster::replica::Replica`]; other nodes reach them through this node's *internal router* (the same
//! handlers over the local database, plus [`internal`]'s routes), over NATS request/reply. The shard map comes
//! from JetStream KV and is watched, so a collection created through any node appears on every node.

pub mod copy;
pub mod dispatch;
pub mod groups;
pub mod internal;
pub mod lookup;
pub mod map;
pub mod place;
pub mod read;
pub mod snapshots;
pub mod staged;
pub mod supervise;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use futures_util::future::join_all;
use parking_lot::RwLock;
use quiver_cluster::map::{COLLECTION_PREFIX, NODE_PREFIX};
use quiver_cluster::nats::{KvStore, RpcHandler};
use quiver_cluster::replica::Replica;
use quiver_cluster::{CollectionSpec, Nats, NodeId, NodeInfo, RpcReply, RpcRequest, ShardMap};
use quiver_engine::{Database, DurabilityConfig};
use serde::Serialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How `quiver serve` joins a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// NATS servers, comma-separated `nats://host:port`.
    pub nats_urls: String,
    /// This node's number (unique in the cluster).
    pub node_id: NodeId,
    /// Where other nodes and clients reach this node's REST API [default: `http://` + the bound address].
    pub advertise_url: Option<String>,
    /// How long a node may go without renewing its lease before its replicas are copied elsewhere.
    pub lease_ttl: Duration,
    /// How often a shard's snapshotter stores a snapshot (when the shard has new entries).
    pub snapshot_interval: Duration,
}

/// How long a node-to-node request may take before another replica is tried.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shard request waits for a replica before the next one is asked too.
pub const HEDGE_AFTER: Duration = Duration::from_millis(750);
/// How long `wait=true` waits for a replica to apply a write.
pub const APPLY_WAIT: Duration = Duration::from_secs(10);

tokio::task_local! {
    /// When the request being answered is due: shard calls made for it give up then (see [`Cluster::call`]).
    static DEADLINE: tokio::time::Instant;
}

/// Runs `f` (the answer to one request) with its deadline: every shard call it makes waits at most until then.
pub async fn with_deadline<F: std::future::Future>(deadline: tokio::time::Instant, f: F) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// Time left before the current request's deadline (`None` outside a request: background work).
pub fn time_left() -> Option<Duration> {
    DEADLINE.try_with(|d| d.saturating_duration_since(tokio::time::Instant::now())).ok()
}

fn deadline_passed(node: NodeId, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        format!("the request's deadline passed waiting for node {node} ({path}); raise `timeout` (seconds) or retry"),
    )
}

/// A node's cluster side.
pub struct Cluster {
    node_id: NodeId,
    nats: Nats,
    map: ShardMap<KvStore>,
    specs: RwLock<BTreeMap<String, Arc<CollectionSpec>>>,
    /// The shard map revision last acted on, per collection.
    revisions: parking_lot::Mutex<HashMap<String, u64>>,
    nodes: RwLock<BTreeMap<NodeId, NodeInfo>>,
    /// When each member's lease was last seen renewed (this node's clock).
    seen: RwLock<BTreeMap<NodeId, std::time::Instant>>,
    leases: async_nats::jetstream::kv::Store,
    lease_ttl: Duration,
    started: std::time::Instant,
    snapshot_interval: Duration,
    /// When each local shard was last snapshotted, and at which sequence number.
    snapshot_state: parking_lot::Mutex<HashMap<String, (std::time::Instant, u64)>>,
    replicas: tokio::sync::Mutex<HashMap<String, (u64, Replica)>>,
    internal: Router,
    /// Per collection: held shared by every upsert from reading the spec to its appends; [`place`]'s fence takes
    /// it exclusively.
    route_gates: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    /// Collections being trained or placed by this node.
    placing: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// When training or placing each collection last failed here (the coordinator waits before retrying).
    place_failed: parking_lot::Mutex<HashMap<String, std::time::Instant>>,
    /// Per shard this node is copying: ticks so far and the log's last sequence number at the latest tick (see
    /// `promote_joins`).
    join_lags: parking_lot::Mutex<HashMap<(String, u32), (u64, u64)>>,
    db: Arc<Database>,
    markers: PathBuf,
    /// The public state (models, limits).
    state: AppState,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// A node request's answer in HTTP terms.
#[derive(Debug)]
pub struct ShardReply {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: bytes::Bytes,
}

fn cluster_err(e: quiver_cluster::Error) -> ApiError {
    ApiError::from(e)
}

impl Cluster {
    /// Connects to NATS, registers this node, starts answering other nodes and following the shard map.
    pub async fn start(
        opts: ClusterOptions,
        bound: std::net::SocketAddr,
        state: AppState,
        db: Arc<Database>,
    ) -> Result<Arc<Cluster>, String> {
        let nats = Nats::connect(&opts.nats_urls, &format!("quiver-node-{}", opts.node_id))
            .await
            .map_err(|e| e.to_string())?;
        let map = ShardMap::new(nats.map_store());
        let internal_state = state.local_twin(Arc::clone(&db));
        let internal = internal::router(internal_state);
        let markers = db.root().join("cluster-shards.json");
        let (leases, lease_ttl) = nats.leases(opts.lease_ttl).await.map_err(|e| e.to_string())?;
        let cluster = Arc::new(Cluster {
            node_id: opts.node_id,
            nats: nats.clone(),
            map,
            specs: RwLock::new(BTreeMap::new()),
            revisions: parking_lot::Mutex::new(HashMap::new()),
            nodes: RwLock::new(BTreeMap::new()),
            seen: RwLock::new(BTreeMap::new()),
            leases,
            lease_ttl,
            started: std::time::Instant::now(),
            snapshot_interval: opts.snapshot_interval,
            snapshot_state: parking_lot::Mutex::new(HashMap::new()),
            replicas: tokio::sync::Mutex::new(HashMap::new()),
            internal,
            route_gates: parking_lot::Mutex::new(HashMap::new()),
            placing: parking_lot::Mutex::new(std::collections::HashSet::new()),
            place_failed: parking_lot::Mutex::new(HashMap::new()),
            join_lags: parking_lot::Mutex::new(HashMap::new()),
            db,
            markers,
            state,
        });
        let mut me = NodeInfo {
            id: opts.node_id,
            url: opts.advertise_url.unwrap_or_else(|| format!("http://{bound}")),
            started_ms: now_ms(),
            draining: false,
        };
        // A drained node stays drained across restarts (until `DELETE /cluster/nodes/{id}/drain`).
        if let Ok(known) = cluster.map.nodes().await
            && let Some(before) = known.get(&me.id)
        {
            me.draining = before.draining;
        }
        // A bucket another node just created may still be electing its leader: retry for a few seconds.
        let mut attempt = 0;
        loop {
            match cluster.map.put_node(&me).await {
                Ok(()) => break,
                Err(e) if attempt < 40 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "registering in the shard map; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        let handler: RpcHandler = {
            let c = Arc::clone(&cluster);
            Arc::new(move |req: RpcRequest| {
                let c = Arc::clone(&c);
                Box::pin(async move {
                    let r = c.local(&req.method, &req.path, req.body).await;
                    RpcReply { status: r.status.as_u16(), body: r.body }
                })
            })
        };
        nats.serve_rpc(opts.node_id, handler).await.map_err(|e| e.to_string())?;
        // The current map, then every change.
        *cluster.nodes.write() = cluster.map.nodes().await.map_err(|e| e.to_string())?;
        let specs = cluster.map.collections().await.map_err(|e| e.to_string())?;
        for v in specs {
            cluster.newer(&v.value.name, v.revision);
            let spec = Arc::new(v.value);
            cluster.specs.write().insert(spec.name.clone(), Arc::clone(&spec));
            if let Err(e) = cluster.sync_local(&spec).await {
                tracing::error!(collection = %spec.name, error = %e.message, "could not open this node's shards");
            }
        }
        cluster.drop_orphans().await;
        let watch = nats.watch_map().await.map_err(|e| e.to_string())?;
        tokio::spawn(Arc::clone(&cluster).follow_forever(watch));
        cluster.start_supervision();
        tracing::info!(node = opts.node_id, collections = cluster.specs.read().len(), "joined the cluster");
        Ok(cluster)
    }

    /// This node's number.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The NATS handle.
    pub fn nats(&self) -> &Nats {
        &self.nats
    }

    /// The shard map.
    pub fn map(&self) -> &ShardMap<KvStore> {
        &self.map
    }

    /// Collection `name`'s routing gate (see [`place`]): its upserts hold it shared while they route and append.
    pub fn route_gate(&self, name: &str) -> Arc<tokio::sync::RwLock<()>> {
        Arc::clone(self.route_gates.lock().entry(name.to_owned()).or_default())
    }

    /// The public state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Collection `name`'s spec as this node last saw it (404 when none).
    pub fn spec(&self, name: &str) -> ApiResult<Arc<CollectionSpec>> {
        self.specs
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("collection {name:?} does not exist")))
    }

    /// Every collection this node knows of.
    pub fn specs(&self) -> Vec<Arc<CollectionSpec>> {
        self.specs.read().values().cloned().collect()
    }

    /// Known members.
    pub fn nodes(&self) -> BTreeMap<NodeId, NodeInfo> {
        self.nodes.read().clone()
    }

    /// True (and remembered) when `revision` is at or above the last one acted on for collection `name`.
    pub fn newer(&self, name: &str, revision: u64) -> bool {
        let mut r = self.revisions.lock();
        let known = r.entry(name.to_owned()).or_insert(0);
        if revision < *known {
            return false;
        }
        *known = revision;
        true
    }

    /// Records a spec just written to the map (before the watcher reports it), and opens this node's shards.
    pub async fn learn(&self, spec: Arc<CollectionSpec>) {
        self.specs.write().insert(spec.name.clone(), Arc::clone(&spec));
        if let Err(e) = self.sync_local(&spec).await {
            tracing::error!(collection = %spec.name, error = %e.message, "could not open this node's shards");
        }
    }

    /// Forgets a collection dropped from the map and drops this node's shards of it.
    pub async fn forget(&self, name: &str) {
        let spec = self.specs.write().remove(name);
        if let Some(spec) = spec {
            self.drop_local(&spec.name, (0..spec.shard_number).collect()).await;
        }
    }

    /// Follows the map; when the watch ends (the connection was lost for long), watches again from the start,
    /// which replays every current entry (applying one already known changes nothing).
    async fn follow_forever(self: Arc<Self>, watch: async_nats::jetstream::kv::Watch) {
        let mut watch = Some(watch);
        loop {
            if let Some(w) = watch.take() {
                Arc::clone(&self).follow(w).await;
            }
            tracing::warn!("shard map watch ended; watching again");
            // Whatever the watch missed meanwhile: every collection's current entry (a newer revision is learnt).
            self.resync().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self.nats.watch_map().await {
                Ok(w) => watch = Some(w),
                Err(e) => tracing::warn!(error = %e, "cannot watch the shard map yet"),
            }
        }
    }

    /// Reads every collection from the map and acts on those at a newer revision than last acted on. (Drops are
    /// left to the watch: a KV read served by a lagging server may not list a collection just created.)
    pub(crate) async fn resync(&self) {
        let Ok(all) = self.map.collections().await else { return };
        for v in all {
            if v.revision > self.revisions.lock().get(&v.value.name).copied().unwrap_or(0)
                && self.newer(&v.value.name, v.revision)
            {
                self.learn(Arc::new(v.value)).await;
            }
        }
    }

    async fn follow(self: Arc<Self>, mut watch: async_nats::jetstream::kv::Watch) {
        while let Some(entry) = watch.next().await {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "shard map watch failed; watching again");
                    return;
                }
            };
            let put = matches!(entry.operation, async_nats::jetstream::kv::Operation::Put);
            if let Some(name) = entry.key.strip_prefix(COLLECTION_PREFIX) {
                // Events may arrive after this node acted on a newer state (it learns the collections it creates
                // at once): only an event at or above the revision last acted on counts. (Reading the key back
                // instead would not do: KV reads may be served by a replica that is behind.)
                if !self.newer(name, entry.revision) {
                    continue;
                }
                if put {
                    match serde_json::from_slice::<CollectionSpec>(&entry.value) {
                        // Learning again re-opens any shard whose replica is not running (a failed open is retried).
                        Ok(spec) => self.learn(Arc::new(spec)).await,
                        Err(e) => tracing::error!(key = %entry.key, error = %e, "undecodable shard map entry"),
                    }
                } else {
                    self.forget(name).await;
                }
            } else if let Some(id) = entry.key.strip_prefix(NODE_PREFIX) {
                if put {
                    if let Ok(n) = serde_json::from_slice::<NodeInfo>(&entry.value) {
                        self.nodes.write().insert(n.id, n);
                    }
                } else if let Ok(id) = id.parse::<NodeId>() {
                    self.nodes.write().remove(&id);
                }
            }
        }
    }

    fn read_markers(&self) -> BTreeMap<String, u64> {
        std::fs::read(&self.markers).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    fn write_markers(&self, m: &BTreeMap<String, u64>) -> ApiResult<()> {
        let tmp = self.markers.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(m).map_err(|e| ApiError::internal(e.to_string()))?;
        let io = |e: std::io::Error| ApiError::internal(format!("writing {}: {e}", self.markers.display()));
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.markers).map_err(io)?;
        std::fs::File::open(self.db.root()).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    /// Opens (creating) this node's shards of `spec` — those it serves and those it is copying — and starts their
    /// replicas; a local shard left from an earlier collection of the same name is dropped first, and one the map
    /// no longer assigns to this node (moved elsewhere) is dropped.
    async fn sync_local(&self, spec: &Arc<CollectionSpec>) -> ApiResult<()> {
        let mine = spec.held_by(self.node_id);
        let unheld: Vec<u32> = {
            let markers = self.read_markers();
            (0..spec.shard_number)
                .filter(|s| !mine.contains(s) && markers.get(&spec.shard_collection(*s)) == Some(&spec.uid))
                .collect()
        };
        if !unheld.is_empty() {
            tracing::info!(collection = %spec.name, shards = ?unheld, "dropping local shards moved to other nodes");
            self.drop_local(&spec.name, unheld).await;
        }
        let mut replicas = self.replicas.lock().await;
        for shard in mine {
            let name = spec.shard_collection(shard);
            if replicas.get(&name).is_some_and(|(uid, _)| *uid == spec.uid) {
                continue;
            }
            if let Some((_, r)) = replicas.remove(&name) {
                r.stop().await;
            }
            let db = Arc::clone(&self.db);
            let mut markers = self.read_markers();
            // A local collection of that name not recorded as this collection's shard (another collection's, or one
            // created just before a crash, before its marker) is replaced: its applied sequence is not this log's.
            let stale = markers.get(&name) != Some(&spec.uid);
            let mut config = spec.config.clone();
            // The shard's stream is its durable log; the local WAL only has to be a checkpoint.
            config.durability = DurabilityConfig::None;
            let n = name.clone();
            let col = crate::state::blocking(move || {
                if stale {
                    match db.drop_collection(&n) {
                        Ok(()) | Err(quiver_engine::Error::CollectionNotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                match db.collection(&n) {
                    Ok(c) => Ok(c),
                    Err(quiver_engine::Error::CollectionNotFound { .. }) => Ok(db.create_collection(&n, config)?),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
            markers.insert(name.clone(), spec.uid);
            self.write_markers(&markers)?;
            let r = Replica::start(self.nats.clone(), Arc::clone(spec), shard, Arc::clone(&self.db), col);
            replicas.insert(name, (spec.uid, r));
        }
        Ok(())
    }

    /// Stops and drops this node's shards `shards` of collection `name`.
    async fn drop_local(&self, name: &str, shards: Vec<u32>) {
        let mut replicas = self.replicas.lock().await;
        let mut markers = self.read_markers();
        for shard in shards {
            let local = quiver_cluster::map::shard_collection_name(name, shard);
            if let Some((_, r)) = replicas.remove(&local) {
                r.stop().await;
            }
            if markers.remove(&local).is_some() {
                let db = Arc::clone(&self.db);
                let l = local.clone();
                let r = crate::state::blocking(move || match db.drop_collection(&l) {
                    Ok(()) | Err(quiver_engine::Error::CollectionNotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                })
                .await;
                if let Err(e) = r {
                    tracing::error!(shard = %local, error = %e.message, "could not drop a local shard");
                }
            }
        }
        if let Err(e) = self.write_markers(&markers) {
            tracing::error!(error = %e.message, "could not record the local shards");
        }
    }

    /// Drops local shards whose collection is no longer in the map (dropped while this node was down).
    async fn drop_orphans(&self) {
        let markers = self.read_markers();
        let live: Vec<String> =
            self.specs.read().values().flat_map(|s| (0..s.shard_number).map(|i| s.shard_collection(i))).collect();
        let orphans: Vec<String> = markers.keys().filter(|k| !live.contains(k)).cloned().collect();
        for o in orphans {
            if let Some((name, shard)) = o.rsplit_once("_s").and_then(|(n, s)| Some((n.to_owned(), s.parse().ok()?))) {
                tracing::info!(shard = %o, "dropping a local shard of a collection the cluster no longer has");
                self.drop_local(&name, vec![shard]).await;
            }
        }
    }

    /// Runs a request on this node's internal router (shard-local handlers).
    pub async fn local(&self, method: &str, path: &str, body: bytes::Bytes) -> ShardReply {
        if method == "POST"
            && let Some(rest) = path.strip_prefix("/internal/snapshot/")
        {
            return self.snapshot_rpc(rest).await;
        }
        if method == "POST"
            && let Some(rest) = path.strip_prefix("/internal/fence/")
        {
            return self.fence_rpc(rest).await;
        }
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body));
        let req = match req {
            Ok(r) => r,
            Err(e) => return ShardReply { status: StatusCode::BAD_REQUEST, body: e.to_string().into() },
        };
        match self.internal.clone().oneshot(req).await {
            Ok(resp) => {
                let status = resp.status();
                match axum::body::to_bytes(resp.into_body(), usize::MAX).await {
                    Ok(body) => ShardReply { status, body },
                    Err(e) => ShardReply { status: StatusCode::INTERNAL_SERVER_ERROR, body: e.to_string().into() },
                }
            }
            Err(e) => match e {},
        }
    }

    /// Sends a request to node `node` (this one: in-process), waiting for another node at most [`RPC_TIMEOUT`],
    /// and never past the current request's deadline, if any (504 once it has passed).
    pub async fn call(&self, node: NodeId, method: &str, path: &str, body: bytes::Bytes) -> ApiResult<ShardReply> {
        let left = time_left();
        if left.is_some_and(|l| l.is_zero()) {
            return Err(deadline_passed(node, path));
        }
        if node == self.node_id {
            return match left {
                Some(l) => tokio::time::timeout(l, self.local(method, path, body))
                    .await
                    .map_err(|_| deadline_passed(node, path)),
                None => Ok(self.local(method, path, body).await),
            };
        }
        let req = RpcRequest { method: method.to_owned(), path: path.to_owned(), body };
        let rep = match self.nats.call(node, req, left.map_or(RPC_TIMEOUT, |l| l.min(RPC_TIMEOUT))).await {
            Ok(r) => r,
            Err(_) if time_left().is_some_and(|l| l.is_zero()) => return Err(deadline_passed(node, path)),
            Err(e) => return Err(cluster_err(e)),
        };
        let status = StatusCode::from_u16(rep.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Ok(ShardReply { status, body: rep.body })
    }

    /// The replicas serving shard `shard` in the order to try them: this node first when it serves it, then the
    /// live ones in assignment order, then those whose lease has lapsed (tried last, not skipped: a lease may lapse
    /// on a node that still answers).
    pub fn replica_order(&self, spec: &CollectionSpec, shard: u32) -> Vec<NodeId> {
        let mut r = spec.replicas[shard as usize].clone();
        r.sort_by_key(|&n| (n != self.node_id, !self.is_live(n)));
        r
    }

    /// Sends a request about shard `shard` (`path` names the shard's local collection, and the request only reads
    /// the replica) to its replicas until one answers without a 5xx; the first 4xx is the answer (every replica
    /// would say the same). Requests are *hedged*: when a replica has not answered within [`HEDGE_AFTER`] (a
    /// stopped or partitioned node, a slow disk), the next one is asked too and the first good answer wins; a
    /// replica that fails hands over at once. Each attempt gives up after [`RPC_TIMEOUT`].
    pub async fn call_shard(
        &self,
        spec: &CollectionSpec,
        shard: u32,
        method: &str,
        path: &str,
        body: bytes::Bytes,
    ) -> ApiResult<ShardReply> {
        use futures_util::stream::FuturesUnordered;
        let mut last = None;
        let local = spec.shard_collection(shard);
        let mut order = self.replica_order(spec, shard).into_iter();
        let mut pending = FuturesUnordered::new();
        let attempt = |node: NodeId| {
            let body = body.clone();
            async move { (node, self.call(node, method, path, body).await) }
        };
        if let Some(n) = order.next() {
            pending.push(attempt(n));
        }
        while !pending.is_empty() {
            let hedge = tokio::time::sleep(HEDGE_AFTER);
            let next = tokio::select! {
                r = pending.next() => r,
                () = hedge, if order.len() > 0 => {
                    if let Some(n) = order.next() {
                        tracing::debug!(node = n, shard, "replica slow; asking the next one too");
                        pending.push(attempt(n));
                    }
                    continue;
                }
            };
            let Some((node, r)) = next else { break };
            match r {
                // A replica that has not opened the shard yet (it learns of new collections a moment later).
                Ok(r) if r.status == StatusCode::NOT_FOUND && is_missing_collection(&r.body, &local) => {
                    last = Some(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("shard {shard} of {:?} is not open on its replicas yet", spec.name),
                    ));
                }
                Ok(r) if !r.status.is_server_error() => return Ok(r),
                Ok(r) => {
                    tracing::warn!(node, shard, status = r.status.as_u16(), "replica failed; trying the next");
                    last = Some(ApiError::new(r.status, String::from_utf8_lossy(&r.body).into_owned()));
                }
                Err(e) => {
                    tracing::warn!(node, shard, error = %e.message, "replica unreachable; trying the next");
                    last = Some(e);
                }
            }
            if pending.is_empty()
                && let Some(n) = order.next()
            {
                pending.push(attempt(n));
            }
        }
        Err(last.unwrap_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no replica")))
    }

    /// This node's replicas and their applied sequence numbers.
    pub async fn local_status(&self) -> Vec<LocalShard> {
        let names: Vec<String> = self.replicas.lock().await.keys().cloned().collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Ok(c) = self.db.collection(&n) {
                out.push(LocalShard { collection: n, applied_seq: c.applied_seq() });
            }
        }
        out.sort_by(|a, b| a.collection.cmp(&b.collection));
        out
    }
}

impl Cluster {
    /// `GET /cluster`: members, and every collection's shards with each replica's applied sequence number (read
    /// from the nodes now) beside the shard log's last one.
    pub async fn status(&self) -> Value {
        let nodes = self.nodes();
        let calls = nodes.keys().map(|&id| async move {
            let r = tokio::time::timeout(
                Duration::from_secs(3),
                self.call(id, "GET", "/internal/status", bytes::Bytes::new()),
            )
            .await;
            let shards = match r {
                Ok(Ok(r)) if r.status.is_success() => serde_json::from_slice::<Vec<LocalShard>>(&r.body).ok(),
                _ => None,
            };
            (id, shards)
        });
        let local: BTreeMap<NodeId, Option<Vec<LocalShard>>> = join_all(calls).await.into_iter().collect();
        let mut collections = Vec::new();
        for spec in self.specs() {
            let mut shards = Vec::new();
            for s in 0..spec.shard_number {
                let bounds = self.nats.log_bounds(&spec, s).await.ok();
                let last = bounds.map(|b| b.1);
                let snapshot = self.nats.snapshot_info(&spec, s).await.ok().flatten();
                let name = spec.shard_collection(s);
                let replicas: Vec<Value> = spec.replicas[s as usize]
                    .iter()
                    .map(|n| {
                        let applied = local
                            .get(n)
                            .and_then(|l| l.as_ref())
                            .and_then(|l| l.iter().find(|x| x.collection == name))
                            .map(|x| x.applied_seq);
                        let lag = match (last, applied) {
                            (Some(l), Some(a)) => Some(l.saturating_sub(a)),
                            _ => None,
                        };
                        json!({"node": n, "applied_seq": applied, "lag": lag})
                    })
                    .collect();
                let joining: Vec<Value> = spec
                    .joining_of(s)
                    .iter()
                    .map(|j| {
                        let applied = local
                            .get(&j.node)
                            .and_then(|l| l.as_ref())
                            .and_then(|l| l.iter().find(|x| x.collection == name))
                            .map(|x| x.applied_seq);
                        json!({"node": j.node, "replaces": j.replaces, "since_ms": j.since_ms, "applied_seq": applied})
                    })
                    .collect();
                shards.push(json!({
                    "shard": s, "stream": spec.stream_name(s), "first_seq": bounds.map(|b| b.0), "last_seq": last,
                    "snapshot_seq": snapshot.as_ref().map(|x| x.applied_seq),
                    "snapshot_bytes": snapshot.as_ref().map(|x| x.size),
                    "replicas": replicas, "joining": joining,
                }));
            }
            collections.push(json!({
                "name": spec.name,
                "shard_number": spec.shard_number,
                "replication_factor": spec.replication_factor,
                "sharding": spec.sharding,
                "shards": shards,
            }));
        }
        let nodes: Vec<Value> = nodes
            .values()
            .map(|n| {
                json!({
                    "id": n.id, "url": n.url, "reachable": local.get(&n.id).is_some_and(Option::is_some),
                    "live": self.is_live(n.id), "draining": n.draining,
                })
            })
            .collect();
        json!({
            "node_id": self.node_id, "nats_servers": self.nats.servers(),
            "lease_ttl_s": self.lease_ttl.as_secs_f64(), "nodes": nodes, "collections": collections,
        })
    }

    /// Each local replica's lag behind its shard log, as Prometheus gauges.
    pub async fn render_lag(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP quiver_cluster_replica_lag Log entries a local replica has yet to apply.\n");
        out.push_str("# TYPE quiver_cluster_replica_lag gauge\n");
        out.push_str("# HELP quiver_cluster_replica_applied_seq The last log entry a local replica applied.\n");
        out.push_str("# TYPE quiver_cluster_replica_applied_seq gauge\n");
        for spec in self.specs() {
            for s in spec.held_by(self.node_id) {
                let Ok(col) = self.db.collection(&spec.shard_collection(s)) else { continue };
                let applied = col.applied_seq();
                let labels = format!("collection=\"{}\",shard=\"{s}\"", spec.name);
                let _ = writeln!(out, "quiver_cluster_replica_applied_seq{{{labels}}} {applied}");
                if let Ok(last) = self.nats.last_seq(&spec, s).await {
                    let _ = writeln!(out, "quiver_cluster_replica_lag{{{labels}}} {}", last.saturating_sub(applied));
                }
            }
        }
    }
}

/// True when an error body says the collection `local` does not exist (as opposed to a missing point).
fn is_missing_collection(body: &[u8], local: &str) -> bool {
    let msg = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/status/error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    msg == format!("collection {local:?} does not exist")
}

/// A local replica in `/internal/status`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct LocalShard {
    /// The shard's local collection name.
    pub collection: String,
    /// Its applied sequence number.
    pub applied_seq: u64,
}

/// Unix time in ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
