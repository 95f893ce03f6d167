//! The optimizer: background jobs that keep a collection fast and small, each crash-safe the same way.
//!
//! Jobs, in priority order (one at a time per collection):
//! 1. **purge** — points whose TTL passed are deleted through the ordinary write path (a logged operation; reads
//!    already hid them from the moment they expired);
//! 2. **seal** — the growing segment, once it holds `seal_points` points or its first write is `seal_age_secs`
//!    old, is frozen (a fresh growing segment takes writes) and rewritten as a sealed segment with the index;
//! 3. **migrate** — with a tiering policy, hot segments whose newest point is older than `hot_age_secs` are
//!    rewritten together as one cold segment (the cold index, IVF-PQ by default);
//! 4. **vacuum** — a sealed segment with at least `vacuum_deleted_ratio` of its rows deleted or expired is
//!    rewritten without them;
//! 5. **merge** — sealed segments of one tier with fewer than `merge_below_points` live points are rewritten as
//!    one; and while a tier holds more than `max_segments` segments (default: one per core), its two smallest are.
//!
//! Every job is a *rewrite*: snapshot the live rows of its inputs (short read locks), build the new segment and
//! write its file with no lock held (readers and writers go on), then swap it in under the writer lock, carrying
//! over deletions that happened during the build, and commit the manifest (segments, deletions, WAL checkpoint).
//! Only after the commit are the input files removed and the WAL truncated. A crash before the commit leaves the
//! old manifest and an orphan file (removed at open); after it, the new state.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::RwLock;
use quiver_storage::Manifest;

use crate::collection::{Collection, ManifestMeta, encode_meta};
use crate::error::Result;
use crate::id::PointId;
use crate::segment::{SealedRows, Segment, SegmentData, Tier, write_sealed};
use crate::types::Selector;

/// One unit of optimizer work.
#[derive(Debug)]
enum Job {
    Purge(Vec<PointId>),
    Seal,
    Rewrite { inputs: Vec<Arc<Segment>>, tier: Tier, what: &'static str },
}

impl Collection {
    /// Runs optimizer jobs until none is due; returns how many ran. The background thread calls this every
    /// `optimizer.interval_ms`; tests and tools call it to converge on demand.
    pub fn optimize(&self) -> Result<usize> {
        let _jobs = self.inner.jobs.lock();
        let mut ran = 0;
        while let Some(job) = self.next_job() {
            if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let name = match &job {
                Job::Purge(_) => "purge",
                Job::Seal => "seal",
                Job::Rewrite { what, .. } => what,
            };
            self.inner.optimizer.lock().running = Some(name.to_owned());
            let res = self.run(job);
            let mut o = self.inner.optimizer.lock();
            o.running = None;
            match res {
                Ok(()) => o.last_error = None,
                Err(e) => {
                    o.last_error = Some(format!("{name}: {e}"));
                    return Err(e);
                }
            }
            ran += 1;
        }
        Ok(ran)
    }

    /// Seals the growing segment now, whatever its size (no-op when empty). Returns whether it sealed.
    /// A closed collection answers [`crate::Error::Closed`].
    pub fn seal(&self) -> Result<bool> {
        let _jobs = self.inner.jobs.lock();
        // Under the job lock: `close` takes it too, so no job starts on a closed collection (whose directory may
        // already belong to another one).
        self.check_open()?;
        let st = self.inner.state.read();
        if st.growing.data.read().len() == 0 && st.frozen.is_none() {
            return Ok(false);
        }
        drop(st);
        self.run(Job::Seal)?;
        Ok(true)
    }

