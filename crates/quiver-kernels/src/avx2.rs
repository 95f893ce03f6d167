//! AVX2 + FMA kernels (x86_64). Every function here requires the `avx2` and `fma` CPU features; the dispatcher in
//! `lib.rs` only hands them out after `is_x86_feature_detected!` confirmed both.
//!
//! Loads are unaligned (`loadu`): rows of a `VectorSet` are only 4-byte aligned, and on every AVX2 CPU an unaligned
//! load of aligned data costs the same as an aligned one.

use std::arch::x86_64::*;
use std::cell::RefCell;

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

#[inline(always)]
unsafe fn ld(p: &[f32], i: usize) -> __m256 {
    debug_assert!(i + 8 <= p.len());
    // SAFETY: the caller guarantees `i + 8 <= p.len()`.
    unsafe { _mm256_loadu_ps(p.as_ptr().add(i)) }
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut s0, mut s1, mut s2, mut s3) =
        (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 32 <= n {
            s0 = _mm256_fmadd_ps(ld(a, i), ld(b, i), s0);
            s1 = _mm256_fmadd_ps(ld(a, i + 8), ld(b, i + 8), s1);
            s2 = _mm256_fmadd_ps(ld(a, i + 16), ld(b, i + 16), s2);
            s3 = _mm256_fmadd_ps(ld(a, i + 24), ld(b, i + 24), s3);
            i += 32;
        }
        while i + 8 <= n {
            s0 = _mm256_fmadd_ps(ld(a, i), ld(b, i), s0);
            i += 8;
        }
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn l2sq_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut s0, mut s1, mut s2, mut s3) =
        (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 32 <= n {
            let d0 = _mm256_sub_ps(ld(a, i), ld(b, i));
            let d1 = _mm256_sub_ps(ld(a, i + 8), ld(b, i + 8));
            let d2 = _mm256_sub_ps(ld(a, i + 16), ld(b, i + 16));
            let d3 = _mm256_sub_ps(ld(a, i + 24), ld(b, i + 24));
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
            s2 = _mm256_fmadd_ps(d2, d2, s2);
            s3 = _mm256_fmadd_ps(d3, d3, s3);
            i += 32;
        }
        while i + 8 <= n {
            let d = _mm256_sub_ps(ld(a, i), ld(b, i));
            s0 = _mm256_fmadd_ps(d, d, s0);
            i += 8;
        }
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    while i < n {
        let d = a[i] - b[i];
        s += d * d;
        i += 1;
    }
    s
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    let (mut s0, mut s1, mut s2, mut s3) =
        (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 32 <= n {
            s0 = _mm256_add_ps(ld(a, i), s0);
            s1 = _mm256_add_ps(ld(a, i + 8), s1);
            s2 = _mm256_add_ps(ld(a, i + 16), s2);
            s3 = _mm256_add_ps(ld(a, i + 24), s3);
            i += 32;
        }
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    while i < n {
        s += a[i];
        i += 1;
    }
    s
}

/// 8 bytes at `p[i..i + 8]` widened to 8 x f32.
#[inline(always)]
unsafe fn ld_u8x8_f32(p: &[u8], i: usize) -> __m256 {
    debug_assert!(i + 8 <= p.len());
    // SAFETY: the caller guarantees `i + 8 <= p.len()`; `loadl_epi64` reads 8 bytes with no alignment requirement.
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.as_ptr().add(i).cast()))) }
}

/// `sum(w[i] * c[i])` of f32 weights and u8 codes: the asymmetric scalar-quantization kernel.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_f32_u8(w: &[f32], c: &[u8]) -> f32 {
    let n = w.len().min(c.len());
    let (mut s0, mut s1, mut s2, mut s3) =
        (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 32 <= n {
            s0 = _mm256_fmadd_ps(ld(w, i), ld_u8x8_f32(c, i), s0);
            s1 = _mm256_fmadd_ps(ld(w, i + 8), ld_u8x8_f32(c, i + 8), s1);
            s2 = _mm256_fmadd_ps(ld(w, i + 16), ld_u8x8_f32(c, i + 16), s2);
            s3 = _mm256_fmadd_ps(ld(w, i + 24), ld_u8x8_f32(c, i + 24), s3);
            i += 32;
        }
        while i + 8 <= n {
            s0 = _mm256_fmadd_ps(ld(w, i), ld_u8x8_f32(c, i), s0);
            i += 8;
        }
    }
    let mut s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    while i < n {
        s += w[i] * f32::from(c[i]);
        i += 1;
    }
    s
}

