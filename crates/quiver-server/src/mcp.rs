//! The Model Context Protocol (MCP) server: QuiverDB as tools an AI agent can call.
//!
//! Every tool is a translation to one call of the REST API, made through an [`Api`]: the server's own router in
//! this process (`quiver mcp --data DIR`: nothing listens on a port) or a running server (`quiver mcp --url`).
//! So a tool validates, authorises and answers exactly as the route it maps to; this module only shapes
//! arguments and results. JSON-RPC 2.0 messages, one per line on stdio ([`serve_lines`]).
//!
//! Tool errors (a bad argument, a missing collection, an API error) come back as a tool result with `isError`,
//! its text naming what was wrong, so the agent can correct its call; only protocol faults (unknown method or
//! tool, malformed JSON-RPC) are JSON-RPC errors.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tower::ServiceExt;

/// The protocol versions this server speaks, newest last.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Longest line read from the client.
const MAX_LINE: usize = 64 << 20;

/// A failed REST call: the HTTP status (0 when there was no reply) and the message.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    /// HTTP status, 0 for no reply.
    pub status: u16,
    /// The server's message.
    pub message: String,
}

/// A boxed future of a REST call's `result`.
pub type ApiFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ApiFailure>> + Send + 'a>>;

/// Where tool calls go: one REST call, answering the reply's `result`.
pub trait Api: Send + Sync {
    /// `method path` with an optional JSON body.
    fn call<'a>(&'a self, method: Method, path: String, body: Option<Value>) -> ApiFuture<'a>;
}

/// The server's router in this process (no socket): what `quiver mcp --data DIR` uses.
#[derive(Debug, Clone)]
pub struct RouterApi {
    router: Router,
    api_key: Option<String>,
}

impl RouterApi {
    /// Calls go to `router` (from [`crate::app`]), with `api_key` when the router checks keys.
    pub fn new(router: Router, api_key: Option<String>) -> Self {
        RouterApi { router, api_key }
    }
}

impl Api for RouterApi {
    fn call<'a>(&'a self, method: Method, path: String, body: Option<Value>) -> ApiFuture<'a> {
        Box::pin(async move {
            let mut req = Request::builder().method(method).uri(path);
            if let Some(k) = &self.api_key {
                req = req.header("api-key", k);
            }
            let req = match body {
                Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
                None => req.body(Body::empty()),
            }
            .map_err(|e| ApiFailure { status: 0, message: format!("building the request: {e}") })?;
            let res = self
                .router
                .clone()
                .oneshot(req)
                .await
                .map_err(|e| ApiFailure { status: 0, message: format!("calling the router: {e}") })?;
            let status = res.status().as_u16();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .map_err(|e| ApiFailure { status, message: format!("reading the reply: {e}") })?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                Ok(v.get("result").cloned().unwrap_or(Value::Null))
            } else {
                let message = v
                    .pointer("/status/error")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
                Err(ApiFailure { status, message })
            }
        })
    }
}

/// One tool: its name, what it does, its JSON schema, whether it writes.
struct Tool {
    name: &'static str,
    description: &'static str,
    schema: fn() -> Value,
    writes: bool,
}

fn collection_prop() -> Value {
    json!({"type": "string", "description": "The collection's name."})
}

fn filter_prop() -> Value {
    json!({"type": "object", "description": "A Qdrant-shaped payload filter, e.g. {\"must\": [{\"key\": \"lang\", \"match\": {\"value\": \"en\"}}]}; ranges: {\"key\": \"year\", \"range\": {\"gte\": 2000}}."})
}

