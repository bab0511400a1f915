//! A single-threaded f32 matrix product for wasm SIMD128, in portable Rust that LLVM vectorises.
//!
//! The `gemm` crate's wasm kernel keeps a 12×4 block of accumulators: with its three operand
//! vectors and a broadcast that is 16 live 128-bit values, one more than V8 can keep in x64
//! registers. This one computes 4×8 blocks (8 accumulators, 2 operand vectors, 1 broadcast), over
//! `b` packed so that its inner-loop loads are contiguous vectors and `a` read in place (one
//! value per row and depth step, broadcast), with the usual cache blocking.
//! Natively the `gemm` crate (FMA, threads) stays faster, so this runs in wasm only.

// Index loops over fixed-size lanes are the clearest way to write these SIMD kernels.
#![allow(clippy::needless_range_loop)]

/// Rows of the output computed together (output channels).
const MR: usize = 4;
/// Columns of the output computed together (pixels): two 128-bit vectors.
const NR: usize = 8;
/// Depth of one block: `MR` rows of `KC` of `a` plus a `KC × NR` sliver of `b` fit L1.
const KC: usize = 128;
/// Columns of one packed block of `b` (`KC × NC` floats, 256 KB, fits L2).
const NC: usize = 256;

/// `c[i·ldc + j] += Σ_p a[i·k + p] · b[p·ldb + j]` for `i < m`, `j < n` (`=` instead of `+=`
/// unless `accumulate`; `k` must then be positive).
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(a.len() >= m * k && b.len() >= (k - 1) * ldb + n && c.len() >= (m - 1) * ldc + n, "sgemm: short operand");
    if m == 1 {
        // One output row (a classifier at batch 1): a sum of scaled rows of `b`, read once and in
        // order; packing would pad the row to `MR` and copy all of `b` first.
        let c = &mut c[..n];
        if !accumulate {
            c.fill(0.0);
        }
        for (p, &ap) in a[..k].iter().enumerate() {
            c.iter_mut().zip(&b[p * ldb..][..n]).for_each(|(cv, bv)| *cv += ap * bv);
        }
        return;
    }
    let mut b_packed = Vec::new();
    // Rows past `m` in the last block of `MR` read zeros.
    let zeros = vec![0.0; KC.min(k)];
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            pack_b(b, ldb, p0, kc, j0, nc, &mut b_packed);
            for (jb, bp) in b_packed[..nc.div_ceil(NR) * kc * NR].chunks_exact(kc * NR).enumerate() {
                for i in (0..m).step_by(MR) {
                    // `a` is read in place, `MR` rows at a time: the kernel loads one value per
                    // row and depth step anyway, so packing them first (a copy of all of `a` per
                    // product, which costs as much as the product where `n` is small: weights
                    // against a 13×13 plane) gains nothing.
                    let row = |r: usize| if i + r < m { &a[(i + r) * k + p0..][..kc] } else { &zeros[..kc] };
                    let acc = micro_kernel([row(0), row(1), row(2), row(3)], bp);
                    let j = j0 + jb * NR;
                    // The first block of depth overwrites `c` unless accumulating.
                    let add = accumulate || p0 > 0;
                    for (r, acc_row) in acc.iter().enumerate().take(m - i) {
                        let dst = &mut c[(i + r) * ldc + j..][..NR.min(n - j)];
                        match <&mut [f32; NR]>::try_from(&mut *dst) {
                            // A whole row of the block: one vector add (the ragged edge below
                            // would be lane-by-lane, which costs as much as a short product).
                            Ok(full) if add => {
                                for l in 0..NR {
                                    full[l] += acc_row[l];
                                }
                            }
                            Ok(full) => *full = *acc_row,
                            Err(_) if add => dst.iter_mut().zip(acc_row).for_each(|(d, v)| *d += v),
                            Err(_) => dst.copy_from_slice(&acc_row[..dst.len()]),
                        }
                    }
                }
            }
        }
    }
}

/// `b[p0..p0 + kc, j0..j0 + nc]` as `NR`-column slivers, each stored row by row (`[p][l]`),
/// zero-padded columns.
fn pack_b(b: &[f32], ldb: usize, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut Vec<f32>) {
    // Every element is written below (zeros past the last column), so the buffer is only grown.
    let len = nc.div_ceil(NR) * kc * NR;
    if out.len() < len {
        out.resize(len, 0.0);
    }
    for (jb, sliver) in out[..len].chunks_exact_mut(kc * NR).enumerate() {
        let (j, width) = (j0 + jb * NR, NR.min(nc - jb * NR));
        for (p, dst) in sliver.chunks_exact_mut(NR).enumerate() {
            dst[..width].copy_from_slice(&b[(p0 + p) * ldb + j..][..width]);
            dst[width..].fill(0.0);
        }
    }
}

