//! Quantizers: compact codes that a per-query scorer measures without decoding.
//!
//! [`Sq8`] — scalar quantization to one byte per dimension with a trained range per dimension. A query is not
//! quantized: it is turned into per-dimension weights so that `q · x̂ = bias + Σ wᵢ cᵢ` with the f32×u8 SIMD
//! kernel, which keeps the query's full precision and reads a quarter of the bytes of f32 vectors.

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::vectors::VectorSet;

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
        let dim = vectors.dim();
        if vectors.is_empty() {
            return Self { lo: vec![-1.0; dim], step: vec![2.0 / 255.0; dim] };
        }
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for v in vectors.iter() {
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
        let dot = q.bias + quiver_kernels::dot_f32_u8(&q.weights, code);
        match metric {
            Metric::Cosine => 1.0 - dot,
            Metric::Dot => -dot,
            Metric::Euclidean => (q.norm2 - 2.0 * dot + code_norm2).max(0.0),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.lo.len() as u32);
        w.f32s(&self.lo);
        w.f32s(&self.step);
    }

    pub(crate) fn read(r: &mut Reader<'_>, dim: usize) -> Result<Self> {
        let at = r.offset();
        let d = r.u32()? as usize;
        if d != dim {
            return Err(r.corrupt(at, format!("quantizer dimension {d}, index dimension {dim}")));
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

/// How an index stores what it traverses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// Full-precision f32 vectors.
    None,
    /// One byte per dimension ([`Sq8`]), rescored on f32 vectors.
    Sq8,
}

impl Quantization {
    /// Parses `none` or `sq8`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "f32" => Ok(Quantization::None),
            "sq8" | "int8" => Ok(Quantization::Sq8),
            _ => Err(Error::UnknownName { what: "quantization", got: s.to_owned(), known: "none, sq8".into() }),
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Quantization::None => 0,
            Quantization::Sq8 => 1,
        }
    }

    pub(crate) fn from_tag(t: u8) -> Option<Self> {
        [Quantization::None, Quantization::Sq8].into_iter().find(|q| q.tag() == t)
    }
}
