//! Router tests without sockets: every route, its errors, auth, limits, metrics and the OpenAPI document.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{T, server, setup};
use quiver_engine::Database;
use quiver_server::{AppState, ServerConfig, app};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn with_points(t: &T) {
    t.ok("PUT", "/collections/c", Some(json!({"vectors": {"size": 3, "distance": "Cosine"}}))).await;
    let points: Vec<Value> = (0..20)
        .map(|i| {
            let a = i as f32 / 20.0;
            json!({"id": i, "vector": [1.0, a, 0.1], "payload": {"n": i, "parity": if i % 2 == 0 {"even"} else {"odd"}, "nested": {"x": i * 10}}})
        })
        .collect();
    let r = t.ok("PUT", "/collections/c/points?wait=true", Some(json!({"points": points}))).await;
    assert_eq!(r["status"], "completed");
    assert!(r["operation_id"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn service_routes_answer() {
    let t = server();
    let (s, v) = t.call("GET", "/", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["title"], "quiverdb");
    assert!(v["version"].as_str().unwrap().starts_with("1."));
    assert_eq!(t.call("GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(t.call("GET", "/readyz", None).await.0, StatusCode::OK);
    t.err("GET", "/no/such/route", None, StatusCode::NOT_FOUND, "no such route").await;
}

#[tokio::test]
async fn not_ready_until_the_database_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(ServerConfig::default());
    let t = T { app: app(state.clone()), _dir: tempfile::tempdir().unwrap(), key: None };
    assert_eq!(t.call("GET", "/readyz", None).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(t.call("GET", "/healthz", None).await.0, StatusCode::OK);
    t.err("GET", "/collections", None, StatusCode::SERVICE_UNAVAILABLE, "starting").await;
    state.set_database(Arc::new(Database::open(dir.path()).unwrap()));
    assert_eq!(t.call("GET", "/readyz", None).await.0, StatusCode::OK);
    t.ok("GET", "/collections", None).await;
}

#[tokio::test]
async fn collection_lifecycle() {
    let t = server();
    assert_eq!(t.ok("PUT", "/collections/docs", Some(json!({"vectors": {"size": 4, "distance": "Dot"}}))).await, true);
    t.err(
        "PUT",
        "/collections/docs",
        Some(json!({"vectors": {"size": 4, "distance": "Dot"}})),
        StatusCode::CONFLICT,
        "already exists",
    )
    .await;
    let list = t.ok("GET", "/collections", None).await;
    assert_eq!(list["collections"], json!([{"name": "docs"}]));
    assert_eq!(t.ok("GET", "/collections/docs/exists", None).await["exists"], true);
    assert_eq!(t.ok("GET", "/collections/nope/exists", None).await["exists"], false);
    let info = t.ok("GET", "/collections/docs", None).await;
    assert_eq!(info["points_count"], 0);
    assert_eq!(info["status"], "green");
    assert_eq!(info["config"]["params"]["vectors"], json!({"size": 4, "distance": "Dot"}));
    assert_eq!(info["quiver"]["config"]["metric"], "dot");
    t.err("GET", "/collections/nope", None, StatusCode::NOT_FOUND, "does not exist").await;
    assert_eq!(t.ok("DELETE", "/collections/docs", None).await, true);
    assert_eq!(t.ok("DELETE", "/collections/docs", None).await, false);
    assert_eq!(t.ok("GET", "/collections", None).await["collections"], json!([]));
}

#[tokio::test]
async fn quiver_config_sits_beside_qdrant_fields() {
    let t = server();
    let body = json!({
        "vectors": {"size": 8, "distance": "Euclid"},
        "hnsw_config": {"m": 8, "ef_construct": 64},
        "durability": "none",
        "optimizer": {"seal_points": 1000},
    });
    t.ok("PUT", "/collections/a", Some(body)).await;
    let info = t.ok("GET", "/collections/a", None).await;
    assert_eq!(info["quiver"]["config"]["index"]["params"], json!({"m": 8, "ef_construction": 64}));
    assert_eq!(info["quiver"]["config"]["durability"], "none");
    assert_eq!(info["config"]["hnsw_config"]["m"], 8);
    let ivf = json!({"vectors": {"size": 8, "distance": "Cosine"}, "index": {"kind": "ivf", "params": {"nlist": 4}}});
    t.ok("PUT", "/collections/b", Some(ivf)).await;
    assert_eq!(t.ok("GET", "/collections/b", None).await["quiver"]["config"]["index"]["kind"], "ivf");
}

#[tokio::test]
async fn bad_collection_configs_name_the_field_and_create_nothing() {
    let t = server();
    let cases = [
        (json!({}), "vectors"),
        (json!({"vectors": {"size": 0, "distance": "Cosine"}}), "dimension"),
        (json!({"vectors": {"size": 3, "distance": "Manhattan"}}), "vectors.distance"),
        (json!({"vectors": {"size": 3, "distance": "Hamming"}}), "vectors"),
        (json!({"vectors": {}}), "vectors"),
        (json!({"vectors": {"size": 3, "distance": "Cosine"}, "colour": 1}), "colour"),
        (json!({"vectors": {"size": 3, "distance": "Cosine"}, "shard_number": 2}), "shard_number"),
        (json!({"vectors": {"size": 3, "distance": "Cosine"}, "index": {"kind": "btree"}}), "index"),
        (
            json!({"vectors": {"size": 3, "distance": "Cosine"}, "index": {"kind": "hnsw", "params": {"m": 0}}}),
            "index.params",
        ),
        (
            json!({"vectors": {"size": 3, "distance": "Cosine"}, "quantization_config": {"scalar": {}}}),
            "quantization_config",
        ),
        (
            json!({"vectors": {"size": 3, "distance": "Cosine"}, "index": {"kind": "ivf"}, "hnsw_config": {"m": 4}}),
            "hnsw_config",
        ),
    ];
    for (body, needle) in cases {
        t.err("PUT", "/collections/x", Some(body), StatusCode::BAD_REQUEST, needle).await;
    }
    t.err(
        "PUT",
        "/collections/bad%20name",
        Some(json!({"vectors": {"size": 3, "distance": "Cosine"}})),
        StatusCode::BAD_REQUEST,
        "collection name",
    )
    .await;
    assert_eq!(t.ok("GET", "/collections", None).await["collections"], json!([]));
}

#[tokio::test]
async fn upsert_retrieve_and_get() {
    let t = server();
    with_points(&t).await;
    assert_eq!(t.count("c").await, 20);
    let recs = t.ok("POST", "/collections/c/points", Some(json!({"ids": [3, 5, 999], "with_vector": true}))).await;
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 2, "missing ids are left out");
    assert_eq!(recs[0]["payload"]["n"], 3);
    assert_eq!(recs[0]["vector"].as_array().unwrap().len(), 3);
    let only = t.ok("POST", "/collections/c/points", Some(json!({"ids": [4], "with_payload": ["parity"]}))).await;
    assert_eq!(only[0]["payload"], json!({"parity": "even"}));
    assert!(only[0].get("vector").is_none());
    let excl = t
        .ok("POST", "/collections/c/points", Some(json!({"ids": [4], "with_payload": {"exclude": ["nested", "n"]}})))
        .await;
    assert_eq!(excl[0]["payload"], json!({"parity": "even"}));
    let one = t.ok("GET", "/collections/c/points/7", None).await;
    assert_eq!(one["id"], 7);
    assert_eq!(one["payload"]["nested"]["x"], 70);
    t.err("GET", "/collections/c/points/12345", None, StatusCode::NOT_FOUND, "12345").await;
    t.err("GET", "/collections/c/points/abc", None, StatusCode::BAD_REQUEST, "id").await;
    // Column-wise batch and UUID ids.
    let uuid = "550e8400-e29b-41d4-a716-446655440000";
    t.ok("PUT", "/collections/c/points", Some(json!({"batch": {"ids": [100, uuid], "vectors": [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "payloads": [{"k": 1}, null]}}))).await;
    let got = t.ok("GET", &format!("/collections/c/points/{uuid}"), None).await;
    assert_eq!(got["id"], uuid);
    assert_eq!(t.count("c").await, 22);
}

#[tokio::test]
async fn bad_points_are_rejected_whole_and_change_nothing() {
    let t = server();
    with_points(&t).await;
    let cases = [
        (json!({"points": [{"id": 50, "vector": [1.0, 0.0, 0.0]}, {"id": 51, "vector": [1.0, 0.0]}]}), "point 51"),
        (json!({"points": [{"id": 52, "vector": ["a", 0.0, 0.0]}]}), "points[0].vector"),
        (json!({"points": [{"id": -1, "vector": [1.0, 0.0, 0.0]}]}), "points[0].id"),
        (json!({"points": [{"id": 53, "vector": [0.0, 0.0, 0.0]}]}), "53"),
        (json!({"points": [{"id": 54, "vector": [1.0, 0.0, 0.0], "payload": [1, 2]}]}), "points[0].payload"),
        (json!({"points": [{"id": 55, "vector": [1.0, 0.0, 0.0], "colour": 1}]}), "colour"),
        (json!({"points": []}), "points"),
        (json!({}), "points"),
        (json!({"batch": {"ids": [1, 2], "vectors": [[1.0, 0.0, 0.0]]}}), "batch.vectors"),
        (json!({"points": [{"id": 56, "vector": {"other": [1.0, 0.0, 0.0]}}]}), "vector.other"),
    ];
    for (body, needle) in cases {
        t.err("PUT", "/collections/c/points", Some(body), StatusCode::BAD_REQUEST, needle).await;
    }
    // NaN and infinity are not JSON; a huge exponent overflows f32 to infinity, which the engine refuses.
    for raw in [
        r#"{"points": [{"id": 60, "vector": [NaN, 0, 0]}]}"#,
        r#"{"points": [{"id": 61, "vector": [1e999, 0, 0]}]}"#,
        r#"{"points": [{"id": 62, "vector": [1, 0, 0]}"#,
        "not json",
    ] {
        let (s, v) =
            t.raw("PUT", "/collections/c/points", Body::from(raw), &[("content-type", "application/json")]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{raw}: {}", String::from_utf8_lossy(&v));
    }
    let (s, _) = t.raw("PUT", "/collections/c/points", Body::from("{}"), &[("content-type", "text/plain")]).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    t.err(
        "PUT",
        "/collections/nope/points",
        Some(json!({"points": [{"id": 1, "vector": [1.0]}]})),
        StatusCode::NOT_FOUND,
        "nope",
    )
    .await;
    assert_eq!(t.count("c").await, 20, "nothing written");
}

#[tokio::test]
async fn limits_answer_413_and_400() {
    let cfg = ServerConfig {
        max_body_bytes: 4096,
        max_batch_points: 5,
        max_limit: 50,
        max_search_batch: 2,
        ..Default::default()
    };
    let t = setup(cfg);
    t.ok("PUT", "/collections/c", Some(json!({"vectors": {"size": 3, "distance": "Cosine"}}))).await;
    let big: Vec<Value> = (0..200).map(|i| json!({"id": i, "vector": [1.0, 0.5, 0.25]})).collect();
    t.err("PUT", "/collections/c/points", Some(json!({"points": big})), StatusCode::PAYLOAD_TOO_LARGE, "too large")
        .await;
    let six: Vec<Value> = (0..6).map(|i| json!({"id": i, "vector": [1.0, 0.5, 0.25]})).collect();
    t.err("PUT", "/collections/c/points", Some(json!({"points": six})), StatusCode::BAD_REQUEST, "at most 5").await;
    t.err(
        "POST",
        "/collections/c/points/search",
        Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 51})),
        StatusCode::BAD_REQUEST,
        "limit",
    )
    .await;
    t.err(
        "POST",
        "/collections/c/points/search",
        Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 0})),
        StatusCode::BAD_REQUEST,
        "limit",
    )
    .await;
    t.err(
        "POST",
        "/collections/c/points/search",
        Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 10, "offset": 501})),
        StatusCode::BAD_REQUEST,
        "offset",
    )
    .await;
    let s = json!({"vector": [1.0, 0.0, 0.0], "limit": 1});
    t.err(
        "POST",
        "/collections/c/points/search/batch",
        Some(json!({"searches": [s, s, s]})),
        StatusCode::BAD_REQUEST,
        "searches",
    )
    .await;
    t.err("POST", "/collections/c/points/scroll", Some(json!({"limit": 51})), StatusCode::BAD_REQUEST, "limit").await;
    assert_eq!(t.count("c").await, 0);
}

