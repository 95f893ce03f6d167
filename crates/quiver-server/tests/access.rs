//! Access control route by route: every route of the server × {no credential, expired token, read-only key, a
//! token for collection `a`, a token for collection `b`}, answered as the route's rule in
//! `quiver_server::access::RULES` says; and what a token for one collection sees of the others.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use quiver_engine::Database;
use quiver_server::access::{self, Rule};
use quiver_server::{AppState, ServerConfig, app};
use serde_json::{Value, json};
use tower::ServiceExt;

const FULL: &str = "full-secret-key";
const READ_ONLY: &str = "read-only-key-1";

/// Routes served outside the OpenAPI document.
const UNDOCUMENTED: [(&str, &str); 7] = [
    ("GET", "/openapi.json"),
    ("GET", "/console"),
    ("GET", "/console/"),
    ("GET", "/console/{file}"),
    ("POST", "/mcp"),
    ("GET", "/mcp"),
    ("DELETE", "/mcp"),
];

/// Every route the server answers: the OpenAPI document's operations and the undocumented ones.
fn all_routes() -> Vec<(String, String)> {
    let doc = serde_json::to_value(quiver_server::openapi()).unwrap();
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out.extend(UNDOCUMENTED.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())));
    out
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn token(claims: Value) -> String {
    access::sign(&claims, FULL)
}

struct T {
    app: Router,
    _dir: tempfile::TempDir,
}

impl T {
    fn new(jwt_rbac: bool) -> T {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let cfg = ServerConfig {
            api_key: Some(FULL.into()),
            read_only_api_key: Some(READ_ONLY.into()),
            jwt_rbac,
            ..Default::default()
        };
        T { app: app(AppState::with_database(cfg, Arc::new(db))), _dir: dir }
    }

    /// The status only: the body is not read (the change feed streams forever).
    async fn status(&self, method: &str, uri: &str, key: Option<&str>, body: Option<Value>) -> StatusCode {
        self.send(method, uri, key, body).await.status()
    }

    async fn send(&self, method: &str, uri: &str, key: Option<&str>, body: Option<Value>) -> axum::response::Response {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap()
    }

