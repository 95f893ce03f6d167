//! Fused element-wise steps of the encoder as candle custom ops (CPU).
//!
//! Each replaces two to four candle ops (and their temporary tensors) with one pass over the data, and runs on the
//! caller's rayon pool instead of candle's own element-wise thread pool, so batches can run side by side without
//! contending for it. The transcendental functions (`exp`, `erf`) are branch-free polynomial forms the compiler
//! vectorises; their relative error (< 2e-7) is far below what the reference test can see.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use rayon::prelude::*;

use crate::config::Activation;

/// Rows per rayon task, so small tensors are not split into tasks too small to pay for themselves.
const MIN_ROWS_PER_TASK: usize = 16;

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: expected f32 storage");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: expected a contiguous tensor");
    };
    Ok(&data[start..end])
}

/// `y = act(x + bias)` over the rows of a `(n, m)` tensor.
#[derive(Debug)]
pub(crate) struct BiasAct<'a> {
    pub bias: &'a [f32],
    pub act: Activation,
}

impl CustomOp1 for BiasAct<'_> {
    fn name(&self) -> &'static str {
        "quiver-bias-act"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, self.name())?;
        let m = self.bias.len();
        if m == 0 || !x.len().is_multiple_of(m) {
            candle_core::bail!("{}: {} values for rows of {m}", self.name(), x.len());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(m * MIN_ROWS_PER_TASK).zip(x.par_chunks(m * MIN_ROWS_PER_TASK)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(m).zip(x.chunks_exact(m)) {
                match self.act {
                    Activation::Gelu => {
                        for ((y, &x), &b) in y.iter_mut().zip(x).zip(self.bias) {
                            *y = gelu_erf(x + b);
                        }
                    }
                    Activation::GeluTanh => {
                        for ((y, &x), &b) in y.iter_mut().zip(x).zip(self.bias) {
                            *y = gelu_tanh(x + b);
                        }
                    }
                    Activation::Relu => {
                        for ((y, &x), &b) in y.iter_mut().zip(x).zip(self.bias) {
                            *y = (x + b).max(0.0);
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }
}

/// `y = LayerNorm(x + bias + residual)` over the rows of two `(n, m)` tensors.
#[derive(Debug)]
pub(crate) struct BiasResidualNorm<'a> {
    pub bias: &'a [f32],
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

impl CustomOp2 for BiasResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "quiver-bias-residual-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1, self.name())?;
        let r = contiguous(s2, l2, self.name())?;
        let m = self.bias.len();
        if m == 0 || !x.len().is_multiple_of(m) || x.len() != r.len() {
            candle_core::bail!("{}: shapes {:?} and {:?} for rows of {m}", self.name(), l1.shape(), l2.shape());
        }
        let mut y = vec![0f32; x.len()];
        let chunk = m * MIN_ROWS_PER_TASK;
        y.par_chunks_mut(chunk).zip(x.par_chunks(chunk).zip(r.par_chunks(chunk))).for_each(|(y, (x, r))| {
            let (bias, gamma, beta) = (&self.bias[..m], &self.gamma[..m], &self.beta[..m]);
            for ((y, x), r) in y.chunks_exact_mut(m).zip(x.chunks_exact(m)).zip(r.chunks_exact(m)) {
                for i in 0..m {
                    y[i] = x[i] + r[i] + bias[i];
                }
                let mean = lane_sum(y, |v| v) / m as f32;
                let var = lane_sum(y, |v| (v - mean) * (v - mean)) / m as f32;
                let inv = 1.0 / (var + self.eps).sqrt();
                for i in 0..m {
                    y[i] = (y[i] - mean) * inv * gamma[i] + beta[i];
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

/// Adds the QKV bias to a packed `(tokens, 3·heads·d)` projection (the texts' tokens one after another, no
/// padding) and lays it out padded as `(3, batch, heads, seq, d)`, zeros where a text is shorter than `seq`.
#[derive(Debug)]
pub(crate) struct QkvSplit<'a> {
    pub bias: &'a [f32],
    /// Tokens per text; they sum to the projection's rows.
    pub lengths: &'a [usize],
    pub seq: usize,
    pub heads: usize,
}

impl CustomOp1 for QkvSplit<'_> {
    fn name(&self) -> &'static str {
        "quiver-qkv-split"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, self.name())?;
        let (b, s, nh) = (self.lengths.len(), self.seq, self.heads);
        let width = self.bias.len();
        let tokens: usize = self.lengths.iter().sum();
        if nh == 0 || !width.is_multiple_of(3 * nh) || x.len() != tokens * width || self.lengths.iter().any(|&l| l > s)
        {
            candle_core::bail!("{}: {} values for {tokens} rows of {width}", self.name(), x.len());
        }
        let d = width / (3 * nh);
        let starts = starts(self.lengths);
        let mut y = vec![0f32; 3 * b * nh * s * d];
        // Destination blocks (part, row) of `heads · seq · d`: one task each.
        y.par_chunks_mut(nh * s * d).enumerate().for_each(|(block, dst)| {
            let (part, row) = (block / b, block % b);
            let (start, len) = (starts[row], self.lengths[row]);
            for head in 0..nh {
                let col = part * nh * d + head * d;
                let bias = &self.bias[col..col + d];
                for t in 0..len {
                    let src = &x[(start + t) * width + col..][..d];
                    let out = &mut dst[(head * s + t) * d..][..d];
                    for ((o, &v), &bb) in out.iter_mut().zip(src).zip(bias) {
                        *o = v + bb;
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((3, b, nh, s, d))))
    }
}

/// The inverse of the layout [`QkvSplit`] makes: `(batch, heads, seq, d)` attention output → packed
/// `(tokens, heads·d)`, the padding rows dropped.
#[derive(Debug)]
pub(crate) struct MergeHeads<'a> {
    pub lengths: &'a [usize],
}

impl CustomOp1 for MergeHeads<'_> {
    fn name(&self) -> &'static str {
        "quiver-merge-heads"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, self.name())?;
        let dims = layout.shape().dims();
        let &[b, nh, s, d] = dims else {
            candle_core::bail!("{}: expected 4 dimensions, got {dims:?}", self.name());
        };
        if b != self.lengths.len() || self.lengths.iter().any(|&l| l > s) {
            candle_core::bail!("{}: shape {dims:?} for lengths {:?}", self.name(), self.lengths);
        }
        let tokens: usize = self.lengths.iter().sum();
        let width = nh * d;
        let mut y = Vec::with_capacity(tokens * width);
        for (row, &len) in self.lengths.iter().enumerate() {
            for t in 0..len {
                for head in 0..nh {
                    y.extend_from_slice(&x[((row * nh + head) * s + t) * d..][..d]);
                }
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((tokens, width))))
    }
}

/// `Σ f(v)` over `v` with 8 independent partial sums, which the compiler can keep in vector registers (one running
/// float sum cannot be vectorised: reordering it would change the result).
#[inline(always)]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Where each text's tokens start in the packed rows.
pub(crate) fn starts(lengths: &[usize]) -> Vec<usize> {
    let mut acc = 0;
    lengths
        .iter()
        .map(|&l| {
            let s = acc;
            acc += l;
            s
        })
        .collect()
}

/// Softmax over the last dimension of `(batch, heads, seq, seq)` attention scores, counting only the first
/// `lengths[b]` keys of batch row `b` (the rest is padding and gets probability 0).
#[derive(Debug)]
pub(crate) struct MaskedSoftmax<'a> {
    pub lengths: &'a [usize],
}

impl CustomOp1 for MaskedSoftmax<'_> {
    fn name(&self) -> &'static str {
        "quiver-masked-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, self.name())?;
        let dims = layout.shape().dims();
        let &[b, h, s, s2] = dims else {
            candle_core::bail!("{}: expected 4 dimensions, got {dims:?}", self.name());
        };
        if s != s2 || b != self.lengths.len() {
            candle_core::bail!("{}: shape {dims:?} for {} rows", self.name(), self.lengths.len());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h * s * s).zip(x.par_chunks(h * s * s)).enumerate().for_each(|(row, (y, x))| {
            let len = self.lengths[row].clamp(1, s);
            for (y, x) in y.chunks_exact_mut(s).zip(x.chunks_exact(s)) {
                let (y, x) = (&mut y[..len], &x[..len]);
                let max = x.iter().copied().fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = fast_exp(x - max);
                }
                let inv = 1.0 / lane_sum(y, |v| v);
                y.iter_mut().for_each(|y| *y *= inv);
            }
        });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }
}

