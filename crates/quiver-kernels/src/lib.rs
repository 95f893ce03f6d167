//! Distance kernels for QuiverDB.
//!
//! Every kernel has a scalar reference (`scalar`) and SIMD versions: AVX2+FMA and AVX-512 on x86_64, NEON on
//! aarch64. The best set the CPU supports is chosen once, at first use, and reached through safe functions
//! ([`dot`], [`l2sq`], ...) or through a [`Kernels`] table ([`active`], [`available`]).
//!
//! This is the only crate of the workspace with `unsafe` code: the SIMD modules, each function annotated with the
//! CPU features it needs and each load with the bound that makes it sound. The tables holding those functions are
//! only built after run-time feature detection, which is what makes the safe wrappers sound.
//!
//! Setting the environment variable `QUIVER_SIMD` to `scalar`, `avx2`, `avx512` or `neon` before first use
//! forces that set (if the CPU supports it; otherwise the best supported set is used).
//!
//! # Accuracy
//! f32 SIMD kernels sum in a different order than the scalar loop, so results differ by rounding:
//! `|simd - scalar| <= F32_REL_EPS * sum(|a_i * b_i|) + 1e-6` (for `l2sq`, the sum of `(a_i - b_i)^2`).
//! Integer kernels (u8, i16 × u8, Hamming) are exact.
//!
//! ```
//! let a = [1.0f32, 2.0, 3.0];
//! let b = [4.0f32, 5.0, 6.0];
//! assert_eq!(quiver_kernels::dot(&a, &b), 32.0);
//! assert_eq!(quiver_kernels::l2sq(&a, &b), 27.0);
//! assert_eq!(quiver_kernels::hamming(&[0b1011], &[0b0001]), 2);
//! // Every set the CPU supports agrees with the scalar reference.
//! for k in quiver_kernels::available() {
//!     assert_eq!(k.dot(&a, &b), 32.0, "{}", k.name());
//! }
//! ```

#![warn(missing_docs)]

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512;
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon;
mod scalar;

/// Largest vector length the kernels accept. Integer accumulators are sized for it.
pub const MAX_DIM: usize = 65_536;

/// Documented relative error bound of f32 SIMD kernels against the scalar reference (see the crate docs).
pub const F32_REL_EPS: f32 = 1e-5;

type PairF32 = fn(&[f32], &[f32]) -> f32;
type TileF32 = fn(&[f32], &[f32], usize, &mut [f32]);

/// One complete set of kernels, all from the same instruction-set family.
#[derive(Debug)]
pub struct Kernels {
    name: &'static str,
    dot_f32: PairF32,
    l2sq_f32: PairF32,
    sum_f32: fn(&[f32]) -> f32,
    dot_f32_u8: fn(&[f32], &[u8]) -> f32,
    dot_i16_u8: fn(&[i16], &[u8]) -> i32,
    dot_i8_u4: fn(&[i8], &[u8]) -> i32,
    dot_u8: fn(&[u8], &[u8]) -> u32,
    l2sq_u8: fn(&[u8], &[u8]) -> u32,
    hamming: fn(&[u64], &[u64]) -> u32,
    dot_tile: TileF32,
    l2sq_tile: TileF32,
}

#[inline]
fn check_len(a: usize, b: usize) {
    assert_eq!(a, b, "kernel operands differ in length");
    assert!(a <= MAX_DIM, "kernel operand longer than MAX_DIM ({a} > {MAX_DIM})");
}

#[inline]
fn check_tile(queries: usize, rows: usize, dim: usize, out: usize) {
    assert!(dim > 0 && dim <= MAX_DIM, "tile dimension {dim} outside 1..={MAX_DIM}");
    assert!(
        queries.is_multiple_of(dim) && rows.is_multiple_of(dim),
        "tile inputs are not whole rows of dimension {dim}"
    );
    assert_eq!(out, (queries / dim) * (rows / dim), "tile output has the wrong length");
}

