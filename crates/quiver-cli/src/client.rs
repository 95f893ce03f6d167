//! A small blocking HTTP client for the QuiverDB server (Qdrant's REST shapes), on `ureq` without TLS: plain
//! HTTP, the common case on loopback or behind a TLS-terminating proxy.
//!
//! Every reply is `{"result": …, "status": "ok", "time": <secs>}`; an error is an HTTP 4xx/5xx with
//! `{"status": {"error": "<message>"}, "time": …}`, surfaced as [`ClientError::Api`] with the status and the
//! server's message. Authentication is the `api-key` header.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ureq::Agent;
use ureq::http::Response;

/// Default server address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:6333";

/// Largest JSON reply read into memory.
const MAX_JSON_REPLY: u64 = 1 << 30;

/// Flags of every command that talks to a server.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the server [default: http://127.0.0.1:6333].
    #[arg(long, env = "QUIVER_URL", global = true)]
    pub url: Option<String>,
    /// API key, sent as the `api-key` header.
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Seconds to wait for each request to complete (0: no limit).
    #[arg(long, default_value_t = 300, value_name = "SECS", global = true)]
    pub timeout: u64,
}

/// What went wrong talking to the server.
#[derive(Debug)]
pub enum ClientError {
    /// The URL or API key cannot be used (not `http://`, no host, control characters): a usage error.
    Config(String),
    /// No reply: connection refused, reset, name not resolved, timed out.
    Transport {
        /// The request, `METHOD URL`.
        request: String,
        /// What failed.
        cause: String,
    },
    /// The server answered with an error status.
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's message (or the start of its body when it was not the usual error shape).
        message: String,
        /// The request, `METHOD PATH`.
        request: String,
    },
    /// A 2xx reply this client cannot read.
    BadReply {
        /// The request, `METHOD PATH`.
        request: String,
        /// What was wrong with it.
        detail: String,
    },
    /// Reading or writing a local file failed.
    Local(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Config(m) => f.write_str(m),
            ClientError::Transport { request, cause } => {
                write!(
                    f,
                    "{request}: no reply from the server: {cause} (is `quiver serve` running there? set --url or QUIVER_URL)"
                )
            }
            ClientError::Api { status, message, request } => {
                let reason = ureq::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default();
                write!(f, "{request}: the server answered {status}{reason}: {message}")
            }
            ClientError::BadReply { request, detail } => write!(f, "{request}: unexpected reply: {detail}"),
            ClientError::Local(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// Worth retrying: no reply at all, or a status that says "try again" (408, 429, 502, 503, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Api { status, .. } => matches!(status, 408 | 429 | 502 | 503 | 504),
            _ => false,
        }
    }
}

/// Result alias for the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Distance of a collection, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distance {
    /// Cosine similarity.
    Cosine,
    /// Inner product.
    Dot,
    /// Euclidean distance.
    #[value(alias = "euclidean", alias = "l2")]
    Euclid,
}

impl Distance {
    /// The API's name: `Cosine`, `Dot`, `Euclid`.
    pub fn api_name(self) -> &'static str {
        match self {
            Distance::Cosine => "Cosine",
            Distance::Dot => "Dot",
            Distance::Euclid => "Euclid",
        }
    }

    /// The engine's metric.
    pub fn metric(self) -> quiver_index::Metric {
        match self {
            Distance::Cosine => quiver_index::Metric::Cosine,
            Distance::Dot => quiver_index::Metric::Dot,
            Distance::Euclid => quiver_index::Metric::Euclidean,
        }
    }
}

/// One point of an upsert, borrowed.
#[derive(Debug, Serialize)]
pub struct PointRef<'a> {
    /// Unsigned integer or UUID.
    pub id: &'a quiver_engine::PointId,
    /// The vector (omitted when empty: the point has a text).
    #[serde(skip_serializing_if = "<[f32]>::is_empty")]
    pub vector: &'a [f32],
    /// Text for the server to embed (omitted when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    /// The payload (omitted when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a serde_json::Map<String, Value>>,
}

/// A nearest-neighbour query (`POST /collections/{c}/points/query`).
#[derive(Debug, Serialize)]
pub struct QueryRequest {
    /// The query vector.
    pub query: Vec<f32>,
    /// Results wanted.
    pub limit: usize,
    /// A Qdrant filter (omitted when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// Return payloads.
    pub with_payload: bool,
}

