//! A collection: points in segments, a WAL of numbered operations, a manifest, and the read paths.
//!
//! **Write path**: validate the whole batch → resolve it into a self-contained [`Operation`] (payload updates
//! become full points, deletes by filter become ids) → take the next sequence number and append to the WAL (under
//! the writer lock, so records are in sequence order) → apply to memory (append to the growing segment, mark the
//! old rows deleted) → acknowledge once durable per the collection's durability.
//!
//! **Read path**: clone the segment list (an `Arc` per segment, under a short read lock), search every segment
//! (in parallel when there are several) with the planner in [`SegmentData::search`], merge one top-k, drop
//! duplicates of a point that an in-flight upsert made visible twice, attach payloads.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use quiver_index::{Neighbor, prepare_query};
use quiver_storage::{Directory, ManifestStore, Wal, WalOptions};
use rayon::prelude::*;

use crate::clock::Clock;
use crate::codec::{Reader, Writer};
use crate::config::{CollectionConfig, SparseModifier};
use crate::error::{Error, Result};
use crate::feed::{CLOSED_SEQ, Change, Feed, Listener, Listeners};
use crate::filter::{DEFAULT_MAX_FILTER_DEPTH, Filter};
use crate::id::PointId;
use crate::ops::{Operation, PointWrite, read_field_type, write_field_type};
use crate::payload::Payload;
use crate::payload_index::FieldType;
use crate::segment::{Layout, Segment, SegmentData, Tier, segment_path};
use crate::types::{
    CollectionInfo, Explain, OptimizerInfo, PointInput, Record, ScoredPoint, ScrollPage, SearchRequest, SearchResponse,
    SegmentInfo, Selector,
};
use crate::write::{PlannedWrite, WriteRequest};

/// Name of the collection's configuration file inside its directory.
pub const CONFIG_FILE: &str = "config.json";
/// Format version of the engine's part of the manifest.
pub const MANIFEST_META_VERSION: u8 = 1;
/// Largest `limit + offset` of one search.
pub const MAX_LIMIT: usize = 100_000;

/// The segments a reader sees.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// Sealed segments (hot and cold), by id.
    pub sealed: Vec<Arc<Segment>>,
    /// A growing segment being sealed: searchable, takes deletions, no more appends.
    pub frozen: Option<Arc<Segment>>,
    /// The segment taking appends.
    pub growing: Arc<Segment>,
    /// Every operation at or below this is in `sealed` (the WAL checkpoint once committed).
    pub growing_base_seq: u64,
    /// The applied sequence number when `frozen` was frozen (becomes `growing_base_seq` once it is sealed).
    pub pending_base_seq: Option<u64>,
    /// When the growing segment received its first row (ms), for sealing by age.
    pub growing_since_ms: Option<u64>,
    /// When the growing segment last received a row (ms), for sealing when idle. Atomic: writers update it under
    /// the read lock.
    pub growing_last_ms: Arc<AtomicU64>,
    /// Indexed payload fields.
    pub fields: Vec<(String, FieldType)>,
    /// Next segment id to hand out.
    pub next_segment_id: u64,
}

impl State {
    /// Every segment, oldest first, growing last.
    pub fn all(&self) -> Vec<Arc<Segment>> {
        let mut v = self.sealed.clone();
        v.extend(self.frozen.iter().cloned());
        v.push(self.growing.clone());
        v
    }
}

/// The writer lock's state.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub next_seq: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub name: String,
    pub config: CollectionConfig,
    /// The vector spaces of the collection's segments (from `config`).
    pub layout: Arc<Layout>,
    pub dir: Arc<dyn Directory>,
    pub wal: Wal,
    pub writer: Mutex<WriterState>,
    pub state: RwLock<State>,
    pub manifests: Mutex<ManifestStore>,
    pub checkpoint: Mutex<u64>,
    pub applied: Mutex<u64>,
    pub applied_cv: Condvar,
    pub clock: Arc<dyn Clock>,
    pub optimizer: Mutex<OptimizerInfo>,
    pub jobs: Mutex<()>,
    pub closed: AtomicBool,
    /// Recent operations (the change feed); pushed to under the writer lock.
    pub feed: Mutex<Feed>,
    /// Change-feed listeners.
    pub listeners: Listeners,
    /// Answers of repeated searches (see [`crate::cache`]).
    pub cache: Mutex<crate::cache::QueryCache>,
    /// The database's memory budget, once the collection belongs to a [`crate::Database`].
    pub budget: std::sync::OnceLock<Arc<crate::budget::MemoryBudget>>,
    /// Average heap bytes of a payload (for the memory estimate), kept current by upserts.
    pub payload_avg: std::sync::atomic::AtomicU64,
    /// Recent queries and each segment's measured recall, for `target_recall` (see [`crate::recall`]).
    pub recall: crate::recall::RecallMonitor,
}

/// A collection of points. Cheap to clone (an `Arc`); safe to use from many threads.
#[derive(Debug, Clone)]
pub struct Collection {
    pub(crate) inner: Arc<Inner>,
}

fn wal_options(config: &CollectionConfig) -> WalOptions {
    WalOptions { durability: config.wal_durability(), ..WalOptions::default() }
}

/// Writes `bytes` to `name` atomically (temp file, fsync, rename, directory fsync).
pub(crate) fn write_atomic(dir: &dyn Directory, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = format!("{name}{}", quiver_storage::dir::TEMP_SUFFIX);
    let mut f = dir.create(&tmp)?;
    f.write_all(bytes)?;
    f.sync()?;
    drop(f);
    dir.rename(&tmp, name)?;
    dir.sync_dir()?;
    Ok(())
}

