//! Quantizers: compact codes that a per-query scorer measures without decoding.
//!
//! [`Sq8`] — scalar quantization to one byte per dimension with a trained range per dimension. A query is not
//! quantized: it is turned into per-dimension weights so that `q · x̂ = bias + Σ wᵢ cᵢ` with the f32×u8 SIMD
//! kernel, which keeps the query's full precision and reads a quarter of the bytes of f32 vectors.

use crate::code_rows::CodeRows;
use crate::codec::{Reader, Writer};

/// Envelope kind tags of stand-alone quantizers (indexes use 1..=63).
const SQ8_TAG: u8 = 64;
const PQ_TAG: u8 = 65;
const BITS_TAG: u8 = 66;
const QUANTIZER_VERSION: u16 = 1;
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::storage::{QueryScorer, VectorStorage};
use crate::vectors::VectorSet;
use rayon::prelude::*;

/// Scalar quantizer: `x̂ᵢ = loᵢ + stepᵢ · cᵢ`, `cᵢ ∈ 0..=255`.
///
/// Invariant: `lo` and `step` have the quantizer's dimension, are finite, and every `step > 0`.
/// Values outside the trained range are clamped to it; inside it the reconstruction error of a dimension is at
/// most `stepᵢ / 2`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sq8 {
    lo: Vec<f32>,
    step: Vec<f32>,
}

/// A query prepared for scoring against [`Sq8`] codes.
#[derive(Clone, Debug)]
pub struct Sq8Query {
    weights: Vec<f32>,
    bias: f32,
    norm2: f32,
}

/// Smallest step, so a constant dimension still decodes to its value.
const MIN_STEP: f32 = 1e-12;

impl Sq8 {
    /// Learns each dimension's range (min..max) from `vectors`. An empty set gives the range -1..1 of unit
    /// vectors.
    pub fn train(vectors: &VectorSet) -> Self {
        Self::train_rows(vectors.dim(), vectors.iter())
    }

