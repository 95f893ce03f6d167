//! Centroid sharding: training the centroids and moving every point to the shard of its nearest one.
//!
//! A collection sharded by centroid starts without centroids unless it was given some: its points are placed by
//! a hash of their id. Once it holds `train_after` points the coordinator trains `shard_number` centroids by
//! k-means over a sample of every shard's vectors (`POST /cluster/collections/{name}/train` does it on demand, or
//! sets given centroids), and writes them to the shard map as a new *epoch*. Then the points are *placed*:
//!
//! 1. **Fence.** Every live node is asked to confirm the new epoch: it learns the map until its spec has it, then
//!    takes its routing gate exclusively, which waits for every upsert it routed by the old centroids to be in
//!    the log (upserts hold the gate shared from reading the spec to their append). From then on no live node
//!    routes by the old centroids.
//! 2. **Sweep.** Each shard is scanned (on a replica, in id order, a page at a time) for points whose nearest
//!    centroid is another shard's, and those are moved, 64 at a time, each step a compare-and-set on one log:
//!    the batch's current points are read whole on the source (a `rewrite` plan: vector, payload, creation time,
//!    expiry) and each one's target is computed from its vector as it is now; on each target they are appended
//!    as an upsert only if that log has not moved since they were read there — skipping a point the target holds
//!    in another version than one this move wrote (a client wrote it there since: it is newer); the move counter
//!    (`moves.<name>` in the leases bucket) is bumped; then the source deletes, only if its log has not moved
//!    since it was read, the points that are still exactly the version copied. A point that changed meanwhile
//!    stays and goes round again; a copy that is no longer wanted (its point was deleted) is deleted again while
//!    it is still what the move wrote, and so are a failed move's copies. A point is on its old shard, or on
//!    both for a moment (reads merge by id), never on neither. Writes resolved per shard (deletes and payload
//!    updates by id or filter, and an upsert's removal of old copies) run again when the move counter changed
//!    while they ran, since a batch may have carried a point past them.
//! 3. **Settle.** Passes repeat until one moves nothing (at most three, else the run fails and the coordinator
//!    tries again later); once a replica of every shard has applied the moves, `placed` is set to the epoch (only
//!    if the centroids did not change again meanwhile). Until then searches probe every shard, since a point may
//!    still be on its old one, and reads with a read token wait for every shard's log end.
//!
//! One node places a collection at a time ([`Placer`]), in a task of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::future::join_all;
use quiver_cluster::map::Sharding;
use quiver_cluster::{CollectionSpec, NodeId, route};
use quiver_engine::PointId;
use quiver_engine::ops::{Operation, PointWrite};
use serde_json::{Value, json};

use super::read::{shard_result, to_bytes};
use super::{Cluster, ShardReply};
use crate::error::{ApiError, ApiResult};
use crate::state::blocking;

/// Points a replica scans per request when looking for misplaced ones.
const SCAN: usize = 2048;
/// Most vectors k-means trains on.
const SAMPLE: usize = 20_000;
/// How often one step of a move (a compare-and-set on one log) is retried when other writes keep landing first.
const STEP_ATTEMPTS: usize = 200;
/// Points moved together (one read, one upsert, one delete).
const MOVE_BATCH: usize = 64;
/// How often a move goes round again for points that changed while it ran.
const MOVE_ROUNDS: usize = 20;
/// Sweeps of every shard before giving up on a quiet pass (the next tick starts again).
const PASSES: usize = 3;
/// How long the coordinator waits after a failed training or placement before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a node waits to learn an epoch, and then for its upserts routed by the old centroids, when asked to
/// fence it (less than a node request's time limit, so the node's own answer arrives).
const FENCE_WAIT: Duration = Duration::from_secs(4);

fn cerr(e: quiver_cluster::Error) -> ApiError {
    ApiError::from(e)
}

/// The centroid sharding of `spec`, or a 400 saying the collection is sharded otherwise.
fn centroid_parts(spec: &CollectionSpec) -> ApiResult<(Vec<Vec<f32>>, u64, u64, u64)> {
    match &spec.sharding {
        Sharding::Centroid { centroids, train_after, epoch, placed } => {
            Ok((centroids.clone(), *train_after, *epoch, *placed))
        }
        other => Err(ApiError::bad_request(format!(
            "collection {:?} is sharded by {}; only a collection created with {{\"sharding\": {{\"method\": \
             \"centroid\"}}}} has centroids to train",
            spec.name,
            other.method()
        ))),
    }
}

