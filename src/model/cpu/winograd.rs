//! 3×3 stride-1 convolutions by Winograd's minimal filtering, F(2×2, 3×3) (Lavin & Gray 2016):
//! each 2×2 block of outputs costs 16 multiplies per input channel instead of 36, so the matrix
//! products — nearly all of NanoDet-g's time on the CPU — shrink 2.25×. The 16 products are
//! ordinary matrix products over (output channel × input channel) and (input channel × tile).
//! Transforms (Bᵀ·d·B for the input, G·g·Gᵀ for the weights, Aᵀ·m·A for the output) are exact in
//! exact arithmetic; in f32 the results differ from direct convolution by rounding only.

// Index loops over fixed-size lanes are the clearest way to write these SIMD kernels.
#![allow(clippy::needless_range_loop)]

use super::conv::TILE_FLOATS;
use super::matmul::matmul_set;
use super::window::{LANES, Window, for_each_plane, phased_row, resize_scratch};
use super::{Activation, activate};

/// Whether `window` (with `groups == 1`) is a 3×3, stride-1 convolution this can run.
pub(super) fn applies(window: &Window) -> bool {
    window.k == 3 && window.stride == 1
}

/// `LANES` consecutive tiles: the transforms below work on all of them at once (SIMD).
type Lanes = [f32; LANES];

#[inline(always)]
fn zip(a: &Lanes, b: &Lanes, f: impl Fn(f32, f32) -> f32) -> Lanes {
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = f(a[l], b[l]);
    }
    out
}

/// `Bᵀ·x` for one column (or row) `x` of 4, `Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`.
#[inline(always)]
fn b_t(x: [&Lanes; 4]) -> [Lanes; 4] {
    let sub = |a: f32, b: f32| a - b;
    [zip(x[0], x[2], sub), zip(x[1], x[2], |a, b| a + b), zip(x[2], x[1], sub), zip(x[1], x[3], sub)]
}

/// `Aᵀ·x` for one column (or row) `x` of 4, `Aᵀ = [[1,1,1,0],[0,1,-1,-1]]`.
#[inline(always)]
fn a_t(x: [&Lanes; 4]) -> [Lanes; 2] {
    let s12 = zip(x[1], x[2], |a, b| a + b);
    let d12 = zip(x[1], x[2], |a, b| a - b);
    [zip(x[0], &s12, |a, b| a + b), zip(&d12, x[3], |a, b| a - b)]
}

/// `out = act(conv3x3(x, weight) + bias)` for one image: `x` `[cin, h, w]`, `u` the filters
/// `weight` `[cout, cin, 3, 3]` as [`transform_weights`] makes them, `out` `[cout, oh, ow]`.
/// Works through bands of tile rows so that the transformed input and products stay within a
/// few MB.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    cin: usize,
    cout: usize,
    g: &Window,
    act: Activation,
    out: &mut [f32],
) {
    let (tiles_h, tiles_w) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    let rows_per_band = (TILE_FLOATS / (16 * cin.max(cout) * tiles_w).max(1)).clamp(1, tiles_h);
    let (mut v, mut m) = (Vec::new(), Vec::new());
    for ty0 in (0..tiles_h).step_by(rows_per_band) {
        let rows = rows_per_band.min(tiles_h - ty0);
        let tiles = rows * tiles_w;
        // Per input channel, its 16 transformed planes `v[ci][ξ][t]`, so that each channel's
        // transform owns one contiguous run; per product ξ, its `cout` rows `m[ξ][co][t]`, so
        // that each product owns one, plus `LANES` of slack so that the last chunk of tiles can
        // be read whole. Natively the transforms run in parallel over channels and the 16
        // products over ξ (each on one thread: small products split poorly). Every element of
        // `v` and `m` is written below (the slack is read, never used), so neither keeps its
        // contents (`resize_scratch`: zeroed by all threads when it grows).
        let v_stride = 16 * tiles;
        resize_scratch(&mut v, cin * v_stride);
        for_each_plane(
            &mut v,
            v_stride,
            #[inline(always)]
            |ci, planes, band| {
                input_channel(&x[ci * g.h * g.w..][..g.h * g.w], g, ty0, rows, tiles_w, band, planes);
            },
        );
        let m_stride = cout * tiles;
        resize_scratch(&mut m, 16 * m_stride + LANES);
        for_each_plane(&mut m[..16 * m_stride], m_stride, |xi, product, _| {
            let (lhs, rhs) = (&u[xi * cout * cin..][..cout * cin], &v[xi * tiles..]);
            matmul_set(cout, tiles, cin, product, tiles, lhs, rhs, v_stride);
        });
        for_each_plane(
            &mut out[..cout * g.oh * g.ow],
            g.oh * g.ow,
            #[inline(always)]
            |co, plane, _| {
                output_channel(&m[co * tiles..], m_stride, bias[co], act, g, ty0, rows, tiles_w, plane);
            },
        );
    }
}