    /// As [`Sq8::train`], from rows of `dim` values.
    pub fn train_rows<'a>(dim: usize, rows: impl IntoIterator<Item = &'a [f32]>) -> Self {
        let mut rows = rows.into_iter().peekable();
        if rows.peek().is_none() {
            return Self { lo: vec![-1.0; dim], step: vec![2.0 / 255.0; dim] };
        }
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for v in rows {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(v) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        let step = lo.iter().zip(&hi).map(|(l, h)| ((h - l) / 255.0).max(MIN_STEP)).collect();
        Self { lo, step }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// Largest reconstruction error of dimension `d` for a value inside the trained range.
    pub fn max_error(&self, d: usize) -> f32 {
        self.step[d] / 2.0
    }

    /// Encodes `v` into `out` (both of the quantizer's dimension).
    pub fn encode_into(&self, v: &[f32], out: &mut [u8]) {
        for (((o, &x), &l), &s) in out.iter_mut().zip(v).zip(&self.lo).zip(&self.step) {
            *o = ((x - l) / s).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Decodes `c` into `out`.
    pub fn decode_into(&self, c: &[u8], out: &mut [f32]) {
        for (((o, &x), &l), &s) in out.iter_mut().zip(c).zip(&self.lo).zip(&self.step) {
            *o = l + s * f32::from(x);
        }
    }

    /// The decoded value of code byte `c` in dimension `d`, without rounding (the value a query's score
    /// `bias + Σ wᵢcᵢ` approximates).
    #[inline]
    pub fn decode_exact(&self, d: usize, c: u8) -> f64 {
        f64::from(self.lo[d]) + f64::from(self.step[d]) * f64::from(c)
    }

    /// `Σ |qᵢ|·(|loᵢ| + 255·stepᵢ)`: a bound on the magnitude of every term of a query's score against any code,
    /// which bounds the score's rounding error.
    pub fn score_magnitude(&self, q: &[f32]) -> f64 {
        q.iter()
            .zip(self.lo.iter().zip(&self.step))
            .map(|(&x, (&l, &s))| f64::from(x).abs() * (f64::from(l).abs() + 255.0 * f64::from(s)))
            .sum()
    }

    /// Squared norm of the decoded vector (stored beside each code for Euclidean distances).
    pub fn decoded_norm2(&self, c: &[u8]) -> f32 {
        c.iter().zip(&self.lo).zip(&self.step).map(|((&x, &l), &s)| (l + s * f32::from(x)).powi(2)).sum()
    }

    /// Prepares a (metric-prepared) query.
    pub fn query(&self, q: &[f32]) -> Sq8Query {
        let weights = q.iter().zip(&self.step).map(|(x, s)| x * s).collect();
        let bias = q.iter().zip(&self.lo).map(|(x, l)| x * l).sum();
        let norm2 = quiver_kernels::dot(q, q);
        Sq8Query { weights, bias, norm2 }
    }

    /// Approximate distance from a prepared query to a code (`code_norm2` from [`Sq8::decoded_norm2`], used by
    /// Euclidean only).
    #[inline]
    pub fn distance(metric: Metric, q: &Sq8Query, code: &[u8], code_norm2: f32) -> f32 {
        Self::distance_from_dot(metric, q, q.bias + quiver_kernels::dot_f32_u8(&q.weights, code), || code_norm2)
    }

    /// The distance for a query whose score against a code is `dot` (`bias + Σ wᵢcᵢ`). The code's norm is read
    /// under Euclidean only: for the others it would be one more load from a random row of memory per score.
    #[inline]
    fn distance_from_dot(metric: Metric, q: &Sq8Query, dot: f32, code_norm2: impl FnOnce() -> f32) -> f32 {
        match metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::Euclidean => (q.norm2 - 2.0 * dot + code_norm2()).max(0.0),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.lo.len() as u32);
        w.f32s(&self.lo);
        w.f32s(&self.step);
    }

    /// The quantizer alone, in the checksummed envelope (kind tag 64; payload as inside an HNSW index).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(SQ8_TAG, QUANTIZER_VERSION, 4 + self.lo.len() * 8);
        self.write(&mut w);
        w.finish()
    }

    /// Decodes [`Sq8::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "sq8 quantizer", SQ8_TAG, QUANTIZER_VERSION)?;
        let q = Self::read(&mut r, None)?;
        r.finish()?;
        Ok(q)
    }

    /// Reads the payload; `expect` is the owning index's dimension, if any.
    pub(crate) fn read(r: &mut Reader<'_>, expect: Option<usize>) -> Result<Self> {
        let at = r.offset();
        let d = r.u32()? as usize;
        crate::vectors::validate_dim(d).map_err(|e| r.corrupt(at, e.to_string()))?;
        if expect.is_some_and(|dim| dim != d) {
            return Err(r.corrupt(at, format!("quantizer dimension {d}, index dimension {expect:?}")));
        }
        let lo = r.f32s(d)?;
        let at = r.offset();
        let step = r.f32s(d)?;
        if lo.iter().any(|x| !x.is_finite()) || step.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(r.corrupt(at, "quantizer range is not finite and positive"));
        }
        Ok(Self { lo, step })
    }
}

/// SQ8 codes of a set of prepared vectors (row `i` at `[i * dim..]`) and each decoded vector's squared norm
/// (for Euclidean distances).
#[derive(Clone, Debug, PartialEq)]
pub struct Sq8Storage {
    metric: Metric,
    quantizer: Sq8,
    codes: CodeRows<u8>,
    norms: Vec<f32>,
}

impl Sq8Storage {
    /// Trains a quantizer on `vectors` (already prepared for `metric`) and encodes them, in parallel.
    pub fn train(metric: Metric, vectors: &VectorSet) -> Self {
        let quantizer = Sq8::train(vectors);
        let codes = CodeRows::encode(vectors.dim(), vectors, |v, c| quantizer.encode_into(v, c));
        let norms = codes.as_slice().par_chunks_exact(vectors.dim()).map(|c| quantizer.decoded_norm2(c)).collect();
        Self { metric, quantizer, codes, norms }
    }