impl Kernels {
    /// Name of the instruction-set family: `scalar`, `avx2`, `avx512` or `neon`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Inner product. # Panics: if the lengths differ or exceed [`MAX_DIM`].
    #[inline]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        check_len(a.len(), b.len());
        (self.dot_f32)(a, b)
    }

    /// Squared Euclidean distance. # Panics: as [`Kernels::dot`].
    #[inline]
    pub fn l2sq(&self, a: &[f32], b: &[f32]) -> f32 {
        check_len(a.len(), b.len());
        (self.l2sq_f32)(a, b)
    }

    /// Cosine similarity `a·b / (|a| |b|)`; 0 when either vector is zero. # Panics: as [`Kernels::dot`].
    pub fn cosine(&self, a: &[f32], b: &[f32]) -> f32 {
        check_len(a.len(), b.len());
        let denom = ((self.dot_f32)(a, a) * (self.dot_f32)(b, b)).sqrt();
        if denom > 0.0 { (self.dot_f32)(a, b) / denom } else { 0.0 }
    }

    /// Sum of all values: a plain streaming read, used to measure memory bandwidth beside the scans.
    pub fn sum(&self, a: &[f32]) -> f32 {
        (self.sum_f32)(a)
    }

    /// `Σ w[i] · c[i]` of f32 weights and u8 codes — scoring a full-precision query against scalar-quantized
    /// (SQ8) codes without quantizing the query. # Panics: as [`Kernels::dot`].
    #[inline]
    pub fn dot_f32_u8(&self, w: &[f32], c: &[u8]) -> f32 {
        check_len(w.len(), c.len());
        (self.dot_f32_u8)(w, c)
    }

    /// `Σ w[i] · c[i]` of i16 weights and u8 codes in wrapping i32 arithmetic — exact while
    /// `Σ |w[i]| · 255 ≤ i32::MAX` (the caller scales its weights to keep that); scoring a query rounded to 16-bit
    /// weights against SQ8 codes, several times fewer instructions than [`Kernels::dot_f32_u8`]. Integer kernels
    /// agree with the scalar reference exactly. # Panics: as [`Kernels::dot`].
    #[inline]
    pub fn dot_i16_u8(&self, w: &[i16], c: &[u8]) -> i32 {
        check_len(w.len(), c.len());
        (self.dot_i16_u8)(w, c)
    }

    /// `Σ w[d] · code[d]` of i8 weights and 4-bit codes packed two to a byte, in i32 — exact for any input (at
    /// most `127 · 15` a dimension). The packing, [`U4_BLOCK`] bytes at a time: a block of `t` bytes starting at
    /// byte `o` holds dimensions `2o .. 2o + t` in its bytes' low nibbles and `2o + t .. 2o + 2t` in their high
    /// nibbles (`t` is 32 except for a shorter last block), so that one 32-byte load and two masks give 64
    /// dimensions in order. Integer kernels agree with the scalar reference exactly.
    /// # Panics: if `w.len() != 2 * c.len()` or `w` is longer than `MAX_DIM`.
    #[inline]
    pub fn dot_i8_u4(&self, w: &[i8], c: &[u8]) -> i32 {
        check_len(w.len(), 2 * c.len());
        (self.dot_i8_u4)(w, c)
    }

    /// Inner product of u8 codes. # Panics: as [`Kernels::dot`].
    #[inline]
    pub fn dot_u8(&self, a: &[u8], b: &[u8]) -> u32 {
        check_len(a.len(), b.len());
        (self.dot_u8)(a, b)
    }

    /// Squared Euclidean distance of u8 codes. # Panics: as [`Kernels::dot`].
    #[inline]
    pub fn l2sq_u8(&self, a: &[u8], b: &[u8]) -> u32 {
        check_len(a.len(), b.len());
        (self.l2sq_u8)(a, b)
    }

    /// Number of differing bits between two bit codes packed in u64 words. # Panics: if the lengths differ.
    #[inline]
    pub fn hamming(&self, a: &[u64], b: &[u64]) -> u32 {
        assert_eq!(a.len(), b.len(), "kernel operands differ in length");
        (self.hamming)(a, b)
    }

    /// All inner products between `queries` (row-major, `nq x dim`) and `rows` (`nr x dim`):
    /// `out[i * nr + j] = dot(query_i, row_j)`. Register-tiled so that each loaded value feeds several products;
    /// this is the engine of batch exact search.
    /// # Panics: if the inputs are not whole rows of `dim` or `out.len() != nq * nr`.
    pub fn dot_tile(&self, queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        check_tile(queries.len(), rows.len(), dim, out.len());
        (self.dot_tile)(queries, rows, dim, out)
    }

    /// As [`Kernels::dot_tile`] with squared Euclidean distances.
    pub fn l2sq_tile(&self, queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        check_tile(queries.len(), rows.len(), dim, out.len());
        (self.l2sq_tile)(queries, rows, dim, out)
    }
}

