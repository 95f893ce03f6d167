//! AVX-512 kernels (x86_64): f32 and u8 kernels need `avx512f` + `avx512bw`; the Hamming kernel additionally
//! needs `avx512vpopcntdq` and is only handed out where the CPU has it. Tails are handled with masked loads, so
//! there is no scalar remainder loop. The tiled (batch) kernels pack rows into panels and run an outer-product
//! micro-kernel over them (see [`dot_tile`]).

use std::arch::x86_64::*;
use std::cell::RefCell;

#[inline(always)]
fn tail_mask(rem: usize) -> __mmask16 {
    debug_assert!(rem < 16);
    ((1u32 << rem) - 1) as __mmask16
}

#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads below): unmasked loads are bounded by the loop conditions against `n`; the masked load
    // touches only the `n - i < 16` lanes that are in bounds.
    unsafe {
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a.as_ptr().add(i)), _mm512_loadu_ps(b.as_ptr().add(i)), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a.as_ptr().add(i + 16)), _mm512_loadu_ps(b.as_ptr().add(i + 16)), s1);
            i += 32;
        }
        if i + 16 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a.as_ptr().add(i)), _mm512_loadu_ps(b.as_ptr().add(i)), s0);
            i += 16;
        }
        if i < n {
            let m = tail_mask(n - i);
            let x = _mm512_maskz_loadu_ps(m, a.as_ptr().add(i));
            let y = _mm512_maskz_loadu_ps(m, b.as_ptr().add(i));
            s1 = _mm512_fmadd_ps(x, y, s1);
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}

#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn l2sq_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    unsafe {
        while i + 32 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(a.as_ptr().add(i)), _mm512_loadu_ps(b.as_ptr().add(i)));
            let d1 = _mm512_sub_ps(_mm512_loadu_ps(a.as_ptr().add(i + 16)), _mm512_loadu_ps(b.as_ptr().add(i + 16)));
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
            i += 32;
        }
        if i + 16 <= n {
            let d = _mm512_sub_ps(_mm512_loadu_ps(a.as_ptr().add(i)), _mm512_loadu_ps(b.as_ptr().add(i)));
            s0 = _mm512_fmadd_ps(d, d, s0);
            i += 16;
        }
        if i < n {
            let m = tail_mask(n - i);
            let d =
                _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a.as_ptr().add(i)), _mm512_maskz_loadu_ps(m, b.as_ptr().add(i)));
            s1 = _mm512_fmadd_ps(d, d, s1);
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}

#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    unsafe {
        while i + 32 <= n {
            s0 = _mm512_add_ps(_mm512_loadu_ps(a.as_ptr().add(i)), s0);
            s1 = _mm512_add_ps(_mm512_loadu_ps(a.as_ptr().add(i + 16)), s1);
            i += 32;
        }
        while i < n {
            let m = if n - i >= 16 { !0 } else { tail_mask(n - i) };
            s0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m, a.as_ptr().add(i)), s0);
            i += 16;
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}

/// 32 bytes at `p[i..]` (fewer under `mask`) widened to 32 x i16. Callers enable `avx512vl` (the masked 256-bit
/// load needs it; without it the load is not inlined but called, once per 32 bytes).
#[inline(always)]
unsafe fn ld_u8x32(p: &[u8], i: usize, mask: __mmask32) -> __m512i {
    // SAFETY: the caller guarantees that every byte selected by `mask` lies inside `p`.
    unsafe { _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, p.as_ptr().add(i).cast())) }
}

#[inline(always)]
fn byte_mask(rem: usize) -> __mmask32 {
    if rem >= 32 { !0 } else { ((1u64 << rem) - 1) as __mmask32 }
}

/// `Σ w[i] · c[i]` of f32 weights and u8 codes: 16 codes widened to f32 per FMA, two accumulators.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn dot_f32_u8(w: &[f32], c: &[u8]) -> f32 {
    let n = w.len().min(c.len());
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: full loads only while `i + 32 <= n`; after that the mask selects only elements below `n` (of both
    // slices: `n` is the shorter length).
    unsafe {
        while i + 32 <= n {
            let c0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(c.as_ptr().add(i).cast())));
            let c1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(c.as_ptr().add(i + 16).cast())));
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w.as_ptr().add(i)), c0, s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w.as_ptr().add(i + 16)), c1, s1);
            i += 32;
        }
        while i < n {
            let m = if n - i >= 16 { !0 } else { tail_mask(n - i) };
            let cv = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c.as_ptr().add(i).cast())));
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w.as_ptr().add(i)), cv, s0);
            i += 16;
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}

