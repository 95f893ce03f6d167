//! The shard map: which collections exist across the cluster, how each is split into shards, which nodes hold a
//! replica of each shard, and which nodes are members. It lives in a JetStream KV bucket (one key per collection,
//! one per node) and changes only by compare-and-set on a key's revision, so two nodes racing to create the same
//! collection or to change the same assignment cannot both win. [`MapStore`] is that contract; [`MemStore`] keeps
//! it in memory for tests of the transitions, [`crate::nats::KvStore`] is the real one.

use std::collections::BTreeMap;
use std::future::Future;

use quiver_engine::CollectionConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A node's number, unique in the cluster (`quiver serve --node-id N`).
pub type NodeId = u32;

/// Most shards a collection may have.
pub const MAX_SHARDS: u32 = 256;

/// Key prefix of collection entries.
pub const COLLECTION_PREFIX: &str = "collections.";
/// Key prefix of node entries.
pub const NODE_PREFIX: &str = "nodes.";

/// How a collection's points are spread over its shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sharding {
    /// By a hash of the point id (the default): even spread, a point's shard known from its id alone.
    #[default]
    Hash,
    /// By the value of one payload field (a string or an integer), so points sharing it live on one shard.
    PayloadKey {
        /// Dotted payload key.
        key: String,
    },
    /// By the nearest of `shard_number` centroids, so a search can probe only the shards nearest the query.
    /// Until centroids are set (given at creation, or trained by k-means once `train_after` points arrived),
    /// points are placed by a hash of their id; every change of centroids starts an *epoch*, during which the
    /// points placed by the old ones move to their new shards (see `placed`).
    Centroid {
        /// One centroid per shard, each of the collection's dimension (prepared for its metric); empty until
        /// trained.
        #[serde(default)]
        centroids: Vec<Vec<f32>>,
        /// Train automatically once the collection holds this many points (while it has no centroids); 0 never.
        #[serde(default = "default_train_after")]
        train_after: u64,
        /// How many times centroids were set (0: never).
        #[serde(default)]
        epoch: u64,
        /// The epoch whose centroids every point has been placed by. While it is behind `epoch` points are still
        /// moving, and searches probe every shard whatever `shards_to_search` says.
        #[serde(default)]
        placed: u64,
    },
}

/// Default of `train_after`: points before centroids are trained automatically.
pub const DEFAULT_TRAIN_AFTER: u64 = 1_000;

fn default_train_after() -> u64 {
    DEFAULT_TRAIN_AFTER
}

impl Sharding {
    /// The wire name of the method.
    pub fn method(&self) -> &'static str {
        match self {
            Sharding::Hash => "hash",
            Sharding::PayloadKey { .. } => "payload_key",
            Sharding::Centroid { .. } => "centroid",
        }
    }

    /// True when a point's shard follows from its id alone.
    pub fn routes_by_id(&self) -> bool {
        matches!(self, Sharding::Hash)
    }

    /// True while centroids are set but the points placed by an older epoch (or by id) are still moving.
    pub fn moving(&self) -> bool {
        matches!(self, Sharding::Centroid { centroids, epoch, placed, .. } if !centroids.is_empty() && placed < epoch)
    }

    /// The centroids a search may use to probe fewer shards: set, and every point placed by them.
    pub fn settled_centroids(&self) -> Option<&[Vec<f32>]> {
        match self {
            Sharding::Centroid { centroids, epoch, placed, .. } if !centroids.is_empty() && placed >= epoch => {
                Some(centroids)
            }
            _ => None,
        }
    }
}

/// One collection as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    /// The collection's name.
    pub name: String,
    /// Unique per creation: a collection dropped and created again under the same name gets other streams, and a
    /// node that kept shards of the old one recognises them as stale.
    pub uid: u64,
    /// The engine configuration every shard is created with.
    pub config: CollectionConfig,
    /// Number of shards.
    pub shard_number: u32,
    /// Nodes holding a copy of each shard, and replicas of each shard's log stream.
    pub replication_factor: u32,
    /// How points are spread.
    pub sharding: Sharding,
    /// `replicas[s]` = the nodes serving shard `s`, the preferred one first.
    pub replicas: Vec<Vec<NodeId>>,
    /// `joining[s]` = nodes copying shard `s` (replaying its log) before they serve it: empty, or one list per
    /// shard. A joiner that has caught up moves itself into `replicas[s]` (see [`CollectionSpec::promote`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joining: Vec<Vec<Join>>,
    /// When it was created (unix ms).
    pub created_ms: u64,
}

