//! Fused element-wise steps of the encoder as candle custom ops (CPU).
//!
//! Each replaces two to four candle ops (and their temporary tensors) with one pass over the data, and runs on the
//! caller's rayon pool instead of candle's own element-wise thread pool, so batches can run side by side without
//! contending for it. The transcendental functions (`exp`, `erf`) are branch-free polynomial forms the compiler
//! vectorises; their relative error (< 2e-7) is far below what the reference test can see.

use candle_core::{CpuStorage, CustomOp1, InplaceOp1, InplaceOp2, Layout, Shape};
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

/// The widest vector instructions this CPU has, for the element-wise loops below (checked once).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Simd {
    /// AVX-512 (F, BW, DQ, VL) with FMA: 16 lanes.
    V4,
    /// AVX2 with FMA: 8 lanes.
    V3,
    /// What the build targets (SSE2 on baseline x86-64).
    Baseline,
}

#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let has = |f: &[bool]| f.iter().all(|&b| b);
        if has(&[
            is_x86_feature_detected!("avx512f"),
            is_x86_feature_detected!("avx512bw"),
            is_x86_feature_detected!("avx512dq"),
            is_x86_feature_detected!("avx512vl"),
            is_x86_feature_detected!("fma"),
        ]) {
            Simd::V4
        } else if has(&[is_x86_feature_detected!("avx2"), is_x86_feature_detected!("fma")]) {
            Simd::V3
        } else {
            Simd::Baseline
        }
    })
}

/// `a · b + c`, as the body of a [`multiversion!`] function computes it: fused (one rounding, one instruction)
/// in the versions compiled with FMA, separate elsewhere, where a fused multiply-add would be a libm call. The
/// compiler never fuses `a * b + c` by itself (it would change the result), so the loops say where they may.
pub(crate) trait MulAdd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// [`MulAdd`] with FMA.
pub(crate) struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// [`MulAdd`] without it.
pub(crate) struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Defines `fn $name(args)` whose body is compiled three times (AVX-512, AVX2 + FMA, and the build's baseline) and
/// run in the widest form the CPU has. The bodies are plain loops over slices calling `#[inline(always)]` helpers,
/// which the compiler vectorises at each width; the body names a type parameter (`fn f<M>(…)`) whose
/// [`MulAdd::madd`] is fused in the FMA versions. Results differ between versions only by those roundings, far
/// below the reference tests' tolerances.
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident<$m:ident>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$m: MulAdd>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn v4($($arg: $ty),*) {
                    body::<Fused>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn v3($($arg: $ty),*) {
                    body::<Fused>($($arg),*)
                }
                #[allow(unsafe_code)]
                match simd() {
                    // SAFETY: `simd` found every feature each version is compiled for on this CPU.
                    Simd::V4 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above.
                    Simd::V3 => return unsafe { v3($($arg),*) },
                    Simd::Baseline => {}
                }
            }
            body::<Separate>($($arg),*)
        }
    };
}

fn contiguous_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: expected f32 storage");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: expected a contiguous tensor");
    };
    Ok(&mut data[start..end])
}

/// `x ← act(x + bias)` over the rows of a `(n, m)` tensor, in place.
#[derive(Debug)]
pub(crate) struct BiasAct<'a> {
    pub bias: &'a [f32],
    pub act: Activation,
}

multiversion! {
    /// `act(x + bias)` over whole rows of `bias.len()` values, in place.
    fn bias_act_rows<M>(x: &mut [f32], bias: &[f32], act: Activation) {
        for x in x.chunks_exact_mut(bias.len()) {
            match act {
                Activation::Gelu => x.iter_mut().zip(bias).for_each(|(x, &b)| *x = gelu_erf::<M>(*x + b)),
                Activation::GeluTanh => x.iter_mut().zip(bias).for_each(|(x, &b)| *x = gelu_tanh::<M>(*x + b)),
                Activation::Relu => x.iter_mut().zip(bias).for_each(|(x, &b)| *x = (*x + b).max(0.0)),
            }
        }
    }
}

