//! The point store shared by the KD-tree, LSH and KD-LSH indexes: prepared vectors in rows, their ids, tombstones
//! for removed rows, the exact scan every approximate path falls back to, and the rebuild policy.
//!
//! Updates are tombstones plus periodic rebuild: `remove` marks the row dead (it is skipped by every search and
//! never returned); an upsert tombstones the old row and appends a new one. Once the rows changed since the last
//! build (appended or tombstoned) exceed `max(rows at build, REBUILD_MIN)`, the owning index rebuilds from the
//! live rows, so the structure stays balanced and dead rows cost at most a constant factor, amortised O(1)
//! rebuild work per change.

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::filter::IdFilter;
use crate::metric::Metric;
use crate::neighbor::{Neighbor, TopK};
use crate::vectors::{VectorSet, prepare_build, validate_vector};
use std::cell::RefCell;
use std::collections::HashMap;

/// Dimensions up to which distances are computed inline rather than through the kernel table.
const SMALL_DIM: usize = 16;

/// Changes below this never trigger a rebuild on their own.
pub(crate) const REBUILD_MIN: u64 = 256;

/// Rows, ids and tombstones. Row numbers are `u32`.
#[derive(Clone, Debug)]
pub(crate) struct Points {
    pub(crate) metric: Metric,
    pub(crate) vectors: VectorSet,
    pub(crate) ids: Vec<u64>,
    pub(crate) deleted: Vec<bool>,
    pub(crate) rows: HashMap<u64, u32>,
    pub(crate) n_deleted: usize,
    /// Rows at the last (re)build.
    pub(crate) built: u64,
    /// Rows appended or tombstoned since then.
    pub(crate) changes: u64,
}

impl Points {
    /// Validates ids and prepares the vectors (normalised for cosine, in parallel). Errors change nothing.
    pub(crate) fn build(metric: Metric, mut vectors: VectorSet, ids: Vec<u64>) -> Result<Self> {
        let rows = prepare_build(metric, &mut vectors, &ids, u32::MAX as usize)?;
        let n = ids.len();
        Ok(Self { metric, vectors, ids, deleted: vec![false; n], rows, n_deleted: 0, built: n as u64, changes: 0 })
    }

    pub(crate) fn dim(&self) -> usize {
        self.vectors.dim()
    }

    /// Live points.
    pub(crate) fn live(&self) -> usize {
        self.ids.len() - self.n_deleted
    }

    /// Rows including tombstones.
    pub(crate) fn n_rows(&self) -> usize {
        self.ids.len()
    }

    /// Validates and prepares a vector for insertion; nothing changes.
    pub(crate) fn prepare(&self, vector: &[f32]) -> Result<Vec<f32>> {
        validate_vector(vector, self.dim())?;
        if self.ids.len() >= u32::MAX as usize - 1 {
            return Err(Error::invalid("points", "fewer than 2^32 rows per index", self.ids.len()));
        }
        let mut v = vector.to_vec();
        self.metric.prepare(&mut v)?;
        Ok(v)
    }

    /// Appends a prepared vector for `id`, tombstoning the row it had; returns the new row.
    pub(crate) fn push(&mut self, id: u64, v: &[f32]) -> Result<u32> {
        let row = self.vectors.push(v)? as u32;
        if let Some(old) = self.rows.insert(id, row) {
            self.deleted[old as usize] = true;
            self.n_deleted += 1;
            self.changes += 1;
        }
        self.ids.push(id);
        self.deleted.push(false);
        self.changes += 1;
        Ok(row)
    }

    /// Tombstones `id`; returns its row if it was live.
    pub(crate) fn remove(&mut self, id: u64) -> Option<u32> {
        let row = self.rows.remove(&id)?;
        self.deleted[row as usize] = true;
        self.n_deleted += 1;
        self.changes += 1;
        Some(row)
    }

    /// Whether enough changed since the last build that the owner should rebuild.
    pub(crate) fn needs_rebuild(&self) -> bool {
        self.changes > self.built.max(REBUILD_MIN)
    }

