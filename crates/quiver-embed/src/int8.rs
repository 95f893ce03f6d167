//! Int8 projections for the text encoders: `x · Wᵀ` with weights and activations quantized to 8 bits in groups of
//! [`GROUP`] consecutive inputs, each group with its own scale (symmetric: `q = round(v / s)`, `s = max |v| / 127`):
//! per (output, group) for the weights, once at load; per (token, group) for the activations, at every product.
//! Scales per group rather than per row keep BERT's few large-valued channels from flattening the rest: with one
//! scale per row the vectors drift to a cosine of 0.992 from f32 on short texts; with groups of 64 the mean cosine
//! over 11k WordNet glosses is 0.9995 and the lowest 0.9987 (groups of 32: 0.9997 and 0.9990, at 1.7× the time),
//! and `tests/it/reference.rs` holds a 0.995 gate.
//!
//! The products are u8 × i8 → i32 (activations offset by 128 into u8; the offset comes back out through each
//! (group, output)'s weight sum). Weights are packed so that one 64-byte row holds 4 consecutive inputs of 16
//! outputs, the layout of both fast kernels:
//! - AMX (`tdpbusd`: a 16 × 64-byte tile of activations times a 16 × 64-byte tile of weights into 16 × 16 i32
//!   sums, 16,384 multiply-adds per instruction): one instruction per (16 tokens, 16 outputs, group), its sums
//!   stored and scaled into f32 accumulators while the next group's product runs;
//! - AVX-512 VNNI (`vpdpbusd`: 64 u8 × i8 products summed into 16 i32 lanes per instruction): a register-blocked
//!   kernel, 6 tokens × 32 outputs per tile.
//!
//! Elsewhere a portable loop computes the same numbers, slowly.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Inputs sharing one scale.
pub const GROUP: usize = 32;
/// Outputs per kernel tile (two 16-lane registers).
const TILE_OUT: usize = 32;
/// Tokens per kernel tile.
const TILE_ROWS: usize = 6;
/// Tokens per AMX tile.
const AMX_ROWS: usize = 16;
/// Rows per parallel run of the product; a multiple of both tile heights, and what the activations are padded to.
const RUN_ROWS: usize = 48;

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

thread_local! {
    /// Each thread's quantized activations (`u8` levels and per-group scales), reused from product to product.
    static SCRATCH: RefCell<(Vec<u8>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
            let v: [__m512; GROUP / 16] = std::array::from_fn(|i| _mm512_loadu_ps(p.add(16 * i)));
            let abs = v.iter().fold(_mm512_setzero_ps(), |m, &x| _mm512_max_ps(m, _mm512_abs_ps(x)));
            let max = _mm512_reduce_max_ps(abs);
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            *s.get_unchecked_mut(g) = scale;
            let inv = _mm512_set1_ps(1.0 / scale);
            for (i, v) in v.into_iter().enumerate() {
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
        let rows_padded = rows.div_ceil(RUN_ROWS) * RUN_ROWS;
        SCRATCH.with_borrow_mut(|(xq, xs)| {
            // Activations: per (row, group), symmetric to i8 then offset by 128 into u8 (so 128 is zero). The
            // buffers are this thread's, kept between products (no allocation, no page faults); every byte the
            // kernel reads is written here: each row's levels by `quantize_row`, the padding (inputs beyond
            // `inputs` and rows beyond `rows`) set to 128 and scale 0.
            xq.resize(rows_padded * self.inputs_padded, 128);
            xs.resize(rows_padded * groups, 0.0);
            let (xq, xs) = (&mut xq[..rows_padded * self.inputs_padded], &mut xs[..rows_padded * groups]);
            xq.par_chunks_mut(self.inputs_padded).zip(xs.par_chunks_mut(groups)).enumerate().for_each(|(r, (q, s))| {
                if r < rows {
                    quantize_row(&x[r * self.inputs..(r + 1) * self.inputs], q, s);
                    q[self.inputs..].fill(128);
                } else {
                    q.fill(128);
                    s.fill(0.0);
                }
            });
            // The output is written once, by the kernel, without being zeroed first.
            let len = rows * self.outputs;
            let mut out: Vec<f32> = Vec::with_capacity(len);
            // Runs of rows in parallel, each written in place; the weights (at most a few MB) stay in cache.
            let run = RUN_ROWS;
            out.spare_capacity_mut()[..len].par_chunks_mut(run * self.outputs).enumerate().for_each(|(c, dst)| {
                for b in 0..self.outputs_padded / TILE_OUT {
                    self.block(xq, xs, c * run, b * TILE_OUT, dst);
                }
            });
            // SAFETY: the blocks of outputs 0, 32, ... cover every output of every row of every run, and each
            // block writes all of its rows' outputs (`block_vnni` and `block_portable` store every lane below
            // `width`), so all `len` values are initialised.
            unsafe { out.set_len(len) };
            out
        })
    }

    /// Writes `dst[r][o0 + j]` (`dst`: rows `r0 ..` of the output, `outputs` wide; `j < 32` within the outputs) as
    /// `Σ_groups xs[r][g] · scale[g][o] · (Σ_{k in g} xq[r][k] · q(W[o][k]) − offset[g][o])`.
    fn block(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [MaybeUninit<f32>]) {
        #[cfg(target_arch = "x86_64")]
        if amx::available() {
            // SAFETY: the CPU has AMX-INT8 and AVX-512, and the kernel may use the tiles (checked just above).
            unsafe { self.block_amx(xq, xs, r0, o0, dst) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if vnni() {
            // SAFETY: the CPU has the features the kernel is compiled for (checked just above).
            unsafe { self.block_vnni(xq, xs, r0, o0, dst) };
            return;
        }
        self.block_portable(xq, xs, r0, o0, dst);
    }

    fn block_portable(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [MaybeUninit<f32>]) {
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
                d.write(total);
            }
        }
    }

    /// The VNNI kernel: per [`TILE_ROWS`] rows, 2 · TILE_ROWS f32 accumulators (two registers of 16 outputs per
    /// row); per group, as many integer accumulators fed by 8 quads of inputs (two 64-byte weight loads and a
    /// 4-byte broadcast per row feed 2 · TILE_ROWS `vpdpbusd` per quad), then scaled into the f32 ones; results
    /// stored into `dst` under a lane mask (the last block of outputs may be narrower than 32).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn block_vnni(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [MaybeUninit<f32>]) {
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
                    let d = dst.as_mut_ptr().add((t * TILE_ROWS + i) * self.outputs + o0) as *mut f32;
                    _mm512_mask_storeu_ps(d, mask0, f[2 * i]);
                    if mask1 != 0 {
                        _mm512_mask_storeu_ps(d.add(16), mask1, f[2 * i + 1]);
                    }
                }
            }
        }
    }
}

