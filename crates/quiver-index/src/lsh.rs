//! `LshIndex`: locality-sensitive hashing with `tables` hash tables of `bits` functions each, multi-probe, and an
//! exact rerank of every candidate.
//!
//! - Cosine and Dot: random-hyperplane (sign) hashing, `bit = [a·x ≥ 0]` with `a ~ N(0, I)`. Under cosine the
//!   collision probability of a bit is `1 − θ/π`. Under Dot the hash only sees the angle, so it finds large inner
//!   products only as far as they come from small angles; the rerank is exact either way.
//! - Euclidean: p-stable (Gaussian) projections, `h = ⌊a·x / w + b⌋` with `b ~ U[0, 1)`; the bucket width `w`
//!   is `width` times the spread (RMS) of the projections of the data at build.
//!
//! Multi-probe (Lv et al., 2007): besides its own bucket, a query visits in each table the buckets reached by
//! perturbing its least confident hash values first (a sign bit whose projection is nearest 0; a p-stable value
//! whose projection is nearest a cell boundary), ordered by the summed squared margins, up to `probes` buckets per
//! table. So a few tables with several probes reach the recall of many tables with one.
//!
//! Updates: inserts hash into the tables in place; removals are tombstones; the tables are rebuilt from the live
//! points once the changes exceed the points at the last build (see [`crate::points`]).

use crate::any::IndexKind;
use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::filter::IdFilter;
use crate::kmeans::SplitMix;
use crate::metric::Metric;
use crate::neighbor::Neighbor;
use crate::params::{Params, SearchParams};
use crate::points::{Points, gaussian, with_visited};
use crate::traits::{MutableIndex, VectorIndex, prepare_query};
use crate::vectors::VectorSet;
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Format version of the LSH payload.
const VERSION: u16 = 1;

/// Which hash family.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// Random hyperplanes (cosine, dot).
    Sign,
    /// Gaussian projections quantised in cells of width `w` (Euclidean).
    PStable,
}

impl Family {
    pub(crate) fn for_metric(metric: Metric) -> Self {
        match metric {
            Metric::Cosine | Metric::Dot => Family::Sign,
            Metric::Euclidean => Family::PStable,
        }
    }
}

/// `tables x bits` hash functions drawn from a seed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Hasher {
    pub(crate) family: Family,
    pub(crate) tables: usize,
    pub(crate) bits: usize,
    dim: usize,
    /// Cell width (p-stable only; 1 for sign hashing).
    pub(crate) width: f32,
    planes: Vec<f32>,
    offsets: Vec<f32>,
}

impl Hasher {
    pub(crate) fn new(family: Family, tables: usize, bits: usize, dim: usize, seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let planes = (0..tables * bits * dim).map(|_| gaussian(&mut rng)).collect();
        let offsets = (0..tables * bits).map(|_| rng.next_f64() as f32).collect();
        Self { family, tables, bits, dim, width: 1.0, planes, offsets }
    }

    /// Number of projections (`tables x bits`).
    pub(crate) fn len(&self) -> usize {
        self.tables * self.bits
    }

    /// All `tables x bits` projections `a·v`.
    pub(crate) fn project(&self, v: &[f32], out: &mut [f32]) {
        for (o, plane) in out.iter_mut().zip(self.planes.chunks_exact(self.dim)) {
            *o = quiver_kernels::dot(plane, v);
        }
    }

    /// Sets the p-stable width to `factor` times the RMS spread of the given projections (rows of `len()`).
    pub(crate) fn fit_width(&mut self, projections: &[f32], factor: f32) {
        let n = self.len();
        let rows = projections.len() / n.max(1);
        if self.family != Family::PStable || rows < 2 {
            return;
        }
        let mut var = 0.0f64;
        for j in 0..n {
            let col = projections.iter().skip(j).step_by(n).map(|&x| x as f64);
            let mean = col.clone().sum::<f64>() / rows as f64;
            var += col.map(|x| (x - mean) * (x - mean)).sum::<f64>() / rows as f64;
        }
        let sigma = (var / n as f64).sqrt() as f32;
        if sigma.is_finite() && sigma > 0.0 {
            self.width = factor * sigma;
        }
    }