/// The transformed input planes `v[ξ][t]` of one input channel for tile rows
/// `ty0..ty0 + rows`, through a copy of the rows they read in `band`.
#[inline(always)]
fn input_channel(
    plane: &[f32],
    g: &Window,
    ty0: usize,
    rows: usize,
    tiles_w: usize,
    band: &mut Vec<f32>,
    v: &mut [f32],
) {
    let width = fill_band(band, plane, g, ty0, rows, tiles_w);
    transform_input(band, width, rows, tiles_w, v, rows * tiles_w);
}

/// Output rows of tile rows `ty0..ty0 + rows` of one output channel from its products
/// `m[ξ·stride + t]`: `act(Aᵀ · m · A + bias)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_channel(
    m: &[f32],
    stride: usize,
    bias: f32,
    act: Activation,
    g: &Window,
    ty0: usize,
    rows: usize,
    tiles_w: usize,
    plane: &mut [f32],
) {
    transform_output(m, stride, bias, g, ty0, rows, tiles_w, plane);
    let (start, end) = (2 * ty0 * g.ow, (2 * (ty0 + rows)).min(g.oh) * g.ow);
    activate(act, &mut plane[start..end]);
}

/// `U_ξ[co][ci]` (ξ = 0..16) = `G · g · Gᵀ` of each 3×3 filter, `G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]]`.
pub(super) fn transform_weights(weight: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let filters = cout * cin;
    let mut u = vec![0.0f32; 16 * filters];
    let lift = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    for (f, w) in weight.chunks_exact(9).enumerate().take(filters) {
        // Columns of G·g (4×3), then rows of (G·g)·Gᵀ (4×4).
        let c = [lift(w[0], w[3], w[6]), lift(w[1], w[4], w[7]), lift(w[2], w[5], w[8])];
        for i in 0..4 {
            let row = lift(c[0][i], c[1][i], c[2][i]);
            for j in 0..4 {
                u[(i * 4 + j) * filters + f] = row[j];
            }
        }
    }
    u
}

/// Copies the input rows that tile rows `ty0..ty0 + rows` read into `band` (zero outside the
/// image, padded coordinates), each row split into its even and odd columns so that column `j`
/// of consecutive tiles is a contiguous run. Returns the width of one half-row.
#[inline(always)]
fn fill_band(band: &mut Vec<f32>, plane: &[f32], g: &Window, ty0: usize, rows: usize, tiles_w: usize) -> usize {
    let width = tiles_w + 1 + LANES;
    let len = (2 * rows + 2) * 2 * width;
    // Every element is written below (zeros in the padding), so the buffer is only resized.
    band.resize(len, 0.0);
    let [top, _, left, _] = g.pad;
    for (r, dst) in band[..len].chunks_exact_mut(2 * width).enumerate() {
        let ih = 2 * ty0 + r;
        let src = (ih >= top && ih - top < g.h).then(|| &plane[(ih - top) * g.w..][..g.w]);
        phased_row(dst, src, left, 2, width, 0.0);
    }
    width
}

