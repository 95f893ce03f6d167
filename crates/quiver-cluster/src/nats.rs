//! The NATS side of a node: one connection, the shard map in a JetStream KV bucket, one stream per shard holding
//! its write log, and requests between nodes (NATS request/reply on `quiver.rpc.<node>`).
//!
//! **Durability.** A shard's write is acknowledged once its stream has stored it on a quorum of its replicas.
//! JetStream fsyncs its files every two minutes by default, so a power loss on a quorum could lose acknowledged
//! writes; the cluster mode therefore requires every NATS server to run with `sync_interval: always` (see
//! [`check_sync_always`]: the node reads each server's `/varz` monitoring document and refuses to start otherwise).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::map::{CollectionSpec, MapStore, NodeId, Versioned};

/// The KV bucket holding the shard map.
pub const MAP_BUCKET: &str = "quiver-map";
/// The object store bucket holding the latest snapshot of each shard (object name = the shard's stream name).
pub const SNAPSHOT_BUCKET: &str = "quiver-snapshots";

/// A shard snapshot in the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The last log entry it holds.
    pub applied_seq: u64,
    /// Its size in bytes.
    pub size: usize,
    /// The node that took it.
    pub node: String,
}

/// How many times an append is sent before its failure is reported.
pub const APPEND_ATTEMPTS: u32 = 4;

/// A message id unique across nodes and restarts within JetStream's duplicate window (two minutes).
fn message_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{t:x}-{:x}-{n:x}", std::process::id())
}

/// The KV bucket holding the members' leases (`lease.<id>`), whose entries expire after the lease TTL.
pub const LEASE_BUCKET: &str = "quiver-leases";
/// Largest operation a shard log takes (bytes); an upsert batch above it is refused before it is sent.
pub const MAX_OP_BYTES: i32 = 8 << 20;

/// A connected node's handle on NATS. Cheap to clone.
#[derive(Clone)]
pub struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
    kv: kv::Store,
    servers: usize,
    snapshots: Arc<tokio::sync::OnceCell<jetstream::object_store::ObjectStore>>,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats").field("servers", &self.servers).finish_non_exhaustive()
    }
}

/// A request from one node to another: an HTTP request for the receiver's internal router.
#[derive(Debug, Clone)]
pub struct RpcRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Body.
    pub body: Bytes,
}

/// The answer to an [`RpcRequest`].
#[derive(Debug, Clone)]
pub struct RpcReply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Bytes,
}

/// What answers a node's [`RpcRequest`]s.
pub type RpcHandler = Arc<dyn Fn(RpcRequest) -> Pin<Box<dyn Future<Output = RpcReply> + Send>> + Send + Sync>;

const H_METHOD: &str = "Quiver-Method";
const H_PATH: &str = "Quiver-Path";
const H_STATUS: &str = "Quiver-Status";

/// The subject node `id` answers requests on.
pub fn rpc_subject(id: NodeId) -> String {
    format!("quiver.rpc.{id}")
}