/// `Σ w[i] · c[i]` of i16 weights and u8 codes in wrapping i32 arithmetic (see the AVX2 version): 32 codes
/// widened to i16 per `madd`, two accumulators.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn dot_i16_u8(w: &[i16], c: &[u8]) -> i32 {
    let n = w.len().min(c.len());
    let (mut a0, mut a1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut i = 0;
    // SAFETY: full loads only while `i + 64 <= n`; after that `byte_mask(n - i)` selects only elements below `n`
    // (of both slices: `n` is the shorter length).
    unsafe {
        while i + 64 <= n {
            let w0 = _mm512_loadu_si512(w.as_ptr().add(i).cast());
            let w1 = _mm512_loadu_si512(w.as_ptr().add(i + 32).cast());
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(w0, ld_u8x32(c, i, !0)));
            a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(w1, ld_u8x32(c, i + 32, !0)));
            i += 64;
        }
        while i < n {
            let m = byte_mask(n - i);
            let w0 = _mm512_maskz_loadu_epi16(m, w.as_ptr().add(i));
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(w0, ld_u8x32(c, i, m)));
            i += 32;
        }
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1))
}

/// Overflow bounds as in the AVX2 version: each i32 lane gains at most 130,050 per 32 bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    // SAFETY: `byte_mask(n - i)` selects only bytes below `n`.
    unsafe {
        while i < n {
            let m = byte_mask(n - i);
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(ld_u8x32(a, i, m), ld_u8x32(b, i, m)));
            i += 32;
        }
    }
    _mm512_reduce_add_epi32(acc) as u32
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) fn l2sq_u8(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    // SAFETY: `byte_mask(n - i)` selects only bytes below `n`.
    unsafe {
        while i < n {
            let m = byte_mask(n - i);
            let d = _mm512_sub_epi16(ld_u8x32(a, i, m), ld_u8x32(b, i, m));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
            i += 32;
        }
    }
    _mm512_reduce_add_epi32(acc) as u32
}

#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq")]
pub(crate) fn hamming(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len().min(b.len());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    // SAFETY: the mask selects only the `min(8, n - i)` words that are in bounds.
    unsafe {
        while i < n {
            let m: __mmask8 = if n - i >= 8 { !0 } else { ((1u32 << (n - i)) - 1) as __mmask8 };
            let x = _mm512_maskz_loadu_epi64(m, a.as_ptr().add(i).cast());
            let y = _mm512_maskz_loadu_epi64(m, b.as_ptr().add(i).cast());
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
            i += 8;
        }
    }
    _mm512_reduce_add_epi64(acc) as u32
}

/// Rows per packed panel: two 16-lane registers.
const NR: usize = 32;
/// Queries per micro-tile: 14 x 2 accumulators, 2 panel registers and a broadcast fit the 32 registers (12 measured
/// about 12% slower).
const MR: usize = 14;
/// Below this many queries packing does not pay for itself; rows are scored one pair at a time.
const PACK_MIN_QUERIES: usize = 4;

/// Packed queries kept on a thread between calls up to this size (a 512-query chunk of 384-d is 768 KiB).
const KEEP_PACKED_BYTES: usize = 4 << 20;

/// One cache line of a packed panel; the alignment keeps every panel load inside one line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

thread_local! {
    /// Packed rows (one panel) and packed queries, kept between calls so that a batch does not allocate per block.
    static PACKED: RefCell<(Vec<Line>, Vec<Line>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `out[i * nr + j] = dot(query_i, row_j)`, register-tiled as a small matrix product: rows are packed 32 at a
/// time into a dimension-major panel (`panel[k] = row_0[k] .. row_31[k]`), queries 14 at a time the same way,
/// and each group of 14 queries broadcasts its `k`-th values against the panel, so every multiply-add is a full
/// 16-lane FMA and no horizontal sums are needed. Fewer than four queries (the single-query scan) read rows one
/// at a time instead.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn dot_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    tile::<false>(queries, rows, dim, out)
}

/// As [`dot_tile`] with squared Euclidean distances, computed from differences (not `|q|² + |r|² - 2q·r`, which
/// loses the small distances that matter most to cancellation).
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn l2sq_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    tile::<true>(queries, rows, dim, out)
}

