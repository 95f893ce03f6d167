//! Every SIMD kernel set this CPU can run must agree with the scalar reference: exactly for integer kernels,
//! within the documented bound for f32 kernels, for every length (0, 1, odd, lane-width edges, long).

#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures by design

use proptest::prelude::*;
use quiver_kernels::{F32_REL_EPS, Kernels, available, scalar};

fn simd_sets() -> impl Iterator<Item = &'static Kernels> {
    available().iter().copied().filter(|k| k.name() != "scalar")
}

fn f32_close(got: f32, want: f32, magnitude: f32) -> bool {
    (got - want).abs() <= F32_REL_EPS * magnitude + 1e-6
}

/// Lengths around every lane width (4, 8, 16, 32) plus 0, 1 and a long one.
fn edge_lengths() -> Vec<usize> {
    let mut v = vec![0, 1, 2, 3, 383, 384, 385, 1000, 1536];
    for w in [4usize, 8, 16, 32, 64] {
        v.extend([w - 1, w, w + 1, 2 * w - 1, 2 * w + 1]);
    }
    v
}

fn vec_f32(len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-100.0f32..100.0, len)
}

fn pair_f32() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (0usize..300).prop_flat_map(|n| (vec_f32(n), vec_f32(n)))
}

fn check_f32_pair(a: &[f32], b: &[f32]) -> Result<(), TestCaseError> {
    let s = scalar();
    let mag_dot: f32 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    let mag_l2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    for k in simd_sets() {
        let (got, want) = (k.dot(a, b), s.dot(a, b));
        prop_assert!(f32_close(got, want, mag_dot), "{} dot len {}: {got} vs {want}", k.name(), a.len());
        let (got, want) = (k.l2sq(a, b), s.l2sq(a, b));
        prop_assert!(f32_close(got, want, mag_l2), "{} l2sq len {}: {got} vs {want}", k.name(), a.len());
        let mag_sum: f32 = a.iter().map(|x| x.abs()).sum();
        let (got, want) = (k.sum(a), s.sum(a));
        prop_assert!(f32_close(got, want, mag_sum), "{} sum len {}: {got} vs {want}", k.name(), a.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn f32_kernels_match_scalar((a, b) in pair_f32()) {
        check_f32_pair(&a, &b)?;
    }

    #[test]
    fn u8_kernels_match_scalar_exactly(
        (a, b) in (0usize..600).prop_flat_map(|n| (prop::collection::vec(any::<u8>(), n), prop::collection::vec(any::<u8>(), n)))
    ) {
        for k in simd_sets() {
            prop_assert_eq!(k.dot_u8(&a, &b), scalar().dot_u8(&a, &b), "{} dot_u8 len {}", k.name(), a.len());
            prop_assert_eq!(k.l2sq_u8(&a, &b), scalar().l2sq_u8(&a, &b), "{} l2sq_u8 len {}", k.name(), a.len());
        }
    }

    #[test]
    fn i16_u8_kernel_matches_scalar_exactly(
        (w, c) in (0usize..600).prop_flat_map(|n| (prop::collection::vec(any::<i16>(), n), prop::collection::vec(any::<u8>(), n)))
    ) {
        // Full-range weights overflow i32 on long inputs: the kernels must wrap the same way as the reference.
        for k in simd_sets() {
            prop_assert_eq!(k.dot_i16_u8(&w, &c), scalar().dot_i16_u8(&w, &c), "{} dot_i16_u8 len {}", k.name(), w.len());
        }
    }

    #[test]
    fn i8_u4_kernel_matches_scalar_exactly(
        (w, c) in (0usize..300).prop_flat_map(|n| (prop::collection::vec(any::<i8>(), 2 * n), prop::collection::vec(any::<u8>(), n)))
    ) {
        for k in simd_sets() {
            prop_assert_eq!(k.dot_i8_u4(&w, &c), scalar().dot_i8_u4(&w, &c), "{} dot_i8_u4 len {}", k.name(), c.len());
        }
    }

    #[test]
    fn f32_u8_kernel_matches_scalar(
        (w, c) in (0usize..300).prop_flat_map(|n| (vec_f32(n), prop::collection::vec(any::<u8>(), n)))
    ) {
        let mag: f32 = w.iter().zip(&c).map(|(x, y)| (x * f32::from(*y)).abs()).sum();
        for k in simd_sets() {
            let (got, want) = (k.dot_f32_u8(&w, &c), scalar().dot_f32_u8(&w, &c));
            prop_assert!(f32_close(got, want, mag), "{} dot_f32_u8 len {}: {got} vs {want}", k.name(), w.len());
        }
    }

    #[test]
    fn hamming_matches_scalar_exactly(
        (a, b) in (0usize..40).prop_flat_map(|n| (prop::collection::vec(any::<u64>(), n), prop::collection::vec(any::<u64>(), n)))
    ) {
        for k in simd_sets() {
            prop_assert_eq!(k.hamming(&a, &b), scalar().hamming(&a, &b), "{} hamming len {}", k.name(), a.len());
        }
    }

    #[test]
    fn tiles_match_pairwise_scalar(
        (dim, nq, nr) in (1usize..70, 0usize..30, 0usize..70),
        seed in any::<u64>(),
    ) {
        let mut x = seed | 1;
        let mut next = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5 };
        let q: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
        let r: Vec<f32> = (0..nr * dim).map(|_| next()).collect();
        for k in available() {
            let mut dots = vec![f32::NAN; nq * nr];
            let mut l2s = vec![f32::NAN; nq * nr];
            k.dot_tile(&q, &r, dim, &mut dots);
            k.l2sq_tile(&q, &r, dim, &mut l2s);
            for i in 0..nq {
                for j in 0..nr {
                    let (qa, rb) = (&q[i * dim..(i + 1) * dim], &r[j * dim..(j + 1) * dim]);
                    let mag: f32 = qa.iter().zip(rb).map(|(x, y)| (x * y).abs()).sum();
                    let want = scalar().dot(qa, rb);
                    prop_assert!(f32_close(dots[i * nr + j], want, mag), "{} dot_tile q{i} r{j} dim {dim}", k.name());
                    let want = scalar().l2sq(qa, rb);
                    prop_assert!(f32_close(l2s[i * nr + j], want, want), "{} l2sq_tile q{i} r{j} dim {dim}", k.name());
                }
            }
        }
    }
}

#[test]
fn every_edge_length_matches_scalar() {
    for n in edge_lengths() {
        let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 53 % 89) as f32 - 44.0) / 3.0).collect();
        check_f32_pair(&a, &b).unwrap();
        let au: Vec<u8> = (0..n).map(|i| (i * 31 % 256) as u8).collect();
        let bu: Vec<u8> = (0..n).map(|i| 255 - (i * 17 % 256) as u8).collect();
        for k in simd_sets() {
            assert_eq!(k.dot_u8(&au, &bu), scalar().dot_u8(&au, &bu), "{} dot_u8 len {n}", k.name());
            assert_eq!(k.l2sq_u8(&au, &bu), scalar().l2sq_u8(&au, &bu), "{} l2sq_u8 len {n}", k.name());
            let w: Vec<i16> = (0..n).map(|i| ((i * 7919) % 65536) as u16 as i16).collect();
            assert_eq!(k.dot_i16_u8(&w, &au), scalar().dot_i16_u8(&w, &au), "{} dot_i16_u8 len {n}", k.name());
        }
    }
}