fn id_prop() -> Value {
    json!({"type": ["integer", "string"], "description": "A point id: an unsigned integer or a UUID string."})
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "list_collections",
        description: "Lists the collections.",
        schema: || json!({"type": "object", "properties": {}, "additionalProperties": false}),
        writes: false,
    },
    Tool {
        name: "collection_info",
        description: "A collection's size, vector dimension and distance, embedding model, indexes and state.",
        schema: || {
            json!({"type": "object", "properties": {"collection": collection_prop()}, "required": ["collection"],
                   "additionalProperties": false})
        },
        writes: false,
    },
    Tool {
        name: "create_collection",
        description: "Creates a collection. With `model` (e.g. \"all-MiniLM-L6-v2\") it takes texts and text \
                      queries, embedded by that model; otherwise give `dimension` (and `distance`) for raw vectors.",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "model": {"type": "string", "description": "Embedding model for texts (the built-in one is all-MiniLM-L6-v2)."},
                "dimension": {"type": "integer", "minimum": 1, "description": "Vector length (not needed with a model)."},
                "distance": {"type": "string", "enum": ["Cosine", "Dot", "Euclid"], "description": "Default Cosine."}
            }, "required": ["collection"], "additionalProperties": false})
        },
        writes: true,
    },
    Tool {
        name: "add_texts",
        description: "Adds short texts (each one point, embedded by the collection's model, kept in its payload as \
                      `text`). Without `ids`, each text gets an id derived from the text itself, so adding the same \
                      text again replaces it.",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "texts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "ids": {"type": "array", "items": id_prop(), "description": "One per text (optional)."},
                "payloads": {"type": "array", "items": {"type": "object"}, "description": "Metadata, one object per text (optional)."}
            }, "required": ["collection", "texts"], "additionalProperties": false})
        },
        writes: true,
    },
    Tool {
        name: "add_documents",
        description: "Adds long documents: each is cut into chunks at sentence boundaries, every chunk embedded and \
                      stored with the document's metadata plus doc_id, chunk_index and text. Writing a document id \
                      again replaces the document.",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "documents": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                    "id": {"type": ["string", "integer"]}, "text": {"type": "string"}, "metadata": {"type": "object"}
                }, "required": ["id", "text"]}},
                "max_tokens": {"type": "integer", "minimum": 1, "description": "Most tokens per chunk (default 200)."},
                "overlap_tokens": {"type": "integer", "minimum": 0, "description": "Tokens repeated between chunks (default 32)."}
            }, "required": ["collection", "documents"], "additionalProperties": false})
        },
        writes: true,
    },
    Tool {
        name: "upsert_points",
        description: "Inserts or replaces points given as vectors with optional payloads.",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "points": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                    "id": id_prop(), "vector": {"type": "array", "items": {"type": "number"}}, "payload": {"type": "object"}
                }, "required": ["id", "vector"]}}
            }, "required": ["collection", "points"], "additionalProperties": false})
        },
        writes: true,
    },
    Tool {
        name: "search",
        description: "Finds the points nearest a query: `text` (for a collection with a model), `vector`, or \
                      `like_id` (the point most like a stored one, itself left out); optionally under a payload \
                      filter. With `keyword_field` (a payload key with a text index) `mode` may be `keyword` \
                      (BM25 on the words of `text`) or `hybrid` (keywords and meaning, fused by DBSF); default \
                      `semantic`. `using` names the vector searched in a collection with named vectors. `explain` \
                      adds how the search was planned.",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "text": {"type": "string"},
                "vector": {"type": "array", "items": {"type": "number"}},
                "like_id": id_prop(),
                "using": {"type": "string", "description": "The named vector to search (collections with named vectors)."},
                "mode": {"type": "string", "enum": ["semantic", "keyword", "hybrid"], "description": "Default semantic."},
                "keyword_field": {"type": "string", "description": "Payload key with a text index (keyword, hybrid)."},
                "filter": filter_prop(),
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Default 10."},
                "with_payload": {"type": "boolean", "description": "Default true."},
                "explain": {"type": "boolean", "description": "Default false."}
            }, "required": ["collection"], "additionalProperties": false})
        },
        writes: false,
    },
    Tool {
        name: "get_points",
        description: "The points with these ids (missing ids are left out), with their payloads.",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "ids": {"type": "array", "items": id_prop(), "minItems": 1},
                "with_vector": {"type": "boolean", "description": "Default false."}
            }, "required": ["collection", "ids"], "additionalProperties": false})
        },
        writes: false,
    },
    Tool {
        name: "delete_points",
        description: "Deletes points by `ids` or by `filter` (exactly one of them).",
        schema: || {
            json!({"type": "object", "properties": {
                "collection": collection_prop(),
                "ids": {"type": "array", "items": id_prop(), "minItems": 1},
                "filter": filter_prop()
            }, "required": ["collection"], "additionalProperties": false})
        },
        writes: true,
    },
    Tool {
        name: "count",
        description: "How many points a collection holds, or how many a filter admits.",
        schema: || {
            json!({"type": "object", "properties": {"collection": collection_prop(), "filter": filter_prop()},
                   "required": ["collection"], "additionalProperties": false})
        },
        writes: false,
    },
];

/// An MCP session over an [`Api`]. `read_only` hides and refuses the tools that write.
pub struct McpServer<A: Api> {
    api: A,
    read_only: bool,
}