#[target_feature(enable = "avx512f,avx512bw")]
fn tile<const L2: bool>(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let nq = queries.len() / dim;
    let nr = rows.len() / dim;
    assert!(out.len() >= nq * nr, "tile output too short");
    if nq < PACK_MIN_QUERIES {
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            for (j, r) in rows.chunks_exact(dim).enumerate() {
                out[i * nr + j] = if L2 { l2sq_f32(q, r) } else { dot_f32(q, r) };
            }
        }
        return;
    }
    PACKED.with(|cell| {
        let (panel, qpack) = &mut *cell.borrow_mut();
        let groups = nq.div_ceil(MR);
        // Queries: group g's k-th values at `qpack[(g * dim + k) * 16 ..][..MR]` (one aligned line per k).
        qpack.clear();
        qpack.resize(groups * dim, Line([0.0; 16]));
        let qflat = qpack.as_mut_ptr().cast::<f32>();
        for g in 0..groups {
            let members = &queries[g * MR * dim..((g + 1) * MR).min(nq) * dim];
            // SAFETY: group g's lines `g * dim .. (g + 1) * dim` lie inside the buffer, 64-byte aligned.
            unsafe { pack_rows::<16>(members, dim, members.len() / dim, qflat.add(g * dim * 16)) };
        }
        panel.clear();
        panel.resize(dim * NR / 16, Line([0.0; 16]));
        let flat = panel.as_mut_ptr().cast::<f32>();
        for j0 in (0..nr).step_by(NR) {
            let w = NR.min(nr - j0);
            // SAFETY: rows j0..j0 + w exist and the panel holds `dim * NR` f32s, 64-byte aligned.
            unsafe { pack_rows::<NR>(&rows[j0 * dim..(j0 + w) * dim], dim, w, flat) };
            let masks = [lane_mask(w), lane_mask(w.saturating_sub(16))];
            let mut i = 0;
            while i < nq {
                let step = match nq - i {
                    n if n >= MR => MR,
                    n if n >= 8 => 8,
                    n if n >= 4 => 4,
                    n if n >= 2 => 2,
                    _ => 1,
                };
                // SAFETY: packed queries i..i + step sit in group `i / MR` at lane offset `i % MR`, with
                // `i % MR + step <= MR`; the panel holds `dim * NR` f32s; the stores write
                // `out[(i + qi) * nr + j0 ..][..w]` for `qi < step`, inside `out` (`j0 + w <= nr`).
                unsafe {
                    let q = qflat.add((i / MR) * dim * 16 + i % MR);
                    let o = out.as_mut_ptr().add(i * nr + j0);
                    match step {
                        MR => micro::<MR, L2>(q, dim, flat, o, nr, masks),
                        8 => micro::<8, L2>(q, dim, flat, o, nr, masks),
                        4 => micro::<4, L2>(q, dim, flat, o, nr, masks),
                        2 => micro::<2, L2>(q, dim, flat, o, nr, masks),
                        _ => micro::<1, L2>(q, dim, flat, o, nr, masks),
                    }
                }
                i += step;
            }
        }
        // A rare huge batch (or very long vectors) should not pin its buffers to the thread for good.
        if qpack.len() * size_of::<Line>() > KEEP_PACKED_BYTES {
            *qpack = Vec::new();
        }
    })
}

/// Packs `w <= W` rows of `dim` into `panel[k * W + c] = rows[c][k]`, lanes `w..W` zero, by 16 x 16 register
/// transposes (`W` is 16 or 32).
///
/// # Safety
/// `panel` must point to `dim * W` writable f32s, 64-byte aligned.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_rows<const W: usize>(rows: &[f32], dim: usize, w: usize, panel: *mut f32) {
    let zero = _mm512_setzero_ps();
    for half in 0..W / 16 {
        let lo = half * 16;
        let here = w.saturating_sub(lo).min(16);
        let mut k0 = 0;
        // Whole 16 x 16 blocks: unmasked loads, unconditional stores.
        if here == 16 {
            while k0 + 16 <= dim {
                // SAFETY: rows lo..lo + 16 exist and hold values k0..k0 + 16.
                let r: [__m512; 16] =
                    std::array::from_fn(|c| unsafe { _mm512_loadu_ps(rows.as_ptr().add((lo + c) * dim + k0)) });
                for (dk, col) in transpose16(r).iter().enumerate() {
                    // SAFETY: `(k0 + dk) * W + lo` is a multiple of 16 below `dim * W`: an aligned line.
                    unsafe { _mm512_store_ps(panel.add((k0 + dk) * W + lo), *col) };
                }
                k0 += 16;
            }
        }
        // Edges: missing rows are zero, the last values of each row are read under a mask.
        while k0 < dim {
            let kw = (dim - k0).min(16);
            let m = lane_mask(kw);
            let mut r = [zero; 16];
            for (c, v) in r.iter_mut().enumerate().take(here) {
                // SAFETY: row `lo + c < w` exists; the mask reads only its `kw` values from `k0`.
                *v = unsafe { _mm512_maskz_loadu_ps(m, rows.as_ptr().add((lo + c) * dim + k0)) };
            }
            for (dk, col) in transpose16(r).iter().enumerate().take(kw) {
                // SAFETY: as above.
                unsafe { _mm512_store_ps(panel.add((k0 + dk) * W + lo), *col) };
            }
            k0 += 16;
        }
    }
}