    /// Appends the code of one prepared vector.
    pub fn push(&mut self, v: &[f32]) {
        let q = &self.quantizer;
        let code = self.codes.push(v, |v, c| q.encode_into(v, c));
        self.norms.push(q.decoded_norm2(code));
    }

    /// Code of row `row`.
    #[inline]
    pub fn code(&self, row: usize) -> &[u8] {
        self.codes.get(row)
    }

    /// The quantizer.
    pub fn quantizer(&self) -> &Sq8 {
        &self.quantizer
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.quantizer.write(w);
        w.bytes(self.codes.as_slice());
        w.f32s(&self.norms);
    }

    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric, dim: usize, rows: usize) -> Result<Self> {
        let quantizer = Sq8::read(r, Some(dim))?;
        let at = r.offset();
        let bytes = r.bytes(rows.checked_mul(dim).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        let codes = CodeRows::from_vec(dim, crate::huge::copied(bytes));
        let at = r.offset();
        let norms = r.f32s(rows)?;
        if norms.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "code norm is not finite"));
        }
        Ok(Self { metric, quantizer, codes, norms })
    }
}

/// A query's SQ8 weights rounded to 16-bit integers under one scale, for graph traversal: `Σ wᵢcᵢ ≈ scale ·
/// Σ ŵᵢcᵢ`, the sum taken exactly in integers by `dot_i16_u8` (one 32-lane multiply-add per 32 dimensions instead
/// of 16-lane conversions and FMAs). Rounding moves each weight by at most `scale / 2`, so the score by at most
/// `Σ cᵢ · scale / 2` — with 14-bit weights at most `max |wᵢ| / 128` per dimension, against SQ8's own error of up
/// to `|wᵢ| / 2` per dimension (on the WordNet MiniLM queries the first bound is a median 1/15 of the second).
/// Only traversal uses it: the graph's candidates are reranked on the f32 vectors, and IVF's SQ8 bounds keep the
/// f32 weights.
#[derive(Clone, Debug)]
struct Sq8IntWeights {
    weights: Vec<i16>,
    scale: f32,
}

impl Sq8IntWeights {
    /// Largest |ŵᵢ|: 14 bits, and low enough that `Σ |ŵᵢ| · 255` stays inside i32 (the kernel's exact range).
    fn limit(dim: usize) -> usize {
        (i32::MAX as usize / (255 * dim.max(1))).min(16_383)
    }

    /// `None` past about 8,000 dimensions, where the i32 range would leave the weights fewer than 10 bits.
    fn new(weights: &[f32]) -> Option<Self> {
        let limit = Self::limit(weights.len());
        if limit < 1_023 {
            return None;
        }
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        if max == 0.0 {
            return Some(Self { weights: vec![0; weights.len()], scale: 0.0 });
        }
        let inv = limit as f32 / max;
        // |w · inv| ≤ limit (up to rounding, which `as` saturates at i16 anyway).
        Some(Self { weights: weights.iter().map(|w| (w * inv).round() as i16).collect(), scale: max / limit as f32 })
    }
}

/// Scores one query against [`Sq8Storage`] codes (with the query's weights rounded to 16 bits where the
/// dimension allows, see [`Sq8IntWeights`]).
#[derive(Debug)]
pub struct Sq8Scorer<'a> {
    storage: &'a Sq8Storage,
    query: Sq8Query,
    int: Option<Sq8IntWeights>,
}

