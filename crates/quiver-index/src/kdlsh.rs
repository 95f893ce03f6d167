//! `KdLshIndex` (`kd-lsh`): a KD-tree partitions the space into regions of about `region_size` points; inside
//! each region, LSH tables bucket the points by hashes of their offset from the region's centroid.
//!
//! Design:
//! - The tree splits on the data's top `pca_dims` principal directions (an orthonormal basis fitted at build by
//!   orthogonal iteration on a sample), median splits on the highest-spread of those coordinates. Axis splits in
//!   the raw 384 coordinates would each see only a sliver of the variance; in the principal basis a few levels
//!   already separate the data. At `dim ≤ pca_dims` the basis is a rotation and nothing is lost.
//! - A query projects onto the basis and descends best-first (the Euclidean box bound in the projected space
//!   orders the leaves) to its `probe_regions` nearest regions (`nprobe` per query).
//! - In each region it hashes its offset from that region's centroid with the same hash family as [`crate::LshIndex`]
//!   (sign hashing for cosine/dot, p-stable for Euclidean), probes `probes` buckets per table (multi-probe), and
//!   reranks every candidate exactly.
//!
//! Why it beats each part alone: plain LSH hashes around the origin, so with all the data in a narrow cone most
//! hyperplanes split nothing useful and buckets are large; hashing offsets from a local centroid makes every
//! bit discriminate among *near* points, so fewer bits and tables give the same recall with fewer candidates.
//! A KD-tree alone must scan whole leaves (and in high dimensions many of them); here a region is searched through
//! its buckets, so regions can be large (few, well-ranked) without scanning them.
//!
//! Updates: inserts descend to their region and hash into it in place; removals are tombstones; everything
//! (basis, tree, centroids, tables) is rebuilt from the live points once the changes exceed the points at the
//! last build (see [`crate::points`]).

use crate::any::IndexKind;
use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::filter::IdFilter;
use crate::kdtree::{KdTree, NONE};
use crate::kmeans::SplitMix;
use crate::lsh::{Buckets, Family, Hasher, auto_bits, buckets_memory};
use crate::metric::Metric;
use crate::neighbor::Neighbor;
use crate::params::{Params, SearchParams};
use crate::points::{Points, gaussian, with_visited};
use crate::traits::{MutableIndex, VectorIndex, prepare_query};
use crate::vectors::VectorSet;
use rayon::prelude::*;
use std::collections::HashMap;

/// Format version of the KD-LSH payload.
const VERSION: u16 = 1;

/// KD-LSH build settings and default search settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KdLshParams {
    /// Most points per region (KD-tree leaf) at build.
    pub region_size: usize,
    /// Principal directions the tree splits on (capped at the dimension).
    pub pca_dims: usize,
    /// Hash tables (shared by all regions, keyed by region).
    pub tables: usize,
    /// Hash functions per table; 0 picks `round(log2(region_size / 8))` (2..=24).
    pub bits: usize,
    /// Seed of the basis and the hash functions.
    pub seed: u64,
    /// Euclidean cell width as a multiple of the spread of the projected offsets.
    pub width: f32,
    /// Default regions a query probes (a query's `nprobe` overrides it).
    pub probe_regions: usize,
    /// Default buckets probed per table in each region (a query's `probes` overrides it).
    pub probes: usize,
}

impl Default for KdLshParams {
    fn default() -> Self {
        Self {
            region_size: 256,
            pca_dims: 16,
            tables: 4,
            bits: 0,
            seed: 0x0CD1_54E5_EED0,
            width: 3.0,
            probe_regions: 12,
            probes: 12,
        }
    }
}

