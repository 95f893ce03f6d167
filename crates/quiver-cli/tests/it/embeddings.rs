//! OpenAI-compatible embeddings between real processes: the official `openai` Python client drives one
//! `quiver serve`'s `/v1/embeddings` (behind an API key), and a second `quiver serve` embeds a collection's texts
//! through the first (`embedding: {"url", "model", "api_key_env"}`). Needs all-MiniLM-L6-v2 and all-mpnet-base-v2
//! (scripts/get-embed-model.sh) and `pip install -r requirements-test.txt` (openai).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{Server, http, ok};

fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"]).args(args).arg("--data-dir").arg(data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (child, addr, log) = crate::spawn_serve_command(cmd);
    let s = Server { child, addr, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&s.addr, "GET", "/readyz", None).0 != 200 {
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

#[test]
fn openai_client_and_a_second_server_use_the_embeddings_endpoint() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start_with(da.path(), &["--api-key", "embed-secret"], &[]);
    let mut b = start_with(db.path(), &[], &[("QUIVER_TEST_EMBED_KEY", "embed-secret")]);

    // The official client, unchanged, against server A.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/openai_embeddings_compat.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("http://{}", a.addr))
        .arg("embed-secret")
        .output()
        .expect("python3 is needed for the openai client test (pip install -r requirements-test.txt)");
    assert!(
        out.status.success(),
        "openai client test failed (pip install -r requirements-test.txt)\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Server B embeds through A: the size comes from A's answer, the key from B's environment.
    let remote = json!({"model": "all-MiniLM-L6-v2", "url": format!("http://{}/v1", a.addr),
        "api_key_env": "QUIVER_TEST_EMBED_KEY"});
    ok(&b.addr, "PUT", "/collections/r", Some(&json!({ "embedding": remote })));
    let info = ok(&b.addr, "GET", "/collections/r", None);
    assert_eq!(info["config"]["params"]["vectors"]["size"], 384, "{info}");
    assert_eq!(info["config"]["embedding"]["url"], format!("http://{}/v1", a.addr), "{info}");
    let texts = ["The cat curled up on the mat.", "Stock markets fell as rates rose.", "Bake the cake for an hour."];
    let points: Vec<Value> = texts.iter().enumerate().map(|(i, t)| json!({"id": i, "text": t})).collect();
    ok(&b.addr, "PUT", "/collections/r/points?wait=true", Some(&json!({ "points": points })));
    let hits =
        ok(&b.addr, "POST", "/collections/r/points/search", Some(&json!({"text": "a kitten asleep", "limit": 1})));
    assert_eq!(hits[0]["id"], 0, "{hits}");
    // The stored vector is the one the model makes (B's own copy of the model says so).
    let stored = ok(&b.addr, "GET", "/collections/r/points/1", None)["vector"].clone();
    let (st, body) =
        http(&b.addr, "POST", "/v1/embeddings", Some(&json!({"input": texts[1], "model": "all-MiniLM-L6-v2"})));
    assert_eq!(st, 200, "{body}");
    let local: Value = serde_json::from_str(&body).unwrap();
    let (s, l) = (stored.as_array().unwrap(), local["data"][0]["embedding"].as_array().unwrap());
    let diff = s.iter().zip(l).map(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-6, "stored vector differs from the model's by {diff}");

    // Faults are 502s naming the endpoint and what went wrong, and create nothing.
    let (st, body) = http(
        &b.addr,
        "PUT",
        "/collections/nokey",
        Some(&json!({"embedding": {"model": "all-MiniLM-L6-v2", "url": format!("http://{}/v1", a.addr)}})),
    );
    assert_eq!(st, 502, "{body}");
    assert!(body.contains("HTTP 401") && body.contains("/v1/embeddings"), "{body}");
    let (st, body) = http(
        &b.addr,
        "PUT",
        "/collections/unset",
        Some(
            &json!({"embedding": {"model": "m", "url": "http://127.0.0.1:9/v1", "api_key_env": "QUIVER_UNSET_KEY_VAR"}}),
        ),
    );
    assert_eq!(st, 502, "{body}");
    assert!(body.contains("QUIVER_UNSET_KEY_VAR"), "{body}");
    let (st, body) =
        http(&b.addr, "PUT", "/collections/badurl", Some(&json!({"embedding": {"model": "m", "url": "ftp://x"}})));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("embedding.url"), "{body}");
    for c in ["nokey", "unset", "badurl"] {
        assert_eq!(http(&b.addr, "GET", &format!("/collections/{c}"), None).0, 404, "{c} was created");
    }

    // A down: writes of text to B fail with 502 and write nothing; searches by vector go on.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let (st, body) =
        http(&b.addr, "PUT", "/collections/r/points?wait=true", Some(&json!({"points": [{"id": 9, "text": "more"}]})));
    assert_eq!(st, 502, "{body}");
    assert_eq!(http(&b.addr, "GET", "/collections/r/points/9", None).0, 404);
    let v: Vec<f64> = s.iter().map(|x| x.as_f64().unwrap()).collect();
    let hits = ok(&b.addr, "POST", "/collections/r/points/search", Some(&json!({"vector": v, "limit": 1})));
    assert_eq!(hits[0]["id"], 1, "{hits}");
    let _ = b.child.kill();
}