impl QueryScorer for Sq8Scorer<'_> {
    #[inline]
    fn distance(&self, row: usize) -> f32 {
        let code = self.storage.code(row);
        let dot = match &self.int {
            Some(w) => self.query.bias + w.scale * quiver_kernels::dot_i16_u8(&w.weights, code) as f32,
            None => self.query.bias + quiver_kernels::dot_f32_u8(&self.query.weights, code),
        };
        Sq8::distance_from_dot(self.storage.metric, &self.query, dot, || self.storage.norms[row])
    }

    fn distances(&self, start: usize, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.distance(start + i);
        }
    }

    #[inline]
    fn prefetch(&self, row: usize) {
        // The whole code (6 lines at 384 dimensions): the search keeps only a few neighbours in flight.
        let code = self.storage.code(row);
        quiver_kernels::prefetch(code, code.len().div_ceil(64));
    }

    /// Four whole codes ahead. Asking for every neighbour at once (two lines each, the earlier scheme) overflows
    /// the core's outstanding-miss slots and leaves most of each code to demand loads; four ahead measured
    /// 1.1–1.7x faster on 100k and 1M sets, three was level with four (AMD EPYC; docs/benchmarks.md,
    /// "Prefetching a few neighbours ahead").
    fn prefetch_ahead(&self) -> usize {
        4
    }
}

impl VectorStorage for Sq8Storage {
    type Scorer<'a> = Sq8Scorer<'a>;

    fn scorer<'a>(&'a self, query: &'a [f32]) -> Sq8Scorer<'a> {
        let query = self.quantizer.query(query);
        let int = Sq8IntWeights::new(&query.weights);
        Sq8Scorer { storage: self, query, int }
    }

    fn rows(&self) -> usize {
        self.norms.len()
    }

    fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes() + self.norms.capacity() * 4 + self.quantizer.dim() * 8
    }
}

/// Product quantizer: `m` sub-spaces of `dim / m` dimensions with up to 256 centroids each, one byte per
/// sub-space. A query builds a table of its distance to every centroid of every sub-space (asymmetric distance
/// computation); a code's distance is then `m` table lookups.
#[derive(Clone, Debug, PartialEq)]
pub struct Pq {
    dim: usize,
    m: usize,
    ksub: usize,
    /// `m x ksub x (dim / m)` values.
    centroids: Vec<f32>,
}

/// A query's distance table for [`Pq`] codes.
#[derive(Clone, Debug)]
pub struct PqTable {
    /// One row of 256 entries per sub-space (padded when `ksub < 256`), so a `u8` code indexes a row without a
    /// bounds check.
    rows: Vec<[f32; 256]>,
    metric: Metric,
}

impl Pq {
    /// The default number of sub-spaces for `dim`: 8 dimensions each when `dim` allows, else 4, 2 or 1.
    pub fn default_m(dim: usize) -> usize {
        [8usize, 4, 2, 1].into_iter().find(|d| dim.is_multiple_of(*d)).map_or(dim, |d| dim / d)
    }