impl KdLshParams {
    /// Build parameters accepted by [`KdLshParams::from_params`].
    pub const NAMES: &'static [&'static str] =
        &["region_size", "pca_dims", "tables", "bits", "seed", "width", "probe_regions", "probes"];

    /// Reads the settings; anything else is an error.
    pub fn from_params(mut p: Params) -> Result<Self> {
        let d = Self::default();
        let out = Self {
            region_size: p.take_usize("region_size", 1, 1 << 24)?.unwrap_or(d.region_size),
            pca_dims: p.take_usize("pca_dims", 1, 64)?.unwrap_or(d.pca_dims),
            tables: p.take_usize("tables", 1, 256)?.unwrap_or(d.tables),
            bits: p.take_usize("bits", 0, 64)?.unwrap_or(d.bits),
            seed: p.take_u64("seed")?.unwrap_or(d.seed),
            width: p.take_f32("width", 1e-3, 1e3)?.unwrap_or(d.width),
            probe_regions: p.take_usize("probe_regions", 1, 1 << 24)?.unwrap_or(d.probe_regions),
            probes: p.take_usize("probes", 1, 1 << 16)?.unwrap_or(d.probes),
        };
        p.finish("kd-lsh index (build)", Self::NAMES)?;
        Ok(out)
    }
}

/// KD-tree + LSH index. See the module docs.
#[derive(Clone, Debug)]
pub struct KdLshIndex {
    params: KdLshParams,
    pts: Points,
    /// `p x dim` orthonormal rows.
    basis: Vec<f32>,
    /// Every row projected on the basis (`p` coordinates each, back to back).
    coords: Vec<f32>,
    tree: KdTree,
    /// Region number of each node (`NONE` for internal nodes).
    region_of: Vec<u32>,
    /// `regions x dim` centroids (means at build).
    centroids: Vec<f32>,
    /// `regions x (tables x bits)`: the hash projections of each centroid.
    shifts: Vec<f32>,
    hasher: Hasher,
    buckets: Buckets,
}

/// Top `p` principal directions of a sample of `rows` (orthogonal iteration, 25 rounds, from a seeded start).
fn pca_basis(vectors: &VectorSet, rows: &[u32], p: usize, seed: u64) -> Vec<f32> {
    let dim = vectors.dim();
    let step = (rows.len() / 2048).max(1);
    let sample: Vec<&[f32]> = rows.iter().step_by(step).map(|&r| vectors.get(r as usize)).collect();
    let mut mean = vec![0.0f64; dim];
    for x in &sample {
        mean.iter_mut().zip(x.iter()).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= sample.len().max(1) as f64);
    let centred: Vec<f64> = sample.iter().flat_map(|x| x.iter().zip(&mean).map(|(&v, m)| v as f64 - m)).collect();
    let mut rng = SplitMix::new(seed ^ 0x00BA_5150_0000);
    let mut b: Vec<f64> = (0..p * dim).map(|_| gaussian(&mut rng) as f64).collect();
    orthonormalise(&mut b, dim);
    for _ in 0..25 {
        let mut y = vec![0.0f64; p * dim];
        for x in centred.chunks_exact(dim) {
            for (bi, yi) in b.chunks_exact(dim).zip(y.chunks_exact_mut(dim)) {
                let s: f64 = bi.iter().zip(x).map(|(a, c)| a * c).sum();
                yi.iter_mut().zip(x).for_each(|(o, c)| *o += s * c);
            }
        }
        b = y;
        orthonormalise(&mut b, dim);
    }
    b.into_iter().map(|x| x as f32).collect()
}

/// Gram-Schmidt on rows of `dim`; a row with no component left becomes zero.
fn orthonormalise(b: &mut [f64], dim: usize) {
    let p = b.len() / dim;
    for i in 0..p {
        let (done, rest) = b.split_at_mut(i * dim);
        let row = &mut rest[..dim];
        for prev in done.chunks_exact(dim) {
            let d: f64 = prev.iter().zip(row.iter()).map(|(a, c)| a * c).sum();
            row.iter_mut().zip(prev).for_each(|(c, a)| *c -= d * a);
        }
        let norm = row.iter().map(|c| c * c).sum::<f64>().sqrt();
        if norm > 1e-9 {
            row.iter_mut().for_each(|c| *c /= norm);
        } else {
            row.iter_mut().for_each(|c| *c = 0.0);
        }
    }
}

fn project_basis(basis: &[f32], dim: usize, v: &[f32], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(basis.chunks_exact(dim)) {
        *o = quiver_kernels::dot(b, v);
    }
}