#[tokio::test]
async fn search_and_query_with_filters() {
    let t = server();
    with_points(&t).await;
    let hits = t
        .ok(
            "POST",
            "/collections/c/points/search",
            Some(json!({"vector": [1.0, 0.0, 0.1], "limit": 3, "with_payload": true})),
        )
        .await;
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["id"], 0);
    assert!(hits[0]["score"].as_f64().unwrap() >= hits[1]["score"].as_f64().unwrap());
    assert_eq!(hits[0]["version"], 0);
    assert!(hits[0]["payload"].is_object());
    // Filtered: only odd points, no payload by default.
    let f = json!({"must": [{"key": "parity", "match": {"value": "odd"}}]});
    let hits = t
        .ok("POST", "/collections/c/points/search", Some(json!({"vector": [1.0, 0.0, 0.1], "limit": 5, "filter": f})))
        .await;
    let ids: Vec<u64> = hits.as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![1, 3, 5, 7, 9]);
    assert!(hits[0].get("payload").is_none());
    // Query: plain vector, {"nearest": …}, by id (the point itself excluded), explain, range filter.
    let q = t.ok("POST", "/collections/c/points/query", Some(json!({"query": [1.0, 0.0, 0.1], "limit": 2}))).await;
    assert_eq!(q["points"][0]["id"], 0);
    let q = t.ok("POST", "/collections/c/points/query", Some(json!({"query": {"nearest": [1.0, 0.0, 0.1]}, "limit": 2, "filter": {"must": [{"key": "n", "range": {"gte": 10}}]}, "with_payload": true}))).await;
    assert_eq!(q["points"][0]["id"], 10);
    assert_eq!(q["points"][0]["payload"]["n"], 10);
    let q = t.ok("POST", "/collections/c/points/query", Some(json!({"query": 5, "limit": 2}))).await;
    let ids: Vec<u64> = q["points"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert!(!ids.contains(&5) && ids.len() == 2, "{ids:?}");
    let q = t.ok("POST", "/collections/c/points/query", Some(json!({"query": [1.0, 0.0, 0.1], "limit": 2, "explain": true, "filter": {"must": [{"key": "parity", "match": {"value": "even"}}]}}))).await;
    assert_eq!(q["explain"]["matched"], 10, "{q}");
    t.err("POST", "/collections/c/points/query", Some(json!({"query": 999, "limit": 2})), StatusCode::NOT_FOUND, "999")
        .await;
    t.err("POST", "/collections/c/points/query", Some(json!({"limit": 2})), StatusCode::BAD_REQUEST, "query").await;
    t.err(
        "POST",
        "/collections/c/points/query",
        Some(json!({"query": [1.0, 0.0, 0.1], "prefetch": [{}]})),
        StatusCode::BAD_REQUEST,
        "prefetch",
    )
    .await;
    t.err(
        "POST",
        "/collections/c/points/search",
        Some(json!({"vector": [1.0, 0.0], "limit": 2})),
        StatusCode::BAD_REQUEST,
        "vector",
    )
    .await;
    t.err(
        "POST",
        "/collections/c/points/search",
        Some(json!({"vector": [1.0, 0.0, 0.1], "limit": 2, "filter": {"must": [{"key": "n", "rnage": {}}]}})),
        StatusCode::BAD_REQUEST,
        "filter",
    )
    .await;
    // Batches answer in order.
    let b = t.ok("POST", "/collections/c/points/search/batch", Some(json!({"searches": [{"vector": [1.0, 0.0, 0.1], "limit": 1}, {"vector": [1.0, 0.95, 0.1], "limit": 1}]}))).await;
    assert_eq!(b[0][0]["id"], 0);
    assert_eq!(b[1][0]["id"], 19);
    let b = t
        .ok(
            "POST",
            "/collections/c/points/query/batch",
            Some(json!({"searches": [{"query": [1.0, 0.95, 0.1], "limit": 1}]})),
        )
        .await;
    assert_eq!(b[0]["points"][0]["id"], 19);
    let b = t
        .ok(
            "POST",
            "/collections/c/points/search",
            Some(json!({"vector": [1.0, 0.0, 0.1], "limit": 20, "score_threshold": 0.999})),
        )
        .await;
    assert!(!b.as_array().unwrap().is_empty() && b.as_array().unwrap().len() < 20);
}