static SCALAR: Kernels = Kernels {
    name: "scalar",
    dot_f32: scalar::dot_f32,
    l2sq_f32: scalar::l2sq_f32,
    sum_f32: scalar::sum_f32,
    dot_f32_u8: scalar::dot_f32_u8,
    dot_i16_u8: scalar::dot_i16_u8,
    dot_i8_u4: scalar::dot_i8_u4,
    dot_u8: scalar::dot_u8,
    l2sq_u8: scalar::l2sq_u8,
    hamming: scalar::hamming,
    dot_tile: scalar::dot_tile,
    l2sq_tile: scalar::l2sq_tile,
};

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86_tables {
    //! Safe entry points to the `#[target_feature]` kernels. They are private and reachable only through the
    //! tables below, which `available()` hands out only after detecting the features.
    use super::{Kernels, avx2, avx512};

    macro_rules! safe {
        ($name:ident, $module:ident :: $f:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
            fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: this function is only reachable through a table built after the CPU features the
                // kernel needs were detected (see `super::detect`).
                unsafe { $module::$f($($arg),*) }
            }
        };
    }

    safe!(avx2_dot, avx2::dot_f32, (a: &[f32], b: &[f32]) -> f32);
    safe!(avx2_l2sq, avx2::l2sq_f32, (a: &[f32], b: &[f32]) -> f32);
    safe!(avx2_sum, avx2::sum_f32, (a: &[f32]) -> f32);
    safe!(avx2_dot_f32_u8, avx2::dot_f32_u8, (w: &[f32], c: &[u8]) -> f32);
    safe!(avx2_dot_i16_u8, avx2::dot_i16_u8, (w: &[i16], c: &[u8]) -> i32);
    safe!(avx2_dot_i8_u4, avx2::dot_i8_u4, (w: &[i8], c: &[u8]) -> i32);
    safe!(avx2_dot_u8, avx2::dot_u8, (a: &[u8], b: &[u8]) -> u32);
    safe!(avx2_l2sq_u8, avx2::l2sq_u8, (a: &[u8], b: &[u8]) -> u32);
    safe!(avx2_hamming, avx2::hamming, (a: &[u64], b: &[u64]) -> u32);
    safe!(avx2_dot_tile, avx2::dot_tile, (q: &[f32], r: &[f32], d: usize, o: &mut [f32]) -> ());
    safe!(avx2_l2sq_tile, avx2::l2sq_tile, (q: &[f32], r: &[f32], d: usize, o: &mut [f32]) -> ());
    safe!(avx512_dot, avx512::dot_f32, (a: &[f32], b: &[f32]) -> f32);
    safe!(avx512_l2sq, avx512::l2sq_f32, (a: &[f32], b: &[f32]) -> f32);
    safe!(avx512_sum, avx512::sum_f32, (a: &[f32]) -> f32);
    safe!(avx512_dot_f32_u8, avx512::dot_f32_u8, (w: &[f32], c: &[u8]) -> f32);
    safe!(avx512_dot_i16_u8, avx512::dot_i16_u8, (w: &[i16], c: &[u8]) -> i32);
    safe!(avx512_dot_u8, avx512::dot_u8, (a: &[u8], b: &[u8]) -> u32);
    safe!(avx512_l2sq_u8, avx512::l2sq_u8, (a: &[u8], b: &[u8]) -> u32);
    safe!(avx512_hamming, avx512::hamming, (a: &[u64], b: &[u64]) -> u32);
    safe!(avx512_dot_tile, avx512::dot_tile, (q: &[f32], r: &[f32], d: usize, o: &mut [f32]) -> ());
    safe!(avx512_l2sq_tile, avx512::l2sq_tile, (q: &[f32], r: &[f32], d: usize, o: &mut [f32]) -> ());

    /// Needs `avx2`, `fma` and `popcnt`.
    pub(super) static AVX2: Kernels = Kernels {
        name: "avx2",
        dot_f32: avx2_dot,
        l2sq_f32: avx2_l2sq,
        sum_f32: avx2_sum,
        dot_f32_u8: avx2_dot_f32_u8,
        dot_i16_u8: avx2_dot_i16_u8,
        dot_i8_u4: avx2_dot_i8_u4,
        dot_u8: avx2_dot_u8,
        l2sq_u8: avx2_l2sq_u8,
        hamming: avx2_hamming,
        dot_tile: avx2_dot_tile,
        l2sq_tile: avx2_l2sq_tile,
    };

    /// Needs everything `AVX2` needs plus `avx512f`, `avx512bw`, `avx512vl` and `avx512vpopcntdq`.
    pub(super) static AVX512: Kernels = Kernels {
        name: "avx512",
        dot_f32: avx512_dot,
        l2sq_f32: avx512_l2sq,
        sum_f32: avx512_sum,
        dot_f32_u8: avx512_dot_f32_u8,
        dot_i16_u8: avx512_dot_i16_u8,
        // The AVX2 kernel: 32 bytes of codes are 64 dimensions, and a wider load would need a second packing.
        dot_i8_u4: avx2_dot_i8_u4,
        dot_u8: avx512_dot_u8,
        l2sq_u8: avx512_l2sq_u8,
        hamming: avx512_hamming,
        dot_tile: avx512_dot_tile,
        l2sq_tile: avx512_l2sq_tile,
    };
}

