//! Failover and rebalancing, decided as a pure function of one collection's spec and the members' state.
//!
//! The cluster's *coordinator* (the live node with the lowest id; any node may do it, the map's compare-and-set
//! keeps two from both winning) runs [`plan`] for every collection on each tick and writes the result back at the
//! revision it read. Nothing moves data here: a decision only adds [`Join`]s — "node N copies shard s (and takes
//! the place of replica R once it has caught up)". The joining node opens the shard, restores and replays its log,
//! and promotes itself ([`CollectionSpec::promote`]) when its lag is small, which drops the replica it replaces in
//! the same write. So a shard is never served by fewer nodes than before a move, and a dead replica is only
//! dropped once its replacement serves.
//!
//! Per shard, in order:
//! 1. joiners that are no longer live (or now drain) are dropped;
//! 2. each serving replica that is dead or draining gets a replacement joiner (if none replaces it yet and an
//!    eligible node — live, not draining, not holding the shard — exists);
//! 3. a shard with fewer than `replication_factor` replicas (counting joiners that replace no one) gets joiners;
//! 4. with `balance`, and no move in flight anywhere in the collection, replicas move from the most to the least
//!    loaded eligible nodes until their loads differ by at most one.

use std::collections::{BTreeMap, BTreeSet};

use crate::map::{CollectionSpec, Join, NodeId};

/// What [`plan`] knows of the members.
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// Nodes whose lease is current.
    pub live: BTreeSet<NodeId>,
    /// Nodes being drained.
    pub draining: BTreeSet<NodeId>,
}

impl Members {
    /// Live and not draining: may receive replicas.
    pub fn eligible(&self, n: NodeId) -> bool {
        self.live.contains(&n) && !self.draining.contains(&n)
    }
}

/// The spec `spec` should become, or `None` when nothing needs to change.
pub fn plan(spec: &CollectionSpec, members: &Members, balance: bool, now_ms: u64) -> Option<CollectionSpec> {
    let mut next = spec.clone();
    if next.joining.is_empty() {
        next.joining = vec![Vec::new(); spec.shard_number as usize];
    }
    // Load of a node in this collection: the shards it serves or copies.
    let mut load: BTreeMap<NodeId, usize> =
        members.live.iter().filter(|n| members.eligible(**n)).map(|&n| (n, 0)).collect();
    for s in 0..spec.shard_number as usize {
        for n in next.replicas[s].iter().chain(next.joining[s].iter().map(|j| &j.node)) {
            if let Some(l) = load.get_mut(n) {
                *l += 1;
            }
        }
    }
    let pick = |load: &BTreeMap<NodeId, usize>, holders: &[NodeId]| -> Option<NodeId> {
        load.iter().filter(|(n, _)| !holders.contains(n)).min_by_key(|(n, l)| (**l, **n)).map(|(n, _)| *n)
    };
    for s in 0..spec.shard_number as usize {
        // 1. Joiners that cannot finish.
        next.joining[s].retain(|j| members.eligible(j.node));
        // 2. Replace dead or draining replicas.
        let leaving: Vec<NodeId> = next.replicas[s].iter().copied().filter(|&n| !members.eligible(n)).collect();
        for old in leaving {
            if next.joining[s].iter().any(|j| j.replaces == Some(old)) {
                continue;
            }
            let holders = holders(&next, s);
            if let Some(n) = pick(&load, &holders) {
                next.joining[s].push(Join { node: n, replaces: Some(old), since_ms: now_ms });
                *load.entry(n).or_default() += 1;
            }
        }
        // 3. Under-replicated shards (a replica lost without replacement, or a collection created on fewer nodes).
        loop {
            let have = next.replicas[s].len() + next.joining[s].iter().filter(|j| j.replaces.is_none()).count();
            if have >= spec.replication_factor as usize {
                break;
            }
            let holders = holders(&next, s);
            let Some(n) = pick(&load, &holders) else { break };
            next.joining[s].push(Join { node: n, replaces: None, since_ms: now_ms });
            *load.entry(n).or_default() += 1;
        }
    }
    // 4. Even out the loads, one wave at a time.
    let in_flight = next.joining.iter().any(|j| !j.is_empty());
    if balance && !in_flight && load.len() > 1 {
        while let (Some((&max_n, &max_l)), Some((&min_n, &min_l))) = (
            load.iter().max_by_key(|(n, l)| (**l, std::cmp::Reverse(**n))),
            load.iter().min_by_key(|(n, l)| (**l, **n)),
        ) {
            if max_l <= min_l + 1 {
                break;
            }
            // A shard the busiest node serves, the idlest does not hold, and no move touches yet.
            let shard = (0..spec.shard_number as usize).find(|&s| {
                next.replicas[s].contains(&max_n) && !holders(&next, s).contains(&min_n) && next.joining[s].is_empty()
            });
            let Some(s) = shard else { break };
            next.joining[s].push(Join { node: min_n, replaces: Some(max_n), since_ms: now_ms });
            load.insert(max_n, max_l - 1);
            load.insert(min_n, min_l + 1);
        }
    }
    if !next.moving() {
        next.joining.clear();
    }
    (next != *spec).then_some(next)
}

fn holders(spec: &CollectionSpec, s: usize) -> Vec<NodeId> {
    spec.replicas[s].iter().copied().chain(spec.joining_of(s as u32).iter().map(|j| j.node)).collect()
}