#[tokio::test]
async fn filters_nested_too_deep_are_400() {
    let t = server();
    with_points(&t).await;
    let mut f = json!({"must": [{"key": "n", "match": {"value": 1}}]});
    for _ in 0..40 {
        f = json!({"must": [{"must": f["must"].clone()}]});
        f = json!({"must": [f]});
    }
    let (s, _) = t.call("POST", "/collections/c/points/count", Some(json!({"filter": f}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn payload_updates_deletes_scroll_and_count() {
    let t = server();
    with_points(&t).await;
    t.ok("POST", "/collections/c/points/payload", Some(json!({"payload": {"tag": "x"}, "points": [1, 2]}))).await;
    t.ok("POST", "/collections/c/points/payload", Some(json!({"payload": {"y": 1}, "points": [1], "key": "nested"})))
        .await;
    let r = t.ok("GET", "/collections/c/points/1", None).await;
    assert_eq!(r["payload"]["tag"], "x");
    assert_eq!(r["payload"]["nested"], json!({"x": 10, "y": 1}));
    t.ok(
        "PUT",
        "/collections/c/points/payload",
        Some(json!({"payload": {"only": true}, "filter": {"must": [{"key": "tag", "match": {"value": "x"}}]}})),
    )
    .await;
    assert_eq!(t.ok("GET", "/collections/c/points/2", None).await["payload"], json!({"only": true}));
    t.ok("POST", "/collections/c/points/payload/delete", Some(json!({"keys": ["parity"], "points": [3]}))).await;
    assert_eq!(t.ok("GET", "/collections/c/points/3", None).await["payload"], json!({"n": 3, "nested": {"x": 30}}));
    t.ok("POST", "/collections/c/points/payload/clear", Some(json!({"points": [4]}))).await;
    assert_eq!(t.ok("GET", "/collections/c/points/4", None).await["payload"], json!({}));
    t.err(
        "POST",
        "/collections/c/points/payload",
        Some(json!({"payload": {"a": 1}, "points": [777]})),
        StatusCode::NOT_FOUND,
        "777",
    )
    .await;
    t.err(
        "POST",
        "/collections/c/points/payload",
        Some(json!({"payload": {"a": 1}})),
        StatusCode::BAD_REQUEST,
        "points",
    )
    .await;
    // Count with a filter; delete by filter and by ids.
    let odd = json!({"must": [{"key": "parity", "match": {"value": "odd"}}]});
    assert_eq!(
        t.ok("POST", "/collections/c/points/count", Some(json!({"filter": odd}))).await["count"],
        8,
        "1 was overwritten, 3 lost its parity"
    );
    t.ok("POST", "/collections/c/points/delete", Some(json!({"filter": odd}))).await;
    t.ok("POST", "/collections/c/points/delete", Some(json!({"points": [0, 12345]}))).await;
    assert_eq!(t.count("c").await, 11);
    // Scroll pages through everything left, in id order, exactly once.
    let mut seen = Vec::new();
    let mut offset = Value::Null;
    loop {
        let mut body = json!({"limit": 3, "with_payload": false});
        if !offset.is_null() {
            body["offset"] = offset.clone();
        }
        let page = t.ok("POST", "/collections/c/points/scroll", Some(body)).await;
        for p in page["points"].as_array().unwrap() {
            assert!(p.get("payload").is_none());
            seen.push(p["id"].as_u64().unwrap());
        }
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18]);
    // Scroll and count without a body.
    let (s, v) = t.raw("POST", "/collections/c/points/scroll", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&v));
}

#[tokio::test]
async fn payload_indexes() {
    let t = server();
    with_points(&t).await;
    let r = t
        .ok("PUT", "/collections/c/index?wait=true", Some(json!({"field_name": "parity", "field_schema": "keyword"})))
        .await;
    assert_eq!(r["status"], "completed");
    t.ok(
        "PUT",
        "/collections/c/index",
        Some(json!({"field_name": "n", "field_schema": {"type": "integer", "lookup": true}})),
    )
    .await;
    let info = t.ok("GET", "/collections/c", None).await;
    assert_eq!(info["payload_schema"]["parity"]["data_type"], "keyword");
    assert_eq!(info["payload_schema"]["n"]["data_type"], "integer");
    t.err(
        "PUT",
        "/collections/c/index",
        Some(json!({"field_name": "g", "field_schema": "geopoint"})),
        StatusCode::BAD_REQUEST,
        "field_schema",
    )
    .await;
    t.ok("PUT", "/collections/c/index", Some(json!({"field_name": "g", "field_schema": "geo"}))).await;
    let info = t.ok("GET", "/collections/c", None).await;
    assert_eq!(info["payload_schema"]["g"]["data_type"], "geo");
    t.err("PUT", "/collections/c/index", Some(json!({"field_name": "g"})), StatusCode::BAD_REQUEST, "field_schema")
        .await;
    t.ok("DELETE", "/collections/c/index/parity", None).await;
    let info = t.ok("GET", "/collections/c", None).await;
    assert!(info["payload_schema"].get("parity").is_none());
}

#[tokio::test]
async fn text_indexes_bm25_and_fusion_queries() {
    let t = server();
    t.ok("PUT", "/collections/h", Some(json!({"vectors": {"size": 2, "distance": "Euclid"}}))).await;
    let rows = [
        (1, [9.0, 9.0], "Dogs are barking loudly at night"),
        (2, [8.0, 8.0], "a cat"),
        (3, [0.1, 0.0], "the dog barked"),
    ];
    let points: Vec<Value> =
        rows.iter().map(|(id, v, b)| json!({"id": id, "vector": v, "payload": {"body": b, "n": id}})).collect();
    t.ok("PUT", "/collections/h/points?wait=true", Some(json!({"points": points}))).await;
    // Qdrant's text settings; unsupported ones are 400 naming the setting, and nothing is created.
    for (schema, field) in [
        (json!({"type": "text", "tokenizer": "prefix"}), "field_schema.tokenizer"),
        (json!({"type": "text", "lowercase": false}), "field_schema.lowercase"),
        (json!({"type": "text", "stemmer": {"type": "snowball", "language": "german"}}), "field_schema.stemmer"),
        (json!({"type": "text", "stopwords": "french"}), "field_schema.stopwords"),
        (json!({"type": "text", "min_token_len": 2}), "field_schema.min_token_len"),
    ] {
        let body = json!({"field_name": "body", "field_schema": schema});
        t.err("PUT", "/collections/h/index", Some(body), StatusCode::BAD_REQUEST, field).await;
    }
    assert_eq!(t.ok("GET", "/collections/h", None).await["payload_schema"], json!({}));
    let schema = json!({"type": "text", "tokenizer": "word", "lowercase": true,
        "stemmer": {"type": "snowball", "language": "english"}, "stopwords": {"languages": ["english"]}});
    t.ok("PUT", "/collections/h/index?wait=true", Some(json!({"field_name": "body", "field_schema": schema}))).await;
    let info = t.ok("GET", "/collections/h", None).await;
    assert_eq!(info["payload_schema"]["body"]["data_type"], "text");
    assert_eq!(info["payload_schema"]["body"]["params"]["stemmer"]["language"], "english");
    assert_eq!(info["payload_schema"]["body"]["params"]["stopwords"], "english");
    // BM25: the shorter gloss with both terms first; a filter narrows; scores are BM25's (positive, decreasing).
    let q = |body: Value| async { t.ok("POST", "/collections/h/points/query", Some(body)).await["points"].clone() };
    let hits = q(json!({"query": {"bm25": {"key": "body", "text": "barking dog"}}, "with_payload": true})).await;
    let ids: Vec<u64> = hits.as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [3, 1]);
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap());
    assert_eq!(hits[0]["payload"]["body"], "the dog barked");
    let filtered = json!({"query": {"bm25": {"key": "body", "text": "dog"}},
        "filter": {"must": [{"key": "n", "match": {"value": 1}}]}});
    assert_eq!(q(filtered).await.as_array().unwrap().len(), 1);
    // Fusion of BM25 and a nearest list, batch too.
    let fused = json!({"prefetch": [{"query": {"bm25": {"key": "body", "text": "cat"}}}, {"query": [0.0, 0.0], "limit": 2}],
        "query": {"rrf": {"k": 1}}, "limit": 3});
    let hits = q(fused.clone()).await;
    let ids: Vec<u64> = hits.as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [2, 3], "2 is first in one list and second in the other; 1 is in neither");
    // Weighted RRF: weighting the nearest list puts its best (3) before the BM25 list's best (2).
    let weighted = json!({"prefetch": [{"query": {"bm25": {"key": "body", "text": "cat"}}}, {"query": [0.0, 0.0], "limit": 2}],
        "query": {"rrf": {"k": 1, "weights": [1.0, 4.0]}}, "limit": 3});
    let hits_w = q(weighted).await;
    let ids_w: Vec<u64> = hits_w.as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids_w, [3, 2]);
    let batch = t
        .ok(
            "POST",
            "/collections/h/points/query/batch",
            Some(json!({"searches": [fused, {"query": [0.0, 0.0], "limit": 1}]})),
        )
        .await;
    assert_eq!(batch[0]["points"], hits);
    assert_eq!(batch[1]["points"][0]["id"], 3);
    // Bad staged queries name the field.
    for (body, needle) in [
        (json!({"query": {"bm25": {"key": "n", "text": "x"}}}), "key"),
        (json!({"query": {"bm25": {"key": "nope", "text": "x"}}}), "no index"),
        (json!({"query": {"fusion": "rrf"}}), "prefetch"),
        (json!({"query": {"fusion": "rrf"}, "prefetch": [{"query": [0.0]}]}), "vector"),
        (
            json!({"query": {"rrf": {"k": 60, "weights": [1.0]}}, "prefetch": [{"query": [0.0, 0.0]}, {"query": [1.0, 0.0]}]}),
            "one weight per prefetch",
        ),
        (json!({"query": {"rrf": {"weights": [-1.0]}}, "prefetch": [{"query": [0.0, 0.0]}]}), "query.rrf"),
        (
            json!({"query": {"fusion": "rrf"}, "prefetch": [{"query": [0.0, 0.0], "lookup_from": {"collection": "x", "y": 1}}]}),
            "prefetch[0]",
        ),
    ] {
        t.err("POST", "/collections/h/points/query", Some(body), StatusCode::BAD_REQUEST, needle).await;
    }
    // A lookup_from naming a missing collection is a 404 even where the query has no ids to look up.
    let missing =
        json!({"query": {"fusion": "rrf"}, "prefetch": [{"query": [0.0, 0.0], "lookup_from": {"collection": "x"}}]});
    t.err("POST", "/collections/h/points/query", Some(missing), StatusCode::NOT_FOUND, "lookup_from.collection").await;
    // Grouped queries with stages: BM25 and a fusion, grouped by a payload key, scores as ungrouped.
    let set = |g: &str, ids: &[u64]| json!({"payload": {"g": g}, "points": ids});
    t.ok("POST", "/collections/h/points/payload?wait=true", Some(set("dogs", &[1, 3]))).await;
    t.ok("POST", "/collections/h/points/payload?wait=true", Some(set("cats", &[2]))).await;
    let bm25 = json!({"query": {"bm25": {"key": "body", "text": "barking dog"}}, "group_by": "g", "group_size": 2,
        "with_payload": ["n"]});
    let g = t.ok("POST", "/collections/h/points/query/groups", Some(bm25)).await;
    let ungrouped = q(json!({"query": {"bm25": {"key": "body", "text": "barking dog"}}})).await;
    assert_eq!(g["groups"].as_array().unwrap().len(), 1, "{g}");
    assert_eq!(g["groups"][0]["id"], "dogs");
    for (hit, want) in g["groups"][0]["hits"].as_array().unwrap().iter().zip(ungrouped.as_array().unwrap()) {
        assert_eq!((&hit["id"], &hit["score"]), (&want["id"], &want["score"]));
        assert_eq!(hit["payload"], json!({"n": hit["id"]}));
    }
    let fused_groups = json!({"prefetch": [{"query": {"bm25": {"key": "body", "text": "cat"}}},
        {"query": [0.0, 0.0], "limit": 2}], "query": {"rrf": {"k": 1}}, "group_by": "g", "group_size": 1, "limit": 2});
    let g = t.ok("POST", "/collections/h/points/query/groups", Some(fused_groups)).await;
    let got: Vec<(Value, Value)> =
        g["groups"].as_array().unwrap().iter().map(|x| (x["id"].clone(), x["hits"][0]["id"].clone())).collect();
    assert_eq!(got, [(json!("cats"), json!(2)), (json!("dogs"), json!(3))], "{g}");
    assert_eq!(g["groups"][0]["hits"][0]["score"], hits[0]["score"]);
    // match.text on the text index: terms, stemmed.
    let filter = json!({"filter": {"must": [{"key": "body", "match": {"text": "DOGS bark"}}]}});
    assert_eq!(t.ok("POST", "/collections/h/points/count", Some(filter)).await["count"], 2);
}