/// `e^x` for `x ≤ 0`-ish arguments (any finite `x` works; results below `e^-87` flush to 0), relative error
/// about 1e-7: `x = n·ln2 + r`, `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r`, `2^n` built in the exponent bits.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and subtracting 1.5·2²³ (`f32::round` is a libm call without SSE4.1).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln2 split in a part exact in f32 and the rest, so r is accurate.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// erf with absolute error below 2e-7 (Numerical Recipes' erfc, Chebyshev-fitted), branch-free.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204 + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * fast_exp(poly);
    (1.0 - erfc).copysign(x)
}

/// GELU with the exact (erf) form BERT uses.
#[inline(always)]
pub(crate) fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU with the tanh approximation (`gelu_new`).
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    // tanh(u) = 1 − 2 / (e^{2u} + 1)
    let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    let tanh = 1.0 - 2.0 / (fast_exp(2.0 * u) + 1.0);
    0.5 * x * (1.0 + tanh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((fast_exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(fast_exp(-1000.0), fast_exp(-87.0));
        assert!(fast_exp(-87.0) > 0.0);
    }

    #[test]
    fn erf_and_gelu_match_libm() {
        let mut worst = 0f64;
        let mut x = -8.0f32;
        while x < 8.0 {
            let want = libm_erf(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
            let g = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((gelu_erf(x) as f64 - g).abs() < 2e-6 * (1.0 + g.abs()), "gelu({x})");
            x += 0.001;
        }
        assert!(worst < 5e-7, "worst absolute erf error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(gelu_erf(0.0), 0.0);
    }

    /// A double-precision erf for the comparison (Abramowitz–Stegun 7.1.28 is not precise enough; use the series
    /// and the continued fraction).
    fn libm_erf(x: f64) -> f64 {
        let z = x.abs();
        let v = if z < 3.0 {
            // Maclaurin series: erf z = 2/√π Σ (−1)^n z^(2n+1) / (n! (2n+1)).
            let mut term = z;
            let mut sum = z;
            let mut n = 0.0;
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -z * z / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // Continued fraction for erfc, evaluated backwards.
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (z + f);
            }
            1.0 - (-z * z).exp() / (std::f64::consts::PI.sqrt() * (z + f))
        };
        v.copysign(x)
    }
}