/// One result of a query.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScoredPoint {
    /// Unsigned integer or UUID string.
    pub id: Value,
    /// Score (similarity for cosine and dot, distance for Euclid).
    pub score: f64,
    /// Payload, when asked for.
    #[serde(default)]
    pub payload: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct QueryResult {
    points: Vec<ScoredPoint>,
}

/// A snapshot as the server describes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SnapshotInfo {
    /// Archive name (`snap-….qsnap`).
    pub name: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// When it was made.
    #[serde(default)]
    pub creation_time: Option<String>,
}

/// A connection to one server (keeps connections alive between requests).
#[derive(Debug, Clone)]
pub struct Client {
    agent: Agent,
    base: String,
    api_key: Option<String>,
}

/// Percent-encodes one path segment (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the server the flags name.
    pub fn new(args: &ServerArgs) -> Result<Client> {
        let url = args.url.as_deref().unwrap_or(DEFAULT_URL);
        let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
        Client::with(url, args.api_key.clone(), timeout)
    }

    /// A client for `url` (`http://host:port`, optionally with a path prefix).
    pub fn with(url: &str, api_key: Option<String>, timeout: Option<Duration>) -> Result<Client> {
        let base = url.trim().trim_end_matches('/').to_owned();
        if base.starts_with("https://") {
            return Err(ClientError::Config(format!(
                "{base}: this build of quiver speaks plain http:// only (no TLS); reach an https server through \
                 a local TLS-terminating proxy, or use http:// on loopback"
            )));
        }
        let Some(rest) = base.strip_prefix("http://") else {
            return Err(ClientError::Config(format!("{url:?} is not a server URL: expected http://HOST:PORT")));
        };
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() {
            return Err(ClientError::Config(format!("{url:?} has no host: expected http://HOST:PORT")));
        }
        let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = matches!(hostname, "localhost" | "[::1]") || hostname.starts_with("127.");
        if let Some(k) = &api_key
            && k.bytes().any(|b| b < 0x20 || b == 0x7f)
        {
            return Err(ClientError::Config("the API key contains control characters".into()));
        }
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(timeout)
            .timeout_connect(Some(Duration::from_secs(10)))
            .user_agent(concat!("quiver-cli/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A proxy from the environment never makes sense for a server on this machine.
            config = config.proxy(None);
        }
        Ok(Client { agent: config.build().into(), base, api_key })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn full(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(&self, method: &str, path: &str, e: ureq::Error) -> ClientError {
        let cause = match e {
            ureq::Error::Io(io) => io.to_string(),
            ureq::Error::Timeout(t) => format!("timed out ({t}); raise --timeout for long operations"),
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::ConnectionFailed => "connection failed".into(),
            other => other.to_string(),
        };
        ClientError::Transport { request: format!("{method} {}", self.full(path)), cause }
    }

    /// Sends the request that `send` builds from the agent, the full URL and the API key; an error status becomes
    /// [`ClientError::Api`].
    fn exchange(
        &self,
        method: &str,
        path: &str,
        send: impl FnOnce(&Agent, String, Option<&str>) -> std::result::Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let res =
            send(&self.agent, self.full(path), self.api_key.as_deref()).map_err(|e| self.transport(method, path, e))?;
        if res.status().is_success() {
            return Ok(res);
        }
        Err(error_reply(method, path, res))
    }

    fn json_reply(&self, method: &str, path: &str, mut res: Response<ureq::Body>) -> Result<Value> {
        let request = format!("{method} {path}");
        let bytes = res
            .body_mut()
            .with_config()
            .limit(MAX_JSON_REPLY)
            .read_to_vec()
            .map_err(|e| ClientError::BadReply { request: request.clone(), detail: format!("reading it: {e}") })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| ClientError::BadReply {
            request: request.clone(),
            detail: format!("not JSON ({e}): {}", snippet(&bytes)),
        })?;
        match v {
            Value::Object(mut m) if m.contains_key("result") => Ok(m.remove("result").unwrap_or(Value::Null)),
            other => Err(ClientError::BadReply {
                request,
                detail: format!("no \"result\" in {}", snippet(other.to_string().as_bytes())),
            }),
        }
    }

    /// `GET path` → the reply's `result`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let res = self.exchange("GET", path, |a, url, key| with_key(a.get(url), key).call())?;
        self.json_reply("GET", path, res)
    }

    /// `DELETE path` → the reply's `result`.
    pub fn delete(&self, path: &str) -> Result<Value> {
        let res = self.exchange("DELETE", path, |a, url, key| with_key(a.delete(url), key).call())?;
        self.json_reply("DELETE", path, res)
    }

    /// `PUT`/`POST path` with a JSON body (already encoded) → the reply's `result`.
    pub fn send_json(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Value> {
        let res = self.exchange(method, path, |a, url, key| {
            let req = if method == "PUT" { a.put(url) } else { a.post(url) };
            with_key(req, key).header("content-type", "application/json").send(body)
        })?;
        self.json_reply(method, path, res)
    }

    /// `PUT`/`POST path` with `value` as the JSON body → the reply's `result`.
    pub fn send_value(&self, method: &str, path: &str, value: &impl Serialize) -> Result<Value> {
        let body =
            serde_json::to_vec(value).map_err(|e| ClientError::Local(format!("encoding the request body: {e}")))?;
        self.send_json(method, path, body)
    }

    /// `GET /collections`: the names.
    pub fn list_collections(&self) -> Result<Vec<String>> {
        let path = "/collections";
        let v = self.get(path)?;
        let bad = |d: &str| ClientError::BadReply { request: format!("GET {path}"), detail: d.to_owned() };
        let list = v.get("collections").and_then(Value::as_array).ok_or_else(|| bad("no collections list"))?;
        list.iter()
            .map(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| bad("a collection without a name"))
            })
            .collect()
    }

    /// `GET /collections/{c}`: the result object as the server sends it.
    pub fn collection_info(&self, name: &str) -> Result<Value> {
        self.get(&format!("/collections/{}", segment(name)))
    }

    /// `PUT /collections/{c}` with an embedding model (the server sets the size; Cosine).
    pub fn create_text_collection(&self, name: &str, model: &str) -> Result<()> {
        let path = format!("/collections/{}", segment(name));
        let v = self.send_value("PUT", &path, &serde_json::json!({"embedding": {"model": model}}))?;
        expect_true("PUT", &path, &v)
    }

    /// `PUT /collections/{c}` with `{"vectors": {"size": dim, "distance": …}}`.
    pub fn create_collection(&self, name: &str, dim: usize, distance: Distance) -> Result<()> {
        let path = format!("/collections/{}", segment(name));
        let body = serde_json::json!({"vectors": {"size": dim, "distance": distance.api_name()}});
        let v = self.send_value("PUT", &path, &body)?;
        expect_true("PUT", &path, &v)
    }

    /// `DELETE /collections/{c}`: `true` when it existed.
    pub fn delete_collection(&self, name: &str) -> Result<bool> {
        let path = format!("/collections/{}", segment(name));
        let v = self.delete(&path)?;
        v.as_bool().ok_or_else(|| ClientError::BadReply {
            request: format!("DELETE {path}"),
            detail: format!("result {v}, expected true or false"),
        })
    }

    /// `PUT /collections/{c}/points?wait=true` with an already encoded `{"points": […]}` body; returns the
    /// operation id.
    pub fn upsert_encoded(&self, name: &str, body: Vec<u8>) -> Result<u64> {
        let path = format!("/collections/{}/points?wait=true", segment(name));
        let v = self.send_json("PUT", &path, body)?;
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        if status != "completed" {
            return Err(ClientError::BadReply {
                request: format!("PUT {path}"),
                detail: format!("operation status {status:?}, expected \"completed\" (wait=true)"),
            });
        }
        Ok(v.get("operation_id").and_then(Value::as_u64).unwrap_or(0))
    }

    /// `POST /collections/{c}/points/query`.
    pub fn query(&self, name: &str, q: &QueryRequest) -> Result<Vec<ScoredPoint>> {
        let path = format!("/collections/{}/points/query", segment(name));
        let v = self.send_value("POST", &path, q)?;
        let r: QueryResult = serde_json::from_value(v).map_err(|e| ClientError::BadReply {
            request: format!("POST {path}"),
            detail: format!("query result: {e}"),
        })?;
        Ok(r.points)
    }

    /// `POST /collections/{c}/snapshots`.
    pub fn create_snapshot(&self, name: &str) -> Result<SnapshotInfo> {
        let path = format!("/collections/{}/snapshots", segment(name));
        let res = self.exchange("POST", &path, |a, url, key| with_key(a.post(url), key).send_empty())?;
        let v = self.json_reply("POST", &path, res)?;
        serde_json::from_value(v).map_err(|e| ClientError::BadReply {
            request: format!("POST {path}"),
            detail: format!("snapshot description: {e}"),
        })
    }

    /// `GET /collections/{c}/snapshots`.
    pub fn list_snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        let path = format!("/collections/{}/snapshots", segment(name));
        let v = self.get(&path)?;
        serde_json::from_value(v).map_err(|e| ClientError::BadReply {
            request: format!("GET {path}"),
            detail: format!("snapshot list: {e}"),
        })
    }

    /// `GET /collections/{c}/snapshots/{name}`: streams the archive into `out`; returns the bytes written.
    pub fn download_snapshot(&self, name: &str, snapshot: &str, out: &mut impl Write) -> Result<u64> {
        let path = format!("/collections/{}/snapshots/{}", segment(name), segment(snapshot));
        let res = self.exchange("GET", &path, |a, url, key| with_key(a.get(url), key).call())?;
        let expected = res.body().content_length();
        let mut reader = res.into_body().into_reader();
        let n = std::io::copy(&mut reader, out).map_err(|e| ClientError::Transport {
            request: format!("GET {}", self.full(&path)),
            cause: format!("download interrupted: {e}"),
        })?;
        if let Some(len) = expected
            && len != n
        {
            return Err(ClientError::Transport {
                request: format!("GET {}", self.full(&path)),
                cause: format!("download ended after {n} of {len} bytes"),
            });
        }
        Ok(n)
    }

    /// `DELETE /collections/{c}/snapshots/{name}`.
    pub fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<()> {
        let path = format!("/collections/{}/snapshots/{}", segment(name), segment(snapshot));
        let v = self.delete(&path)?;
        expect_true("DELETE", &path, &v)
    }

    /// `POST /collections/{c}/snapshots/upload` with the archive at `file` as the raw body: restores (replaces)
    /// the collection. Returns the stored archive's description when the server gives one (QuiverDB does; a
    /// plain `true` is accepted too).
    pub fn upload_snapshot(&self, name: &str, file: &Path) -> Result<Option<SnapshotInfo>> {
        let path = format!("/collections/{}/snapshots/upload", segment(name));
        let f =
            std::fs::File::open(file).map_err(|e| ClientError::Local(format!("opening {}: {e}", file.display())))?;
        let res = self.exchange("POST", &path, |a, url, key| {
            with_key(a.post(url), key).header("content-type", "application/octet-stream").send(f)
        })?;
        let v = self.json_reply("POST", &path, res)?;
        if v.as_bool() == Some(true) {
            return Ok(None);
        }
        serde_json::from_value(v).map(Some).map_err(|e| ClientError::BadReply {
            request: format!("POST {path}"),
            detail: format!("expected true or a snapshot description: {e}"),
        })
    }
}

