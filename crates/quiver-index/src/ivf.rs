//! IVF: an inverted file over k-means cells (`nlist` centroids); a query scans only the `nprobe` cells whose
//! centroids are nearest. With `quantization=pq` the cells hold product-quantized *residuals* (vector minus its
//! cell's centroid) scored with per-query distance tables (IVF-PQ), optionally reranked on the f32 vectors.
//!
//! Layout: every cell is contiguous — its ids, then its f32 vectors (IVF-Flat) or its codes (IVF-PQ) back to
//! back — so probing a cell is one sequential scan with the tiled kernels. An id map gives each point's cell and
//! slot, so removal is a swap-remove inside the cell. Inserts go to the nearest cell; `rebalance` splits cells far
//! above the mean size and merges tiny ones, `retrain` re-clusters from scratch; `stats` reports the imbalance
//! factor `nlist · Σ size² / n²` (1.0 = perfectly even).

use crate::any::IndexKind;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::filter::IdFilter;
use crate::kmeans::{KMeansParams, kmeans};
use crate::metric::Metric;
use crate::neighbor::{Neighbor, TopK};
use crate::params::{Params, SearchParams};
use crate::quant::{Pq, PqTable, Quantization, Sq8};
use crate::traits::{MutableIndex, VectorIndex, prepare_query};
use crate::vectors::{VectorSet, prepare_build, validate_dim, validate_vector};
use std::collections::HashMap;

const VERSION: u16 = 1;

/// IVF settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IvfParams {
    /// Cells; 0 = `round(sqrt(n))` at build.
    pub nlist: usize,
    /// Default cells probed per query.
    pub nprobe: usize,
    /// `none` (IVF-Flat) or `pq` (IVF-PQ on residuals).
    pub quantization: Quantization,
    /// PQ sub-spaces; 0 = [`Pq::default_m`].
    pub pq_m: usize,
    /// IVF-PQ: keep the f32 vectors so results can be reranked exactly.
    pub store_vectors: bool,
    /// k-means seed.
    pub seed: u64,
    /// IVF-Flat: keep a one-byte-per-dimension copy of every vector and the exact size of its rounding error, so a
    /// scan reads a quarter of the bytes and computes the f32 distance only of vectors whose error bound says they
    /// could enter the top k. Results are the same as without it (the bound is never wrong); memory grows by
    /// `dim + 8` bytes per vector. Derived data: rebuilt on load, not serialised.
    pub prefilter: bool,
}

impl Default for IvfParams {
    fn default() -> Self {
        Self {
            nlist: 0,
            nprobe: 16,
            quantization: Quantization::None,
            pq_m: 0,
            store_vectors: true,
            seed: 0x001F_5EED,
            prefilter: true,
        }
    }
}

impl IvfParams {
    /// Build parameters accepted by [`IvfParams::from_params`].
    pub const NAMES: &'static [&'static str] =
        &["nlist", "nprobe", "quantization", "pq_m", "store_vectors", "seed", "prefilter"];

    /// Reads the parameters; unknown keys are an error.
    pub fn from_params(mut p: Params) -> Result<Self> {
        let d = Self::default();
        let out = Self {
            nlist: p.take_usize("nlist", 1, 1 << 20)?.unwrap_or(d.nlist),
            nprobe: p.take_usize("nprobe", 1, 1 << 20)?.unwrap_or(d.nprobe),
            quantization: p
                .take_str("quantization")
                .map(|q| Quantization::parse(&q))
                .transpose()?
                .unwrap_or(d.quantization),
            pq_m: p.take_usize("pq_m", 1, quiver_kernels::MAX_DIM)?.unwrap_or(d.pq_m),
            store_vectors: p.take_bool("store_vectors")?.unwrap_or(d.store_vectors),
            seed: p.take_u64("seed")?.unwrap_or(d.seed),
            prefilter: p.take_bool("prefilter")?.unwrap_or(d.prefilter),
        };
        p.finish("ivf index (build)", Self::NAMES)?;
        match out.quantization {
            Quantization::None | Quantization::Pq => Ok(out),
            Quantization::Sq8 | Quantization::Sq4 | Quantization::Bits => {
                Err(Error::invalid("quantization", "none or pq for an IVF index", out.quantization.name()))
            }
        }
    }
}

/// One inverted list: ids and, per id, either `dim` floats or `m` code bytes (plus `dim` floats when vectors are
/// stored for reranking); with the IVF-Flat prefilter also `dim` SQ8 bytes and two floats.
#[derive(Clone, Debug, Default, PartialEq)]
struct Cell {
    ids: Vec<u64>,
    vectors: Vec<f32>,
    codes: Vec<u8>,
    /// Prefilter: SQ8 codes of the vectors.
    sq_codes: Vec<u8>,
    /// Prefilter: per vector, an upper bound on `‖x − x̂‖` (the exact error plus a margin for f32 rounding).
    sq_radius: Vec<f32>,
    /// Prefilter: per vector, `‖x̂‖²` (Euclidean bounds).
    sq_norm2: Vec<f32>,
}