impl<A: Api> std::fmt::Debug for McpServer<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").field("read_only", &self.read_only).finish_non_exhaustive()
    }
}

/// A tool call that cannot be made: its message goes back as an `isError` result.
struct ToolError(String);

impl From<ApiFailure> for ToolError {
    fn from(e: ApiFailure) -> Self {
        ToolError(if e.status == 0 { e.message } else { format!("{} (HTTP {})", e.message, e.status) })
    }
}

fn rpc_error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

use crate::wire::segment as seg;

/// The arguments of one call, with typed getters whose errors name the argument.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn string(&self, k: &str) -> Result<String, ToolError> {
        match self.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(v) => Err(ToolError(format!("invalid {k}: expected a non-empty string, got {v}"))),
            None => Err(ToolError(format!("missing {k}: expected a string"))),
        }
    }

    fn opt_string(&self, k: &str) -> Result<Option<String>, ToolError> {
        self.get(k).map(|_| self.string(k)).transpose()
    }

    fn array(&self, k: &str) -> Result<Option<&Vec<Value>>, ToolError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Array(a)) if !a.is_empty() => Ok(Some(a)),
            Some(v) => Err(ToolError(format!("invalid {k}: expected a non-empty array, got {}", short(v)))),
        }
    }

    fn object(&self, k: &str) -> Result<Option<Value>, ToolError> {
        match self.get(k) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(v) => Err(ToolError(format!("invalid {k}: expected an object, got {}", short(v)))),
        }
    }

    fn boolean(&self, k: &str, default: bool) -> Result<bool, ToolError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(ToolError(format!("invalid {k}: expected true or false, got {}", short(v)))),
        }
    }

    fn uint(&self, k: &str) -> Result<Option<u64>, ToolError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| ToolError(format!("invalid {k}: expected a non-negative integer, got {}", short(v)))),
        }
    }

    /// Refuses arguments the tool does not take (a misspelt `filtre` would otherwise be ignored silently).
    fn only(&self, known: &[String]) -> Result<(), ToolError> {
        match self.0.keys().find(|k| !known.contains(k)) {
            Some(k) => Err(ToolError(format!("unknown argument {k:?}: this tool takes {}", known.join(", ")))),
            None => Ok(()),
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The arguments a tool's schema names.
fn known_args(tool: &Tool) -> Vec<String> {
    let schema = (tool.schema)();
    schema.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

impl<A: Api> McpServer<A> {
    /// A session whose tools call `api`.
    pub fn new(api: A, read_only: bool) -> Self {
        McpServer { api, read_only }
    }

    fn tools(&self) -> impl Iterator<Item = &'static Tool> {
        let read_only = self.read_only;
        TOOLS.iter().filter(move |t| !(read_only && t.writes))
    }

    /// Answers one JSON-RPC message; `None` for a notification (no reply is sent).
    pub async fn handle(&self, msg: Value) -> Option<Value> {
        let Some(obj) = msg.as_object() else {
            return Some(rpc_error(Value::Null, -32600, "expected a JSON-RPC object"));
        };
        let id = obj.get("id").cloned();
        let Some(method) = obj.get("method").and_then(Value::as_str) else {
            // A response from the client (to a request this server never sends) or garbage.
            return id.map(|id| rpc_error(id, -32600, "expected a request with a method"));
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        let Some(id) = id else {
            return None; // notifications/initialized, notifications/cancelled, ...
        };
        let result = match method {
            "initialize" => Ok(self.initialize(&params)),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({"tools": self.tools().map(|t| json!({
                "name": t.name, "description": t.description, "inputSchema": (t.schema)(),
                "annotations": {"readOnlyHint": !t.writes, "destructiveHint": t.name == "delete_points"}
            })).collect::<Vec<_>>()})),
            "tools/call" => self.call_tool(&params).await,
            "resources/list" => self.list_resources().await,
            "resources/read" => self.read_resource(&params).await,
            "resources/templates/list" => Ok(json!({"resourceTemplates": [{
                "uriTemplate": "quiver://collections/{name}", "name": "collection",
                "description": "A collection's description (size, configuration, state).", "mimeType": "application/json"
            }]})),
            "prompts/list" => Ok(json!({"prompts": []})),
            other => Err((-32601, format!("method {other:?} not found"))),
        };
        Some(match result {
            Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
            Err((code, message)) => rpc_error(id, code, message),
        })
    }

    fn initialize(&self, params: &Value) -> Value {
        let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
        let version = PROTOCOL_VERSIONS.iter().find(|v| **v == asked).copied().unwrap_or(PROTOCOL_VERSIONS[3]);
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}, "resources": {"listChanged": false, "subscribe": false}},
            "serverInfo": {"name": "quiverdb", "title": "QuiverDB", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "QuiverDB is a vector database. Create a collection with an embedding model to store \
                             texts and search them by meaning; filter on payload fields with Qdrant-shaped filters."
        })
    }

    async fn call_tool(&self, params: &Value) -> Result<Value, (i64, String)> {
        let name = params.get("name").and_then(Value::as_str).ok_or((-32602, "tools/call needs a name".to_owned()))?;
        let tool = TOOLS.iter().find(|t| t.name == name).ok_or((-32602, format!("unknown tool {name:?}")))?;
        let empty = Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(v) => return Err((-32602, format!("arguments must be an object, got {}", short(v)))),
        };
        let outcome = if self.read_only && tool.writes {
            Err(ToolError(format!("{name} writes, and this server is read-only")))
        } else {
            let a = Args(args);
            match a.only(&known_args(tool)) {
                Err(e) => Err(e),
                Ok(()) => self.run(name, &a).await,
            }
        };
        Ok(match outcome {
            Ok(v) => json!({
                "content": [{"type": "text", "text": serde_json::to_string_pretty(&v).unwrap_or_default()}],
                "structuredContent": {"result": v},
                "isError": false
            }),
            Err(ToolError(m)) => json!({"content": [{"type": "text", "text": m}], "isError": true}),
        })
    }

    async fn get(&self, path: String) -> Result<Value, ToolError> {
        Ok(self.api.call(Method::GET, path, None).await?)
    }

    async fn send(&self, method: Method, path: String, body: Value) -> Result<Value, ToolError> {
        Ok(self.api.call(method, path, Some(body)).await?)
    }

    async fn run(&self, name: &str, a: &Args<'_>) -> Result<Value, ToolError> {
        match name {
            "list_collections" => {
                let v = self.get("/collections".into()).await?;
                let names: Vec<Value> =
                    v["collections"].as_array().into_iter().flatten().map(|c| c["name"].clone()).collect();
                Ok(Value::Array(names))
            }
            "collection_info" => {
                let c = a.string("collection")?;
                Ok(summary(&c, &self.get(format!("/collections/{}", seg(&c))).await?))
            }
            "create_collection" => {
                let c = a.string("collection")?;
                let mut body = Map::new();
                let distance = a.opt_string("distance")?.unwrap_or_else(|| "Cosine".into());
                if let Some(model) = a.opt_string("model")? {
                    body.insert("embedding".into(), json!({"model": model}));
                }
                match a.uint("dimension")? {
                    Some(d) => {
                        body.insert("vectors".into(), json!({"size": d, "distance": distance}));
                    }
                    None if body.is_empty() => {
                        return Err(ToolError(
                            "create_collection needs `model` (for texts) or `dimension` (for vectors)".into(),
                        ));
                    }
                    None => {}
                }
                self.send(Method::PUT, format!("/collections/{}", seg(&c)), Value::Object(body)).await?;
                Ok(summary(&c, &self.get(format!("/collections/{}", seg(&c))).await?))
            }
            "add_texts" => {
                let c = a.string("collection")?;
                let texts = a.array("texts")?.ok_or_else(|| ToolError("missing texts: expected an array".into()))?;
                let mut strs = Vec::with_capacity(texts.len());
                for (i, t) in texts.iter().enumerate() {
                    strs.push(t.as_str().ok_or_else(|| {
                        ToolError(format!("invalid texts[{i}]: expected a string, got {}", short(t)))
                    })?);
                }
                let ids: Vec<Value> = match a.array("ids")? {
                    Some(ids) if ids.len() != strs.len() => {
                        return Err(ToolError(format!(
                            "invalid ids: expected {} ids (one per text), got {}",
                            strs.len(),
                            ids.len()
                        )));
                    }
                    Some(ids) => ids.clone(),
                    None => strs.iter().map(|t| json!(text_id(t).to_string())).collect(),
                };
                let mut batch = json!({"ids": ids, "texts": strs});
                if let Some(p) = a.array("payloads")? {
                    if p.len() != strs.len() {
                        return Err(ToolError(format!(
                            "invalid payloads: expected {} objects (one per text), got {}",
                            strs.len(),
                            p.len()
                        )));
                    }
                    batch["payloads"] = Value::Array(p.clone());
                }
                let r = self
                    .send(Method::PUT, format!("/collections/{}/points?wait=true", seg(&c)), json!({"batch": batch}))
                    .await?;
                Ok(json!({"added": strs.len(), "ids": ids, "operation_id": r["operation_id"]}))
            }
            "add_documents" => {
                let c = a.string("collection")?;
                let docs =
                    a.array("documents")?.ok_or_else(|| ToolError("missing documents: expected an array".into()))?;
                let mut body = json!({"documents": docs});
                let mut chunking = Map::new();
                for k in ["max_tokens", "overlap_tokens"] {
                    if let Some(n) = a.uint(k)? {
                        chunking.insert(k.into(), json!(n));
                    }
                }
                if !chunking.is_empty() {
                    body["chunking"] = Value::Object(chunking);
                }
                self.send(Method::POST, format!("/collections/{}/documents?wait=true", seg(&c)), body).await
            }
            "upsert_points" => {
                let c = a.string("collection")?;
                let points = a.array("points")?.ok_or_else(|| ToolError("missing points: expected an array".into()))?;
                self.send(Method::PUT, format!("/collections/{}/points?wait=true", seg(&c)), json!({"points": points}))
                    .await
            }
            "search" => {
                let c = a.string("collection")?;
                let given: Vec<&str> =
                    ["text", "vector", "like_id"].into_iter().filter(|k| a.get(k).is_some()).collect();
                let query = match given.as_slice() {
                    ["text"] => json!({"text": a.string("text")?}),
                    ["vector"] => a.get("vector").cloned().unwrap_or_default(),
                    ["like_id"] => a.get("like_id").cloned().unwrap_or_default(),
                    [] => return Err(ToolError("search needs one of text, vector or like_id".into())),
                    many => {
                        return Err(ToolError(format!(
                            "search takes one of text, vector or like_id, got {}",
                            many.join(", ")
                        )));
                    }
                };
                let limit = a.uint("limit")?.unwrap_or(10);
                let mode = a.opt_string("mode")?.unwrap_or_else(|| "semantic".to_owned());
                let field = a.opt_string("keyword_field")?;
                let mut body = match (mode.as_str(), field, given.as_slice()) {
                    ("semantic", None, _) => json!({"query": query, "limit": limit}),
                    ("semantic", Some(_), _) => {
                        return Err(ToolError("keyword_field goes with mode keyword or hybrid".into()));
                    }
                    ("keyword" | "hybrid", None, _) => {
                        return Err(ToolError(format!(
                            "mode {mode} needs keyword_field (a payload key with a text index)"
                        )));
                    }
                    ("keyword" | "hybrid", Some(_), g) if g != ["text"] => {
                        return Err(ToolError(format!(
                            "mode {mode} searches the words of `text`, not {}",
                            g.join(", ")
                        )));
                    }
                    ("keyword", Some(key), _) => {
                        json!({"query": {"bm25": {"key": key, "text": a.string("text")?}}, "limit": limit})
                    }
                    ("hybrid", Some(key), _) => {
                        let text = a.string("text")?;
                        let n = (limit * 5).clamp(20, 1000);
                        json!({"prefetch": [{"query": {"bm25": {"key": key, "text": text}}, "limit": n},
                                            {"query": {"text": text}, "limit": n}],
                               "query": {"fusion": "dbsf"}, "limit": limit})
                    }
                    (other, _, _) => {
                        return Err(ToolError(format!("mode must be semantic, keyword or hybrid, got {other:?}")));
                    }
                };
                body["with_payload"] = json!(a.boolean("with_payload", true)?);
                if let Some(using) = a.opt_string("using")? {
                    // The meaning side: the query itself, or the dense prefetch of a hybrid search.
                    match body.get_mut("prefetch").and_then(|p| p.get_mut(1)) {
                        Some(dense) => dense["using"] = json!(using),
                        None if mode == "semantic" => body["using"] = json!(using),
                        None => return Err(ToolError("using goes with mode semantic or hybrid".into())),
                    }
                }
                if let Some(f) = a.object("filter")? {
                    body["filter"] = f;
                }
                if a.boolean("explain", false)? {
                    body["explain"] = json!(true);
                }
                let r = self.send(Method::POST, format!("/collections/{}/points/query", seg(&c)), body).await?;
                let hits: Vec<Value> = r["points"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        let mut o = json!({"id": h["id"], "score": h["score"]});
                        if let Some(p) = h.get("payload").filter(|p| !p.is_null()) {
                            o["payload"] = p.clone();
                        }
                        o
                    })
                    .collect();
                let mut out = json!({"hits": hits});
                if let Some(e) = r.get("explain").filter(|e| !e.is_null()) {
                    out["explain"] = e.clone();
                }
                Ok(out)
            }
            "get_points" => {
                let c = a.string("collection")?;
                let ids = a.array("ids")?.ok_or_else(|| ToolError("missing ids: expected an array".into()))?;
                let body = json!({"ids": ids, "with_payload": true, "with_vector": a.boolean("with_vector", false)?});
                self.send(Method::POST, format!("/collections/{}/points", seg(&c)), body).await
            }
            "delete_points" => {
                let c = a.string("collection")?;
                let body = match (a.array("ids")?, a.object("filter")?) {
                    (Some(ids), None) => json!({"points": ids}),
                    (None, Some(f)) => json!({"filter": f}),
                    _ => return Err(ToolError("delete_points takes exactly one of ids or filter".into())),
                };
                let r =
                    self.send(Method::POST, format!("/collections/{}/points/delete?wait=true", seg(&c)), body).await?;
                let left = self.count(&c, None).await?;
                Ok(json!({"operation_id": r["operation_id"], "points_left": left}))
            }
            "count" => {
                let c = a.string("collection")?;
                Ok(json!({"count": self.count(&c, a.object("filter")?).await?}))
            }
            other => Err(ToolError(format!("unknown tool {other:?}"))),
        }
    }

    async fn count(&self, c: &str, filter: Option<Value>) -> Result<u64, ToolError> {
        let body = match filter {
            Some(f) => json!({"filter": f}),
            None => json!({}),
        };
        let r = self.send(Method::POST, format!("/collections/{}/points/count", seg(c)), body).await?;
        Ok(r["count"].as_u64().unwrap_or(0))
    }

    async fn list_resources(&self) -> Result<Value, (i64, String)> {
        let v = self.get("/collections".into()).await.map_err(|ToolError(m)| (-32603, m))?;
        let list: Vec<Value> = v["collections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .map(|n| {
                json!({"uri": format!("quiver://collections/{}", seg(n)), "name": n,
                       "description": format!("The collection {n}: size, configuration, state."),
                       "mimeType": "application/json"})
            })
            .collect();
        Ok(json!({"resources": list}))
    }

    async fn read_resource(&self, params: &Value) -> Result<Value, (i64, String)> {
        let uri = params.get("uri").and_then(Value::as_str).ok_or((-32602, "resources/read needs a uri".to_owned()))?;
        let Some(name) = uri.strip_prefix("quiver://collections/").filter(|n| !n.is_empty() && !n.contains('/')) else {
            return Err((-32602, format!("unknown resource {uri:?}: expected quiver://collections/NAME")));
        };
        let v = self
            .get(format!("/collections/{name}"))
            .await
            .map_err(|ToolError(m)| (-32002, format!("resource {uri:?}: {m}")))?;
        let text = serde_json::to_string_pretty(&summary(name, &v)).unwrap_or_default();
        Ok(json!({"contents": [{"uri": uri, "mimeType": "application/json", "text": text}]}))
    }
}

