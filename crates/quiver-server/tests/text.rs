//! Text through the API with the real all-MiniLM-L6-v2 (found as `quiver serve` finds it: `QUIVER_MODEL_DIR`, else
//! `~/.cache/quiver-models/…`; `.ci/run` fetches it with `scripts/get-embed-model.sh`): collections with an
//! embedding model, text upserts and searches, documents and chunks, grouped search, and every mismatch as a 4xx.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use quiver_engine::Database;
use quiver_server::{AppState, ServerConfig, app};
use serde_json::{Value, json};
use tower::ServiceExt;

struct T {
    app: Router,
    _dir: tempfile::TempDir,
}

fn server() -> T {
    if let Err(e) = quiver_embed::find_model_dir(None) {
        panic!("these tests need all-MiniLM-L6-v2: run `bash scripts/get-embed-model.sh`. {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    T { app: app(AppState::with_database(ServerConfig::default(), Arc::new(db))), _dir: dir }
}

impl T {
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, uri: &str, body: Value) -> Value {
        let (s, v) = self.call(method, uri, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{method} {uri}: {v}");
        v["result"].clone()
    }

    async fn err(&self, method: &str, uri: &str, body: Value, status: StatusCode, needle: &str) {
        let (s, v) = self.call(method, uri, Some(body)).await;
        assert_eq!(s, status, "{method} {uri}: {v}");
        let msg = v["status"]["error"].as_str().unwrap_or_else(|| panic!("no error message: {v}"));
        assert!(msg.contains(needle), "{method} {uri}: {msg:?} lacks {needle:?}");
    }

    async fn count(&self, c: &str, filter: Value) -> u64 {
        self.ok("POST", &format!("/collections/{c}/points/count"), json!({ "filter": filter })).await["count"]
            .as_u64()
            .unwrap()
    }
}

const TEXTS: [&str; 5] = [
    "The cat curled up on the mat and purred.",
    "Stock markets fell sharply as interest rates rose.",
    "Mix flour, sugar and two eggs, then bake the cake for forty minutes.",
    "The volcano erupted, covering the island in ash.",
    "The striker scored twice in the second half of the match.",
];

async fn text_collection(t: &T, name: &str) {
    t.ok("PUT", &format!("/collections/{name}"), json!({"embedding": {"model": "all-MiniLM-L6-v2"}})).await;
}

fn first_id(hits: &Value) -> u64 {
    hits[0]["id"].as_u64().unwrap_or_else(|| panic!("no hits: {hits}"))
}

#[tokio::test]
async fn a_collection_with_a_model_takes_its_size_and_text_everywhere() {
    let t = server();
    text_collection(&t, "c").await;
    let info = t.ok("GET", "/collections/c", json!(null)).await;
    assert_eq!(info["config"]["params"]["vectors"]["size"], 384, "{info}");
    assert_eq!(info["config"]["params"]["vectors"]["distance"], "Cosine");
    assert_eq!(info["config"]["embedding"]["model"], "all-MiniLM-L6-v2");

    // Row form with `text`, Qdrant's document form as the vector, and the column form with `texts`.
    let points = json!([
        {"id": 0, "text": TEXTS[0], "payload": {"topic": "pets", "text": "replaced by the embedded text"}},
        {"id": 1, "vector": {"text": TEXTS[1], "model": "sentence-transformers/all-MiniLM-L6-v2"},
         "payload": {"topic": "finance"}},
    ]);
    t.ok("PUT", "/collections/c/points?wait=true", json!({ "points": points })).await;
    t.ok(
        "PUT",
        "/collections/c/points?wait=true",
        json!({"batch": {"ids": [2, 3, 4], "texts": &TEXTS[2..], "payloads": [{"topic": "food"}, null, null]}}),
    )
    .await;
    let got = t.ok("POST", "/collections/c/points", json!({"ids": [0, 1, 2], "with_payload": true})).await;
    for (i, p) in got.as_array().unwrap().iter().enumerate() {
        assert_eq!(p["payload"]["text"], TEXTS[p["id"].as_u64().unwrap() as usize], "point {i}: {p}");
    }

    // Search, query and nearest by text: each paraphrase finds its sentence first.
    for (query, want) in [
        ("a kitten sleeping on a rug", 0),
        ("the economy and falling share prices", 1),
        ("how to bake a sponge cake", 2),
        ("lava and an explosive eruption", 3),
        ("a football goal", 4),
    ] {
        let hits = t.ok("POST", "/collections/c/points/search", json!({"text": query, "limit": 3})).await;
        assert_eq!(first_id(&hits), want, "search {query:?}: {hits}");
        let r = t.ok("POST", "/collections/c/points/query", json!({"query": {"text": query}, "limit": 2})).await;
        assert_eq!(first_id(&r["points"]), want, "query {query:?}: {r}");
        let r = t
            .ok("POST", "/collections/c/points/query", json!({"query": {"nearest": {"text": query}}, "limit": 1}))
            .await;
        assert_eq!(first_id(&r["points"]), want, "nearest {query:?}: {r}");
    }
    // With a filter: the best *food* point for a pets query.
    let hits = t
        .ok(
            "POST",
            "/collections/c/points/search",
            json!({"text": "a kitten", "limit": 1, "filter": {"must": [{"key": "topic", "match": {"value": "food"}}]}}),
        )
        .await;
    assert_eq!(first_id(&hits), 2, "{hits}");
    // A text search equals a vector search with the same text embedded by the same model.
    let direct = quiver_embed::load_model(&quiver_embed::find_model_dir(None).unwrap(), &Default::default())
        .unwrap()
        .embed(&["a kitten sleeping on a rug"])
        .unwrap()
        .pop()
        .unwrap();
    let by_vec = t.ok("POST", "/collections/c/points/search", json!({"vector": direct, "limit": 5})).await;
    let by_text =
        t.ok("POST", "/collections/c/points/search", json!({"text": "a kitten sleeping on a rug", "limit": 5})).await;
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|h| h["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&by_vec), ids(&by_text));

    // Every text embedded is counted, per model: 5 points + 5 × 3 queries + 1 filtered + 1 search = 22.
    let resp = t.app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    assert!(text.contains("quiver_embedded_texts_total{model=\"all-MiniLM-L6-v2\"} 22\n"), "{text}");
    assert!(text.contains("quiver_embedding_seconds_total{model=\"all-MiniLM-L6-v2\"}"), "{text}");
}

#[tokio::test]
async fn mismatches_are_clear_4xx_and_change_nothing() {
    let t = server();
    t.ok("PUT", "/collections/plain", json!({"vectors": {"size": 384, "distance": "Cosine"}})).await;
    let no_model = "has no embedding model";
    t.err(
        "PUT",
        "/collections/plain/points",
        json!({"points": [{"id": 1, "text": "hi"}]}),
        StatusCode::BAD_REQUEST,
        no_model,
    )
    .await;
    t.err(
        "POST",
        "/collections/plain/points/search",
        json!({"text": "hi", "limit": 1}),
        StatusCode::BAD_REQUEST,
        no_model,
    )
    .await;
    t.err(
        "POST",
        "/collections/plain/documents",
        json!({"documents": [{"id": "d", "text": "hi"}]}),
        StatusCode::BAD_REQUEST,
        no_model,
    )
    .await;
    assert_eq!(t.count("plain", json!(null)).await, 0);

    // Creation: wrong size for the model, an unknown model, a name that could escape the models directory,
    // no vectors and no model.
    t.err(
        "PUT",
        "/collections/x",
        json!({"vectors": {"size": 128, "distance": "Cosine"}, "embedding": {"model": "all-MiniLM-L6-v2"}}),
        StatusCode::BAD_REQUEST,
        "makes 384-dimensional vectors but the collection's vectors have 128",
    )
    .await;
    t.err(
        "PUT",
        "/collections/x",
        json!({"embedding": {"model": "no-such-model"}}),
        StatusCode::BAD_REQUEST,
        "not installed",
    )
    .await;
    t.err(
        "PUT",
        "/collections/x",
        json!({"embedding": {"model": "../../etc"}}),
        StatusCode::BAD_REQUEST,
        "embedding.model",
    )
    .await;
    t.err("PUT", "/collections/x", json!({"embedding": {"name": "m"}}), StatusCode::BAD_REQUEST, "invalid embedding")
        .await;
    t.err("PUT", "/collections/x", json!({}), StatusCode::BAD_REQUEST, "vectors").await;
    let (s, v) = t.call("GET", "/collections/x/exists", None).await;
    assert_eq!((s, v["result"]["exists"].clone()), (StatusCode::OK, json!(false)));

    text_collection(&t, "c").await;
    t.err(
        "PUT",
        "/collections/c/points",
        json!({"points": [{"id": 1, "text": "hi", "vector": [0.0]}]}),
        StatusCode::BAD_REQUEST,
        "points[0]: expected one of `vector`, `text` or `image`, got more than one",
    )
    .await;
    t.err("PUT", "/collections/c/points", json!({"points": [{"id": 1}]}), StatusCode::BAD_REQUEST, "points[0].vector")
        .await;
    t.err(
        "PUT",
        "/collections/c/points",
        json!({"points": [{"id": 1, "vector": {"text": "hi", "model": "other-model"}}]}),
        StatusCode::BAD_REQUEST,
        "points[0].vector.model",
    )
    .await;
    t.err(
        "PUT",
        "/collections/c/points",
        json!({"batch": {"ids": [1, 2], "texts": ["one"]}}),
        StatusCode::BAD_REQUEST,
        "batch.texts",
    )
    .await;
    t.err("POST", "/collections/c/points/search", json!({"limit": 1}), StatusCode::BAD_REQUEST, "vector").await;
    t.err(
        "POST",
        "/collections/c/points/query",
        json!({"query": {"text": "hi", "model": "other"}}),
        StatusCode::BAD_REQUEST,
        "query.model",
    )
    .await;
    assert_eq!(t.count("c", json!(null)).await, 0);
}

fn long_doc() -> String {
    // Six paragraphs on different subjects, long enough for several 40-token chunks.
    [
        "Honeybees live in colonies ruled by a single queen. Workers gather nectar and pollen from flowers.",
        "The hive stores honey in wax combs. Bees dance to tell each other where the flowers are.",
        "Glaciers are rivers of ice that move slowly downhill. They carve deep valleys into mountains.",
        "As the climate warms, many glaciers are shrinking. Meltwater raises the level of the sea.",
        "Sourdough bread rises with wild yeast instead of baker's yeast. The starter must be fed daily.",
        "A long, slow fermentation gives the loaf its sour taste and open crumb.",
    ]
    .join("\n\n")
}

#[tokio::test]
async fn documents_are_chunked_replaced_deleted_and_searched_by_group() {
    let t = server();
    text_collection(&t, "docs").await;
    let body = json!({
        "documents": [
            {"id": "nature/bees-glaciers-bread.md", "text": long_doc(), "metadata": {"lang": "en", "tags": ["mixed"]}},
            {"id": 7, "text": "Chess is a board game for two players. Each side starts with sixteen pieces.",
             "metadata": {"lang": "en"}},
            {"id": "blank", "text": "   \n  "},
        ],
        "chunking": {"max_tokens": 40, "overlap_tokens": 8},
    });
    let r = t.ok("POST", "/collections/docs/documents?wait=true", body).await;
    assert_eq!(r["status"], "completed");
    let counts = r["documents"].as_array().unwrap();
    let long_chunks = counts[0]["chunks"].as_u64().unwrap();
    assert!(long_chunks >= 3, "{r}");
    assert_eq!(counts[1], json!({"id": "7", "chunks": 1}));
    assert_eq!(counts[2], json!({"id": "blank", "chunks": 0}));
    let of = |id: &str| json!({"must": [{"key": "doc_id", "match": {"value": id}}]});
    assert_eq!(t.count("docs", of("nature/bees-glaciers-bread.md")).await, long_chunks);
    assert_eq!(t.count("docs", json!(null)).await, long_chunks + 1);

    // Chunk payloads: the metadata plus doc_id, chunk_index, chunk_count and the chunk's own text.
    let page = t
        .ok(
            "POST",
            "/collections/docs/points/scroll",
            json!({"filter": of("nature/bees-glaciers-bread.md"), "limit": 100}),
        )
        .await;
    let mut indexes: Vec<u64> = Vec::new();
    for p in page["points"].as_array().unwrap() {
        let pl = &p["payload"];
        assert_eq!(pl["lang"], "en");
        assert_eq!(pl["tags"], json!(["mixed"]));
        assert_eq!(pl["chunk_count"], long_chunks);
        let text = pl["text"].as_str().unwrap();
        assert!(long_doc().contains(text), "chunk text is a slice of the document: {text:?}");
        indexes.push(pl["chunk_index"].as_u64().unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..long_chunks).collect::<Vec<_>>());
    // Searching grouped by document: the glacier question finds the long document, with its glacier chunk first.
    let r = t
        .ok(
            "POST",
            "/collections/docs/points/search/groups",
            json!({"text": "melting ice and rising seas", "group_by": "doc_id", "group_size": 2, "limit": 2,
                   "with_payload": true}),
        )
        .await;
    let groups = r["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{r}");
    assert_eq!(groups[0]["id"], "nature/bees-glaciers-bread.md");
    assert_eq!(groups[0]["hits"].as_array().unwrap().len(), 2);
    assert!(groups[0]["hits"][0]["payload"]["text"].as_str().unwrap().contains("glacier"), "{r}");
    assert_eq!(groups[1]["id"], "7");
    let r = t
        .ok(
            "POST",
            "/collections/docs/points/search/groups",
            json!({"text": "a game of kings and queens", "group_by": "doc_id", "limit": 1}),
        )
        .await;
    assert_eq!(r["groups"][0]["id"], "7", "{r}");
    // The query form of the same (Qdrant's query_points_groups), by text and by a stored chunk's id.
    let r = t
        .ok(
            "POST",
            "/collections/docs/points/query/groups",
            json!({"query": {"text": "a game of kings and queens"}, "group_by": "doc_id", "limit": 2, "group_size": 1,
                   "with_payload": ["doc_id"]}),
        )
        .await;
    assert_eq!(r["groups"][0]["id"], "7", "{r}");
    assert_eq!(r["groups"][0]["hits"][0]["payload"], json!({"doc_id": "7"}), "{r}");
    assert_eq!(r["groups"].as_array().unwrap().len(), 2, "{r}");

    // Writing the long document again, shorter: its leftover chunks go.
    let r = t
        .ok(
            "POST",
            "/collections/docs/documents?wait=true",
            json!({"documents": [{"id": "nature/bees-glaciers-bread.md", "text": "Only bees now. Bees make honey."}]}),
        )
        .await;
    assert_eq!(r["documents"][0]["chunks"], 1);
    assert_eq!(t.count("docs", of("nature/bees-glaciers-bread.md")).await, 1);

    // Deleting a document deletes its chunks only.
    let (s, v) = t.call("DELETE", "/collections/docs/documents/nature%2Fbees-glaciers-bread.md?wait=true", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(t.count("docs", of("nature/bees-glaciers-bread.md")).await, 0);
    assert_eq!(t.count("docs", json!(null)).await, 1);

    // Bad documents: nothing is written.
    t.err(
        "POST",
        "/collections/docs/documents",
        json!({"documents": [{"id": "ok", "text": "fine"}, {"id": "bad", "text": "x", "metadata": {"chunk_index": 1}}]}),
        StatusCode::BAD_REQUEST,
        "documents[1].metadata.chunk_index",
    )
    .await;
    t.err(
        "POST",
        "/collections/docs/documents",
        json!({"documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}),
        StatusCode::BAD_REQUEST,
        "documents[1].id",
    )
    .await;
    t.err(
        "POST",
        "/collections/docs/documents",
        json!({"documents": [{"id": "a", "text": "x"}], "chunking": {"max_tokens": 10, "overlap_tokens": 10}}),
        StatusCode::BAD_REQUEST,
        "overlap_tokens",
    )
    .await;
    t.err("POST", "/collections/docs/documents", json!({"documents": []}), StatusCode::BAD_REQUEST, "documents").await;
    t.err(
        "POST",
        "/collections/docs/points/search/groups",
        json!({"text": "x", "group_by": ""}),
        StatusCode::BAD_REQUEST,
        "group_by",
    )
    .await;
    assert_eq!(t.count("docs", json!(null)).await, 1);
}

#[test]
fn two_names_of_one_model_share_one_loaded_copy() {
    let _t = server(); // fails with instructions when the model is missing
    let e = quiver_server::embedding::Embedders::new(None);
    let a = e.get("all-MiniLM-L6-v2").unwrap();
    let b = e.get("sentence-transformers/all-MiniLM-L6-v2").unwrap();
    assert!(Arc::ptr_eq(&a, &b), "loaded twice");
    assert!(Arc::ptr_eq(&a, &e.get("all-MiniLM-L6-v2").unwrap()));
    let err = e.get("no-such-model").expect_err("unknown model");
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(err.message.contains("not installed"), "{}", err.message);
}

/// The `{"error": {...}}` of an OpenAI-shaped reply, checked for status, type and a needle in the message.
async fn openai_err(t: &T, body: Value, status: StatusCode, kind: &str, needle: &str) -> Value {
    let (s, v) = t.call("POST", "/v1/embeddings", Some(body)).await;
    assert_eq!(s, status, "{v}");
    let e = &v["error"];
    assert_eq!(e["type"], kind, "{v}");
    let msg = e["message"].as_str().unwrap_or_else(|| panic!("no message: {v}"));
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    e.clone()
}

#[tokio::test]
async fn openai_embeddings_endpoint_runs_the_installed_models() {
    use base64::Engine as _;
    let t = server();
    let model = quiver_server::embedding::Embedders::new(None).get("all-MiniLM-L6-v2").unwrap();
    let want = model.embed(&TEXTS[..2]).unwrap();

    // Floats, in input order, equal to the model's own vectors; usage counts word pieces plus <cls>/<sep>.
    let (s, v) =
        t.call("POST", "/v1/embeddings", Some(json!({"input": TEXTS[..2], "model": "all-MiniLM-L6-v2"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "all-MiniLM-L6-v2");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["object"], "embedding");
        let got: Vec<f32> = serde_json::from_value(d["embedding"].clone()).unwrap();
        assert_eq!(got, want[i], "text {i}");
    }
    let tokens: usize = TEXTS[..2].iter().map(|x| model.count_tokens(x).unwrap() + 2).sum();
    assert_eq!(v["usage"]["prompt_tokens"], tokens);
    assert_eq!(v["usage"]["total_tokens"], tokens);

    // base64: the little-endian float32 bytes of the same vector; one string input; the owner-prefixed name.
    let (s, v) = t
        .call(
            "POST",
            "/v1/embeddings",
            Some(json!({"input": TEXTS[0], "model": "sentence-transformers/all-MiniLM-L6-v2",
                "encoding_format": "base64", "dimensions": 384})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(v["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let got: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(got, want[0]);

    // Bad input: OpenAI's error shape, naming the parameter.
    let e = openai_err(
        &t,
        json!({"input": [], "model": "all-MiniLM-L6-v2"}),
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "1..=2048 texts",
    )
    .await;
    assert_eq!(e["param"], "input");
    openai_err(
        &t,
        json!({"input": [[101, 102]], "model": "all-MiniLM-L6-v2"}),
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "token ids are not accepted",
    )
    .await;
    openai_err(
        &t,
        json!({"input": "x", "model": "all-MiniLM-L6-v2", "encoding_format": "int8"}),
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "encoding_format",
    )
    .await;
    openai_err(
        &t,
        json!({"input": "x", "model": "all-MiniLM-L6-v2", "temperature": 1}),
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "temperature",
    )
    .await;
    let e = openai_err(
        &t,
        json!({"input": "x", "model": "all-MiniLM-L6-v2", "dimensions": 128}),
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "not trained to make shorter vectors",
    )
    .await;
    assert_eq!(e["param"], "dimensions");
    let e = openai_err(
        &t,
        json!({"input": "x", "model": "text-embedding-3-small"}),
        StatusCode::NOT_FOUND,
        "not_found_error",
        "not installed",
    )
    .await;
    assert_eq!(e["code"], "model_not_found");
    let e = openai_err(
        &t,
        json!({"input": "x", "model": "../../etc"}),
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "model name",
    )
    .await;
    assert_eq!(e["param"], "model");

    // The models it can run.
    let (s, v) = t.call("GET", "/v1/models", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"all-MiniLM-L6-v2"), "{v}");
    assert!(ids.contains(&"all-mpnet-base-v2"), "{v}");
}

#[tokio::test]
async fn a_collection_embeds_with_mpnet_by_name() {
    // all-mpnet-base-v2 is found in ~/.cache/quiver-models (scripts/get-embed-model.sh all-mpnet-base-v2; CI installs
    // it), and gives the collection its 768 dimensions.
    let t = server();
    let (s, v) = t.call("PUT", "/collections/m", Some(json!({"embedding": {"model": "all-mpnet-base-v2"}}))).await;
    assert_eq!(s, StatusCode::OK, "needs `bash scripts/get-embed-model.sh all-mpnet-base-v2`: {v}");
    let info = t.ok("GET", "/collections/m", Value::Null).await;
    assert_eq!(info["config"]["params"]["vectors"]["size"], 768, "{info}");
    let points: Vec<Value> = TEXTS.iter().enumerate().map(|(i, x)| json!({"id": i, "text": x})).collect();
    t.ok("PUT", "/collections/m/points?wait=true", json!({ "points": points })).await;
    let hits =
        t.ok("POST", "/collections/m/points/search", json!({"text": "a kitten sleeping on a rug", "limit": 2})).await;
    assert_eq!(first_id(&hits), 0, "{hits}");
    let hits = t.ok("POST", "/collections/m/points/search", json!({"text": "baking a dessert", "limit": 2})).await;
    assert_eq!(first_id(&hits), 2, "{hits}");
}

fn image_b64(file: &str) -> String {
    use base64::Engine as _;
    let path = format!("{}/../quiver-embed/testdata/images/{file}", env!("CARGO_MANIFEST_DIR"));
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// EfficientNet-Lite0 (`bash scripts/get-embed-model.sh efficientnet-lite0`; `.ci/run` installs it) behind a
/// collection: images in upserts (`image`, Qdrant's `{"image": …}` vector, `batch.images`), searches and queries
/// by image, and every bad image or wrong kind of input a 400 naming the field that changes nothing.
#[tokio::test]
async fn an_image_collection_takes_images_everywhere_and_refuses_bad_ones() {
    let t = server();
    let created = t.ok("PUT", "/collections/pics", json!({"embedding": {"model": "efficientnet-lite0"}})).await;
    assert_eq!(created, json!(true));
    let info = t.ok("GET", "/collections/pics", json!(null)).await;
    assert_eq!(info["config"]["params"]["vectors"]["size"], 1280, "{info}");

    let files = ["cat.jpg", "coffee.jpg", "astronaut.webp", "rocket.jpg"];
    t.ok(
        "PUT",
        "/collections/pics/points?wait=true",
        json!({"points": [
            {"id": 1, "image": image_b64(files[0]), "payload": {"file": files[0]}},
            {"id": 2, "vector": {"image": image_b64(files[1]), "model": "efficientnet-lite0"},
             "payload": {"file": files[1]}},
        ]}),
    )
    .await;
    t.ok(
        "PUT",
        "/collections/pics/points?wait=true",
        json!({"batch": {"ids": [3, 4], "images": [
            format!("data:image/webp;base64,{}", image_b64(files[2])), image_b64(files[3])]}}),
    )
    .await;
    assert_eq!(t.count("pics", json!(null)).await, 4);

    // The mirrored cat finds the cat first, whichever way the query image comes.
    let cat = image_b64("cat-mirrored.png");
    let hits = t.ok("POST", "/collections/pics/points/search", json!({"image": cat, "limit": 4})).await;
    assert_eq!(first_id(&hits), 1, "{hits}");
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap() + 0.1, "{hits}");
    for query in [json!({"image": cat}), json!({"nearest": {"image": cat, "model": "efficientnet-lite0"}})] {
        let r = t.ok("POST", "/collections/pics/points/query", json!({"query": query, "limit": 2})).await;
        assert_eq!(first_id(&r["points"]), 1, "{r}");
    }
    let r = t
        .ok("POST", "/collections/pics/points/query", json!({"query": {"recommend": {"positive": [{"image": cat}]}}}))
        .await;
    assert_eq!(first_id(&r["points"]), 1, "{r}");

    // Bad images and wrong kinds of input: 400 naming the field; nothing is written.
    let png = {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&cat).unwrap();
        base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 2])
    };
    let bad = StatusCode::BAD_REQUEST;
    let up = "/collections/pics/points?wait=true";
    t.err("PUT", up, json!({"points": [{"id": 9, "image": "%%%"}]}), bad, "points[0].image").await;
    t.err("PUT", up, json!({"points": [{"id": 9, "image": "https://example.com/cat.jpg"}]}), bad, "not fetched").await;
    t.err("PUT", up, json!({"points": [{"id": 9, "image": ""}]}), bad, "points[0].image").await;
    t.err(
        "PUT",
        up,
        json!({"points": [{"id": 9, "image": image_b64(files[0])}, {"id": 10, "image": png}]}),
        bad,
        "points[1].image",
    )
    .await;
    t.err("PUT", up, json!({"points": [{"id": 9, "image": "aGVsbG8gd29ybGQ="}]}), bad, "not an image").await;
    t.err("PUT", up, json!({"points": [{"id": 9, "text": "a cat"}]}), bad, "embeds images").await;
    t.err("PUT", up, json!({"points": [{"id": 9, "text": "a", "image": cat}]}), bad, "more than one").await;
    t.err("PUT", up, json!({"batch": {"ids": [9], "images": []}}), bad, "batch.images").await;
    t.err(
        "PUT",
        up,
        json!({"points": [{"id": 9, "vector": {"image": cat, "model": "all-MiniLM-L6-v2"}}]}),
        bad,
        "all-MiniLM-L6-v2",
    )
    .await;
    t.err("POST", "/collections/pics/points/search", json!({"text": "a cat", "limit": 1}), bad, "embeds images").await;
    t.err("POST", "/collections/pics/points/query", json!({"query": {"image": png}}), bad, "query.image").await;
    assert_eq!(t.count("pics", json!(null)).await, 4, "nothing written by a refused request");

    // A text collection refuses images the same way.
    text_collection(&t, "notes").await;
    t.err("PUT", "/collections/notes/points", json!({"points": [{"id": 1, "image": cat}]}), bad, "embeds text").await;
    // A collection without a model says how to get one.
    t.ok("PUT", "/collections/plain", json!({"vectors": {"size": 3, "distance": "Cosine"}})).await;
    t.err("POST", "/collections/plain/points/search", json!({"image": cat, "limit": 1}), bad, "embedding").await;
}

/// Named vectors each embed with their own model: a caption (MiniLM) and a photo (EfficientNet) per point, text
/// queries on the caption and image queries on the photo, and a model's wrong kind of input refused by name.
#[tokio::test]
async fn named_vectors_embed_each_with_its_own_model() {
    let t = server();
    t.ok(
        "PUT",
        "/collections/mixed",
        json!({"vectors": {
            "caption": {"size": 384, "distance": "Cosine", "embedding": {"model": "all-MiniLM-L6-v2"}},
            "photo": {"size": 1280, "distance": "Cosine", "embedding": {"model": "efficientnet-lite0"}},
            "raw": {"size": 2, "distance": "Dot"}
        }}),
    )
    .await;
    let info = t.ok("GET", "/collections/mixed", json!(null)).await;
    assert_eq!(info["config"]["params"]["vectors"]["photo"]["embedding"]["model"], "efficientnet-lite0", "{info}");
    let items = [
        ("cat.jpg", "a cat sleeping on a sofa"),
        ("coffee.jpg", "a cup of espresso"),
        ("rocket.jpg", "a rocket launch"),
    ];
    let points: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (file, caption))| {
            json!({"id": i + 1, "vector": {"caption": {"text": caption}, "photo": {"image": image_b64(file)}, "raw": [1.0, i as f32]},
                   "payload": {"file": file}})
        })
        .collect();
    t.ok("PUT", "/collections/mixed/points?wait=true", json!({ "points": points })).await;
    let by_text = t
        .ok(
            "POST",
            "/collections/mixed/points/query",
            json!({"query": {"text": "hot drink"}, "using": "caption", "limit": 1}),
        )
        .await;
    assert_eq!(first_id(&by_text["points"]), 2, "{by_text}");
    let by_image = t
        .ok(
            "POST",
            "/collections/mixed/points/query",
            json!({"query": {"image": image_b64("cat-mirrored.png")}, "using": "photo", "limit": 1}),
        )
        .await;
    assert_eq!(first_id(&by_image["points"]), 1, "{by_image}");
    // Hybrid of the two: a text query on the captions fused with an image query on the photos.
    let fused = t
        .ok(
            "POST",
            "/collections/mixed/points/query",
            json!({"prefetch": [{"query": {"text": "a kitten"}, "using": "caption"},
                                {"query": {"image": image_b64("cat-mirrored.png")}, "using": "photo"}],
                   "query": {"fusion": "rrf"}, "limit": 1}),
        )
        .await;
    assert_eq!(first_id(&fused["points"]), 1, "{fused}");
    // Each model takes its own kind of input; a vector without a model takes numbers only.
    let bad = StatusCode::BAD_REQUEST;
    let up = "/collections/mixed/points";
    t.err(
        "PUT",
        up,
        json!({"points": [{"id": 9, "vector": {"photo": {"text": "a cat"}}}]}),
        bad,
        "points[0].vector.photo",
    )
    .await;
    t.err("PUT", up, json!({"points": [{"id": 9, "vector": {"raw": {"text": "a cat"}}}]}), bad, "no embedding model")
        .await;
    t.err("PUT", up, json!({"points": [{"id": 9, "text": "a cat"}]}), bad, "points[0].text").await;
    let q = "/collections/mixed/points/query";
    t.err("POST", q, json!({"query": {"text": "cat"}, "using": "photo"}), bad, "embeds images").await;
    assert_eq!(t.count("mixed", json!(null)).await, 3, "nothing was written");
    // A model whose vectors do not fit its named vector is refused at creation.
    t.err(
        "PUT",
        "/collections/wrong",
        json!({"vectors": {"a": {"size": 3, "distance": "Cosine", "embedding": {"model": "all-MiniLM-L6-v2"}}}}),
        bad,
        "384",
    )
    .await;
}
