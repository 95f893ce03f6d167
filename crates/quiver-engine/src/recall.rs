//! Asking for a recall instead of a search width: `target_recall` on a query or a collection.
//!
//! An approximate index trades recall for speed through one knob (HNSW `ef`, IVF `nprobe`), and the knob's
//! right value depends on the data, the segment's size and the filter. With a `target_recall`, the collection
//! picks it per segment from measurements:
//!
//! - **Samples.** Once a collection or a query has asked for a target, the collection keeps the last
//!   [`SAMPLE_CAP`] query vectors of each vector space (what users actually ask); a calibration waits for
//!   [`MIN_QUERIES`] of them. Stored vectors are no stand-in: searched for with themselves left out, they sit
//!   where the data is dense and their neighbours are easy to find — on the 10k WordNet set they estimated a
//!   recall of 0.984 at `ef` 10 where real queries got 0.845.
//! - **Calibration** (per indexed segment and vector space; the background optimizer runs it, or
//!   [`crate::Collection::calibrate`] on demand): for each sample query, the exact top [`CALIBRATION_K`] of the
//!   segment's live rows, then the index's answer at each width of a grid (stopping once every query is answered
//!   exactly); recall@10 per width is averaged over the queries. This is done for unfiltered searches and for
//!   filters admitting about 50%, 20% and 5% of the rows ("bands": random row sets, so they measure what a filter
//!   of that selectivity does to the graph, not a filter correlated with the vectors), skipping the bands where
//!   the planner scans exactly anyway. Each query takes the segment's read lock on its own, so writers wait for
//!   one query at most.
//! - **Choice.** A search with a target takes, in each segment, the band of the largest share not above the
//!   share its filter admits, and in it the smallest width whose mean measured recall reaches the target (the
//!   largest width measured when none does). The mean, not a lower bound: with 50–256 queries its standard
//!   error is about 0.005 at these recalls, and on queries the calibration never saw the recall lands within
//!   about 0.01 of the target (see `docs/benchmarks.md`), so a margin would only cost speed. A `limit` above 10 scales an `ef` by `limit / 10`. A
//!   target of 1 searches exactly. Until a segment is calibrated its searches use a wide default (`ef` 256, or
//!   the index's `nprobe`).
//!
//! Calibrations live in memory only: after a restart the first background pass computes them again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use quiver_index::{AnyIndex, IdFilter, Metric, SearchParams, TopK};
use roaring::RoaringBitmap;

use crate::segment::{BitmapFilter, EXACT_COST_RATIO, SegmentData};

/// Recent query vectors kept per vector space.
pub const SAMPLE_CAP: usize = 256;
/// Recent queries a calibration needs.
pub const MIN_QUERIES: usize = 50;
/// The `k` recall is measured at.
pub const CALIBRATION_K: usize = 10;
/// Shares of the rows a band's filter admits (1: no filter).
const BANDS: [f64; 4] = [1.0, 0.5, 0.2, 0.05];
/// HNSW `ef` values measured.
const EF_GRID: [usize; 24] =
    [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256, 320, 384, 512, 768, 1024];
/// `ef` of an HNSW segment not calibrated yet.
pub const UNCALIBRATED_EF: usize = 256;
/// A new calibration is due once this many more queries were recorded (while the sample is still filling, after
/// twice as many as the last one used).
const RECALIBRATE_AFTER: u64 = 10_000;

/// Recall measured in one band: per width of [`Calibration::widths`], the mean recall@10.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Share of the rows the band's filter admits (1: unfiltered).
    pub share: f64,
    /// Mean recall per width.
    pub mean: Vec<f64>,
}

/// What one segment's index recalls at each search width.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// `ef` or `nprobe`.
    pub param: &'static str,
    /// The widths measured, increasing.
    pub widths: Vec<usize>,
    /// The index's default width (what a search with neither a width nor a target uses).
    pub default_width: usize,
    /// Unfiltered first, then narrower filters.
    pub bands: Vec<Band>,
    /// Recent user queries measured.
    pub queries: usize,
    /// The space's recorded-query count when it was made.
    recorded_at: u64,
}