#[tokio::test]
async fn recommend_searches_near_the_positive_examples_away_from_the_negative() {
    let t = server();
    t.ok("PUT", "/collections/r", Some(json!({"vectors": {"size": 2, "distance": "Euclid"}}))).await;
    let points: Vec<Value> = (0..10).map(|i| json!({"id": i, "vector": [i as f32, 0.0]})).collect();
    t.ok("PUT", "/collections/r/points?wait=true", Some(json!({"points": points}))).await;
    let ids = |v: &Value| v["points"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect::<Vec<_>>();
    // mean(positive) = 4: the nearest points other than the examples.
    let r = t
        .ok(
            "POST",
            "/collections/r/points/query",
            Some(json!({"query": {"recommend": {"positive": [3, 5]}}, "limit": 3})),
        )
        .await;
    assert_eq!(ids(&r), [4, 2, 6]);
    // 2·4 − 1 = 7 with a negative vector at 1.
    let body = json!({"query": {"recommend": {"positive": [3, [5.0, 0.0]], "negative": [[1.0, 0.0]], "strategy": "average_vector"}}, "limit": 2});
    assert_eq!(ids(&t.ok("POST", "/collections/r/points/query", Some(body)).await), [7, 6]);
    // Inside a prefetch too.
    let body = json!({"prefetch": {"query": {"recommend": {"positive": [9]}}, "limit": 2}, "query": {"fusion": "rrf"}});
    assert_eq!(ids(&t.ok("POST", "/collections/r/points/query", Some(body)).await), [8, 7]);
    for (body, status, needle) in [
        (json!({"query": {"recommend": {"positive": []}}}), StatusCode::BAD_REQUEST, "query.recommend.positive"),
        (
            json!({"query": {"recommend": {"positive": [1], "strategy": "nearest_mean"}}}),
            StatusCode::BAD_REQUEST,
            "query.recommend.strategy",
        ),
        (
            json!({"query": {"recommend": {"positive": [[1.0]]}}}),
            StatusCode::BAD_REQUEST,
            "query.recommend.positive[0]",
        ),
        (json!({"query": {"recommend": {"positive": [1, 99]}}}), StatusCode::NOT_FOUND, "query.recommend.positive[1]"),
    ] {
        t.err("POST", "/collections/r/points/query", Some(body), status, needle).await;
    }
}

#[tokio::test]
async fn scroll_ordered_by_a_payload_key() {
    let t = server();
    with_points(&t).await;
    let ids = |r: &Value| r["points"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect::<Vec<_>>();
    let r = t
        .ok(
            "POST",
            "/collections/c/points/scroll",
            Some(json!({"order_by": {"key": "n", "direction": "desc"}, "limit": 3})),
        )
        .await;
    assert_eq!(ids(&r), [19, 18, 17]);
    assert!(r["next_page_offset"].is_null());
    let r = t
        .ok(
            "POST",
            "/collections/c/points/scroll",
            Some(json!({"order_by": {"key": "n", "start_from": 5}, "limit": 2})),
        )
        .await;
    assert_eq!(ids(&r), [5, 6]);
    let r = t.ok("POST", "/collections/c/points/scroll", Some(json!({"order_by": "n", "limit": 1}))).await;
    assert_eq!(ids(&r), [0]);
    for (body, needle) in [
        (json!({"order_by": "n", "offset": 3}), "offset"),
        (json!({"order_by": {"key": "n", "direction": "up"}}), "order_by.direction"),
        (json!({"order_by": {"key": "n", "start_from": "x"}}), "order_by.start_from"),
        (json!({"order_by": {"field": "n"}}), "order_by.field"),
        (json!({"order_by": 3}), "order_by"),
    ] {
        t.err("POST", "/collections/c/points/scroll", Some(body), StatusCode::BAD_REQUEST, needle).await;
    }
}

#[tokio::test]
async fn wait_makes_unsynced_writes_durable() {
    let t = server();
    t.ok("PUT", "/collections/n", Some(json!({"vectors": {"size": 2, "distance": "Cosine"}, "durability": "none"})))
        .await;
    let r = t.ok("PUT", "/collections/n/points", Some(json!({"points": [{"id": 1, "vector": [1.0, 0.0]}]}))).await;
    assert_eq!(r["status"], "acknowledged");
    let r2 = t
        .ok("PUT", "/collections/n/points?wait=true", Some(json!({"points": [{"id": 2, "vector": [1.0, 0.0]}]})))
        .await;
    assert_eq!(r2["status"], "completed");
    assert!(r2["operation_id"].as_u64() > r["operation_id"].as_u64());
    t.err(
        "PUT",
        "/collections/n/points?wait=maybe",
        Some(json!({"points": [{"id": 3, "vector": [1.0, 0.0]}]})),
        StatusCode::BAD_REQUEST,
        "query string",
    )
    .await;
}

#[tokio::test]
async fn writes_answer_a_read_token_that_reads_accept() {
    let t = server();
    with_points(&t).await;
    let r =
        t.ok("PUT", "/collections/c/points", Some(json!({"points": [{"id": 99, "vector": [0.0, 1.0, 0.0]}]}))).await;
    let seq = r["operation_id"].as_u64().unwrap();
    assert_eq!(r["read_token"], json!(format!("0:{seq}")), "{r}");
    let token = r["read_token"].clone();
    // Every read that takes `min_seq` takes the token too (one node is shard 0).
    let hits = t
        .ok(
            "POST",
            "/collections/c/points/search",
            Some(json!({"vector": [0.0, 1.0, 0.0], "limit": 1, "read_token": token})),
        )
        .await;
    assert_eq!(hits[0]["id"], 99);
    let got = t.ok("POST", "/collections/c/points", Some(json!({"ids": [99], "read_token": token}))).await;
    assert_eq!(got.as_array().unwrap().len(), 1);
    let n = t.ok("POST", "/collections/c/points/count", Some(json!({"read_token": token}))).await;
    assert_eq!(n["count"], 21);
    let page = t.ok("POST", "/collections/c/points/scroll", Some(json!({"limit": 100, "read_token": token}))).await;
    assert_eq!(page["points"].as_array().unwrap().len(), 21);
    let q =
        t.ok("POST", "/collections/c/points/query", Some(json!({"query": 99, "limit": 2, "read_token": token}))).await;
    assert_eq!(q["points"].as_array().unwrap().len(), 2);
    // A token from a cluster (naming other shards), or not a token at all: 400 naming the field.
    for (bad, needle) in [("0:1,3:9", "shard 3"), ("17", "shard:seq"), ("x:1", "shard:seq")] {
        t.err("POST", "/collections/c/points/count", Some(json!({"read_token": bad})), StatusCode::BAD_REQUEST, needle)
            .await;
        t.err(
            "POST",
            "/collections/c/points/search",
            Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 1, "read_token": bad})),
            StatusCode::BAD_REQUEST,
            "read_token",
        )
        .await;
    }
}