/// The right to train or place one collection's points, held while it lives: this node's mark (one task per
/// collection here) and the cluster-wide key `place.<name>` in the leases bucket — created only if absent,
/// renewed every quarter of the lease TTL, and expiring with it if this node dies — so two nodes never move one
/// collection's points at once (a second mover would take the first one's copies for stale ones). It owns the
/// cluster handle so that placement runs in a task of its own: a request that started it and is cancelled (a
/// timeout, a client gone) does not cut a move short.
pub(super) struct Placer {
    c: Arc<Cluster>,
    name: String,
    /// When the key was last renewed (ms since this node started); past half a lease TTL the key may have lapsed
    /// and be another node's, and this one stops before its next append.
    renewed_ms: Arc<AtomicU64>,
    revision: Arc<AtomicU64>,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl Placer {
    fn check(&self) -> ApiResult<()> {
        let now = self.c.started.elapsed().as_millis() as u64;
        let held_for = now.saturating_sub(self.renewed_ms.load(Ordering::Acquire));
        if held_for > (self.c.lease_ttl / 2).as_millis() as u64 {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this node could not renew the right to place {:?}'s points; stopping", self.name),
            ));
        }
        Ok(())
    }
}

impl Drop for Placer {
    fn drop(&mut self) {
        self.c.placing.lock().remove(&self.name);
        let Some(renew) = self.renew.take() else { return };
        renew.abort();
        if self.check().is_ok() {
            let kv = self.c.leases.clone();
            let key = place_key(&self.name);
            tokio::spawn(async move {
                let _ = kv.delete(&key).await;
            });
        }
    }
}

fn place_key(name: &str) -> String {
    format!("place.{name}")
}

/// The key whose revision every move batch bumps between its copy and its source delete (see [`Cluster::moves`]).
fn moves_key(name: &str) -> String {
    format!("moves.{name}")
}