/// One `MR × NR` block of `a · b_sliver`, kept in registers: `a` its `MR` rows (`kc` values
/// each), `b_sliver` `kc` rows of `NR`.
#[cfg(not(all(target_family = "wasm", target_feature = "relaxed-simd")))]
#[inline(always)]
fn micro_kernel(a: [&[f32]; MR], b: &[f32]) -> [[f32; NR]; MR] {
    let mut acc = [[0.0f32; NR]; MR];
    let depth = a[0].iter().zip(a[1]).zip(a[2]).zip(a[3]).zip(b.chunks_exact(NR));
    for ((((&a0, &a1), &a2), &a3), bv) in depth {
        for (r, av) in [a0, a1, a2, a3].into_iter().enumerate() {
            for l in 0..NR {
                acc[r][l] += av * bv[l];
            }
        }
    }
    acc
}

/// One `MR × NR` block of `a · b_sliver`, kept in registers: the relaxed-SIMD build's
/// kernel, one fused multiply-add (`f32x4.relaxed_madd`) per vector and depth step instead of a
/// multiply and an add. The engine may fuse or not (V8 fuses where the CPU has FMA), so results
/// can differ from [`sgemm`]'s other build in the last bit of each product's rounding.
#[cfg(all(target_family = "wasm", target_feature = "relaxed-simd"))]
#[inline(always)]
fn micro_kernel(a: [&[f32]; MR], b: &[f32]) -> [[f32; NR]; MR] {
    use core::arch::wasm32::{f32x4, f32x4_extract_lane, f32x4_relaxed_madd, f32x4_splat};
    let mut acc = [[f32x4_splat(0.0); 2]; MR];
    let depth = a[0].iter().zip(a[1]).zip(a[2]).zip(a[3]).zip(b.chunks_exact(NR));
    for ((((&a0, &a1), &a2), &a3), bv) in depth {
        let (lo, hi) = (f32x4(bv[0], bv[1], bv[2], bv[3]), f32x4(bv[4], bv[5], bv[6], bv[7]));
        for (r, av) in [a0, a1, a2, a3].into_iter().enumerate() {
            let s = f32x4_splat(av);
            acc[r][0] = f32x4_relaxed_madd(s, lo, acc[r][0]);
            acc[r][1] = f32x4_relaxed_madd(s, hi, acc[r][1]);
        }
    }
    acc.map(|[lo, hi]| {
        [
            f32x4_extract_lane::<0>(lo),
            f32x4_extract_lane::<1>(lo),
            f32x4_extract_lane::<2>(lo),
            f32x4_extract_lane::<3>(lo),
            f32x4_extract_lane::<0>(hi),
            f32x4_extract_lane::<1>(hi),
            f32x4_extract_lane::<2>(hi),
            f32x4_extract_lane::<3>(hi),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product_on_ragged_shapes() {
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for (m, n, k, ldb, ldc) in
            [(1, 1, 1, 1, 1), (1, 300, 600, 310, 301), (5, 13, 7, 13, 20), (9, 300, 600, 310, 301), (64, 8, 256, 8, 8)]
        {
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * ldb).map(|_| next()).collect();
            let mut c: Vec<f32> = (0..m * ldc).map(|_| next()).collect();
            let mut want = c.clone();
            for i in 0..m {
                for j in 0..n {
                    want[i * ldc + j] +=
                        (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * ldb + j])).sum::<f64>() as f32;
                }
            }
            let mut set = c.clone();
            sgemm(m, n, k, &a, &b, ldb, &mut c, ldc, true);
            let worst = c.iter().zip(&want).fold(0.0f32, |w, (x, y)| w.max((x - y).abs()));
            assert!(worst < 1e-4, "{m}×{n}×{k}: max |Δ| {worst}");
            // Overwriting: the product alone inside the rows, the rest untouched.
            let before = set.clone();
            sgemm(m, n, k, &a, &b, ldb, &mut set, ldc, false);
            for (idx, ((s, w), b)) in set.iter().zip(&want).zip(&before).enumerate() {
                let (i, j) = (idx / ldc, idx % ldc);
                let expected = if i < m && j < n { w - b } else { *b };
                assert!((s - expected).abs() < 1e-4, "{m}×{n}×{k} overwrite at ({i}, {j}): {s} vs {expected}");
            }
        }
    }
}