/// Counters describing an IVF index.
#[derive(Clone, Debug, PartialEq)]
pub struct IvfStats {
    /// Cells.
    pub nlist: usize,
    /// Points in the smallest and the largest cell.
    pub min_cell: usize,
    /// Points in the largest cell.
    pub max_cell: usize,
    /// `nlist · Σ size² / n²`: 1.0 when every cell holds the same number of points.
    pub imbalance: f64,
}

/// The inverted-file index. See the module docs.
#[derive(Clone, Debug)]
pub struct IvfIndex {
    params: IvfParams,
    metric: Metric,
    dim: usize,
    centroids: Vec<f32>,
    cells: Vec<Cell>,
    /// id → (cell, slot).
    slots: HashMap<u64, (u32, u32)>,
    pq: Option<Pq>,
    /// The IVF-Flat prefilter's quantizer (see [`IvfParams::prefilter`]).
    sq: Option<Sq8>,
}

impl IvfIndex {
    /// Search parameters IVF accepts.
    pub const SEARCH_PARAMS: &'static [&'static str] = &["nprobe", "rerank", "exact"];
    /// Default rerank factor for IVF-PQ with stored vectors.
    pub const DEFAULT_RERANK: usize = 4;

    /// Builds: k-means on the (prepared) vectors, then every vector into its nearest cell.
    pub fn build(metric: Metric, mut vectors: VectorSet, ids: Vec<u64>, params: Params) -> Result<Self> {
        let mut p = IvfParams::from_params(params)?;
        // Cells keep their own (cell, slot) map, so the id → row map is only the duplicate check here.
        prepare_build(metric, &mut vectors, &ids, u32::MAX as usize)?;
        let dim = vectors.dim();
        let n = vectors.len();
        if n == 0 {
            return Err(Error::invalid("vectors", "at least one vector to train the IVF cells", 0));
        }
        if p.nlist == 0 {
            p.nlist = ((n as f64).sqrt().round() as usize).max(1);
        }
        p.nlist = p.nlist.min(n);
        let mut km = KMeansParams::new(p.nlist);
        km.seed = p.seed;
        let centroids = kmeans(vectors.as_slice(), dim, &km)?;
        let cells = nearest_cells(metric, vectors.as_slice(), &centroids, dim);
        let pq = match p.quantization {
            Quantization::Pq => {
                let m = if p.pq_m == 0 { Pq::default_m(dim) } else { p.pq_m };
                let mut residuals = VectorSet::with_capacity(dim, n)?;
                let mut r = vec![0f32; dim];
                for (v, &c) in vectors.iter().zip(&cells) {
                    residual(v, &centroids[c * dim..(c + 1) * dim], &mut r);
                    residuals.push(&r)?;
                }
                Some(Pq::train(&residuals, m, p.seed)?)
            }
            Quantization::None => None,
            Quantization::Sq8 | Quantization::Sq4 | Quantization::Bits => {
                unreachable!("rejected by IvfParams::from_params")
            }
        };
        let sq = (pq.is_none() && p.prefilter).then(|| Sq8::train(&vectors));
        let mut index = Self {
            params: p,
            metric,
            dim,
            centroids,
            cells: vec![Cell::default(); p.nlist],
            slots: HashMap::with_capacity(n),
            pq,
            sq,
        };
        for ((&id, v), &c) in ids.iter().zip(vectors.iter()).zip(&cells) {
            index.place_in(c, id, v);
        }
        index.shrink_cells();
        Ok(index)
    }

    /// Builds the IVF-Flat prefilter (quantizer trained on the stored vectors, then every cell's codes) when the
    /// parameters ask for it.
    fn attach_prefilter(&mut self) {
        if self.pq.is_some() || !self.params.prefilter {
            return;
        }
        let sq = Sq8::train_rows(self.dim, self.cells.iter().flat_map(|c| c.vectors.chunks_exact(self.dim)));
        for cell in &mut self.cells {
            let vectors = std::mem::take(&mut cell.vectors);
            for v in vectors.chunks_exact(self.dim) {
                push_sq(&sq, cell, v);
            }
            cell.vectors = vectors;
        }
        self.sq = Some(sq);
    }

    /// Gives back the spare capacity that growing the cells one point at a time left (up to half their memory).
    fn shrink_cells(&mut self) {
        for c in &mut self.cells {
            c.ids.shrink_to_fit();
            c.vectors.shrink_to_fit();
            c.codes.shrink_to_fit();
            c.sq_codes.shrink_to_fit();
            c.sq_radius.shrink_to_fit();
            c.sq_norm2.shrink_to_fit();
        }
    }

    /// The cells' centroids, row-major (`nlist` rows of `dim` values).
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// The parameters in force (with `nlist` resolved).
    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// Cell sizes and imbalance.
    pub fn stats(&self) -> IvfStats {
        let sizes: Vec<usize> = self.cells.iter().map(|c| c.ids.len()).collect();
        let n: usize = sizes.iter().sum();
        let sq: f64 = sizes.iter().map(|&s| (s * s) as f64).sum();
        IvfStats {
            nlist: sizes.len(),
            min_cell: sizes.iter().copied().min().unwrap_or(0),
            max_cell: sizes.iter().copied().max().unwrap_or(0),
            imbalance: if n == 0 { 1.0 } else { sizes.len() as f64 * sq / (n * n) as f64 },
        }
    }

    fn stores_vectors(&self) -> bool {
        self.pq.is_none() || self.params.store_vectors
    }

    /// Appends a prepared vector to its nearest cell.
    fn place(&mut self, id: u64, v: &[f32]) {
        let c = nearest_cell(self.metric, v, &self.centroids, self.dim);
        self.place_in(c, id, v);
    }

    fn place_in(&mut self, c: usize, id: u64, v: &[f32]) {
        let dim = self.dim;
        let stores_vectors = self.stores_vectors();
        let cell = &mut self.cells[c];
        if let Some(pq) = &self.pq {
            let mut r = vec![0f32; dim];
            residual(v, &self.centroids[c * dim..(c + 1) * dim], &mut r);
            let start = cell.codes.len();
            cell.codes.resize(start + pq.m(), 0);
            pq.encode_into(&r, &mut cell.codes[start..]);
        }
        if stores_vectors {
            cell.vectors.extend_from_slice(v);
        }
        if let Some(sq) = &self.sq {
            push_sq(sq, cell, v);
        }
        cell.ids.push(id);
        self.slots.insert(id, (c as u32, (cell.ids.len() - 1) as u32));
    }

    /// Removes the point at `slot` of cell `c` by moving the cell's last point into its place.
    fn take_out(&mut self, c: usize, slot: usize) {
        let (dim, m) = (self.dim, self.pq.as_ref().map_or(0, Pq::m));
        let stores_vectors = self.stores_vectors();
        let cell = &mut self.cells[c];
        let last = cell.ids.len() - 1;
        cell.ids.swap_remove(slot);
        if stores_vectors {
            if slot != last {
                cell.vectors.copy_within(last * dim..(last + 1) * dim, slot * dim);
            }
            cell.vectors.truncate(last * dim);
        }
        if m > 0 {
            if slot != last {
                cell.codes.copy_within(last * m..(last + 1) * m, slot * m);
            }
            cell.codes.truncate(last * m);
        }
        if self.sq.is_some() {
            if slot != last {
                cell.sq_codes.copy_within(last * dim..(last + 1) * dim, slot * dim);
            }
            cell.sq_codes.truncate(last * dim);
            cell.sq_radius.swap_remove(slot);
            cell.sq_norm2.swap_remove(slot);
        }
        if let Some(&moved) = cell.ids.get(slot) {
            self.slots.insert(moved, (c as u32, slot as u32));
        }
    }

    /// The `nprobe` cells nearest to `q`.
    fn probe_order(&self, q: &[f32], nprobe: usize) -> Vec<(f32, usize)> {
        // One tiled kernel call over all centroids (contiguous), not one call per centroid.
        let mut raw = vec![0f32; self.cells.len()];
        let kernels = quiver_kernels::active();
        if self.metric.uses_dot() {
            kernels.dot_tile(q, &self.centroids, self.dim, &mut raw);
        } else {
            kernels.l2sq_tile(q, &self.centroids, self.dim, &mut raw);
        }
        let mut order: Vec<(f32, usize)> =
            raw.into_iter().enumerate().map(|(c, r)| (self.metric.distance_from_raw(r), c)).collect();
        let keep = nprobe.min(order.len());
        if keep < order.len() {
            order.select_nth_unstable_by(keep, |a, b| a.0.total_cmp(&b.0));
            order.truncate(keep);
        }
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        order
    }

    /// Scans one IVF-Flat cell through the prefilter: the SQ8 distance, widened by the vector's error radius,
    /// bounds the exact distance from below; only vectors whose bound does not exceed the current k-th distance
    /// are scored on their f32 values (with the same kernel as [`IvfIndex::scan_flat`], so results are equal).
    fn scan_flat_bounded(
        &self,
        q: &[f32],
        pre: &Prefilter,
        cell: &Cell,
        heap: &mut TopK,
        filter: Option<&dyn IdFilter>,
    ) {
        let (dim, metric) = (self.dim, self.metric);
        let k = quiver_kernels::active();
        let mut threshold = heap.threshold();
        let mut raw = [0f32; 1];
        for (i, (&id, code)) in cell.ids.iter().zip(cell.sq_codes.chunks_exact(dim)).enumerate() {
            let approx = Sq8::distance(metric, &pre.query, code, cell.sq_norm2[i]);
            let bound = if metric.uses_dot() {
                // |q·x − q·x̂| ≤ ‖q‖·‖x − x̂‖, and the distance falls as the inner product grows; `dot_slack`
                // covers the rounding of the code's score, the radius that of the exact inner product.
                approx - pre.q_norm * cell.sq_radius[i] - pre.dot_slack
            } else {
                // ‖q − x‖ ≥ ‖q − x̂‖ − ‖x − x̂‖. ‖q − x̂‖² is computed as ‖q‖² − 2q·x̂ + ‖x̂‖², whose terms can nearly
                // cancel: their rounding is taken off before the square root, and the result shrunk by the
                // exact kernel's own relative rounding.
                let lo2 = approx - (pre.l2_slack + pre.gamma * cell.sq_norm2[i]);
                let s = (lo2.max(0.0).sqrt() - cell.sq_radius[i]).max(0.0);
                s * s * (1.0 - pre.gamma)
            };
            if bound > threshold || filter.is_some_and(|f| !f.allows(id)) {
                continue;
            }
            let v = &cell.vectors[i * dim..(i + 1) * dim];
            if metric.uses_dot() {
                k.dot_tile(q, v, dim, &mut raw);
            } else {
                k.l2sq_tile(q, v, dim, &mut raw);
            }
            let d = metric.distance_from_raw(raw[0]);
            if d <= threshold && heap.push(Neighbor::new(id, d)) {
                threshold = heap.threshold();
            }
        }
    }

    /// Scans one IVF-Flat cell.
    fn scan_flat(&self, q: &[f32], cell: &Cell, heap: &mut TopK, filter: Option<&dyn IdFilter>, buf: &mut Vec<f32>) {
        let n = cell.ids.len();
        if n == 0 {
            return;
        }
        buf.resize(n, 0.0);
        let k = quiver_kernels::active();
        if self.metric.uses_dot() {
            k.dot_tile(q, &cell.vectors, self.dim, buf);
        } else {
            k.l2sq_tile(q, &cell.vectors, self.dim, buf);
        }
        let mut threshold = heap.threshold();
        for (&id, &raw) in cell.ids.iter().zip(buf.iter()) {
            let d = self.metric.distance_from_raw(raw);
            if d <= threshold && filter.is_none_or(|f| f.allows(id)) && heap.push(Neighbor::new(id, d)) {
                threshold = heap.threshold();
            }
        }
    }

    /// Scans one IVF-PQ cell with the query's table(s); pushes (approximate distance, slot-tagged id).
    fn scan_pq(
        &self,
        pq: &Pq,
        q: &[f32],
        c: usize,
        dot_table: Option<&PqTable>,
        out: &mut TopK,
        filter: Option<&dyn IdFilter>,
    ) {
        let cell = &self.cells[c];
        let m = pq.m();
        let centroid = &self.centroids[c * self.dim..(c + 1) * self.dim];
        let own_table;
        let (table, offset) = match dot_table {
            // q·x ≈ q·c + q·r̂: one table for every cell, plus this cell's constant.
            Some(t) => (t, quiver_kernels::dot(q, centroid)),
            // ‖q − x‖² ≈ ‖(q − c) − r̂‖²: a table per probed cell.
            None => {
                let mut qr = vec![0f32; self.dim];
                residual(q, centroid, &mut qr);
                own_table = pq.table(Metric::Euclidean, &qr);
                (&own_table, 0.0)
            }
        };
        let mut threshold = out.threshold();
        for (slot, (&id, code)) in cell.ids.iter().zip(cell.codes.chunks_exact(m)).enumerate() {
            let raw = offset + Pq::raw_sum(table, code);
            let d = self.metric.distance_from_raw(raw);
            // Ids travel as (cell, slot) so a rerank can find the stored vector without the map.
            if d <= threshold && filter.is_none_or(|f| f.allows(id)) && out.push(Neighbor::new(pack(c, slot), d)) {
                threshold = out.threshold();
            }
        }
    }

    /// Exact top-k over every point the filter allows (the fallback and the `exact` path).
    fn exact(&self, q: &[f32], k: usize, filter: Option<&dyn IdFilter>) -> Vec<Neighbor> {
        let mut heap = TopK::new(k);
        let mut buf = Vec::new();
        if self.stores_vectors() {
            for cell in &self.cells {
                self.scan_flat(q, cell, &mut heap, filter, &mut buf);
            }
        } else if let Some(pq) = &self.pq {
            // No vectors: score every code against the query (still the best this index can do).
            let table = self.metric.uses_dot().then(|| pq.table(Metric::Dot, q));
            let mut packed = TopK::new(k);
            for c in 0..self.cells.len() {
                self.scan_pq(pq, q, c, table.as_ref(), &mut packed, filter);
            }
            return self.unpack(packed.into_sorted_vec());
        }
        heap.into_sorted_vec()
    }

    /// How many points `filter` admits (see [`crate::filter::estimate_matches`]).
    fn estimate_matches(&self, filter: &dyn IdFilter) -> usize {
        // Slot i of the concatenated cells: find its cell by the running cell sizes.
        let ends: Vec<usize> = self
            .cells
            .iter()
            .scan(0usize, |acc, c| {
                *acc += c.ids.len();
                Some(*acc)
            })
            .collect();
        let id_at = |i: usize| {
            let c = ends.partition_point(|&end| end <= i);
            let start = if c == 0 { 0 } else { ends[c - 1] };
            self.cells.get(c).and_then(|cell| cell.ids.get(i - start)).copied()
        };
        crate::filter::estimate_matches(filter, self.len(), self.len(), id_at)
    }

    /// Exact top-k over the points a (selective) filter admits: visits only those when the filter can list them.
    fn exact_matching(&self, q: &[f32], k: usize, filter: &dyn IdFilter) -> Vec<Neighbor> {
        let Some(set) = filter.ids() else { return self.exact(q, k, Some(filter)) };
        if !self.stores_vectors() {
            return self.exact(q, k, Some(filter));
        }
        let mut heap = TopK::new(k);
        for id in set.iter() {
            if let Some(&(c, s)) = self.slots.get(&id) {
                let cell = &self.cells[c as usize];
                let v = &cell.vectors[s as usize * self.dim..(s as usize + 1) * self.dim];
                heap.push(Neighbor::new(id, self.metric.distance(q, v)));
            }
        }
        heap.into_sorted_vec()
    }

    fn unpack(&self, packed: Vec<Neighbor>) -> Vec<Neighbor> {
        packed
            .into_iter()
            .map(|n| {
                let (c, slot) = unpack(n.id);
                Neighbor::new(self.cells[c].ids[slot], n.distance)
            })
            .collect()
    }

    /// Re-clusters every point from scratch (same `nlist`) and rebuilds the cells.
    pub fn retrain(&mut self) -> Result<()> {
        let (ids, vectors) = self.all_vectors()?;
        let mut params = Params::new();
        let p = self.params;
        params.set("nlist", p.nlist).set("nprobe", p.nprobe).set("seed", p.seed).set("store_vectors", p.store_vectors);
        params.set("quantization", p.quantization.name()).set("prefilter", p.prefilter);
        if p.pq_m > 0 {
            params.set("pq_m", p.pq_m);
        }
        *self = Self::build(self.metric, vectors, ids, params)?;
        Ok(())
    }

    /// Splits every cell larger than `split_factor` × the mean size in two (2-means on its points) and merges
    /// every cell smaller than the mean / `merge_factor` into its nearest other cell. Returns the new stats.
    /// IVF-PQ without stored vectors cannot move points between cells and only reports.
    pub fn rebalance(&mut self, split_factor: f64, merge_factor: f64) -> Result<IvfStats> {
        if !self.stores_vectors() {
            return Ok(self.stats());
        }
        let dim = self.dim;
        let mean = self.len() as f64 / self.cells.len().max(1) as f64;
        // Merge tiny cells first (their points go to the nearest remaining centroid).
        let tiny: Vec<usize> =
            (0..self.cells.len()).filter(|&c| (self.cells[c].ids.len() as f64) < mean / merge_factor).collect();
        if tiny.len() < self.cells.len() {
            let mut moved: Vec<(u64, Vec<f32>)> = Vec::new();
            for &c in tiny.iter().rev() {
                let cell = self.cells.remove(c);
                self.centroids.drain(c * dim..(c + 1) * dim);
                for (i, &id) in cell.ids.iter().enumerate() {
                    moved.push((id, cell.vectors[i * dim..(i + 1) * dim].to_vec()));
                }
            }
            self.reindex_slots();
            for (id, v) in moved {
                self.place(id, &v);
            }
        }
        // Split oversized cells.
        let big: Vec<usize> = (0..self.cells.len())
            .filter(|&c| self.cells[c].ids.len() >= 2 && self.cells[c].ids.len() as f64 > mean * split_factor)
            .collect();
        for c in big {
            let cell = std::mem::take(&mut self.cells[c]);
            let mut km = KMeansParams::new(2);
            km.seed = self.params.seed ^ c as u64;
            let two = kmeans(&cell.vectors, dim, &km)?;
            self.centroids[c * dim..(c + 1) * dim].copy_from_slice(&two[..dim]);
            self.centroids.extend_from_slice(&two[dim..]);
            self.cells.push(Cell::default());
            let other = self.cells.len() - 1;
            for (i, &id) in cell.ids.iter().enumerate() {
                let v = &cell.vectors[i * dim..(i + 1) * dim];
                let target = if self.metric.distance(v, &two[..dim]) <= self.metric.distance(v, &two[dim..]) {
                    c
                } else {
                    other
                };
                self.place_in(target, id, v);
            }
        }
        self.params.nlist = self.cells.len();
        self.reindex_slots();
        self.shrink_cells();
        Ok(self.stats())
    }

    fn reindex_slots(&mut self) {
        self.slots.clear();
        for (c, cell) in self.cells.iter().enumerate() {
            for (s, &id) in cell.ids.iter().enumerate() {
                self.slots.insert(id, (c as u32, s as u32));
            }
        }
    }

    /// Every stored (prepared) vector with its id. Errors for IVF-PQ without stored vectors.
    fn all_vectors(&self) -> Result<(Vec<u64>, VectorSet)> {
        if !self.stores_vectors() {
            return Err(Error::invalid("store_vectors", "true to retrain (the vectors are needed)", false));
        }
        let mut ids = Vec::with_capacity(self.len());
        let mut data = Vec::with_capacity(self.len() * self.dim);
        for cell in &self.cells {
            ids.extend_from_slice(&cell.ids);
            data.extend_from_slice(&cell.vectors);
        }
        Ok((ids, VectorSet::from_flat(self.dim, data)?))
    }

    /// Decodes an index written by [`VectorIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "ivf index", IndexKind::Ivf.tag(), VERSION)?;
        let at = r.offset();
        let metric = Metric::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown metric tag"))?;
        let at = r.offset();
        let quantization = Quantization::from_tag(r.u8()?).ok_or_else(|| r.corrupt(at, "unknown quantization tag"))?;
        let store_vectors = r.u8()? != 0;
        let at_flags = r.offset();
        let prefilter = match r.u8()? {
            0 => true,
            1 => false,
            _ => return Err(r.corrupt(at_flags, "unknown prefilter flag")),
        };
        let at = r.offset();
        let dim = r.u32()? as usize;
        validate_dim(dim).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        let nlist = r.u32()? as usize;
        let nprobe = r.u32()? as usize;
        let pq_m = r.u32()? as usize;
        let seed = r.u64()?;
        if nlist == 0 || nprobe == 0 || !matches!(quantization, Quantization::None | Quantization::Pq) {
            return Err(r.corrupt(at, "invalid IVF parameters"));
        }
        let at = r.offset();
        let centroids = r.f32s(nlist.checked_mul(dim).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        if centroids.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "centroid value is not finite"));
        }
        let pq = match quantization {
            Quantization::Pq => Some(Pq::read(&mut r, Some(dim))?),
            _ => None,
        };
        let stores = pq.is_none() || store_vectors;
        let m = pq.as_ref().map_or(0, Pq::m);
        let mut cells = Vec::with_capacity(nlist.min(1 << 20));
        let mut slots = HashMap::new();
        for c in 0..nlist {
            let at = r.offset();
            let len = r.u32()? as usize;
            let ids = r.u64s(len)?;
            let vectors = if stores {
                r.f32s(len.checked_mul(dim).ok_or_else(|| r.corrupt(at, "count overflows"))?)?
            } else {
                Vec::new()
            };
            if vectors.iter().any(|x| !x.is_finite()) {
                return Err(r.corrupt(at, "vector value is not finite"));
            }
            let codes = r.bytes(len * m)?.to_vec();
            if let Some(pq) = &pq
                && codes.iter().any(|&b| b as usize >= pq.ksub())
            {
                return Err(r.corrupt(at, "code refers to a missing centroid"));
            }
            for (s, &id) in ids.iter().enumerate() {
                if slots.insert(id, (c as u32, s as u32)).is_some() {
                    return Err(r.corrupt(at, format!("duplicate id {id}")));
                }
            }
            cells.push(Cell { ids, vectors, codes, ..Cell::default() });
        }
        r.finish()?;
        let params = IvfParams { nlist, nprobe, quantization, pq_m, store_vectors, seed, prefilter };
        let mut index = Self { params, metric, dim, centroids, cells, slots, pq, sq: None };
        index.attach_prefilter();
        index.shrink_cells();
        Ok(index)
    }
}

