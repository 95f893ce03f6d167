//! The shard map's transitions and the routing functions, without NATS (an in-memory store with the same
//! compare-and-set rules as JetStream KV).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use quiver_cluster::Error;
use quiver_cluster::map::{CollectionSpec, MapStore, MemStore, NodeInfo, ShardMap, Sharding, assign_replicas};
use quiver_cluster::plan;
use quiver_cluster::route::{
    nearest_centroids, nearest_shard, shard_for_id, shard_for_point, shard_for_value, shards_to_search,
};
use quiver_engine::{CollectionConfig, PointId, PointInput};
use quiver_index::Metric;
use serde_json::json;

fn spec(name: &str, shards: u32, rf: u32, sharding: Sharding) -> CollectionSpec {
    let nodes = [1, 2, 3];
    CollectionSpec {
        name: name.into(),
        uid: 7,
        config: CollectionConfig::new(2, Metric::Euclidean),
        shard_number: shards,
        replication_factor: rf,
        sharding,
        replicas: assign_replicas(&nodes, shards, rf).unwrap(),
        joining: Vec::new(),
        created_ms: 0,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

#[test]
fn replicas_are_distinct_and_spread_evenly() {
    let r = assign_replicas(&[3, 1, 2, 2], 6, 2).unwrap();
    assert_eq!(r.len(), 6);
    let mut primaries: BTreeMap<u32, usize> = BTreeMap::new();
    let mut all: BTreeMap<u32, usize> = BTreeMap::new();
    for shard in &r {
        assert_eq!(shard.len(), 2);
        assert_ne!(shard[0], shard[1], "{r:?}");
        *primaries.entry(shard[0]).or_default() += 1;
        for n in shard {
            *all.entry(*n).or_default() += 1;
        }
    }
    assert_eq!(primaries.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    assert_eq!(all.values().copied().collect::<Vec<_>>(), vec![4, 4, 4]);
    let e = assign_replicas(&[1, 2], 1, 3).unwrap_err().to_string();
    assert!(e.contains("replication_factor") && e.contains("(2)") && e.contains("got 3"), "{e}");
}

#[test]
fn specs_are_validated_with_the_field_named() {
    let mut s = spec("docs", 2, 1, Sharding::Hash);
    s.validate().unwrap();
    s.shard_number = 0;
    assert!(s.validate().unwrap_err().to_string().contains("shard_number"));
    let s = spec("docs", 2, 1, centroid(vec![vec![0.0, 1.0]]));
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("sharding.centroids") && e.contains("1 centroids"), "{e}");
    let s = spec("docs", 2, 1, centroid(vec![vec![0.0, 1.0], vec![1.0]]));
    assert!(s.validate().unwrap_err().to_string().contains("sharding.centroids[1]"));
    // No centroids yet (trained later) is valid.
    spec("docs", 2, 1, centroid(Vec::new())).validate().unwrap();
    let s = spec("docs", 1, 1, Sharding::PayloadKey { key: "a..b".into() });
    assert!(s.validate().unwrap_err().to_string().contains("sharding.key"));
    let long = "x".repeat(62);
    let e = spec(&long, 10, 1, Sharding::Hash).validate().unwrap_err().to_string();
    assert!(e.contains("collection name") && e.contains("at most 61"), "{e}");
}

#[test]
fn create_is_decided_by_the_store_and_updates_need_the_revision_read() {
    block_on(async {
        let map = ShardMap::new(MemStore::default());
        let a = spec("docs", 3, 2, Sharding::Hash);
        let rev = map.create_collection(&a).await.unwrap();
        // A second create of the same name loses, whatever it holds.
        let mut b = a.clone();
        b.uid = 8;
        assert!(matches!(map.create_collection(&b).await, Err(Error::AlreadyExists { .. })));
        assert_eq!(map.collection("docs").await.unwrap().unwrap().value.uid, 7);
        // Two nodes read the same revision; the first update wins, the second must read again.
        let mut c1 = a.clone();
        c1.sharding = Sharding::Hash;
        c1.replicas[0] = vec![3, 1];
        let rev2 = map.update_collection(&c1, rev).await.unwrap();
        assert!(rev2 > rev);
        let mut c2 = a.clone();
        c2.replicas[0] = vec![2, 3];
        assert!(matches!(map.update_collection(&c2, rev).await, Err(Error::Conflict { .. })));
        assert_eq!(map.collection("docs").await.unwrap().unwrap().value.replicas[0], vec![3, 1]);
        // A collection dropped and created again is not updated through a spec of the old one.
        map.drop_collection("docs", rev2).await.unwrap();
        let mut again = a.clone();
        again.uid = 9;
        let rev3 = map.create_collection(&again).await.unwrap();
        assert!(matches!(map.update_collection(&c1, rev3).await, Err(Error::Conflict { .. })));
        // A stale drop fails.
        assert!(matches!(map.drop_collection("docs", rev2).await, Err(Error::Conflict { .. })));
        // Invalid specs never reach the store.
        let mut bad = a.clone();
        bad.name = "other".into();
        bad.replication_factor = 0;
        assert!(map.create_collection(&bad).await.is_err());
        assert!(map.store().get("collections.other").await.unwrap().is_none());
        // Nodes.
        map.put_node(&NodeInfo { id: 2, url: "http://b".into(), started_ms: 1, draining: false }).await.unwrap();
        map.put_node(&NodeInfo { id: 1, url: "http://a".into(), started_ms: 1, draining: false }).await.unwrap();
        map.put_node(&NodeInfo { id: 1, url: "http://a2".into(), started_ms: 2, draining: false }).await.unwrap();
        let nodes = map.nodes().await.unwrap();
        assert_eq!(nodes.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(nodes[&1].url, "http://a2");
        assert_eq!(map.collections().await.unwrap().len(), 1);
    });
}

#[test]
fn ids_hash_evenly_and_stably() {
    let n = 4;
    let mut counts = [0usize; 4];
    for i in 0..40_000u64 {
        counts[shard_for_id(&PointId::Num(i), n) as usize] += 1;
    }
    for c in counts {
        assert!((9_000..11_000).contains(&c), "{counts:?}");
    }
    // Fixed values: a point written through one build must be found through the next.
    let fixed: Vec<u32> = (0..8u64).map(|i| shard_for_id(&PointId::Num(i), 4)).collect();
    assert_eq!(fixed, (0..8u64).map(|i| shard_for_id(&PointId::Num(i), 4)).collect::<Vec<_>>());
    assert_eq!(shard_for_id(&PointId::Num(0), 1), 0);
    let u = PointId::Uuid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    assert!(shard_for_id(&u, 3) < 3);
}

#[test]
fn payload_values_route_together() {
    assert_eq!(shard_for_value(&json!("acme"), 8), shard_for_value(&json!("acme"), 8));
    assert_eq!(shard_for_value(&json!(3), 8), shard_for_value(&json!(3.0), 8));
    assert_eq!(shard_for_value(&json!({"a": 1}), 8), None);
    assert_eq!(shard_for_value(&json!(1.5), 8), None);
    let s = spec("t", 4, 1, Sharding::PayloadKey { key: "org.id".into() });
    let mut p = PointInput::new(1u64, vec![0.0, 0.0]);
    let e = shard_for_point(&s, &p, &[0.0, 0.0], "points[0]").unwrap_err().to_string();
    assert!(e.contains("points[0].payload.org.id"), "{e}");
    p.payload = Some(serde_json::from_value(json!({"org": {"id": "acme"}})).unwrap());
    let a = shard_for_point(&s, &p, &[0.0, 0.0], "points[0]").unwrap();
    p.id = 99u64.into();
    assert_eq!(shard_for_point(&s, &p, &[0.0, 0.0], "points[0]").unwrap(), a);
}

#[test]
fn centroids_pick_the_nearest_shards() {
    let c = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]];
    assert_eq!(nearest_centroids(&c, Metric::Euclidean, &[9.0, 1.0]), vec![1, 0, 2]);
    let s = spec("c", 3, 1, centroid(c.clone()));
    let p = PointInput::new(5u64, vec![1.0, 9.0]);
    assert_eq!(shard_for_point(&s, &p, &p.vector, "points[0]").unwrap(), 2);
    assert_eq!(shards_to_search(&s, Some(&[9.0, 1.0]), Some(2)).unwrap(), vec![1, 0]);
    assert_eq!(shards_to_search(&s, Some(&[9.0, 1.0]), None).unwrap(), vec![0, 1, 2]);
    assert_eq!(shards_to_search(&s, Some(&[9.0, 1.0]), Some(9)).unwrap(), vec![0, 1, 2]);
    assert!(shards_to_search(&s, Some(&[9.0, 1.0]), Some(0)).unwrap_err().to_string().contains("shards_to_search"));
    // Other sharding methods always probe every shard.
    let h = spec("h", 3, 1, Sharding::Hash);
    assert_eq!(shards_to_search(&h, Some(&[9.0, 1.0]), Some(1)).unwrap(), vec![0, 1, 2]);
    // While the points of a new epoch are still moving, every shard is probed.
    let moving = spec("m", 3, 1, Sharding::Centroid { centroids: c, train_after: 10, epoch: 2, placed: 1 });
    assert_eq!(shards_to_search(&moving, Some(&[9.0, 1.0]), Some(1)).unwrap(), vec![0, 1, 2]);
    assert_eq!(shard_for_point(&moving, &p, &p.vector, "points[0]").unwrap(), 2);
    assert!(moving.sharding.moving() && !s.sharding.moving() && !centroid(Vec::new()).moving());
    // Untrained: by id (the hash's shard), and every shard probed.
    let untrained = spec("u", 3, 1, centroid(Vec::new()));
    assert_eq!(shard_for_point(&untrained, &p, &p.vector, "points[0]").unwrap(), shard_for_id(&p.id, 3));
    assert_eq!(shards_to_search(&untrained, Some(&[9.0, 1.0]), Some(1)).unwrap(), vec![0, 1, 2]);
}

#[test]
fn nearest_shard_agrees_with_the_centroid_order() {
    let c: Vec<Vec<f32>> = (0..7).map(|i| vec![(i as f32).sin(), (i as f32).cos(), 0.5]).collect();
    for m in [Metric::Euclidean, Metric::Cosine, Metric::Dot] {
        for j in 0..50 {
            let v = [(j as f32 * 0.37).cos(), (j as f32 * 0.11).sin(), 0.2];
            assert_eq!(nearest_shard(&c, m, &v), nearest_centroids(&c, m, &v)[0], "{m:?} {v:?}");
        }
    }
    // Ties go to the lower shard, as in the ordering.
    assert_eq!(nearest_shard(&[vec![1.0, 0.0], vec![1.0, 0.0]], Metric::Euclidean, &[0.0, 1.0]), 0);
}

/// Centroid sharding with the given centroids, as created with them (epoch 1, placed).
fn centroid(centroids: Vec<Vec<f32>>) -> Sharding {
    let epoch = u64::from(!centroids.is_empty());
    Sharding::Centroid { centroids, train_after: 1000, epoch, placed: epoch }
}

fn members(live: &[u32], draining: &[u32]) -> plan::Members {
    plan::Members { live: live.iter().copied().collect(), draining: draining.iter().copied().collect() }
}

/// Runs the plan and lets every joiner promote itself, until nothing changes.
fn settle(mut s: CollectionSpec, m: &plan::Members) -> CollectionSpec {
    for _ in 0..50 {
        match plan::plan(&s, m, true, 1) {
            Some(next) => {
                next.validate().unwrap();
                s = next;
            }
            None if !s.moving() => return s,
            None => {}
        }
        let joins: Vec<(u32, u32)> = (0..s.shard_number)
            .flat_map(|sh| s.joining_of(sh).iter().map(move |j| (sh, j.node)).collect::<Vec<_>>())
            .collect();
        for (sh, n) in joins {
            s = s.promote(sh, n).unwrap();
            s.validate().unwrap();
        }
    }
    panic!("the plan did not settle: {s:?}");
}

#[test]
fn a_dead_replica_is_replaced_and_dropped_only_when_its_replacement_serves() {
    // 4 nodes, 4 shards x 2; node 4 holds nothing yet.
    let mut s = spec("docs", 4, 2, Sharding::Hash);
    assert!(plan::plan(&s, &members(&[1, 2, 3], &[]), true, 1).is_none(), "a healthy cluster needs nothing");
    let m = members(&[1, 2, 4], &[]);
    let next = plan::plan(&s, &m, true, 1).unwrap();
    next.validate().unwrap();
    for sh in 0..4 {
        let dead_here = s.replicas[sh as usize].contains(&3);
        let j = next.joining_of(sh);
        assert_eq!(j.len(), usize::from(dead_here), "shard {sh}: {j:?}");
        if dead_here {
            assert_eq!(j[0].replaces, Some(3));
            assert!(next.replicas[sh as usize].contains(&3), "kept until the joiner serves");
            assert!(!next.replicas[sh as usize].contains(&j[0].node));
        }
    }
    // Planning again while the moves are in flight changes nothing.
    assert!(plan::plan(&next, &m, true, 1).is_none());
    s = settle(next, &m);
    for sh in 0..4 {
        let r = &s.replicas[sh as usize];
        assert_eq!(r.len(), 2);
        assert!(!r.contains(&3), "{r:?}");
    }
    // Loads even: 8 replicas over 3 nodes.
    let loads: Vec<usize> = [1, 2, 4].iter().map(|&n| s.shards_of(n).len()).collect();
    assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1, "{loads:?}");
}

