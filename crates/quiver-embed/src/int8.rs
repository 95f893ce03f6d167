//! Int8 projections for the text encoders: `x · Wᵀ` with weights and activations quantized to 8 bits in groups of
//! [`GROUP`] consecutive inputs, each group with its own scale (symmetric: `q = round(v / s)`, `s = max |v| / 127`):
//! per (output, group) for the weights, once at load; per (token, group) for the activations, at every product.
//! Scales per group rather than per row keep BERT's few large-valued channels from flattening the rest: with one
//! scale per row the vectors drift to a cosine of 0.992 from f32 on short texts, with groups of 32 they stay above
//! 0.998 (`tests/it/reference.rs` holds the 0.995 gate).
//!
//! The products are u8 × i8 → i32 (activations offset by 128 into u8; the offset comes back out through each
//! (group, output)'s weight sum). With AVX-512 VNNI (`vpdpbusd`: 64 u8 × i8 products summed into 16 i32 lanes per
//! instruction, four times the multiply-adds of an f32 FMA) they run on a register-blocked kernel: weights packed
//! so that one 64-byte load holds 4 consecutive inputs of 16 outputs, 4 tokens × 32 outputs per tile, each group's
//! integer sums scaled into f32 accumulators. Elsewhere a portable loop computes the same numbers, slowly.

use rayon::prelude::*;

/// Inputs sharing one scale.
pub const GROUP: usize = 32;
/// Outputs per kernel tile (two 16-lane registers).
const TILE_OUT: usize = 32;
/// Tokens per kernel tile.
const TILE_ROWS: usize = 6;

/// A weight matrix `W` (`outputs × inputs`) quantized to i8 in groups and packed for the kernel.
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    outputs: usize,
    inputs: usize,
    /// `inputs` rounded up to a multiple of [`GROUP`].
    inputs_padded: usize,
    /// `outputs` rounded up to a multiple of [`TILE_OUT`].
    outputs_padded: usize,
    /// `[inputs_padded / 4][outputs_padded][4]`: byte `j` of lane `o` in quad `k4` is `q(W[o][4·k4 + j])`.
    packed: Vec<i8>,
    /// `[groups][outputs_padded]`: the scale of each output's weights in each group.
    scales: Vec<f32>,
    /// `[groups][outputs_padded]`: `128 · Σ_{k in group} q(W[o][k])`, what the activations' u8 offset adds.
    offsets: Vec<i32>,
}

/// The scale of a group (`max |v| / 127`, 1 for all zeros) and its inverse.
#[inline(always)]
fn scale_of(v: &[f32]) -> (f32, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    (scale, 1.0 / scale)
}

/// `v` quantized with the inverse scale `inv`: −127..=127, rounded half to even (as the AVX-512 conversion does;
/// adding and subtracting 1.5·2²³ rounds without a libm call).
#[inline(always)]
fn level(v: f32, inv: f32) -> i32 {
    const ROUND: f32 = 12_582_912.0;
    (((v * inv).clamp(-127.0, 127.0) + ROUND) - ROUND) as i32
}

/// One row of activations into u8 levels (offset 128) and a scale per group.
fn quantize_row(row: &[f32], q: &mut [u8], s: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if vnni() {
        // SAFETY: the CPU has AVX-512F/BW (checked by `vnni`); the function only compiles the same safe code for it.
        unsafe { quantize_row_avx512(row, q, s) };
        return;
    }
    quantize_row_body(row, q, s);
}

/// [`quantize_row_body`] with AVX-512: per group of 32, the largest magnitude from two registers, then
/// multiply, round to nearest even, offset and narrow to bytes 16 at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row_avx512(row: &[f32], q: &mut [u8], s: &mut [f32]) {
    use std::arch::x86_64::*;
    let full = row.len() / GROUP;
    // Bounds for the unchecked part: groups g < full read row[32g..32g + 32] and write q[32g..32g + 32], s[g].
    assert!(q.len() >= full * GROUP && s.len() >= full);
    // SAFETY: within the bounds asserted above; unaligned loads and stores.
    unsafe {
        let offset = _mm512_set1_epi32(128);
        for g in 0..full {
            let p = row.as_ptr().add(g * GROUP);
            let (a, b) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
            let max = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            *s.get_unchecked_mut(g) = scale;
            let inv = _mm512_set1_ps(1.0 / scale);
            for (i, v) in [a, b].into_iter().enumerate() {
                let n = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv)), offset);
                _mm_storeu_si128(q.as_mut_ptr().add(g * GROUP + 16 * i) as *mut _, _mm512_cvtepi32_epi8(n));
            }
        }
    }
    // A last, partial group the plain way.
    if full * GROUP < row.len() {
        quantize_row_body(&row[full * GROUP..], &mut q[full * GROUP..], &mut s[full..]);
    }
}