/// What an agent needs of `GET /collections/{c}`: counts, vectors, model, payload indexes, state.
fn summary(name: &str, info: &Value) -> Value {
    json!({
        "name": name,
        "points": info["points_count"],
        "segments": info["segments_count"],
        "status": info["status"],
        "dimension": info.pointer("/config/params/vectors/size"),
        "distance": info.pointer("/config/params/vectors/distance"),
        "embedding_model": info.pointer("/config/embedding/model"),
        "payload_indexes": info["payload_schema"],
    })
}

/// The id `add_texts` gives a text when none is given: a UUID derived from the text, so the same text is the same
/// point.
fn text_id(text: &str) -> quiver_engine::PointId {
    quiver_text::documents::chunk_id(&format!("mcp-text\u{0}{text}"), 0)
}

/// `POST /mcp` on `quiver serve`: MCP's streamable-HTTP transport, answering each JSON-RPC request with one JSON
/// reply (`202 Accepted` for a notification). The caller's API key was checked by the auth layer like any route's;
/// a read-only key gets a session with the read tools only, and every tool call goes through the server's own router
/// with the caller's key, so the routes' checks apply too. No server-initiated stream: `GET /mcp` answers 405.
pub async fn http_endpoint(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    axum::Extension(access): axum::Extension<crate::access::Access>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let key = crate::middleware::presented_key(&headers).map(str::to_owned);
    let read_only = !access.writes_anything();
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = rpc_error(Value::Null, -32700, format!("not JSON: {e}"));
            return (StatusCode::BAD_REQUEST, axum::Json(err)).into_response();
        }
    };
    if msg.is_array() {
        let err = rpc_error(Value::Null, -32600, "batches are not supported: send one message per request");
        return (StatusCode::BAD_REQUEST, axum::Json(err)).into_response();
    }
    let server = McpServer::new(RouterApi::new(crate::app(state), key), read_only);
    match server.handle(msg).await {
        Some(reply) => axum::Json(reply).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// `GET` and `DELETE /mcp`: this server opens no stream of its own and keeps no session.
pub async fn http_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::ALLOW, "POST")],
        "MCP over HTTP here is POST only (one JSON reply per request)",
    )
        .into_response()
}