impl KdLshIndex {
    /// Search parameters KD-LSH accepts: `nprobe` (regions), `probes` (buckets per table), `exact`.
    pub const SEARCH_PARAMS: &'static [&'static str] = &["nprobe", "probes", "exact"];

    /// Builds from vectors and distinct ids; parameters in [`KdLshParams::NAMES`].
    pub fn build(metric: Metric, vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        let params = KdLshParams::from_params(params)?;
        let pts = Points::build(metric, vectors, ids)?;
        Ok(Self::from_points(params, pts))
    }

    fn bits_for(params: &KdLshParams) -> usize {
        if params.bits == 0 { auto_bits(params.region_size, 8) } else { params.bits }
    }

    fn pdim(params: &KdLshParams, dim: usize) -> usize {
        params.pca_dims.min(dim)
    }

    fn project_all(basis: &[f32], pts: &Points, p: usize) -> Vec<f32> {
        let dim = pts.dim();
        let mut data = vec![0.0f32; pts.n_rows() * p];
        data.par_chunks_mut(p).enumerate().for_each(|(r, o)| project_basis(basis, dim, pts.vectors.get(r), o));
        data
    }

    fn from_points(params: KdLshParams, pts: Points) -> Self {
        let dim = pts.dim();
        let p = Self::pdim(&params, dim);
        let rows = pts.live_rows();
        let basis = pca_basis(&pts.vectors, &rows, p, params.seed);
        let coords = Self::project_all(&basis, &pts, p);
        let tree = KdTree::build(&coords, p, rows, params.region_size);
        let mut centroids = Vec::new();
        for (_, leaf) in tree.leaves() {
            let mut c = vec![0.0f64; dim];
            for &r in &leaf.rows {
                c.iter_mut().zip(pts.vectors.get(r as usize)).for_each(|(a, &x)| *a += x as f64);
            }
            let n = leaf.rows.len().max(1) as f64;
            centroids.extend(c.into_iter().map(|a| (a / n) as f32));
        }
        let hasher =
            Hasher::new(Family::for_metric(pts.metric), params.tables, Self::bits_for(&params), dim, params.seed);
        let mut index = Self::assemble(params, pts, basis, coords, tree, centroids, hasher);
        // Fit the p-stable width on a sample of offsets from their centroids, then hash everything with it.
        if index.hasher.family == Family::PStable {
            let live = index.pts.live_rows();
            let step = (live.len() / 1024).max(1);
            let n = index.hasher.len();
            let sample: Vec<u32> = live.iter().step_by(step).copied().collect();
            let region_of_row = index.region_of_rows();
            let mut proj = vec![0.0f32; sample.len() * n];
            for (o, &r) in proj.chunks_exact_mut(n).zip(&sample) {
                index.hasher.project(index.pts.vectors.get(r as usize), o);
                let reg = region_of_row[r as usize] as usize;
                o.iter_mut().zip(&index.shifts[reg * n..(reg + 1) * n]).for_each(|(a, s)| *a -= s);
            }
            index.hasher.fit_width(&proj, params.width);
        }
        index.hash_all();
        index
    }

    /// Region number of every row (rows are in exactly one leaf).
    fn region_of_rows(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.pts.n_rows()];
        for (node, leaf) in self.tree.leaves() {
            for &r in &leaf.rows {
                out[r as usize] = self.region_of[node as usize];
            }
        }
        out
    }

    /// Ties the parts together: region numbers and centroid shifts; tables empty.
    fn assemble(
        params: KdLshParams,
        pts: Points,
        basis: Vec<f32>,
        coords: Vec<f32>,
        tree: KdTree,
        centroids: Vec<f32>,
        hasher: Hasher,
    ) -> Self {
        let mut region_of = vec![NONE; tree.nodes.len()];
        for (i, (node, _)) in tree.leaves().enumerate() {
            region_of[node as usize] = i as u32;
        }
        let n = hasher.len();
        let mut shifts = vec![0.0f32; centroids.len() / pts.dim() * n];
        for (c, s) in centroids.chunks_exact(pts.dim()).zip(shifts.chunks_exact_mut(n.max(1))) {
            hasher.project(c, s);
        }
        let buckets = vec![HashMap::new(); hasher.tables];
        Self { params, pts, basis, coords, tree, region_of, centroids, shifts, hasher, buckets }
    }

    /// Hashes every live row of every leaf into the tables (in leaf order, rows in leaf order).
    fn hash_all(&mut self) {
        let n = self.hasher.len();
        let work: Vec<(u32, u32)> = self
            .tree
            .leaves()
            .flat_map(|(node, leaf)| leaf.rows.iter().map(move |&r| (node, r)))
            .filter(|&(_, r)| !self.pts.deleted[r as usize])
            .collect();
        let mut proj = vec![0.0f32; work.len() * n];
        proj.par_chunks_mut(n.max(1)).zip(work.par_iter()).for_each(|(o, &(_, r))| {
            self.hasher.project(self.pts.vectors.get(r as usize), o);
        });
        let mut keys = Vec::new();
        for (&(node, row), p) in work.iter().zip(proj.chunks_exact_mut(n.max(1))) {
            self.add(node, row, p, &mut keys);
        }
    }

    /// Hashes `row` (raw projections `proj`, shifted here) into region `node`.
    fn add(&mut self, node: u32, row: u32, proj: &mut [f32], keys: &mut Vec<u64>) {
        let reg = self.region_of[node as usize] as usize;
        let n = self.hasher.len();
        proj.iter_mut().zip(&self.shifts[reg * n..(reg + 1) * n]).for_each(|(a, s)| *a -= s);
        let bits = self.hasher.bits;
        for t in 0..self.hasher.tables {
            keys.clear();
            self.hasher.probe_keys(t, &proj[t * bits..(t + 1) * bits], reg as u64, 1, keys);
            self.buckets[t].entry(keys[0]).or_default().push(row);
        }
    }

    /// The settings.
    pub fn params(&self) -> KdLshParams {
        self.params
    }

    /// Number of regions.
    pub fn regions(&self) -> usize {
        self.centroids.len() / self.pts.dim()
    }

    fn rebuild(&mut self) {
        *self = Self::from_points(self.params, self.pts.compacted());
    }

    /// Decodes an index written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "kd-lsh index", IndexKind::KdLsh.tag(), VERSION)?;
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
        p.set("region_size", r.u32()?).set("pca_dims", r.u32()?).set("tables", r.u32()?).set("bits", r.u32()?);
        p.set("seed", r.u64()?).set("width", f32::from_bits(r.u32()?));
        let w = f32::from_bits(r.u32()?);
        p.set("probe_regions", r.u32()?).set("probes", r.u32()?);
        let params = KdLshParams::from_params(p).map_err(|e| r.corrupt(at, e.to_string()))?;
        if !(w.is_finite() && w > 0.0) || params.tables * Self::bits_for(&params) * dim > 1 << 28 {
            return Err(r.corrupt(at, "cell width or hash count out of range"));
        }
        let pts = Points::read(&mut r, metric, dim)?;
        let pd = Self::pdim(&params, dim);
        let at = r.offset();
        let basis = r.f32s(pd * dim)?;
        if basis.iter().any(|x| !x.is_finite() || x.abs() > 1.0 + 1e-3) {
            return Err(r.corrupt(at, "basis is not orthonormal"));
        }
        let tree = KdTree::read(&mut r, pd, pts.n_rows())?;
        let leaves = tree.leaves().count();
        let at = r.offset();
        let centroids = r.f32s(leaves.checked_mul(dim).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        if centroids.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "non-finite centroid"));
        }
        r.finish()?;
        let coords = Self::project_all(&basis, &pts, pd);
        let mut hasher =
            Hasher::new(Family::for_metric(metric), params.tables, Self::bits_for(&params), dim, params.seed);
        hasher.width = w;
        let mut index = Self::assemble(params, pts, basis, coords, tree, centroids, hasher);
        index.hash_all();
        Ok(index)
    }
}

