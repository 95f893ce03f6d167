//! The change feed (SSE through the router, WebSocket over a real socket) and snapshots over HTTP.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use quiver_engine::Database;
use quiver_server::{AppState, ServerConfig, app};
use serde_json::{Value, json};
use tower::ServiceExt;

fn setup(cfg: ServerConfig) -> (Router, tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::with_database(cfg, Arc::new(Database::open(dir.path()).unwrap()));
    (app(state.clone()), dir, state)
}

async fn send(app: &Router, method: &str, uri: &str, body: Body, headers: &[(&str, &str)]) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let s = resp.status();
    (s, axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec())
}

async fn json_call(app: &Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let (s, b) =
        send(app, method, uri, Body::from(serde_json::to_vec(&body).unwrap()), &[("content-type", "application/json")])
            .await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn ok(app: &Router, method: &str, uri: &str, body: Value) -> Value {
    let (s, v) = json_call(app, method, uri, body).await;
    assert_eq!(s, StatusCode::OK, "{method} {uri}: {v}");
    v["result"].clone()
}

async fn upsert(app: &Router, c: &str, ids: std::ops::Range<u64>) -> u64 {
    let pts: Vec<Value> = ids.map(|i| json!({"id": i, "vector": [1.0, i as f32, 0.5], "payload": {"i": i}})).collect();
    ok(app, "PUT", &format!("/collections/{c}/points?wait=true"), json!({"points": pts})).await["operation_id"]
        .as_u64()
        .unwrap()
}

async fn count(app: &Router, c: &str) -> u64 {
    ok(app, "POST", &format!("/collections/{c}/points/count"), json!({})).await["count"].as_u64().unwrap()
}

/// Reads SSE events (id, event, data) from a streaming body until `n` arrived.
async fn read_events(body: Body, n: usize) -> Vec<(Option<u64>, String, Value)> {
    let mut stream = body.into_data_stream();
    let mut text = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("no event in time");
        let Some(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut id, mut ev, mut data) = (None, String::from("message"), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    ev = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !data.is_empty() {
                out.push((id, ev, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn sse_streams_changes_in_order_and_resumes() {
    let (app, _d, state) = setup(ServerConfig::default());
    ok(&app, "PUT", "/collections/c", json!({"vectors": {"size": 3, "distance": "Euclid"}})).await;
    let s1 = upsert(&app, "c", 0..3).await;
    ok(&app, "POST", "/collections/c/points/delete", json!({"points": [1]})).await;
    // From the beginning: the upsert and the delete already applied, then a live one.
    let resp =
        app.clone().oneshot(Request::get("/collections/c/changes?after=0").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let app2 = app.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ok(&app2, "PUT", "/collections/c/index", json!({"field_name": "i", "field_schema": "integer"})).await;
    });
    let ev = read_events(resp.into_body(), 3).await;
    writer.await.unwrap();
    assert_eq!(ev[0].0, Some(s1));
    assert_eq!(ev[0].1, "upsert");
    assert_eq!(ev[0].2["points"].as_array().unwrap().len(), 3);
    assert_eq!(ev[0].2["points"][2], json!({"id": 2, "payload": {"i": 2}}));
    assert_eq!(ev[1].1, "delete");
    assert_eq!(ev[1].2["ids"], json!([1]));
    assert_eq!(ev[2].1, "create_field_index");
    assert!(ev[0].0 < ev[1].0 && ev[1].0 < ev[2].0);
    // Resume after the first event with Last-Event-ID, vectors included.
    let req = Request::get("/collections/c/changes?with_vector=true")
        .header("last-event-id", s1.to_string())
        .body(Body::empty())
        .unwrap();
    let ev2 = read_events(app.clone().oneshot(req).await.unwrap().into_body(), 2).await;
    assert_eq!(ev2[0].0, ev[1].0);
    assert_eq!(ev2[1].0, ev[2].0);
    // Shutdown ends the stream with a `closed` event.
    let resp = app.clone().oneshot(Request::get("/collections/c/changes").body(Body::empty()).unwrap()).await.unwrap();
    state.begin_shutdown();
    let ev3 = read_events(resp.into_body(), 1).await;
    assert_eq!(ev3[0].1, "closed");
}

/// Upsert events carry named and sparse vectors by name, as reads return them.
#[tokio::test]
async fn sse_upserts_carry_named_and_sparse_vectors_by_name() {
    let (app, _d, _s) = setup(ServerConfig::default());
    ok(
        &app,
        "PUT",
        "/collections/n",
        json!({"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 1, "distance": "Dot"}},
               "sparse_vectors": {"t": {}}}),
    )
    .await;
    ok(
        &app,
        "PUT",
        "/collections/n/points",
        json!({"points": [{"id": 1, "vector": {"b": [3.0], "t": {"indices": [5], "values": [0.5]}}}]}),
    )
    .await;
    let req = Request::get("/collections/n/changes?after=0&with_vector=true").body(Body::empty()).unwrap();
    let ev = read_events(app.clone().oneshot(req).await.unwrap().into_body(), 1).await;
    assert_eq!(ev[0].2["points"][0]["vector"], json!({"b": [3.0], "t": {"indices": [5], "values": [0.5]}}));
    // A collection of sparse vectors only: the sparse vector alone, no dense placeholder.
    ok(&app, "PUT", "/collections/s", json!({"sparse_vectors": {"t": {}}})).await;
    let point = json!({"points": [{"id": 2, "vector": {"t": {"indices": [1, 4], "values": [1.0, 2.0]}}}]});
    ok(&app, "PUT", "/collections/s/points", point).await;
    let req = Request::get("/collections/s/changes?after=0&with_vector=true").body(Body::empty()).unwrap();
    let ev = read_events(app.clone().oneshot(req).await.unwrap().into_body(), 1).await;
    assert_eq!(ev[0].2["points"][0]["vector"], json!({"t": {"indices": [1, 4], "values": [1.0, 2.0]}}));
}

#[tokio::test]
async fn sse_errors() {
    let (app, _d, _s) = setup(ServerConfig::default());
    ok(&app, "PUT", "/collections/c", json!({"vectors": {"size": 3, "distance": "Cosine"}, "change_feed_bytes": 2000}))
        .await;
    for i in 0..20 {
        upsert(&app, "c", i * 10..i * 10 + 10).await;
    }
    let (s, b) = send(&app, "GET", "/collections/c/changes?after=0", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::GONE, "{}", String::from_utf8_lossy(&b));
    let (s, _) = send(&app, "GET", "/collections/c/changes", Body::empty(), &[("last-event-id", "x")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = send(&app, "GET", "/collections/c/changes?after=999999", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = send(&app, "GET", "/collections/nope/changes", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn websocket_streams_the_same_changes() {
    let (app, _d, _s) = setup(ServerConfig::default());
    ok(&app, "PUT", "/collections/c", json!({"vectors": {"size": 3, "distance": "Cosine"}})).await;
    let first = upsert(&app, "c", 0..2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app.clone()).await });
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/collections/c/changes/ws?after=0")).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v["seq"], first);
    assert_eq!(v["op"], "upsert");
    ws.close(None).await.unwrap();
    server.abort();
}

#[tokio::test]
async fn snapshots_create_download_upload_restore() {
    let (app, _d, _s) = setup(ServerConfig::default());
    ok(&app, "PUT", "/collections/c", json!({"vectors": {"size": 3, "distance": "Cosine"}})).await;
    upsert(&app, "c", 0..30).await;
    let snap = ok(&app, "POST", "/collections/c/snapshots", json!({})).await;
    let name = snap["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("snap-") && name.ends_with(".qsnap"), "{name}");
    assert!(snap["size"].as_u64().unwrap() > 0);
    assert!(snap["creation_time"].as_str().unwrap().ends_with('Z'));
    let list = ok(&app, "GET", "/collections/c/snapshots", Value::Null).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, archive) = send(&app, "GET", &format!("/collections/c/snapshots/{name}"), Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(archive.len() as u64, snap["size"].as_u64().unwrap());
    // More writes, then restore the archive under a new name (raw body) and over the original (multipart).
    upsert(&app, "c", 100..110).await;
    assert_eq!(count(&app, "c").await, 40);
    let (s, b) = send(
        &app,
        "POST",
        "/collections/copy/snapshots/upload",
        Body::from(archive.clone()),
        &[("content-type", "application/octet-stream")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert_eq!(count(&app, "copy").await, 30);
    let boundary = "XBOUNDARYX";
    let mut form = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"s.qsnap\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
    form.extend_from_slice(&archive);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (s, b) =
        send(&app, "POST", "/collections/c/snapshots/upload", Body::from(form), &[("content-type", ct.as_str())]).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert_eq!(count(&app, "c").await, 30, "the original was replaced by the snapshot's state");
    // A damaged archive is refused and changes nothing.
    let mut bad = archive.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    upsert(&app, "c", 200..205).await;
    let (s, _) = send(&app, "POST", "/collections/c/snapshots/upload", Body::from(bad), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) =
        send(&app, "POST", "/collections/c/snapshots/upload", Body::from(archive[..archive.len() / 3].to_vec()), &[])
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(count(&app, "c").await, 35);
    // Recover from a listed archive by name; traversal and URLs are refused.
    ok(&app, "PUT", "/collections/c/snapshots/recover", json!({"location": name})).await;
    assert_eq!(count(&app, "c").await, 30);
    for loc in ["../c/x.qsnap", "/etc/passwd", "http://example.com/s.qsnap", "snap-../../x.qsnap"] {
        let (s, v) = json_call(&app, "PUT", "/collections/c/snapshots/recover", json!({"location": loc})).await;
        assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND, "{loc}: {s} {v}");
    }
    for bad_name in ["..%2F..%2Fconfig.json", "snap-1.qsnap%2F..%2F..%2Fx", "x", "snap-0000000000000001-0001.qsnap"] {
        let (s, _) = send(&app, "GET", &format!("/collections/c/snapshots/{bad_name}"), Body::empty(), &[]).await;
        assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND, "{bad_name}: {s}");
    }
    let (s, _) = send(&app, "POST", "/collections/..%2Fx/snapshots/upload", Body::from(archive.clone()), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Delete.
    assert_eq!(ok(&app, "DELETE", &format!("/collections/c/snapshots/{name}"), Value::Null).await, true);
    let (s, _) = send(&app, "DELETE", &format!("/collections/c/snapshots/{name}"), Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = send(&app, "POST", "/collections/nope/snapshots", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn snapshot_uploads_over_the_limit_are_413() {
    let (app, _d, _s) = setup(ServerConfig { max_snapshot_bytes: 1000, ..Default::default() });
    ok(&app, "PUT", "/collections/c", json!({"vectors": {"size": 3, "distance": "Cosine"}})).await;
    upsert(&app, "c", 0..50).await;
    let name = ok(&app, "POST", "/collections/c/snapshots", json!({})).await["name"].as_str().unwrap().to_owned();
    let (_, archive) = send(&app, "GET", &format!("/collections/c/snapshots/{name}"), Body::empty(), &[]).await;
    assert!(archive.len() > 1000);
    let (s, b) = send(&app, "POST", "/collections/c/snapshots/upload", Body::from(archive), &[]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&b));
    assert_eq!(count(&app, "c").await, 50);
}
