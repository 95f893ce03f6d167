//! [`Sq4`] — scalar quantization to four bits per dimension, for graph traversal with an exact rerank.
//!
//! Half the bytes of [`crate::Sq8`] per vector (192 instead of 384 at 384 dimensions): a graph search that waits on
//! memory for every neighbour's code reads half as many cache lines. Sixteen levels per dimension are coarse, so the
//! range of a dimension is not its min..max (one outlier would widen every step) but a central quantile range of a
//! sample, and values outside it are clamped; the candidates a search returns are rescored on the f32 vectors.
//!
//! A query is turned into per-dimension weights `wᵢ = qᵢ·stepᵢ` rounded to i8 under one scale, so that
//! `q · x̂ ≈ bias + scale · Σ ŵᵢ cᵢ`, summed exactly in integers by `quiver_kernels::dot_i8_u4` (one 32-byte load
//! scores 64 dimensions). Codes are packed two to a byte in that kernel's block layout.

use rayon::prelude::*;

use crate::code_rows::CodeRows;
use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::metric::Metric;
use crate::storage::{QueryScorer, VectorStorage};
use crate::vectors::VectorSet;

/// Highest code of a dimension (codes are `0..=15`).
const LEVELS: f32 = 15.0;
/// Smallest step, so a constant dimension still decodes to its value.
const MIN_STEP: f32 = 1e-12;
/// Rows sampled to place each dimension's range.
const SAMPLE_ROWS: usize = 20_000;
/// Share of a dimension's sampled values left outside its range, half on each side. For a normal distribution
/// this is a range of ±2.6σ, close to the ±2.7σ that minimises the mean squared error of a 16-level uniform
/// quantizer; min..max would spend the levels on a few outliers.
pub const DEFAULT_CLIP: f32 = 0.01;

/// Four-bit scalar quantizer: `x̂ᵢ = loᵢ + stepᵢ · cᵢ`, `cᵢ ∈ 0..=15`, values outside the range clamped to it.
///
/// Invariant: `lo` and `step` have the quantizer's dimension, are finite, and every `step > 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sq4 {
    lo: Vec<f32>,
    step: Vec<f32>,
}

impl Sq4 {
    /// Places each dimension's range on a sample of `vectors`: from the `clip / 2` to the `1 - clip / 2` quantile
    /// (`clip` 0: min..max). An empty set gives the range -1..1 of unit vectors.
    pub fn train(vectors: &VectorSet, clip: f32) -> Self {
        let dim = vectors.dim();
        let n = vectors.len();
        if n == 0 {
            return Self { lo: vec![-1.0; dim], step: vec![2.0 / LEVELS; dim] };
        }
        let stride = n.div_ceil(SAMPLE_ROWS).max(1);
        let rows: Vec<usize> = (0..n).step_by(stride).collect();
        let clip = if clip.is_finite() { clip.clamp(0.0, 0.5) } else { 0.0 };
        let (lo, step): (Vec<f32>, Vec<f32>) = (0..dim)
            .into_par_iter()
            .map(|d| {
                let mut col: Vec<f32> = rows.iter().map(|&r| vectors.get(r)[d]).collect();
                col.sort_unstable_by(f32::total_cmp);
                let cut = ((col.len() as f32 * clip / 2.0) as usize).min((col.len() - 1) / 2);
                let (l, h) = (col[cut], col[col.len() - 1 - cut]);
                (l, ((h - l) / LEVELS).max(MIN_STEP))
            })
            .unzip();
        Self { lo, step }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// The range of dimension `d`: values inside it decode within [`Sq4::max_error`], values outside are clamped.
    pub fn range(&self, d: usize) -> (f32, f32) {
        (self.lo[d], self.lo[d] + LEVELS * self.step[d])
    }

    /// Largest reconstruction error of dimension `d` for a value inside its range.
    pub fn max_error(&self, d: usize) -> f32 {
        self.step[d] / 2.0
    }

    /// Bytes of one code: two dimensions a byte.
    pub fn code_len(&self) -> usize {
        self.dim().div_ceil(2)
    }

    /// The packed position of dimension `d` in a code of `len` bytes: (byte, high nibble?).
    #[inline]
    fn slot(len: usize, d: usize) -> (usize, bool) {
        let block = quiver_kernels::U4_BLOCK;
        let o = (d / (2 * block)) * block;
        let t = block.min(len - o);
        let j = d - 2 * o;
        if j < t { (o + j, false) } else { (o + j - t, true) }
    }

    /// Encodes `v` (of the quantizer's dimension) into `out` (of [`Sq4::code_len`] bytes).
    pub fn encode_into(&self, v: &[f32], out: &mut [u8]) {
        out.fill(0);
        for (d, ((&x, &l), &s)) in v.iter().zip(&self.lo).zip(&self.step).enumerate() {
            let c = ((x - l) / s).round().clamp(0.0, LEVELS) as u8;
            let (byte, high) = Self::slot(out.len(), d);
            out[byte] |= if high { c << 4 } else { c };
        }
    }

    /// The code of dimension `d` in `code`.
    #[inline]
    pub fn code_at(code: &[u8], d: usize) -> u8 {
        let (byte, high) = Self::slot(code.len(), d);
        if high { code[byte] >> 4 } else { code[byte] & 0x0f }
    }

    /// Decodes `code` into `out`.
    pub fn decode_into(&self, code: &[u8], out: &mut [f32]) {
        for (d, ((o, &l), &s)) in out.iter_mut().zip(&self.lo).zip(&self.step).enumerate() {
            *o = l + s * f32::from(Self::code_at(code, d));
        }
    }

    /// Squared norm of the decoded vector (kept beside each code for Euclidean distances).
    pub fn decoded_norm2(&self, code: &[u8]) -> f32 {
        let value = |d: usize| self.lo[d] + self.step[d] * f32::from(Self::code_at(code, d));
        (0..self.dim()).map(|d| value(d) * value(d)).sum()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.lo.len() as u32);
        w.f32s(&self.lo);
        w.f32s(&self.step);
    }