impl Calibration {
    /// The width for `target` in a segment whose filter admits `share` of its live rows, for `k` results, and the
    /// recall estimated for it.
    pub fn width(&self, target: f64, share: f64, k: usize) -> (usize, f64) {
        // A calibration always has the unfiltered band (see `calibrate`).
        let Some(band) = self.bands.iter().find(|b| b.share <= share + 1e-9).or(self.bands.last()) else {
            return (self.default_width, 0.0);
        };
        let i = (0..self.widths.len()).find(|&i| band.mean[i] >= target).unwrap_or(self.widths.len() - 1);
        let mut w = self.widths[i];
        if self.param == "ef" && k > CALIBRATION_K {
            w = w.saturating_mul(k).div_ceil(CALIBRATION_K);
        }
        (w, band.mean[i])
    }

    /// Estimated unfiltered recall@10 at the index's default width.
    pub fn at_default(&self) -> f64 {
        let i = self.widths.iter().position(|&w| w == self.default_width).unwrap_or(0);
        self.bands.first().map_or(0.0, |b| b.mean[i])
    }

    /// The search parameters for `target` (see [`Calibration::width`]).
    pub fn params(&self, base: &SearchParams, target: f64, share: f64, k: usize) -> (SearchParams, usize, f64) {
        let (w, est) = self.width(target, share, k);
        let mut p = base.clone();
        match self.param {
            "ef" => p.ef = Some(w),
            _ => p.nprobe = Some(w),
        }
        (p, w, est)
    }
}

#[derive(Debug, Default)]
struct Sample {
    /// Recent prepared query vectors per space, newest last.
    queries: HashMap<usize, VecDeque<Vec<f32>>>,
    /// Queries recorded per space, ever.
    recorded: HashMap<usize, u64>,
}

/// A collection's query sample and its segments' calibrations.
#[derive(Debug, Default)]
pub(crate) struct RecallMonitor {
    /// Whether anyone asked for a target (only then are queries recorded and segments calibrated).
    wanted: AtomicBool,
    /// Written by every search once wanted.
    sample: Mutex<Sample>,
    /// Per (segment id, space); read by every search with a target, written by calibrations.
    calibrations: RwLock<HashMap<(u64, usize), Arc<Calibration>>>,
}

