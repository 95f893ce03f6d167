//! Liveness, failover and rebalancing on a node.
//!
//! - **Leases**: every node renews `lease.<id>` in the `quiver-leases` KV bucket every quarter of the lease TTL;
//!   the bucket's entries expire after the TTL. Every node watches the bucket and counts a member live while it
//!   has seen a renewal within the TTL (by its own monotonic clock: no clock agreement is needed).
//! - **Coordinator**: once a second the live node with the lowest id (after it has itself been up one TTL, so it
//!   has heard every live member) runs [`quiver_cluster::plan::plan`] over every collection read fresh from the
//!   map, and writes each changed spec back at the revision it read (so a racing coordinator's write makes this
//!   one a no-op, not a conflict of decisions).
//! - **Joiners**: a node listed as joining a shard opens it and replays its log (see `sync_local`); once a
//!   second it checks its lag behind the log and promotes itself when it is at most [`PROMOTE_LAG`] entries
//!   behind — or, under a write load that never lets it get that close, once it has applied everything the log
//!   held at the previous tick (it keeps pace with the writers, one tick behind at most). Either way it keeps
//!   applying the log after, and a read carrying a read token waits on it for the entries it names, so
//!   promoting a replica a second's writes behind costs such a read a moment, never a write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use quiver_cluster::NodeId;
use quiver_cluster::plan::{Members, plan};
use serde_json::{Value, json};

use super::{Cluster, now_ms};
use crate::error::{ApiError, ApiResult};

/// Most log entries a joiner may still have to apply when it starts serving.
pub const PROMOTE_LAG: u64 = 16;
/// How often the coordinator plans and joiners check their lag.
const TICK: Duration = Duration::from_secs(1);
const LEASE_PREFIX: &str = "lease.";

impl Cluster {
    /// True when node `n` renewed its lease within the TTL (this node always is).
    pub fn is_live(&self, n: NodeId) -> bool {
        n == self.node_id || self.seen.read().get(&n).is_some_and(|t| t.elapsed() < self.lease_ttl)
    }

    /// The live members and those being drained.
    pub fn members(&self) -> Members {
        let mut live: std::collections::BTreeSet<NodeId> =
            self.seen.read().iter().filter(|(_, t)| t.elapsed() < self.lease_ttl).map(|(n, _)| *n).collect();
        live.insert(self.node_id);
        let draining = self.nodes.read().values().filter(|n| n.draining).map(|n| n.id).collect();
        Members { live, draining }
    }