impl Nats {
    /// Connects to `urls` (comma-separated `nats://host:port`), checks JetStream answers, and opens (creating
    /// if needed) the shard map bucket, replicated on up to three servers.
    pub async fn connect(urls: &str, name: &str) -> Result<Nats> {
        let list: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        if list.is_empty() {
            return Err(Error::invalid("cluster", "nats://host:port[,nats://host:port…]", format!("{urls:?}")));
        }
        let opts = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect();
        let client = tokio::time::timeout(Duration::from_secs(20), opts.connect(list.clone()))
            .await
            .map_err(|_| Error::nats(format!("connecting to {urls}"), "no server answered within 20 s"))?
            .map_err(|e| Error::nats(format!("connecting to {urls}"), e))?;
        let js = jetstream::new(client.clone());
        // A cluster that just started may still be electing its JetStream meta leader: wait for it a while.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match js.query_account().await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "JetStream not answering yet");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(Error::nats("JetStream account info (is JetStream enabled?)", e)),
            }
        }
        let servers = client.server_info().connect_urls.len().max(list.len()).max(1);
        let replicas = if servers >= 3 { 3 } else { 1 };
        let kv = match js.get_key_value(MAP_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => {
                let created = js
                    .create_key_value(kv::Config {
                        bucket: MAP_BUCKET.into(),
                        description: "QuiverDB shard map".into(),
                        history: 5,
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(kv) => kv,
                    // Another node may have created it meanwhile.
                    Err(e) => js.get_key_value(MAP_BUCKET).await.map_err(|_| {
                        Error::nats(format!("creating the KV bucket {MAP_BUCKET} with {replicas} replicas"), e)
                    })?,
                }
            }
        };
        let nats = Nats { client, js, kv, servers, snapshots: Arc::default() };
        // Open (or create) the snapshot bucket now rather than on first use, where every replica would race to.
        if let Err(e) = nats.snapshot_bucket().await {
            tracing::warn!(error = %e, "the snapshot bucket is not available yet");
        }
        Ok(nats)
    }

    /// How many NATS servers the connection knows of.
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// The shard map store.
    pub fn map_store(&self) -> KvStore {
        KvStore { kv: self.kv.clone() }
    }

    /// Watches every key of the shard map: the current values first, then each change.
    pub async fn watch_map(&self) -> Result<kv::Watch> {
        self.kv.watch_with_history(">").await.map_err(|e| Error::nats("watching the shard map", e))
    }

    async fn snapshot_bucket(&self) -> Result<jetstream::object_store::ObjectStore> {
        self.snapshots
            .get_or_try_init(|| async {
                let open = async {
                    if let Ok(b) = self.js.get_object_store(SNAPSHOT_BUCKET).await {
                        return Ok(b);
                    }
                    let created = self
                        .js
                        .create_object_store(jetstream::object_store::Config {
                            bucket: SNAPSHOT_BUCKET.into(),
                            description: Some("QuiverDB shard snapshots".into()),
                            storage: jetstream::stream::StorageType::File,
                            num_replicas: self.stream_replicas(),
                            ..Default::default()
                        })
                        .await;
                    match created {
                        Ok(b) => Ok(b),
                        Err(e) => self
                            .js
                            .get_object_store(SNAPSHOT_BUCKET)
                            .await
                            .map_err(|_| Error::nats(format!("creating the object store {SNAPSHOT_BUCKET}"), e)),
                    }
                };
                tokio::time::timeout(Duration::from_secs(10), open).await.map_err(|_| {
                    Error::Unavailable(format!("opening the object store {SNAPSHOT_BUCKET} took over 10 s"))
                })?
            })
            .await
            .cloned()
    }

    /// The stored snapshot of shard `shard`, if any.
    pub async fn snapshot_info(&self, spec: &CollectionSpec, shard: u32) -> Result<Option<StoredSnapshot>> {
        let b = self.snapshot_bucket().await?;
        let info =
            tokio::time::timeout(Duration::from_secs(10), b.info(spec.stream_name(shard))).await.map_err(|_| {
                Error::Unavailable(format!("reading the snapshot of {} took over 10 s", spec.stream_name(shard)))
            })?;
        match info {
            Ok(info) if !info.deleted => Ok(Some(StoredSnapshot {
                applied_seq: info.metadata.get("applied_seq").and_then(|s| s.parse().ok()).unwrap_or(0),
                size: info.size,
                node: info.metadata.get("node").cloned().unwrap_or_default(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == jetstream::object_store::InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::nats(format!("reading the snapshot of {}", spec.stream_name(shard)), e)),
        }
    }

    /// Stores the archive at `path` (holding the shard up to `applied_seq`) as shard `shard`'s snapshot, replacing
    /// the previous one once it is whole.
    pub async fn put_snapshot(
        &self,
        spec: &CollectionSpec,
        shard: u32,
        applied_seq: u64,
        node: NodeId,
        path: &std::path::Path,
    ) -> Result<usize> {
        let b = self.snapshot_bucket().await?;
        let mut file =
            tokio::fs::File::open(path).await.map_err(|e| Error::nats(format!("opening {}", path.display()), e))?;
        let meta = jetstream::object_store::ObjectMetadata {
            name: spec.stream_name(shard),
            description: Some(format!("collection {} shard {shard} up to log entry {applied_seq}", spec.name)),
            metadata: [("applied_seq".to_owned(), applied_seq.to_string()), ("node".to_owned(), node.to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let info = b
            .put(meta, &mut file)
            .await
            .map_err(|e| Error::nats(format!("storing the snapshot of {}", spec.stream_name(shard)), e))?;
        Ok(info.size)
    }

    /// Downloads shard `shard`'s snapshot into `path` (the object store checks its digest); returns what it holds.
    pub async fn get_snapshot(
        &self,
        spec: &CollectionSpec,
        shard: u32,
        path: &std::path::Path,
    ) -> Result<Option<StoredSnapshot>> {
        let Some(info) = self.snapshot_info(spec, shard).await? else { return Ok(None) };
        let b = self.snapshot_bucket().await?;
        let what = || format!("downloading the snapshot of {}", spec.stream_name(shard));
        let mut obj = b.get(spec.stream_name(shard)).await.map_err(|e| Error::nats(what(), e))?;
        let mut file = tokio::fs::File::create(path).await.map_err(|e| Error::nats(what(), e))?;
        tokio::io::copy(&mut obj, &mut file).await.map_err(|e| Error::nats(what(), e))?;
        file.sync_all().await.map_err(|e| Error::nats(what(), e))?;
        Ok(Some(info))
    }

    /// Shard `shard`'s log bounds: (first sequence still stored, last sequence).
    pub async fn log_bounds(&self, spec: &CollectionSpec, shard: u32) -> Result<(u64, u64)> {
        let name = spec.stream_name(shard);
        let mut s = self.js.get_stream(&name).await.map_err(|e| Error::nats(format!("opening stream {name}"), e))?;
        let info = s.info().await.map_err(|e| Error::nats(format!("stream {name} info"), e))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// Removes shard `shard`'s log entries up to and including `upto` (they are in a snapshot).
    pub async fn truncate_log(&self, spec: &CollectionSpec, shard: u32, upto: u64) -> Result<()> {
        let name = spec.stream_name(shard);
        let s = self.js.get_stream(&name).await.map_err(|e| Error::nats(format!("opening stream {name}"), e))?;
        s.purge().sequence(upto + 1).await.map(drop).map_err(|e| Error::nats(format!("truncating {name}"), e))
    }

    /// Deletes every snapshot of `spec` (missing ones are fine).
    pub async fn delete_snapshots(&self, spec: &CollectionSpec) -> Result<()> {
        let b = self.snapshot_bucket().await?;
        for s in 0..spec.shard_number {
            let _ = b.delete(spec.stream_name(s)).await;
        }
        Ok(())
    }

    /// Opens the lease bucket, creating it with entries that expire after `ttl` (the first node to create it
    /// decides the TTL; later nodes use the bucket's and a differing `ttl` is logged). Returns the TTL in force.
    pub async fn leases(&self, ttl: Duration) -> Result<(kv::Store, Duration)> {
        let kv = match self.js.get_key_value(LEASE_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => {
                let created = self
                    .js
                    .create_key_value(kv::Config {
                        bucket: LEASE_BUCKET.into(),
                        description: "QuiverDB node leases".into(),
                        history: 1,
                        max_age: ttl,
                        storage: jetstream::stream::StorageType::Memory,
                        num_replicas: self.stream_replicas(),
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(kv) => kv,
                    Err(e) => self
                        .js
                        .get_key_value(LEASE_BUCKET)
                        .await
                        .map_err(|_| Error::nats(format!("creating the KV bucket {LEASE_BUCKET}"), e))?,
                }
            }
        };
        let status = kv.status().await.map_err(|e| Error::nats(format!("reading {LEASE_BUCKET}"), e))?;
        let in_force = status.info.config.max_age;
        if in_force != ttl {
            tracing::warn!(
                asked = ?ttl,
                in_force = ?in_force,
                "the lease bucket already exists with another TTL; using the bucket's"
            );
        }
        Ok((kv, if in_force.is_zero() { ttl } else { in_force }))
    }

    /// Creates shard `shard`'s stream (file storage, replicated on three NATS servers — one when there are fewer
    /// than three — so a write survives the loss of any one server whatever the collection's replication
    /// factor) if it does not exist.
    pub async fn ensure_stream(&self, spec: &CollectionSpec, shard: u32) -> Result<()> {
        let replicas = self.stream_replicas();
        let cfg = stream::Config {
            name: spec.stream_name(shard),
            description: Some(format!("QuiverDB collection {} shard {shard}: its write log", spec.name)),
            subjects: vec![spec.subject(shard)],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_message_size: MAX_OP_BYTES,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(cfg)
            .await
            .map(drop)
            .map_err(|e| Error::nats(format!("creating the log stream of shard {shard} with {replicas} replicas"), e))
    }

    /// How many NATS servers hold each shard log: three, or one below three servers (two would stop taking
    /// writes when either is lost).
    pub fn stream_replicas(&self) -> usize {
        if self.servers >= 3 { 3 } else { 1 }
    }

    /// Deletes every stream of `spec` (missing ones are fine).
    pub async fn delete_streams(&self, spec: &CollectionSpec) -> Result<()> {
        for s in 0..spec.shard_number {
            if let Err(e) = self.js.delete_stream(spec.stream_name(s)).await
                && !e.to_string().contains("not found")
            {
                return Err(Error::nats(format!("deleting stream {}", spec.stream_name(s)), e));
            }
        }
        Ok(())
    }

    /// The last sequence number of shard `shard`'s log (0 when empty).
    pub async fn last_seq(&self, spec: &CollectionSpec, shard: u32) -> Result<u64> {
        let mut s = self
            .js
            .get_stream(spec.stream_name(shard))
            .await
            .map_err(|e| Error::nats(format!("opening stream {}", spec.stream_name(shard)), e))?;
        let info = s.info().await.map_err(|e| Error::nats(format!("stream {} info", spec.stream_name(shard)), e))?;
        Ok(info.state.last_sequence)
    }

    /// Appends an encoded operation to shard `shard`'s log and waits for the stream's acknowledgement (stored on
    /// a quorum of its replicas). With `expect_last`, only if the log's last sequence number is still that
    /// ([`Error::Conflict`] otherwise). Returns the operation's sequence number.
    ///
    /// An append whose acknowledgement does not come (the stream's leader was lost and another is being elected)
    /// is sent again, up to [`APPEND_ATTEMPTS`] times, under the same message id: JetStream's duplicate window
    /// keeps one copy, so the operation is in the log once however many tries it took.
    pub async fn append(
        &self,
        spec: &CollectionSpec,
        shard: u32,
        op: Vec<u8>,
        expect_last: Option<u64>,
    ) -> Result<u64> {
        let id = message_id();
        let payload = Bytes::from(op);
        let what = || format!("appending to shard {shard} of {}", spec.name);
        let mut attempt = 1;
        loop {
            let mut msg = jetstream::message::PublishMessage::build().payload(payload.clone()).message_id(&id);
            if let Some(seq) = expect_last {
                msg = msg.expected_last_sequence(seq);
            }
            let res = match self.js.send_publish(spec.subject(shard), msg).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            let e = match res {
                Ok(a) => return Ok(a.sequence),
                Err(e) => e,
            };
            use jetstream::context::PublishErrorKind as K;
            match e.kind() {
                K::MaxPayloadExceeded => {
                    return Err(Error::invalid(
                        "points",
                        format!(
                            "a batch under the NATS servers' max_payload ({} bytes) per shard once encoded",
                            self.client.server_info().max_payload
                        ),
                        "a larger one; split the batch",
                    ));
                }
                K::WrongLastSequence => {
                    return Err(Error::Conflict { key: spec.stream_name(shard), detail: e.to_string() });
                }
                K::TimedOut | K::BrokenPipe | K::StreamNotFound if attempt < APPEND_ATTEMPTS => {
                    tracing::warn!(stream = %spec.stream_name(shard), attempt, error = %e, "append not acknowledged; sending it again");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                }
                _ => return Err(Error::nats(what(), e)),
            }
        }
    }

    /// An ordered consumer of shard `shard`'s log from sequence `from` on (re-created by the client on gaps).
    pub async fn consume(
        &self,
        spec: &CollectionSpec,
        shard: u32,
        from: u64,
    ) -> Result<jetstream::consumer::pull::Ordered> {
        let name = spec.stream_name(shard);
        let s = self.js.get_stream(&name).await.map_err(|e| Error::nats(format!("opening stream {name}"), e))?;
        let consumer = s
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: from.max(1) },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(format!("creating a consumer of {name}"), e))?;
        consumer.messages().await.map_err(|e| Error::nats(format!("consuming {name}"), e))
    }

    /// Answers requests to node `id` with `handler`, each on its own task, until the connection closes.
    pub async fn serve_rpc(&self, id: NodeId, handler: RpcHandler) -> Result<tokio::task::JoinHandle<()>> {
        let mut sub =
            self.client.subscribe(rpc_subject(id)).await.map_err(|e| Error::nats("subscribing to requests", e))?;
        let client = self.client.clone();
        Ok(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(reply_to) = msg.reply.clone() else { continue };
                let h = msg.headers.as_ref();
                let get = |k: &str| h.and_then(|h| h.get(k)).map(|v| v.as_str().to_owned()).unwrap_or_default();
                let req = RpcRequest { method: get(H_METHOD), path: get(H_PATH), body: msg.payload.clone() };
                let handler = Arc::clone(&handler);
                let client = client.clone();
                tokio::spawn(async move {
                    let mut rep = handler(req).await;
                    let most = client.server_info().max_payload.saturating_sub(4096);
                    if rep.body.len() > most {
                        // Too big for one NATS message: say so instead of leaving the caller to time out.
                        let msg = format!(
                            "{{\"status\":{{\"error\":\"the shard's answer ({} bytes) exceeds the NATS servers' \
                             max_payload ({most} bytes); ask for fewer points, or without vectors\"}}}}",
                            rep.body.len()
                        );
                        rep = RpcReply { status: 413, body: Bytes::from(msg) };
                    }
                    let mut headers = HeaderMap::new();
                    headers.insert(H_STATUS, rep.status.to_string().as_str());
                    if let Err(e) = client.publish_with_headers(reply_to, headers, rep.body).await {
                        tracing::warn!(error = %e, "could not answer a node request");
                    }
                });
            }
        }))
    }

    /// Sends `req` to node `id` and waits at most `timeout` for its answer.
    pub async fn call(&self, id: NodeId, req: RpcRequest, timeout: Duration) -> Result<RpcReply> {
        let mut headers = HeaderMap::new();
        headers.insert(H_METHOD, req.method.as_str());
        headers.insert(H_PATH, req.path.as_str());
        let r = async_nats::Request::new().headers(headers).payload(req.body).timeout(Some(timeout));
        let msg =
            self.client.send_request(rpc_subject(id), r).await.map_err(|e| {
                Error::Unavailable(format!("node {id} did not answer {} {}: {e}", req.method, req.path))
            })?;
        let status = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(H_STATUS))
            .and_then(|v| v.as_str().parse::<u16>().ok())
            .ok_or_else(|| Error::Unavailable(format!("node {id} answered without a status")))?;
        Ok(RpcReply { status, body: msg.payload })
    }
}

/// The shard map in JetStream KV.
#[derive(Clone, Debug)]
pub struct KvStore {
    kv: kv::Store,
}

fn is_wrong_revision(e: &dyn std::fmt::Display) -> bool {
    let s = e.to_string();
    s.contains("wrong last") || s.contains("10071")
}

impl MapStore for KvStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned<Vec<u8>>>> {
        let e = self.kv.entry(key).await.map_err(|e| Error::nats(format!("reading {key}"), e))?;
        Ok(e.filter(|e| matches!(e.operation, kv::Operation::Put))
            .map(|e| Versioned { value: e.value.to_vec(), revision: e.revision }))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<u64> {
        match self.kv.create(key, value.into()).await {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                Err(Error::Conflict { key: key.to_owned(), detail: "exists".into() })
            }
            Err(e) => Err(Error::nats(format!("creating {key}"), e)),
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> Result<u64> {
        match self.kv.update(key, value.into(), revision).await {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision || is_wrong_revision(&e) => {
                Err(Error::Conflict { key: key.to_owned(), detail: format!("not at revision {revision}") })
            }
            Err(e) => Err(Error::nats(format!("updating {key}"), e)),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<u64> {
        self.kv.put(key, value.into()).await.map_err(|e| Error::nats(format!("writing {key}"), e))
    }

    async fn delete(&self, key: &str, revision: u64) -> Result<()> {
        match self.kv.delete_expect_revision(key, Some(revision)).await {
            Ok(()) => Ok(()),
            Err(e) if is_wrong_revision(&e) => {
                Err(Error::Conflict { key: key.to_owned(), detail: format!("not at revision {revision}") })
            }
            Err(e) => Err(Error::nats(format!("deleting {key}"), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned<Vec<u8>>)>> {
        let mut keys = match self.kv.keys().await {
            Ok(k) => k,
            Err(e) => return Err(Error::nats("listing the shard map", e)),
        };
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            match k {
                Ok(k) if k.starts_with(prefix) => names.push(k),
                Ok(_) => {}
                Err(e) => return Err(Error::nats("listing the shard map", e)),
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for k in names {
            if let Some(v) = self.get(&k).await? {
                out.push((k, v));
            }
        }
        Ok(out)
    }
}

/// Checks, through each server's monitoring endpoint (`http://host:8222`, its `/varz`), that JetStream is
/// enabled and fsyncs every write (`sync_interval: always`). `fetch` gets a URL's body (the caller brings the
/// HTTP client). Errors name the server and what it reported.
pub fn check_sync_always(
    monitors: &[String],
    fetch: impl Fn(&str) -> std::result::Result<String, String>,
) -> Result<()> {
    if monitors.is_empty() {
        return Err(Error::UnsafeNats(
            "no monitoring URL to verify the NATS servers with: pass --nats-monitor http://host:8222[,…] (one per \
             server), or --nats-unchecked-sync to run without the check"
                .into(),
        ));
    }
    for m in monitors {
        let url = format!("{}/varz", m.trim_end_matches('/'));
        let body = fetch(&url).map_err(|e| Error::UnsafeNats(format!("could not read {url}: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| Error::UnsafeNats(format!("{url} is not NATS's varz: {e}")))?;
        let cfg = v.get("jetstream").and_then(|j| j.get("config"));
        let Some(cfg) = cfg else {
            return Err(Error::UnsafeNats(format!("{url}: JetStream is not enabled on this server")));
        };
        if cfg.get("sync_always").and_then(serde_json::Value::as_bool) != Some(true) {
            return Err(Error::UnsafeNats(format!(
                "{url}: JetStream does not fsync every write (sync_always is {}; set `jetstream {{ sync_interval: \
                 always }}` in the server's configuration: with periodic fsync a power loss can lose acknowledged \
                 writes)",
                cfg.get("sync_always").map_or("absent".to_string(), |v| v.to_string())
            )));
        }
    }
    Ok(())
}