#[test]
fn u8_kernels_do_not_overflow_at_max_dim() {
    let n = quiver_kernels::MAX_DIM;
    let a = vec![255u8; n];
    let z = vec![0u8; n];
    for k in available() {
        assert_eq!(k.dot_u8(&a, &a), 255 * 255 * n as u32, "{}", k.name());
        assert_eq!(k.l2sq_u8(&a, &z), 255 * 255 * n as u32, "{}", k.name());
    }
}

#[test]
fn u4_packing_puts_low_nibbles_first_in_each_block() {
    // 40 bytes: one whole block (dimensions 0..32 low, 32..64 high) and a last block of 8 (64..72 low, 72..80 high).
    let c: Vec<u8> = (0..40u8).map(|j| (j % 16) | (((j + 3) % 16) << 4)).collect();
    let mut want = vec![0i32; 80];
    for j in 0..32 {
        want[j] = i32::from(j as u8 % 16);
        want[32 + j] = i32::from((j as u8 + 3) % 16);
    }
    for j in 0..8 {
        want[64 + j] = i32::from((32 + j as u8) % 16);
        want[72 + j] = i32::from((35 + j as u8) % 16);
    }
    for k in available() {
        for d in 0..80 {
            let mut w = vec![0i8; 80];
            w[d] = -3;
            assert_eq!(k.dot_i8_u4(&w, &c), -3 * want[d], "{} dimension {d}", k.name());
        }
        assert_eq!(k.dot_i8_u4(&[127; 64], &[0xff; 32]), 127 * 15 * 64, "{}", k.name());
        assert_eq!(k.dot_i8_u4(&[-128; 64], &[0xff; 32]), -128 * 15 * 64, "{}", k.name());
    }
}

#[test]
fn known_values() {
    for k in available() {
        assert_eq!(k.dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0, "{}", k.name());
        assert_eq!(k.l2sq(&[1.0, 2.0, 3.0], &[4.0, 6.0, 3.0]), 25.0, "{}", k.name());
        assert!((k.cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(k.cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0, "zero vector has cosine 0");
        assert_eq!(k.hamming(&[0b1011, u64::MAX], &[0b0001, 0]), 66, "{}", k.name());
        assert_eq!(k.dot_u8(&[1, 2, 255], &[3, 4, 255]), 3 + 8 + 65025, "{}", k.name());
        assert_eq!(k.dot_i16_u8(&[-1, 2, -32768], &[3, 4, 255]), -3 + 8 - 32768 * 255, "{}", k.name());
    }
}

#[test]
#[should_panic(expected = "differ in length")]
fn mismatched_lengths_panic_instead_of_reading_out_of_bounds() {
    quiver_kernels::dot(&[1.0, 2.0], &[1.0]);
}

#[test]
fn active_set_is_the_best_available_unless_forced() {
    let best = available().last().unwrap().name();
    match std::env::var("QUIVER_SIMD") {
        Ok(forced) if available().iter().any(|k| k.name() == forced) => {
            assert_eq!(quiver_kernels::active().name(), forced)
        }
        _ => assert_eq!(quiver_kernels::active().name(), best),
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert!(available().iter().any(|k| k.name() == "avx2"), "AVX2 CPU must get the avx2 kernels");
    }
}
