//! Cluster mode, where points live: read tokens (a write through one node read at once through another),
//! request deadlines, a point that changes shard when written again (payload-key sharding), and centroid sharding
//! trained automatically and again on demand while writers write — every point ends on the shard of its nearest
//! centroid, none lost, none twice. Three real NATS servers and three nodes on loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Node, signal, start_nats, start_node_with, wait_members};
use crate::serve::{http, ok};

/// The first `n` real 384-d vectors (WordNet glosses, MiniLM) with their part of speech.
fn real_points(n: usize) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wordnet-minilm-3k");
    let base = quiver_index::dataset::read_fvecs_limit(root.join("wordnet-minilm-3k_base.fvecs"), Some(n)).unwrap();
    let items = std::fs::read_to_string(root.join("wordnet-minilm-3k_base_items.jsonl")).unwrap();
    items
        .lines()
        .take(n)
        .enumerate()
        .map(|(i, line)| {
            let item: Value = serde_json::from_str(line).unwrap();
            json!({"id": i, "vector": base.get(i), "payload": {"pos": item["pos"], "v": 0}})
        })
        .collect()
}

/// A read token as shard → sequence.
fn parse_token(t: &str) -> std::collections::BTreeMap<u64, u64> {
    t.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (s, q) = p.split_once(':').unwrap();
            (s.parse().unwrap(), q.parse().unwrap())
        })
        .collect()
}

fn count(addr: &str, name: &str) -> u64 {
    ok(addr, "POST", &format!("/collections/{name}/points/count"), Some(&json!({})))["count"].as_u64().unwrap()
}