    /// The hash value of projection `p` of function `j`, and the perturbations of it with their costs.
    #[inline]
    fn value(&self, j: usize, p: f32) -> (i32, [(i32, f32); 2]) {
        match self.family {
            Family::Sign => {
                let v = i32::from(p >= 0.0);
                (v, [(1 - v, p * p), (v, f32::INFINITY)])
            }
            Family::PStable => {
                let t = p / self.width + self.offsets[j];
                let f = t.floor();
                let frac = t - f;
                let v = f as i32;
                (v, [(v.wrapping_sub(1), frac * frac), (v.wrapping_add(1), (1.0 - frac) * (1.0 - frac))])
            }
        }
    }

    /// Bucket keys of table `table` for projections `proj` (that table's `bits` values): the home bucket, then up
    /// to `probes − 1` perturbed ones in increasing cost. `salt` separates key spaces (regions).
    pub(crate) fn probe_keys(&self, table: usize, proj: &[f32], salt: u64, probes: usize, out: &mut Vec<u64>) {
        let base_j = table * self.bits;
        let mut vals = Vec::with_capacity(self.bits);
        let mut perts: Vec<(f32, u16, i32)> = Vec::with_capacity(2 * self.bits);
        for (i, &p) in proj.iter().enumerate() {
            let (v, alts) = self.value(base_j + i, p);
            vals.push(v);
            for (nv, cost) in alts {
                if cost.is_finite() {
                    perts.push((cost, i as u16, nv));
                }
            }
        }
        out.push(key(&vals, salt, table));
        if probes <= 1 || perts.is_empty() {
            return;
        }
        perts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        perts.truncate(128); // a set is a u128 of indices into the sorted perturbations
        // Perturbation sets in increasing total cost (Lv et al.): from {0}, "shift" moves the largest index up by
        // one and "expand" adds the next index; every set is generated exactly once.
        let mut heap: BinaryHeap<Reverse<(u32, u128)>> = BinaryHeap::with_capacity(2 * probes);
        let cost_bits = |c: f32| c.max(0.0).to_bits(); // non-negative floats order like their bits
        heap.push(Reverse((cost_bits(perts[0].0), 1)));
        let mut emitted = 1;
        let mut work = vals.clone();
        let mut used = vec![false; self.bits];
        while emitted < probes {
            let Some(Reverse((cost, set))) = heap.pop() else { break };
            work.copy_from_slice(&vals);
            used.iter_mut().for_each(|u| *u = false);
            let mut valid = true;
            let mut bits = set;
            while bits != 0 {
                let (_, c, nv) = perts[bits.trailing_zeros() as usize];
                valid &= !std::mem::replace(&mut used[c as usize], true);
                work[c as usize] = nv;
                bits &= bits - 1;
            }
            if valid {
                out.push(key(&work, salt, table));
                emitted += 1;
            }
            let last = 127 - set.leading_zeros() as usize;
            if last + 1 < perts.len() {
                let c = f32::from_bits(cost);
                let next = perts[last + 1].0;
                let shift = (set & !(1u128 << last)) | (1u128 << (last + 1));
                heap.push(Reverse((cost_bits(c - perts[last].0 + next), shift)));
                heap.push(Reverse((cost_bits(c + next), set | (1u128 << (last + 1)))));
            }
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        (self.planes.capacity() + self.offsets.capacity()) * 4
    }
}

/// A bucket key from hash values (FxHash-style mixing, then the SplitMix finaliser).
#[inline]
fn key(vals: &[i32], salt: u64, table: usize) -> u64 {
    let mut h = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (table as u64);
    for &v in vals {
        h = (h.rotate_left(5) ^ u64::from(v as u32)).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// One map per table from bucket key to rows.
pub(crate) type Buckets = Vec<HashMap<u64, Vec<u32>>>;

pub(crate) fn buckets_memory(b: &Buckets) -> usize {
    b.iter().map(|m| m.capacity() * (8 + 24 + 1) * 8 / 7 + m.values().map(|l| l.capacity() * 4).sum::<usize>()).sum()
}

/// `bits` for `points` expected per bucket over `n` points: `round(log2(n / points))` in `2..=24`.
pub(crate) fn auto_bits(n: usize, points: usize) -> usize {
    ((n.max(1) as f64 / points as f64).log2().round() as i64).clamp(2, 24) as usize
}

/// LSH build settings and default search settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LshParams {
    /// Hash tables.
    pub tables: usize,
    /// Hash functions per table; 0 picks `round(log2(n / 16))` at build (2..=24).
    pub bits: usize,
    /// Seed of the hash functions.
    pub seed: u64,
    /// Euclidean cell width as a multiple of the spread of the projections.
    pub width: f32,
    /// Default buckets probed per table (a query's `probes` overrides it).
    pub probes: usize,
}

impl Default for LshParams {
    fn default() -> Self {
        Self { tables: 8, bits: 0, seed: 0x15C4_A54E_ED00, width: 3.0, probes: 24 }
    }
}

impl LshParams {
    /// Build parameters accepted by [`LshParams::from_params`].
    pub const NAMES: &'static [&'static str] = &["tables", "bits", "seed", "width", "probes"];

    /// Reads the settings; anything else is an error.
    pub fn from_params(mut p: Params) -> Result<Self> {
        let d = Self::default();
        let out = Self {
            tables: p.take_usize("tables", 1, 256)?.unwrap_or(d.tables),
            bits: p.take_usize("bits", 0, 64)?.unwrap_or(d.bits),
            seed: p.take_u64("seed")?.unwrap_or(d.seed),
            width: p.take_f32("width", 1e-3, 1e3)?.unwrap_or(d.width),
            probes: p.take_usize("probes", 1, 1 << 16)?.unwrap_or(d.probes),
        };
        p.finish("lsh index (build)", Self::NAMES)?;
        Ok(out)
    }
}

/// LSH index. See the module docs.
#[derive(Clone, Debug)]
pub struct LshIndex {
    params: LshParams,
    pts: Points,
    hasher: Hasher,
    buckets: Buckets,
}

impl LshIndex {
    /// Search parameters LSH accepts: `probes` (buckets per table) and `exact`.
    pub const SEARCH_PARAMS: &'static [&'static str] = &["probes", "exact"];