    fn next_job(&self) -> Option<Job> {
        let cfg = &self.inner.config.optimizer;
        let now = self.now_ms();
        let st = self.inner.state.read();
        // 1. expired points
        let mut expired = Vec::new();
        for s in st.all() {
            let d = s.data.read();
            for rows in d.ttl.range(..=now).map(|(_, r)| r) {
                expired.extend(rows.iter().filter(|r| !d.deleted.contains(**r)).map(|r| d.ids[*r as usize]));
            }
        }
        if !expired.is_empty() {
            return Some(Job::Purge(expired));
        }
        // 2. seal
        let g = st.growing.data.read().len() as usize;
        let old = cfg.seal_age_secs > 0
            && st.growing_since_ms.is_some_and(|t| now.saturating_sub(t) >= cfg.seal_age_secs * 1000);
        let idle = cfg.seal_idle_secs > 0
            && g > cfg.exact_below
            && now.saturating_sub(st.growing_last_ms.load(Ordering::Relaxed)) >= cfg.seal_idle_secs * 1000;
        if g >= cfg.seal_points || (g > 0 && old) || idle || st.frozen.is_some() {
            return Some(Job::Seal);
        }
        // 3. migrate to the cold tier
        if let Some(t) = &self.inner.config.tiering {
            let cutoff = now.saturating_sub(t.hot_age_secs.saturating_mul(1000));
            let aged: Vec<Arc<Segment>> = st
                .sealed
                .iter()
                .filter(|s| s.tier == Tier::Hot && s.data.read().created.iter().all(|&c| c < cutoff))
                .cloned()
                .collect();
            if !aged.is_empty() {
                return Some(Job::Rewrite { inputs: aged, tier: Tier::Cold, what: "migrate" });
            }
        }
        // 4. vacuum
        for s in &st.sealed {
            let d = s.data.read();
            let rows = f64::from(d.len().max(1));
            let gone = (u64::from(d.len()) - d.live_count(now)) as f64;
            if d.len() > 0 && gone / rows >= cfg.vacuum_deleted_ratio {
                return Some(Job::Rewrite { inputs: vec![s.clone()], tier: s.tier, what: "vacuum" });
            }
        }
        // 5. merge small segments of a tier
        for tier in [Tier::Hot, Tier::Cold] {
            let mut small: Vec<(u64, Arc<Segment>)> = st
                .sealed
                .iter()
                .filter(|s| s.tier == tier)
                .map(|s| (s.data.read().live_count(now), s.clone()))
                .filter(|(live, _)| (*live as usize) < cfg.merge_below_points)
                .collect();
            if small.len() >= 2 {
                small.sort_by_key(|(live, _)| *live);
                let mut total = 0u64;
                let inputs: Vec<Arc<Segment>> = small
                    .into_iter()
                    .take_while(|(live, _)| {
                        total += live;
                        total as usize <= cfg.seal_points.max(cfg.merge_below_points) * 2
                    })
                    .map(|(_, s)| s)
                    .collect();
                if inputs.len() >= 2 {
                    return Some(Job::Rewrite { inputs, tier, what: "merge" });
                }
            }
        }
        // 6. too many segments in a tier: merge its two smallest (segments are searched in parallel, one per
        //    core, so about one segment per core keeps a search as fast as over a single segment)
        let max = cfg.max_segments_per_tier();
        for tier in [Tier::Hot, Tier::Cold] {
            let mut of_tier: Vec<(u64, Arc<Segment>)> = st
                .sealed
                .iter()
                .filter(|s| s.tier == tier)
                .map(|s| (s.data.read().live_count(now), s.clone()))
                .collect();
            if of_tier.len() > max {
                of_tier.sort_by_key(|(live, s)| (*live, s.id));
                let inputs = of_tier.into_iter().take(2).map(|(_, s)| s).collect();
                return Some(Job::Rewrite { inputs, tier, what: "merge" });
            }
        }
        None
    }