impl InplaceOp1 for BiasAct<'_> {
    fn name(&self) -> &'static str {
        "quiver-bias-act"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let x = contiguous_mut(storage, layout, self.name())?;
        let m = self.bias.len();
        if m == 0 || !x.len().is_multiple_of(m) {
            candle_core::bail!("{}: {} values for rows of {m}", self.name(), x.len());
        }
        x.par_chunks_mut(m * MIN_ROWS_PER_TASK).for_each(|x| bias_act_rows(x, self.bias, self.act));
        Ok(())
    }
}

/// `x ← LayerNorm(x + bias + residual)` over the rows of two `(n, m)` tensors, in place in the first.
#[derive(Debug)]
pub(crate) struct BiasResidualNorm<'a> {
    pub bias: &'a [f32],
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

multiversion! {
    /// `LayerNorm(x + bias + residual)` over whole rows of `bias.len()` values, in place in `x`.
    fn norm_rows<M>(x: &mut [f32], residual: &[f32], bias: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let m = bias.len();
        let (gamma, beta) = (&gamma[..m], &beta[..m]);
        for (y, r) in x.chunks_exact_mut(m).zip(residual.chunks_exact(m)) {
            for ((y, &r), &b) in y.iter_mut().zip(r).zip(bias) {
                *y += r + b;
            }
            let mean = lane_sum(y, |v| v) / m as f32;
            let var = lane_sum(y, |v| (v - mean) * (v - mean)) / m as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((y, &g), &b) in y.iter_mut().zip(gamma).zip(beta) {
                *y = M::madd((*y - mean) * inv, g, b);
            }
        }
    }
}

impl InplaceOp2 for BiasResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "quiver-bias-residual-norm"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        let r = contiguous(src, src_l, self.name())?;
        let x = contiguous_mut(dst, dst_l, self.name())?;
        let m = self.bias.len();
        if m == 0 || !x.len().is_multiple_of(m) || x.len() != r.len() || self.gamma.len() < m || self.beta.len() < m {
            candle_core::bail!("{}: shapes {:?} and {:?} for rows of {m}", self.name(), dst_l.shape(), src_l.shape());
        }
        let chunk = m * MIN_ROWS_PER_TASK;
        x.par_chunks_mut(chunk).zip(r.par_chunks(chunk)).for_each(|(x, r)| {
            norm_rows(x, r, self.bias, self.gamma, self.beta, self.eps);
        });
        Ok(())
    }
}