impl Collection {
    /// Creates a collection in the empty directory `dir`: writes its configuration and an initial manifest.
    pub fn create(
        name: &str,
        dir: Arc<dyn Directory>,
        config: CollectionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Collection> {
        Collection::init_dir(name, dir.as_ref(), &config)?;
        Collection::open(name, dir, clock)
    }

    /// Writes a new collection's configuration into the empty directory `dir` (validating it first).
    pub fn init_dir(name: &str, dir: &dyn Directory, config: &CollectionConfig) -> Result<()> {
        config.validate()?;
        if dir.exists(CONFIG_FILE)? {
            return Err(Error::CollectionExists { name: name.to_owned() });
        }
        let json = serde_json::to_vec_pretty(config).map_err(|e| Error::invalid("config", "serialisable", e))?;
        write_atomic(dir, CONFIG_FILE, &json)
    }

    /// Opens (recovers) the collection in `dir`: configuration, manifest, segment files (checksums verified),
    /// then the WAL above the manifest's checkpoint.
    pub fn open(name: &str, dir: Arc<dyn Directory>, clock: Arc<dyn Clock>) -> Result<Collection> {
        quiver_storage::dir::remove_temp_files(dir.as_ref())?;
        let config_bytes = dir.read(CONFIG_FILE)?;
        let config: CollectionConfig = serde_json::from_slice(&config_bytes).map_err(|e| Error::Corrupt {
            file: dir.file_path(CONFIG_FILE),
            offset: 0,
            detail: format!("configuration does not parse: {e}"),
        })?;
        config.validate()?;
        let layout = Layout::of(&config);
        let (manifests, manifest) = ManifestStore::open(dir.clone())?;
        let (checkpoint, meta) = match &manifest {
            Some(m) => (m.wal_checkpoint, decode_meta(&m.user, &dir.file_path("MANIFEST"))?),
            None => (0, ManifestMeta { next_segment_id: 1, fields: Vec::new(), segments: Vec::new() }),
        };
        if let Some(m) = &manifest {
            let listed: Vec<u64> = meta.segments.iter().map(|s| s.0).collect();
            if listed != m.segments {
                return Err(Error::Corrupt {
                    file: dir.file_path("MANIFEST"),
                    offset: 0,
                    detail: format!("segment list {:?} disagrees with engine metadata {listed:?}", m.segments),
                });
            }
        }
        // Segment files the manifest does not list are leftovers of a job that crashed before its commit, or of
        // one whose inputs were replaced: remove them.
        let live: HashSet<u64> = meta.segments.iter().map(|s| s.0).collect();
        let mut removed = false;
        for f in dir.list()? {
            if let Some(id) = parse_segment_name(&f)
                && !live.contains(&id)
            {
                dir.remove(&f)?;
                removed = true;
            }
        }
        if removed {
            dir.sync_dir()?;
        }
        let loaded: Vec<Result<Arc<Segment>>> = meta
            .segments
            .par_iter()
            .map(|(id, tier, deleted)| {
                let (data, file_tier) =
                    SegmentData::read_file(dir.as_ref(), *id, deleted.clone(), &meta.fields, &layout)?;
                if file_tier != *tier {
                    return Err(Error::Corrupt {
                        file: segment_path(dir.as_ref(), *id),
                        offset: 0,
                        detail: format!("segment is {file_tier:?}, manifest says {tier:?}"),
                    });
                }
                Ok(Arc::new(Segment { id: *id, tier: *tier, data: RwLock::new(data) }))
            })
            .collect();
        let sealed = loaded.into_iter().collect::<Result<Vec<_>>>()?;
        let growing_id = meta.next_segment_id;
        let state = State {
            sealed,
            frozen: None,
            growing: Arc::new(Segment {
                id: growing_id,
                tier: Tier::Growing,
                data: RwLock::new(SegmentData::empty(&layout, &meta.fields)?),
            }),
            growing_base_seq: checkpoint,
            pending_base_seq: None,
            growing_since_ms: None,
            growing_last_ms: Arc::new(AtomicU64::new(0)),
            fields: meta.fields.clone(),
            next_segment_id: growing_id + 1,
        };
        let state = RwLock::new(state);
        let wal_path = dir.file_path("wal");
        let mut applied = checkpoint;
        // The change feed starts with the operations the WAL still holds above the checkpoint.
        let mut feed = Feed::new(config.change_feed_bytes, checkpoint);
        let (wal, _report) = Wal::open_and_replay(dir.clone(), wal_options(&config), checkpoint, |seq, bytes| {
            let op = Operation::decode(bytes, &wal_path, 0)?;
            apply(&state, &config, &op, clock.now_ms())?;
            feed.push(seq, bytes.len(), move || Arc::new(op));
            applied = seq;
            Ok::<(), Error>(())
        })?;
        let next_seq = wal.last_seq().max(checkpoint) + 1;
        let cache = Mutex::new(crate::cache::QueryCache::new(config.query_cache_entries));
        let (rows, payload_bytes) = state.read().all().iter().fold((0u64, 0u64), |(r, b), s| {
            let d = s.data.read();
            (r + u64::from(d.len()), b + d.payload_total_guess())
        });
        let inner = Inner {
            name: name.to_owned(),
            layout,
            config,
            dir,
            wal,
            writer: Mutex::new(WriterState { next_seq }),
            state,
            manifests: Mutex::new(manifests),
            checkpoint: Mutex::new(checkpoint),
            applied: Mutex::new(applied.max(checkpoint)),
            applied_cv: Condvar::new(),
            clock,
            optimizer: Mutex::new(OptimizerInfo::default()),
            jobs: Mutex::new(()),
            closed: AtomicBool::new(false),
            feed: Mutex::new(feed),
            listeners: Listeners::default(),
            cache,
            budget: std::sync::OnceLock::new(),
            payload_avg: std::sync::atomic::AtomicU64::new(payload_bytes.checked_div(rows).unwrap_or(0)),
            recall: crate::recall::RecallMonitor::default(),
        };
        if inner.config.target_recall.is_some() {
            inner.recall.want();
        }
        let c = Collection { inner: Arc::new(inner) };
        crate::optimizer::spawn_background(&c);
        Ok(c)
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The configuration.
    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }

    /// The indexed payload fields and their types (what [`Collection::info`] reports, without its file-system
    /// walk).
    pub fn payload_indexes(&self) -> Vec<(String, FieldType)> {
        self.inner.state.read().fields.clone()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed { name: self.inner.name.clone() });
        }
        Ok(())
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    // ---------------------------------------------------------------- writes