impl Cluster {
    /// Takes the right to train or place `name` (see [`Placer`]): 409 when this node or another holds it.
    pub(super) async fn placer(self: &Arc<Self>, name: &str) -> ApiResult<Placer> {
        let busy = || {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("collection {name:?} is being trained or placed now; retry when it is done (GET /cluster)"),
            )
        };
        if !self.placing.lock().insert(name.to_owned()) {
            return Err(busy());
        }
        // From here the mark is released by the guard's drop, whatever happens.
        let mut placer = Placer {
            c: Arc::clone(self),
            name: name.to_owned(),
            renewed_ms: Arc::new(AtomicU64::new(self.started.elapsed().as_millis() as u64)),
            revision: Arc::new(AtomicU64::new(0)),
            renew: None,
        };
        let key = place_key(name);
        match self.leases.create(&key, self.node_id.to_string().into()).await {
            Ok(rev) => placer.revision.store(rev, Ordering::Release),
            Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => return Err(busy()),
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("could not take the right to place {name:?}'s points: {e}"),
                ));
            }
        }
        placer.renewed_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Release);
        let (kv, renewed, revision, every, started) = (
            self.leases.clone(),
            Arc::clone(&placer.renewed_ms),
            Arc::clone(&placer.revision),
            self.lease_ttl / 4,
            self.started,
        );
        let value: Bytes = self.node_id.to_string().into();
        placer.renew = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match kv.update(&key, value.clone(), revision.load(Ordering::Acquire)).await {
                    Ok(r) => {
                        revision.store(r, Ordering::Release);
                        renewed.store(started.elapsed().as_millis() as u64, Ordering::Release);
                    }
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "could not renew the right to place points");
                        return;
                    }
                }
            }
        }));
        Ok(placer)
    }

    /// The revision of collection `name`'s move counter (`None` when it has none or it expired).
    pub(super) async fn moves(&self, name: &str) -> Option<u64> {
        self.leases.entry(moves_key(name)).await.ok().flatten().map(|e| e.revision)
    }

    /// Sets new centroids for collection `name` — `given`, or k-means over a sample of its points — as a new
    /// epoch, and places its points by them: before answering with `wait`, else in the background. The work runs
    /// in a task of its own (see [`Placer`]). Answers the epoch and, with `wait`, how many points moved.
    pub async fn train(self: &Arc<Self>, name: &str, given: Option<Vec<Vec<f32>>>, wait: bool) -> ApiResult<Value> {
        let placer = self.placer(name).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let c = Arc::clone(self);
        let n = name.to_owned();
        let task = tokio::spawn(async move {
            let epoch = match c.set_centroids(&n, given, false).await {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(0);
                }
            };
            let _ = tx.send(Ok(epoch));
            let r = c.place_now(&n, &placer).await;
            if let Err(e) = &r {
                tracing::warn!(collection = %n, error = %e.message, "placing points failed; the coordinator retries");
            }
            r
        });
        let epoch = rx.await.map_err(|_| ApiError::internal("the training task ended without an answer"))??;
        let mut out = json!({"collection": name, "epoch": epoch, "placed": false});
        if wait {
            let moved = task.await.map_err(|e| ApiError::internal(format!("the placement task failed: {e}")))??;
            out["moved"] = json!(moved);
            out["placed"] = json!(true);
        }
        Ok(out)
    }

    /// Writes the new centroids at a new epoch (compare-and-set, retried on a racing change); returns the epoch.
    /// `auto`: the coordinator's first training, which gives way (409) to centroids set meanwhile.
    async fn set_centroids(&self, name: &str, given: Option<Vec<Vec<f32>>>, auto: bool) -> ApiResult<u64> {
        let spec = self.map.collection(name).await.map_err(cerr)?.ok_or_else(|| not_found(name))?.value;
        centroid_parts(&spec)?;
        let centroids = match given {
            Some(g) => {
                if g.len() != spec.shard_number as usize {
                    return Err(ApiError::invalid(
                        "centroids",
                        format!("one centroid per shard ({})", spec.shard_number),
                        format!("{} centroids", g.len()),
                    ));
                }
                super::write::prepare_centroids(&spec.config, &g, "centroids")?
            }
            None => {
                let trained = self.kmeans_centroids(&spec).await?;
                // k-means numbers its clusters arbitrarily: give each shard the new centroid nearest its old one,
                // so a retraining that finds much the same clusters moves few points.
                match &spec.sharding {
                    Sharding::Centroid { centroids: old, .. } if old.len() == trained.len() => {
                        match_to(old, trained, spec.config.metric)
                    }
                    _ => trained,
                }
            }
        };
        for _ in 0..20 {
            let cur = self.map.collection(name).await.map_err(cerr)?.ok_or_else(|| not_found(name))?;
            if cur.value.uid != spec.uid {
                return Err(not_found(name));
            }
            let (now, train_after, epoch, placed) = centroid_parts(&cur.value)?;
            if auto && !now.is_empty() {
                return Err(ApiError::new(StatusCode::CONFLICT, format!("{name:?} was given centroids meanwhile")));
            }
            let mut next = cur.value.clone();
            next.sharding = Sharding::Centroid { centroids: centroids.clone(), train_after, epoch: epoch + 1, placed };
            next.validate().map_err(cerr)?;
            match self.map.update_collection(&next, cur.revision).await {
                Ok(rev) => {
                    tracing::info!(collection = %name, epoch = epoch + 1, "centroids set; placing the points");
                    if self.newer(name, rev) {
                        self.learn(Arc::new(next)).await;
                    }
                    return Ok(epoch + 1);
                }
                Err(quiver_cluster::Error::Conflict { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(cerr(e)),
            }
        }
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the shard map kept changing; retry"))
    }

    /// `shard_number` centroids by k-means over up to [`SAMPLE`] vectors drawn evenly from every shard.
    async fn kmeans_centroids(&self, spec: &CollectionSpec) -> ApiResult<Vec<Vec<f32>>> {
        let per_shard = SAMPLE.div_ceil(spec.shard_number as usize);
        let dim = spec.config.dimension;
        // In parts of at most 512 KiB (a NATS message is limited: 1 MiB by default).
        let rows_per_call = ((512usize << 10) / (4 * dim)).max(1);
        let calls = (0..spec.shard_number).map(|s| async move {
            let mut rows = Vec::new();
            let mut from = 0;
            while from < per_shard {
                let path = format!(
                    "/internal/sample/{}?n={per_shard}&from={from}&count={rows_per_call}",
                    spec.shard_collection(s)
                );
                let r = self.call_shard(spec, s, "POST", &path, Bytes::new()).await?;
                let b = shard_body(spec, s, r)?;
                if b.len() % (4 * dim) != 0 {
                    return Err(ApiError::internal("a replica's sample is not whole rows"));
                }
                let got = b.len() / (4 * dim);
                rows.extend(b.chunks_exact(4 * dim).map(|row| {
                    row.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect::<Vec<f32>>()
                }));
                if got < rows_per_call {
                    break;
                }
                from += got;
            }
            Ok::<_, ApiError>(rows)
        });
        let mut rows: Vec<Vec<f32>> = Vec::new();
        for r in join_all(calls).await {
            rows.extend(r?);
        }
        let k = spec.shard_number as usize;
        if rows.len() < k {
            return Err(ApiError::bad_request(format!(
                "collection {:?} holds {} points: training {k} centroids needs at least {k}",
                spec.name,
                rows.len()
            )));
        }
        let metric = spec.config.metric;
        blocking(move || {
            let flat: Vec<f32> = rows.concat();
            let params =
                quiver_index::kmeans::KMeansParams { max_sample: SAMPLE, ..quiver_index::kmeans::KMeansParams::new(k) };
            let c = quiver_index::kmeans::kmeans(&flat, dim, &params)
                .map_err(|e| ApiError::bad_request(format!("training centroids: {e}")))?;
            // Prepared like the vectors they are compared with (unit length under cosine); a centroid that cannot
            // be (all zero) is kept as it is.
            Ok(c.chunks(dim)
                .map(|v| quiver_index::prepare_query(metric, dim, v).unwrap_or_else(|_| v.to_vec()))
                .collect())
        })
        .await
    }

    /// Places collection `name`'s points by its current epoch now (fence, sweeps, settle); returns how many moved.
    async fn place_now(&self, name: &str, placer: &Placer) -> ApiResult<u64> {
        let spec = self.map.collection(name).await.map_err(cerr)?.ok_or_else(|| not_found(name))?.value;
        let (centroids, _, epoch, placed) = centroid_parts(&spec)?;
        if centroids.is_empty() || placed >= epoch {
            return Ok(0);
        }
        self.fence(&spec, epoch).await?;
        let mut moved = 0;
        let mut quiet = false;
        for pass in 0..PASSES {
            let mut this_pass = 0;
            for s in 0..spec.shard_number {
                this_pass += self.place_shard(&spec, &centroids, s, placer).await?;
            }
            tracing::info!(collection = %name, epoch, pass, moved = this_pass, "placement pass");
            moved += this_pass;
            if this_pass == 0 {
                quiet = true;
                break;
            }
        }
        if !quiet {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{name:?}: points were still moving after {PASSES} passes; placement goes on later"),
            ));
        }
        // Every move applied by a replica of its shard before the epoch counts as placed (reads after it see them).
        for s in 0..spec.shard_number {
            let last = self.nats.last_seq(&spec, s).await.map_err(cerr)?;
            let path = format!("/internal/wait/{}?seq={last}", spec.shard_collection(s));
            let r = self.call_shard(&spec, s, "POST", &path, Bytes::new()).await?;
            shard_body(&spec, s, r)?;
        }
        for _ in 0..20 {
            let cur = self.map.collection(name).await.map_err(cerr)?.ok_or_else(|| not_found(name))?;
            let (c, train_after, e, _) = centroid_parts(&cur.value)?;
            if cur.value.uid != spec.uid || e != epoch {
                // Dropped, or trained again meanwhile: that epoch is placed by its own run.
                return Ok(moved);
            }
            let mut next = cur.value.clone();
            next.sharding = Sharding::Centroid { centroids: c, train_after, epoch, placed: epoch };
            match self.map.update_collection(&next, cur.revision).await {
                Ok(rev) => {
                    tracing::info!(collection = %name, epoch, moved, "every point placed");
                    if self.newer(name, rev) {
                        self.learn(Arc::new(next)).await;
                    }
                    return Ok(moved);
                }
                Err(quiver_cluster::Error::Conflict { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(cerr(e)),
            }
        }
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the shard map kept changing; retry"))
    }

    /// Every live node confirms it routes by epoch `epoch` and has appended every upsert it routed before.
    async fn fence(&self, spec: &CollectionSpec, epoch: u64) -> ApiResult<()> {
        let nodes: Vec<NodeId> = self.nodes().into_keys().filter(|&n| self.is_live(n)).collect();
        let path = format!("/internal/fence/{}?uid={}&epoch={epoch}", spec.name, spec.uid);
        let calls = nodes.iter().map(|&n| {
            let path = path.clone();
            async move { (n, self.call(n, "POST", &path, Bytes::new()).await) }
        });
        for (n, r) in join_all(calls).await {
            match r {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("node {n} did not confirm the new centroids: {}", String::from_utf8_lossy(&r.body)),
                    ));
                }
                Err(e) => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("node {n} did not confirm the new centroids: {}", e.message),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `POST /internal/fence/{name}?uid=&epoch=` on this node: waits until this node's spec of the collection has
    /// the epoch, then until every upsert it routed before has been appended.
    pub(super) async fn fence_rpc(&self, rest: &str) -> ShardReply {
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uid = None;
        let mut epoch = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("uid", v)) => uid = v.parse::<u64>().ok(),
                Some(("epoch", v)) => epoch = v.parse::<u64>().ok(),
                _ => {}
            }
        }
        let (Some(uid), Some(epoch)) = (uid, epoch) else {
            return ShardReply { status: StatusCode::BAD_REQUEST, body: "fence needs uid and epoch".into() };
        };
        let deadline = tokio::time::Instant::now() + FENCE_WAIT;
        loop {
            let known = self.spec(name).ok().filter(|s| s.uid == uid).and_then(|s| match &s.sharding {
                Sharding::Centroid { epoch: e, .. } => Some(*e),
                _ => None,
            });
            if known.is_some_and(|e| e >= epoch) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return ShardReply {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: format!("node {} has not learnt epoch {epoch} of {name:?}", self.node_id).into(),
                };
            }
            self.resync().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let gate = self.route_gate(name);
        match tokio::time::timeout(FENCE_WAIT, gate.write()).await {
            Ok(g) => drop(g),
            Err(_) => {
                return ShardReply {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: format!(
                        "node {}: upserts of {name:?} routed by the old centroids still running",
                        self.node_id
                    )
                    .into(),
                };
            }
        }
        ShardReply { status: StatusCode::OK, body: "true".into() }
    }

    /// One sweep of shard `shard`: every point whose nearest centroid is another shard's is moved; returns how
    /// many moved.
    async fn place_shard(
        &self,
        spec: &CollectionSpec,
        centroids: &[Vec<f32>],
        shard: u32,
        placer: &Placer,
    ) -> ApiResult<u64> {
        let local = spec.shard_collection(shard);
        let mut after: Option<PointId> = None;
        let mut moved = 0;
        loop {
            let last = self.nats.last_seq(spec, shard).await.map_err(cerr)?;
            let body = to_bytes(&json!({"centroids": centroids, "shard": shard, "after": after, "scan": SCAN}));
            let path = format!("/internal/misplaced/{local}?min_seq={last}");
            let r = self.call_shard(spec, shard, "POST", &path, body).await?;
            let v: Value = serde_json::from_slice(&shard_body(spec, shard, r)?)
                .map_err(|e| ApiError::internal(format!("a replica's misplaced points do not decode: {e}")))?;
            let ids: Vec<PointId> = serde_json::from_value(v["ids"].clone())
                .map_err(|e| ApiError::internal(format!("misplaced ids: {e}")))?;
            for batch in ids.chunks(MOVE_BATCH) {
                placer.check()?;
                moved += self.move_points(spec, centroids, shard, batch.to_vec(), placer).await?;
            }
            match v.get("next").and_then(|n| serde_json::from_value::<PointId>(n.clone()).ok()) {
                Some(n) => after = Some(n),
                None => return Ok(moved),
            }
        }
    }

    /// The listed points of shard `shard` as they are now (a `rewrite` plan resolved once the replica applied
    /// the log's last entry): the log position they were read at, and the points.
    pub(super) async fn current_points(
        &self,
        spec: &CollectionSpec,
        shard: u32,
        ids: &[PointId],
    ) -> ApiResult<(u64, Vec<PointWrite>)> {
        let last = self.nats.last_seq(spec, shard).await.map_err(cerr)?;
        let path = format!("/internal/plan/{}/rewrite?min_seq={last}", spec.shard_collection(shard));
        let r = self.call_shard(spec, shard, "POST", &path, to_bytes(&json!({"points": ids}))).await?;
        let body = shard_body(spec, shard, r)?;
        if body.len() < 8 {
            return Err(ApiError::internal("a replica answered a plan with fewer than 8 bytes"));
        }
        let at = u64::from_le_bytes(body[..8].try_into().unwrap_or([0; 8]));
        if body.len() == 8 {
            return Ok((at, Vec::new()));
        }
        match Operation::decode(&body[8..], Path::new("rewrite plan"), 0) {
            Ok(Operation::Upsert(ws)) => Ok((at, ws)),
            Ok(_) => Err(ApiError::internal("a rewrite plan answered another operation")),
            Err(e) => Err(ApiError::internal(format!("a rewrite plan does not decode: {e}"))),
        }
    }

    /// Moves the points `ids` of shard `from` that belong elsewhere (see the module docs); returns how many left.
    /// Each step is a compare-and-set on one shard's log, retried at once when another write landed first, so
    /// a step's window is one read and one append. Points that changed while they were copied stay on the source
    /// and go round again (copied anew). A move that fails takes back the copies it made that are still as it
    /// wrote them, so every point is left where it was.
    async fn move_points(
        &self,
        spec: &CollectionSpec,
        centroids: &[Vec<f32>],
        from: u32,
        ids: Vec<PointId>,
        placer: &Placer,
    ) -> ApiResult<u64> {
        let mut copied: HashMap<PointId, (u32, PointWrite)> = HashMap::new();
        let r = self.move_rounds(spec, centroids, from, ids, placer, &mut copied).await;
        if r.is_err() && !copied.is_empty() {
            let mut by_target: BTreeMap<u32, Vec<PointId>> = BTreeMap::new();
            for (id, (t, _)) in &copied {
                by_target.entry(*t).or_default().push(*id);
            }
            for (t, gone) in by_target {
                if let Err(e) = self.copy_to(spec, t, Vec::new(), gone, &mut copied, placer).await {
                    tracing::warn!(collection = %spec.name, shard = t, error = %e.message, "could not take back a failed move's copies");
                }
            }
        }
        r
    }

    /// [`Cluster::move_points`]' rounds; `copied` holds, when it fails, the copies it may still have to take back.
    async fn move_rounds(
        &self,
        spec: &CollectionSpec,
        centroids: &[Vec<f32>],
        from: u32,
        ids: Vec<PointId>,
        placer: &Placer,
        copied: &mut HashMap<PointId, (u32, PointWrite)>,
    ) -> ApiResult<u64> {
        let metric = spec.config.metric;
        let mut pending = ids;
        let mut moved = 0;
        for _ in 0..MOVE_ROUNDS {
            if pending.is_empty() {
                return Ok(moved);
            }
            let (_, current) = self.current_points(spec, from, &pending).await?;
            let mut movers: BTreeMap<u32, Vec<PointWrite>> = BTreeMap::new();
            for w in current {
                let t = route::nearest_shard(centroids, metric, &w.vector);
                if t != from {
                    movers.entry(t).or_default().push(w);
                }
            }
            // Copies made earlier in this move that are no longer wanted where they went (the point was deleted
            // or changed target meanwhile).
            let mut unwanted: BTreeMap<u32, Vec<PointId>> = BTreeMap::new();
            for (id, (t, _)) in copied.iter() {
                if !movers.get(t).is_some_and(|ws| ws.iter().any(|w| w.id == *id)) {
                    unwanted.entry(*t).or_default().push(*id);
                }
            }
            let targets: BTreeSet<u32> = movers.keys().chain(unwanted.keys()).copied().collect();
            let mut leaving: HashMap<PointId, PointWrite> = HashMap::new();
            for t in targets {
                let ws = movers.remove(&t).unwrap_or_default();
                let gone = unwanted.remove(&t).unwrap_or_default();
                leaving.extend(ws.iter().map(|w| (w.id, w.clone())));
                self.copy_to(spec, t, ws, gone, copied, placer).await?;
            }
            // Between the copies and the source's delete: a write that resolves per shard and overlaps this move
            // sees the counter change and runs again (see `write::planned_token`).
            if !leaving.is_empty() {
                self.leases.put(moves_key(&spec.name), Bytes::new()).await.map_err(|e| {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("could not count a move: {e}"))
                })?;
            }
            // Delete from the source what is still the version copied (or kept, where the target had a newer one);
            // a point changed or deleted meanwhile goes round again.
            let ids_leaving: Vec<PointId> = leaving.keys().copied().collect();
            let mut done: Vec<PointId> = Vec::new();
            let mut won = ids_leaving.is_empty();
            for attempt in 0..STEP_ATTEMPTS {
                if won {
                    break;
                }
                backoff(attempt).await;
                let (at, now) = self.current_points(spec, from, &ids_leaving).await?;
                let unchanged: Vec<PointId> =
                    now.iter().filter(|w| leaving.get(&w.id) == Some(*w)).map(|w| w.id).collect();
                if unchanged.is_empty() {
                    won = true;
                    break;
                }
                placer.check()?;
                match self.nats.append(spec, from, Operation::Delete(unchanged.clone()).encode(), Some(at)).await {
                    Ok(_) => {
                        done = unchanged;
                        won = true;
                    }
                    Err(quiver_cluster::Error::Conflict { .. }) => {}
                    Err(e) => return Err(cerr(e)),
                }
            }
            if !won {
                return Err(starved(spec, from));
            }
            moved += done.len() as u64;
            for id in &done {
                copied.remove(id);
            }
            // Still to do: points that changed or went while copied, and copies this move still answers for.
            let finished: std::collections::HashSet<PointId> = done.into_iter().collect();
            pending = ids_leaving
                .into_iter()
                .filter(|id| !finished.contains(id))
                .chain(copied.keys().copied())
                .collect::<BTreeSet<PointId>>()
                .into_iter()
                .collect();
        }
        Err(starved(spec, from))
    }

    /// Appends `ws` to shard `t` where it has no version of them or the one this move wrote, and deletes there
    /// the points of `gone` still as this move wrote them; keeps `copied` to what this move still answers for
    /// (a copy someone else overwrote or deleted is no longer this move's).
    async fn copy_to(
        &self,
        spec: &CollectionSpec,
        t: u32,
        ws: Vec<PointWrite>,
        gone: Vec<PointId>,
        copied: &mut HashMap<PointId, (u32, PointWrite)>,
        placer: &Placer,
    ) -> ApiResult<()> {
        let ask: Vec<PointId> = ws.iter().map(|w| w.id).chain(gone.iter().copied()).collect();
        for attempt in 0..STEP_ATTEMPTS {
            backoff(attempt).await;
            let (mut at, there) = self.current_points(spec, t, &ask).await?;
            let there: HashMap<PointId, PointWrite> = there.into_iter().map(|w| (w.id, w)).collect();
            let ours = |id: &PointId| copied.get(id).filter(|(ct, _)| *ct == t).map(|(_, w)| w);
            // Copies overwritten or deleted there by others are not this move's to take back.
            let forget: Vec<PointId> = ask
                .iter()
                .copied()
                .filter(|id| ours(id).is_some() && there.get(id).is_none_or(|v| Some(v) != ours(id)))
                .collect();
            for id in &forget {
                copied.remove(id);
            }
            let ours = |id: &PointId| copied.get(id).filter(|(ct, _)| *ct == t).map(|(_, w)| w);
            let writes: Vec<PointWrite> = ws
                .iter()
                .filter(|w| match there.get(&w.id) {
                    // Written there since by a client (not by this move): newer than the source's; kept.
                    Some(v) if Some(v) != ours(&w.id) => false,
                    Some(v) => v != *w,
                    None => true,
                })
                .cloned()
                .collect();
            let stale: Vec<PointId> =
                gone.iter().copied().filter(|id| there.get(id).is_some_and(|v| Some(v) == ours(id))).collect();
            if !writes.is_empty() {
                placer.check()?;
                match self.nats.append(spec, t, Operation::Upsert(writes.clone()).encode(), Some(at)).await {
                    Ok(seq) => {
                        at = seq;
                        for w in writes {
                            copied.insert(w.id, (t, w));
                        }
                    }
                    Err(quiver_cluster::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(cerr(e)),
                }
            }
            if !stale.is_empty() {
                placer.check()?;
                match self.nats.append(spec, t, Operation::Delete(stale.clone()).encode(), Some(at)).await {
                    Ok(_) => {
                        for id in &stale {
                            copied.remove(id);
                        }
                    }
                    Err(quiver_cluster::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(cerr(e)),
                }
            }
            return Ok(());
        }
        Err(starved(spec, t))
    }

    /// The coordinator's tick: trains collections that reached `train_after` points, and places those whose
    /// epoch is not placed yet (each in its own task, one at a time per collection; after a failure, not again
    /// for [`RETRY_AFTER`]).
    pub(super) async fn place_due(self: &Arc<Self>) {
        for spec in self.specs() {
            let Sharding::Centroid { centroids, train_after, epoch, placed } = &spec.sharding else { continue };
            let name = spec.name.clone();
            if self.placing.lock().contains(&name)
                || self.place_failed.lock().get(&name).is_some_and(|t| t.elapsed() < RETRY_AFTER)
            {
                continue;
            }
            let untrained = centroids.is_empty() && *train_after > 0;
            if !untrained && placed >= epoch {
                continue;
            }
            let (c, train_after) = (Arc::clone(self), *train_after);
            tokio::spawn(async move {
                if untrained {
                    let count = tokio::time::timeout(Duration::from_secs(2), super::read::count(&c, &spec, b"{}"));
                    let Ok(Ok(n)) = count.await else { return };
                    if n["count"].as_u64().unwrap_or(0) < train_after.max(u64::from(spec.shard_number)) {
                        return;
                    }
                }
                let Ok(placer) = c.placer(&name).await else { return };
                let r = async {
                    if untrained {
                        c.set_centroids(&name, None, true).await?;
                    }
                    c.place_now(&name, &placer).await
                }
                .await;
                if let Err(e) = r {
                    tracing::warn!(collection = %name, error = %e.message, "training or placing points failed; retrying later");
                    c.place_failed.lock().insert(name, std::time::Instant::now());
                }
            });
        }
    }
}

/// `new` reordered so that shard `s` gets the new centroid nearest its old one `old[s]` (greedy over all pairs,
/// nearest first; each centroid used once).
fn match_to(old: &[Vec<f32>], new: Vec<Vec<f32>>, metric: quiver_index::Metric) -> Vec<Vec<f32>> {
    let k = old.len();
    let mut pairs: Vec<(f32, usize, usize)> = Vec::with_capacity(k * k);
    for (i, o) in old.iter().enumerate() {
        for (j, n) in new.iter().enumerate() {
            pairs.push((metric.distance(o, n), i, j));
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut slot: Vec<Option<usize>> = vec![None; k];
    let mut used = vec![false; k];
    for (_, i, j) in pairs {
        if slot[i].is_none() && !used[j] {
            slot[i] = Some(j);
            used[j] = true;
        }
    }
    slot.into_iter().enumerate().map(|(i, j)| new[j.unwrap_or(i)].clone()).collect()
}

/// A shard reply's body when it succeeded; its error otherwise.
fn shard_body(spec: &CollectionSpec, shard: u32, r: ShardReply) -> ApiResult<Bytes> {
    if r.status.is_success() { Ok(r.body) } else { shard_result(spec, shard, r).map(|_| Bytes::new()) }
}

/// A short pause before retrying a lost compare-and-set: none at first, then growing to 20 ms.
async fn backoff(attempt: usize) {
    if attempt >= 4 {
        tokio::time::sleep(Duration::from_millis((attempt as u64 / 4).min(20))).await;
    }
}

fn starved(spec: &CollectionSpec, shard: u32) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "shard {shard} of {:?}: other writes kept landing first while moving points (nothing is lost; placement \
             goes on in the background)",
            spec.name
        ),
    )
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("collection {name:?} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::match_to;
    use quiver_index::Metric;

    #[test]
    fn retrained_centroids_keep_their_shards() {
        let old = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]];
        // The same clusters, numbered otherwise and moved a little.
        let new = vec![vec![0.5, 9.0], vec![0.2, 0.1], vec![9.5, 0.3]];
        let m = match_to(&old, new.clone(), Metric::Euclidean);
        assert_eq!(m, vec![new[1].clone(), new[2].clone(), new[0].clone()]);
        // Every new centroid is used once, whatever the distances.
        let far = vec![vec![100.0, 100.0], vec![100.0, 101.0], vec![101.0, 100.0]];
        let m = match_to(&old, far.clone(), Metric::Euclidean);
        let mut sorted = m.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut want = far;
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(sorted, want);
    }
}