/// Multi-head self-attention straight from the packed QKV projection: `(tokens, 3·heads·d)` rows without their
/// bias (the texts' tokens one after another, no padding) → the attention output `(tokens, heads·d)`, packed the
/// same way. Each text attends only to its own tokens, so no padding is ever computed; the query part is already
/// scaled by `1/√d` (folded into its weights and bias at load time).
///
/// One rayon task per text; per head, the head's query, key (transposed) and value rows are gathered with their
/// bias into a small scratch, scores are computed 16 keys at a time, then a softmax and the weighted sum of values.
#[derive(Debug)]
pub(crate) struct Attention<'a> {
    /// The QKV bias, `3·heads·d`.
    pub bias: &'a [f32],
    /// Tokens per text; they sum to the projection's rows.
    pub lengths: &'a [usize],
    pub heads: usize,
    /// MPNet's relative-position bias, `(heads, seq, seq)` for the longest text `seq`, added to the scores;
    /// empty for BERT.
    pub relative: &'a [f32],
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    /// One head of one text's attention (see [`Attention`]): reads the text's `rows` (`len` rows of `width`), writes
    /// the head's `d` columns of each of the text's output rows (`out`, rows of `width / 3`). `relative` is this
    /// head's `(seq, seq)` bias or empty; `scratch` holds at least `3·len·d + len·lp + d·lp` floats, `lp` being
    /// `len` rounded up to 16.
    fn attend_head<M>(
        rows: &[f32],
        bias: &[f32],
        head: usize,
        d: usize,
        len: usize,
        relative: &[f32],
        seq: usize,
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        let width = bias.len();
        let hidden = width / 3;
        let lp = len.div_ceil(LANES) * LANES;
        let (q, rest) = scratch.split_at_mut(len * d);
        let (kt, rest) = rest.split_at_mut(d * lp);
        let (v, rest) = rest.split_at_mut(len * d);
        let p = &mut rest[..len * lp];
        // Gather the head's rows with their bias; keys transposed (`kt[c][j]`), zero past `len`.
        kt.fill(0.0);
        let col = head * d;
        for t in 0..len {
            let row = &rows[t * width..(t + 1) * width];
            for (c, dst) in [(col, &mut q[t * d..(t + 1) * d]), (2 * hidden + col, &mut v[t * d..(t + 1) * d])] {
                for ((o, &x), &b) in dst.iter_mut().zip(&row[c..c + d]).zip(&bias[c..c + d]) {
                    *o = x + b;
                }
            }
            let c = hidden + col;
            for (i, (&x, &b)) in row[c..c + d].iter().zip(&bias[c..c + d]).enumerate() {
                kt[i * lp + t] = x + b;
            }
        }
        // Scores: row i is Σ_c q[i][c] · kt[c][..], for 4 rows × 16 keys at a time (independent accumulators, so
        // the multiply-adds do not wait on each other), then the softmax of each row.
        let mut i = 0;
        while i < len {
            if len - i >= ROWS {
                scores::<M, ROWS>(&q[i * d..(i + ROWS) * d], kt, d, lp, &mut p[i * lp..(i + ROWS) * lp]);
                i += ROWS;
            } else {
                scores::<M, 1>(&q[i * d..(i + 1) * d], kt, d, lp, &mut p[i * lp..(i + 1) * lp]);
                i += 1;
            }
        }
        for i in 0..len {
            let pr = &mut p[i * lp..i * lp + len];
            if !relative.is_empty() {
                for (s, &r) in pr.iter_mut().zip(&relative[i * seq..i * seq + len]) {
                    *s += r;
                }
            }
            let max = lane_max(pr);
            for s in pr.iter_mut() {
                *s = fast_exp::<M>(*s - max);
            }
            let inv = 1.0 / lane_sum(pr, |s| s);
            pr.iter_mut().for_each(|s| *s *= inv);
        }
        // Output row i: Σ_j p[i][j] · v[j], for 4 rows × 16 columns at a time (then any last columns).
        let whole = d / LANES * LANES;
        let mut i = 0;
        while i < len {
            let rows = if len - i >= ROWS { ROWS } else { 1 };
            for cb in (0..whole).step_by(LANES) {
                let (p, out) = (&p[i * lp..], &mut out[i * hidden + col + cb..]);
                if rows == ROWS {
                    weighted::<M, ROWS>(p, lp, v, d, cb, len, out, hidden);
                } else {
                    weighted::<M, 1>(p, lp, v, d, cb, len, out, hidden);
                }
            }
            i += rows;
        }
        for i in 0..len {
            for c in whole..d {
                out[i * hidden + col + c] = (0..len).map(|j| p[i * lp + j] * v[j * d + c]).sum();
            }
        }
    }
}

/// Rows per block in the attention loops.
const ROWS: usize = 4;