#[inline(always)]
fn quantize_row_body(row: &[f32], q: &mut [u8], s: &mut [f32]) {
    for (g, part) in row.chunks(GROUP).enumerate() {
        let (scale, inv) = scale_of(part);
        s[g] = scale;
        for (d, v) in q[g * GROUP..].iter_mut().zip(part) {
            *d = (level(*v, inv) + 128) as u8;
        }
    }
}

impl QuantizedMatrix {
    /// Quantizes `w` (`outputs × inputs`, row-major).
    pub fn new(w: &[f32], outputs: usize, inputs: usize) -> Self {
        assert_eq!(w.len(), outputs * inputs, "weight matrix size");
        let inputs_padded = inputs.div_ceil(GROUP) * GROUP;
        let outputs_padded = outputs.div_ceil(TILE_OUT) * TILE_OUT;
        let groups = inputs_padded / GROUP;
        let mut packed = vec![0i8; inputs_padded * outputs_padded];
        let mut scales = vec![1f32; groups * outputs_padded];
        let mut offsets = vec![0i32; groups * outputs_padded];
        for o in 0..outputs {
            let row = &w[o * inputs..(o + 1) * inputs];
            for (g, part) in row.chunks(GROUP).enumerate() {
                let (scale, inv) = scale_of(part);
                scales[g * outputs_padded + o] = scale;
                let mut sum = 0i32;
                for (j, v) in part.iter().enumerate() {
                    let k = g * GROUP + j;
                    let q = level(*v, inv);
                    packed[((k / 4) * outputs_padded + o) * 4 + k % 4] = q as i8;
                    sum += q;
                }
                offsets[g * outputs_padded + o] = 128 * sum;
            }
        }
        QuantizedMatrix { outputs, inputs, inputs_padded, outputs_padded, packed, scales, offsets }
    }

    fn groups(&self) -> usize {
        self.inputs_padded / GROUP
    }

