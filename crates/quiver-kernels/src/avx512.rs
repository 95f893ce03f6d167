//! AVX-512 kernels (x86_64): f32 and u8 kernels need `avx512f` + `avx512bw`; the Hamming kernel additionally
//! needs `avx512vpopcntdq` and is only handed out where the CPU has it. Tails are handled with masked loads, so
//! there is no scalar remainder loop. Tiled (batch) kernels reuse the AVX2 ones, which every AVX-512 CPU runs.

use std::arch::x86_64::*;

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

/// 32 bytes at `p[i..]` (fewer under `mask`) widened to 32 x i16.
#[inline(always)]
unsafe fn ld_u8x32(p: &[u8], i: usize, mask: __mmask32) -> __m512i {
    // SAFETY: the caller guarantees that every byte selected by `mask` lies inside `p`.
    unsafe { _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, p.as_ptr().add(i).cast())) }
}

#[inline(always)]
fn byte_mask(rem: usize) -> __mmask32 {
    if rem >= 32 { !0 } else { ((1u64 << rem) - 1) as __mmask32 }
}

/// Overflow bounds as in the AVX2 version: each i32 lane gains at most 130,050 per 32 bytes.
#[target_feature(enable = "avx512f,avx512bw")]
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

#[target_feature(enable = "avx512f,avx512bw")]
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