    /// Reads the payload written by `write`; `dim` is the owning index's dimension.
    pub(crate) fn read(r: &mut Reader<'_>, dim: usize) -> Result<Self> {
        let at = r.offset();
        let d = r.u32()? as usize;
        if d != dim {
            return Err(r.corrupt(at, format!("sq4 quantizer dimension {d}, index dimension {dim}")));
        }
        let lo = r.f32s(d)?;
        let at = r.offset();
        let step = r.f32s(d)?;
        if lo.iter().any(|x| !x.is_finite()) || step.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(r.corrupt(at, "sq4 quantizer range is not finite and positive"));
        }
        Ok(Self { lo, step })
    }
}

/// SQ4 codes of a set of prepared vectors (row `i` at `[i * code_len..]`) and each decoded vector's squared norm.
#[derive(Clone, Debug, PartialEq)]
pub struct Sq4Storage {
    metric: Metric,
    quantizer: Sq4,
    codes: CodeRows<u8>,
    norms: Vec<f32>,
}

impl Sq4Storage {
    /// Trains a quantizer on `vectors` (already prepared for `metric`) and encodes them, in parallel.
    pub fn train(metric: Metric, vectors: &VectorSet, clip: f32) -> Self {
        let quantizer = Sq4::train(vectors, clip);
        let len = quantizer.code_len();
        let codes = CodeRows::encode(len, vectors, |v, c| quantizer.encode_into(v, c));
        let norms = codes.as_slice().par_chunks_exact(len).map(|c| quantizer.decoded_norm2(c)).collect();
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
    pub fn quantizer(&self) -> &Sq4 {
        &self.quantizer
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.quantizer.write(w);
        w.bytes(self.codes.as_slice());
        w.f32s(&self.norms);
    }

    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric, dim: usize, rows: usize) -> Result<Self> {
        let quantizer = Sq4::read(r, dim)?;
        let at = r.offset();
        let len = rows.checked_mul(quantizer.code_len()).ok_or_else(|| r.corrupt(at, "count overflows"))?;
        let codes = CodeRows::from_vec(quantizer.code_len(), crate::huge::copied(r.bytes(len)?));
        let at = r.offset();
        let norms = r.f32s(rows)?;
        if norms.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(at, "code norm is not finite"));
        }
        Ok(Self { metric, quantizer, codes, norms })
    }
}

/// Scores one query against [`Sq4Storage`] codes.
#[derive(Debug)]
pub struct Sq4Scorer<'a> {
    storage: &'a Sq4Storage,
    /// `wᵢ = qᵢ · stepᵢ` rounded to i8 under `scale` (zero past the dimension, up to the packed length).
    weights: Vec<i8>,
    scale: f32,
    /// `Σ qᵢ · loᵢ`.
    bias: f32,
    norm2: f32,
}

impl QueryScorer for Sq4Scorer<'_> {
    #[inline]
    fn distance(&self, row: usize) -> f32 {
        let dot = self.bias + self.scale * quiver_kernels::dot_i8_u4(&self.weights, self.storage.code(row)) as f32;
        match self.storage.metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::Euclidean => (self.norm2 - 2.0 * dot + self.storage.norms[row]).max(0.0),
        }
    }

    fn distances(&self, start: usize, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.distance(start + i);
        }
    }

    #[inline]
    fn prefetch(&self, row: usize) {
        let code = self.storage.code(row);
        quiver_kernels::prefetch(code, code.len().div_ceil(64));
    }

    /// Four whole codes ahead, as SQ8: on the 100k set 2 ahead was 6–17% slower and 6 or 8 level with 4
    /// (docs/benchmarks.md, "Four-bit codes for the graph walk").
    fn prefetch_ahead(&self) -> usize {
        4
    }
}

impl VectorStorage for Sq4Storage {
    type Scorer<'a> = Sq4Scorer<'a>;

    fn scorer<'a>(&'a self, query: &'a [f32]) -> Sq4Scorer<'a> {
        let q = &self.quantizer;
        let w: Vec<f32> = query.iter().zip(&q.step).map(|(x, s)| x * s).collect();
        let bias = query.iter().zip(&q.lo).map(|(x, l)| x * l).sum();
        let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let (scale, inv) = if max > 0.0 { (max / 127.0, 127.0 / max) } else { (0.0, 0.0) };
        let mut weights = vec![0i8; 2 * q.code_len()];
        for (o, x) in weights.iter_mut().zip(&w) {
            *o = (x * inv).round().clamp(-127.0, 127.0) as i8;
        }
        Sq4Scorer { storage: self, weights, scale, bias, norm2: quiver_kernels::dot(query, query) }
    }

    fn rows(&self) -> usize {
        self.norms.len()
    }

    fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes() + self.norms.capacity() * 4 + self.quantizer.dim() * 8
    }
}
