//! Shard snapshots in the JetStream object store, and the log truncation they allow.
//!
//! Each shard's *snapshotter* is the first live node among its serving replicas (assignment order). Every
//! `--snapshot-interval` it archives its local replica (the engine's consistent snapshot), stores the archive as
//! the object named after the shard's stream in the `quiver-snapshots` bucket (replacing the previous one only
//! once whole), deletes the local archive, and truncates the shard's log up to the lowest of the snapshot's
//! sequence number and every reachable holder's applied one. So the log holds what a replica that is running
//! still needs, and a new or far-behind replica restores the snapshot and replays only what follows it (see
//! `quiver_cluster::replica`). `POST /cluster/snapshot` takes one of every shard now.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use quiver_cluster::{CollectionSpec, NodeId};
use serde_json::{Value, json};

use super::{Cluster, LocalShard, ShardReply};
use crate::error::{ApiError, ApiResult};

impl Cluster {
    /// The node that snapshots shard `s` now: the first live serving replica.
    pub fn snapshotter(&self, spec: &CollectionSpec, s: u32) -> Option<NodeId> {
        spec.replicas[s as usize].iter().copied().find(|&n| self.is_live(n))
    }

    /// Snapshots every shard this node is the snapshotter of whose interval has passed and that has new entries.
    pub(super) async fn snapshot_due(&self) {
        for spec in self.specs() {
            for s in 0..spec.shard_number {
                if self.snapshotter(&spec, s) != Some(self.node_id) {
                    continue;
                }
                let name = spec.shard_collection(s);
                let Ok(col) = self.db.collection(&name) else { continue };
                let last = self.snapshot_state.lock().get(&name).copied();
                let last = match last {
                    Some(l) => l,
                    None => {
                        // First look since start: what the store holds.
                        let seq = match self.nats.snapshot_info(&spec, s).await {
                            Ok(i) => i.map_or(0, |i| i.applied_seq),
                            Err(_) => continue,
                        };
                        let l = (Instant::now(), seq);
                        self.snapshot_state.lock().insert(name.clone(), l);
                        l
                    }
                };
                if last.0.elapsed() < self.snapshot_interval || col.applied_seq() <= last.1 {
                    continue;
                }
                // Not while a node is copying the shard: replacing the object under its download would stall it
                // (the old object's chunks go), and truncating the log could take entries it still needs.
                if !spec.joining_of(s).is_empty() {
                    continue;
                }
                if let Err(e) = self.snapshot_shard(&spec, s).await {
                    tracing::warn!(shard = %name, error = %e.message, "shard snapshot failed");
                    self.snapshot_state.lock().insert(name, (Instant::now(), last.1));
                }
            }
        }
    }

    /// Archives this node's replica of shard `s`, stores it, and truncates the log below what every reachable
    /// holder has applied. Answers what it did.
    pub async fn snapshot_shard(&self, spec: &Arc<CollectionSpec>, s: u32) -> ApiResult<Value> {
        let name = spec.shard_collection(s);
        let t = Instant::now();
        let db = Arc::clone(&self.db);
        let n = name.clone();
        let (info, path) = crate::state::blocking(move || {
            let info = db.create_snapshot(&n)?;
            let path = db.snapshot_path(&n, &info.name)?;
            Ok((info, path))
        })
        .await?;
        let seq = info.applied_seq.unwrap_or(0);
        let stored = self.nats.put_snapshot(spec, s, seq, self.node_id, &path).await;
        let db = Arc::clone(&self.db);
        let (n, archive) = (name.clone(), info.name.clone());
        let _ = crate::state::blocking(move || Ok(db.delete_snapshot(&n, &archive)?)).await;
        let size = stored.map_err(ApiError::from)?;
        self.snapshot_state.lock().insert(name.clone(), (Instant::now(), seq));
        // Truncate below what every holder that answers has applied (one that does not will restore).
        let mut keep = seq;
        let holders: Vec<NodeId> =
            spec.replicas[s as usize].iter().copied().chain(spec.joining_of(s).iter().map(|j| j.node)).collect();
        for node in holders {
            if node == self.node_id || !self.is_live(node) {
                continue;
            }
            // Straight over NATS (never this node: `call` would lead back into `local`, which called us).
            let req = quiver_cluster::RpcRequest {
                method: "GET".into(),
                path: "/internal/status".into(),
                body: bytes::Bytes::new(),
            };
            let r = self.nats.call(node, req, Duration::from_secs(3)).await;
            if let Ok(r) = r
                && r.status == 200
                && let Ok(list) = serde_json::from_slice::<Vec<LocalShard>>(&r.body)
            {
                // A holder that has not opened the shard yet starts from the snapshot anyway.
                if let Some(l) = list.iter().find(|l| l.collection == name) {
                    keep = keep.min(l.applied_seq);
                }
            }
        }
        if keep > 0 {
            self.nats.truncate_log(spec, s, keep).await.map_err(ApiError::from)?;
        }
        tracing::info!(shard = %name, applied = seq, size, truncated_to = keep, took = ?t.elapsed(), "shard snapshot stored");
        Ok(json!({
            "collection": spec.name, "shard": s, "node": self.node_id, "applied_seq": seq, "size_bytes": size,
            "log_truncated_through": keep,
        }))
    }

    /// `POST /internal/snapshot/{collection}/{shard}` from another node.
    pub(super) async fn snapshot_rpc(&self, rest: &str) -> ShardReply {
        let r = async {
            let (name, shard) = rest
                .rsplit_once('/')
                .and_then(|(n, s)| Some((n, s.parse::<u32>().ok()?)))
                .ok_or_else(|| ApiError::bad_request("expected /internal/snapshot/{collection}/{shard}"))?;
            let spec = self.spec(name)?;
            if shard >= spec.shard_number || !spec.shards_of(self.node_id).contains(&shard) {
                return Err(ApiError::bad_request(format!("this node does not serve shard {shard} of {name:?}")));
            }
            self.snapshot_shard(&spec, shard).await
        }
        .await;
        match r {
            Ok(v) => ShardReply { status: StatusCode::OK, body: serde_json::to_vec(&v).unwrap_or_default().into() },
            Err(e) => ShardReply {
                status: e.status,
                body: serde_json::to_vec(&json!({"status": {"error": e.message}})).unwrap_or_default().into(),
            },
        }
    }

    /// `POST /cluster/snapshot`: a snapshot of every shard now, each taken by its snapshotter.
    pub async fn snapshot_all(&self) -> ApiResult<Value> {
        let mut out = Vec::new();
        for spec in self.specs() {
            for s in 0..spec.shard_number {
                let Some(node) = self.snapshotter(&spec, s) else {
                    out.push(json!({"collection": spec.name, "shard": s, "error": "no live replica"}));
                    continue;
                };
                let path = format!("/internal/snapshot/{}/{s}", spec.name);
                match self.call(node, "POST", &path, bytes::Bytes::new()).await {
                    Ok(r) if r.status.is_success() => {
                        out.push(serde_json::from_slice(&r.body).unwrap_or(Value::Null));
                    }
                    Ok(r) => out.push(json!({"collection": spec.name, "shard": s, "node": node,
                        "error": String::from_utf8_lossy(&r.body)})),
                    Err(e) => out.push(json!({"collection": spec.name, "shard": s, "node": node, "error": e.message})),
                }
            }
        }
        Ok(json!({"snapshots": out}))
    }
}