    /// The live rows only, in row order, as a fresh store (the input of a rebuild).
    pub(crate) fn compacted(&self) -> Points {
        let live = self.live();
        let mut vectors = VectorSet::with_capacity(self.dim(), live).unwrap_or_else(|_| self.vectors.clone());
        vectors.truncate(0);
        let mut ids = Vec::with_capacity(live);
        let mut rows = HashMap::with_capacity(live);
        for (row, &id) in self.ids.iter().enumerate() {
            if !self.deleted[row] {
                // Rows already hold validated values, so the push cannot fail.
                if vectors.push(self.vectors.get(row)).is_ok() {
                    rows.insert(id, ids.len() as u32);
                    ids.push(id);
                }
            }
        }
        let n = ids.len();
        Points {
            metric: self.metric,
            vectors,
            ids,
            deleted: vec![false; n],
            rows,
            n_deleted: 0,
            built: n as u64,
            changes: 0,
        }
    }

    /// Live rows in order.
    pub(crate) fn live_rows(&self) -> Vec<u32> {
        (0..self.ids.len() as u32).filter(|&r| !self.deleted[r as usize]).collect()
    }

    /// Distance from a prepared query to `row`. Below [`SMALL_DIM`] components a plain loop beats the dispatched
    /// SIMD kernel (whose call and length checks then dominate).
    #[inline]
    pub(crate) fn distance(&self, q: &[f32], row: u32) -> f32 {
        self.distance_to(q, self.vectors.get(row as usize))
    }

    /// Distance from a prepared query to prepared coordinates `v` (a row's, wherever they are stored); the same
    /// arithmetic as [`Points::distance`].
    #[inline]
    pub(crate) fn distance_to(&self, q: &[f32], v: &[f32]) -> f32 {
        if q.len() <= SMALL_DIM {
            match self.metric {
                Metric::Euclidean => q.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum(),
                Metric::Dot => -q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>(),
                Metric::Cosine => 1.0 - q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>(),
            }
        } else {
            self.metric.distance(q, v)
        }
    }

    /// Offers `row` to `heap` if it is live, close enough and allowed by the filter.
    #[inline]
    pub(crate) fn offer(&self, q: &[f32], row: u32, heap: &mut TopK, filter: Option<&dyn IdFilter>) {
        if self.deleted[row as usize] {
            return;
        }
        let d = self.distance(q, row);
        let id = self.ids[row as usize];
        if d <= heap.threshold() && filter.is_none_or(|f| f.allows(id)) {
            heap.push(Neighbor::new(id, d));
        }
    }

    /// Offers `row`, already scored at distance `d`, as [`Points::offer`] would.
    #[inline]
    pub(crate) fn offer_scored(&self, row: u32, d: f32, heap: &mut TopK, filter: Option<&dyn IdFilter>) {
        if d <= heap.threshold() && !self.deleted[row as usize] {
            let id = self.ids[row as usize];
            if filter.is_none_or(|f| f.allows(id)) {
                heap.push(Neighbor::new(id, d));
            }
        }
    }

    /// Exact top-k over live points the filter allows.
    pub(crate) fn exact(&self, q: &[f32], k: usize, filter: Option<&dyn IdFilter>) -> Vec<Neighbor> {
        let mut heap = TopK::new(k);
        match filter.and_then(|f| f.ids()) {
            Some(set) if set.len() < self.ids.len() as u64 => {
                for id in set.iter() {
                    if let Some(&row) = self.rows.get(&id) {
                        heap.push(Neighbor::new(id, self.distance(q, row)));
                    }
                }
            }
            _ => {
                for row in 0..self.ids.len() as u32 {
                    self.offer(q, row, &mut heap, filter);
                }
            }
        }
        heap.into_sorted_vec()
    }

    /// How many live points `filter` admits (see [`crate::filter::estimate_matches`]).
    pub(crate) fn estimate_matches(&self, filter: &dyn IdFilter) -> usize {
        let id_at = |i: usize| (!self.deleted[i]).then(|| self.ids[i]);
        crate::filter::estimate_matches(filter, self.live(), self.ids.len(), id_at)
    }