/// Scores of `R` query rows (`q`, `R × d`) against every key (`kt`, `d × lp`, transposed) into `p` (`R × lp`), 16
/// keys at a time with `R` independent accumulators.
#[inline(always)]
fn scores<M: MulAdd, const R: usize>(q: &[f32], kt: &[f32], d: usize, lp: usize, p: &mut [f32]) {
    let q: &[f32] = &q[..R * d];
    for jb in (0..lp).step_by(LANES) {
        let mut acc = [[0f32; LANES]; R];
        for c in 0..d {
            let k: &[f32; LANES] = kt[c * lp + jb..c * lp + jb + LANES].try_into().unwrap_or(&[0.0; LANES]);
            for (r, acc) in acc.iter_mut().enumerate() {
                let a = q[r * d + c];
                for (acc, &k) in acc.iter_mut().zip(k) {
                    *acc = M::madd(a, k, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            p[r * lp + jb..r * lp + jb + LANES].copy_from_slice(acc);
        }
    }
}

/// Columns `cb .. cb + 16` of `R` output rows (`out`, rows of `hidden` from that column): `Σ_j p[r][j] · v[j]`
/// over the first `len` keys (`p`: rows of `lp`; `v`: `len × d`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn weighted<M: MulAdd, const R: usize>(
    p: &[f32],
    lp: usize,
    v: &[f32],
    d: usize,
    cb: usize,
    len: usize,
    out: &mut [f32],
    hidden: usize,
) {
    let mut acc = [[0f32; LANES]; R];
    for j in 0..len {
        let x: &[f32; LANES] = v[j * d + cb..j * d + cb + LANES].try_into().unwrap_or(&[0.0; LANES]);
        for (r, acc) in acc.iter_mut().enumerate() {
            let w = p[r * lp + j];
            for (acc, &x) in acc.iter_mut().zip(x) {
                *acc = M::madd(w, x, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        out[r * hidden..r * hidden + LANES].copy_from_slice(acc);
    }
}

/// Floats per accumulator in the attention loops: one AVX-512 register (two AVX2 ones).
const LANES: usize = 16;

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "quiver-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, self.name())?;
        let (heads, width) = (self.heads, self.bias.len());
        let tokens: usize = self.lengths.iter().sum();
        let seq = self.lengths.iter().copied().max().unwrap_or(0);
        if heads == 0 || !width.is_multiple_of(3 * heads) || x.len() != tokens * width {
            candle_core::bail!("{}: {} values for {tokens} rows of {width}", self.name(), x.len());
        }
        if !self.relative.is_empty() && self.relative.len() != heads * seq * seq {
            candle_core::bail!("{}: relative bias of {} for {heads} heads of {seq}", self.name(), self.relative.len());
        }
        let hidden = width / 3;
        let d = hidden / heads;
        let mut y = vec![0f32; tokens * hidden];
        // Each text's output rows, to fill side by side.
        let mut parts = Vec::with_capacity(self.lengths.len());
        let mut rest = y.as_mut_slice();
        for &len in self.lengths {
            let (part, tail) = rest.split_at_mut(len * hidden);
            parts.push(part);
            rest = tail;
        }
        parts.into_par_iter().zip(starts(self.lengths)).zip(self.lengths).for_each(|((out, start), &len)| {
            let rows = &x[start * width..(start + len) * width];
            let lp = len.div_ceil(LANES) * LANES;
            let mut scratch = vec![0f32; 2 * len * d + d * lp + len * lp];
            for head in 0..heads {
                let relative = if self.relative.is_empty() {
                    &[][..]
                } else {
                    &self.relative[head * seq * seq..(head + 1) * seq * seq]
                };
                attend_head(rows, self.bias, head, d, len, relative, seq, out, &mut scratch);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((tokens, hidden))))
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

/// The largest of `v` (`-∞` when empty), with 8 independent running maxima so the loop vectorises.
#[inline(always)]
fn lane_max(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.into_iter().fold(tail, f32::max)
}

/// `e^x` for `x ≤ 0`-ish arguments (any finite `x` works; results below `e^-87` flush to 0), relative error
/// about 1e-7: `x = n·ln2 + r`, `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r`, `2^n` built in the exponent bits.
#[inline(always)]
fn fast_exp<M: MulAdd>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and subtracting 1.5·2²³ (`f32::round` is a libm call without SSE4.1).
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // n as an integer, read from the shifted value's low mantissa bits (1.5·2²³ + n has the bits of 1.5·2²³ plus
    // n): integer arithmetic the compiler vectorises, where `n as i32` (a saturating conversion) is done lane by
    // lane.
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    // ln2 split in a part exact in f32 and the rest, so r is accurate.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let m = M::madd;
    let p =
        m(r, m(r, m(r, m(r, m(r, m(r, 0.001_388_889, 0.008_333_334), 0.041_666_668), 0.166_666_67), 0.5), 1.0), 1.0);
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    p * scale
}

/// erf with absolute error below 2e-7 (Numerical Recipes' erfc, Chebyshev-fitted), branch-free.
#[inline(always)]
fn erf<M: MulAdd>(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let m = M::madd;
    let horner = [0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7]
        .iter()
        .fold(m(m(m(t, 0.170_872_77, -0.822_152_23), t, 1.488_515_9), t, -1.135_204), |acc, &c| m(acc, t, c));
    let poly = m(t, horner, -z * z - 1.265_512_2);
    let erfc = t * fast_exp::<M>(poly);
    (1.0 - erfc).copysign(x)
}

/// GELU with the exact (erf) form BERT uses.
#[inline(always)]
fn gelu_erf<M: MulAdd>(x: f32) -> f32 {
    0.5 * x * (1.0 + erf::<M>(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU with the tanh approximation (`gelu_new`).
#[inline(always)]
fn gelu_tanh<M: MulAdd>(x: f32) -> f32 {
    // tanh(u) = 1 − 2 / (e^{2u} + 1)
    let u = 0.797_884_6 * M::madd(0.044_715 * x * x, x, x);
    let tanh = 1.0 - 2.0 / (fast_exp::<M>(2.0 * u) + 1.0);
    0.5 * x * (1.0 + tanh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_exp<M: MulAdd>() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((fast_exp::<M>(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(fast_exp::<M>(-1000.0), fast_exp::<M>(-87.0));
        assert!(fast_exp::<M>(-87.0) > 0.0);
    }

    #[test]
    fn fast_exp_matches_std_with_and_without_fma() {
        check_exp::<Separate>();
        check_exp::<Fused>();
    }

    fn check_erf_and_gelu<M: MulAdd>() {
        let mut worst = 0f64;
        let mut x = -8.0f32;
        while x < 8.0 {
            let want = libm_erf(x as f64);
            worst = worst.max((erf::<M>(x) as f64 - want).abs());
            let g = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((gelu_erf::<M>(x) as f64 - g).abs() < 2e-6 * (1.0 + g.abs()), "gelu({x})");
            let u = 0.797_884_560_802_865_4 * (x as f64 + 0.044_715 * (x as f64).powi(3));
            let gt = 0.5 * x as f64 * (1.0 + u.tanh());
            assert!((gelu_tanh::<M>(x) as f64 - gt).abs() < 2e-6 * (1.0 + gt.abs()), "gelu_tanh({x})");
            x += 0.001;
        }
        assert!(worst < 5e-7, "worst absolute erf error {worst}");
        assert_eq!(erf::<M>(0.0), 0.0);
        assert_eq!(gelu_erf::<M>(0.0), 0.0);
    }

    #[test]
    fn erf_and_gelu_match_libm_with_and_without_fma() {
        check_erf_and_gelu::<Separate>();
        check_erf_and_gelu::<Fused>();
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn bias_activation_and_norm_match_a_plain_reference() {
        let m = 40;
        let (x0, r, bias) = (random(3 * m, 1), random(3 * m, 2), random(m, 3));
        let (gamma, beta) = (random(m, 4), random(m, 5));
        for act in [Activation::Gelu, Activation::GeluTanh, Activation::Relu] {
            let mut x = x0.clone();
            bias_act_rows(&mut x, &bias, act);
            for (i, (&got, &v)) in x.iter().zip(&x0).enumerate() {
                let v = f64::from(v + bias[i % m]);
                let want = match act {
                    Activation::Gelu => 0.5 * v * (1.0 + libm_erf(v / std::f64::consts::SQRT_2)),
                    Activation::GeluTanh => {
                        0.5 * v * (1.0 + (0.797_884_560_802_865_4 * (v + 0.044_715 * v.powi(3))).tanh())
                    }
                    Activation::Relu => v.max(0.0),
                };
                assert!((f64::from(got) - want).abs() < 1e-5, "{act:?} [{i}]: {got} vs {want}");
            }
        }
        let mut x = x0.clone();
        norm_rows(&mut x, &r, &bias, &gamma, &beta, 1e-12);
        for row in 0..3 {
            let v: Vec<f64> = (0..m).map(|i| f64::from(x0[row * m + i] + r[row * m + i] + bias[i])).collect();
            let mean = v.iter().sum::<f64>() / m as f64;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / m as f64;
            for i in 0..m {
                let want = (v[i] - mean) / (var + 1e-12).sqrt() * f64::from(gamma[i]) + f64::from(beta[i]);
                assert!((f64::from(x[row * m + i]) - want).abs() < 1e-5, "norm [{row}][{i}]");
            }
        }
    }

    /// Attention computed the plain way, in f64: per text and head, softmax(q·kᵀ + relative) · v.
    fn attention_reference(x: &[f32], bias: &[f32], lengths: &[usize], heads: usize, relative: &[f32]) -> Vec<f64> {
        let width = bias.len();
        let hidden = width / 3;
        let d = hidden / heads;
        let seq = lengths.iter().copied().max().unwrap_or(0);
        let mut out = vec![0f64; lengths.iter().sum::<usize>() * hidden];
        let mut start = 0;
        for &len in lengths {
            let at = |t: usize, c: usize| f64::from(x[(start + t) * width + c] + bias[c]);
            for h in 0..heads {
                for i in 0..len {
                    let mut scores: Vec<f64> = (0..len)
                        .map(|j| {
                            let dot: f64 = (0..d).map(|c| at(i, h * d + c) * at(j, hidden + h * d + c)).sum();
                            dot + if relative.is_empty() { 0.0 } else { f64::from(relative[(h * seq + i) * seq + j]) }
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    scores.iter_mut().for_each(|s| *s = (*s - max).exp());
                    let sum: f64 = scores.iter().sum();
                    for c in 0..d {
                        out[(start + i) * hidden + h * d + c] =
                            (0..len).map(|j| scores[j] / sum * at(j, 2 * hidden + h * d + c)).sum();
                    }
                }
            }
            start += len;
        }
        out
    }

    #[test]
    fn attention_matches_a_plain_reference() {
        use candle_core::{Device, Tensor};
        // Head widths on and off the 16-float accumulator, texts shorter and longer than one block of keys, with
        // and without a relative bias.
        for (heads, d) in [(2, 32), (3, 20), (1, 16)] {
            let lengths = [1usize, 5, 17, 33];
            let width = 3 * heads * d;
            let tokens: usize = lengths.iter().sum();
            let x = random(tokens * width, d as u64);
            let bias = random(width, 7);
            let seq = 33;
            for relative in [Vec::new(), random(heads * seq * seq, 9)] {
                let t = Tensor::from_vec(x.clone(), (tokens, width), &Device::Cpu).expect("tensor");
                let op = Attention { bias: &bias, lengths: &lengths, heads, relative: &relative };
                let got = t.apply_op1_no_bwd(&op).expect("attention");
                assert_eq!(got.dims(), &[tokens, heads * d]);
                let got = got.flatten_all().and_then(|g| g.to_vec1::<f32>()).expect("values");
                let want = attention_reference(&x, &bias, &lengths, heads, &relative);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!((f64::from(g) - w).abs() < 1e-5, "heads {heads} d {d} [{i}]: {g} vs {w}");
                }
            }
        }
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