/// Serves JSON-RPC messages, one per line, from `input` to `output` until `input` ends (stdio transport).
pub async fn serve_lines<A: Api, R, W>(server: &McpServer<A>, input: R, mut output: W) -> std::io::Result<()>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = input.lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let reply = if line.len() > MAX_LINE {
            Some(rpc_error(Value::Null, -32600, format!("message longer than {MAX_LINE} bytes")))
        } else {
            match serde_json::from_str::<Value>(line) {
                Ok(msg) => server.handle(msg).await,
                Err(e) => Some(rpc_error(Value::Null, -32700, format!("not JSON: {e}"))),
            }
        };
        if let Some(r) = reply {
            output.write_all(r.to_string().as_bytes()).await?;
            output.write_all(b"\n").await?;
            output.flush().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn server(read_only: bool) -> (McpServer<RouterApi>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(quiver_engine::Database::open(dir.path()).expect("open"));
        let state = crate::AppState::with_database(crate::ServerConfig::default(), db);
        (McpServer::new(RouterApi::new(crate::app(state), None), read_only), dir)
    }

    fn req(id: u64, method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    #[tokio::test]
    async fn the_protocol_version_is_negotiated_and_faults_are_json_rpc_errors() {
        let (s, _d) = server(false);
        let r = s.handle(req(1, "initialize", json!({"protocolVersion": "2025-03-26"}))).await.expect("reply");
        assert_eq!(r["result"]["protocolVersion"], "2025-03-26");
        let r = s.handle(req(2, "initialize", json!({"protocolVersion": "1999-01-01"}))).await.expect("reply");
        assert_eq!(r["result"]["protocolVersion"], PROTOCOL_VERSIONS[3]);
        assert!(s.handle(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await.is_none());
        let r = s.handle(req(3, "no/such", json!({}))).await.expect("reply");
        assert_eq!(r["error"]["code"], -32601);
        let r = s.handle(req(4, "tools/call", json!({"name": "nope"}))).await.expect("reply");
        assert_eq!(r["error"]["code"], -32602);
        let r = s.handle(json!([1, 2])).await.expect("reply");
        assert_eq!(r["error"]["code"], -32600);

        let input = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\nnot json\n\n" as &[u8];
        let mut out = Vec::new();
        serve_lines(&s, tokio::io::BufReader::new(input), &mut out).await.expect("serve");
        let lines: Vec<Value> =
            String::from_utf8(out).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["id"], 7);
        assert_eq!(lines[0]["result"], json!({}));
        assert_eq!(lines[1]["error"]["code"], -32700);
    }

    #[tokio::test]
    async fn search_by_keywords_through_a_text_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(quiver_engine::Database::open(dir.path()).expect("open"));
        let state = crate::AppState::with_database(crate::ServerConfig::default(), db.clone());
        let s = McpServer::new(RouterApi::new(crate::app(state), None), false);
        let call = |name: &str, args: Value| req(9, "tools/call", json!({"name": name, "arguments": args}));
        let r = s.handle(call("create_collection", json!({"collection": "k", "dimension": 2}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], false, "{r}");
        let points = json!([{"id": 1, "vector": [1.0, 0.0], "payload": {"body": "the dog barked"}},
                            {"id": 2, "vector": [0.0, 1.0], "payload": {"body": "a cat"}}]);
        let r = s.handle(call("upsert_points", json!({"collection": "k", "points": points}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], false, "{r}");
        let text = quiver_engine::FieldType::Text(quiver_engine::TextOptions { stem: true, stopwords: true });
        db.collection("k").expect("collection").create_field_index("body", text).expect("index");
        let args = json!({"collection": "k", "text": "barking dogs", "mode": "keyword", "keyword_field": "body"});
        let r = s.handle(call("search", args)).await.expect("reply");
        assert_eq!(r["result"]["isError"], false, "{r}");
        let hits = &r["result"]["structuredContent"]["result"]["hits"];
        assert_eq!(hits.as_array().map(Vec::len), Some(1), "{r}");
        assert_eq!(hits[0]["id"], 1);
        for (args, needle) in [
            (json!({"collection": "k", "text": "dog", "mode": "hybrid"}), "keyword_field"),
            (
                json!({"collection": "k", "vector": [1.0, 0.0], "mode": "keyword", "keyword_field": "body"}),
                "words of `text`",
            ),
            (
                json!({"collection": "k", "text": "dog", "mode": "fuzzy", "keyword_field": "body"}),
                "semantic, keyword or hybrid",
            ),
            (json!({"collection": "k", "text": "dog", "keyword_field": "body"}), "goes with mode"),
        ] {
            let r = s.handle(call("search", args.clone())).await.expect("reply");
            assert_eq!(r["result"]["isError"], true, "{args}");
            let msg = r["result"]["content"][0]["text"].as_str().expect("text");
            assert!(msg.contains(needle), "{args}: {msg}");
        }
    }

    #[tokio::test]
    async fn search_names_the_vector_of_a_collection_with_named_vectors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(quiver_engine::Database::open(dir.path()).expect("open"));
        let state = crate::AppState::with_database(crate::ServerConfig::default(), db.clone());
        let s = McpServer::new(RouterApi::new(crate::app(state), None), false);
        let mut spaces = std::collections::BTreeMap::new();
        spaces.insert("a".to_owned(), quiver_engine::config::VectorSpace::new(2, quiver_index::Metric::Dot));
        spaces.insert("b".to_owned(), quiver_engine::config::VectorSpace::new(1, quiver_index::Metric::Dot));
        let cfg = quiver_engine::CollectionConfig::with_named_vectors(spaces).expect("config");
        let col = db.create_collection("n", cfg).expect("create");
        col.upsert(vec![
            quiver_engine::PointInput::named(1u64, [("a".to_owned(), vec![1.0, 0.0]), ("b".to_owned(), vec![1.0])]),
            quiver_engine::PointInput::named(2u64, [("a".to_owned(), vec![0.0, 1.0]), ("b".to_owned(), vec![3.0])]),
        ])
        .expect("upsert");
        let call = |args: Value| req(9, "tools/call", json!({"name": "search", "arguments": args}));
        let r =
            s.handle(call(json!({"collection": "n", "vector": [1.0], "using": "b", "limit": 1}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], false, "{r}");
        assert_eq!(r["result"]["structuredContent"]["result"]["hits"][0]["id"], 2, "{r}");
        let r = s.handle(call(json!({"collection": "n", "vector": [1.0, 0.0]}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], true, "{r}");
        let msg = r["result"]["content"][0]["text"].as_str().expect("text");
        assert!(msg.contains("using"), "{msg}");
    }

    #[tokio::test]
    async fn tool_errors_name_the_argument_and_read_only_refuses_writes() {
        let (s, _d) = server(false);
        let call = |name: &str, args: Value| req(9, "tools/call", json!({"name": name, "arguments": args}));
        let r = s.handle(call("create_collection", json!({"collection": "c"}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], true);
        assert!(r["result"]["content"][0]["text"].as_str().expect("text").contains("dimension"));
        let r = s.handle(call("create_collection", json!({"collection": "c", "dimension": 2}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], false, "{r}");
        assert_eq!(r["result"]["structuredContent"]["result"]["dimension"], 2);
        let r = s.handle(call("count", json!({"collection": 5}))).await.expect("reply");
        assert!(r["result"]["content"][0]["text"].as_str().expect("text").contains("invalid collection"));

        let (ro, _d2) = server(true);
        let r = ro.handle(req(1, "tools/list", json!({}))).await.expect("reply");
        let names: Vec<&str> =
            r["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
        assert!(!names.contains(&"create_collection") && names.contains(&"search"), "{names:?}");
        let r = ro.handle(call("create_collection", json!({"collection": "c", "dimension": 2}))).await.expect("reply");
        assert_eq!(r["result"]["isError"], true);
        let r = ro.handle(call("list_collections", json!({}))).await.expect("reply");
        assert_eq!(r["result"]["structuredContent"]["result"], json!([]), "read-only created nothing");
    }
}
