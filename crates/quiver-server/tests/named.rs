//! Named vectors over REST, in Qdrant's shapes: a collection declaring several vectors, points carrying any
//! subset, searches and queries naming the vector (`using`, `{"name", "vector"}`), `with_vector` by name, staged
//! queries fusing two vectors, recommendations, and the 400s that name the field.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{T, server};
use serde_json::{Value, json};

/// `docs`: `title` (4-d, Euclid) and `body` (3-d, Cosine); points 0..10 have both, 10..15 a title only.
async fn named(t: &T) {
    t.ok(
        "PUT",
        "/collections/docs",
        Some(
            json!({"vectors": {"title": {"size": 4, "distance": "Euclid"}, "body": {"size": 3, "distance": "Cosine"}}}),
        ),
    )
    .await;
    let points: Vec<Value> = (0..10)
        .map(|i| {
            let x = i as f32;
            json!({"id": i, "vector": {"title": [x, 0.0, 0.0, 1.0], "body": [1.0, x, 0.0]}, "payload": {"i": i}})
        })
        .collect();
    t.ok("PUT", "/collections/docs/points?wait=true", Some(json!({"points": points}))).await;
    // Column-wise, one list per name.
    let ids: Vec<u64> = (10..15).collect();
    let titles: Vec<Value> = ids.iter().map(|&i| json!([i as f32, 0.0, 0.0, 1.0])).collect();
    t.ok(
        "PUT",
        "/collections/docs/points?wait=true",
        Some(json!({"batch": {"ids": ids, "vectors": {"title": titles}, "payloads": ids.iter().map(|i| json!({"i": i})).collect::<Vec<_>>()}})),
    )
    .await;
}

fn ids(hits: &Value) -> Vec<u64> {
    hits.as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn named_vectors_are_created_written_searched_and_read_by_name() {
    let t = server();
    named(&t).await;
    let info = t.ok("GET", "/collections/docs", None).await;
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"body": {"size": 3, "distance": "Cosine"}, "title": {"size": 4, "distance": "Euclid"}})
    );
    assert_eq!(t.count("docs").await, 15);
    // Search by title: the nearest titles to [12.2, 0, 0, 1] are 12, 13, 11.
    let hits = t
        .ok(
            "POST",
            "/collections/docs/points/search",
            Some(json!({"vector": {"name": "title", "vector": [12.2, 0.0, 0.0, 1.0]}, "limit": 3})),
        )
        .await;
    assert_eq!(ids(&hits), [12, 13, 11]);
    // Query by body: only points with a body (0..10) are candidates; [1, 9, 0] is nearest 9.
    let hits = t
        .ok(
            "POST",
            "/collections/docs/points/query",
            Some(json!({"query": [1.0, 9.0, 0.0], "using": "body", "limit": 20})),
        )
        .await;
    let got = ids(&hits["points"]);
    assert_eq!(got.len(), 10, "{got:?}");
    assert_eq!(got[0], 9);
    assert!(got.iter().all(|&i| i < 10), "points without a body are not returned: {got:?}");
    // Reads give the named vectors a point has; a list of names selects among them.
    let rec = t.ok("GET", "/collections/docs/points/3", None).await;
    assert_eq!(rec["vector"]["title"], json!([3.0, 0.0, 0.0, 1.0]));
    assert_eq!(rec["vector"]["body"].as_array().unwrap().len(), 3, "{rec}");
    let rec = t.ok("GET", "/collections/docs/points/12", None).await;
    assert_eq!(rec["vector"], json!({"title": [12.0, 0.0, 0.0, 1.0]}));
    let recs = t.ok("POST", "/collections/docs/points", Some(json!({"ids": [3, 12], "with_vector": ["body"]}))).await;
    assert!(recs[0]["vector"]["title"].is_null() && recs[0]["vector"]["body"].is_array(), "{recs}");
    assert_eq!(recs[1]["vector"], json!({}));
    let hits = t
        .ok(
            "POST",
            "/collections/docs/points/query",
            Some(json!({"query": [3.0, 0.0, 0.0, 1.0], "using": "title", "limit": 1, "with_vector": true})),
        )
        .await;
    assert_eq!(hits["points"][0]["vector"]["title"], json!([3.0, 0.0, 0.0, 1.0]));
    // A query by a stored point uses that point's vector of the same name.
    let hits =
        t.ok("POST", "/collections/docs/points/query", Some(json!({"query": 12, "using": "title", "limit": 2}))).await;
    assert_eq!(ids(&hits["points"]), [11, 13]);
    // Fusion of the two vectors' lists; recommend by the title of stored points.
    let fused = t
        .ok(
            "POST",
            "/collections/docs/points/query",
            Some(json!({
                "prefetch": [
                    {"query": [5.0, 0.0, 0.0, 1.0], "using": "title", "limit": 5},
                    {"query": [1.0, 5.0, 0.0], "using": "body", "limit": 5}
                ],
                "query": {"fusion": "rrf"}, "limit": 3
            })),
        )
        .await;
    assert_eq!(ids(&fused["points"])[0], 5, "first in both lists: {fused}");
    let rec = t
        .ok(
            "POST",
            "/collections/docs/points/query",
            Some(json!({"query": {"recommend": {"positive": [6, 8]}}, "using": "title", "limit": 1})),
        )
        .await;
    assert_eq!(ids(&rec["points"]), [7]);
    // A payload update keeps the vectors.
    t.ok("POST", "/collections/docs/points/payload?wait=true", Some(json!({"payload": {"x": 1}, "points": [3]}))).await;
    let rec = t.ok("GET", "/collections/docs/points/3", None).await;
    assert_eq!(rec["vector"]["title"], json!([3.0, 0.0, 0.0, 1.0]));
}