/// `V_ξ = Bᵀ · d · B` of every tile's 4×4 input `d`, written at `v[ξ·stride + t]`.
#[inline(always)]
fn transform_input(band: &[f32], width: usize, rows: usize, tiles_w: usize, v: &mut [f32], stride: usize) {
    for r in 0..rows {
        for t0 in (0..tiles_w).step_by(LANES) {
            // Bᵀ·d column by column, then (Bᵀ·d)·B row by row.
            let base = 2 * r * 2 * width + t0;
            // Written out: the closures of `array::map` / `array::from_fn` were not inlined
            // (natively, a call per column: 3–4 % of a NanoDet-g frame in `perf`).
            let cols = [
                input_column(band, base, width, 0),
                input_column(band, base, width, 1),
                input_column(band, base, width, 2),
                input_column(band, base, width, 3),
            ];
            let n = LANES.min(tiles_w - t0);
            for i in 0..4 {
                let row = b_t([&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i]]);
                for (j, values) in row.iter().enumerate() {
                    let dst = &mut v[(i * 4 + j) * stride + r * tiles_w + t0..][..n];
                    // A whole chunk: one vector store, not a call to `memcpy`.
                    match <&mut Lanes>::try_from(&mut *dst) {
                        Ok(full) => *full = *values,
                        Err(_) => dst.copy_from_slice(&values[..n]),
                    }
                }
            }
        }
    }
}

/// `Bᵀ·d` for column `j` of the 4×4 inputs of `LANES` tiles: `d[i][j]` is row `i`, column
/// `2·tile + j` = half-row `j % 2` at `tile + j / 2`, from `band[base..]`.
#[inline(always)]
fn input_column(band: &[f32], base: usize, width: usize, j: usize) -> [Lanes; 4] {
    let at = |i: usize| lanes_at(band, base + i * 2 * width + (j % 2) * width + j / 2);
    b_t([at(0), at(1), at(2), at(3)])
}

/// `Y = Aᵀ · m · A + bias` (2×2 outputs per tile) for one output channel, from `m[ξ·stride + t]`.
/// Outputs past the bottom/right edge are dropped.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn transform_output(
    m: &[f32],
    stride: usize,
    bias: f32,
    g: &Window,
    ty0: usize,
    rows: usize,
    tiles_w: usize,
    plane: &mut [f32],
) {
    for r in 0..rows {
        for t0 in (0..tiles_w).step_by(LANES) {
            let t = r * tiles_w + t0;
            let cols = [
                output_column(m, stride, t, 0),
                output_column(m, stride, t, 1),
                output_column(m, stride, t, 2),
                output_column(m, stride, t, 3),
            ];
            let n = LANES.min(tiles_w - t0);
            for i in 0..2 {
                let oh = 2 * (ty0 + r) + i;
                if oh >= g.oh {
                    continue;
                }
                let y = a_t([&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i]]);
                let out_row = &mut plane[oh * g.ow..][..g.ow];
                for l in 0..n {
                    for (j, values) in y.iter().enumerate() {
                        let ow = 2 * (t0 + l) + j;
                        if ow < g.ow {
                            out_row[ow] = values[l] + bias;
                        }
                    }
                }
            }
        }
    }
}

/// `LANES` values of `xs` from `start`.
#[inline(always)]
fn lanes_at(xs: &[f32], start: usize) -> &Lanes {
    xs[start..start + LANES].try_into().expect("a slice of LANES values")
}

/// `Aᵀ·m` for column `j` of the 4×4 products of `LANES` tiles from `t`: `m[ξ·stride + t]`.
#[inline(always)]
fn output_column(m: &[f32], stride: usize, t: usize, j: usize) -> [Lanes; 2] {
    let at = |i: usize| lanes_at(m, (i * 4 + j) * stride + t);
    a_t([at(0), at(1), at(2), at(3)])
}
