//! Scalar reference kernels. Every SIMD kernel is tested against these; they are also the fallback on CPUs
//! without a supported SIMD extension. They are written as plain sequential loops on purpose: the compiler does
//! not reorder float additions, so these are the "one lane" baseline the benches compare against.

pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

pub(crate) fn l2sq_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

pub(crate) fn sum_f32(a: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for x in a {
        s += x;
    }
    s
}

pub(crate) fn dot_f32_u8(w: &[f32], c: &[u8]) -> f32 {
    let mut s = 0.0f32;
    for (x, &y) in w.iter().zip(c) {
        s += x * f32::from(y);
    }
    s
}

pub(crate) fn dot_i16_u8(w: &[i16], c: &[u8]) -> i32 {
    let mut s = 0i32;
    for (&x, &y) in w.iter().zip(c) {
        s = s.wrapping_add(i32::from(x) * i32::from(y));
    }
    s
}

/// The reference for the 4-bit packing described at [`crate::Kernels::dot_i8_u4`].
pub(crate) fn dot_i8_u4(w: &[i8], c: &[u8]) -> i32 {
    let mut s = 0i32;
    for (o, block) in (0..c.len()).step_by(crate::U4_BLOCK).map(|o| (o, &c[o..c.len().min(o + crate::U4_BLOCK)])) {
        let t = block.len();
        for (j, &b) in block.iter().enumerate() {
            s += i32::from(w[2 * o + j]) * i32::from(b & 0x0f) + i32::from(w[2 * o + t + j]) * i32::from(b >> 4);
        }
    }
    s
}

pub(crate) fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    let mut s = 0u32;
    for (&x, &y) in a.iter().zip(b) {
        s += u32::from(x) * u32::from(y);
    }
    s
}

pub(crate) fn l2sq_u8(a: &[u8], b: &[u8]) -> u32 {
    let mut s = 0u32;
    for (&x, &y) in a.iter().zip(b) {
        let d = u32::from(x.abs_diff(y));
        s += d * d;
    }
    s
}

pub(crate) fn hamming(a: &[u64], b: &[u64]) -> u32 {
    let mut s = 0u32;
    for (x, y) in a.iter().zip(b) {
        s += (x ^ y).count_ones();
    }
    s
}

/// `out[i * nr + j] = pair(query_i, row_j)`: the tile contract, computed one pair at a time.
pub(crate) fn tile_by_pairs(
    pair: fn(&[f32], &[f32]) -> f32,
    queries: &[f32],
    rows: &[f32],
    dim: usize,
    out: &mut [f32],
) {
    let nr = rows.len() / dim;
    if nr == 0 {
        return;
    }
    for (q, out_row) in queries.chunks_exact(dim).zip(out.chunks_exact_mut(nr)) {
        for (r, o) in rows.chunks_exact(dim).zip(out_row.iter_mut()) {
            *o = pair(q, r);
        }
    }
}

pub(crate) fn dot_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    tile_by_pairs(dot_f32, queries, rows, dim, out);
}

pub(crate) fn l2sq_tile(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    tile_by_pairs(l2sq_f32, queries, rows, dim, out);
}