/// A query prepared for [`IvfIndex::scan_flat_bounded`].
///
/// Rounding: an f32 sum of `n` products, in any order and with or without FMA, is within `n·ε·Σ|termᵢ|` of the
/// exact sum (ε = 2⁻²³); [`rounding`] doubles that and adds a few steps for the operations around it. The code's
/// score `q·lo + Σ (qᵢ·stepᵢ)·cᵢ` has terms bounded by `B = Σ |qᵢ|·(|loᵢ| + 255·stepᵢ)`, so it is within `γ·B` of
/// `q·x̂`; the exact kernel's inner product is within `γ·‖q‖·‖x‖` of `q·x` (folded into each vector's radius), and
/// its Euclidean distance, a sum of squares, within a factor `1 ± γ`.
struct Prefilter {
    query: crate::quant::Sq8Query,
    /// `‖q‖`, rounded up.
    q_norm: f32,
    /// `γ` for this dimension.
    gamma: f32,
    /// Dot/cosine: `γ·(B + 1)`, the rounding of the code's score (and of `1 − score`).
    dot_slack: f32,
    /// Euclidean: `γ·(‖q‖² + 2B)`; with `γ·‖x̂‖²` the rounding of `‖q‖² − 2q·x̂ + ‖x̂‖²`.
    l2_slack: f32,
}