#[test]
fn a_joining_node_gets_replicas_and_a_draining_one_loses_all() {
    let s = spec("docs", 6, 2, Sharding::Hash);
    let s = settle(s, &members(&[1, 2, 3, 4], &[]));
    let loads: Vec<usize> = [1, 2, 3, 4].iter().map(|&n| s.shards_of(n).len()).collect();
    assert_eq!(loads.iter().sum::<usize>(), 12);
    assert!(loads.iter().all(|&l| l == 3), "{loads:?}");
    let s = settle(s, &members(&[1, 2, 3, 4], &[2]));
    assert!(s.held_by(2).is_empty(), "{s:?}");
    assert!(s.replicas.iter().all(|r| r.len() == 2));
    // Without a node to move to, a drain waits and the replicas stay.
    let small = spec("small", 2, 3, Sharding::Hash);
    assert!(plan::plan(&small, &members(&[1, 2, 3], &[1]), true, 1).is_none());
}

#[test]
fn a_lost_single_replica_is_copied_by_a_live_node_and_a_dead_joiner_is_replaced() {
    let s = spec("one", 3, 1, Sharding::Hash);
    let m = members(&[1, 2], &[]);
    let next = plan::plan(&s, &m, false, 1).unwrap();
    let j = next.joining_of(2);
    assert_eq!(j.len(), 1, "{next:?}");
    assert_eq!(j[0].replaces, Some(3));
    let joiner = j[0].node;
    // The joiner dies in turn: another node takes the job.
    let other = if joiner == 1 { 2 } else { 1 };
    let again = plan::plan(&next, &members(&[other], &[]), false, 1).unwrap();
    assert_eq!(again.joining_of(2).iter().map(|j| j.node).collect::<Vec<_>>(), vec![other]);
    let done = again.promote(2, other).unwrap();
    assert_eq!(done.replicas[2], vec![other]);
    assert!(done.joining_of(2).is_empty());
    assert!(done.promote(2, other).is_none(), "not joining any more");
}