impl QuantizedMatrix {
    /// The AMX kernel, for the same block as [`QuantizedMatrix::block_vnni`]: per tile of 16 rows and each half of
    /// the 32 outputs, per group, one `tdpbusd` multiplies the 16 × 32 activation bytes by the group's 8 × 64
    /// weight bytes (the packed layout is already AMX's: 4 consecutive inputs of 16 outputs per 64-byte row) into
    /// 16 × 16 integer sums, which are stored and scaled into 16 f32 accumulators as in the VNNI kernel.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn block_amx(&self, xq: &[u8], xs: &[f32], r0: usize, o0: usize, dst: &mut [MaybeUninit<f32>]) {
        use std::arch::asm;
        use std::arch::x86_64::*;
        let groups = self.groups();
        let quad_stride = self.outputs_padded * 4;
        let rows = dst.len() / self.outputs;
        let tiles = rows.div_ceil(AMX_ROWS);
        let width = TILE_OUT.min(self.outputs - o0);
        // Every tile load stays inside these bounds: activation rows r0 .. r0 + tiles · 16 (the caller pads the
        // rows to whole runs) of `inputs_padded` bytes, from group g's first byte, 32 bytes each; weight quads
        // g · 8 .. g · 8 + 8 of `quad_stride` bytes, lanes o0 + 16·half .. + 16 (o0 + 32 ≤ outputs_padded); scales
        // and offsets from o0 to o0 + 32; stores to the first `rows` rows of `dst`, lanes o0 .. o0 + width.
        assert!(xq.len() >= (r0 + tiles * AMX_ROWS) * self.inputs_padded);
        assert!(xs.len() >= (r0 + tiles * AMX_ROWS) * groups && dst.len() == rows * self.outputs);
        assert!(o0 + TILE_OUT <= self.outputs_padded && width > 0);
        assert!(self.packed.len() >= (self.inputs_padded / 4) * quad_stride);
        assert!(self.scales.len() >= groups * self.outputs_padded && self.offsets.len() >= self.scales.len());
        let config = amx::TileConfig::for_groups();
        let mut sums = [amx::Sums([0; AMX_ROWS * 16]), amx::Sums([0; AMX_ROWS * 16])];
        // SAFETY: pointers and strides within the bounds asserted above; the tile configuration is valid for every
        // tile used (0: 16 × 64-byte sums, 2: 16 × 32 activation bytes, 3: 8 × 64 weight bytes), and is released at
        // the end, so no tile state outlives this call.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
            for t in 0..tiles {
                let rt = r0 + t * AMX_ROWS;
                let live = AMX_ROWS.min(rows - t * AMX_ROWS);
                for half in 0..2 {
                    let lanes = width.saturating_sub(16 * half).min(16);
                    if lanes == 0 {
                        break;
                    }
                    let oh = o0 + 16 * half;
                    let mut f = [_mm512_setzero_ps(); AMX_ROWS];
                    // Group g's product, into sum buffer g % 2 (tiles 0, 2, 3 for even groups, 1, 4, 5 for odd
                    // ones); the loop issues group g + 1's before scaling group g's, so the tile unit works while
                    // the vector unit scales, and no load waits on the store just issued.
                    let product = |g: usize, sums: &mut [amx::Sums; 2]| {
                        let a = xq.as_ptr().add(rt * self.inputs_padded + g * GROUP);
                        let b = self.packed.as_ptr().add(g * (GROUP / 4) * quad_stride + oh * 4);
                        let c = sums[g % 2].0.as_mut_ptr();
                        if g.is_multiple_of(2) {
                            asm!(
                                "tilezero tmm0",
                                "tileloadd tmm2, [{a} + {sa} * 1]",
                                "tileloadd tmm3, [{b} + {sb} * 1]",
                                "tdpbusd tmm0, tmm2, tmm3",
                                "tilestored [{c} + {sc} * 1], tmm0",
                                a = in(reg) a, sa = in(reg) self.inputs_padded, b = in(reg) b,
                                sb = in(reg) quad_stride, c = in(reg) c, sc = in(reg) 64usize,
                                options(nostack),
                            );
                        } else {
                            asm!(
                                "tilezero tmm1",
                                "tileloadd tmm4, [{a} + {sa} * 1]",
                                "tileloadd tmm5, [{b} + {sb} * 1]",
                                "tdpbusd tmm1, tmm4, tmm5",
                                "tilestored [{c} + {sc} * 1], tmm1",
                                a = in(reg) a, sa = in(reg) self.inputs_padded, b = in(reg) b,
                                sb = in(reg) quad_stride, c = in(reg) c, sc = in(reg) 64usize,
                                options(nostack),
                            );
                        }
                    };
                    product(0, &mut sums);
                    for g in 0..groups {
                        if g + 1 < groups {
                            product(g + 1, &mut sums);
                        }
                        let at = g * self.outputs_padded + oh;
                        let off = _mm512_loadu_si512(self.offsets.as_ptr().add(at) as *const _);
                        let sc = _mm512_loadu_ps(self.scales.as_ptr().add(at));
                        let done = &sums[g % 2].0;
                        for (i, f) in f.iter_mut().enumerate() {
                            let s = _mm512_set1_ps(*xs.get_unchecked((rt + i) * groups + g));
                            let v = _mm512_load_si512(done.as_ptr().add(16 * i) as *const _);
                            let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(v, off));
                            *f = _mm512_fmadd_ps(v, _mm512_mul_ps(sc, s), *f);
                        }
                    }
                    let mask: __mmask16 = if lanes == 16 { 0xFFFF } else { (1u16 << lanes) - 1 };
                    for (i, f) in f.iter().enumerate().take(live) {
                        let d = dst.as_mut_ptr().add((t * AMX_ROWS + i) * self.outputs + oh) as *mut f32;
                        _mm512_mask_storeu_ps(d, mask, *f);
                    }
                }
            }
            asm!("tilerelease", options(nostack, nomem));
        }
    }
}