#[tokio::test]
async fn bad_named_vector_requests_name_the_field_and_change_nothing() {
    let t = server();
    named(&t).await;
    let bad = StatusCode::BAD_REQUEST;
    let put = |v: Value| Some(json!({"points": [{"id": 99, "vector": v}]}));
    t.err("PUT", "/collections/docs/points", put(json!({"nope": [1.0]})), bad, "vector.nope").await;
    t.err("PUT", "/collections/docs/points", put(json!({"title": [1.0, 2.0]})), bad, "vector.title").await;
    t.err("PUT", "/collections/docs/points", put(json!([1.0, 2.0, 3.0])), bad, "named vectors").await;
    t.err("PUT", "/collections/docs/points", put(json!({"title": {"text": "hi"}})), bad, "no embedding model").await;
    t.err(
        "PUT",
        "/collections/docs/points",
        Some(json!({"batch": {"ids": [98, 99], "vectors": {"title": [[1.0, 0.0, 0.0, 0.0]]}}})),
        bad,
        "batch.vectors.title",
    )
    .await;
    assert_eq!(t.count("docs").await, 15, "nothing was written");
    let search = "/collections/docs/points/search";
    t.err("POST", search, Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 1})), bad, "using").await;
    let q = json!({"vector": {"name": "nope", "vector": [1.0]}, "limit": 1});
    t.err("POST", search, Some(q), bad, "using").await;
    let query = "/collections/docs/points/query";
    let q = json!({"prefetch": [{"query": [1.0, 0.0, 0.0], "using": "body"}, {"query": [1.0], "using": "x"}], "query": {"fusion": "rrf"}});
    t.err("POST", query, Some(q), bad, "prefetch[1].using").await;
    // Point 12 has no body.
    t.err("POST", query, Some(json!({"query": 12, "using": "body"})), bad, "no").await;
    // Creation.
    let create = |v: Value| Some(json!({"vectors": v}));
    t.err("PUT", "/collections/x", create(json!({})), bad, "vectors").await;
    t.err(
        "PUT",
        "/collections/x",
        create(json!({"a": {"size": 3, "distance": "Manhattan"}})),
        bad,
        "vectors.a.distance",
    )
    .await;
    t.err(
        "PUT",
        "/collections/x",
        create(json!({"a": {"size": 0, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}})),
        bad,
        "dimension",
    )
    .await;
    t.err(
        "PUT",
        "/collections/x",
        create(json!({"a": {"size": 3, "distance": "Dot"}, "b": {"size": 0, "distance": "Dot"}})),
        bad,
        "vectors.b.dimension",
    )
    .await;
    t.err(
        "PUT",
        "/collections/x",
        Some(json!({"vectors": {"a": {"size": 3, "distance": "Dot"}}, "embedding": {"model": "all-MiniLM-L6-v2"}})),
        bad,
        "vectors.<name>.embedding",
    )
    .await;
    let names = t.ok("GET", "/collections", None).await;
    assert_eq!(names["collections"].as_array().unwrap().len(), 1, "no collection was created: {names}");
    // And a collection with one unnamed vector refuses names.
    t.ok("PUT", "/collections/plain", Some(json!({"vectors": {"size": 3, "distance": "Dot"}}))).await;
    t.err(
        "PUT",
        "/collections/plain/points",
        Some(json!({"points": [{"id": 1, "vector": {"a": [1.0, 2.0, 3.0]}}]})),
        bad,
        "vector.a",
    )
    .await;
    t.ok("PUT", "/collections/plain/points", Some(json!({"points": [{"id": 1, "vector": {"": [1.0, 2.0, 3.0]}}]})))
        .await;
    t.err(
        "POST",
        "/collections/plain/points/query",
        Some(json!({"query": [1.0, 2.0, 3.0], "using": "a"})),
        bad,
        "using",
    )
    .await;
}