    /// Trains `m` sub-quantizers on `vectors` with k-means (256 centroids each, or as many as there are
    /// training points), from a fixed seed.
    pub fn train(vectors: &VectorSet, m: usize, seed: u64) -> Result<Self> {
        let dim = vectors.dim();
        if m == 0 || !dim.is_multiple_of(m) {
            return Err(Error::invalid("pq_m", format!("a divisor of the dimension {dim}"), m));
        }
        if vectors.is_empty() {
            return Err(Error::invalid("vectors", "at least one vector to train a product quantizer", 0));
        }
        let dsub = dim / m;
        let ksub = vectors.len().min(256);
        let subs: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|j| {
                let part: Vec<f32> = vectors.iter().flat_map(|v| v[j * dsub..(j + 1) * dsub].iter().copied()).collect();
                let mut params = crate::kmeans::KMeansParams::new(ksub);
                params.max_sample = 10_000;
                params.max_iters = 12;
                params.seed = seed ^ (j as u64).wrapping_mul(0x9E37_79B9);
                crate::kmeans::kmeans(&part, dsub, &params)
            })
            .collect::<Result<_>>()?;
        Ok(Self { dim, m, ksub, centroids: subs.concat() })
    }

    /// Sub-spaces (bytes per code).
    pub fn m(&self) -> usize {
        self.m
    }

    fn dsub(&self) -> usize {
        self.dim / self.m
    }

    fn centroid(&self, j: usize, c: usize) -> &[f32] {
        let d = self.dsub();
        &self.centroids[(j * self.ksub + c) * d..(j * self.ksub + c + 1) * d]
    }

    /// Encodes `v` into `out` (`m` bytes).
    pub fn encode_into(&self, v: &[f32], out: &mut [u8]) {
        let d = self.dsub();
        for (j, o) in out.iter_mut().enumerate().take(self.m) {
            let sub = &self.centroids[j * self.ksub * d..(j + 1) * self.ksub * d];
            *o = crate::kmeans::nearest(&v[j * d..(j + 1) * d], sub, d).0 as u8;
        }
    }

    /// Decodes a code into `out` (`dim` values).
    pub fn decode_into(&self, code: &[u8], out: &mut [f32]) {
        let d = self.dsub();
        for (j, &c) in code.iter().enumerate().take(self.m) {
            out[j * d..(j + 1) * d].copy_from_slice(self.centroid(j, c as usize));
        }
    }

    /// The distance table of a prepared query.
    pub fn table(&self, metric: Metric, q: &[f32]) -> PqTable {
        let d = self.dsub();
        let mut rows = vec![[0f32; 256]; self.m];
        let kernels = quiver_kernels::active();
        // One tiled call per sub-space (1 query x ksub centroids), not one kernel call per centroid.
        for (j, row) in rows.iter_mut().enumerate() {
            let qs = &q[j * d..(j + 1) * d];
            let book = &self.centroids[j * self.ksub * d..(j + 1) * self.ksub * d];
            let out = &mut row[..self.ksub];
            if metric.uses_dot() { kernels.dot_tile(qs, book, d, out) } else { kernels.l2sq_tile(qs, book, d, out) }
        }
        PqTable { rows, metric }
    }

    /// Approximate distance from a query (its table) to a code.
    #[inline]
    pub fn distance(t: &PqTable, code: &[u8]) -> f32 {
        t.metric.distance_from_raw(Self::raw_sum(t, code))
    }

    /// The table sum for a code: an inner product (dot/cosine tables) or a squared L2 (Euclidean tables).
    #[inline]
    pub fn raw_sum(t: &PqTable, code: &[u8]) -> f32 {
        // Four partial sums break the dependency chain of the additions.
        let mut acc = [0.0f32; 4];
        let mut chunks = code.chunks_exact(4).zip(t.rows.chunks_exact(4));
        for (c, rows) in &mut chunks {
            acc[0] += rows[0][c[0] as usize];
            acc[1] += rows[1][c[1] as usize];
            acc[2] += rows[2][c[2] as usize];
            acc[3] += rows[3][c[3] as usize];
        }
        let tail = code.len() / 4 * 4;
        for (&c, row) in code[tail..].iter().zip(&t.rows[tail..]) {
            acc[0] += row[c as usize];
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }

    /// Centroids per sub-space.
    pub fn ksub(&self) -> usize {
        self.ksub
    }

    /// Heap bytes of the codebooks.
    pub fn memory_bytes(&self) -> usize {
        self.centroids.capacity() * 4
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
        w.u32(self.m as u32);
        w.u32(self.ksub as u32);
        w.f32s(&self.centroids);
    }

    /// The quantizer alone, in the checksummed envelope (kind tag 65; payload as inside an HNSW index).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(PQ_TAG, QUANTIZER_VERSION, 12 + self.centroids.len() * 4);
        self.write(&mut w);
        w.finish()
    }

    /// Decodes [`Pq::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "pq quantizer", PQ_TAG, QUANTIZER_VERSION)?;
        let q = Self::read(&mut r, None)?;
        r.finish()?;
        Ok(q)
    }

    /// Reads the payload; `expect` is the owning index's dimension, if any.
    pub(crate) fn read(r: &mut Reader<'_>, expect: Option<usize>) -> Result<Self> {
        let at = r.offset();
        let (d, m, ksub) = (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        let dim = d;
        let shape_ok = crate::vectors::validate_dim(d).is_ok() && expect.is_none_or(|e| e == d);
        if !shape_ok || m == 0 || !dim.is_multiple_of(m) || ksub == 0 || ksub > 256 {
            return Err(r.corrupt(
                at,
                format!("product quantizer shape dim {d} m {m} ksub {ksub}, expected dimension {expect:?}"),
            ));
        }
        let at = r.offset();
        let centroids = r.f32s(m * ksub * (dim / m))?;
        if centroids.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "centroid value is not finite"));
        }
        Ok(Self { dim, m, ksub, centroids })
    }
}