    /// Builds from vectors and distinct ids; `params`: `tables`, `bits`, `seed`, `width`, `probes`.
    pub fn build(metric: Metric, vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        let params = LshParams::from_params(params)?;
        let pts = Points::build(metric, vectors, ids)?;
        Ok(Self::from_points(params, pts, None))
    }

    /// Builds the tables; `fixed` (bits, width) restores a decoded index instead of fitting them.
    fn from_points(params: LshParams, pts: Points, fixed: Option<(usize, f32)>) -> Self {
        let bits = fixed.map_or(if params.bits == 0 { auto_bits(pts.live(), 16) } else { params.bits }, |f| f.0);
        let mut hasher = Hasher::new(Family::for_metric(pts.metric), params.tables, bits, pts.dim(), params.seed);
        let rows = pts.live_rows();
        let projections = |hasher: &Hasher, rows: &[u32]| -> Vec<f32> {
            let n = hasher.len();
            let mut out = vec![0.0f32; rows.len() * n];
            out.par_chunks_mut(n.max(1)).zip(rows.par_iter()).for_each(|(o, &r)| {
                hasher.project(pts.vectors.get(r as usize), o);
            });
            out
        };
        match fixed {
            Some((_, w)) => hasher.width = w,
            None => {
                let step = (rows.len() / 1024).max(1);
                let sample: Vec<u32> = rows.iter().step_by(step).copied().collect();
                let proj = projections(&hasher, &sample);
                hasher.fit_width(&proj, params.width);
            }
        }
        let proj = projections(&hasher, &rows);
        let mut index = Self { params, pts, buckets: vec![HashMap::new(); hasher.tables], hasher };
        let n = index.hasher.len().max(1);
        let mut keys = Vec::new();
        for (&row, p) in rows.iter().zip(proj.chunks_exact(n)) {
            index.add(row, p, &mut keys);
        }
        index
    }

    fn add(&mut self, row: u32, proj: &[f32], keys: &mut Vec<u64>) {
        let bits = self.hasher.bits;
        for t in 0..self.hasher.tables {
            keys.clear();
            self.hasher.probe_keys(t, &proj[t * bits..(t + 1) * bits], 0, 1, keys);
            self.buckets[t].entry(keys[0]).or_default().push(row);
        }
    }

    /// The settings (with `bits` as given; see [`LshIndex::bits`] for the value in use).
    pub fn params(&self) -> LshParams {
        self.params
    }

    /// Hash functions per table in use.
    pub fn bits(&self) -> usize {
        self.hasher.bits
    }

    fn rebuild(&mut self) {
        *self = Self::from_points(self.params, self.pts.compacted(), None);
    }