    /// Logs and applies one operation built from the current state; returns its sequence number once it is
    /// durable as the collection's durability promises.
    pub(crate) fn write(&self, build: impl FnOnce(&State, u64) -> Result<Option<Operation>>) -> Result<u64> {
        self.check_open()?;
        let inner = &self.inner;
        let w = inner.writer.lock();
        // Again under the lock: `close` may have run while this waited for it, and the collection's directory
        // may belong to another collection by now (a restore switched it).
        self.check_open()?;
        let now = self.now_ms();
        let op = {
            let st = inner.state.read();
            build(&st, now)?
        };
        let Some(op) = op else {
            return Ok(*inner.applied.lock());
        };
        let seq = w.next_seq;
        self.log_and_apply(w, seq, Arc::new(op), now)?;
        Ok(seq)
    }

    /// Appends `op` as `seq` to the WAL, applies it, appends it to the change feed and publishes it as applied,
    /// then releases the writer lock, calls the change-feed listeners and waits for durability. Under
    /// `Fsync`/`None` the record is written before `submit` returns; under `Batch` it is queued and waited for
    /// after the lock is released, so concurrent writers share one fsync.
    fn log_and_apply(
        &self,
        mut w: parking_lot::MutexGuard<'_, WriterState>,
        seq: u64,
        op: Arc<Operation>,
        now: u64,
    ) -> Result<()> {
        let inner = &self.inner;
        let bytes = op.encode();
        inner.wal.submit(seq, &bytes)?;
        w.next_seq = seq + 1;
        apply(&inner.state, &inner.config, &op, now)?;
        inner.feed.lock().push(seq, bytes.len(), || op);
        {
            let mut a = inner.applied.lock();
            *a = seq;
            inner.applied_cv.notify_all();
        }
        drop(w);
        self.notify(seq);
        inner.wal.wait(seq)?;
        Ok(())
    }

    fn notify(&self, seq: u64) {
        self.inner.listeners.notify(seq);
    }

    /// Up to `max` applied operations with a sequence number above `after`, oldest first: the change feed.
    ///
    /// Every applied operation is in the feed — local writes, [`Collection::apply_replicated`] ones, the
    /// optimizer's TTL purges (as deletes) — until `change_feed_bytes` of newer ones push it out; after a reopen
    /// the feed holds the operations the WAL still had above the checkpoint. An operation is in the feed once it is
    /// applied (visible to reads), under `batch` durability possibly just before its group's fsync.
    ///
    /// Errors: `after` above [`Collection::applied_seq`] or `max` of 0 → [`Error::InvalidArgument`]; operations
    /// above `after` already dropped → [`Error::ChangesGone`] (with the oldest sequence number still served);
    /// a closed collection → [`Error::Closed`].
    pub fn changes_since(&self, after: u64, max: usize) -> Result<Vec<Change>> {
        self.check_open()?;
        self.inner.feed.lock().since(after, max)
    }

    /// The oldest sequence number the change feed can still serve: [`Collection::changes_since`] accepts any
    /// `after` from this minus one up to the applied sequence number.
    pub fn changes_oldest(&self) -> u64 {
        self.inner.feed.lock().oldest()
    }

    /// Registers `listener`, called with the sequence number after each operation is applied (after the writer
    /// lock is released; calls from concurrent writers may arrive out of order, so treat it as a wake-up and read
    /// [`Collection::changes_since`]), and once with [`CLOSED_SEQ`] (`u64::MAX`) when the collection closes
    /// (dropped, replaced by a restore, or its database closed or dropped); subscribing to an already closed
    /// collection calls it with [`CLOSED_SEQ`] at once (it may hear `CLOSED_SEQ` twice if it races the close). It
    /// runs on the writer's (or closer's) thread, possibly under the database's catalog lock: it must be cheap and
    /// must not block, write to this collection or call into the [`crate::Database`]. Returns its id for
    /// [`Collection::unsubscribe`].
    pub fn subscribe(&self, listener: Listener) -> u64 {
        let id = self.inner.listeners.add(listener.clone());
        if self.inner.closed.load(Ordering::Acquire) {
            listener(CLOSED_SEQ);
        }
        id
    }

    /// Removes listener `id`; returns whether it was registered.
    pub fn unsubscribe(&self, id: u64) -> bool {
        self.inner.listeners.remove(id)
    }

    /// Applies an operation sequenced by another log (a replicated stream): the seam the cluster mode plugs
    /// into. `seq` must be above every sequence number this collection has seen; an operation at or below the
    /// applied one is skipped (already applied: replays of a stream are idempotent) and `Ok(false)` is returned.
    /// The operation is checked like a local write (dimension, finite values, payload size), then appended to the
    /// local WAL under `seq` and applied, so local recovery covers it.
    pub fn apply_replicated(&self, seq: u64, op: &Operation) -> Result<bool> {
        self.check_open()?;
        let inner = &self.inner;
        let w = inner.writer.lock();
        self.check_open()?;
        if seq < w.next_seq {
            return Ok(false);
        }
        if let Operation::Upsert(points) = op {
            let cfg = &inner.config;
            for p in points {
                crate::write::check_write(cfg, p, true)?;
                check_payload_size(&p.id, &p.payload, cfg.max_payload_bytes)?;
            }
        }
        self.log_and_apply(w, seq, Arc::new(op.clone()), self.now_ms())?;
        Ok(true)
    }

    /// Inserts or replaces points. The whole batch is validated first: one bad point rejects the batch and
    /// nothing is written. Returns the operation's sequence number.
    pub fn upsert(&self, points: Vec<PointInput>) -> Result<u64> {
        self.submit(WriteRequest::Upsert(points))
    }

    /// Deletes the selected points (ids that do not exist are ignored). Returns the sequence number.
    pub fn delete(&self, selector: Selector) -> Result<u64> {
        self.submit(WriteRequest::Delete(selector))
    }