#[cfg(target_arch = "aarch64")]
static NEON: Kernels = Kernels {
    name: "neon",
    dot_f32: neon::dot_f32,
    l2sq_f32: neon::l2sq_f32,
    sum_f32: neon::sum_f32,
    dot_f32_u8: neon::dot_f32_u8,
    dot_i16_u8: scalar::dot_i16_u8,
    dot_i8_u4: scalar::dot_i8_u4,
    dot_u8: neon::dot_u8,
    l2sq_u8: neon::l2sq_u8,
    hamming: neon::hamming,
    dot_tile: neon::dot_tile,
    l2sq_tile: neon::l2sq_tile,
};

fn detect() -> Vec<&'static Kernels> {
    #[allow(unused_mut)]
    let mut sets: Vec<&'static Kernels> = vec![&SCALAR];
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("popcnt");
        if avx2 {
            sets.push(&x86_tables::AVX2);
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                sets.push(&x86_tables::AVX512);
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    sets.push(&NEON);
    sets
}

/// Every kernel set this CPU can run, scalar first, best last.
pub fn available() -> &'static [&'static Kernels] {
    static SETS: OnceLock<Vec<&'static Kernels>> = OnceLock::new();
    SETS.get_or_init(detect)
}

/// The kernel set in use: the best one available, or the one named by `QUIVER_SIMD` if it is available.
pub fn active() -> &'static Kernels {
    static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        let sets = available();
        let forced = std::env::var("QUIVER_SIMD").ok();
        forced
            .and_then(|want| sets.iter().copied().find(|k| k.name.eq_ignore_ascii_case(want.trim())))
            .unwrap_or(sets[sets.len() - 1])
    })
}

/// The scalar reference kernels.
pub fn scalar() -> &'static Kernels {
    &SCALAR
}

/// Inner product with the active kernels. See [`Kernels::dot`].
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    active().dot(a, b)
}

/// Squared Euclidean distance with the active kernels. See [`Kernels::l2sq`].
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    active().l2sq(a, b)
}

/// Cosine similarity with the active kernels. See [`Kernels::cosine`].
#[inline]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    active().cosine(a, b)
}

/// Euclidean norm with the active kernels.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    active().dot(a, a).sqrt()
}

/// `Σ w[i] · c[i]` (f32 weights, u8 codes) with the active kernels. See [`Kernels::dot_f32_u8`].
#[inline]
pub fn dot_f32_u8(w: &[f32], c: &[u8]) -> f32 {
    active().dot_f32_u8(w, c)
}

/// `Σ w[i] · c[i]` (i16 weights, u8 codes, wrapping i32) with the active kernels. See [`Kernels::dot_i16_u8`].
#[inline]
pub fn dot_i16_u8(w: &[i16], c: &[u8]) -> i32 {
    active().dot_i16_u8(w, c)
}

/// `Σ w[d] · code[d]` of i8 weights and packed 4-bit codes with the active kernels. See [`Kernels::dot_i8_u4`].
#[inline]
pub fn dot_i8_u4(w: &[i8], c: &[u8]) -> i32 {
    active().dot_i8_u4(w, c)
}

/// Bytes in one block of the 4-bit packing of [`Kernels::dot_i8_u4`] (64 dimensions).
pub const U4_BLOCK: usize = 32;

/// Inner product of u8 codes with the active kernels.
#[inline]
pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    active().dot_u8(a, b)
}

/// Squared Euclidean distance of u8 codes with the active kernels.
#[inline]
pub fn l2sq_u8(a: &[u8], b: &[u8]) -> u32 {
    active().l2sq_u8(a, b)
}

/// Asks the CPU to start loading the first `lines` cache lines of `data` (a hint: no effect on results, never
/// faults). Graph indexes call it on the next candidates' vectors before scoring the current one.
#[inline]
pub fn prefetch<T>(data: &[T], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(data);
        let base = data.as_ptr().cast::<u8>();
        for line in 0..lines.min(bytes.div_ceil(64)) {
            // `wrapping_add` stays within (or one past) the slice: line * 64 < bytes.
            x86_prefetch::line(base.wrapping_add(line * 64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, lines);
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86_prefetch {
    #[inline(always)]
    pub(super) fn line(p: *const u8) {
        // SAFETY: `prefetcht0` is a hint that never faults, whatever the address; SSE is part of the x86_64 baseline.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast()) }
    }
}

/// Hamming distance of bit codes with the active kernels.
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    active().hamming(a, b)
}
