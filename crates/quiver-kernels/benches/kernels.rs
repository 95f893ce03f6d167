//! Kernel throughput per instruction-set family, in bytes of operands read per second (criterion prints GB/s).
//! Run: `cargo bench -p quiver-kernels --bench kernels`.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};

fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) - 0.5
        })
        .collect()
}

fn bench_pairs(c: &mut Criterion) {
    for dim in [384usize, 1536] {
        let a = pseudo_random(dim, 1);
        let b = pseudo_random(dim, 2);
        let au: Vec<u8> = a.iter().map(|v| ((v + 0.5) * 255.0) as u8).collect();
        let bu: Vec<u8> = b.iter().map(|v| ((v + 0.5) * 255.0) as u8).collect();
        let words = dim / 64;
        let ab: Vec<u64> = (0..words as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        let bb: Vec<u64> = (0..words as u64).map(|i| i.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)).collect();

        let mut g = c.benchmark_group(format!("f32/{dim}"));
        g.throughput(Throughput::Bytes((2 * dim * 4) as u64));
        for k in quiver_kernels::available() {
            g.bench_with_input(BenchmarkId::new("dot", k.name()), &(), |bch, _| {
                bch.iter(|| k.dot(black_box(&a), black_box(&b)))
            });
            g.bench_with_input(BenchmarkId::new("l2sq", k.name()), &(), |bch, _| {
                bch.iter(|| k.l2sq(black_box(&a), black_box(&b)))
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("u8/{dim}"));
        g.throughput(Throughput::Bytes((2 * dim) as u64));
        for k in quiver_kernels::available() {
            g.bench_with_input(BenchmarkId::new("dot_u8", k.name()), &(), |bch, _| {
                bch.iter(|| k.dot_u8(black_box(&au), black_box(&bu)))
            });
            g.bench_with_input(BenchmarkId::new("l2sq_u8", k.name()), &(), |bch, _| {
                bch.iter(|| k.l2sq_u8(black_box(&au), black_box(&bu)))
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("bits/{dim}"));
        g.throughput(Throughput::Bytes((2 * words * 8) as u64));
        for k in quiver_kernels::available() {
            g.bench_with_input(BenchmarkId::new("hamming", k.name()), &(), |bch, _| {
                bch.iter(|| k.hamming(black_box(&ab), black_box(&bb)))
            });
        }
        g.finish();
    }
}

/// 64 queries x 256 rows of 384-d: operands stay in cache, so this measures the arithmetic of the tiled kernel.
fn bench_tiles(c: &mut Criterion) {
    let dim = 384;
    let (nq, nr) = (64, 256);
    let q = pseudo_random(nq * dim, 3);
    let r = pseudo_random(nr * dim, 4);
    let mut out = vec![0.0f32; nq * nr];
    let mut g = c.benchmark_group("tile/64x256x384");
    // Counted as the bytes the pairwise kernels would read for the same products.
    g.throughput(Throughput::Bytes((nq * nr * 2 * dim * 4) as u64));
    for k in quiver_kernels::available() {
        g.bench_with_input(BenchmarkId::new("dot_tile", k.name()), &(), |bch, _| {
            bch.iter(|| k.dot_tile(black_box(&q), black_box(&r), dim, &mut out))
        });
        g.bench_with_input(BenchmarkId::new("l2sq_tile", k.name()), &(), |bch, _| {
            bch.iter(|| k.l2sq_tile(black_box(&q), black_box(&r), dim, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_pairs, bench_tiles);
criterion_main!(benches);