    fn run(&self, job: Job) -> Result<()> {
        match job {
            Job::Purge(ids) => {
                let n = ids.len() as u64;
                self.delete(Selector::Ids(ids))?;
                self.inner.optimizer.lock().expired_purged += n;
                Ok(())
            }
            Job::Seal => {
                // A seal that failed part-way (a full disk) left its frozen segment searchable but unwritten:
                // write that one first. Freezing the growing segment over it would drop it from memory and move
                // the WAL checkpoint past its operations.
                let left = self.inner.state.read().frozen.clone();
                if let Some(frozen) = left {
                    self.rewrite(vec![frozen], Tier::Hot)?;
                    self.inner.optimizer.lock().sealed += 1;
                }
                let frozen = {
                    let _w = self.inner.writer.lock();
                    let applied = self.applied_seq();
                    let mut st = self.inner.state.write();
                    if st.growing.data.read().len() == 0 {
                        return Ok(());
                    }
                    let id = st.next_segment_id;
                    st.next_segment_id += 1;
                    let fresh = Arc::new(Segment {
                        id,
                        tier: Tier::Growing,
                        data: RwLock::new(SegmentData::empty(&self.inner.layout, &st.fields)?),
                    });
                    let old = std::mem::replace(&mut st.growing, fresh);
                    st.frozen = Some(old.clone());
                    st.pending_base_seq = Some(applied);
                    st.growing_since_ms = None;
                    old
                };
                self.rewrite(vec![frozen], Tier::Hot)?;
                self.inner.optimizer.lock().sealed += 1;
                Ok(())
            }
            Job::Rewrite { inputs, tier, what } => {
                self.admit_rewrite(&inputs, tier, what)?;
                self.rewrite(inputs, tier)?;
                let mut o = self.inner.optimizer.lock();
                match what {
                    "migrate" => o.migrated += 1,
                    "vacuum" => o.vacuumed += 1,
                    _ => o.merged += 1,
                }
                Ok(())
            }
        }
    }

    /// The index of dense vector `space` in a segment of `tier`: a cold segment's every dense vector takes the
    /// tiering policy's cold index; otherwise each vector its own.
    fn index_config(&self, tier: Tier, space: usize) -> &crate::config::IndexConfig {
        let cfg = &self.inner.config;
        match (tier, &cfg.tiering) {
            (Tier::Cold, Some(t)) => &t.cold_index,
            _ => cfg.space(space).map_or(&cfg.index, |s| s.index),
        }
    }

    /// Refuses a merge, vacuum or migration whose build would take the database past its memory budget: the
    /// build holds the new index beside everything the collection already holds (the inputs' vectors are streamed
    /// to a scratch file and read in place, not copied to the heap). The job is retried at the next run.
    fn admit_rewrite(&self, inputs: &[Arc<Segment>], tier: Tier, what: &str) -> Result<()> {
        let Some(budget) = self.inner.budget.get() else { return Ok(()) };
        let cfg = &self.inner.config;
        let now = self.now_ms();
        let rows: u64 = inputs.iter().map(|s| s.data.read().live_count(now)).sum();
        let per_row = cfg
            .spaces()
            .iter()
            .enumerate()
            .map(|(s, space)| crate::budget::index_bytes_per_point(self.index_config(tier, s), space.dimension as u64))
            .sum::<u64>();
        let need = self.memory_estimate().heap_bytes.saturating_add(rows.saturating_mul(per_row));
        budget.check(&self.inner.name, need, &format!("{what} of {} segments ({rows} points)", inputs.len()))
    }

