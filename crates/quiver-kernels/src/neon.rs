//! NEON kernels (aarch64, where NEON is part of the base architecture, so no run-time check is needed).
//! Tiled (batch) kernels are built from these pairwise kernels.

use std::arch::aarch64::*;

#[inline]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: NEON is always present on aarch64; every load is bounded by the loop conditions against `n`.
    let mut s = unsafe {
        let (mut s0, mut s1, mut s2, mut s3) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0), vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        while i + 16 <= n {
            s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
            s1 = vfmaq_f32(s1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
            s2 = vfmaq_f32(s2, vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8)));
            s3 = vfmaq_f32(s3, vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12)));
            i += 16;
        }
        while i + 4 <= n {
            s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
            i += 4;
        }
        vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)))
    };
    while i < n {
        s += a[i] * b[i];
        i += 1;
    }
    s
}

#[inline]
pub(crate) fn l2sq_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    let mut s = unsafe {
        let (mut s0, mut s1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        while i + 8 <= n {
            let d0 = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
            let d1 = vsubq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
            s0 = vfmaq_f32(s0, d0, d0);
            s1 = vfmaq_f32(s1, d1, d1);
            i += 8;
        }
        vaddvq_f32(vaddq_f32(s0, s1))
    };
    while i < n {
        let d = a[i] - b[i];
        s += d * d;
        i += 1;
    }
    s
}

#[inline]
pub(crate) fn sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    let mut s = unsafe {
        let (mut s0, mut s1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        while i + 8 <= n {
            s0 = vaddq_f32(s0, vld1q_f32(a.as_ptr().add(i)));
            s1 = vaddq_f32(s1, vld1q_f32(a.as_ptr().add(i + 4)));
            i += 8;
        }
        vaddvq_f32(vaddq_f32(s0, s1))
    };
    while i < n {
        s += a[i];
        i += 1;
    }
    s
}

#[inline]
pub(crate) fn dot_f32_u8(w: &[f32], c: &[u8]) -> f32 {
    let n = w.len().min(c.len());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    let mut s = unsafe {
        let (mut s0, mut s1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        while i + 8 <= n {
            let b = vmovl_u8(vld1_u8(c.as_ptr().add(i)));
            let lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(b)));
            let hi = vcvtq_f32_u32(vmovl_high_u16(b));
            s0 = vfmaq_f32(s0, vld1q_f32(w.as_ptr().add(i)), lo);
            s1 = vfmaq_f32(s1, vld1q_f32(w.as_ptr().add(i + 4)), hi);
            i += 8;
        }
        vaddvq_f32(vaddq_f32(s0, s1))
    };
    while i < n {
        s += w[i] * f32::from(c[i]);
        i += 1;
    }
    s
}

/// `vmull_u8` products are at most 65,025 and fit u16; `vpadalq_u16` accumulates pairs into u32 lanes.
#[inline]
pub(crate) fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    let mut s = unsafe {
        let mut acc = vdupq_n_u32(0);
        while i + 16 <= n {
            let x = vld1q_u8(a.as_ptr().add(i));
            let y = vld1q_u8(b.as_ptr().add(i));
            acc = vpadalq_u16(acc, vmull_u8(vget_low_u8(x), vget_low_u8(y)));
            acc = vpadalq_u16(acc, vmull_high_u8(x, y));
            i += 16;
        }
        vaddvq_u32(acc)
    };
    while i < n {
        s += u32::from(a[i]) * u32::from(b[i]);
        i += 1;
    }
    s
}

#[inline]
pub(crate) fn l2sq_u8(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    let mut s = unsafe {
        let mut acc = vdupq_n_u32(0);
        while i + 16 <= n {
            let d = vabdq_u8(vld1q_u8(a.as_ptr().add(i)), vld1q_u8(b.as_ptr().add(i)));
            acc = vpadalq_u16(acc, vmull_u8(vget_low_u8(d), vget_low_u8(d)));
            acc = vpadalq_u16(acc, vmull_high_u8(d, d));
            i += 16;
        }
        vaddvq_u32(acc)
    };
    while i < n {
        let d = u32::from(a[i].abs_diff(b[i]));
        s += d * d;
        i += 1;
    }
    s
}

#[inline]
pub(crate) fn hamming(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len().min(b.len());
    let mut i = 0;
    // SAFETY: as in `dot_f32`.
    let mut s = unsafe {
        let mut acc = vdupq_n_u64(0);
        while i + 2 <= n {
            let x = veorq_u64(vld1q_u64(a.as_ptr().add(i)), vld1q_u64(b.as_ptr().add(i)));
            let c = vcntq_u8(vreinterpretq_u8_u64(x));
            acc = vpadalq_u32(acc, vpaddlq_u16(vpaddlq_u8(c)));
            i += 2;
        }
        vaddvq_u64(acc) as u32
    };
    while i < n {
        s += (a[i] ^ b[i]).count_ones();
        i += 1;
    }
    s
}

pub(crate) fn dot_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    crate::scalar::tile_by_pairs(dot_f32, queries, rows, dim, out);
}

pub(crate) fn l2sq_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    crate::scalar::tile_by_pairs(l2sq_f32, queries, rows, dim, out);
}
