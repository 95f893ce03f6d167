//! The client against a real server: `quiver_server::serve_on` over a fresh data directory on a loopback port.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quiver_client::wire::{
    Batch, BatchVectors, CountRequest, CreateCollection, CreateFieldIndex, DeletePayload, Distance, FieldSchema,
    PointRequest, PointStruct, PointsSelector, QueryInput, QueryRequest, ScrollRequest, SearchBatch,
    SearchGroupsRequest, SearchRequest, SearchVector, SetPayload, UpsertPoints, VectorInput, VectorParams,
    VectorsConfig, WithPayload, WithVector,
};
use quiver_client::{Client, Error, Filter, Payload, PointId, PointRef, blocking, encode_points};
use quiver_server::ServerConfig;
use serde_json::{Value, json};

/// A server on its own runtime thread; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(api_key: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServerConfig {
            bind: addr,
            data_dir: dir.path().to_owned(),
            api_key: api_key.map(str::to_owned),
            ..ServerConfig::default()
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                quiver_server::serve_on(listener, config, async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        let server = Server { addr, stop: Some(tx), thread: Some(thread), _dir: dir };
        let probe = blocking::Client::new(&server.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !probe.ready().unwrap_or(false) {
            assert!(Instant::now() < deadline, "the server did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn filter(v: Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

fn payload(v: Value) -> Payload {
    serde_json::from_value(v).unwrap()
}

fn dim3(distance: Distance) -> CreateCollection {
    CreateCollection {
        vectors: Some(VectorsConfig::Single(VectorParams { size: 3, distance, on_disk: None, embedding: None })),
        ..Default::default()
    }
}

fn point(id: u64, v: [f32; 3], p: Value) -> PointStruct {
    PointStruct {
        id: PointId::from(id),
        vector: Some(VectorInput::Plain(v.to_vec())),
        text: None,
        image: None,
        payload: Some(payload(p)),
        ttl_secs: None,
    }
}

fn ids(hits: &[quiver_client::wire::ScoredPoint]) -> Vec<String> {
    hits.iter().map(|h| h.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_search_and_payloads_round_trip_through_the_wire_types() {
    let server = tokio::task::spawn_blocking(|| Server::start(None)).await.unwrap();
    let c = Client::new(&server.url()).unwrap().with_timeout(Some(Duration::from_secs(30)));
    assert_eq!(c.version().await.unwrap().title, "quiverdb");
    c.create_collection("c", &dim3(Distance::Euclid)).await.unwrap();
    assert!(c.collection_exists("c").await.unwrap());
    assert_eq!(c.list_collections().await.unwrap(), vec!["c".to_owned()]);

    let rows = UpsertPoints {
        points: Some(vec![
            point(1, [0.0, 0.0, 0.0], json!({"tag": "a", "n": 1})),
            point(2, [1.0, 0.0, 0.0], json!({"tag": "b", "n": 2})),
            point(3, [2.0, 0.0, 0.0], json!({"tag": "a", "n": 3})),
        ]),
        batch: None,
    };
    let r = c.upsert("c", &rows, true).await.unwrap();
    assert!(r.operation_id > 0);
    let uuid = "550e8400-e29b-41d4-a716-446655440000";
    let columns = UpsertPoints {
        points: None,
        batch: Some(Batch {
            ids: vec![PointId::from(4), uuid.parse().unwrap()],
            vectors: Some(BatchVectors::Plain(vec![vec![3.0, 0.0, 0.0], vec![4.0, 0.0, 0.0]])),
            texts: None,
            images: None,
            payloads: Some(vec![Some(payload(json!({"tag": "b", "n": 4}))), None]),
        }),
    };
    c.upsert("c", &columns, true).await.unwrap();
    assert_eq!(c.count("c", &CountRequest::default()).await.unwrap(), 5);

    let search = SearchRequest {
        vector: Some(SearchVector::Plain(vec![0.1, 0.0, 0.0])),
        filter: Some(filter(json!({"must": [{"key": "tag", "match": {"value": "a"}}]}))),
        limit: 10,
        with_payload: Some(WithPayload::Bool(true)),
        ..Default::default()
    };
    let hits = c.search("c", &search).await.unwrap();
    assert_eq!(ids(&hits), ["1", "3"]);
    assert_eq!(hits[1].payload.as_ref().unwrap()["n"], json!(3));
    assert!(hits[0].score < hits[1].score, "Euclid: lower is closer");

    // The query endpoint by stored id (the point itself is left out), and a batch of searches.
    let q = QueryRequest {
        query: Some(QueryInput::Id(quiver_client::wire::WireId(PointId::from(2)))),
        limit: Some(2),
        ..Default::default()
    };
    let got = c.query("c", &q).await.unwrap();
    let mut near: Vec<String> = ids(&got.points);
    near.sort();
    assert_eq!(near, ["1", "3"]);
    let batch = SearchBatch {
        searches: vec![
            SearchRequest { vector: Some(SearchVector::Plain(vec![4.0, 0.0, 0.0])), limit: 1, ..Default::default() },
            SearchRequest { vector: Some(SearchVector::Plain(vec![0.0, 0.0, 0.0])), limit: 1, ..Default::default() },
        ],
    };
    let lists = c.search_batch("c", &batch).await.unwrap();
    assert_eq!(lists.len(), 2);
    assert_eq!(lists[0][0].id.to_string(), uuid);
    assert_eq!(lists[1][0].id.to_string(), "1");

    let groups = c
        .search_groups(
            "c",
            &SearchGroupsRequest {
                vector: Some(SearchVector::Plain(vec![0.0, 0.0, 0.0])),
                group_by: "tag".into(),
                group_size: Some(1),
                limit: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let keys: Vec<Value> = groups.groups.iter().map(|g| g.id.clone()).collect();
    assert_eq!(keys, [json!("a"), json!("b")]);

    // Get, payload updates, scroll pages, a field index, deletes.
    let got = c
        .get_points(
            "c",
            &PointRequest {
                ids: vec![PointId::from(2), PointId::from(99)],
                with_payload: Some(WithPayload::Bool(true)),
                with_vector: Some(WithVector::Bool(true)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].vector.as_ref().and_then(|v| v.plain()), Some(&[1.0f32, 0.0, 0.0][..]));
    let sel = Some(vec![PointId::from(2)]);
    let set = SetPayload { payload: payload(json!({"extra": true})), points: sel.clone(), ..Default::default() };
    c.set_payload("c", &set, true).await.unwrap();
    c.delete_payload("c", &DeletePayload { keys: vec!["n".into()], points: sel.clone(), filter: None }, true)
        .await
        .unwrap();
    let p = c.get_point("c", &PointId::from(2)).await.unwrap().payload.unwrap();
    assert_eq!(Value::Object(p), json!({"tag": "b", "extra": true}));

    let mut seen = Vec::new();
    let mut offset = None;
    loop {
        let page = c.scroll("c", &ScrollRequest { offset, limit: Some(2), ..Default::default() }).await.unwrap();
        seen.extend(page.points.iter().map(|r| r.id.to_string()));
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["1", "2", "3", "4", uuid]);

    let idx = CreateFieldIndex { field_name: "tag".into(), field_schema: Some(FieldSchema::Name("keyword".into())) };
    c.create_field_index("c", &idx, true).await.unwrap();
    let info = c.collection_info("c").await.unwrap();
    assert_eq!(info.points_count, 5);
    assert!(info.payload_schema.get("tag").is_some(), "{}", info.payload_schema);

    let by_filter = PointsSelector {
        points: None,
        filter: Some(filter(json!({"must": [{"key": "tag", "match": {"value": "a"}}]}))),
    };
    c.delete_points("c", &by_filter, true).await.unwrap();
    assert_eq!(c.count("c", &CountRequest::default()).await.unwrap(), 3);
    assert!(c.delete_collection("c").await.unwrap());
    assert!(!c.delete_collection("c").await.unwrap());
    drop(c);
    tokio::task::spawn_blocking(move || drop(server)).await.unwrap();
}

#[test]
fn errors_carry_the_status_and_the_servers_message_and_change_nothing() {
    let server = Server::start(None);
    let c = blocking::Client::new(&server.url()).unwrap();
    let e = c.collection_info("missing").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("404 Not Found") && e.to_string().contains("missing"), "{e}");

    c.create_collection("c", &dim3(Distance::Cosine)).unwrap();
    let bad = UpsertPoints {
        points: Some(vec![
            point(1, [1.0, 0.0, 0.0], json!({})),
            PointStruct { vector: Some(VectorInput::Plain(vec![1.0, 2.0])), ..point(2, [0.0; 3], json!({})) },
        ]),
        batch: None,
    };
    let e = c.upsert("c", &bad, true).unwrap_err();
    match &e {
        Error::Api { status, message, .. } => {
            assert_eq!(*status, 400);
            assert!(message.contains("point 2") && message.contains("expected 3"), "{message}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(c.count("c", &CountRequest::default()).unwrap(), 0, "a rejected batch writes nothing");
}

#[test]
fn snapshots_download_and_upload_stream_the_archive() {
    let server = Server::start(None);
    let c = blocking::Client::new(&server.url()).unwrap();
    c.create_collection("c", &dim3(Distance::Dot)).unwrap();
    let points: Vec<PointStruct> = (0..200).map(|i| point(i, [i as f32, 1.0, 0.5], json!({"i": i}))).collect();
    c.upsert("c", &UpsertPoints { points: Some(points), batch: None }, true).unwrap();
    let snap = c.create_snapshot("c").unwrap();
    let names: Vec<String> = c.list_snapshots("c").unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [snap.name.as_str()]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.qsnap");
    let mut out = std::fs::File::create(&file).unwrap();
    let n = c.download_snapshot("c", &snap.name, &mut out).unwrap();
    drop(out);
    assert_eq!(n, snap.size);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), snap.size);

    let stored = c.upload_snapshot("copy", &file).unwrap().expect("QuiverDB describes the stored archive");
    assert!(stored.size > 0);
    assert_eq!(c.count("copy", &CountRequest::default()).unwrap(), 200);
    c.delete_snapshot("c", &snap.name).unwrap();
    assert!(c.list_snapshots("c").unwrap().is_empty());
    let e = c.download_snapshot("c", &snap.name, &mut Vec::new()).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = c.upload_snapshot("copy", &dir.path().join("absent.qsnap")).unwrap_err();
    assert!(matches!(e, Error::Local(ref m) if m.contains("absent.qsnap")), "{e}");
}

#[test]
fn the_api_key_is_sent_and_a_wrong_one_is_refused() {
    let server = Server::start(Some("s3cret"));
    let anonymous = blocking::Client::new(&server.url()).unwrap();
    let e = anonymous.list_collections().unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let keyed = blocking::Client::new(&server.url()).unwrap().with_api_key(Some("s3cret")).unwrap();
    assert!(keyed.list_collections().unwrap().is_empty());
    assert!(format!("{keyed:?}").contains('…') && !format!("{keyed:?}").contains("s3cret"));
    let e = blocking::Client::new(&server.url()).unwrap().with_api_key(Some("bad\nkey")).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

#[test]
fn urls_that_cannot_work_are_refused_before_any_request() {
    for (url, says) in [
        ("ftp://host", "expected http://HOST:PORT or https://HOST:PORT"),
        ("https://", "no host"),
        ("http://", "no host"),
        ("http:///x", "no host"),
    ] {
        let e = Client::new(url).unwrap_err();
        assert!(matches!(e, Error::Config(ref m) if m.contains(says)), "{url}: {e}");
    }
    let c = Client::new("http://127.0.0.1:6333/").unwrap();
    assert_eq!(c.url(), "http://127.0.0.1:6333");
}

#[test]
fn no_reply_is_a_transient_transport_error_and_the_timeout_holds() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = blocking::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let e = c.list_collections().unwrap_err();
    assert!(matches!(e, Error::Transport { .. }) && e.is_transient(), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}/collections")), "{e}");

    // A server that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let c = blocking::Client::new(&format!("http://{addr}")).unwrap().with_timeout(Some(Duration::from_millis(300)));
    let t = Instant::now();
    let e = c.list_collections().unwrap_err();
    assert!(matches!(e, Error::Transport { ref cause, .. } if cause.contains("timed out")), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
    drop(silent);
}

#[test]
fn the_blocking_client_is_shared_by_threads_searching_while_one_writes() {
    let server = Server::start(None);
    let c = blocking::Client::new(&server.url()).unwrap();
    c.create_collection("c", &dim3(Distance::Euclid)).unwrap();
    let first: Vec<PointStruct> = (0..100).map(|i| point(i, [i as f32, 0.0, 0.0], json!({}))).collect();
    c.upsert("c", &UpsertPoints { points: Some(first), batch: None }, true).unwrap();
    std::thread::scope(|s| {
        let writer = {
            let c = c.clone();
            s.spawn(move || {
                for i in 100..300u64 {
                    let p = point(i, [i as f32, 0.0, 0.0], json!({}));
                    c.upsert("c", &UpsertPoints { points: Some(vec![p]), batch: None }, false).unwrap();
                }
            })
        };
        for t in 0..3 {
            let c = c.clone();
            s.spawn(move || {
                for j in 0..50 {
                    let x = ((t * 50 + j) % 100) as f32;
                    let req = SearchRequest {
                        vector: Some(SearchVector::Plain(vec![x, 0.0, 0.0])),
                        limit: 1,
                        ..Default::default()
                    };
                    let hits = c.search("c", &req).unwrap();
                    assert_eq!(hits[0].id.to_string(), (x as u64).to_string());
                }
            });
        }
        writer.join().unwrap();
    });
    let all = CountRequest::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.count("c", &all).unwrap() < 300 {
        assert!(Instant::now() < deadline, "writes without wait were not applied");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn encoded_points_are_read_by_the_server_as_point_structs() {
    let id = PointId::from(7);
    let p = payload(json!({"k": [1, 2]}));
    let body = encode_points(&[
        PointRef { id: &id, vector: &[1.0, 2.0], text: None, payload: Some(&p) },
        PointRef { id: &id, vector: &[], text: Some("hello"), payload: None },
    ])
    .unwrap();
    let back: UpsertPoints = serde_json::from_slice(&body).unwrap();
    let pts = back.points.unwrap();
    assert!(matches!(&pts[0].vector, Some(VectorInput::Plain(v)) if v == &[1.0, 2.0]));
    assert_eq!(pts[0].payload.as_ref(), Some(&p));
    assert!(pts[1].vector.is_none() && pts[1].text.as_deref() == Some("hello"));
}