impl VectorIndex for KdLshIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::KdLsh
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
        let nprobe = params.nprobe.unwrap_or(self.params.probe_regions);
        let probes = params.probes.unwrap_or(self.params.probes);
        let cost = nprobe.saturating_mul(self.params.region_size).min(self.pts.n_rows());
        Ok(self.pts.search(&q, k, params.exact, cost, filter, |heap| {
            let h = &self.hasher;
            let n = h.len();
            let mut qp = vec![0.0f32; self.tree.dim];
            project_basis(&self.basis, self.dim(), &q, &mut qp);
            let mut regions = Vec::with_capacity(nprobe.min(64));
            self.tree.best_first(
                |lo, hi| {
                    qp.iter()
                        .zip(lo.iter().zip(hi))
                        .map(|(&x, (&l, &u))| {
                            let d = (l - x).max(x - u).max(0.0);
                            d * d
                        })
                        .sum::<f32>()
                },
                nprobe,
                |node, _| {
                    regions.push(node);
                    f32::INFINITY
                },
            );
            let mut aq = vec![0.0f32; n];
            h.project(&q, &mut aq);
            let mut proj = vec![0.0f32; n];
            let mut keys = Vec::with_capacity(probes);
            with_visited(self.pts.n_rows(), |seen| {
                for node in regions {
                    let reg = self.region_of[node as usize] as usize;
                    proj.iter_mut()
                        .zip(aq.iter().zip(&self.shifts[reg * n..(reg + 1) * n]))
                        .for_each(|(o, (a, s))| *o = a - s);
                    for t in 0..h.tables {
                        keys.clear();
                        h.probe_keys(t, &proj[t * h.bits..(t + 1) * h.bits], reg as u64, probes, &mut keys);
                        for key in &keys {
                            for &row in self.buckets[t].get(key).map_or(&[][..], Vec::as_slice) {
                                if seen.first(row) {
                                    self.pts.offer(&q, row, heap, filter);
                                }
                            }
                        }
                    }
                }
            })
        }))
    }

    fn memory_bytes(&self) -> usize {
        self.pts.memory_bytes()
            + self.basis.capacity() * 4
            + self.coords.capacity() * 4
            + self.tree.memory_bytes()
            + self.region_of.capacity() * 4
            + (self.centroids.capacity() + self.shifts.capacity()) * 4
            + self.hasher.memory_bytes()
            + buckets_memory(&self.buckets)
    }

    /// Payload (version 1), little-endian: metric tag u8, 3 zero bytes, dim u32, region_size u32, pca_dims u32,
    /// tables u32, bits as given u32 (0 = auto), seed u64, width factor f32, cell width in use f32,
    /// probe_regions u32, probes u32, the point block, the basis `p x dim x f32` (`p = min(pca_dims, dim)`), the
    /// tree block over the `p` projected coordinates, the centroids `leaves x dim x f32` (leaves in node order).
    /// Projected coordinates, centroid shifts and tables are recomputed on decoding.
    fn to_bytes(&self) -> Vec<u8> {
        let hint = 56 + self.pts.byte_len() + self.tree.byte_len() + (self.basis.len() + self.centroids.len()) * 4;
        let mut w = Writer::new(IndexKind::KdLsh.tag(), VERSION, hint);
        let p = &self.params;
        w.u8(self.metric().tag());
        w.bytes(&[0, 0, 0]);
        w.u32(self.dim() as u32);
        w.u32(p.region_size as u32);
        w.u32(p.pca_dims as u32);
        w.u32(p.tables as u32);
        w.u32(p.bits as u32);
        w.u64(p.seed);
        w.f32s(&[p.width, self.hasher.width]);
        w.u32(p.probe_regions as u32);
        w.u32(p.probes as u32);
        self.pts.write(&mut w);
        w.f32s(&self.basis);
        self.tree.write(&mut w);
        w.f32s(&self.centroids);
        w.finish()
    }
}

impl MutableIndex for KdLshIndex {
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        let v = self.pts.prepare(vector)?;
        let mut c = vec![0.0f32; self.tree.dim];
        project_basis(&self.basis, self.dim(), &v, &mut c);
        let row = self.pts.push(id, &v)?;
        self.coords.extend_from_slice(&c);
        let leaf = self.tree.insert(&c, row);
        let mut proj = vec![0.0f32; self.hasher.len()];
        self.hasher.project(&v, &mut proj);
        self.add(leaf, row, &mut proj, &mut Vec::new());
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