/// PQ codes of a set of prepared vectors (row `i` at `[i * m..]`).
#[derive(Clone, Debug, PartialEq)]
pub struct PqStorage {
    metric: Metric,
    quantizer: Pq,
    codes: CodeRows<u8>,
}

impl PqStorage {
    /// Trains a product quantizer with `m` sub-spaces on `vectors` and encodes them.
    pub fn train(metric: Metric, vectors: &VectorSet, m: usize, seed: u64) -> Result<Self> {
        let quantizer = Pq::train(vectors, m, seed)?;
        let codes = CodeRows::encode(m, vectors, |v, c| quantizer.encode_into(v, c));
        Ok(Self { metric, quantizer, codes })
    }

    /// Appends the code of one prepared vector.
    pub fn push(&mut self, v: &[f32]) {
        let q = &self.quantizer;
        self.codes.push(v, |v, c| q.encode_into(v, c));
    }

    /// Code of row `row`.
    #[inline]
    pub fn code(&self, row: usize) -> &[u8] {
        self.codes.get(row)
    }

    /// The quantizer.
    pub fn quantizer(&self) -> &Pq {
        &self.quantizer
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.quantizer.write(w);
        w.bytes(self.codes.as_slice());
    }

    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric, dim: usize, rows: usize) -> Result<Self> {
        let quantizer = Pq::read(r, Some(dim))?;
        let at = r.offset();
        let bytes = r.bytes(rows.checked_mul(quantizer.m).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        if bytes.iter().any(|&c| c as usize >= quantizer.ksub) {
            return Err(r.corrupt(at, "code refers to a missing centroid"));
        }
        let codes = CodeRows::from_vec(quantizer.m, crate::huge::copied(bytes));
        Ok(Self { metric, quantizer, codes })
    }
}

/// Scores one query against [`PqStorage`] codes through its distance table.
#[derive(Debug)]
pub struct PqScorer<'a> {
    storage: &'a PqStorage,
    table: PqTable,
}

impl QueryScorer for PqScorer<'_> {
    #[inline]
    fn distance(&self, row: usize) -> f32 {
        Pq::distance(&self.table, self.storage.code(row))
    }

    fn distances(&self, start: usize, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.distance(start + i);
        }
    }

    #[inline]
    fn prefetch(&self, row: usize) {
        quiver_kernels::prefetch(self.storage.code(row), 1);
    }
}

impl VectorStorage for PqStorage {
    type Scorer<'a> = PqScorer<'a>;

    fn scorer<'a>(&'a self, query: &'a [f32]) -> PqScorer<'a> {
        PqScorer { storage: self, table: self.quantizer.table(self.metric, query) }
    }

    fn rows(&self) -> usize {
        self.codes.rows()
    }

    fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes() + self.quantizer.centroids.capacity() * 4
    }
}

/// 1-bit codes: the signs of a random rotation of each vector (the idea behind RaBitQ; this keeps only the
/// sign bits and compares codes by Hamming distance). A rotation spreads every direction over all coordinates, so
/// for unit vectors the fraction of differing signs estimates the angle: `cos θ ≈ cos(π · hamming / dim)`.
/// Coarse on its own — it is meant for traversal with an exact rerank — but 32x smaller than f32.
#[derive(Clone, Debug, PartialEq)]
pub struct BitQuantizer {
    dim: usize,
    /// Row-major `dim x dim` orthogonal matrix.
    rotation: Vec<f32>,
}