    /// Decodes an index written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "lsh index", IndexKind::Lsh.tag(), VERSION)?;
        let at = r.offset();
        let metric = Metric::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown metric tag"))?;
        let at = r.offset();
        if [r.u8()?, r.u8()?, r.u8()?] != [0, 0, 0] {
            return Err(r.corrupt(at, "reserved bytes are not zero"));
        }
        let at = r.offset();
        let dim = r.u32()? as usize;
        crate::vectors::validate_dim(dim).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        let mut p = Params::new();
        p.set("tables", r.u32()?).set("bits", r.u32()?);
        let bits = r.u32()? as usize;
        p.set("seed", r.u64()?).set("width", f32::from_bits(r.u32()?));
        let w = f32::from_bits(r.u32()?);
        p.set("probes", r.u32()?);
        let params = LshParams::from_params(p).map_err(|e| r.corrupt(at, e.to_string()))?;
        if !(1..=64).contains(&bits) || params.bits != 0 && params.bits != bits || !(w.is_finite() && w > 0.0) {
            return Err(r.corrupt(at, "bits or width out of range"));
        }
        if params.tables * bits * dim > 1 << 28 {
            return Err(r.corrupt(at, "too many hash functions"));
        }
        let pts = Points::read(&mut r, metric, dim)?;
        r.finish()?;
        Ok(Self::from_points(params, pts, Some((bits, w))))
    }
}

impl VectorIndex for LshIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Lsh
    }

    fn metric(&self) -> Metric {
        self.pts.metric
    }

    fn dim(&self) -> usize {
        self.pts.dim()
    }

    fn len(&self) -> usize {
        self.pts.live()
    }

    fn contains(&self, id: u64) -> bool {
        self.pts.rows.contains_key(&id)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Neighbor>> {
        let q = prepare_query(self.metric(), self.dim(), query)?;
        let probes = params.probes.unwrap_or(self.params.probes);
        let h = &self.hasher;
        let per_bucket = (self.pts.n_rows() >> h.bits.min(63)).max(1);
        let cost = h.tables.saturating_mul(probes).saturating_mul(per_bucket);
        Ok(self.pts.search(&q, k, params.exact, cost, filter, |heap| {
            let mut proj = vec![0.0f32; h.len()];
            h.project(&q, &mut proj);
            let mut keys = Vec::with_capacity(probes);
            with_visited(self.pts.n_rows(), |seen| {
                for t in 0..h.tables {
                    keys.clear();
                    h.probe_keys(t, &proj[t * h.bits..(t + 1) * h.bits], 0, probes, &mut keys);
                    for key in &keys {
                        for &row in self.buckets[t].get(key).map_or(&[][..], Vec::as_slice) {
                            if seen.first(row) {
                                self.pts.offer(&q, row, heap, filter);
                            }
                        }
                    }
                }
            })
        }))
    }

    fn memory_bytes(&self) -> usize {
        self.pts.memory_bytes() + self.hasher.memory_bytes() + buckets_memory(&self.buckets)
    }

    /// Payload (version 1), little-endian: metric tag u8, 3 zero bytes, dim u32, tables u32, bits as given u32
    /// (0 = auto), bits in use u32, seed u64, width factor f32, cell width in use f32, probes u32, the point
    /// block. The tables are recomputed from the points on decoding (the hash functions follow from the seed).
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(IndexKind::Lsh.tag(), VERSION, 44 + self.pts.byte_len());
        w.u8(self.metric().tag());
        w.bytes(&[0, 0, 0]);
        w.u32(self.dim() as u32);
        w.u32(self.params.tables as u32);
        w.u32(self.params.bits as u32);
        w.u32(self.hasher.bits as u32);
        w.u64(self.params.seed);
        w.f32s(&[self.params.width, self.hasher.width]);
        w.u32(self.params.probes as u32);
        self.pts.write(&mut w);
        w.finish()
    }
}

impl MutableIndex for LshIndex {
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        let v = self.pts.prepare(vector)?;
        let row = self.pts.push(id, &v)?;
        let mut proj = vec![0.0f32; self.hasher.len()];
        self.hasher.project(&v, &mut proj);
        self.add(row, &proj, &mut Vec::new());
        if self.pts.needs_rebuild() {
            self.rebuild();
        }
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        if self.pts.remove(id).is_none() {
            return false;
        }
        if self.pts.needs_rebuild() {
            self.rebuild();
        }
        true
    }
}