/// Intel AMX (Advanced Matrix Extensions): detection, the Linux permission to use the tile registers, and the
/// tile configuration of [`QuantizedMatrix::block_amx`].
#[cfg(target_arch = "x86_64")]
mod amx {
    use super::{AMX_ROWS, GROUP};

    /// The 64-byte operand of `ldtilecfg`: palette 1, then bytes per row and rows of each of the 16 tiles.
    #[repr(C, align(64))]
    pub(super) struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    impl TileConfig {
        /// Tiles 0 and 1: 16 rows of 16 i32 sums; tiles 2 and 4: 16 rows of one group of activation bytes; tiles 3
        /// and 5: a group's weights, one row per quad of inputs (16 outputs × 4 bytes).
        pub(super) fn for_groups() -> Self {
            let mut c = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
            for (sums, activations, weights) in [(0, 2, 3), (1, 4, 5)] {
                (c.colsb[sums], c.rows[sums]) = (64, AMX_ROWS as u8);
                (c.colsb[activations], c.rows[activations]) = (GROUP as u16, AMX_ROWS as u8);
                (c.colsb[weights], c.rows[weights]) = (64, (GROUP / 4) as u8);
            }
            c
        }
    }

    /// Where a tile of sums is stored, one 64-byte row per token.
    #[repr(C, align(64))]
    pub(super) struct Sums(pub(super) [i32; AMX_ROWS * 16]);