/// Encodes `{"points": [...]}`.
pub fn encode_points(points: &[PointRef<'_>]) -> Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Body<'a> {
        points: &'a [PointRef<'a>],
    }
    serde_json::to_vec(&Body { points }).map_err(|e| ClientError::Local(format!("encoding points: {e}")))
}

fn with_key<B>(req: ureq::RequestBuilder<B>, key: Option<&str>) -> ureq::RequestBuilder<B> {
    match key {
        Some(k) => req.header("api-key", k),
        None => req,
    }
}

fn expect_true(method: &str, path: &str, v: &Value) -> Result<()> {
    if v.as_bool() == Some(true) {
        Ok(())
    } else {
        Err(ClientError::BadReply { request: format!("{method} {path}"), detail: format!("result {v}, expected true") })
    }
}

/// At most 300 characters of a body, for messages.
fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None if s.is_empty() => "(empty body)".into(),
        None => s.to_owned(),
    }
}

/// Turns an error status into [`ClientError::Api`], with the server's message when the body has the usual shape.
fn error_reply(method: &str, path: &str, mut res: Response<ureq::Body>) -> ClientError {
    let status = res.status().as_u16();
    let mut bytes = Vec::new();
    // An error body is small; read at most 64 KiB of it.
    let _ = res.body_mut().as_reader().take(64 << 10).read_to_end(&mut bytes);
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.pointer("/status/error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| snippet(&bytes));
    ClientError::Api { status, message, request: format!("{method} {path}") }
}