    /// The lease TTL in force.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// Starts renewing this node's lease, watching the others', and the supervision loop.
    pub(super) fn start_supervision(self: &Arc<Self>) {
        let c = Arc::clone(self);
        tokio::spawn(async move {
            let key = format!("{LEASE_PREFIX}{}", c.node_id);
            let mut every = tokio::time::interval(c.lease_ttl / 4);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = c.leases.put(&key, now_ms().to_string().into()).await {
                    tracing::warn!(error = %e, "could not renew this node's lease");
                }
            }
        });
        let c = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match c.leases.watch_with_history(">").await {
                    Ok(mut w) => {
                        // Every node renews four times per TTL, this one included: a watch silent for half a TTL
                        // has stalled (its NATS server went away) and is made again.
                        let quiet = c.lease_ttl / 2;
                        while let Ok(Some(e)) = tokio::time::timeout(quiet, w.next()).await {
                            let Ok(e) = e else { break };
                            let Some(id) = e.key.strip_prefix(LEASE_PREFIX).and_then(|i| i.parse::<NodeId>().ok())
                            else {
                                continue;
                            };
                            if matches!(e.operation, async_nats::jetstream::kv::Operation::Put) {
                                c.seen.write().insert(id, Instant::now());
                            } else {
                                c.seen.write().remove(&id);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot watch the leases yet"),
                }
                tokio::time::sleep(TICK).await;
            }
        });
        let c = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ticks: u64 = 0;
            loop {
                every.tick().await;
                ticks += 1;
                // A watch can stall without an error: every 10 s the map is read whole too.
                if ticks.is_multiple_of(10) {
                    c.resync().await;
                }
                // Only a node whose view of the leases is current (it saw its own renewal within half a TTL)
                // coordinates: one with a stalled watch would take live nodes for dead.
                let current = c.seen.read().get(&c.node_id).is_some_and(|t| t.elapsed() < c.lease_ttl / 2);
                if current && c.started.elapsed() >= c.lease_ttl && c.members().live.first() == Some(&c.node_id) {
                    c.plan_all(true).await;
                    c.place_due().await;
                }
                c.promote_joins().await;
            }
        });
        // Snapshots on their own loop: storing one can take long (a large shard, a busy NATS server), and it must
        // not hold up planning or a joiner's promotion (it once stalled a failover for minutes).
        let c = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                c.snapshot_due().await;
            }
        });
    }

    /// Plans every collection against the current members and writes the changes; returns what changed.
    pub async fn plan_all(&self, balance: bool) -> Vec<Value> {
        let members = self.members();
        let mut changed = Vec::new();
        for spec in self.specs() {
            let cur = match self.map.collection(&spec.name).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(collection = %spec.name, error = %e, "cannot read the map to plan");
                    continue;
                }
            };
            let Some(next) = plan(&cur.value, &members, balance, now_ms()) else { continue };
            match self.map.update_collection(&next, cur.revision).await {
                Ok(rev) => {
                    let moves: Vec<Value> = (0..next.shard_number)
                        .flat_map(|s| {
                            next.joining_of(s)
                                .iter()
                                .filter(|j| !cur.value.joining_of(s).contains(j))
                                .map(move |j| json!({"shard": s, "node": j.node, "replaces": j.replaces}))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    if moves.is_empty() {
                        tracing::info!(collection = %next.name, "shard map: moves that can no longer finish dropped");
                    } else {
                        tracing::info!(collection = %next.name, moves = %serde_json::Value::Array(moves.clone()), "shard map: replicas to copy");
                    }
                    changed.push(json!({"collection": next.name, "moves": moves}));
                    if self.newer(&next.name, rev) {
                        self.learn(Arc::new(next)).await;
                    }
                }
                Err(e) => tracing::debug!(collection = %spec.name, error = %e, "plan not written (the map changed)"),
            }
        }
        changed
    }

    /// Promotes this node on every shard it has copied once [`ready_to_serve`] says its lag allows.
    async fn promote_joins(&self) {
        let mut copying = std::collections::HashSet::new();
        for spec in self.specs() {
            for s in 0..spec.shard_number {
                if !spec.joining_of(s).iter().any(|j| j.node == self.node_id) {
                    continue;
                }
                copying.insert((spec.name.clone(), s));
                let Ok(col) = self.db.collection(&spec.shard_collection(s)) else { continue };
                let Ok(last) = self.nats.last_seq(&spec, s).await else { continue };
                let applied = col.applied_seq();
                let lag = last.saturating_sub(applied);
                let ready = {
                    let mut lags = self.join_lags.lock();
                    let (ticks, before) = lags.entry((spec.name.clone(), s)).or_default();
                    let ready = ready_to_serve((*ticks > 0).then_some(*before), applied, last);
                    *ticks += 1;
                    *before = last;
                    if ticks.is_multiple_of(5) && !ready {
                        tracing::info!(collection = %spec.name, shard = s, applied, last, lag, ticks = *ticks, "copying a shard");
                    }
                    ready
                };
                if !ready {
                    continue;
                }
                let Ok(Some(cur)) = self.map.collection(&spec.name).await else { continue };
                if cur.value.uid != spec.uid {
                    continue;
                }
                let Some(next) = cur.value.promote(s, self.node_id) else { continue };
                match self.map.update_collection(&next, cur.revision).await {
                    Ok(rev) => {
                        tracing::info!(collection = %spec.name, shard = s, applied, last, lag, "serving a copied shard");
                        if self.newer(&next.name, rev) {
                            self.learn(Arc::new(next)).await;
                        }
                    }
                    Err(e) => tracing::debug!(collection = %spec.name, shard = s, error = %e, "promotion not written"),
                }
            }
        }
        self.join_lags.lock().retain(|k, _| copying.contains(k));
    }

    /// Marks node `id` as draining (or not): the coordinator then moves its replicas away and gives it no new ones.
    pub async fn set_draining(&self, id: NodeId, draining: bool) -> ApiResult<Value> {
        let Some(mut info) = self.map.nodes().await.map_err(ApiError::from)?.remove(&id) else {
            return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("node {id} is not a member")));
        };
        info.draining = draining;
        self.map.put_node(&info).await.map_err(ApiError::from)?;
        self.nodes.write().insert(id, info);
        let held: usize = self.specs().iter().map(|s| s.held_by(id).len()).sum();
        Ok(json!({"node": id, "draining": draining, "replicas_held": held}))
    }

    /// Removes a member that is gone and holds no replica from the member list.
    pub async fn forget_node(&self, id: NodeId) -> ApiResult<Value> {
        if self.is_live(id) {
            return Err(ApiError::bad_request(format!(
                "node {id} is live: drain it, stop it, and remove it once its lease has lapsed"
            )));
        }
        let held: usize = self.specs().iter().map(|s| s.held_by(id).len()).sum();
        if held > 0 {
            return Err(ApiError::bad_request(format!(
                "node {id} still holds {held} replicas in the shard map: drain it first (POST /cluster/nodes/{id}/drain)"
            )));
        }
        let key = quiver_cluster::map::node_key(id);
        use quiver_cluster::map::MapStore as _;
        let Some(v) = self.map.store().get(&key).await.map_err(ApiError::from)? else {
            return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("node {id} is not a member")));
        };
        self.map.store().delete(&key, v.revision).await.map_err(ApiError::from)?;
        self.nodes.write().remove(&id);
        Ok(json!({"node": id, "removed": true}))
    }
}

/// Whether a joiner that has applied the log up to `applied`, now that the log ends at `last` (and ended at
/// `before` at the previous tick, if it was seen then), may start serving: when it is within [`PROMOTE_LAG`]
/// entries of the end, or when it has applied all that the log held a tick ago — it keeps pace with the writers,
/// however fast they append. A joiner still replaying a backlog longer than a tick's writes waits.
pub fn ready_to_serve(before: Option<u64>, applied: u64, last: u64) -> bool {
    last.saturating_sub(applied) <= PROMOTE_LAG || before.is_some_and(|b| applied >= b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joiner_close_to_the_end_serves_at_once() {
        assert!(ready_to_serve(None, 100 - PROMOTE_LAG, 100));
        assert!(ready_to_serve(None, 0, 0));
        assert!(!ready_to_serve(None, 99 - PROMOTE_LAG, 100));
    }

    #[test]
    fn a_joiner_replaying_a_backlog_waits() {
        // The log ended at 5,000 a tick ago; 3,000 entries applied since: still behind where it was.
        assert!(!ready_to_serve(Some(5_000), 4_000, 5_400));
        assert!(!ready_to_serve(Some(5_000), 4_999, 5_400));
    }

    #[test]
    fn a_joiner_that_keeps_pace_serves_though_never_within_the_bound() {
        // Writers appended 400 entries over the tick; the joiner applied past where the log was.
        assert!(ready_to_serve(Some(5_000), 5_000, 5_400));
        assert!(ready_to_serve(Some(5_000), 5_350, 5_400));
    }
}
