//! An async client for QuiverDB's REST API, and a [`blocking`] wrapper for code without a runtime.
//!
//! The requests and replies are the [`wire`] types — the very structs the server deserializes and serializes — so
//! a field added to the API reaches this client without a second definition to keep in step.
//!
//! ```no_run
//! # async fn demo() -> quiver_client::Result<()> {
//! use quiver_client::{Client, wire};
//! let client = Client::new("http://127.0.0.1:6333")?;
//! client
//!     .create_collection("docs", &wire::CreateCollection {
//!         vectors: Some(wire::VectorsConfig::Single(wire::VectorParams {
//!             size: 3,
//!             distance: wire::Distance::Cosine,
//!             on_disk: None,
//!             embedding: None,
//!         })),
//!         ..Default::default()
//!     })
//!     .await?;
//! let hits = client
//!     .search("docs", &wire::SearchRequest {
//!         vector: Some(wire::SearchVector::Plain(vec![0.1, 0.2, 0.3])),
//!         limit: 5,
//!         ..Default::default()
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Every reply is `{"result": …, "status": "ok", "time": <secs>}`; an error is an HTTP 4xx/5xx with
//! `{"status": {"error": "<message>"}, "time": …}`, surfaced as [`Error::Api`] with the status and the server's
//! message. Authentication is the `api-key` header.
//!
//! `https://` URLs are spoken with rustls (ring provider): the server's certificate must chain to the webpki root
//! certificates or to one in the PEM file named by `QUIVER_CA_CERT` (a private CA); `QUIVER_CLIENT_CERT` and
//! `QUIVER_CLIENT_KEY` (PEM files) present a client certificate to a server that asks for one (mutual TLS).

mod api;
pub mod blocking;
mod error;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
pub use http::Method;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Request, Response, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{Error, Result};
pub use quiver_wire as wire;
pub use quiver_wire::{Filter, Payload, PointId, segment};

/// The server's default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:6333";

/// Largest JSON reply read into memory.
const MAX_JSON_REPLY: usize = 1 << 30;

/// Largest error body read (they are small).
const MAX_ERROR_BODY: usize = 64 << 10;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ReqBody = BoxBody<Bytes, BoxError>;

/// A connection pool to one server. Cheap to clone (clones share the pool); use it from any number of tasks.
#[derive(Clone)]
pub struct Client {
    http: HttpClient<HttpsConnector<HttpConnector>, ReqBody>,
    base: String,
    api_key: Option<HeaderValue>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client for `url` (`http://host:port` or `https://host:port`, optionally with a path prefix). No request
    /// is made yet; requests have no time limit until [`Client::with_timeout`] sets one. For `https://`, the
    /// environment variables of the module documentation are read here (a file that cannot be read or parsed is a
    /// [`Error::Config`] naming it).
    pub fn new(url: &str) -> Result<Client> {
        let url = url.trim();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            ("http", rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            ("https", rest)
        } else {
            return Err(Error::Config(format!(
                "{url:?} is not a server URL: expected http://HOST:PORT or https://HOST:PORT"
            )));
        };
        let rest = rest.trim_end_matches('/');
        if rest.split('/').next().unwrap_or("").is_empty() {
            return Err(Error::Config(format!("{url:?} has no host: expected {scheme}://HOST:PORT")));
        }
        let base = format!("{scheme}://{rest}");
        if let Err(e) = base.parse::<Uri>() {
            return Err(Error::Config(format!("{url:?} is not a valid URL: {e}")));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let tls = if scheme == "https" { tls_config()? } else { plain_tls_config()? };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client { http, base, api_key: None, timeout: None })
    }

    /// Sends `key` as the `api-key` header of every request (`None`: no header).
    pub fn with_api_key(mut self, key: Option<&str>) -> Result<Client> {
        self.api_key = match key {
            None => None,
            Some(k) => {
                let mut v = HeaderValue::from_str(k)
                    .map_err(|_| Error::Config("the API key contains control or non-ASCII characters".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(self)
    }

    /// Limits each request, reply included, to `timeout` (`None`: no limit). A snapshot download's limit
    /// applies to each wait for more bytes.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Client {
        self.timeout = timeout;
        self
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn transport(&self, method: &Method, path: &str, cause: impl Into<String>) -> Error {
        Error::Transport { request: format!("{method} {}{path}", self.base), cause: cause.into() }
    }

    /// Runs `fut` under the client's time limit.
    async fn deadline<T>(&self, method: &Method, path: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match self.timeout {
            None => fut.await,
            Some(t) => tokio::time::timeout(t, fut).await.unwrap_or_else(|_| {
                Err(self.transport(method, path, format!("timed out after {} s", t.as_secs_f64())))
            }),
        }
    }

    /// Sends one request; an error status becomes [`Error::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content: Option<(&'static str, Option<u64>)>,
    ) -> Result<Response<Incoming>> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| Error::Config(format!("{}{path} is not a valid URL: {e}", self.base)))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(USER_AGENT, concat!("quiver-client/", env!("CARGO_PKG_VERSION")));
        if let Some(k) = &self.api_key {
            req = req.header("api-key", k.clone());
        }
        if let Some((ty, len)) = content {
            req = req.header(CONTENT_TYPE, ty);
            if let Some(len) = len {
                req = req.header(CONTENT_LENGTH, len);
            }
        }
        let req = req.body(body).map_err(|e| Error::Local(format!("building {method} {path}: {e}")))?;
        let res = self.http.request(req).await.map_err(|e| self.transport(&method, path, chain(&e)))?;
        if res.status().is_success() {
            return Ok(res);
        }
        Err(error_reply(&method, path, res).await)
    }

    /// One request whose reply is an envelope: returns its `result`.
    async fn exchange<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content: Option<(&'static str, Option<u64>)>,
    ) -> Result<T> {
        let m = method.clone();
        self.deadline(&m, path, async {
            let res = self.send(method.clone(), path, body, content).await?;
            read_result(&method, path, res).await
        })
        .await
    }

    /// `GET path` → the reply's `result`, decoded as `T` (`serde_json::Value` takes anything).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.exchange(Method::GET, path, empty(), None).await
    }