impl CollectionSpec {
    /// Validates the numbers and the sharding against the configuration; `replicas` is checked for shape too.
    pub fn validate(&self) -> Result<()> {
        quiver_engine::database::validate_name(&self.name)?;
        if self.shard_number == 0 || self.shard_number > MAX_SHARDS {
            return Err(Error::invalid("shard_number", format!("1 to {MAX_SHARDS}"), self.shard_number));
        }
        let longest = shard_collection_name(&self.name, self.shard_number - 1);
        if longest.len() > quiver_engine::database::MAX_NAME_LEN {
            return Err(Error::invalid(
                "collection name",
                format!(
                    "at most {} characters for {} shards (each shard is a local collection `<name>_s<shard>`)",
                    quiver_engine::database::MAX_NAME_LEN - (longest.len() - self.name.len()),
                    self.shard_number
                ),
                format!("{} characters", self.name.len()),
            ));
        }
        if self.replication_factor == 0 || self.replication_factor > 5 {
            return Err(Error::invalid("replication_factor", "1 to 5", self.replication_factor));
        }
        match &self.sharding {
            Sharding::Hash => {}
            Sharding::PayloadKey { key } => {
                if key.is_empty() || key.split('.').any(str::is_empty) {
                    return Err(Error::invalid(
                        "sharding.key",
                        "a dotted payload key like `tenant`",
                        format!("{key:?}"),
                    ));
                }
            }
            Sharding::Centroid { centroids, .. } => {
                if !centroids.is_empty() && centroids.len() != self.shard_number as usize {
                    return Err(Error::invalid(
                        "sharding.centroids",
                        format!("none (trained later) or one centroid per shard ({})", self.shard_number),
                        format!("{} centroids", centroids.len()),
                    ));
                }
                for (i, c) in centroids.iter().enumerate() {
                    if c.len() != self.config.dimension {
                        return Err(Error::invalid(
                            format!("sharding.centroids[{i}]"),
                            format!("{} numbers (the collection's dimension)", self.config.dimension),
                            c.len(),
                        ));
                    }
                    if let Some(j) = c.iter().position(|x| !x.is_finite()) {
                        return Err(Error::invalid(format!("sharding.centroids[{i}][{j}]"), "a finite number", c[j]));
                    }
                }
            }
        }
        let bad_replicas = || {
            Error::invalid(
                "replicas",
                format!(
                    "{} shards of at most {} distinct nodes each, every shard held or being copied by one",
                    self.shard_number, self.replication_factor
                ),
                format!("{:?} (joining {:?})", self.replicas, self.joining),
            )
        };
        if self.replicas.len() != self.shard_number as usize
            || !(self.joining.is_empty() || self.joining.len() == self.shard_number as usize)
        {
            return Err(bad_replicas());
        }
        for s in 0..self.shard_number {
            let r = &self.replicas[s as usize];
            let j = self.joining_of(s);
            let mut all: Vec<NodeId> = r.iter().copied().chain(j.iter().map(|j| j.node)).collect();
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            if r.len() > self.replication_factor as usize || all.len() != n || n == 0 {
                return Err(bad_replicas());
            }
        }
        Ok(())
    }

    /// The shards node `node` serves.
    pub fn shards_of(&self, node: NodeId) -> Vec<u32> {
        (0..self.shard_number).filter(|&s| self.replicas[s as usize].contains(&node)).collect()
    }

    /// The shards node `node` holds locally: those it serves and those it is copying.
    pub fn held_by(&self, node: NodeId) -> Vec<u32> {
        (0..self.shard_number)
            .filter(|&s| self.replicas[s as usize].contains(&node) || self.joining_of(s).iter().any(|j| j.node == node))
            .collect()
    }

    /// The nodes copying shard `s`.
    pub fn joining_of(&self, s: u32) -> &[Join] {
        self.joining.get(s as usize).map_or(&[], Vec::as_slice)
    }

    /// True while any shard has a joiner.
    pub fn moving(&self) -> bool {
        self.joining.iter().any(|j| !j.is_empty())
    }

    /// Moves joiner `node` of shard `shard` into the shard's replicas (dropping the replica it replaces); `None`
    /// when it is not joining that shard.
    pub fn promote(&self, shard: u32, node: NodeId) -> Option<CollectionSpec> {
        let join = *self.joining_of(shard).iter().find(|j| j.node == node)?;
        let mut next = self.clone();
        next.joining[shard as usize].retain(|j| j.node != node);
        let r = &mut next.replicas[shard as usize];
        if let Some(old) = join.replaces {
            r.retain(|&n| n != old);
        }
        if !r.contains(&node) {
            r.push(node);
        }
        // Over the replication factor (a joiner added for a replica that came back): keep the first ones.
        r.truncate(self.replication_factor as usize);
        next.tidy();
        Some(next)
    }