    /// The search skeleton every index here shares: `exact` scans; a filter matching fewer than
    /// `sqrt(cost * live)` points is scanned exactly (cheaper than the structure); otherwise `approx` fills a
    /// top-k, and if it found fewer than `k` while more may match, the exact scan over the matching points
    /// answers instead, so the result always holds `min(k, matching live points)`.
    pub(crate) fn search(
        &self,
        q: &[f32],
        k: usize,
        exact: bool,
        cost: usize,
        filter: Option<&dyn IdFilter>,
        approx: impl FnOnce(&mut TopK),
    ) -> Vec<Neighbor> {
        let live = self.live();
        if k == 0 || live == 0 {
            return Vec::new();
        }
        if exact {
            return self.exact(q, k, filter);
        }
        if let Some(f) = filter {
            let matches = self.estimate_matches(f);
            if matches == 0 && f.cardinality().is_some() {
                return Vec::new();
            }
            if (matches as f64) <= (cost as f64 * live as f64).sqrt() {
                return self.exact(q, k, filter);
            }
        }
        let mut heap = TopK::new(k);
        approx(&mut heap);
        let found = heap.into_sorted_vec();
        if found.len() < k && found.len() < live {
            let exact = self.exact(q, k, filter);
            if exact.len() > found.len() {
                return exact;
            }
        }
        found
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        let map = self.rows.capacity() * (8 + 4 + 1) * 8 / 7;
        self.vectors.memory_bytes() + self.ids.capacity() * 8 + self.deleted.capacity() + map
    }

    /// Layout: rows n u64, rows at build u64, changes since u64, ids `n x u64`, tombstones `n x u8` (0 live,
    /// 1 removed), vectors `n x dim x f32` (prepared).
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.ids.len() as u64);
        w.u64(self.built);
        w.u64(self.changes);
        w.u64s(&self.ids);
        w.bytes(&self.deleted.iter().map(|&d| u8::from(d)).collect::<Vec<u8>>());
        w.f32s(self.vectors.as_slice());
    }

    pub(crate) fn byte_len(&self) -> usize {
        24 + self.ids.len() * 9 + self.vectors.as_slice().len() * 4
    }

    /// Reads what [`Points::write`] wrote, validating counts, flags, values and live-id uniqueness.
    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric, dim: usize) -> Result<Self> {
        let at = r.offset();
        let n = usize::try_from(r.u64()?).map_err(|_| r.corrupt(at, "row count too large"))?;
        if n >= u32::MAX as usize {
            return Err(r.corrupt(at, "row count out of range"));
        }
        let built = r.u64()?;
        let changes = r.u64()?;
        let ids = r.u64s(n)?;
        let at_del = r.offset();
        let flags = r.bytes(n)?;
        if let Some(i) = flags.iter().position(|&b| b > 1) {
            return Err(r.corrupt(at_del + i, "tombstone flag is neither 0 nor 1"));
        }
        let deleted: Vec<bool> = flags.iter().map(|&b| b == 1).collect();
        let at_vec = r.offset();
        let data = r.f32s(n.checked_mul(dim).ok_or_else(|| r.corrupt(at_vec, "count overflows"))?)?;
        let vectors = VectorSet::from_flat(dim, data).map_err(|e| r.corrupt(at_vec, e.to_string()))?;
        let mut rows = HashMap::with_capacity(n);
        let mut n_deleted = 0;
        for (row, &id) in ids.iter().enumerate() {
            if deleted[row] {
                n_deleted += 1;
            } else if rows.insert(id, row as u32).is_some() {
                return Err(r.corrupt(at_del, format!("duplicate live id {id}")));
            }
        }
        Ok(Self { metric, vectors, ids, deleted, rows, n_deleted, built, changes })
    }
}

/// Visited marks with a generation counter (clearing is O(1) except once every 2^32 resets); used by every
/// index that walks a structure (HNSW, KD-tree, LSH, KD-LSH).
#[derive(Debug, Default)]
pub(crate) struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    /// Forgets every mark and makes room for `n` rows.
    pub(crate) fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            let more = n - self.marks.len();
            crate::huge::reserve(&mut self.marks, more);
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `row`; true if it was not marked yet.
    #[inline]
    pub(crate) fn first(&mut self, row: u32) -> bool {
        let m = &mut self.marks[row as usize];
        let fresh = *m != self.epoch;
        *m = self.epoch;
        fresh
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Runs `f` with this thread's visited marks, reset for `n` rows.
pub(crate) fn with_visited<R>(n: usize, f: impl FnOnce(&mut Visited) -> R) -> R {
    VISITED.with(|c| match c.try_borrow_mut() {
        Ok(mut v) => {
            v.reset(n);
            f(&mut v)
        }
        Err(_) => {
            let mut v = Visited::default();
            v.reset(n);
            f(&mut v)
        }
    })
}

/// A standard normal draw (Box-Muller) from the crate's SplitMix generator.
pub(crate) fn gaussian(rng: &mut crate::kmeans::SplitMix) -> f32 {
    let u1 = 1.0 - rng.next_f64(); // (0, 1]
    let u2 = rng.next_f64();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