    /// `DELETE path` → the reply's `result`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.exchange(Method::DELETE, path, empty(), None).await
    }

    /// `method path` with `body` as JSON → the reply's `result`.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Local(format!("encoding the request body: {e}")))?;
        self.send_encoded(method, path, bytes).await
    }

    /// `method path` with an already encoded JSON body → the reply's `result`.
    pub async fn send_encoded<T: DeserializeOwned>(&self, method: Method, path: &str, json: Vec<u8>) -> Result<T> {
        let len = json.len() as u64;
        self.exchange(method, path, full(json), Some(("application/json", Some(len)))).await
    }

    /// `GET /`: the server's name and versions (the one reply without an envelope, as in Qdrant).
    pub async fn version(&self) -> Result<wire::VersionInfo> {
        let path = "/";
        self.deadline(&Method::GET, path, async {
            let res = self.send(Method::GET, path, empty(), None).await?;
            let bytes = Limited::new(res.into_body(), MAX_ERROR_BODY)
                .collect()
                .await
                .map_err(|e| Error::BadReply { request: format!("GET {path}"), detail: format!("reading it: {e}") })?
                .to_bytes();
            serde_json::from_slice(&bytes).map_err(|e| Error::BadReply {
                request: format!("GET {path}"),
                detail: format!("{e}: {}", snippet(&bytes)),
            })
        })
        .await
    }

    /// `GET /readyz`: `true` once the server serves (its collections opened), `false` while it recovers (503).
    pub async fn ready(&self) -> Result<bool> {
        let path = "/readyz";
        match self.deadline(&Method::GET, path, self.send(Method::GET, path, empty(), None)).await {
            Ok(_) => Ok(true),
            Err(Error::Api { status: 503, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /collections/{c}/snapshots/{snapshot}`: the archive, read chunk by chunk.
    pub async fn download_snapshot(&self, collection: &str, snapshot: &str) -> Result<Download> {
        let path = format!("/collections/{}/snapshots/{}", segment(collection), segment(snapshot));
        let res = self.deadline(&Method::GET, &path, self.send(Method::GET, &path, empty(), None)).await?;
        let expected = res.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        Ok(Download {
            body: res.into_body(),
            expected,
            got: 0,
            request: format!("GET {}{path}", self.base),
            timeout: self.timeout,
        })
    }

    /// `POST /collections/{c}/snapshots/upload` with the archive at `file` streamed as the body: restores
    /// (replaces) the collection. Returns the stored archive's description (`None` when a server answers a bare
    /// `true`, as Qdrant does).
    pub async fn upload_snapshot(&self, collection: &str, file: &Path) -> Result<Option<wire::SnapshotDescription>> {
        let path = format!("/collections/{}/snapshots/upload", segment(collection));
        let f =
            tokio::fs::File::open(file).await.map_err(|e| Error::Local(format!("opening {}: {e}", file.display())))?;
        let len = f.metadata().await.map_err(|e| Error::Local(format!("reading {}: {e}", file.display())))?.len();
        let stream = tokio_util::io::ReaderStream::new(f).map_ok(Frame::data).map_err(BoxError::from);
        let body = BodyExt::boxed(StreamBody::new(stream));
        let v: serde_json::Value =
            self.exchange(Method::POST, &path, body, Some(("application/octet-stream", Some(len)))).await?;
        if v.as_bool() == Some(true) {
            return Ok(None);
        }
        serde_json::from_value(v).map(Some).map_err(|e| Error::BadReply {
            request: format!("POST {path}"),
            detail: format!("expected true or a snapshot description: {e}"),
        })
    }
}

/// A snapshot archive being received; [`Download::chunk`] until it returns `None`.
#[derive(Debug)]
pub struct Download {
    body: Incoming,
    expected: Option<u64>,
    got: u64,
    request: String,
    timeout: Option<Duration>,
}

impl Download {
    /// The archive's size, when the server sent it.
    pub fn content_length(&self) -> Option<u64> {
        self.expected
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.got
    }

    /// The next bytes of the archive; `None` at its end. A download cut short (fewer bytes than the server
    /// announced) is an error, never a silent short file.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let next = match self.timeout {
                None => self.body.frame().await,
                Some(t) => tokio::time::timeout(t, self.body.frame()).await.map_err(|_| Error::Transport {
                    request: self.request.clone(),
                    cause: format!("no data for {} s", t.as_secs_f64()),
                })?,
            };
            match next {
                None => {
                    if let Some(len) = self.expected
                        && len != self.got
                    {
                        return Err(Error::Transport {
                            request: self.request.clone(),
                            cause: format!("download ended after {} of {len} bytes", self.got),
                        });
                    }
                    return Ok(None);
                }
                Some(Err(e)) => {
                    return Err(Error::Transport {
                        request: self.request.clone(),
                        cause: format!("download interrupted: {}", chain(&e)),
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.got += data.len() as u64;
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

fn empty() -> ReqBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

fn full(bytes: Vec<u8>) -> ReqBody {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

/// An error and its causes, `a: b: c` (hyper's top-level messages alone say little: "client error (Connect)").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// Reads a 2xx reply's envelope and decodes its `result`.
async fn read_result<T: DeserializeOwned>(method: &Method, path: &str, res: Response<Incoming>) -> Result<T> {
    let request = format!("{method} {path}");
    let bytes = Limited::new(res.into_body(), MAX_JSON_REPLY)
        .collect()
        .await
        .map_err(|e| Error::BadReply { request: request.clone(), detail: format!("reading it: {e}") })?
        .to_bytes();
    match serde_json::from_slice::<wire::Envelope<T>>(&bytes) {
        Ok(env) => Ok(env.result),
        Err(e) => {
            let detail = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Err(_) => format!("not JSON ({e}): {}", snippet(&bytes)),
                Ok(v) if v.get("result").is_none() => format!("no \"result\" in {}", snippet(&bytes)),
                Ok(_) => format!("{e}: {}", snippet(&bytes)),
            };
            Err(Error::BadReply { request, detail })
        }
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

/// Turns an error status into [`Error::Api`], with the server's message when the body has the usual shape.
async fn error_reply(method: &Method, path: &str, res: Response<Incoming>) -> Error {
    let status = res.status().as_u16();
    let bytes = match Limited::new(res.into_body(), MAX_ERROR_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let message = match serde_json::from_slice::<wire::ErrorBody>(&bytes) {
        Ok(body) => body.status.error,
        Err(_) => snippet(&bytes),
    };
    Error::Api { status, message, request: format!("{method} {path}") }
}

/// One point of an upsert, borrowed: serializes exactly as [`wire::PointStruct`] (a test checks the server's type
/// reads it back), without copying vectors or payloads into owned structs first. For bulk loads.
#[derive(Debug, Serialize)]
pub struct PointRef<'a> {
    /// Unsigned integer or UUID.
    pub id: &'a PointId,
    /// The vector (left out when empty: the point has a text).
    #[serde(skip_serializing_if = "<[f32]>::is_empty")]
    pub vector: &'a [f32],
    /// Text for the server to embed (left out when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    /// The payload (left out when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a Payload>,
}

/// Encodes `{"points": [...]}` for [`Client::upsert_encoded`].
pub fn encode_points(points: &[PointRef<'_>]) -> Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Body<'a> {
        points: &'a [PointRef<'a>],
    }
    serde_json::to_vec(&Body { points }).map_err(|e| Error::Local(format!("encoding points: {e}")))
}

fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS configuration for a plain `http://` client (never used for a handshake, only to build the connector).
fn plain_tls_config() -> Result<rustls::ClientConfig> {
    Ok(rustls::ClientConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Local(format!("TLS setup: {e}")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// The TLS configuration of an `https://` client: the webpki roots plus `QUIVER_CA_CERT`'s certificates, and the
/// client certificate of `QUIVER_CLIENT_CERT` / `QUIVER_CLIENT_KEY` when both are set.
fn tls_config() -> Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let certs = |name: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::Config(format!("{name}={}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Config(format!("{name}={}: no PEM certificate in it", path.display())));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = env("QUIVER_CA_CERT") {
        for c in certs("QUIVER_CA_CERT", &path)? {
            roots.add(c).map_err(|e| Error::Config(format!("QUIVER_CA_CERT={}: {e}", path.display())))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Local(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    // (ALPN is left to the connector, which sets http/1.1 itself.)
    let config = match (env("QUIVER_CLIENT_CERT"), env("QUIVER_CLIENT_KEY")) {
        (Some(cert), Some(key)) => {
            let chain = certs("QUIVER_CLIENT_CERT", &cert)?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| Error::Config(format!("QUIVER_CLIENT_KEY={}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("QUIVER_CLIENT_CERT / QUIVER_CLIENT_KEY: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::Config(
                "QUIVER_CLIENT_CERT and QUIVER_CLIENT_KEY go together: set both or neither".to_string(),
            ));
        }
    };
    Ok(config)
}