/// The collection's sharding as `GET /cluster` shows it.
fn sharding(addr: &str, name: &str) -> Value {
    let st = ok(addr, "GET", "/cluster", None);
    st["collections"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["sharding"].clone()
}

/// Waits until the collection's centroids are set at an epoch ≥ `epoch` and every point is placed by them.
fn wait_placed(addr: &str, name: &str, epoch: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = sharding(addr, name);
        let e = s["epoch"].as_u64().unwrap_or(0);
        if e >= epoch && s["placed"].as_u64() == Some(e) {
            return s;
        }
        assert!(Instant::now() < deadline, "{name} not placed at epoch {epoch} in time: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every point, searched by its own vector on the one shard nearest it, is found there: it lives on the shard of
/// its nearest centroid.
fn assert_placed(addr: &str, name: &str, points: &[Value]) {
    let mut missed = Vec::new();
    for p in points {
        let q = json!({"vector": p["vector"], "limit": 1, "shards_to_search": 1});
        let hits = ok(addr, "POST", &format!("/collections/{name}/points/search"), Some(&q));
        if hits[0]["id"] != p["id"] {
            missed.push(p["id"].clone());
        }
    }
    assert!(missed.is_empty(), "{} points not on their nearest centroid's shard: {missed:?}", missed.len());
}

#[test]
fn read_tokens_deadlines_moved_points_and_centroid_training() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats(dir.path(), 3);
    let ttl = ["--lease-ttl", "2"];
    let nodes: Vec<Node> =
        (1..=3).map(|i| start_node_with(&nats, &dir.path().join(format!("node-{i}")), i, &ttl)).collect();
    let (a, b, c) = (&nodes[0].addr, &nodes[1].addr, &nodes[2].addr);
    wait_members(a, 3);

    // --- Read tokens: a write through node 1, without waiting, read at once through nodes 2 and 3.
    let create = json!({"vectors": {"size": 384, "distance": "Cosine"}, "shard_number": 3});
    ok(a, "PUT", "/collections/tok", Some(&create));
    let pts = real_points(300);
    for round in 0..3 {
        let batch = &pts[round * 100..(round + 1) * 100];
        let r = ok(a, "PUT", "/collections/tok/points", Some(&json!({"points": batch})));
        assert_eq!(r["status"], "acknowledged");
        let token = r["read_token"].as_str().unwrap().to_owned();
        assert_eq!(token.split(',').count(), 3, "100 points touch every shard: {token}");
        let want = (round as u64 + 1) * 100;
        let n = ok(b, "POST", "/collections/tok/points/count", Some(&json!({"read_token": token})))["count"].clone();
        assert_eq!(n, json!(want), "count through node 2 with the token");
        let page = ok(c, "POST", "/collections/tok/points/scroll", Some(&json!({"limit": 1000, "read_token": token})));
        assert_eq!(page["points"].as_array().unwrap().len() as u64, want, "scroll through node 3 with the token");
        let last = &batch[99];
        let q = json!({"vector": last["vector"], "limit": 1, "read_token": token});
        assert_eq!(ok(c, "POST", "/collections/tok/points/search", Some(&q))[0]["id"], last["id"]);
        let got = ok(b, "POST", "/collections/tok/points", Some(&json!({"ids": [last["id"]], "read_token": token})));
        assert_eq!(got.as_array().unwrap().len(), 1);
    }
    for (body, needle) in [
        (json!({"vector": pts[0]["vector"], "limit": 1, "min_seq": 3}), "read_token"),
        (json!({"vector": pts[0]["vector"], "limit": 1, "read_token": "0:1,7:2"}), "shards 0 to 2"),
        (json!({"vector": pts[0]["vector"], "limit": 1, "read_token": 5}), "read_token"),
    ] {
        let (st, msg) = http(b, "POST", "/collections/tok/points/search", Some(&body));
        assert!(st == 400 && msg.contains(needle), "{st} {msg}");
    }

    // --- Deadlines: `timeout` is checked, and a request waiting on a stopped node's shard ends by it (504).
    let q = json!({"vector": pts[0]["vector"], "limit": 1});
    let (st, msg) = http(a, "POST", "/collections/tok/points/search?timeout=0", Some(&q));
    assert!(st == 400 && msg.contains("timeout"), "{st} {msg}");
    // Stop a node (not node 1, which answers) that is the only replica of some shard.
    let victim = crate::cluster::layout(a, "tok")
        .iter()
        .flat_map(|(r, _)| r.iter().copied())
        .find(|&n| n != 1)
        .expect("a shard of tok on node 2 or 3");
    let stopped = &nodes[victim as usize - 1];
    signal(&stopped.child, "STOP");
    let t = Instant::now();
    let (st, msg) = http(a, "POST", "/collections/tok/points/search?timeout=1", Some(&q));
    let took = t.elapsed();
    signal(&stopped.child, "CONT");
    assert!(st == 504 && msg.contains("deadline"), "{st} {msg}");
    assert!(took < Duration::from_secs(3), "a 1 s deadline answered after {took:?}");

    // --- A copy with more shards, made while a writer upserts and deletes: every write the copy's
    // `source_read_token` covers is in it, as the source has it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (addr, stop, pts) = (a.clone(), std::sync::Arc::clone(&stop), pts.clone());
        std::thread::spawn(move || {
            let mut log: Vec<(Vec<u64>, bool, String)> = Vec::new();
            let mut k = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && k < 500 {
                let ids: Vec<u64> = (1000 + 10 * k..1010 + 10 * k).collect();
                let batch: Vec<Value> = ids
                    .iter()
                    .map(|&id| json!({"id": id, "vector": pts[(id % 300) as usize]["vector"], "payload": {"k": k}}))
                    .collect();
                let r = ok(&addr, "PUT", "/collections/tok/points", Some(&json!({"points": batch})));
                log.push((ids, true, r["read_token"].as_str().unwrap().to_owned()));
                if k.is_multiple_of(3) {
                    let gone = vec![k % 300];
                    let r = ok(&addr, "POST", "/collections/tok/points/delete", Some(&json!({"points": gone})));
                    log.push((gone, false, r["read_token"].as_str().unwrap().to_owned()));
                }
                k += 1;
            }
            log
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let r = ok(b, "POST", "/cluster/collections/tok/copy", Some(&json!({"to": "tok5", "shard_number": 5})));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let log = writer.join().unwrap();
    eprintln!("copy: {r}; {} writes raced it", log.len());
    let upto = parse_token(r["source_read_token"].as_str().unwrap());
    let info = ok(c, "GET", "/collections/tok5", None);
    assert_eq!(info["config"]["params"]["shard_number"], 5, "{info}");
    let covered = |t: &str| parse_token(t).iter().all(|(s, q)| upto.get(s).is_some_and(|u| q <= u));
    let (mut checked, mut skipped) = (0, 0);
    for (ids, upsert, token) in &log {
        if !covered(token) {
            skipped += 1;
            continue;
        }
        checked += 1;
        let got = ok(c, "POST", "/collections/tok5/points", Some(&json!({"ids": ids})));
        let n = got.as_array().unwrap().len();
        if *upsert {
            assert_eq!(n, ids.len(), "upsert {ids:?} ({token}) covered by the copy's token is missing");
        } else {
            // Deleted, unless a later covered upsert wrote it again (ids below 300 are never written again).
            assert_eq!(n, 0, "delete {ids:?} ({token}) covered by the copy's token was not applied");
        }
    }
    assert!(checked > 0, "no write was covered by the copy ({skipped} were not)");
    // The copy answers searches like the source for the points it holds (299 is never deleted; a later point
    // with the same vector has a higher id, and ties go to the lower).
    let q = json!({"vector": pts[299]["vector"], "limit": 1});
    assert_eq!(ok(c, "POST", "/collections/tok5/points/search", Some(&q))[0]["id"], 299);
    let (st, msg) = http(a, "POST", "/cluster/collections/tok/copy", Some(&json!({"to": "tok5"})));
    assert!(st == 409 && msg.contains("already exists"), "{st} {msg}");
    let (st, msg) = http(a, "POST", "/cluster/collections/tok/copy", Some(&json!({"to": "x", "shard_number": 0})));
    assert!(st == 400 && msg.contains("shard_number"), "{st} {msg}");

    // --- A point written again with another shard key moves: it is on one shard only, with its new payload.
    let create = json!({"vectors": {"size": 384, "distance": "Cosine"}, "shard_number": 3,
                        "sharding": {"method": "payload_key", "key": "tenant"}});
    ok(b, "PUT", "/collections/tenants", Some(&create));
    let tenant_points = |tag: &str, modulo: usize| -> Vec<Value> {
        pts[..60]
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"id": p["id"], "vector": p["vector"], "payload": {"tenant": format!("{tag}{}", i % modulo)}}))
            .collect()
    };
    ok(b, "PUT", "/collections/tenants/points?wait=true", Some(&json!({"points": tenant_points("a", 5)})));
    ok(c, "PUT", "/collections/tenants/points?wait=true", Some(&json!({"points": tenant_points("b", 7)})));
    assert_eq!(count(a, "tenants"), 60, "a re-keyed point counted twice");
    let all = ok(a, "POST", "/collections/tenants/points/scroll", Some(&json!({"limit": 100})));
    let tenants: Vec<String> =
        all["points"].as_array().unwrap().iter().map(|p| p["payload"]["tenant"].as_str().unwrap().to_owned()).collect();
    assert_eq!(tenants.len(), 60);
    assert!(tenants.iter().all(|t| t.starts_with('b')), "an old copy survived: {tenants:?}");

    // --- Centroid sharding, trained automatically once 400 points arrived.
    let create = json!({"vectors": {"size": 384, "distance": "Cosine"}, "shard_number": 3,
                        "sharding": {"method": "centroid", "train_after": 400}});
    ok(a, "PUT", "/collections/wn", Some(&create));
    let (st, msg) = http(a, "POST", "/cluster/collections/tok/train", None);
    assert!(st == 400 && msg.contains("hash"), "training a hash-sharded collection: {st} {msg}");
    let (st, msg) = http(a, "POST", "/cluster/collections/wn/train", Some(&json!({"centroids": [pts[0]["vector"]]})));
    assert!(st == 400 && msg.contains("centroids") && msg.contains("(3)"), "{st} {msg}");
    let s = sharding(a, "wn");
    assert_eq!((s["epoch"].clone(), s["placed"].clone()), (json!(0), json!(0)), "{s}");
    let pts = real_points(900);
    for chunk in pts[..600].chunks(100) {
        ok(b, "PUT", "/collections/wn/points?wait=true", Some(&json!({"points": chunk})));
    }
    let s = wait_placed(a, "wn", 1);
    assert_eq!(s["centroids"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(count(c, "wn"), 600);
    assert_placed(c, "wn", &pts[..600]);

    // --- The map through any node: a sample from every shard, laid out together; the shards' centroids are the
    // cells, each sitting among the points it holds; the same map through another node.
    let m = ok(c, "GET", "/collections/wn/map?sample=300&color_by=pos", None);
    assert_eq!(m["total"], 600);
    let mpts = m["points"].as_array().unwrap();
    assert!((295..=300).contains(&mpts.len()), "{} points", mpts.len());
    assert!(mpts.iter().all(|p| p["color"].is_string() && p["x"].as_f64().is_some()), "{}", mpts[0]);
    let cells = m["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "{cells:?}");
    assert_eq!(cells.iter().map(|c| c["points"].as_u64().unwrap()).sum::<u64>(), mpts.len() as u64);
    assert_eq!(ok(a, "GET", "/collections/wn/map?sample=300&color_by=pos", None)["points"], m["points"]);
    let (st, msg) = http(a, "GET", "/collections/wn/map?sample=0", None);
    assert!(st == 400 && msg.contains("sample"), "{st} {msg}");

    // --- Trained again, with given centroids, while two writers add points and rewrite payloads (each its own
    // 100 ids, so each knows the last value it wrote) and a third deletes points that may be moving.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = [(a.clone(), 600usize, 0u64), (c.clone(), 750, 100)]
        .into_iter()
        .map(|(addr, from, own)| {
            let stop = std::sync::Arc::clone(&stop);
            let pts = pts.clone();
            std::thread::spawn(move || {
                let mut next = from;
                let mut v = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || next < from + 150 {
                    if next < from + 150 {
                        let batch = &pts[next..next + 10];
                        ok(&addr, "PUT", "/collections/wn/points?wait=true", Some(&json!({"points": batch})));
                        next += 10;
                    } else {
                        v += 1;
                        let ids: Vec<u64> = (own..own + 100).collect();
                        let body = json!({"points": ids, "payload": {"v": v}});
                        ok(&addr, "POST", "/collections/wn/points/payload?wait=true", Some(&body));
                    }
                }
                (own, v)
            })
        })
        .collect();
    let deleter = {
        let addr = b.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(350));
            for k in 0..6u64 {
                let ids: Vec<u64> = (200 + 10 * k..210 + 10 * k).collect();
                ok(&addr, "POST", "/collections/wn/points/delete?wait=true", Some(&json!({"points": ids})));
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let given = json!({"centroids": [pts[10]["vector"], pts[20]["vector"], pts[30]["vector"]]});
    let r = ok(b, "POST", "/cluster/collections/wn/train?wait=true", Some(&given));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let last_values: Vec<(u64, u64)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    deleter.join().unwrap();
    let s = wait_placed(a, "wn", 2);
    eprintln!(
        "placed at epoch {}: {} moved in the retrain; last payload values {last_values:?}",
        s["epoch"], r["moved"]
    );
    // Nothing lost, nothing twice, nothing deleted come back.
    let kept: Vec<Value> = pts.iter().filter(|p| !(200..260).contains(&p["id"].as_u64().unwrap())).cloned().collect();
    assert_eq!(count(a, "wn"), kept.len() as u64, "points lost, duplicated or brought back by the move");
    let deleted: Vec<u64> = (200..260).collect();
    let back = ok(c, "POST", "/collections/wn/points", Some(&json!({"ids": deleted})));
    assert_eq!(back, json!([]), "deleted points came back");
    assert_placed(a, "wn", &kept);
    // Every payload as its last writer left it, through the moves.
    let page = ok(c, "POST", "/collections/wn/points/scroll", Some(&json!({"limit": 1000})));
    let points = page["points"].as_array().unwrap();
    assert_eq!(points.len(), kept.len());
    for p in points {
        let id = p["id"].as_u64().unwrap();
        assert!(p["payload"]["pos"].is_string(), "point {id} lost its payload fields: {p}");
        let want = last_values.iter().find(|(own, _)| (*own..own + 100).contains(&id)).map_or(0, |(_, v)| *v);
        assert_eq!(p["payload"]["v"], json!(want), "point {id} lost a payload update");
    }
}