impl Prefilter {
    fn new(sq: &Sq8, q: &[f32]) -> Self {
        let gamma = rounding(q.len());
        let q_norm2 = quiver_kernels::dot(q, q);
        let b = (sq.score_magnitude(q) * (1.0 + f64::from(gamma))) as f32;
        Self {
            query: sq.query(q),
            q_norm: q_norm2.sqrt() * (1.0 + gamma),
            gamma,
            dot_slack: gamma * (b + 1.0),
            l2_slack: gamma * (q_norm2 + 2.0 * b),
        }
    }
}

/// The relative rounding allowance `γ` of an f32 inner product of `dim` terms (see [`Prefilter`]).
fn rounding(dim: usize) -> f32 {
    2.0 * (dim as f32 + 8.0) * f32::EPSILON
}

/// Appends `v`'s SQ8 code, radius and decoded norm to `cell`. The radius is `‖x − x̂‖` (x̂ decoded exactly, in
/// f64) plus `γ·(‖x̂‖ + ‖x − x̂‖)`, which covers the exact kernel's rounding of `q·x` once multiplied by `‖q‖`.
fn push_sq(sq: &Sq8, cell: &mut Cell, v: &[f32]) {
    let start = cell.sq_codes.len();
    cell.sq_codes.resize(start + v.len(), 0);
    let code = &mut cell.sq_codes[start..];
    sq.encode_into(v, code);
    let (mut err2, mut norm2) = (0f64, 0f64);
    for (d, (&x, &c)) in v.iter().zip(code.iter()).enumerate() {
        let xh = sq.decode_exact(d, c);
        err2 += (f64::from(x) - xh).powi(2);
        norm2 += xh * xh;
    }
    let (err, norm) = (err2.sqrt(), norm2.sqrt());
    let radius = err + f64::from(rounding(v.len())) * (norm + err);
    // Rounded up into f32.
    cell.sq_radius.push((radius * (1.0 + 1e-6)) as f32);
    cell.sq_norm2.push(norm2 as f32);
}