impl BitQuantizer {
    /// A random orthogonal rotation drawn from `seed` (Gram–Schmidt on a Gaussian matrix).
    pub fn new(dim: usize, seed: u64) -> Self {
        let mut rng = crate::kmeans::SplitMix::new(seed);
        let mut gauss = move || {
            // Box–Muller.
            let u1 = rng.next_f64().max(1e-300);
            let u2 = rng.next_f64();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        };
        let mut rows: Vec<Vec<f32>> = Vec::with_capacity(dim);
        while rows.len() < dim {
            let mut v: Vec<f32> = (0..dim).map(|_| gauss()).collect();
            for _ in 0..2 {
                // Twice, for numerical orthogonality.
                for r in &rows {
                    let p = quiver_kernels::dot(&v, r);
                    v.iter_mut().zip(r).for_each(|(x, y)| *x -= p * y);
                }
            }
            let n = quiver_kernels::norm(&v);
            if n > 1e-3 {
                v.iter_mut().for_each(|x| *x /= n);
                rows.push(v);
            }
        }
        Self { dim, rotation: rows.concat() }
    }

    /// u64 words per code.
    pub fn words(&self) -> usize {
        self.dim.div_ceil(64)
    }

    /// Sign bits of the rotated `v` into `out` (`words()` words).
    pub fn encode_into(&self, v: &[f32], out: &mut [u64]) {
        out.iter_mut().for_each(|w| *w = 0);
        for (i, row) in self.rotation.chunks_exact(self.dim).enumerate() {
            if quiver_kernels::dot(row, v) >= 0.0 {
                out[i / 64] |= 1 << (i % 64);
            }
        }
    }

    /// The quantizer alone, in the checksummed envelope (kind tag 66): dim u32, rotation `dim x dim x f32`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(BITS_TAG, QUANTIZER_VERSION, 4 + self.rotation.len() * 4);
        w.u32(self.dim as u32);
        w.f32s(&self.rotation);
        w.finish()
    }

    /// Decodes [`BitQuantizer::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(bytes, "bit quantizer", BITS_TAG, QUANTIZER_VERSION)?;
        let at = r.offset();
        let dim = r.u32()? as usize;
        crate::vectors::validate_dim(dim).map_err(|e| r.corrupt(at, e.to_string()))?;
        let at = r.offset();
        let rotation = r.f32s(dim.checked_mul(dim).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        if rotation.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "rotation value is not finite"));
        }
        r.finish()?;
        Ok(Self { dim, rotation })
    }

    /// Estimated distance between two codes under `metric` (for unit vectors; Euclidean uses `2 - 2 cos`).
    #[inline]
    pub fn distance(&self, metric: Metric, a: &[u64], b: &[u64]) -> f32 {
        let h = quiver_kernels::hamming(a, b) as f32;
        let cos = (std::f32::consts::PI * h / self.dim as f32).cos();
        match metric {
            Metric::Cosine => 1.0 - cos,
            Metric::Dot => -cos,
            Metric::Euclidean => 2.0 - 2.0 * cos,
        }
    }
}

/// 1-bit codes of a set of prepared vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct BitStorage {
    metric: Metric,
    quantizer: BitQuantizer,
    codes: CodeRows<u64>,
}

impl BitStorage {
    /// Encodes `vectors` with a rotation drawn from `seed`.
    pub fn new(metric: Metric, vectors: &VectorSet, seed: u64) -> Self {
        let quantizer = BitQuantizer::new(vectors.dim(), seed);
        let codes = CodeRows::encode(quantizer.words(), vectors, |v, c| quantizer.encode_into(v, c));
        Self { metric, quantizer, codes }
    }

