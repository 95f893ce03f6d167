//! The server commands against the real `quiver serve` (the fake server checks request shapes; this checks that
//! the shapes are the server's): create, import JSONL with payloads over HTTP, info, filtered query, delete.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{run_quiver, testdata};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path, key: &str) -> Server {
    let (child, addr, _log) = crate::spawn_serve(data, &["--api-key", key]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let server = Server { child, url: format!("http://{addr}") };
    // Ready once recovery is done: listing answers.
    while !run_quiver(&["collections", "--url", &server.url, "--api-key", key], &[]).status.success() {
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn import_and_query_through_the_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "cli-test-key-123";
    let server = start(&tmp.path().join("data"), key);
    let url = server.url.as_str();
    let env = [("QUIVER_API_KEY", key)];

    // JSONL with payloads: the first 500 vectors of the committed set and their tags.
    let prefix = testdata().display().to_string();
    let base = quiver_index::dataset::read_fvecs(format!("{prefix}_base.fvecs")).unwrap();
    let items = std::fs::read_to_string(format!("{prefix}_base_items.jsonl")).unwrap();
    let input = tmp.path().join("wn.jsonl");
    let mut text = String::new();
    for (i, line) in items.lines().take(500).enumerate() {
        let item: Value = serde_json::from_str(line).unwrap();
        let rec = json!({"id": i, "vector": base.get(i), "payload": {"pos": item["pos"], "n_words": item["n_words"]}});
        text.push_str(&rec.to_string());
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();

    let out = run_quiver(&["import", "wn", input.to_str().unwrap(), "--create", "--batch", "128", "--url", url], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("imported 500 points into wn"));

    let out = run_quiver(&["collections", "info", "wn", "--json", "--url", url], &env);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["points_count"], 500);
    assert_eq!(info["config"]["params"]["vectors"], json!({"size": 384, "distance": "Cosine"}));

    // Query with vector 7 and a filter on its own tag: it is its own nearest neighbour.
    let pos = serde_json::from_str::<Value>(items.lines().nth(7).unwrap()).unwrap()["pos"].clone();
    let filter = json!({"must": [{"key": "pos", "match": {"value": pos}}]}).to_string();
    let vector = serde_json::to_string(base.get(7)).unwrap();
    let out = run_quiver(
        &["query", "wn", "--vector", &vector, "--filter", &filter, "--limit", "5", "--json", "--url", url],
        &env,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hits: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0]["id"], 7);
    assert!((hits[0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4, "{hits:?}");
    assert!(hits.iter().all(|h| h["payload"]["pos"] == pos), "{hits:?}");

    // A wrong key: the server's 401 and message.
    let out = run_quiver(&["collections", "--url", url, "--api-key", "wrong-key-456"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401 Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run_quiver(&["collections", "delete", "wn", "--url", url], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_quiver(&["collections", "list", "--json", "--url", url], &env);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}