    /// Clears `joining` when no shard has a joiner.
    fn tidy(&mut self) {
        if !self.moving() {
            self.joining.clear();
        }
    }

    /// The JetStream stream holding shard `shard`'s log.
    pub fn stream_name(&self, shard: u32) -> String {
        format!("QV_{}_{:016x}_{shard}", self.name, self.uid)
    }

    /// The subject shard `shard`'s operations are published on.
    pub fn subject(&self, shard: u32) -> String {
        format!("quiver.log.{}.{:016x}.{shard}", self.name, self.uid)
    }

    /// The name of the local collection holding shard `shard` on a node.
    pub fn shard_collection(&self, shard: u32) -> String {
        shard_collection_name(&self.name, shard)
    }

    /// The KV key of this collection.
    pub fn key(&self) -> String {
        collection_key(&self.name)
    }
}

/// A node copying a shard before it serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The node copying the shard.
    pub node: NodeId,
    /// The replica it takes the place of once it serves (a dead, draining or overloaded node), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<NodeId>,
    /// When the move was decided (unix ms).
    pub since_ms: u64,
}

/// `<name>_s<shard>`: the local collection holding a shard.
pub fn shard_collection_name(name: &str, shard: u32) -> String {
    format!("{name}_s{shard}")
}

/// The KV key of collection `name`.
pub fn collection_key(name: &str) -> String {
    format!("{COLLECTION_PREFIX}{name}")
}

/// The KV key of node `id`.
pub fn node_key(id: NodeId) -> String {
    format!("{NODE_PREFIX}{id}")
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// Its number.
    pub id: NodeId,
    /// Where its REST API listens.
    pub url: String,
    /// When it (last) started (unix ms).
    pub started_ms: u64,
    /// Set by `POST /cluster/nodes/{id}/drain`: its replicas are moved to other nodes and it gets no new ones.
    #[serde(default)]
    pub draining: bool,
}

/// Assigns `replication_factor` distinct nodes to each of `shard_number` shards, round robin over the sorted
/// node ids starting one further for each shard, so primaries (and every replica rank) are spread evenly.
pub fn assign_replicas(nodes: &[NodeId], shard_number: u32, replication_factor: u32) -> Result<Vec<Vec<NodeId>>> {
    let mut sorted: Vec<NodeId> = nodes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() < replication_factor as usize {
        return Err(Error::invalid(
            "replication_factor",
            format!("at most the number of nodes in the cluster ({})", sorted.len()),
            replication_factor,
        ));
    }
    let n = sorted.len();
    Ok((0..shard_number as usize)
        .map(|s| (0..replication_factor as usize).map(|r| sorted[(s + r) % n]).collect())
        .collect())
}

/// A value with the revision it was read at (the compare-and-set token).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The store's revision of the key.
    pub revision: u64,
}

/// A key-value store with compare-and-set: what the shard map needs of JetStream KV.
pub trait MapStore: Send + Sync {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Versioned<Vec<u8>>>>> + Send;
    /// Creates `key`; [`Error::Conflict`] if it exists.
    fn create(&self, key: &str, value: Vec<u8>) -> impl Future<Output = Result<u64>> + Send;
    /// Replaces `key` if it is still at `revision`; [`Error::Conflict`] otherwise.
    fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> impl Future<Output = Result<u64>> + Send;
    /// Writes `key` whatever it holds.
    fn put(&self, key: &str, value: Vec<u8>) -> impl Future<Output = Result<u64>> + Send;
    /// Removes `key` if it is still at `revision`; [`Error::Conflict`] otherwise.
    fn delete(&self, key: &str, revision: u64) -> impl Future<Output = Result<()>> + Send;
    /// Every key with `prefix` and its value.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<(String, Versioned<Vec<u8>>)>>> + Send;
}

