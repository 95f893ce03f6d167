//! AVX2 + FMA kernels (x86_64). Every function here requires the `avx2` and `fma` CPU features; the dispatcher in
//! `lib.rs` only hands them out after `is_x86_feature_detected!` confirmed both.
//!
//! Loads are unaligned (`loadu`): rows of a `VectorSet` are only 4-byte aligned, and on every AVX2 CPU an unaligned
//! load of aligned data costs the same as an aligned one.

use std::arch::x86_64::*;

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

/// Lane sums of four vectors at once: `[sum(a), sum(b), sum(c), sum(d)]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> [f32; 4] {
    let ab = _mm256_hadd_ps(a, b);
    let cd = _mm256_hadd_ps(c, d);
    let abcd = _mm256_hadd_ps(ab, cd);
    let s = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps::<1>(abcd));
    let mut out = [0.0f32; 4];
    // SAFETY: `out` has room for four f32.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), s) };
    out
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

/// Dot products of 4 queries against 3 rows over the first `d8` (a multiple of 8) dimensions, returned as
/// `[row][query]`. Twelve accumulators, three row registers and one query register use all 16 ymm registers.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn dot_4x3(q: [&[f32]; 4], r: [&[f32]; 3], d8: usize) -> [[f32; 4]; 3] {
    let z = _mm256_setzero_ps();
    let (mut a00, mut a01, mut a02) = (z, z, z);
    let (mut a10, mut a11, mut a12) = (z, z, z);
    let (mut a20, mut a21, mut a22) = (z, z, z);
    let (mut a30, mut a31, mut a32) = (z, z, z);
    let mut k = 0;
    // SAFETY (all loads below): `d8 <= dim` and every slice holds `dim` values; `k + 8 <= d8`.
    unsafe {
        while k < d8 {
            let b0 = ld(r[0], k);
            let b1 = ld(r[1], k);
            let b2 = ld(r[2], k);
            let x = ld(q[0], k);
            a00 = _mm256_fmadd_ps(x, b0, a00);
            a01 = _mm256_fmadd_ps(x, b1, a01);
            a02 = _mm256_fmadd_ps(x, b2, a02);
            let x = ld(q[1], k);
            a10 = _mm256_fmadd_ps(x, b0, a10);
            a11 = _mm256_fmadd_ps(x, b1, a11);
            a12 = _mm256_fmadd_ps(x, b2, a12);
            let x = ld(q[2], k);
            a20 = _mm256_fmadd_ps(x, b0, a20);
            a21 = _mm256_fmadd_ps(x, b1, a21);
            a22 = _mm256_fmadd_ps(x, b2, a22);
            let x = ld(q[3], k);
            a30 = _mm256_fmadd_ps(x, b0, a30);
            a31 = _mm256_fmadd_ps(x, b1, a31);
            a32 = _mm256_fmadd_ps(x, b2, a32);
            k += 8;
        }
    }
    [hsum4(a00, a10, a20, a30), hsum4(a01, a11, a21, a31), hsum4(a02, a12, a22, a32)]
}

/// Squared L2 of 4 queries against 2 rows over the first `d8` dimensions, as `[row][query]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn l2sq_4x2(q: [&[f32]; 4], r: [&[f32]; 2], d8: usize) -> [[f32; 4]; 2] {
    let z = _mm256_setzero_ps();
    let (mut a00, mut a01, mut a10, mut a11) = (z, z, z, z);
    let (mut a20, mut a21, mut a30, mut a31) = (z, z, z, z);
    let mut k = 0;
    // SAFETY (all loads below): `d8 <= dim` and every slice holds `dim` values; `k + 8 <= d8`.
    unsafe {
        while k < d8 {
            let b0 = ld(r[0], k);
            let b1 = ld(r[1], k);
            macro_rules! step {
                ($qi:expr, $acc0:ident, $acc1:ident) => {
                    let x = ld(q[$qi], k);
                    let d0 = _mm256_sub_ps(x, b0);
                    let d1 = _mm256_sub_ps(x, b1);
                    $acc0 = _mm256_fmadd_ps(d0, d0, $acc0);
                    $acc1 = _mm256_fmadd_ps(d1, d1, $acc1);
                };
            }
            step!(0, a00, a01);
            step!(1, a10, a11);
            step!(2, a20, a21);
            step!(3, a30, a31);
            k += 8;
        }
    }
    [hsum4(a00, a10, a20, a30), hsum4(a01, a11, a21, a31)]
}

fn tail_dot(q: &[f32], r: &[f32], from: usize) -> f32 {
    q[from..].iter().zip(&r[from..]).map(|(x, y)| x * y).sum()
}

fn tail_l2sq(q: &[f32], r: &[f32], from: usize) -> f32 {
    q[from..].iter().zip(&r[from..]).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Register-tiled `out[i * nr + j] = dot(query_i, row_j)`: 4 x 3 tiles, then single pairs for the leftovers.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn dot_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let nq = queries.len() / dim;
    let nr = rows.len() / dim;
    let d8 = dim & !7;
    let q = |i: usize| &queries[i * dim..(i + 1) * dim];
    let r = |j: usize| &rows[j * dim..(j + 1) * dim];
    let mut i = 0;
    while i + 4 <= nq {
        let qs = [q(i), q(i + 1), q(i + 2), q(i + 3)];
        let mut j = 0;
        while j + 3 <= nr {
            let rs = [r(j), r(j + 1), r(j + 2)];
            let s = dot_4x3(qs, rs, d8);
            for (c, col) in s.iter().enumerate() {
                for (qi, v) in col.iter().enumerate() {
                    out[(i + qi) * nr + j + c] = v + tail_dot(qs[qi], rs[c], d8);
                }
            }
            j += 3;
        }
        for j in j..nr {
            for (qi, qv) in qs.iter().enumerate() {
                out[(i + qi) * nr + j] = dot_f32(qv, r(j));
            }
        }
        i += 4;
    }
    // Leftover queries, including the single-query scan: one row at a time reads memory as one sequential stream,
    // which measured faster than interleaving four rows (docs/benchmarks.md).
    for i in i..nq {
        let qv = q(i);
        for j in 0..nr {
            out[i * nr + j] = dot_f32(qv, r(j));
        }
    }
}

/// Register-tiled `out[i * nr + j] = l2sq(query_i, row_j)`: 4 x 2 tiles, then single pairs for the leftovers.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn l2sq_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let nq = queries.len() / dim;
    let nr = rows.len() / dim;
    let d8 = dim & !7;
    let q = |i: usize| &queries[i * dim..(i + 1) * dim];
    let r = |j: usize| &rows[j * dim..(j + 1) * dim];
    let mut i = 0;
    while i + 4 <= nq {
        let qs = [q(i), q(i + 1), q(i + 2), q(i + 3)];
        let mut j = 0;
        while j + 2 <= nr {
            let rs = [r(j), r(j + 1)];
            let s = l2sq_4x2(qs, rs, d8);
            for (c, col) in s.iter().enumerate() {
                for (qi, v) in col.iter().enumerate() {
                    out[(i + qi) * nr + j + c] = v + tail_l2sq(qs[qi], rs[c], d8);
                }
            }
            j += 2;
        }
        for j in j..nr {
            for (qi, qv) in qs.iter().enumerate() {
                out[(i + qi) * nr + j] = l2sq_f32(qv, r(j));
            }
        }
        i += 4;
    }
    for i in i..nq {
        let qv = q(i);
        for j in 0..nr {
            out[i * nr + j] = l2sq_f32(qv, r(j));
        }
    }
}
