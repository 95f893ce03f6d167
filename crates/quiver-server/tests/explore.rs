//! Queries by examples over REST, in Qdrant's shapes: `recommend` with the `best_score` and `sum_scores`
//! strategies, `discover` (a target and context pairs) and `context` (pairs alone); top level, inside a prefetch
//! and grouped; bad input named. Points lie on a line (`x = id`, Euclidean), so every expected order and score
//! below is worked out by hand from the documented formulas.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{T, server};
use serde_json::{Value, json};

async fn line(t: &T) {
    t.ok("PUT", "/collections/l", Some(json!({"vectors": {"size": 2, "distance": "Euclid"}}))).await;
    let points: Vec<Value> =
        (0..10).map(|i| json!({"id": i, "vector": [i as f32, 0.0], "payload": {"g": i % 2}})).collect();
    t.ok("PUT", "/collections/l/points?wait=true", Some(json!({"points": points}))).await;
}

fn ids(v: &Value) -> Vec<u64> {
    v["points"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect()
}

fn scores(v: &Value) -> Vec<f64> {
    v["points"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect()
}

/// `½ + x / (2 (1 + |x|))`, the documented squashing.
fn sigmoid(x: f64) -> f64 {
    0.5 + x / (2.0 * (1.0 + x.abs()))
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

async fn query(t: &T, body: Value) -> Value {
    t.ok("POST", "/collections/l/points/query", Some(body)).await
}

#[tokio::test]
async fn recommend_by_best_score_and_by_sum_of_scores() {
    let t = server();
    line(&t).await;
    // best_score, positive point 3, negative x = 8: points nearer 3 than 8 first (by their distance to 3), then
    // the others, farthest from 8 first; point 3 itself is left out.
    let body = json!({"query": {"recommend": {"positive": [3], "negative": [[8.0, 0.0]], "strategy": "best_score"}}, "limit": 10});
    let r = query(&t, body.clone()).await;
    assert_eq!(ids(&r), [2, 4, 1, 5, 0, 6, 7, 9, 8]);
    let want: Vec<f64> = [
        sigmoid(-1.0),
        sigmoid(-1.0),
        sigmoid(-2.0),
        sigmoid(-2.0),
        sigmoid(-3.0),
        -sigmoid(-2.0),
        -sigmoid(-1.0),
        -sigmoid(-1.0),
        -sigmoid(0.0),
    ]
    .to_vec();
    close(&scores(&r), &want);
    // The same with exact scoring, and a threshold keeping only the points on the positive side.
    let mut exact = body.clone();
    exact["params"] = json!({"exact": true});
    assert_eq!(ids(&query(&t, exact).await), [2, 4, 1, 5, 0, 6, 7, 9, 8]);
    let mut above = body;
    above["score_threshold"] = json!(0.0);
    assert_eq!(ids(&query(&t, above).await), [2, 4, 1, 5, 0]);
    // sum_scores: −|x − 3| + |x − 8| is 5 for every x ≤ 3, then falls by 2 per step.
    let body = json!({"query": {"recommend": {"positive": [3], "negative": [[8.0, 0.0]], "strategy": "sum_scores"}}, "limit": 4});
    let r = query(&t, body).await;
    assert_eq!(ids(&r), [0, 1, 2, 4]);
    close(&scores(&r), &[5.0, 5.0, 5.0, 3.0]);
    // average_vector is unchanged; an unknown strategy is named.
    let avg = json!({"query": {"recommend": {"positive": [3, 5], "strategy": "average_vector"}}, "limit": 1});
    assert_eq!(ids(&query(&t, avg).await), [4]);
    let bad = json!({"query": {"recommend": {"positive": [3], "strategy": "most_similar"}}});
    t.err("POST", "/collections/l/points/query", Some(bad), StatusCode::BAD_REQUEST, "query.recommend.strategy").await;
}

#[tokio::test]
async fn discover_and_context_queries() {
    let t = server();
    line(&t).await;
    // Target x = 9, one pair (point 2 over point 6): points nearer 2 than 6 (x < 4) rank first, by their
    // closeness to 9; x = 4 sits on the boundary (rank 0); the rest rank −1. The examples 2 and 6 are left out.
    let discover = json!({"discover": {"target": [9.0, 0.0], "context": [{"positive": 2, "negative": 6}]}});
    let r = query(&t, json!({"query": discover, "limit": 8})).await;
    assert_eq!(ids(&r), [3, 1, 0, 4, 9, 8, 7, 5]);
    close(
        &scores(&r),
        &[
            1.0 + sigmoid(-6.0),
            1.0 + sigmoid(-8.0),
            1.0 + sigmoid(-9.0),
            sigmoid(-5.0),
            -1.0 + sigmoid(0.0),
            -1.0 + sigmoid(-1.0),
            -1.0 + sigmoid(-2.0),
            -1.0 + sigmoid(-4.0),
        ],
    );
    // Context alone (a list, or one pair object): 0 on the positive side of the pair (point 1 over point 7), less
    // beyond it; ties by id.
    for context in [json!([{"positive": 1, "negative": 7}]), json!({"positive": 1, "negative": 7})] {
        let r = query(&t, json!({"query": {"context": context}, "limit": 6})).await;
        assert_eq!(ids(&r), [0, 2, 3, 4, 5, 6]);
        close(&scores(&r), &[0.0, 0.0, 0.0, 0.0, -2.0, -4.0]);
    }
    // Inside a multi-stage query: only the prefetched points (the 3 nearest to x = 0) are ranked.
    let staged = json!({
        "prefetch": {"query": [0.0, 0.0], "limit": 3, "params": {"exact": true}},
        "query": {"context": [{"positive": 1, "negative": 7}]},
        "limit": 5,
    });
    assert_eq!(ids(&query(&t, staged).await), [0, 2]);
    // As a prefetch feeding a fusion.
    let fused = json!({"prefetch": [{"query": discover, "limit": 2}], "query": {"fusion": "rrf"}, "limit": 5});
    assert_eq!(ids(&query(&t, fused).await), [3, 1]);
    // Grouped by a payload key: the odd points' best are 3 and 1, the even ones' 0 and 4.
    let groups = json!({"query": discover, "group_by": "g", "group_size": 2, "limit": 2});
    let g = t.ok("POST", "/collections/l/points/query/groups", Some(groups)).await;
    let got: Vec<(i64, Vec<u64>)> = g["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|gr| {
            (
                gr["id"].as_i64().unwrap(),
                gr["hits"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(got, [(1, vec![3, 1]), (0, vec![0, 4])]);
}

#[tokio::test]
async fn bad_queries_by_examples_are_named_and_change_nothing() {
    let t = server();
    line(&t).await;
    for (body, status, needle) in [
        (
            json!({"query": {"discover": {"target": 1, "context": []}}}),
            StatusCode::BAD_REQUEST,
            "query.discover.context",
        ),
        (json!({"query": {"context": []}}), StatusCode::BAD_REQUEST, "query.context"),
        (
            json!({"query": {"context": [{"positive": [1.0], "negative": 2}]}}),
            StatusCode::BAD_REQUEST,
            "query.context[0].positive",
        ),
        (
            json!({"query": {"discover": {"target": 99, "context": [{"positive": 1, "negative": 2}]}}}),
            StatusCode::NOT_FOUND,
            "query.discover.target",
        ),
        (
            json!({"query": {"discover": {"target": 1, "context": [{"positive": 2, "negative": [0.0, 0.0, 1.0]}]}}}),
            StatusCode::BAD_REQUEST,
            "query.discover.context[0].negative",
        ),
        (
            json!({"query": {"recommend": {"positive": [], "strategy": "best_score"}}}),
            StatusCode::BAD_REQUEST,
            "query.recommend.positive",
        ),
        (json!({"query": {"context": [{"positive": 1, "negative": 2, "weight": 3}]}}), StatusCode::BAD_REQUEST, ""),
        (
            json!({"query": {"recommend": {"positive": [1], "strategy": "sum_scores"}}, "limit": 0}),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
    ] {
        t.err("POST", "/collections/l/points/query", Some(body), status, needle).await;
    }
    let count = t.ok("POST", "/collections/l/points/count", Some(json!({}))).await;
    assert_eq!(count["count"], 10);
}

#[tokio::test]
async fn lookup_from_takes_the_ids_from_another_collection() {
    let t = server();
    line(&t).await;
    t.ok("PUT", "/collections/other", Some(json!({"vectors": {"size": 2, "distance": "Euclid"}}))).await;
    let points = json!({"points": [{"id": 2, "vector": [2.2, 0.0]}, {"id": 101, "vector": [7.0, 0.0]}]});
    t.ok("PUT", "/collections/other/points?wait=true", Some(points)).await;
    t.ok("PUT", "/collections/named", Some(json!({"vectors": {"v": {"size": 2, "distance": "Euclid"}}}))).await;
    t.ok(
        "PUT",
        "/collections/named/points?wait=true",
        Some(json!({"points": [{"id": 7, "vector": {"v": [5.0, 0.0]}}]})),
    )
    .await;
    // other's point 2 sits at x = 2.2: this collection's point 2 is nearest, and not left out (it is another point).
    let other = json!({"collection": "other"});
    let r = query(&t, json!({"query": 2, "lookup_from": other, "limit": 3})).await;
    assert_eq!(ids(&r), [2, 3, 1]);
    // Examples of a recommendation and of a discovery, and a prefetch, looked up the same way.
    let best = json!({"recommend": {"positive": [2], "negative": [101], "strategy": "best_score"}});
    assert_eq!(ids(&query(&t, json!({"query": best, "lookup_from": other, "limit": 5})).await), [2, 3, 1, 4, 0]);
    let avg = json!({"recommend": {"positive": [2, 101]}});
    assert_eq!(ids(&query(&t, json!({"query": avg, "lookup_from": other, "limit": 1})).await), [5]);
    let discover = json!({"discover": {"target": 101, "context": [{"positive": 2, "negative": [9.0, 0.0]}]}});
    assert_eq!(ids(&query(&t, json!({"query": discover, "lookup_from": other, "limit": 2})).await), [5, 4]);
    let staged = json!({"prefetch": {"query": 2, "lookup_from": other, "limit": 2}, "query": {"fusion": "rrf"}});
    assert_eq!(ids(&query(&t, staged).await), [2, 3]);
    // A named vector of the other collection.
    let named = json!({"query": 7, "lookup_from": {"collection": "named", "vector": "v"}, "limit": 1});
    assert_eq!(ids(&query(&t, named).await), [5]);
    // Grouped.
    let groups = json!({"query": 2, "lookup_from": other, "group_by": "g", "group_size": 1, "limit": 2});
    let g = t.ok("POST", "/collections/l/points/query/groups", Some(groups)).await;
    assert_eq!(g["groups"][0]["hits"][0]["id"], 2, "{g}");
    for (body, status, needle) in [
        (
            json!({"query": 2, "lookup_from": {"collection": "nowhere"}}),
            StatusCode::NOT_FOUND,
            "lookup_from.collection",
        ),
        (json!({"query": 2, "lookup_from": {"collection": "other", "bogus": 1}}), StatusCode::BAD_REQUEST, ""),
        (json!({"query": 99, "lookup_from": other}), StatusCode::NOT_FOUND, "query"),
        (json!({"query": 7, "lookup_from": {"collection": "named", "vector": "w"}}), StatusCode::BAD_REQUEST, "query"),
        (
            json!({"query": 2, "lookup_from": {"collection": "other", "shard_key": "x"}}),
            StatusCode::BAD_REQUEST,
            "lookup_from.shard_key",
        ),
        (
            json!({"prefetch": {"query": [0.0, 0.0]}, "query": {"fusion": "rrf"}, "lookup_from": other}),
            StatusCode::BAD_REQUEST,
            "lookup_from",
        ),
    ] {
        t.err("POST", "/collections/l/points/query", Some(body), status, needle).await;
    }
}
