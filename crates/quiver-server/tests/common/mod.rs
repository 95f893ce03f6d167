//! The router driven in-process (no sockets), shared by the server's test binaries.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use quiver_engine::Database;
use quiver_server::{AppState, ServerConfig, app};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A router over a database in a temporary directory, with an optional API key sent on every request.
pub struct T {
    pub app: Router,
    pub _dir: tempfile::TempDir,
    pub key: Option<String>,
}

pub fn setup(config: ServerConfig) -> T {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let state = AppState::with_database(config, Arc::new(db));
    T { app: app(state), _dir: dir, key: None }
}

pub fn server() -> T {
    setup(ServerConfig::default())
}

impl T {
    pub async fn raw(&self, method: &str, uri: &str, body: Body, headers: &[(&str, &str)]) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = &self.key {
            req = req.header("api-key", k.as_str());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, bytes.to_vec())
    }

    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (body, ct) = match body {
            Some(v) => (Body::from(serde_json::to_vec(&v).unwrap()), vec![("content-type", "application/json")]),
            None => (Body::empty(), vec![]),
        };
        let (s, b) = self.raw(method, uri, body, &ct).await;
        let v = serde_json::from_slice(&b).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into()));
        (s, v)
    }

    pub async fn ok(&self, method: &str, uri: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, uri, body).await;
        assert_eq!(s, StatusCode::OK, "{method} {uri}: {v}");
        assert_eq!(v["status"], "ok", "{v}");
        assert!(v["time"].as_f64().is_some(), "{v}");
        v["result"].clone()
    }

    /// Asserts the status and that the error message mentions `needle`.
    pub async fn err(&self, method: &str, uri: &str, body: Option<Value>, status: StatusCode, needle: &str) {
        let (s, v) = self.call(method, uri, body).await;
        assert_eq!(s, status, "{method} {uri}: {v}");
        let msg = v["status"]["error"].as_str().unwrap_or_else(|| panic!("no error message: {v}"));
        assert!(msg.contains(needle), "{method} {uri}: {msg:?} lacks {needle:?}");
    }

    pub async fn count(&self, c: &str) -> u64 {
        self.ok("POST", &format!("/collections/{c}/points/count"), Some(json!({}))).await["count"].as_u64().unwrap()
    }
}