/// Transposes 16 x 16 f32 held as 16 rows: `out[k]` lane `c` = `r[c]` lane `k`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // Interleave pairs of rows, then quads (within 128-bit lanes): u[4q + j] holds, for rows 4q..4q + 4, columns
    // j, j + 4, j + 8, j + 12 in its four 128-bit lanes.
    let mut u = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        let b = 4 * q;
        let t0 = _mm512_unpacklo_ps(r[b], r[b + 1]);
        let t1 = _mm512_unpackhi_ps(r[b], r[b + 1]);
        let t2 = _mm512_unpacklo_ps(r[b + 2], r[b + 3]);
        let t3 = _mm512_unpackhi_ps(r[b + 2], r[b + 3]);
        u[b] = _mm512_shuffle_ps::<0x44>(t0, t2);
        u[b + 1] = _mm512_shuffle_ps::<0xEE>(t0, t2);
        u[b + 2] = _mm512_shuffle_ps::<0x44>(t1, t3);
        u[b + 3] = _mm512_shuffle_ps::<0xEE>(t1, t3);
    }
    // Gather 128-bit lanes across the four row quads.
    let mut out = [_mm512_setzero_ps(); 16];
    for j in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
        let w0 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
        let w1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
        out[j] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
        out[j + 8] = _mm512_shuffle_f32x4::<0xDD>(v0, w0);
        out[j + 4] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        out[j + 12] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
    }
    out
}

/// Lanes `0..min(n, 16)` set.
#[inline(always)]
fn lane_mask(n: usize) -> __mmask16 {
    if n >= 16 { !0 } else { tail_mask(n) }
}

/// `M` packed queries (`q[k * 16 + qi]`) against one packed panel of 32 rows; results go to `out + qi * nr`, the
/// lanes under `masks` only.
///
/// # Safety
/// `q[k * 16 + qi]` must be readable for `k < dim`, `qi < M`; `panel` must point to `dim * 32` f32s (64-byte
/// aligned), and `out + qi * nr + lane`
/// must be writable for every `qi < M` and every lane set in `masks` (the second mask's lanes offset by 16).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn micro<const M: usize, const L2: bool>(
    q: *const f32,
    dim: usize,
    panel: *const f32,
    out: *mut f32,
    nr: usize,
    masks: [__mmask16; 2],
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    // SAFETY: the caller's bounds: `k < dim`, `qi < M`, panel offsets below `dim * 32`, aligned to 64 bytes.
    unsafe {
        for k in 0..dim {
            let p0 = _mm512_load_ps(panel.add(k * NR));
            let p1 = _mm512_load_ps(panel.add(k * NR + 16));
            for (qi, a) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*q.add(k * 16 + qi));
                if L2 {
                    let d0 = _mm512_sub_ps(p0, b);
                    let d1 = _mm512_sub_ps(p1, b);
                    a[0] = _mm512_fmadd_ps(d0, d0, a[0]);
                    a[1] = _mm512_fmadd_ps(d1, d1, a[1]);
                } else {
                    a[0] = _mm512_fmadd_ps(b, p0, a[0]);
                    a[1] = _mm512_fmadd_ps(b, p1, a[1]);
                }
            }
        }
        for (qi, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add(qi * nr), masks[0], a[0]);
            _mm512_mask_storeu_ps(out.add(qi * nr + 16), masks[1], a[1]);
        }
    }
}