impl RecallMonitor {
    pub fn want(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// Keeps `query` (prepared) as a sample of space `space`.
    pub fn record(&self, space: usize, query: &[f32]) {
        let mut st = self.sample.lock();
        *st.recorded.entry(space).or_default() += 1;
        let q = st.queries.entry(space).or_default();
        // Once full, the oldest query's buffer takes the new one (no allocation per search).
        let mut buf = if q.len() == SAMPLE_CAP { q.pop_front().unwrap_or_default() } else { Vec::new() };
        buf.clear();
        buf.extend_from_slice(query);
        q.push_back(buf);
    }

    pub fn calibration(&self, segment: u64, space: usize) -> Option<Arc<Calibration>> {
        self.calibrations.read().get(&(segment, space)).cloned()
    }

    /// The spaces worth calibrating: those with recorded queries, and space 0.
    pub fn spaces(&self) -> Vec<usize> {
        let st = self.sample.lock();
        let mut v: Vec<usize> = st.queries.keys().copied().chain([0]).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether (segment, space) needs a (new) calibration.
    pub fn due(&self, segment: u64, space: usize) -> bool {
        let recorded = self.sample.lock().recorded.get(&space).copied().unwrap_or(0);
        match self.calibrations.read().get(&(segment, space)) {
            None => true,
            Some(c) => {
                let grown = recorded.saturating_sub(c.recorded_at);
                (c.queries < SAMPLE_CAP && grown >= c.queries as u64) || grown >= RECALIBRATE_AFTER
            }
        }
    }

    /// The recent queries of `space` and the recorded count.
    pub fn sample(&self, space: usize) -> (Vec<Vec<f32>>, u64) {
        let st = self.sample.lock();
        let q = st.queries.get(&space).map(|q| q.iter().cloned().collect()).unwrap_or_default();
        (q, st.recorded.get(&space).copied().unwrap_or(0))
    }

    pub fn store(&self, segment: u64, space: usize, c: Calibration) {
        self.calibrations.write().insert((segment, space), Arc::new(c));
    }

    /// Drops the calibrations of segments not in `live`.
    pub fn retain(&self, live: &[u64]) {
        self.calibrations.write().retain(|(s, _), _| live.contains(s));
    }
}

/// The parameter a target sets for `index`, its grid and its default; `None` for indexes without one knob.
fn knob(index: &AnyIndex, rows: u64) -> Option<(&'static str, Vec<usize>, usize)> {
    match index {
        AnyIndex::Hnsw(h) => {
            let default = h.params().ef_search;
            let mut grid: Vec<usize> = EF_GRID.iter().copied().filter(|&w| (w as u64) < rows.max(2)).collect();
            grid.push(default);
            grid.push(rows.clamp(1, 1024) as usize);
            grid.sort_unstable();
            grid.dedup();
            Some(("ef", grid, default))
        }
        AnyIndex::Ivf(i) => {
            let p = i.params();
            let nlist = p.nlist.max(1);
            let mut grid: Vec<usize> = (0..).map(|e| 1usize << e).take_while(|&w| w < nlist).collect();
            grid.extend(grid.clone().windows(2).map(|w| (w[0] + w[1]) / 2).filter(|&m| m > 1));
            grid.push(nlist);
            grid.push(p.nprobe.min(nlist));
            grid.sort_unstable();
            grid.dedup();
            Some(("nprobe", grid, p.nprobe.min(nlist)))
        }
        _ => None,
    }
}

/// A cheap, fixed hash of a row, for the bands' random row sets.
fn admits(row: u32, band: usize, share: f64) -> bool {
    let mut x = u64::from(row).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (band as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    ((x >> 11) as f64 / (1u64 << 53) as f64) < share
}

/// One query's measurements: per band, the recall at each width (`None` for a band not measured).
type QueryRecalls = Vec<Option<Vec<f64>>>;

/// Measures one query on a segment: the exact top `k` per band (admitted rows only), then the index at every width.
#[allow(clippy::too_many_arguments)]
fn measure(
    d: &SegmentData,
    space: usize,
    metric: Metric,
    query: &[f32],
    allowed: &[Option<RoaringBitmap>],
    widths: &[usize],
    param: &str,
    exact_below: usize,
    now_ms: u64,
) -> Option<QueryRecalls> {
    let index = d.space_index(space)?;
    let mut excluded = d.excluded(now_ms).into_owned();
    if let Some(m) = d.missing.get(space) {
        excluded |= m;
    }
    let live = u64::from(d.len()).saturating_sub(excluded.len());
    if live <= CALIBRATION_K as u64 {
        return None;
    }
    let exact_limit = (exact_below as f64).max((EXACT_COST_RATIO * live as f64).sqrt());
    let measured: Vec<bool> =
        allowed.iter().map(|a| a.as_ref().is_none_or(|rows| rows.len() as f64 > exact_limit)).collect();
    // The exact answers of every band in one pass over the rows.
    let vectors = d.space_vectors(space);
    let mut truth: Vec<TopK> = BANDS.iter().map(|_| TopK::new(CALIBRATION_K)).collect();
    for row in 0..d.len() {
        if excluded.contains(row) {
            continue;
        }
        let dist = metric.distance(query, vectors.get(row as usize));
        for (b, top) in truth.iter_mut().enumerate() {
            if measured[b] && allowed[b].as_ref().is_none_or(|a| a.contains(row)) {
                top.push(quiver_index::Neighbor::new(u64::from(row), dist));
            }
        }
    }
    let mut out = Vec::with_capacity(BANDS.len());
    for (b, top) in truth.into_iter().enumerate() {
        if !measured[b] {
            out.push(None);
            continue;
        }
        let want: Vec<u64> = top.into_sorted_vec().into_iter().map(|n| n.id).collect();
        let count = allowed[b].as_ref().map_or(live, RoaringBitmap::len);
        let f = BitmapFilter { allowed: allowed[b].as_ref(), excluded: &excluded, count };
        let mut recalls = Vec::with_capacity(widths.len());
        for &w in widths {
            if recalls.last() == Some(&1.0) && w > 64 {
                recalls.push(1.0); // wider searches keep every exact hit found by narrower ones (in practice)
                continue;
            }
            let mut p = SearchParams::new();
            if param == "ef" {
                p.ef = Some(w);
            } else {
                p.nprobe = Some(w);
            }
            let got = index.as_index().search(query, CALIBRATION_K, &p, Some(&f as &dyn IdFilter)).ok()?;
            let hit = got.iter().filter(|n| want.contains(&n.id)).count();
            recalls.push(if want.is_empty() { 1.0 } else { hit as f64 / want.len() as f64 });
        }
        out.push(Some(recalls));
    }
    Some(out)
}

/// Calibrates space `space` of `seg` with the recent `queries` (prepared; `None` with fewer than
/// [`MIN_QUERIES`]). The segment's read lock is taken once per query.
pub(crate) fn calibrate(
    seg: &crate::segment::Segment,
    space: usize,
    metric: Metric,
    queries: &[Vec<f32>],
    recorded_at: u64,
    exact_below: usize,
    now_ms: u64,
) -> Option<Calibration> {
    if queries.len() < MIN_QUERIES {
        return None;
    }
    let (param, widths, default_width, allowed) = {
        let d = seg.data.read();
        let (param, widths, default) = knob(d.space_index(space)?, u64::from(d.len()))?;
        let mut excluded = d.excluded(now_ms).into_owned();
        if let Some(m) = d.missing.get(space) {
            excluded |= m;
        }
        // Each band's random row set (live rows only); the unfiltered band has none.
        let allowed: Vec<Option<RoaringBitmap>> = BANDS
            .iter()
            .enumerate()
            .map(|(b, &share)| {
                (b > 0).then(|| (0..d.len()).filter(|&r| admits(r, b, share) && !excluded.contains(r)).collect())
            })
            .collect();
        (param, widths, default, allowed)
    };
    let mut per_query: Vec<QueryRecalls> = Vec::with_capacity(queries.len().min(SAMPLE_CAP));
    for q in queries.iter().take(SAMPLE_CAP) {
        let d = seg.data.read();
        if let Some(m) = measure(&d, space, metric, q, &allowed, &widths, param, exact_below, now_ms) {
            per_query.push(m);
        }
    }
    if per_query.is_empty() {
        return None;
    }
    let mut bands = Vec::new();
    for (b, &share) in BANDS.iter().enumerate() {
        let rows: Vec<&Vec<f64>> = per_query.iter().filter_map(|m| m[b].as_ref()).collect();
        if rows.is_empty() {
            continue;
        }
        let n = rows.len() as f64;
        let mean: Vec<f64> = (0..widths.len()).map(|i| rows.iter().map(|r| r[i]).sum::<f64>() / n).collect();
        bands.push(Band { share, mean });
    }
    if bands.first().is_none_or(|b| b.share < 1.0) {
        return None;
    }
    Some(Calibration { param, widths, default_width, bands, queries: per_query.len(), recorded_at })
}

impl crate::Collection {
    /// Measures the recall of every indexed sealed segment now (every vector space queried so far, and the
    /// first), with the recent queries; returns how many calibrations it made. From then on the collection
    /// records its queries and the background optimizer keeps the calibrations current.
    pub fn calibrate(&self) -> crate::Result<usize> {
        self.check_open()?;
        self.inner.recall.want();
        Ok(self.run_calibrations(true))
    }

    /// The background pass: the calibrations that are due, if anyone asked for a target recall.
    pub(crate) fn calibrate_due(&self) -> usize {
        if !self.inner.recall.wanted() || self.check_open().is_err() {
            return 0;
        }
        self.run_calibrations(false)
    }

    fn run_calibrations(&self, force: bool) -> usize {
        let cfg = &self.inner.config;
        let segs: Vec<Arc<crate::segment::Segment>> = self.inner.state.read().sealed.clone();
        let ids: Vec<u64> = segs.iter().map(|s| s.id).collect();
        self.inner.recall.retain(&ids);
        let mut made = 0;
        for space in self.inner.recall.spaces() {
            let Some(metric) = cfg.space(space).map(|s| s.metric) else { continue };
            let (queries, recorded) = self.inner.recall.sample(space);
            for seg in &segs {
                if self.check_open().is_err() {
                    return made;
                }
                if !force && !self.inner.recall.due(seg.id, space) {
                    continue;
                }
                let now = self.now_ms();
                if let Some(c) = calibrate(seg, space, metric, &queries, recorded, cfg.optimizer.exact_below, now) {
                    self.inner.recall.store(seg.id, space, c);
                    made += 1;
                }
            }
        }
        made
    }
}