    /// Merges `payload` into the selected points' payloads (at the dotted `key` when given).
    pub fn set_payload(&self, selector: Selector, payload: Payload, key: Option<&str>) -> Result<u64> {
        if let Some(k) = key
            && !crate::filter::is_valid_key(k)
        {
            return Err(Error::invalid(
                "key",
                "a dotted payload key without empty segments (like `meta.tags`)",
                format!("{k:?}"),
            ));
        }
        self.submit(WriteRequest::SetPayload { selector, payload, key: key.map(str::to_owned) })
    }

    /// Replaces the selected points' payloads with `payload`.
    pub fn overwrite_payload(&self, selector: Selector, payload: Payload) -> Result<u64> {
        self.submit(WriteRequest::OverwritePayload { selector, payload })
    }

    /// Removes the dotted `keys` from the selected points' payloads.
    pub fn delete_payload_keys(&self, selector: Selector, keys: &[String]) -> Result<u64> {
        self.submit(WriteRequest::DeletePayloadKeys { selector, keys: keys.to_vec() })
    }

    /// Empties the selected points' payloads.
    pub fn clear_payload(&self, selector: Selector) -> Result<u64> {
        self.submit(WriteRequest::ClearPayload(selector))
    }

    /// Indexes payload field `key` (dotted) as `ty`, in every segment, and on every write from now on.
    pub fn create_field_index(&self, key: &str, ty: FieldType) -> Result<u64> {
        self.submit(WriteRequest::CreateFieldIndex { key: key.to_owned(), ty })
    }

    /// Stops indexing payload field `key`.
    pub fn drop_field_index(&self, key: &str) -> Result<u64> {
        self.submit(WriteRequest::DropFieldIndex { key: key.to_owned() })
    }

    /// Resolves `req` against the current state, logs and applies it; returns its sequence number (the applied
    /// one when the request changes nothing, such as a delete that matched no point).
    pub fn submit(&self, req: WriteRequest) -> Result<u64> {
        req.check()?;
        if let WriteRequest::Upsert(points) = &req {
            self.admit_upsert(points)?;
        }
        let cfg = &self.inner.config;
        self.write(|st, now| crate::write::resolve(cfg, st, now, req))
    }

    /// Rows in all segments (live, deleted and superseded until the optimizer rewrites them).
    fn row_count(&self) -> u64 {
        self.inner.state.read().all().iter().map(|s| u64::from(s.data.read().len())).sum()
    }

    /// The collection's estimated memory at its current size (see [`crate::budget`]).
    pub fn memory_estimate(&self) -> crate::budget::MemoryEstimate {
        let avg = self.inner.payload_avg.load(Ordering::Relaxed);
        crate::budget::estimate(&self.inner.config, self.row_count(), avg)
    }

    /// Joins the database's memory budget (records the estimate at the current size; an existing collection is
    /// never refused its own data).
    pub(crate) fn join_budget(&self, budget: Arc<crate::budget::MemoryBudget>) {
        budget.record(&self.inner.name, self.memory_estimate().heap_bytes);
        let _ = self.inner.budget.set(budget);
    }

    /// Refuses an upsert whose estimated memory would take the database past its budget.
    fn admit_upsert(&self, points: &[crate::types::PointInput]) -> Result<()> {
        let Some(budget) = self.inner.budget.get() else { return Ok(()) };
        let n = points.len() as u64;
        let avg = &self.inner.payload_avg;
        let total: u64 = points.iter().map(|p| p.payload.as_ref().map_or(32, crate::payloads::heap_guess)).sum();
        if let Some(batch) = total.checked_div(n) {
            let old = avg.load(Ordering::Relaxed);
            avg.store(if old == 0 { batch } else { (old * 7 + batch) / 8 }, Ordering::Relaxed);
        }
        let est = crate::budget::estimate(&self.inner.config, self.row_count() + n, avg.load(Ordering::Relaxed));
        budget.admit(&self.inner.name, est.heap_bytes, "upsert")
    }

    /// What [`Collection::submit`] would log for `req`, without logging it: the operation (`None` when it would
    /// change nothing) and the applied sequence number it was resolved at. The cluster mode resolves a write on a
    /// replica this way and appends the operation to the shard's replicated log only if nothing was appended
    /// after `at_seq` meanwhile (compare-and-set), so the operation is what the write means at that position.
    pub fn plan_write(&self, req: WriteRequest) -> Result<PlannedWrite> {
        req.check()?;
        self.check_open()?;
        let w = self.inner.writer.lock();
        self.check_open()?;
        let at_seq = w.next_seq.saturating_sub(1);
        let now = self.now_ms();
        let st = self.inner.state.read();
        let op = crate::write::resolve(&self.inner.config, &st, now, req)?;
        Ok(PlannedWrite { op, at_seq })
    }

    // ---------------------------------------------------------------- reads

    /// Highest applied operation.
    pub fn applied_seq(&self) -> u64 {
        *self.inner.applied.lock()
    }

    /// Highest sequence number given to a write so far (applied or about to be). On a collection written only
    /// through this handle, a `seq` above this can never be applied unless another write arrives.
    pub fn assigned_seq(&self) -> u64 {
        self.inner.writer.lock().next_seq.saturating_sub(1)
    }

    /// Waits until operation `seq` is applied, for at most `timeout`.
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut a = self.inner.applied.lock();
        while *a < seq {
            if self.inner.applied_cv.wait_until(&mut a, deadline).timed_out() && *a < seq {
                return Err(Error::NotYetApplied { wanted: seq, applied: *a, waited_ms: timeout.as_millis() as u64 });
            }
        }
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<Segment>> {
        self.inner.state.read().all()
    }