    /// `x` (`rows × inputs`, row-major) times `Wᵀ`: `rows × outputs`.
    pub fn matmul(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.inputs, "activation size");
        let groups = self.groups();
        let rows_padded = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
        // Activations: per (row, group), symmetric to i8 then offset by 128 into u8 (so 128 is zero).
        let mut xq = vec![128u8; rows_padded * self.inputs_padded];
        let mut xs = vec![0f32; rows_padded * groups];
        xq.par_chunks_mut(self.inputs_padded)
            .zip(xs.par_chunks_mut(groups))
            .take(rows)
            .enumerate()
            .for_each(|(r, (q, s))| quantize_row(&x[r * self.inputs..(r + 1) * self.inputs], q, s));
        let mut out = vec![0f32; rows * self.outputs];
        // Runs of rows in parallel, each written in place; the weights (at most a few MB) stay in cache.
        let run = TILE_ROWS * 8;
        out.par_chunks_mut(run * self.outputs).enumerate().for_each(|(c, dst)| {
            for b in 0..self.outputs_padded / TILE_OUT {
                self.block(&xq, &xs, c * run, b * TILE_OUT, dst);
            }
        });
        out
    }

    /// Writes `dst[r][o0 + j]` (`dst`: rows `r0 ..` of the output, `outputs` wide; `j < 32` within the outputs) as
    /// `Σ_groups xs[r][g] · scale[g][o] · (Σ_{k in g} xq[r][k] · q(W[o][k]) − offset[g][o])`.
    fn block(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if vnni() {
            // SAFETY: the CPU has the features the kernel is compiled for (checked just above).
            unsafe { self.block_vnni(xq, xs, r0, o0, dst) };
            return;
        }
        self.block_portable(xq, xs, r0, o0, dst);
    }

    fn block_portable(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [f32]) {
        let groups = self.groups();
        let width = TILE_OUT.min(self.outputs - o0);
        for (i, out) in dst.chunks_exact_mut(self.outputs).enumerate() {
            let r = r0 + i;
            let x = &xq[r * self.inputs_padded..(r + 1) * self.inputs_padded];
            for (j, d) in out[o0..o0 + width].iter_mut().enumerate() {
                let o = o0 + j;
                let mut total = 0f32;
                for g in 0..groups {
                    let mut s = 0i32;
                    for (k, xk) in x.iter().enumerate().skip(g * GROUP).take(GROUP) {
                        let w = self.packed[((k / 4) * self.outputs_padded + o) * 4 + k % 4];
                        s += i32::from(*xk) * i32::from(w);
                    }
                    let at = g * self.outputs_padded + o;
                    total += (s - self.offsets[at]) as f32 * (self.scales[at] * xs[r * groups + g]);
                }
                *d = total;
            }
        }
    }

    /// The VNNI kernel: per [`TILE_ROWS`] rows, 2 · TILE_ROWS f32 accumulators (two registers of 16 outputs per
    /// row); per group, as many integer accumulators fed by 8 quads of inputs (two 64-byte weight loads and a
    /// 4-byte broadcast per row feed 2 · TILE_ROWS `vpdpbusd` per quad), then scaled into the f32 ones; results
    /// stored into `dst` under a lane mask (the last block of outputs may be narrower than 32).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn block_vnni(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [f32]) {
        use std::arch::x86_64::*;
        let groups = self.groups();
        let quad_stride = self.outputs_padded * 4;
        let rows = dst.len() / self.outputs;
        let tiles = rows.div_ceil(TILE_ROWS);
        let width = TILE_OUT.min(self.outputs - o0);
        // Every access below stays inside these bounds: rows r0 .. r0 + tiles · TILE_ROWS of `inputs_padded` bytes
        // and `groups` scales (the caller pads the rows to whole tiles), quads < inputs_padded / 4 of
        // `quad_stride` bytes from lane o0 to o0 + 32, per-group scales and offsets from o0 to o0 + 32, and stores
        // to the first `rows` rows of `dst`, lanes o0 .. o0 + width.
        assert!(xq.len() >= (r0 + tiles * TILE_ROWS) * self.inputs_padded);
        assert!(xs.len() >= (r0 + tiles * TILE_ROWS) * groups && dst.len() == rows * self.outputs);
        assert!(o0 + TILE_OUT <= self.outputs_padded && width > 0);
        assert!(self.packed.len() >= (self.inputs_padded / 4) * quad_stride);
        assert!(self.scales.len() >= groups * self.outputs_padded && self.offsets.len() >= self.scales.len());
        let mask0: __mmask16 = if width >= 16 { 0xFFFF } else { (1u16 << width) - 1 };
        let mask1: __mmask16 = if width >= 32 {
            0xFFFF
        } else if width > 16 {
            (1u16 << (width - 16)) - 1
        } else {
            0
        };
        // SAFETY: the pointer offsets are within the slices checked above; loads and stores are unaligned (and
        // masked where the outputs end).
        unsafe {
            let w = self.packed.as_ptr().add(o0 * 4);
            for t in 0..tiles {
                let rt = r0 + t * TILE_ROWS;
                let x = xq.as_ptr().add(rt * self.inputs_padded);
                let mut f = [_mm512_setzero_ps(); 2 * TILE_ROWS];
                for g in 0..groups {
                    let mut a = [_mm512_setzero_si512(); 2 * TILE_ROWS];
                    for q in g * GROUP / 4..(g + 1) * GROUP / 4 {
                        let wq = w.add(q * quad_stride);
                        let w0 = _mm512_loadu_si512(wq as *const _);
                        let w1 = _mm512_loadu_si512(wq.add(64) as *const _);
                        for i in 0..TILE_ROWS {
                            let four = (x.add(i * self.inputs_padded + q * 4) as *const i32).read_unaligned();
                            let xb = _mm512_set1_epi32(four);
                            a[2 * i] = _mm512_dpbusd_epi32(a[2 * i], xb, w0);
                            a[2 * i + 1] = _mm512_dpbusd_epi32(a[2 * i + 1], xb, w1);
                        }
                    }
                    let at = g * self.outputs_padded + o0;
                    let off0 = _mm512_loadu_si512(self.offsets.as_ptr().add(at) as *const _);
                    let off1 = _mm512_loadu_si512(self.offsets.as_ptr().add(at + 16) as *const _);
                    let sc0 = _mm512_loadu_ps(self.scales.as_ptr().add(at));
                    let sc1 = _mm512_loadu_ps(self.scales.as_ptr().add(at + 16));
                    for i in 0..TILE_ROWS {
                        let s = _mm512_set1_ps(*xs.get_unchecked((rt + i) * groups + g));
                        let v0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(a[2 * i], off0));
                        let v1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(a[2 * i + 1], off1));
                        f[2 * i] = _mm512_fmadd_ps(v0, _mm512_mul_ps(sc0, s), f[2 * i]);
                        f[2 * i + 1] = _mm512_fmadd_ps(v1, _mm512_mul_ps(sc1, s), f[2 * i + 1]);
                    }
                }
                for i in 0..TILE_ROWS.min(rows - t * TILE_ROWS) {
                    let d = dst.as_mut_ptr().add((t * TILE_ROWS + i) * self.outputs + o0);
                    _mm512_mask_storeu_ps(d, mask0, f[2 * i]);
                    if mask1 != 0 {
                        _mm512_mask_storeu_ps(d.add(16), mask1, f[2 * i + 1]);
                    }
                }
            }
        }
    }
}