/// `Σ w[i] · c[i]` of i16 weights and u8 codes in wrapping i32 arithmetic, the same sum as the scalar
/// reference in any order (exact while `Σ |w[i]| · 255 ≤ i32::MAX`, which the callers keep).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_i16_u8(w: &[i16], c: &[u8]) -> i32 {
    let n = w.len().min(c.len());
    let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 32 <= n {
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(ld_i16x16(w, i), ld_u8x16(c, i)));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(ld_i16x16(w, i + 16), ld_u8x16(c, i + 16)));
            i += 32;
        }
        while i + 16 <= n {
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(ld_i16x16(w, i), ld_u8x16(c, i)));
            i += 16;
        }
    }
    let mut s = hsum_epi32(_mm256_add_epi32(a0, a1)) as i32;
    while i < n {
        s = s.wrapping_add(i32::from(w[i]) * i32::from(c[i]));
        i += 1;
    }
    s
}

/// `Σ w[d] · code[d]` of i8 weights and 4-bit codes in the packing of [`crate::Kernels::dot_i8_u4`]: per 32-byte
/// block, the low nibbles (masked) and the high nibbles (shifted, masked) are 64 unsigned bytes in dimension
/// order, multiplied by the signed weight bytes and summed in pairs (`maddubs`: at most `2 · 15 · 128` a lane, so
/// no saturation), then widened to i32. Exact, as the scalar reference.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_i8_u4(w: &[i8], c: &[u8]) -> i32 {
    let n = c.len().min(w.len() / 2);
    let mask = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut i = 0;
    // SAFETY (all loads below): `i + 32 <= n` bounds the code load, and `2i + 64 <= 2n <= w.len()` the weights'.
    unsafe {
        while i + 32 <= n {
            let codes = _mm256_loadu_si256(c.as_ptr().add(i).cast());
            let lo = _mm256_and_si256(codes, mask);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(codes), mask);
            let wl = _mm256_loadu_si256(w.as_ptr().add(2 * i).cast());
            let wh = _mm256_loadu_si256(w.as_ptr().add(2 * i + 32).cast());
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, wl), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, wh), ones));
            i += 32;
        }
    }
    let s = hsum_epi32(_mm256_add_epi32(a0, a1)) as i32;
    s + crate::scalar::dot_i8_u4(&w[2 * i..], &c[i..])
}

/// 16 i16 values at `p[i..i + 16]`.
#[inline(always)]
unsafe fn ld_i16x16(p: &[i16], i: usize) -> __m256i {
    debug_assert!(i + 16 <= p.len());
    // SAFETY: the caller guarantees `i + 16 <= p.len()`; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(p.as_ptr().add(i).cast()) }
}

/// Widens 16 bytes at `p[i..i + 16]` to 16 x i16.
#[inline(always)]
unsafe fn ld_u8x16(p: &[u8], i: usize) -> __m256i {
    debug_assert!(i + 16 <= p.len());
    // SAFETY: the caller guarantees `i + 16 <= p.len()`; `loadu` has no alignment requirement.
    unsafe { _mm256_cvtepu8_epi16(_mm_loadu_si128(p.as_ptr().add(i).cast())) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum_epi32(v: __m256i) -> u32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s) as u32
}

/// Products of two zero-extended bytes are at most 65,025, so the pairwise sums of `madd_epi16` (≤ 130,050) and
/// the i32 lane accumulators (≤ 130,050 × len / 16) cannot overflow for `len <= MAX_DIM`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 16 <= n {
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(ld_u8x16(a, i), ld_u8x16(b, i)));
            i += 16;
        }
    }
    let mut s = hsum_epi32(acc);
    while i < n {
        s += u32::from(a[i]) * u32::from(b[i]);
        i += 1;
    }
    s
}

