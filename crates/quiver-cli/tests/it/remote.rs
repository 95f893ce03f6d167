//! The server commands (`collections`, `query`, `snapshot`) against the fake server: the requests they send
//! (method, path, headers, body) and how they show replies and errors.

use std::process::Output;

use serde_json::json;

use crate::fake::{Fake, cut_short, error, ok, raw};
use crate::run_quiver;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn collections_list_info_create_delete() {
    let fake = Fake::start(vec![
        ok(json!({"collections": [{"name": "alpha"}, {"name": "beta"}]})),
        ok(json!({
            "status": "green", "points_count": 1234, "segments_count": 2,
            "config": {"params": {"vectors": {"size": 384, "distance": "Cosine"}}},
            "quiver": {"disk_bytes": 2048, "applied_seq": 7, "wal_checkpoint": 5, "config": {"index": {"kind": "hnsw"}},
                       "payload_indexes": [["pos", "keyword"]]}
        })),
        ok(json!(true)),
        ok(json!(true)),
        ok(json!(false)),
    ]);
    let url = fake.url.clone();
    let out = run_quiver(&["collections", "--url", &url, "--api-key", "s3cret"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "alpha\nbeta\n");
    // The key can come from the environment too.
    let out = run_quiver(&["collections", "info", "alpha", "--url", &url], &[("QUIVER_API_KEY", "from-env")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in ["points      1234", "segments    2", "384 dimensions, Cosine", "hnsw", "2.0 KiB", "pos (keyword)"] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let out =
        run_quiver(&["collections", "create", "new one", "--dim", "4", "--distance", "euclid", "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_quiver(&["collections", "delete", "alpha", "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_quiver(&["collections", "delete", "ghost", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("collection ghost does not exist"), "{}", stderr(&out));

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("GET", "/collections"));
    assert_eq!(reqs[0].headers.get("api-key").map(String::as_str), Some("s3cret"));
    assert_eq!((reqs[1].method.as_str(), reqs[1].path.as_str()), ("GET", "/collections/alpha"));
    assert_eq!(reqs[1].headers.get("api-key").map(String::as_str), Some("from-env"));
    // Names are percent-encoded in the path; the body has Qdrant's shape.
    assert_eq!((reqs[2].method.as_str(), reqs[2].path.as_str()), ("PUT", "/collections/new%20one"));
    assert_eq!(reqs[2].json(), json!({"vectors": {"size": 4, "distance": "Euclid"}}));
    assert_eq!(reqs[2].headers.get("content-type").map(String::as_str), Some("application/json"));
    assert!(!reqs[2].headers.contains_key("api-key"));
    assert_eq!((reqs[3].method.as_str(), reqs[3].path.as_str()), ("DELETE", "/collections/alpha"));
    assert_eq!(reqs[4].path, "/collections/ghost");
}

#[test]
fn query_sends_vector_filter_limit_and_prints_ranked_results() {
    let fake = Fake::start(vec![
        ok(json!({"points": [
            {"id": 7, "score": 0.98765, "payload": {"pos": "noun"}},
            {"id": "550e8400-e29b-41d4-a716-446655440000", "score": 0.5, "payload": {}}
        ]})),
        ok(json!({"points": []})),
    ]);
    let url = fake.url.clone();
    let filter = r#"{"must":[{"key":"pos","match":{"value":"noun"}}]}"#;
    let out = run_quiver(
        &["query", "docs", "--vector", "[1, 2.5, -3]", "--filter", filter, "--limit", "2", "--url", &url],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("   1  7") && lines[0].contains("0.987650") && lines[0].contains(r#"{"pos":"noun"}"#),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("   2  550e8400-e29b-41d4-a716-446655440000") && lines[1].contains("0.500000"),
        "{lines:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let vf = tmp.path().join("q.json");
    std::fs::write(&vf, "[0.5, 0.25]\n").unwrap();
    let out = run_quiver(&["query", "docs", "--vector-file", vf.to_str().unwrap(), "--no-payload", "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "no results\n");

    let reqs = fake.requests();
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("POST", "/collections/docs/points/query"));
    assert_eq!(
        reqs[0].json(),
        json!({"query": [1.0, 2.5, -3.0], "limit": 2, "filter": {"must": [{"key": "pos", "match": {"value": "noun"}}]}, "with_payload": true})
    );
    assert_eq!(reqs[1].json(), json!({"query": [0.5, 0.25], "limit": 10, "with_payload": false}));
}

#[test]
fn bad_arguments_are_usage_errors_before_any_request() {
    // Nothing listens here: any request would fail differently.
    let url = "http://127.0.0.1:9";
    for (args, want) in [
        (vec!["query", "c", "--vector", "[1, \"x\"]"], "element 1"),
        (vec!["query", "c", "--vector", "not json"], "not JSON"),
        (vec!["query", "c", "--vector", "[]"], "empty"),
        (vec!["query", "c", "--vector", "[1]", "--filter", "[1]"], "expected a JSON object"),
        (vec!["query", "c", "--vector", "[1]", "--limit", "0"], "--limit"),
        (vec!["query", "c"], "--vector"),
        (vec!["collections", "create", "c", "--dim", "0"], "--dim"),
        (vec!["collections", "create", "c", "--dim", "3", "--distance", "manhattan"], "manhattan"),
    ] {
        let mut a = args.clone();
        a.extend(["--url", url]);
        let out = run_quiver(&a, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let out = run_quiver(&["collections", "--url", "https://127.0.0.1:1"], &[("QUIVER_CA_CERT", "/no/such/ca.pem")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("QUIVER_CA_CERT=/no/such/ca.pem"), "{}", stderr(&out));
    let out = run_quiver(&["collections", "--url", "ftp://x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected http://HOST:PORT or https://HOST:PORT"), "{}", stderr(&out));
}

#[test]
fn server_errors_show_status_and_message() {
    let fake = Fake::start(vec![
        error(404, "collection \"nope\" does not exist"),
        raw(502, "text/html", b"<html>bad gateway</html>"),
        error(401, "missing or wrong API key"),
        raw(200, "application/json", b"{\"unexpected\": 1}"),
    ]);
    let url = fake.url.clone();
    let out = run_quiver(&["collections", "info", "nope", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("404 Not Found")
            && e.contains("collection \"nope\" does not exist")
            && e.contains("GET /collections/nope"),
        "{e}"
    );
    let out = run_quiver(&["query", "c", "--vector", "[1]", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("502 Bad Gateway") && e.contains("<html>bad gateway</html>"), "{e}");
    let out = run_quiver(&["collections", "--url", &url], &[]);
    assert!(stderr(&out).contains("401 Unauthorized: missing or wrong API key"), "{}", stderr(&out));
    let out = run_quiver(&["collections", "--url", &url], &[]);
    assert!(stderr(&out).contains("unexpected reply: no \"result\""), "{}", stderr(&out));
    assert_eq!(fake.requests().len(), 4);

    // Nobody listening: a clear "no reply", exit 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = run_quiver(&["collections", "--url", &format!("http://127.0.0.1:{port}")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no reply from the server") && stderr(&out).contains("QUIVER_URL"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn snapshots_create_download_list_restore() {
    let archive: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let name = "snap-0001700000000000-0000.qsnap";
    let fake = Fake::start(vec![
        ok(json!({"name": name, "size": archive.len(), "creation_time": "2026-01-01T00:00:00Z"})),
        raw(200, "application/octet-stream", &archive),
        ok(json!([{"name": name, "size": archive.len(), "creation_time": "2026-01-01T00:00:00Z"}])),
        ok(json!(true)),
        ok(
            json!({"name": "snap-0001700000000999-0000.qsnap", "size": archive.len(), "creation_time": "2026-01-01T00:00:01Z"}),
        ),
        error(400, "not a snapshot archive: bad magic"),
        ok(json!(true)),
    ]);
    let url = fake.url.clone();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("docs.qsnap");
    let out = run_quiver(&["snapshot", "create", "docs", "--download", file.to_str().unwrap(), "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("created snapshot {name}")), "{}", stdout(&out));
    assert_eq!(std::fs::read(&file).unwrap(), archive);
    assert!(!tmp.path().join("docs.qsnap.part").exists());
    let out = run_quiver(&["snapshot", "list", "docs", "--url", &url], &[]);
    assert!(
        out.status.success() && stdout(&out).contains(name) && stdout(&out).contains("97.7 KiB"),
        "{}",
        stdout(&out)
    );
    // A server may answer an upload with `true` (Qdrant) or the stored archive's description (QuiverDB).
    let out = run_quiver(&["snapshot", "restore", "docs", file.to_str().unwrap(), "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_quiver(&["snapshot", "restore", "docs", file.to_str().unwrap(), "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("kept on the server as snap-0001700000000999-0000.qsnap"), "{}", stdout(&out));
    let out = run_quiver(&["snapshot", "restore", "docs", file.to_str().unwrap(), "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("400 Bad Request: not a snapshot archive"), "{}", stderr(&out));
    let out = run_quiver(&["snapshot", "delete", "docs", name, "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let reqs = fake.requests();
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("POST", "/collections/docs/snapshots"));
    assert_eq!(
        (reqs[1].method.as_str(), reqs[1].path.as_str()),
        ("GET", format!("/collections/docs/snapshots/{name}").as_str())
    );
    assert_eq!((reqs[2].method.as_str(), reqs[2].path.as_str()), ("GET", "/collections/docs/snapshots"));
    assert_eq!((reqs[3].method.as_str(), reqs[3].path.as_str()), ("POST", "/collections/docs/snapshots/upload"));
    assert_eq!(reqs[3].headers.get("content-type").map(String::as_str), Some("application/octet-stream"));
    assert_eq!(reqs[3].body, archive);
    assert_eq!(
        (reqs[6].method.as_str(), reqs[6].path.as_str()),
        ("DELETE", format!("/collections/docs/snapshots/{name}").as_str())
    );
}

#[test]
fn an_interrupted_download_leaves_no_file() {
    // The download announces more bytes than it sends.
    let fake = Fake::start(vec![ok(json!({"name": "snap-1-0.qsnap", "size": 1000})), cut_short(&[7; 100], 1000)]);
    let url = fake.url.clone();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.qsnap");
    // An error, and neither the file nor a partial one stays.
    let out = run_quiver(&["snapshot", "create", "docs", "--download", file.to_str().unwrap(), "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("download"), "{}", stderr(&out));
    assert!(!file.exists() && !tmp.path().join("x.qsnap.part").exists());
    assert_eq!(fake.requests().len(), 2);
}