    async fn json(&self, method: &str, uri: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        let resp = self.send(method, uri, Some(key), body).await;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let v =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    async fn text(&self, uri: &str, key: &str) -> String {
        let resp = self.send("GET", uri, Some(key), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        String::from_utf8(axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    }

    /// Collections `a` and `b`, one point each, created with the full key.
    async fn with_two_collections(&self) {
        for c in ["a", "b"] {
            let (s, v) = self
                .json(
                    "PUT",
                    &format!("/collections/{c}"),
                    FULL,
                    Some(json!({"vectors": {"size": 3, "distance": "Cosine"}})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let (s, v) = self
                .json(
                    "PUT",
                    &format!("/collections/{c}/points?wait=true"),
                    FULL,
                    Some(json!({"points": [{"id": 1, "vector": [1.0, 0.0, 0.0]}]})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }

    async fn count(&self, c: &str) -> u64 {
        let (s, v) = self.json("POST", &format!("/collections/{c}/points/count"), FULL, Some(json!({}))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["result"]["count"].as_u64().unwrap()
    }
}

#[test]
fn every_route_has_exactly_one_rule_and_every_rule_a_route() {
    let routes = all_routes();
    for (m, p) in &routes {
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        assert!(access::rule(&method, p).is_some(), "{m} {p} has no access rule in quiver_server::access::RULES");
    }
    for (m, p, _) in access::RULES {
        assert!(routes.iter().any(|(rm, rp)| rm == m && rp == p), "the rule for {m} {p} names no route");
    }
}

#[tokio::test]
async fn every_route_answers_each_credential_as_its_rule_says() {
    let t = T::new(true);
    t.with_two_collections().await;
    let soon = now() + 3600;
    let expired = token(json!({"access": "m", "exp": now() - 60}));
    let writes_a = token(json!({"access": [{"collection": "a", "access": "rw"}], "exp": soon}));
    let writes_b = token(json!({"access": [{"collection": "b", "access": "rw"}], "exp": soon}));
    let reads_all = token(json!({"access": "r", "exp": soon}));
    let mut checked = 0;
    for (method, route) in all_routes() {
        let rule = access::rule(&Method::from_bytes(method.as_bytes()).unwrap(), &route).unwrap();
        let uri = route
            .replace("{collection_name}", "a")
            .replace("{field_name}", "f")
            .replace("{id}", "1")
            .replace("{doc_id}", "d")
            .replace("{snapshot_name}", "s.snapshot")
            .replace("{file}", "console.js");
        let body = matches!(method.as_str(), "POST" | "PUT").then(|| json!({}));
        let allowed = |s: StatusCode| s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN;
        let open = rule == Rule::Open;
        let cases: [(&str, Option<&str>, bool); 6] = [
            ("no credential", None, open),
            ("an expired token", Some(&expired), open),
            ("the read-only key", Some(READ_ONLY), !matches!(rule, Rule::Write | Rule::Manage)),
            ("a read-all token", Some(&reads_all), !matches!(rule, Rule::Write | Rule::Manage)),
            ("a token for a", Some(&writes_a), !matches!(rule, Rule::ReadAll | Rule::Manage)),
            ("a token for b", Some(&writes_b), matches!(rule, Rule::Open | Rule::Any)),
        ];
        for (who, key, expect) in cases {
            let s = t.status(&method, &uri, key, body.clone()).await;
            assert_eq!(allowed(s), expect, "{method} {uri} ({rule:?}) with {who}: {s}");
            if !expect {
                let refused = if key.is_none() || who.contains("expired") {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(s, refused, "{method} {uri} with {who}");
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} checks");
    // Nothing the refused writes asked for happened.
    assert_eq!(t.count("a").await, 1);
    assert_eq!(t.count("b").await, 1);
}

#[tokio::test]
async fn a_token_for_one_collection_sees_and_changes_only_that_one() {
    let t = T::new(true);
    t.with_two_collections().await;
    let tok = token(json!({"access": [{"collection": "a", "access": "rw"}], "exp": now() + 600}));
    // Listing, metrics and telemetry show `a` only.
    let (s, v) = t.json("GET", "/collections", &tok, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["result"]["collections"], json!([{"name": "a"}]), "{v}");
    let (_, v) = t.json("GET", "/collections", READ_ONLY, None).await;
    assert_eq!(v["result"]["collections"].as_array().unwrap().len(), 2, "{v}");
    let metrics = t.text("/metrics", &tok).await;
    assert!(metrics.contains(r#"quiver_collection_points{collection="a"} 1"#), "{metrics}");
    assert!(!metrics.contains(r#"collection="b""#), "{metrics}");
    assert!(t.text("/metrics", READ_ONLY).await.contains(r#"collection="b""#));
    let (_, v) = t.json("GET", "/telemetry", &tok, None).await;
    assert_eq!(v["result"]["collections"], 1, "{v}");
    // Writes to `a` work; to `b` they are refused, naming the collection, and change nothing.
    let (s, v) = t
        .json(
            "PUT",
            "/collections/a/points?wait=true",
            &tok,
            Some(json!({"points": [{"id": 2, "vector": [0.0, 1.0, 0.0]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .json(
            "PUT",
            "/collections/b/points?wait=true",
            &tok,
            Some(json!({"points": [{"id": 2, "vector": [0.0, 1.0, 0.0]}]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["status"]["error"].as_str().unwrap().contains("write collection `b`"), "{v}");
    assert_eq!((t.count("a").await, t.count("b").await), (2, 1));
    let (s, v) = t
        .json("POST", "/collections/b/points/search", &tok, Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 5})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A read-only token for `a` searches but cannot write; neither token makes or drops collections.
    let ro = token(json!({"access": [{"collection": "a", "access": "r"}]}));
    let (s, v) =
        t.json("POST", "/collections/a/points/search", &ro, Some(json!({"vector": [1.0, 0.0, 0.0], "limit": 5}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"].as_array().unwrap().len(), 2, "{v}");
    let (s, _) = t.json("POST", "/collections/a/points/delete", &ro, Some(json!({"points": [1]}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for who in [&tok, &ro] {
        let (s, v) = t.json("DELETE", "/collections/a", who, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["status"]["error"].as_str().unwrap().contains("full access"), "{v}");
    }
    assert_eq!(t.count("a").await, 2);
    // A manage token does everything the full key does.
    let m = token(json!({"access": "m"}));
    let (s, v) = t.json("PUT", "/collections/c", &m, Some(json!({"vectors": {"size": 3, "distance": "Dot"}}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // An MCP session for a read-only token gets the read tools only.
    let (s, v) = t.json("POST", "/mcp", &ro, Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tools: Vec<&str> =
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    let (_, v) = t.json("POST", "/mcp", &tok, Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))).await;
    let all: Vec<&str> = v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tools.len() < all.len() && tools.iter().all(|n| all.contains(n)), "{tools:?} vs {all:?}");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_naming_the_fault() {
    let t = T::new(true);
    t.with_two_collections().await;
    let expired = token(json!({"access": "m", "exp": now() - 5}));
    let wrong_key = access::sign(&json!({"access": "m"}), "some-other-key");
    let not_yet = token(json!({"access": "m", "nbf": now() + 600}));
    let no_access = token(json!({"exp": now() + 600}));
    for (tok, needle) in [(expired, "expired"), (wrong_key, "signature"), (not_yet, "nbf"), (no_access, "claim access")]
    {
        let (s, v) = t.json("GET", "/collections", &tok, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        let msg = v["status"]["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    // Without jwt_rbac, a valid token is just a wrong key.
    let t = T::new(false);
    let (s, v) = t.json("GET", "/collections", &token(json!({"access": "m"})), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["status"]["error"].as_str().unwrap().contains("invalid API key"), "{v}");
}

#[test]
fn jwt_rbac_needs_an_api_key() {
    let cfg = ServerConfig { jwt_rbac: true, ..Default::default() };
    assert!(cfg.validate().unwrap_err().contains("jwt_rbac"));
}

#[tokio::test]
async fn lookup_from_reads_another_collection_only_where_the_caller_may_read_it() {
    let t = T::new(true);
    t.with_two_collections().await;
    let body = json!({"query": 1, "lookup_from": {"collection": "b"}, "limit": 1});
    // A token for `a` alone may not use `b`'s points as query vectors.
    let only_a = token(json!({"access": [{"collection": "a", "access": "r"}], "exp": now() + 600}));
    let (s, v) = t.json("POST", "/collections/a/points/query", &only_a, Some(body.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["status"]["error"].as_str().unwrap().contains("lookup_from.collection"), "{v}");
    // Nor inside a prefetch, or a recommendation's examples.
    let staged = json!({"prefetch": {"query": 1, "lookup_from": {"collection": "b"}}, "query": {"fusion": "rrf"}});
    let (s, _) = t.json("POST", "/collections/a/points/query", &only_a, Some(staged)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let rec = json!({"query": {"recommend": {"positive": [1], "strategy": "best_score"}}, "lookup_from": {"collection": "b"}});
    let (s, _) = t.json("POST", "/collections/a/points/query", &only_a, Some(rec)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A token for both may, and so may the read-only key; b's point 1 is not left out of a's answer.
    let both = token(json!({"access": [{"collection": "a", "access": "r"}, {"collection": "b", "access": "r"}]}));
    for key in [both.as_str(), READ_ONLY] {
        let (s, v) = t.json("POST", "/collections/a/points/query", key, Some(body.clone())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["result"]["points"][0]["id"], 1, "{v}");
    }
}