    /// Appends the code of one prepared vector.
    pub fn push(&mut self, v: &[f32]) {
        let q = &self.quantizer;
        self.codes.push(v, |v, c| q.encode_into(v, c));
    }

    /// Code of row `row`.
    #[inline]
    pub fn code(&self, row: usize) -> &[u64] {
        self.codes.get(row)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.quantizer.dim as u32);
        w.f32s(&self.quantizer.rotation);
        w.u64s(self.codes.as_slice());
    }

    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric, dim: usize, rows: usize) -> Result<Self> {
        let at = r.offset();
        if r.u32()? as usize != dim {
            return Err(r.corrupt(at, "rotation dimension differs from the index dimension"));
        }
        let at = r.offset();
        let rotation = r.f32s(dim * dim)?;
        if rotation.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "rotation value is not finite"));
        }
        let quantizer = BitQuantizer { dim, rotation };
        let at = r.offset();
        let words = r.u64s(rows.checked_mul(quantizer.words()).ok_or_else(|| r.corrupt(at, "count overflows"))?)?;
        let codes = CodeRows::from_vec(quantizer.words(), crate::huge::copied(&words));
        Ok(Self { metric, quantizer, codes })
    }
}

/// Scores one query against [`BitStorage`] codes by Hamming distance.
#[derive(Debug)]
pub struct BitScorer<'a> {
    storage: &'a BitStorage,
    code: Vec<u64>,
}

impl QueryScorer for BitScorer<'_> {
    #[inline]
    fn distance(&self, row: usize) -> f32 {
        self.storage.quantizer.distance(self.storage.metric, &self.code, self.storage.code(row))
    }

    fn distances(&self, start: usize, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.distance(start + i);
        }
    }

    #[inline]
    fn prefetch(&self, row: usize) {
        quiver_kernels::prefetch(self.storage.code(row), 1);
    }
}

impl VectorStorage for BitStorage {
    type Scorer<'a> = BitScorer<'a>;

    fn scorer<'a>(&'a self, query: &'a [f32]) -> BitScorer<'a> {
        let mut code = vec![0u64; self.quantizer.words()];
        self.quantizer.encode_into(query, &mut code);
        BitScorer { storage: self, code }
    }

    fn rows(&self) -> usize {
        self.codes.rows()
    }

    fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes() + self.quantizer.rotation.capacity() * 4
    }
}

/// How an index stores what it traverses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// Full-precision f32 vectors.
    None,
    /// One byte per dimension ([`Sq8`]), rescored on f32 vectors.
    Sq8,
    /// Four bits per dimension ([`crate::Sq4`]), rescored on f32 vectors.
    Sq4,
    /// One byte per sub-space ([`Pq`]), rescored on f32 vectors.
    Pq,
    /// One bit per dimension ([`BitQuantizer`]), rescored on f32 vectors.
    Bits,
}

impl Quantization {
    /// Canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
            Quantization::Sq4 => "sq4",
            Quantization::Pq => "pq",
            Quantization::Bits => "bits",
        }
    }

    /// Parses `none`, `sq8`, `sq4`, `pq` or `bits`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "f32" => Ok(Quantization::None),
            "sq8" | "int8" => Ok(Quantization::Sq8),
            "sq4" | "int4" => Ok(Quantization::Sq4),
            "pq" => Ok(Quantization::Pq),
            "bits" | "1bit" | "binary" => Ok(Quantization::Bits),
            _ => Err(Error::UnknownName {
                what: "quantization",
                got: s.to_owned(),
                known: "none, sq8, sq4, pq, bits".into(),
            }),
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => 1,
            Quantization::Pq => 2,
            Quantization::Bits => 3,
            Quantization::Sq4 => 4,
        }
    }

    pub(crate) fn from_tag(t: u8) -> Option<Self> {
        [Quantization::None, Quantization::Sq8, Quantization::Sq4, Quantization::Pq, Quantization::Bits]
            .into_iter()
            .find(|q| q.tag() == t)
    }
}