#[tokio::test]
async fn min_seq_beyond_every_write_is_a_409_at_once() {
    let t = server();
    with_points(&t).await;
    let r =
        t.ok("PUT", "/collections/c/points", Some(json!({"points": [{"id": 98, "vector": [0.0, 1.0, 0.0]}]}))).await;
    let last = r["operation_id"].as_u64().unwrap();
    let future = last + 1_000_000;
    let started = std::time::Instant::now();
    let reads = [
        ("/collections/c/points", json!({"ids": [98], "min_seq": future})),
        ("/collections/c/points/count", json!({"min_seq": future})),
        ("/collections/c/points/scroll", json!({"limit": 1, "min_seq": future})),
        ("/collections/c/points/search", json!({"vector": [0.0, 1.0, 0.0], "limit": 1, "min_seq": future})),
        ("/collections/c/points/query", json!({"query": [0.0, 1.0, 0.0], "limit": 1, "min_seq": future})),
        ("/collections/c/points/query", json!({"query": 98, "limit": 1, "min_seq": future})),
        (
            "/collections/c/points/query",
            json!({"prefetch": [{"query": [0.0, 1.0, 0.0]}], "query": {"fusion": "rrf"}, "min_seq": future}),
        ),
        ("/collections/c/points/count", json!({"read_token": format!("0:{future}")})),
    ];
    for (path, body) in reads {
        t.err("POST", path, Some(body), StatusCode::CONFLICT, &format!("at most {last}")).await;
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused without waiting");
    // The last write's own number is still honoured.
    let n = t.ok("POST", "/collections/c/points/count", Some(json!({"min_seq": last}))).await;
    assert_eq!(n["count"], 21);
}

#[tokio::test]
async fn api_keys_full_and_read_only() {
    let cfg = ServerConfig {
        api_key: Some("full-secret-key".into()),
        read_only_api_key: Some("read-only-key".into()),
        ..Default::default()
    };
    let mut t = setup(cfg);
    t.err("GET", "/collections", None, StatusCode::UNAUTHORIZED, "missing API key").await;
    assert_eq!(t.call("GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(t.call("GET", "/readyz", None).await.0, StatusCode::OK);
    t.key = Some("wrong-key-123".into());
    t.err("GET", "/collections", None, StatusCode::UNAUTHORIZED, "invalid API key").await;
    t.key = Some("full-secret-key".into());
    with_points(&t).await;
    t.key = Some("read-only-key".into());
    t.ok("POST", "/collections/c/points/search", Some(json!({"vector": [1.0, 0.0, 0.1], "limit": 1}))).await;
    t.ok("GET", "/collections/c", None).await;
    t.ok("POST", "/collections/c/points/scroll", Some(json!({}))).await;
    t.err(
        "PUT",
        "/collections/c/points",
        Some(json!({"points": [{"id": 99, "vector": [1.0, 0.0, 0.0]}]})),
        StatusCode::FORBIDDEN,
        "read-only",
    )
    .await;
    t.err("DELETE", "/collections/c", None, StatusCode::FORBIDDEN, "read-only").await;
    t.err("POST", "/collections/c/points/delete", Some(json!({"points": [1]})), StatusCode::FORBIDDEN, "read-only")
        .await;
    assert_eq!(t.count("c").await, 20);
    // Bearer works too.
    t.key = None;
    let (s, _) = t.raw("GET", "/collections", Body::empty(), &[("authorization", "Bearer full-secret-key")]).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_and_report_collections() {
    let t = server();
    with_points(&t).await;
    t.call("GET", "/collections/nope", None).await;
    let (s, body) = t.raw("GET", "/metrics", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(
            r#"quiver_http_requests_total{method="PUT",route="/collections/{collection_name}/points",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"quiver_http_requests_total{method="GET",route="/collections/{collection_name}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"quiver_collection_points{collection="c"} 20"#), "{text}");
    assert!(text.contains(r#"quiver_collection_segments{collection="c"}"#), "{text}");
    assert!(text.contains("quiver_optimizer_jobs_total{collection=\"c\",job=\"seal\"}"), "{text}");
    assert!(text.contains("quiver_http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn every_request_gets_a_request_id() {
    let t = server();
    let req = Request::builder().uri("/collections").body(Body::empty()).unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    let id = resp.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    let req = Request::builder().uri("/collections").header("x-request-id", "mine-1").body(Body::empty()).unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "mine-1");
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_listed_route_exists() {
    let t = server();
    let (s, doc) = t.call("GET", "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/collections/{collection_name}/points/search",
        "/collections/{collection_name}/points/query",
        "/collections/{collection_name}/points/scroll",
        "/collections/{collection_name}/index",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the document");
    }
    // Every documented operation is routed: calling it never reaches the fallback.
    for (path, ops) in paths {
        let uri = path.replace("{collection_name}", "nope").replace("{field_name}", "f").replace("{id}", "1");
        for method in ops.as_object().unwrap().keys() {
            let (s, v) = t.call(&method.to_uppercase(), &uri, Some(json!({}))).await;
            let fell_through = v["status"]["error"].as_str().is_some_and(|m| m.contains("no such route"));
            assert!(!fell_through && s != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {s} {v}");
        }
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Without keys the server asks for none, and its document says so; with keys, it lists both schemes.
    assert!(doc.get("security").is_none_or(|v| v.is_null()), "{}", doc["security"]);
    assert!(doc["components"]["securitySchemes"].as_object().is_none_or(|m| m.is_empty()));
    let mut keyed = setup(ServerConfig { api_key: Some("full-secret-key".into()), ..Default::default() });
    keyed.key = Some("full-secret-key".into());
    let (s, doc) = keyed.call("GET", "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["components"]["securitySchemes"]["api-key"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(doc["security"].as_array().map(Vec::len), Some(2), "{}", doc["security"]);
}

/// Three well-separated groups of 100 points in 8-d, each with a group tag and a text.
async fn three_groups(t: &T) {
    t.ok("PUT", "/collections/m", Some(json!({"vectors": {"size": 8, "distance": "Cosine"}}))).await;
    let points: Vec<Value> = (0..300)
        .map(|i: u64| {
            let g = (i % 3) as usize;
            let mut v = vec![0.05f32; 8];
            v[g * 2] = 1.0;
            // Small, deterministic spread inside the group.
            v[7] = ((i * 37) % 100) as f32 / 400.0;
            v[6] = ((i * 53) % 100) as f32 / 400.0;
            let group = ["a", "b", "c"][g];
            json!({"id": i, "vector": v, "payload": {"group": group, "text": format!("point {i} of group {g}")}})
        })
        .collect();
    t.ok("PUT", "/collections/m/points?wait=true", Some(json!({"points": points}))).await;
}

#[tokio::test]
async fn the_map_lays_out_a_sample_coloured_and_labelled() {
    let t = server();
    three_groups(&t).await;
    let m = t.ok("GET", "/collections/m/map?sample=300&color_by=group", None).await;
    assert_eq!(m["method"], "umap");
    assert_eq!(m["total"], 300);
    assert_eq!(m["text_field"], "text");
    let pts = m["points"].as_array().unwrap();
    assert_eq!(pts.len(), 300);
    for p in pts {
        let (x, y) = (p["x"].as_f64().unwrap(), p["y"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y), "{p}");
        assert!(p["text"].as_str().unwrap().starts_with("point "), "{p}");
    }
    // The groups stay apart: each point's nearest neighbour on the map is from its own group.
    let same = (0..pts.len())
        .filter(|&i| {
            let d = |j: usize| {
                (pts[i]["x"].as_f64().unwrap() - pts[j]["x"].as_f64().unwrap()).powi(2)
                    + (pts[i]["y"].as_f64().unwrap() - pts[j]["y"].as_f64().unwrap()).powi(2)
            };
            let j = (0..pts.len()).filter(|&j| j != i).min_by(|&a, &b| d(a).total_cmp(&d(b))).unwrap();
            pts[i]["color"] == pts[j]["color"]
        })
        .count();
    assert!(same >= 290, "only {same} of 300 points sit beside their own group");
    // Same request, same map.
    let again = t.ok("GET", "/collections/m/map?sample=300&color_by=group", None).await;
    assert_eq!(again["points"], m["points"]);

    // A smaller sample is spread over the whole id range; PCA reports its variance.
    let m = t.ok("GET", "/collections/m/map?sample=30&method=pca", None).await;
    let ids: Vec<u64> = m["points"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 30);
    assert_eq!(ids[0], 0);
    assert!(*ids.last().unwrap() >= 280, "{ids:?}");
    assert!(m["points"][0].get("color").is_none());
    let ev = m["explained_variance"].as_array().unwrap();
    assert!(ev[0].as_f64().unwrap() > 0.2 && ev[0].as_f64().unwrap() >= ev[1].as_f64().unwrap(), "{ev:?}");

    // A filter maps only what it admits.
    let f = "%7B%22must%22%3A%5B%7B%22key%22%3A%22group%22%2C%22match%22%3A%7B%22value%22%3A%22b%22%7D%7D%5D%7D";
    let m = t.ok("GET", &format!("/collections/m/map?color_by=group&filter={f}"), None).await;
    assert_eq!(m["total"], 100);
    assert!(m["points"].as_array().unwrap().iter().all(|p| p["color"] == "b"));
}

#[tokio::test]
async fn bad_map_requests_name_the_parameter() {
    let t = server();
    three_groups(&t).await;
    for (q, needle) in [
        ("sample=0", "sample"),
        ("sample=50001", "sample"),
        ("sample=lots", "sample"),
        ("method=tsne", "method"),
        ("neighbors=1", "neighbors"),
        ("filter=%7Bnope", "filter"),
        (
            "filter=%7B%22must%22%3A%5B%7B%22key%22%3A%22g%22%2C%22range%22%3A%7B%22gte%22%3A%22x%22%7D%7D%5D%7D",
            "filter",
        ),
        ("colour_by=group", "colour_by"),
    ] {
        t.err("GET", &format!("/collections/m/map?{q}"), None, StatusCode::BAD_REQUEST, needle).await;
    }
    t.err("GET", "/collections/nope/map", None, StatusCode::NOT_FOUND, "nope").await;
    // An empty collection maps to nothing, without error.
    t.ok("PUT", "/collections/empty", Some(json!({"vectors": {"size": 4, "distance": "Dot"}}))).await;
    let m = t.ok("GET", "/collections/empty/map", None).await;
    assert_eq!(m["total"], 0);
    assert!(m["points"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_console_is_served_without_a_key_and_its_api_calls_need_one() {
    let mut t = setup(ServerConfig { api_key: Some("console-key-1".into()), ..Default::default() });
    let (s, page) = t.raw("GET", "/console", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("/console/console.js") && page.contains("<canvas id=\"live-chart\""), "{page}");
    let (s, js) = t.raw("GET", "/console/console.js", Body::empty(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(js).unwrap().contains("/map?"));
    assert_eq!(t.raw("GET", "/console/console.css", Body::empty(), &[]).await.0, StatusCode::OK);
    assert_eq!(t.raw("GET", "/console/secrets.txt", Body::empty(), &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(t.raw("GET", "/console/", Body::empty(), &[]).await.0, StatusCode::PERMANENT_REDIRECT);
    t.err("GET", "/collections/m/map", None, StatusCode::UNAUTHORIZED, "missing API key").await;
    t.key = Some("console-key-1".into());
    three_groups(&t).await;
    t.ok("GET", "/collections/m/map?sample=50", None).await;
}

#[tokio::test]
async fn the_result_cache_is_configured_reported_and_counted() {
    let t = server();
    t.err(
        "PUT",
        "/collections/qc",
        Some(json!({"vectors": {"size": 2, "distance": "Euclid"}, "query_cache_entries": 1_000_000})),
        StatusCode::BAD_REQUEST,
        "query_cache_entries",
    )
    .await;
    t.ok(
        "PUT",
        "/collections/qc",
        Some(json!({"vectors": {"size": 2, "distance": "Euclid"}, "query_cache_entries": 4})),
    )
    .await;
    let pts = json!({"points": [{"id": 1, "vector": [0.0, 0.0]}, {"id": 2, "vector": [1.0, 1.0]}]});
    t.ok("PUT", "/collections/qc/points?wait=true", Some(pts)).await;
    let q = json!({"query": [0.1, 0.1], "limit": 1});
    let a = t.ok("POST", "/collections/qc/points/query", Some(q.clone())).await;
    let b = t.ok("POST", "/collections/qc/points/query", Some(q)).await;
    assert_eq!(a, b);
    let info = t.ok("GET", "/collections/qc", None).await;
    assert_eq!(info["quiver"]["query_cache"], json!({"capacity": 4, "entries": 1, "hits": 1, "misses": 1}));
    let (_, m) = t.raw("GET", "/metrics", Body::empty(), &[]).await;
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("quiver_query_cache_hits_total{collection=\"qc\"} 1"), "{m}");
    assert!(m.contains("quiver_query_cache_misses_total{collection=\"qc\"} 1"), "{m}");
}

#[tokio::test]
async fn a_write_past_the_memory_budget_is_507_with_the_estimate() {
    let t = setup(ServerConfig { memory_budget_bytes: Some(200_000), ..Default::default() });
    t.ok("PUT", "/collections/c", Some(json!({"vectors": {"size": 8, "distance": "Cosine"}}))).await;
    let points = |from: u64, n: u64| -> Value {
        json!({"points": (from..from + n).map(|i| json!({"id": i, "vector": [1.0, i as f32, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0]})).collect::<Vec<_>>()})
    };
    t.ok("PUT", "/collections/c/points?wait=true", Some(points(0, 100))).await;
    t.err(
        "PUT",
        "/collections/c/points?wait=true",
        Some(points(100, 5000)),
        StatusCode::INSUFFICIENT_STORAGE,
        "memory budget",
    )
    .await;
    assert_eq!(t.count("c").await, 100, "nothing changed");
    let info = t.ok("GET", "/collections/c", None).await;
    assert_eq!(info["quiver"]["estimated_memory"]["points"], json!(100), "{info}");
}

#[tokio::test]
async fn target_recall_on_a_collection_and_a_query_is_measured_and_reported() {
    let t = server();
    for (body, field) in [
        (json!({"vectors": {"size": 8, "distance": "Euclid"}, "target_recall": 0}), "target_recall"),
        (json!({"vectors": {"size": 8, "distance": "Euclid"}, "target_recall": 1.5}), "target_recall"),
    ] {
        t.err("PUT", "/collections/tr", Some(body), StatusCode::BAD_REQUEST, field).await;
    }
    let create = json!({
        "vectors": {"size": 8, "distance": "Euclid"},
        "target_recall": 0.9,
        "hnsw_config": {"m": 4, "ef_construct": 16},
        "optimizer": {"seal_points": 1500, "interval_ms": 10, "exact_below": 0},
    });
    t.ok("PUT", "/collections/tr", Some(create)).await;
    let info = t.ok("GET", "/collections/tr", None).await;
    assert_eq!(info["quiver"]["config"]["target_recall"], json!(0.9));
    let v =
        |i: u64| (0..8).map(|d| (((i * 2_654_435_761 + d * 40_503) % 10_007) as f32) / 10_007.0).collect::<Vec<f32>>();
    let pts: Vec<Value> = (0..2000u64).map(|i| json!({"id": i, "vector": v(i)})).collect();
    t.ok("PUT", "/collections/tr/points?wait=true", Some(json!({"points": pts}))).await;
    // Searches are recorded (the collection has a target); once 50 are, the background optimizer calibrates the
    // sealed segment on its own.
    for i in 0..60u64 {
        t.ok("POST", "/collections/tr/points/search", Some(json!({"vector": v(i * 31 + 3), "limit": 10}))).await;
    }
    let mut estimated = Value::Null;
    for _ in 0..600 {
        let info = t.ok("GET", "/collections/tr", None).await;
        estimated = info["quiver"]["estimated_recall"].clone();
        if estimated.is_number() {
            let seg = info["quiver"]["segments"].as_array().unwrap().iter().find(|s| s["recall"].is_object()).cloned();
            let seg = seg.expect("a calibrated segment");
            assert_eq!(seg["recall"]["param"], "ef", "{seg}");
            assert!(seg["recall"]["estimated"].as_f64().unwrap() >= 0.9, "{seg}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(estimated.as_f64().is_some_and(|r| r >= 0.9), "estimated_recall {estimated}");
    let (_, m) = t.raw("GET", "/metrics", Body::empty(), &[]).await;
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("quiver_estimated_recall{collection=\"tr\"} "), "{m}");
    // A query's own target, in search and query shapes; a bad one is a 400 naming it.
    let hits = t
        .ok(
            "POST",
            "/collections/tr/points/search",
            Some(json!({"vector": v(5), "limit": 3, "params": {"target_recall": 0.99}})),
        )
        .await;
    assert_eq!(hits[0]["id"], json!(5), "{hits}");
    let q = json!({"query": v(6), "limit": 3, "params": {"target_recall": 0.95}, "explain": true});
    let r = t.ok("POST", "/collections/tr/points/query", Some(q)).await;
    assert_eq!(r["points"][0]["id"], json!(6), "{r}");
    let plans = r["explain"]["segments"].to_string();
    assert!(plans.contains("(target_recall 0.95, estimated"), "{plans}");
    let q = json!({"query": v(7), "limit": 3, "params": {"target_recall": 1.0}});
    let r = t.ok("POST", "/collections/tr/points/query", Some(q)).await;
    assert_eq!(r["points"][0]["id"], json!(7), "{r}");
    t.err(
        "POST",
        "/collections/tr/points/search",
        Some(json!({"vector": v(5), "limit": 3, "params": {"target_recall": 1.5}})),
        StatusCode::BAD_REQUEST,
        "params.target_recall",
    )
    .await;
}