/// Whether this CPU runs the VNNI kernel (checked once; `QUIVER_INT8_PORTABLE` forces the portable loop).
#[cfg(target_arch = "x86_64")]
fn vnni() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::env::var_os("QUIVER_INT8_PORTABLE").is_none()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..rows * cols)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn both_activation_quantizers_give_the_same_bytes() {
        for len in [32, 64, 100, 384, 31, 1] {
            let mut row = matrix(1, len, len as u64);
            row[0] = 0.0;
            if len > 40 {
                row[32..64].iter_mut().for_each(|v| *v = 0.0); // an all-zero group
                row[5] = 3.5 / 127.0 * 0.5; // a tie after scaling is possible; both round half to even
            }
            let groups = len.div_ceil(GROUP);
            let (mut qa, mut sa) = (vec![128u8; groups * GROUP], vec![0f32; groups]);
            let (mut qb, mut sb) = (qa.clone(), sa.clone());
            quantize_row(&row, &mut qa, &mut sa);
            quantize_row_body(&row, &mut qb, &mut sb);
            assert_eq!((qa, sa), (qb, sb), "length {len}");
        }
    }

    #[test]
    fn int8_products_are_close_to_f32_and_both_kernels_agree() {
        for (rows, inputs, outputs) in [(1, 4, 1), (5, 384, 40), (9, 36, 33), (32, 128, 64), (3, 100, 7), (101, 64, 40)]
        {
            let w = matrix(outputs, inputs, 1);
            let x = matrix(rows, inputs, 2);
            let q = QuantizedMatrix::new(&w, outputs, inputs);
            let got = q.matmul(&x, rows);
            for r in 0..rows {
                for o in 0..outputs {
                    let exact: f32 = (0..inputs).map(|k| x[r * inputs + k] * w[o * inputs + k]).sum();
                    // Each factor is within half a step (≤ 0.5 / 127 / 2) of its value, and both are ≤ 0.5.
                    let bound = inputs as f32 * 0.5 / 127.0 + 1e-4;
                    assert!((got[r * outputs + o] - exact).abs() <= bound, "{rows}x{inputs}x{outputs} [{r}][{o}]");
                }
            }
            // The portable loop gives the same numbers as the VNNI kernel (when this CPU has it), up to the order
            // of the f32 sums, on runs of rows that end inside a tile too.
            let rows_padded = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
            let xq: Vec<u8> = (0..rows_padded * q.inputs_padded).map(|i| (i * 37 % 251) as u8).collect();
            let xs: Vec<f32> = (0..rows_padded * q.groups()).map(|i| 0.01 + (i % 7) as f32 * 0.003).collect();
            for b in 0..q.outputs_padded / TILE_OUT {
                let mut fast = vec![0f32; rows * outputs];
                let mut slow = vec![0f32; rows * outputs];
                q.block(&xq, &xs, 0, b * TILE_OUT, &mut fast);
                q.block_portable(&xq, &xs, 0, b * TILE_OUT, &mut slow);
                for (a, b) in fast.iter().zip(&slow) {
                    assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }
}