    /// The points with these ids that exist (in the order asked, missing ones left out).
    pub fn get(&self, ids: &[PointId], with_payload: bool, with_vector: bool) -> Result<Vec<Record>> {
        self.check_open()?;
        let segs = self.snapshot();
        let now = self.now_ms();
        let mut out = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(*id) {
                continue;
            }
            for s in segs.iter().rev() {
                let d = s.data.read();
                if let Some(row) = d.live_row(id, now) {
                    out.push(record(&d, row, with_payload, with_vector));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The nearest points to a vector; see [`SearchRequest`].
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        self.check_open()?;
        let cfg = &self.inner.config;
        if req.limit == 0 || req.limit.saturating_add(req.offset) > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("1..={MAX_LIMIT} (with offset)"), req.limit));
        }
        // A sparse vector's name: exact dot products through its inverted index; else a dense vector.
        let sparse = match req.using.as_deref().and_then(|u| cfg.sparse_of(u)) {
            Some(si) => {
                let Some(q) = &req.sparse else {
                    return Err(Error::invalid(
                        "query",
                        "a sparse vector {\"indices\": [...], \"values\": [...]} for a sparse vector",
                        "a dense vector",
                    ));
                };
                Some((
                    si,
                    q.prepared("query")
                        .map_err(|(field, reason)| Error::invalid(field, "a valid sparse vector", reason))?,
                ))
            }
            None if req.sparse.is_some() => {
                return Err(Error::invalid(
                    "using",
                    format!(
                        "one of the collection's sparse vectors {:?} for a sparse query",
                        cfg.sparse_vectors.keys().collect::<Vec<_>>()
                    ),
                    format!("{:?}", req.using.as_deref().unwrap_or("")),
                ));
            }
            None if !cfg.has_dense() => {
                return Err(Error::invalid(
                    "using",
                    format!(
                        "one of the collection's sparse vectors {:?} (it has no dense vector)",
                        cfg.sparse_vectors.keys().collect::<Vec<_>>()
                    ),
                    format!("{:?}", req.using.as_deref().unwrap_or("")),
                ));
            }
            None => None,
        };
        let (space_i, metric, dimension) = match &sparse {
            Some(_) => (0, quiver_index::Metric::Dot, 0),
            None => {
                let i = cfg.space_of(req.using.as_deref(), "using")?;
                let s = cfg.space(i).ok_or_else(|| Error::invalid("using", "one of the collection's vectors", i))?;
                (i, s.metric, s.dimension)
            }
        };
        let query = match &sparse {
            Some(_) => Vec::new(),
            None => prepare_query(metric, dimension, &req.vector).map_err(|e| match e {
                quiver_index::Error::DimensionMismatch { expected, got } => {
                    Error::invalid("vector", format!("{expected} numbers"), format!("{got} numbers"))
                }
                other => Error::invalid("vector", "finite numbers (non-zero under cosine)", other),
            })?,
        };
        if let Some(f) = &req.filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        req.params.validate().map_err(|e| match e {
            quiver_index::Error::InvalidParameter { name, expected, got } => {
                Error::invalid(format!("params.{name}"), expected, got)
            }
            other => Error::invalid("params", "valid search parameters", other),
        })?;
        if let Some(seq) = req.min_seq {
            self.wait_for(seq, Duration::from_secs(10))?;
        }
        let applied_seq = self.applied_seq();
        let segs = self.snapshot();
        let now = self.now_ms();
        // The result cache, when the collection has one (no lock taken otherwise).
        let cache_key = if cfg.query_cache_entries > 0 { crate::cache::QueryCache::key(req) } else { None };
        if let Some(key) = &cache_key
            && let Some(hit) = self.inner.cache.lock().get(key, applied_seq, now)
        {
            return Ok(hit);
        }
        let k = req.limit + req.offset;
        let exact_below = cfg.optimizer.exact_below;
        // A target recall (the query's, else the collection's) unless the query names a width or asks for exact.
        let mut params = std::borrow::Cow::Borrowed(&req.params);
        let named_width = req.params.ef.is_some() || req.params.nprobe.is_some() || req.params.exact;
        let target = match (&sparse, named_width) {
            (None, false) => req.params.target_recall.or(cfg.target_recall),
            _ => None,
        };
        if target.is_some() {
            self.inner.recall.want();
        }
        if target.is_some_and(|t| t >= 1.0) {
            params.to_mut().exact = true;
        }
        let target = target.filter(|&t| t < 1.0);
        if sparse.is_none() && !params.exact && self.inner.recall.wanted() {
            self.inner.recall.record(space_i, &query);
        }
        // The idf modifier: each query weight times its term's inverse document frequency over the live points.
        let sparse = match sparse {
            Some((si, mut q))
                if cfg.sparse_vectors.values().nth(si).map(|c| c.modifier) == Some(SparseModifier::Idf) =>
            {
                let (mut docs, mut df) = (0u64, vec![0u64; q.indices.len()]);
                for s in &segs {
                    let d = s.data.read();
                    let (n, counts) = d.sparse[si].frequencies(&q.indices, &d.excluded(now));
                    docs += n;
                    df.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
                }
                for (v, n) in q.values.iter_mut().zip(df) {
                    *v *= crate::sparse::idf(docs, n);
                }
                Some((si, q))
            }
            other => other,
        };
        let run = |s: &Arc<Segment>, k: usize, params: &quiver_index::SearchParams| {
            let calibration = target.and_then(|_| self.inner.recall.calibration(s.id, space_i));
            let target = target.map(|t| (t, calibration.as_deref()));
            let d = s.data.read();
            match &sparse {
                Some((si, q)) => Ok(d.search_sparse((s.id, s.tier), *si, q, k, req.filter.as_ref(), now)),
                None => d.search(
                    (s.id, s.tier),
                    space_i,
                    metric,
                    &query,
                    k,
                    req.filter.as_ref(),
                    params,
                    exact_below,
                    now,
                    target,
                ),
            }
        };
        // Empty segments (a fresh growing one) are skipped; several non-empty ones are searched in parallel.
        let segs: Vec<Arc<Segment>> = segs.into_iter().filter(|s| s.data.read().len() > 0).collect();
        let results: Vec<_> = if segs.len() > 1 {
            segs.par_iter().map(|s| run(s, k, &params)).collect::<Result<Vec<_>>>()?
        } else {
            segs.iter().map(|s| run(s, k, &params)).collect::<Result<Vec<_>>>()?
        };
        let mut per_segment = Vec::with_capacity(results.len());
        let mut plans = Vec::with_capacity(results.len());
        for (hits, plan) in results {
            per_segment.push(hits);
            plans.push(plan);
        }
        let keep = |score: f32| match req.score_threshold {
            Some(t) if metric.higher_score_is_closer() => score >= t,
            Some(t) => score <= t,
            None => true,
        };
        let page =
            Page { offset: req.offset, limit: req.limit, with_payload: req.with_payload, with_vector: req.with_vector };
        let hits = merge_hits(&segs, per_segment, page, |d| metric.score(d), keep);
        let explain = req.explain.then(|| {
            let matched = req.filter.as_ref().map(|_| plans.iter().filter_map(|p| p.matched).sum());
            let mut unindexed: Vec<String> = plans.iter().flat_map(|p| p.unindexed_keys.clone()).collect();
            unindexed.sort();
            unindexed.dedup();
            Explain { segments: plans, matched, unindexed_keys: unindexed, applied_seq }
        });
        let response = SearchResponse { hits, explain };
        if let Some(key) = cache_key {
            // True until a write (the sequence number moves) or the next point expiry, whichever comes first.
            let next_expiry = segs
                .iter()
                .filter_map(|s| s.data.read().ttl.range(now + 1..).next().map(|(t, _)| *t))
                .min()
                .unwrap_or(u64::MAX);
            self.inner.cache.lock().put(key, applied_seq, next_expiry, response.clone());
        }
        Ok(response)
    }

    /// The result cache's figures (`None` when the collection has none).
    pub fn query_cache(&self) -> Option<crate::cache::QueryCacheInfo> {
        let info = self.inner.cache.lock().info();
        (info.capacity > 0).then_some(info)
    }

    /// Points the filter admits (all points without one), by id, `limit` at a time from `offset` (inclusive).
    pub fn scroll(
        &self,
        filter: Option<&Filter>,
        offset: Option<PointId>,
        limit: usize,
        with_payload: bool,
        with_vector: bool,
    ) -> Result<ScrollPage> {
        self.check_open()?;
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("1..={MAX_LIMIT}"), limit));
        }
        if let Some(f) = filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        let segs = self.snapshot();
        let now = self.now_ms();
        let datas: Vec<_> = segs.iter().map(|s| s.data.read()).collect();
        // A k-way merge of the segments' rows in id order from `offset`, skipping rows the filter does not admit:
        // a page costs its own rows plus a binary search per segment, not a sort of the collection.
        let mut cursors: Vec<(roaring::RoaringBitmap, &[u32], usize)> = datas
            .iter()
            .map(|d| {
                let order = d.id_order();
                let start = offset.map_or(0, |o| order.partition_point(|&r| d.ids[r as usize] < o));
                (admitted_rows(d, filter, now), order, start)
            })
            .collect();
        let next = |si: usize, cursors: &mut Vec<(roaring::RoaringBitmap, &[u32], usize)>| -> Option<(PointId, u32)> {
            let (admitted, order, pos) = &mut cursors[si];
            while let Some(&row) = order.get(*pos) {
                *pos += 1;
                if admitted.contains(row) {
                    return Some((datas[si].ids[row as usize], row));
                }
            }
            None
        };
        // Min-heap on (id, newest segment first).
        let mut heap = std::collections::BinaryHeap::new();
        for si in 0..datas.len() {
            if let Some((id, row)) = next(si, &mut cursors) {
                heap.push(std::cmp::Reverse((id, std::cmp::Reverse(si), row)));
            }
        }
        let mut points = Vec::with_capacity(limit.min(1024));
        let mut next_offset = None;
        let mut last: Option<PointId> = None;
        while let Some(std::cmp::Reverse((id, std::cmp::Reverse(si), row))) = heap.pop() {
            if let Some((id, row)) = next(si, &mut cursors) {
                heap.push(std::cmp::Reverse((id, std::cmp::Reverse(si), row)));
            }
            if last == Some(id) {
                continue; // an older copy of a point already taken from a newer segment
            }
            last = Some(id);
            if points.len() == limit {
                next_offset = Some(id);
                break;
            }
            points.push(record(&datas[si], row, with_payload, with_vector));
        }
        Ok(ScrollPage { points, next_offset })
    }

    /// How many points the filter admits (all live points without one).
    pub fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        self.check_open()?;
        if let Some(f) = filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        let now = self.now_ms();
        Ok(self.snapshot().iter().map(|s| admitted_rows(&s.data.read(), filter, now).len()).sum())
    }

    /// Points, segments, indexes, memory and disk use, optimizer state.
    pub fn info(&self) -> Result<CollectionInfo> {
        let now = self.now_ms();
        let (segs, fields) = {
            let st = self.inner.state.read();
            (st.all(), st.fields.clone())
        };
        let mut infos = Vec::with_capacity(segs.len());
        let (mut points, mut memory, mut mapped, mut disk) = (0u64, 0u64, 0u64, 0u64);
        let (mut recall_sum, mut recall_rows, mut calibrated) = (0.0f64, 0u64, false);
        let target = self.inner.config.target_recall;
        for s in &segs {
            let d = s.data.read();
            let live = d.live_count(now);
            points += live;
            // Space 0's estimated recall@10: at the collection's target, else at the index's default width.
            let recall = self.inner.recall.calibration(s.id, 0).map(|c| {
                let (width, estimated) = match target {
                    Some(t) => c.width(t, 1.0, crate::recall::CALIBRATION_K),
                    None => (c.default_width, c.at_default()),
                };
                crate::types::RecallEstimate { param: c.param.to_owned(), width, estimated, queries: c.queries }
            });
            // The collection's estimate weighs segments by live rows; a segment scanned exactly counts as 1, one
            // not calibrated yet is left out.
            match (&recall, d.space_index(0)) {
                (Some(r), _) => {
                    calibrated = true;
                    recall_sum += r.estimated * live as f64;
                    recall_rows += live;
                }
                (None, None) => {
                    recall_sum += live as f64;
                    recall_rows += live;
                }
                (None, Some(_)) => {}
            }
            memory += d.memory_bytes() as u64;
            mapped += d.mapped_bytes() as u64;
            disk += d.file_bytes;
            infos.push(SegmentInfo {
                id: s.id,
                tier: s.tier,
                rows: u64::from(d.len()),
                live,
                deleted: d.deleted.len(),
                index: d.index.as_ref().map_or_else(|| "exact".to_owned(), |i| i.as_index().kind().to_string()),
                index_note: d.index_note.clone(),
                memory_bytes: d.memory_bytes() as u64,
                mapped_bytes: d.mapped_bytes() as u64,
                disk_bytes: d.file_bytes,
                recall,
                vectors: if d.layout.named {
                    (0..d.layout.spaces.len())
                        .map(|sp| {
                            let index = d
                                .space_index(sp)
                                .map_or_else(|| "exact".to_owned(), |i| i.as_index().kind().to_string());
                            let index_note =
                                if sp == 0 { d.index_note.clone() } else { d.more[sp - 1].index_note.clone() };
                            (d.layout.spaces[sp].0.clone(), crate::types::VectorIndexInfo { index, index_note })
                        })
                        .collect()
                } else {
                    Default::default()
                },
            });
        }
        for f in self.inner.dir.list()? {
            if f.starts_with("wal-") || f.starts_with("MANIFEST-") {
                disk += self.inner.dir.file_len(&f)?;
            }
        }
        let (feed_oldest, feed_bytes) = {
            let f = self.inner.feed.lock();
            (f.oldest(), f.bytes())
        };
        let mut optimizer = self.inner.optimizer.lock().clone();
        optimizer.background = self.inner.config.optimizer.interval_ms > 0;
        Ok(CollectionInfo {
            name: self.inner.name.clone(),
            config: self.inner.config.clone(),
            points,
            segments: infos,
            payload_indexes: fields,
            memory_bytes: memory,
            mapped_bytes: mapped,
            estimated_memory: self.memory_estimate(),
            disk_bytes: disk,
            applied_seq: self.applied_seq(),
            wal_checkpoint: *self.inner.checkpoint.lock(),
            change_feed_oldest: feed_oldest,
            change_feed_bytes: feed_bytes,
            optimizer,
            query_cache: self.query_cache(),
            estimated_recall: (calibrated && recall_rows > 0).then(|| recall_sum / recall_rows as f64),
        })
    }

    /// Makes every applied operation durable (a WAL fsync), whatever the durability mode.
    pub fn flush(&self) -> Result<()> {
        Ok(self.inner.wal.sync()?)
    }

    /// Stops accepting calls and syncs the WAL; the first close calls the change-feed listeners with
    /// [`CLOSED_SEQ`].
    pub(crate) fn close(&self) -> Result<()> {
        let first = !self.inner.closed.swap(true, Ordering::AcqRel);
        // Wait for a running optimizer job (it stops before the next one) and for writers in flight.
        let res = {
            let _j = self.inner.jobs.lock();
            let _w = self.inner.writer.lock();
            self.flush()
        };
        if first {
            self.notify(CLOSED_SEQ);
        }
        res
    }
}