#[target_feature(enable = "avx2,fma")]
pub(crate) fn l2sq_u8(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // SAFETY (all loads below): every index is bounded by the loop condition against `n`.
    unsafe {
        while i + 16 <= n {
            let d = _mm256_sub_epi16(ld_u8x16(a, i), ld_u8x16(b, i));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
            i += 16;
        }
    }
    let mut s = hsum_epi32(acc);
    while i < n {
        let d = u32::from(a[i].abs_diff(b[i]));
        s += d * d;
        i += 1;
    }
    s
}

/// Hamming distance with the scalar `popcnt` instruction (every AVX2 CPU has it). For the code lengths QuiverDB
/// uses (a few hundred bits) this beats a vector nibble-lookup popcount.
#[target_feature(enable = "avx2,fma,popcnt")]
pub(crate) fn hamming(a: &[u64], b: &[u64]) -> u32 {
    let mut s = 0u32;
    for (x, y) in a.iter().zip(b) {
        s += (x ^ y).count_ones();
    }
    s
}

/// Rows per packed panel: two 8-lane registers.
const NR: usize = 16;
/// Queries per micro-tile: 6 x 2 accumulators, 2 panel registers and a broadcast fit the 16 registers (the shape
/// BLAS kernels use on AVX2).
const MR: usize = 6;
/// Below this many queries packing does not pay for itself; rows are scored one pair at a time.
const PACK_MIN_QUERIES: usize = 4;
/// Packed queries kept on a thread between calls up to this size (a 512-query chunk of 384-d is 768 KiB).
const KEEP_PACKED_BYTES: usize = 4 << 20;

/// One register's worth of a packed panel, aligned so that every panel load is an aligned one.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Line([f32; 8]);

thread_local! {
    /// A packed panel of rows and the packed queries, kept between calls so that a batch does not allocate per
    /// block.
    static PACKED: RefCell<(Vec<Line>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `out[i * nr + j] = dot(query_i, row_j)`, register-tiled as a small matrix product: rows are packed 16 at a time
/// into a dimension-major panel (`panel[k] = row_0[k] .. row_15[k]`), queries 6 at a time (`q_0[k] .. q_5[k]`),
/// and each query's `k`-th value is broadcast against the panel's two registers, so every multiply-add is a full
/// 8-lane FMA and no horizontal sums are needed (the dot-product tiles this replaced, 4 queries x 3 rows with a
/// horizontal sum per pair, ran at 0.78x FAISS's BLAS on the AMD EPYC VM). Fewer than four queries (the
/// single-query scan) read rows one at a time instead.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    tile::<false>(queries, rows, dim, out)
}

/// As [`dot_tile`] with squared Euclidean distances, computed from differences (not `|q|² + |r|² - 2q·r`, which
/// loses the small distances that matter most to cancellation).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn l2sq_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    tile::<true>(queries, rows, dim, out)
}

