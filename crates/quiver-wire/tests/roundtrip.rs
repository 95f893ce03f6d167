//! Both ends use these types, so what one writes the other must read back unchanged: each request body is read
//! as the server reads it, written as a client writes it, and compared; replies the other way round.

#![allow(clippy::unwrap_used)]

use quiver_wire::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn round_trip<T: Serialize + DeserializeOwned>(body: Value) {
    let typed: T = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{} does not read {body}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, body, "{} changed the body", std::any::type_name::<T>());
}

#[test]
fn requests_come_back_unchanged() {
    round_trip::<CreateCollection>(json!({
        "vectors": {"size": 384, "distance": "Cosine"},
        "hnsw_config": {"m": 16, "ef_construct": 100},
        "shard_number": 3, "replication_factor": 2,
        "index": {"kind": "hnsw", "params": {"m": 16}},
        "durability": {"batch": {"max_delay_ms": 2}},
        "embedding": {"model": "all-MiniLM-L6-v2"},
        "sharding": {"method": "payload_key", "key": "tenant"}
    }));
    round_trip::<UpsertPoints>(json!({"points": [
        {"id": 1, "vector": [0.5, 1.0], "payload": {"tag": "a"}},
        {"id": "550e8400-e29b-41d4-a716-446655440000", "vector": {"": [1.0, 2.0]}, "ttl_secs": 60},
        {"id": 3, "vector": {"text": "hello", "model": "all-MiniLM-L6-v2"}},
        {"id": 4, "text": "embedded by the server"}
    ]}));
    round_trip::<UpsertPoints>(
        json!({"batch": {"ids": [1, 2], "vectors": [[1.0], [2.0]], "payloads": [{"a": 1}, null]}}),
    );
    round_trip::<SearchRequest>(json!({
        "vector": [0.25, 0.5],
        "filter": {"must": [{"key": "tag", "match": {"value": "a"}}], "must_not": [{"key": "n", "range": {"gte": 3}}]},
        "params": {"hnsw_ef": 64, "quantization": {"rescore": true, "oversampling": 2.0}},
        "limit": 5, "offset": 1, "with_payload": ["tag"], "with_vector": true, "score_threshold": 0.5, "min_seq": 9
    }));
    round_trip::<SearchRequest>(
        json!({"vector": {"name": "", "vector": [1.0]}, "limit": 1, "with_payload": {"exclude": ["big"]}}),
    );
    round_trip::<QueryRequest>(json!({"query": {"nearest": 42}, "limit": 3, "explain": true}));
    round_trip::<QueryRequest>(json!({"query": {"text": "a question"}, "shards_to_search": 2}));
    round_trip::<QueryRequest>(json!({"query": [1.0, 2.0]}));
    round_trip::<ScrollRequest>(json!({"offset": 10, "limit": 2, "with_payload": false}));
    round_trip::<CountRequest>(json!({"filter": {"should": [{"has_id": [1, 2]}]}, "exact": true}));
    round_trip::<PointsSelector>(json!({"points": [1, "550e8400-e29b-41d4-a716-446655440000"]}));
    round_trip::<SetPayload>(
        json!({"payload": {"x": {"y": 1}}, "filter": {"must": [{"is_empty": {"key": "z"}}]}, "key": "meta"}),
    );
    round_trip::<DeletePayload>(json!({"keys": ["a.b"], "points": [5]}));
    round_trip::<CreateFieldIndex>(json!({"field_name": "tag", "field_schema": "keyword"}));
    round_trip::<CreateFieldIndex>(json!({"field_name": "t", "field_schema": {"type": "datetime"}}));
    round_trip::<UpsertDocuments>(json!({
        "documents": [{"id": "a.md", "text": "Some text.", "metadata": {"lang": "en"}}, {"id": 7, "text": "More."}],
        "chunking": {"max_tokens": 64, "overlap_tokens": 8}
    }));
    round_trip::<SearchGroupsRequest>(json!({"vector": [1.0], "group_by": "doc_id", "group_size": 2, "limit": 4}));
    round_trip::<SnapshotRecover>(json!({"location": "snap-1.qsnap"}));
}

#[test]
fn replies_come_back_unchanged() {
    round_trip::<Envelope<Vec<ScoredPoint>>>(json!({
        "result": [{"id": 1, "version": 0, "score": 0.5, "payload": {"a": 1}}, {"id": 2, "version": 0, "score": 0.25}],
        "status": "ok", "time": 0.001
    }));
    round_trip::<ScrollResult>(json!({"points": [{"id": 3, "vector": [1.0]}], "next_page_offset": null}));
    round_trip::<UpdateResult>(json!({"operation_id": 7, "status": "completed"}));
    round_trip::<DocumentsResult>(
        json!({"operation_id": 7, "status": "acknowledged", "documents": [{"id": "a", "chunks": 2}]}),
    );
    round_trip::<ErrorBody>(json!({"status": {"error": "invalid limit: expected 1..=10000, got 0"}, "time": 0.0}));
    round_trip::<SnapshotDescription>(
        json!({"name": "snap-1.qsnap", "creation_time": "2026-12-04T00:00:00Z", "size": 10}),
    );
    round_trip::<GroupsResult>(json!({"groups": [{"id": "a", "hits": [{"id": 1, "version": 0, "score": 1.0}]}]}));
    round_trip::<CollectionsResponse>(json!({"collections": [{"name": "c"}, {"name": "d", "unavailable": "corrupt"}]}));
}

#[test]
fn absent_options_are_left_out_of_requests() {
    let req = SearchRequest { vector: Some(SearchVector::Plain(vec![1.0])), limit: 3, ..Default::default() };
    assert_eq!(serde_json::to_value(&req).unwrap(), json!({"vector": [1.0], "limit": 3}));
    assert_eq!(serde_json::to_value(CreateCollection::default()).unwrap(), json!({}));
}