/// Sparse vectors beside a dense one, as Qdrant shapes them: `sparse_vectors` at creation, `{"indices",
/// "values"}` in points (rows and columns), sparse queries by name, a hybrid of dense and sparse fused, and reads.
#[tokio::test]
async fn sparse_vectors_are_written_searched_fused_and_read() {
    let t = server();
    t.ok(
        "PUT",
        "/collections/hy",
        Some(json!({"vectors": {"dense": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"terms": {"index": {"on_disk": false}}}})),
    )
    .await;
    let info = t.ok("GET", "/collections/hy", None).await;
    assert_eq!(info["config"]["params"]["sparse_vectors"], json!({"terms": {}}), "{info}");
    let points: Vec<Value> = (0..6)
        .map(|i| {
            let x = i as f32;
            json!({"id": i, "vector": {"dense": [1.0, x], "terms": {"indices": [i, 100], "values": [2.0, 0.5 * x]}}})
        })
        .collect();
    t.ok("PUT", "/collections/hy/points?wait=true", Some(json!({"points": points}))).await;
    t.ok(
        "PUT",
        "/collections/hy/points?wait=true",
        Some(json!({"batch": {"ids": [10, 11], "vectors": {
            "dense": [[1.0, 0.0], [1.0, 1.0]],
            "terms": [{"indices": [3], "values": [5.0]}, {"indices": [], "values": []}]}}})),
    )
    .await;
    // Term 3 (weight 2.0 in point 3, 5.0 in point 10) and term 100 (0.5·i).
    let q = json!({"query": {"indices": [3, 100], "values": [1.0, 1.0]}, "using": "terms", "limit": 3, "with_vector": ["terms"]});
    let hits = t.ok("POST", "/collections/hy/points/query", Some(q)).await;
    assert_eq!(ids(&hits["points"]), [10, 3, 5], "{hits}");
    assert!((hits["points"][0]["score"].as_f64().unwrap() - 5.0).abs() < 1e-6);
    assert_eq!(hits["points"][1]["vector"], json!({"terms": {"indices": [3, 100], "values": [2.0, 1.5]}}));
    let s = t
        .ok(
            "POST",
            "/collections/hy/points/search",
            Some(json!({"vector": {"name": "terms", "vector": {"indices": [4], "values": [1.0]}}, "limit": 5})),
        )
        .await;
    assert_eq!(ids(&s), [4]);
    // Dense and sparse fused.
    let fused = t
        .ok(
            "POST",
            "/collections/hy/points/query",
            Some(json!({"prefetch": [{"query": [0.0, 1.0], "using": "dense", "limit": 3},
                                     {"query": {"indices": [5], "values": [1.0]}, "using": "terms", "limit": 3}],
                        "query": {"fusion": "rrf"}, "limit": 1})),
        )
        .await;
    assert_eq!(ids(&fused["points"]), [5], "{fused}");
    // By a stored point's sparse vector.
    let by_id =
        t.ok("POST", "/collections/hy/points/query", Some(json!({"query": 10, "using": "terms", "limit": 1}))).await;
    assert_eq!(ids(&by_id["points"]), [3]);
    let rec = t.ok("GET", "/collections/hy/points/11", None).await;
    assert_eq!(rec["vector"], json!({"dense": [1.0, 1.0]}), "an empty sparse vector is none");
    let bad = StatusCode::BAD_REQUEST;
    let put = |v: Value| Some(json!({"points": [{"id": 99, "vector": v}]}));
    t.err(
        "PUT",
        "/collections/hy/points",
        put(json!({"terms": {"indices": [1, 1], "values": [1.0, 2.0]}})),
        bad,
        "vector.terms.indices",
    )
    .await;
    t.err("PUT", "/collections/hy/points", put(json!({"terms": {"indices": [1], "values": []}})), bad, "vector.terms")
        .await;
    t.err("PUT", "/collections/hy/points", put(json!({"nope": {"indices": [1], "values": [1.0]}})), bad, "vector.nope")
        .await;
    let query = "/collections/hy/points/query";
    t.err("POST", query, Some(json!({"query": {"indices": [1], "values": [1.0]}, "using": "dense"})), bad, "using")
        .await;
    t.err("POST", query, Some(json!({"query": [1.0, 0.0], "using": "terms"})), bad, "sparse").await;
    assert_eq!(t.count("hy").await, 8, "nothing was written");
    t.err(
        "PUT",
        "/collections/x",
        Some(json!({"vectors": {"size": 2, "distance": "Dot"}, "sparse_vectors": {"s": {"modifier": "bm42"}}})),
        bad,
        "sparse_vectors.s.modifier",
    )
    .await;
    // The idf modifier: a rare term outweighs a common one of the same stored weight.
    t.ok(
        "PUT",
        "/collections/bm25",
        Some(json!({"vectors": {"size": 1, "distance": "Dot"}, "sparse_vectors": {"tf": {"modifier": "idf"}}})),
    )
    .await;
    let info = t.ok("GET", "/collections/bm25", None).await;
    assert_eq!(info["config"]["params"]["sparse_vectors"], json!({"tf": {"modifier": "idf"}}));
    // Term 1 in every point, term 2 in point 0 only; point 1 has more of term 1.
    let pts: Vec<Value> = (0..5)
        .map(|i| {
            let (ix, vals) = if i == 0 { (json!([1, 2]), json!([1.0, 1.0])) } else { (json!([1]), json!([1.5])) };
            json!({"id": i, "vector": {"": [1.0], "tf": {"indices": ix, "values": vals}}})
        })
        .collect();
    t.ok("PUT", "/collections/bm25/points?wait=true", Some(json!({"points": pts}))).await;
    let q = json!({"query": {"indices": [1, 2], "values": [1.0, 1.0]}, "using": "tf", "limit": 2});
    let hits = t.ok("POST", "/collections/bm25/points/query", Some(q)).await;
    assert_eq!(ids(&hits["points"])[0], 0, "the rare term decides: {hits}");
    let idf = |n: f64| ((5.0 - n + 0.5) / (n + 0.5) + 1.0f64).ln();
    let want = idf(5.0) + idf(1.0);
    assert!((hits["points"][0]["score"].as_f64().unwrap() - want).abs() < 1e-4, "{hits} vs {want}");
}