#[target_feature(enable = "avx2,fma")]
fn tile<const L2: bool>(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let nq = queries.len() / dim;
    let nr = rows.len() / dim;
    assert!(out.len() >= nq * nr, "tile output too short");
    if nq < PACK_MIN_QUERIES {
        // One row at a time reads memory as one sequential stream.
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            for (j, r) in rows.chunks_exact(dim).enumerate() {
                out[i * nr + j] = if L2 { l2sq_f32(q, r) } else { dot_f32(q, r) };
            }
        }
        return;
    }
    PACKED.with(|cell| {
        let (panel, qpack) = &mut *cell.borrow_mut();
        // Queries: query `g * MR + lane`'s k-th value at `qpack[(g * dim + k) * MR + lane]` (zero past the last).
        qpack.clear();
        qpack.resize(nq.div_ceil(MR) * dim * MR, 0.0);
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let base = (i / MR) * dim * MR + i % MR;
            for (k, &x) in q.iter().enumerate() {
                qpack[base + k * MR] = x;
            }
        }
        panel.clear();
        panel.resize(dim * NR / 8, Line([0.0; 8]));
        for j0 in (0..nr).step_by(NR) {
            let w = NR.min(nr - j0);
            pack_rows(&rows[j0 * dim..(j0 + w) * dim], dim, w, panel);
            let flat = panel.as_ptr().cast::<f32>();
            let mut i = 0;
            while i < nq {
                // Whole groups of MR, then the last group's queries 4, 2, 1 at a time (never past its end).
                let step = match nq - i {
                    n if n >= MR => MR,
                    n if n >= 4 => 4,
                    n if n >= 2 => 2,
                    _ => 1,
                };
                // SAFETY: queries i..i + step sit in group `i / MR` at lanes `i % MR ..`, with `i % MR + step <= MR`
                // (a group is entered at lane 0 and left by steps that sum to what remains of it); the panel holds
                // `dim * NR` f32s, 32-byte aligned; the stores write `out[(i + qi) * nr + j0 ..][..w]` for
                // `qi < step`, inside `out` (`i + step <= nq`, `j0 + w <= nr`).
                unsafe {
                    let q = qpack.as_ptr().add((i / MR) * dim * MR + i % MR);
                    let o = out.as_mut_ptr().add(i * nr + j0);
                    match step {
                        MR => micro::<MR, L2>(q, dim, flat, o, nr, w),
                        4 => micro::<4, L2>(q, dim, flat, o, nr, w),
                        2 => micro::<2, L2>(q, dim, flat, o, nr, w),
                        _ => micro::<1, L2>(q, dim, flat, o, nr, w),
                    }
                }
                i += step;
            }
        }
        // A rare huge batch (or very long vectors) should not pin its buffers to the thread for good.
        if qpack.len() * size_of::<f32>() > KEEP_PACKED_BYTES {
            *qpack = Vec::new();
        }
    })
}

/// Packs `w <= NR` rows of `dim` into `panel` as `flat[k * NR + c] = rows[c][k]`, lanes `w..NR` zero.
fn pack_rows(rows: &[f32], dim: usize, w: usize, panel: &mut [Line]) {
    if w < NR {
        panel.fill(Line([0.0; 8]));
    }
    for (c, r) in rows.chunks_exact(dim).take(w).enumerate() {
        for (k, &x) in r.iter().enumerate() {
            panel[(k * NR + c) / 8].0[c % 8] = x;
        }
    }
}

/// `M` packed queries (`q[k * MR + qi]`) against one packed panel of 16 rows; results go to `out + qi * nr`, the
/// first `w` lanes only.
///
/// # Safety
/// `q[k * MR + qi]` must be readable for `k < dim`, `qi < M`; `panel` must point to `dim * NR` f32s (32-byte
/// aligned); `out + qi * nr + lane` must be writable for every `qi < M` and `lane < w <= NR`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro<const M: usize, const L2: bool>(
    q: *const f32,
    dim: usize,
    panel: *const f32,
    out: *mut f32,
    nr: usize,
    w: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; M];
    // SAFETY: the caller's bounds: `k < dim`, `qi < M`, panel offsets below `dim * NR`, aligned to 32 bytes.
    unsafe {
        for k in 0..dim {
            let p0 = _mm256_load_ps(panel.add(k * NR));
            let p1 = _mm256_load_ps(panel.add(k * NR + 8));
            for (qi, a) in acc.iter_mut().enumerate() {
                let b = _mm256_broadcast_ss(&*q.add(k * MR + qi));
                if L2 {
                    let d0 = _mm256_sub_ps(p0, b);
                    let d1 = _mm256_sub_ps(p1, b);
                    a[0] = _mm256_fmadd_ps(d0, d0, a[0]);
                    a[1] = _mm256_fmadd_ps(d1, d1, a[1]);
                } else {
                    a[0] = _mm256_fmadd_ps(b, p0, a[0]);
                    a[1] = _mm256_fmadd_ps(b, p1, a[1]);
                }
            }
        }
        for (qi, a) in acc.iter().enumerate() {
            let o = out.add(qi * nr);
            if w == NR {
                _mm256_storeu_ps(o, a[0]);
                _mm256_storeu_ps(o.add(8), a[1]);
            } else {
                let mut lanes = [0.0f32; NR];
                _mm256_storeu_ps(lanes.as_mut_ptr(), a[0]);
                _mm256_storeu_ps(lanes.as_mut_ptr().add(8), a[1]);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), o, w);
            }
        }
    }
}