pub(crate) fn check_payload_size(id: &PointId, payload: &Payload, limit: usize) -> Result<()> {
    let size = serde_json::to_vec(payload).map_or(usize::MAX, |b| b.len());
    if size > limit {
        return Err(Error::InvalidPoint {
            point: id.to_string(),
            field: "payload".into(),
            reason: format!("expected at most {limit} bytes of JSON, got {size}"),
        });
    }
    Ok(())
}

/// Which hits of a merged list to return, and what to attach.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub offset: usize,
    pub limit: usize,
    pub with_payload: bool,
    pub with_vector: bool,
}

/// The one merge of per-segment top-k lists (`per_segment[i]` holds rows of `segs[i]`): hits in (distance, id)
/// order, one per point id (an in-flight upsert can show a point in two segments), the page's `offset` skipped,
/// at most `limit`, ending at the first whose score (`score` of its distance) `keep` refuses.
pub(crate) fn merge_hits(
    segs: &[Arc<Segment>],
    per_segment: Vec<Vec<Neighbor>>,
    page: Page,
    score: impl Fn(f32) -> f32,
    keep: impl Fn(f32) -> bool,
) -> Vec<ScoredPoint> {
    let mut keyed: Vec<(f32, PointId, usize, u32)> = Vec::new();
    for (si, hits) in per_segment.into_iter().enumerate() {
        let d = segs[si].data.read();
        keyed.extend(hits.into_iter().map(|n| (n.distance, d.ids[n.id as usize], si, n.id as u32)));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(page.limit.min(keyed.len()));
    for (dist, id, si, row) in keyed {
        if !seen.insert(id) || seen.len() <= page.offset {
            continue;
        }
        let score = score(dist);
        if !keep(score) {
            break;
        }
        let d = segs[si].data.read();
        let r = record(&d, row, page.with_payload, page.with_vector);
        out.push(ScoredPoint { id, score, payload: r.payload, vector: r.vector, vectors: r.vectors, sparse: r.sparse });
        if out.len() == page.limit {
            break;
        }
    }
    out
}

/// Every live row `filter` admits as `(id, segment index, row)`, in id order, one per id (the newest segment's
/// when several hold it).
pub(crate) fn live_rows_by_id(segs: &[Arc<Segment>], filter: Option<&Filter>, now: u64) -> Vec<(PointId, usize, u32)> {
    let mut rows: Vec<(PointId, usize, u32)> = Vec::new();
    for (si, s) in segs.iter().enumerate() {
        let d = s.data.read();
        rows.extend(admitted_rows(&d, filter, now).into_iter().map(|row| (d.ids[row as usize], si, row)));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    rows.dedup_by(|a, b| a.0 == b.0);
    rows
}

pub(crate) fn record(d: &SegmentData, row: u32, with_payload: bool, with_vector: bool) -> Record {
    Record {
        id: d.ids[row as usize],
        payload: with_payload
            .then(|| d.payloads.get(row).map(crate::payloads::PayloadRef::into_owned).unwrap_or_default()),
        vector: (with_vector && !d.layout.named && d.layout.dense).then(|| d.vector(row as usize).to_vec()),
        vectors: if with_vector { d.named_vectors(row) } else { None },
        sparse: if with_vector { d.sparse_vectors(row) } else { None },
    }
}

/// Live, unexpired rows of `d` that `filter` admits.
fn admitted_rows(d: &SegmentData, filter: Option<&Filter>, now: u64) -> roaring::RoaringBitmap {
    let mut rows = match filter {
        Some(f) => d.payload_index.evaluate(f, d).rows,
        None => {
            let mut all = roaring::RoaringBitmap::new();
            all.insert_range(0..d.len());
            all
        }
    };
    rows -= &*d.excluded(now);
    rows
}

pub(crate) fn matching_ids(st: &State, filter: &Filter, now: u64) -> Result<Vec<PointId>> {
    let mut ids = Vec::new();
    for s in st.all() {
        let d = s.data.read();
        ids.extend(admitted_rows(&d, Some(filter), now).iter().map(|r| d.ids[r as usize]));
    }
    Ok(ids)
}

/// The live version of `id`, newest segment first.
pub(crate) fn find_live(st: &State, id: &PointId, now: u64) -> Option<PointWrite> {
    st.all().iter().rev().find_map(|s| {
        let d = s.data.read();
        d.live_row(id, now).map(|r| d.point(r))
    })
}

/// Applies one operation to the in-memory state. Idempotent: applying an operation whose effects are already
/// present (replay after a checkpoint) leaves the same state.
pub(crate) fn apply(state: &RwLock<State>, config: &CollectionConfig, op: &Operation, now: u64) -> Result<()> {
    match op {
        Operation::Upsert(points) => {
            let st = state.read();
            let mut g = st.growing.data.write();
            for p in points {
                crate::write::check_write(config, p, false)?;
                // Append first, then retire the old row: a concurrent reader may see both (search dedups by
                // id), never neither.
                g.append(p)?;
                for s in st.sealed.iter().chain(st.frozen.iter()) {
                    retire(s, &p.id);
                }
            }
            let need_since = st.growing_since_ms.is_none();
            st.growing_last_ms.store(now, Ordering::Relaxed);
            drop(g);
            drop(st);
            if need_since {
                let mut st = state.write();
                if st.growing_since_ms.is_none() {
                    st.growing_since_ms = Some(now);
                }
            }
        }
        Operation::Delete(ids) => {
            let st = state.read();
            for s in st.all() {
                for id in ids {
                    retire(&s, id);
                }
            }
        }
        Operation::CreateFieldIndex { key, ty } => {
            let mut st = state.write();
            st.fields.retain(|(k, _)| k != key);
            st.fields.push((key.clone(), *ty));
            for s in st.all() {
                s.data.write().add_field(key, *ty);
            }
        }
        Operation::DropFieldIndex { key } => {
            let mut st = state.write();
            st.fields.retain(|(k, _)| k != key);
            for s in st.all() {
                s.data.write().payload_index.drop_field(key);
            }
        }
    }
    Ok(())
}

/// Marks the row of `id` in `s` deleted, if it has a live one. Checks under the read lock first, so segments that
/// do not hold the id never wait for the searches running on them.
fn retire(s: &Segment, id: &PointId) {
    let live = {
        let d = s.data.read();
        d.row_of_id(id).filter(|r| !d.deleted.contains(*r))
    };
    if let Some(row) = live {
        s.data.write().deleted.insert(row);
    }
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".qseg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The engine's part of a manifest: next segment id, indexed fields, and per segment its tier and deletions.
#[derive(Debug)]
pub(crate) struct ManifestMeta {
    pub next_segment_id: u64,
    pub fields: Vec<(String, FieldType)>,
    pub segments: Vec<(u64, Tier, roaring::RoaringBitmap)>,
}

pub(crate) fn encode_meta(m: &ManifestMeta) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(MANIFEST_META_VERSION);
    w.u64(m.next_segment_id);
    w.u64(m.fields.len() as u64);
    for (k, t) in &m.fields {
        w.str(k);
        write_field_type(&mut w, *t);
    }
    w.u64(m.segments.len() as u64);
    for (id, tier, deleted) in &m.segments {
        w.u64(*id);
        w.u8(tier.code());
        w.bitmap(deleted);
    }
    w.buf
}

pub(crate) fn decode_meta(b: &[u8], file: &std::path::Path) -> Result<ManifestMeta> {
    let mut r = Reader::new(b, file, 0);
    let v = r.u8("manifest metadata version")?;
    if v != MANIFEST_META_VERSION {
        return Err(r.corrupt(format!("manifest metadata version {v}, this build reads {MANIFEST_META_VERSION}")));
    }
    let next_segment_id = r.u64("next segment id")?;
    let nf = r.len(9, "field count")?;
    let mut fields = Vec::with_capacity(nf);
    for _ in 0..nf {
        let k = r.string("field key")?;
        fields.push((k, read_field_type(&mut r)?));
    }
    let ns = r.len(17, "segment count")?;
    let mut segments = Vec::with_capacity(ns);
    for _ in 0..ns {
        let id = r.u64("segment id")?;
        let tier = Tier::from_code(r.u8("tier")?).ok_or_else(|| r.corrupt("unknown tier"))?;
        segments.push((id, tier, r.bitmap("deleted rows")?));
    }
    if !r.is_empty() {
        return Err(r.corrupt("trailing bytes"));
    }
    Ok(ManifestMeta { next_segment_id, fields, segments })
}