    /// Rewrites `inputs` (sealed segments, or the frozen growing one) into one new segment of `tier`.
    fn rewrite(&self, inputs: Vec<Arc<Segment>>, tier: Tier) -> Result<()> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let now = self.now_ms();
        // 1. Snapshot the live rows.
        let (new_id, fields) = {
            let mut st = inner.state.write();
            let id = st.next_segment_id;
            st.next_segment_id += 1;
            (id, st.fields.clone())
        };
        let mut rows = SealedRows::new(&inner.dir, new_id, &inner.layout)?;
        let mut origin: Vec<(usize, u32)> = Vec::new();
        for (i, s) in inputs.iter().enumerate() {
            let d = s.data.read();
            let excluded = d.excluded(now);
            for row in (0..d.len()).filter(|r| !excluded.contains(*r)) {
                d.copy_row(row, &mut rows)?;
                origin.push((i, row));
            }
        }
        // 2. Build and write the new segment, no lock held, then serve what the file holds, as a reopen would:
        //    vectors read in place, the build's copy freed.
        let mut builds = Vec::new();
        for (s, space) in cfg.spaces().iter().enumerate() {
            let index_cfg = self.index_config(tier, s);
            builds.push((space.metric, Some((index_cfg.kind, index_cfg.to_params()?))));
        }
        write_sealed(inner.dir.clone(), new_id, tier, rows, &builds)?;
        let (mut data, _) =
            SegmentData::read_file(inner.dir.as_ref(), new_id, Default::default(), &fields, &inner.layout)?;
        // 3. Swap it in under the writer lock: carry over deletions made during the build.
        let (manifest, checkpoint) = {
            let _w = inner.writer.lock();
            inner.wal.sync()?;
            let mut st = inner.state.write();
            for (new_row, (i, old_row)) in origin.iter().enumerate() {
                if inputs[*i].data.read().deleted.contains(*old_row) {
                    data.deleted.insert(new_row as u32);
                }
            }
            if st.fields != fields {
                data.payload_index = Default::default();
                for (k, t) in st.fields.clone() {
                    data.add_field(&k, t);
                }
            }
            let seg = Arc::new(Segment { id: new_id, tier, data: RwLock::new(data) });
            let input_ids: Vec<u64> = inputs.iter().map(|s| s.id).collect();
            st.sealed.retain(|s| !input_ids.contains(&s.id));
            if st.frozen.as_ref().is_some_and(|f| input_ids.contains(&f.id)) {
                st.frozen = None;
                if let Some(base) = st.pending_base_seq.take() {
                    st.growing_base_seq = base;
                }
            }
            if seg.data.read().len() > 0 {
                st.sealed.push(seg);
            }
            st.sealed.sort_by_key(|s| s.id);
            let meta = ManifestMeta {
                next_segment_id: st.next_segment_id.max(st.growing.id + 1),
                fields: st.fields.clone(),
                segments: st.sealed.iter().map(|s| (s.id, s.tier, s.data.read().deleted.clone())).collect(),
            };
            let checkpoint = st.growing_base_seq;
            let manifest = Manifest {
                wal_checkpoint: checkpoint,
                segments: st.sealed.iter().map(|s| s.id).collect(),
                user: encode_meta(&meta),
            };
            (manifest, checkpoint)
        };
        // 4. Commit, then drop what the new manifest no longer needs.
        inner.manifests.lock().commit(&manifest)?;
        *inner.checkpoint.lock() = checkpoint;
        let mut removed = false;
        for s in &inputs {
            let name = quiver_storage::segment::file_name(s.id);
            if inner.dir.exists(&name)? {
                inner.dir.remove(&name)?;
                removed = true;
            }
        }
        if !manifest.segments.contains(&new_id) {
            let name = quiver_storage::segment::file_name(new_id);
            if inner.dir.exists(&name)? {
                inner.dir.remove(&name)?;
                removed = true;
            }
        }
        if removed {
            inner.dir.sync_dir()?;
        }
        inner.wal.truncate_through(checkpoint)?;
        Ok(())
    }
}

/// Starts the background optimizer of `c` (when its interval is not zero). The thread holds only a weak
/// reference: it ends when the collection is closed or dropped.
pub(crate) fn spawn_background(c: &Collection) {
    let interval = c.inner.config.optimizer.interval_ms;
    if interval == 0 {
        return;
    }
    let weak = Arc::downgrade(&c.inner);
    let spawned = std::thread::Builder::new().name(format!("quiver-optimizer-{}", c.name())).spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(interval));
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            // Errors are recorded in the optimizer state (`info().optimizer.last_error`) and retried next tick.
            let c = Collection { inner };
            let _ = c.optimize();
            // Then measure the recall of segments that need it (only once someone asked for a target recall).
            c.calibrate_due();
        }
    });
    if let Err(e) = spawned {
        c.inner.optimizer.lock().last_error = Some(format!("background optimizer not started: {e}"));
    }
}