    /// Whether the AMX kernel runs: the CPU has AMX-TILE and AMX-INT8 (CPUID leaf 7), AVX-512 for the scaling,
    /// and Linux granted this process the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)`, once;
    /// without it the first tile instruction would fault). `QUIVER_INT8_PORTABLE` or `QUIVER_INT8_NO_AMX` turn
    /// it off.
    pub(super) fn available() -> bool {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            if std::env::var_os("QUIVER_INT8_PORTABLE").is_some() || std::env::var_os("QUIVER_INT8_NO_AMX").is_some() {
                return false;
            }
            if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")) {
                return false;
            }
            // CPUID leaf 7, sub-leaf 0: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
            let leaf = std::arch::x86_64::__cpuid_count(7, 0);
            if leaf.edx & (1 << 24) == 0 || leaf.edx & (1 << 25) == 0 {
                return false;
            }
            cfg!(target_os = "linux") && request_permission()
        })
    }

    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: true when Linux allows this process to use the tile
    /// registers (Linux 5.16 or later; an older kernel or a refusal leaves the VNNI kernel in use).
    fn request_permission() -> bool {
        const SYS_ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: a plain system call that only changes this process's permitted extended states; the kernel
        // clobbers rcx and r11 on `syscall`.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }
}

/// The kernel int8 products run on here: `"amx"`, `"vnni"` or `"portable"`.
pub fn kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if amx::available() {
            return "amx";
        }
        if vnni() {
            return "vnni";
        }
    }
    "portable"
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
            // The portable loop gives the same numbers as the AMX and VNNI kernels (those this CPU has), up to the
            // order of the f32 sums, on runs of rows that end inside a tile too, and no kernel writes outside its
            // block of outputs.
            let rows_padded = rows.div_ceil(RUN_ROWS) * RUN_ROWS;
            let xq: Vec<u8> = (0..rows_padded * q.inputs_padded).map(|i| (i * 37 % 251) as u8).collect();
            let xs: Vec<f32> = (0..rows_padded * q.groups()).map(|i| 0.01 + (i % 7) as f32 * 0.003).collect();
            for b in 0..q.outputs_padded / TILE_OUT {
                let mut slow = vec![MaybeUninit::new(0f32); rows * outputs];
                q.block_portable(&xq, &xs, 0, b * TILE_OUT, &mut slow);
                // Every kernel this CPU has: the dispatched one (AMX where available), and VNNI on its own.
                let mut kernels: Vec<(&str, Vec<MaybeUninit<f32>>)> = Vec::new();
                let mut fast = vec![MaybeUninit::new(f32::NAN); rows * outputs];
                q.block(&xq, &xs, 0, b * TILE_OUT, &mut fast);
                kernels.push((kernel(), fast));
                #[cfg(target_arch = "x86_64")]
                if vnni() {
                    let mut v = vec![MaybeUninit::new(f32::NAN); rows * outputs];
                    // SAFETY: the CPU has the kernel's features (checked just above).
                    unsafe { q.block_vnni(&xq, &xs, 0, b * TILE_OUT, &mut v) };
                    kernels.push(("vnni", v));
                }
                // SAFETY: every value was initialised when the vectors were made.
                let read =
                    |v: &[MaybeUninit<f32>]| -> Vec<f32> { v.iter().map(|x| unsafe { x.assume_init() }).collect() };
                let slow = read(&slow);
                for (name, fast) in &kernels {
                    // Only this block's outputs are written; the others keep their NaN.
                    for (i, (got, want)) in read(fast).iter().zip(&slow).enumerate() {
                        if (b * TILE_OUT..(b + 1) * TILE_OUT).contains(&(i % outputs)) {
                            assert!((got - want).abs() <= 1e-3 * want.abs().max(1.0), "{name}: {got} vs {want}");
                        } else {
                            assert!(got.is_nan(), "{name} wrote output {i} outside its block");
                        }
                    }
                }
            }
        }
    }
}