/// The shard map's transitions over a [`MapStore`].
#[derive(Debug, Clone)]
pub struct ShardMap<S> {
    store: S,
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt { what: format!("shard map entry {key}"), detail: e.to_string() })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl<S: MapStore> ShardMap<S> {
    /// The map over `store`.
    pub fn new(store: S) -> Self {
        ShardMap { store }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Registers (or refreshes) a node.
    pub async fn put_node(&self, node: &NodeInfo) -> Result<()> {
        self.store.put(&node_key(node.id), encode(node)).await.map(drop)
    }

    /// Every registered node, by id.
    pub async fn nodes(&self) -> Result<BTreeMap<NodeId, NodeInfo>> {
        let mut out = BTreeMap::new();
        for (key, v) in self.store.list(NODE_PREFIX).await? {
            let n: NodeInfo = decode(&key, &v.value)?;
            out.insert(n.id, n);
        }
        Ok(out)
    }

    /// Collection `name` and its revision.
    pub async fn collection(&self, name: &str) -> Result<Option<Versioned<CollectionSpec>>> {
        let key = collection_key(name);
        match self.store.get(&key).await? {
            None => Ok(None),
            Some(v) => Ok(Some(Versioned { value: decode(&key, &v.value)?, revision: v.revision })),
        }
    }

    /// Every collection.
    pub async fn collections(&self) -> Result<Vec<Versioned<CollectionSpec>>> {
        let mut out: Vec<Versioned<CollectionSpec>> = Vec::new();
        for (key, v) in self.store.list(COLLECTION_PREFIX).await? {
            out.push(Versioned { value: decode(&key, &v.value)?, revision: v.revision });
        }
        out.sort_by(|a, b| a.value.name.cmp(&b.value.name));
        Ok(out)
    }

    /// Adds a validated collection; [`Error::AlreadyExists`] when one of that name exists (also when another node
    /// created it a moment earlier: the store's create is the arbiter).
    pub async fn create_collection(&self, spec: &CollectionSpec) -> Result<u64> {
        spec.validate()?;
        match self.store.create(&spec.key(), encode(spec)).await {
            Err(Error::Conflict { .. }) => Err(Error::AlreadyExists { name: spec.name.clone() }),
            r => r,
        }
    }

    /// Replaces a collection's entry read at `revision` with `spec` (same name and uid); [`Error::Conflict`]
    /// when it changed meanwhile (read again and retry).
    pub async fn update_collection(&self, spec: &CollectionSpec, revision: u64) -> Result<u64> {
        spec.validate()?;
        let Some(cur) = self.collection(&spec.name).await? else {
            return Err(Error::NotFound { name: spec.name.clone() });
        };
        if cur.value.uid != spec.uid {
            return Err(Error::Conflict {
                key: spec.key(),
                detail: "the collection was dropped and created again".into(),
            });
        }
        self.store.update(&spec.key(), encode(spec), revision).await
    }

    /// Removes collection `name` if it is still at `revision`.
    pub async fn drop_collection(&self, name: &str, revision: u64) -> Result<()> {
        self.store.delete(&collection_key(name), revision).await
    }
}

/// An in-memory [`MapStore`] with the same compare-and-set rules (tests, and a map without NATS).
#[derive(Debug, Default)]
pub struct MemStore {
    inner: parking_lot::Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    revision: u64,
    keys: BTreeMap<String, Versioned<Vec<u8>>>,
}

impl MemStore {
    fn conflict(key: &str, detail: impl Into<String>) -> Error {
        Error::Conflict { key: key.to_owned(), detail: detail.into() }
    }
}

impl MapStore for MemStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned<Vec<u8>>>> {
        Ok(self.inner.lock().keys.get(key).cloned())
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<u64> {
        let mut g = self.inner.lock();
        if g.keys.contains_key(key) {
            return Err(MemStore::conflict(key, "exists"));
        }
        g.revision += 1;
        let revision = g.revision;
        g.keys.insert(key.to_owned(), Versioned { value, revision });
        Ok(revision)
    }

    async fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> Result<u64> {
        let mut g = self.inner.lock();
        match g.keys.get(key) {
            Some(v) if v.revision == revision => {}
            Some(v) => return Err(MemStore::conflict(key, format!("at revision {}, not {revision}", v.revision))),
            None => return Err(MemStore::conflict(key, "missing")),
        }
        g.revision += 1;
        let revision = g.revision;
        g.keys.insert(key.to_owned(), Versioned { value, revision });
        Ok(revision)
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<u64> {
        let mut g = self.inner.lock();
        g.revision += 1;
        let revision = g.revision;
        g.keys.insert(key.to_owned(), Versioned { value, revision });
        Ok(revision)
    }

    async fn delete(&self, key: &str, revision: u64) -> Result<()> {
        let mut g = self.inner.lock();
        match g.keys.get(key) {
            Some(v) if v.revision == revision => {
                g.keys.remove(key);
                Ok(())
            }
            Some(v) => Err(MemStore::conflict(key, format!("at revision {}, not {revision}", v.revision))),
            None => Err(MemStore::conflict(key, "missing")),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned<Vec<u8>>)>> {
        let g = self.inner.lock();
        Ok(g.keys.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