/// `out = v − c`.
fn residual(v: &[f32], c: &[f32], out: &mut [f32]) {
    for ((o, a), b) in out.iter_mut().zip(v).zip(c) {
        *o = a - b;
    }
}

/// [`nearest_cell`] of every row of `points`: blocks of 64 rows are scored against all centroids with one tiled
/// kernel call each, in parallel over blocks.
fn nearest_cells(metric: Metric, points: &[f32], centroids: &[f32], dim: usize) -> Vec<usize> {
    use rayon::prelude::*;
    const BLOCK: usize = 64;
    let k = centroids.len() / dim;
    points
        .par_chunks(BLOCK * dim)
        .flat_map_iter(|block| {
            let mut raw = vec![0f32; (block.len() / dim) * k];
            let kernels = quiver_kernels::active();
            if metric.uses_dot() {
                kernels.dot_tile(block, centroids, dim, &mut raw);
            } else {
                kernels.l2sq_tile(block, centroids, dim, &mut raw);
            }
            raw.chunks_exact(k)
                .map(|row| {
                    let best = row.iter().enumerate().map(|(c, &r)| (c, metric.distance_from_raw(r)));
                    best.fold((0usize, f32::INFINITY), |b, cur| if cur.1 < b.1 { cur } else { b }).0
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The cell whose centroid is nearest to `v` under `metric` (inner product for dot, as FAISS does).
fn nearest_cell(metric: Metric, v: &[f32], centroids: &[f32], dim: usize) -> usize {
    let mut best = (0usize, f32::INFINITY);
    for (c, cv) in centroids.chunks_exact(dim).enumerate() {
        let d = metric.distance(v, cv);
        if d < best.1 {
            best = (c, d);
        }
    }
    best.0
}

/// Packs (cell, slot) into a u64 for candidates found on codes.
fn pack(cell: usize, slot: usize) -> u64 {
    ((cell as u64) << 32) | slot as u64
}

fn unpack(x: u64) -> (usize, usize) {
    ((x >> 32) as usize, (x & 0xFFFF_FFFF) as usize)
}

impl VectorIndex for IvfIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Ivf
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn contains(&self, id: u64) -> bool {
        self.slots.contains_key(&id)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&dyn IdFilter>,
    ) -> Result<Vec<Neighbor>> {
        let q = prepare_query(self.metric, self.dim, query)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        if params.exact {
            return Ok(self.exact(&q, k, filter));
        }
        let mut nprobe = params.nprobe.unwrap_or(self.params.nprobe).max(1);
        if let Some(f) = filter {
            // Plan: when the matching points are fewer than the probed cells would hold, score just them;
            // otherwise probe proportionally more cells, so about as many matching points are seen as unfiltered.
            let n = self.len();
            let matches = self.estimate_matches(f).max(1);
            let probed_points = n * nprobe.min(self.cells.len()) / self.cells.len().max(1);
            if matches <= probed_points {
                return Ok(self.exact_matching(&q, k, f));
            }
            nprobe = (nprobe * n).div_ceil(matches).min(self.cells.len());
        }
        let probes = self.probe_order(&q, nprobe);
        let found = match &self.pq {
            None => {
                let mut heap = TopK::new(k);
                let mut buf = Vec::new();
                let pre = self.sq.as_ref().map(|sq| Prefilter::new(sq, &q));
                for &(_, c) in &probes {
                    match &pre {
                        Some(pre) => self.scan_flat_bounded(&q, pre, &self.cells[c], &mut heap, filter),
                        None => self.scan_flat(&q, &self.cells[c], &mut heap, filter, &mut buf),
                    }
                }
                heap.into_sorted_vec()
            }
            Some(pq) => {
                let rerank = if self.params.store_vectors { params.rerank.unwrap_or(Self::DEFAULT_RERANK) } else { 0 };
                let mut packed = TopK::new(if rerank > 0 { k.saturating_mul(rerank) } else { k });
                let table = self.metric.uses_dot().then(|| pq.table(Metric::Dot, &q));
                for &(_, c) in &probes {
                    self.scan_pq(pq, &q, c, table.as_ref(), &mut packed, filter);
                }
                let approx = packed.into_sorted_vec();
                if rerank > 0 {
                    let mut heap = TopK::new(k);
                    for n in approx {
                        let (c, slot) = unpack(n.id);
                        let cell = &self.cells[c];
                        let v = &cell.vectors[slot * self.dim..(slot + 1) * self.dim];
                        heap.push(Neighbor::new(cell.ids[slot], self.metric.distance(&q, v)));
                    }
                    heap.into_sorted_vec()
                } else {
                    let mut out = self.unpack(approx);
                    out.truncate(k);
                    out
                }
            }
        };
        // A selective filter (or tiny probed cells) can leave fewer than k: fall back to every cell.
        if found.len() < k && found.len() < self.len() {
            let exact = self.exact(&q, k, filter);
            if exact.len() > found.len() {
                return Ok(exact);
            }
        }
        Ok(found)
    }

    fn memory_bytes(&self) -> usize {
        let cells: usize = self
            .cells
            .iter()
            .map(|c| {
                c.ids.capacity() * 8
                    + c.vectors.capacity() * 4
                    + c.codes.capacity()
                    + c.sq_codes.capacity()
                    + (c.sq_radius.capacity() + c.sq_norm2.capacity()) * 4
            })
            .sum();
        let map = self.slots.capacity() * (8 + 8 + 1) * 8 / 7;
        cells + map + self.centroids.capacity() * 4 + self.pq.as_ref().map_or(0, Pq::memory_bytes)
    }

    /// Payload (version 1), little-endian: metric tag u8, quantization tag u8 (0 none, 2 pq), store_vectors u8,
    /// prefilter u8 (0 on, 1 off; files from before the prefilter hold 0), dim u32, nlist u32, nprobe u32, pq_m u32, seed u64, centroids `nlist x dim x f32`, with pq the
    /// product quantizer (as in HNSW), then per cell: count u32, ids `count x u64`, vectors `count x dim x f32`
    /// (IVF-Flat, or IVF-PQ with stored vectors), codes `count x m x u8` (IVF-PQ).
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(IndexKind::Ivf.tag(), VERSION, 64 + self.memory_bytes());
        w.u8(self.metric.tag());
        w.u8(self.params.quantization.tag());
        w.u8(u8::from(self.params.store_vectors));
        w.u8(u8::from(!self.params.prefilter));
        w.u32(self.dim as u32);
        w.u32(self.cells.len() as u32);
        w.u32(self.params.nprobe as u32);
        w.u32(self.params.pq_m as u32);
        w.u64(self.params.seed);
        w.f32s(&self.centroids);
        if let Some(pq) = &self.pq {
            pq.write(&mut w);
        }
        for cell in &self.cells {
            w.u32(cell.ids.len() as u32);
            w.u64s(&cell.ids);
            w.f32s(&cell.vectors);
            w.bytes(&cell.codes);
        }
        w.finish()
    }
}

impl MutableIndex for IvfIndex {
    fn insert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        validate_vector(vector, self.dim)?;
        let mut v = vector.to_vec();
        self.metric.prepare(&mut v)?;
        self.remove(id);
        self.place(id, &v);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some((c, slot)) = self.slots.remove(&id) else { return false };
        self.take_out(c as usize, slot as usize);
        true
    }
}
