//! 3×3 stride-1 convolutions by Winograd's minimal filtering, F(4×4, 3×3) (Lavin & Gray 2016):
//! each 4×4 block of outputs costs 36 multiplies per input channel instead of 144, so the matrix
//! products — nearly all of NanoDet-g's time on the CPU — shrink 4× (1.78× against F(2×2, 3×3),
//! which this replaced). The 36 products are ordinary matrix products over (output channel ×
//! input channel) and (input channel × tile). Transforms (Bᵀ·d·B for the input, G·g·Gᵀ for the
//! weights, Aᵀ·m·A for the output) are exact in exact arithmetic; in f32 the results differ from
//! direct convolution by rounding only. The interpolation points are 0, 1, −1, 2, −½ and ∞
//! (rather than the usual ±2): their transforms have smaller entries, so less rounding error
//! (Barabasz et al. 2020); `Bᵀ` and `Aᵀ` are scaled to small integers, the scale folded into `G`,
//! which runs once per layer (see `Prepared`).

// Index loops over fixed-size lanes are the clearest way to write these SIMD kernels.
#![allow(clippy::needless_range_loop)]

use super::conv::TILE_FLOATS;
use super::matmul::matmul_set;
use super::window::{LANES, Span, Window, copy_phases, for_each_plane, resize_scratch};
use super::{Activation, activate};

/// Outputs per tile side.
const M: usize = 4;
/// Inputs per tile side (`M + 2`).
const T: usize = M + 2;
/// Transformed values per tile, and so matrix products per band: `T²`.
pub(super) const XI: usize = T * T;

/// Whether `window` (with `groups == 1`) is a 3×3, stride-1 convolution this can run.
pub(super) fn applies(window: &Window) -> bool {
    window.k == 3 && window.stride == 1
}

/// `LANES` consecutive tiles: the transforms below work on all of them at once (SIMD).
type Lanes = [f32; LANES];

/// `Bᵀ·x` for one column (or row) `x` of 6; `Bᵀ` (scaled by 2 but for row 4):
/// `[[2,3,-4,-3,2,0], [0,-2,-5,-1,2,0], [0,2,1,-5,2,0], [0,-1,-2,1,2,0], [0,2,-1,-2,1,0], [0,2,3,-4,-3,2]]`.
#[inline(always)]
fn b_t(x: [&Lanes; T]) -> [Lanes; T] {
    let mut out = [[0.0; LANES]; T];
    for l in 0..LANES {
        let [x0, x1, x2, x3, x4, x5] = [x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]];
        out[0][l] = 2.0 * (x0 + x4) - 4.0 * x2 + 3.0 * (x1 - x3);
        out[1][l] = 2.0 * (x4 - x1) - 5.0 * x2 - x3;
        out[2][l] = 2.0 * (x1 + x4) + x2 - 5.0 * x3;
        out[3][l] = 2.0 * x4 - x1 - 2.0 * x2 + x3;
        out[4][l] = 2.0 * (x1 - x3) - x2 + x4;
        out[5][l] = 2.0 * (x1 + x5) - 4.0 * x3 + 3.0 * (x2 - x4);
    }
    out
}

/// `Aᵀ·x` for one column (or row) `x` of 6; `Aᵀ` (column 4 scaled by 8):
/// `[[1,1,1,1,8,0], [0,1,-1,2,-4,0], [0,1,1,4,2,0], [0,1,-1,8,-1,1]]`.
#[inline(always)]
fn a_t(x: [&Lanes; T]) -> [Lanes; M] {
    let mut out = [[0.0; LANES]; M];
    for l in 0..LANES {
        let [x0, x1, x2, x3, x4, x5] = [x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]];
        let (s12, d12) = (x1 + x2, x1 - x2);
        out[0][l] = x0 + s12 + x3 + 8.0 * x4;
        out[1][l] = d12 + 2.0 * x3 - 4.0 * x4;
        out[2][l] = s12 + 4.0 * x3 + 2.0 * x4;
        out[3][l] = d12 + 8.0 * x3 - x4 + x5;
    }
    out
}

/// `G`, matching the scaled `Bᵀ` and `Aᵀ` above (exact fractions; applied in f64).
const G: [[f64; 3]; T] = [
    [1.0 / 2.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0],
    [1.0 / 30.0, 1.0 / 15.0, 2.0 / 15.0],
    [-2.0 / 15.0, 1.0 / 15.0, -1.0 / 30.0],
    [0.0, 0.0, 1.0 / 2.0],
];

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
    let (tiles_h, tiles_w) = (g.oh.div_ceil(M), g.ow.div_ceil(M));
    let rows_per_band = (TILE_FLOATS / (XI * cin.max(cout) * tiles_w).max(1)).clamp(1, tiles_h);
    let (mut v, mut m) = (Vec::new(), Vec::new());
    let width = band_width(tiles_w);
    let phases = Span::phases(g.pad[2], M, g.w, width);
    for ty0 in (0..tiles_h).step_by(rows_per_band) {
        let rows = rows_per_band.min(tiles_h - ty0);
        let tiles = rows * tiles_w;
        // Per input channel, its `XI` transformed planes `v[ci][ξ][t]`, so that each channel's
        // transform owns one contiguous run; per product ξ, its `cout` rows `m[ξ][co][t]`, so
        // that each product owns one, plus `LANES` of slack so that the last chunk of tiles can
        // be read whole. Natively the transforms run in parallel over channels and the `XI`
        // products over ξ (each on one thread: small products split poorly). Every element of
        // `v` and `m` is written below (the slack is read, never used), so neither keeps its
        // contents (`resize_scratch`: zeroed by all threads when it grows).
        let v_stride = XI * tiles;
        resize_scratch(&mut v, cin * v_stride);
        for_each_plane(
            &mut v,
            v_stride,
            #[inline(always)]
            |ci, planes, band| {
                let plane = &x[ci * g.h * g.w..][..g.h * g.w];
                fill_band(band, plane, g, &phases, ty0, rows, width);
                transform_input(band, width, rows, tiles_w, planes, rows * tiles_w);
            },
        );
        let m_stride = cout * tiles;
        resize_scratch(&mut m, XI * m_stride + LANES);
        for_each_plane(&mut m[..XI * m_stride], m_stride, |xi, product, _| {
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
    let (start, end) = (M * ty0 * g.ow, (M * (ty0 + rows)).min(g.oh) * g.ow);
    activate(act, &mut plane[start..end]);
}

/// `U_ξ[co][ci]` (ξ = 0..`XI`) = `G · g · Gᵀ` of each 3×3 filter `g`, computed in f64 and
/// rounded once.
pub(super) fn transform_weights(weight: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let filters = cout * cin;
    let mut u = vec![0.0f32; XI * filters];
    for (f, w) in weight.chunks_exact(9).enumerate().take(filters) {
        // G·g (T×3), then (G·g)·Gᵀ (T×T).
        let gg: [[f64; 3]; T] =
            std::array::from_fn(|i| std::array::from_fn(|b| (0..3).map(|a| G[i][a] * f64::from(w[a * 3 + b])).sum()));
        for i in 0..T {
            for j in 0..T {
                let value: f64 = (0..3).map(|b| gg[i][b] * G[j][b]).sum();
                u[(i * T + j) * filters + f] = value as f32;
            }
        }
    }
    u
}

/// Floats per phase of a band's row: one column of each tile plus the next tile's first (a
/// tile reads `M + 2` columns), and `LANES` of slack so that the last chunk of tiles can be read
/// whole.
fn band_width(tiles_w: usize) -> usize {
    tiles_w + 1 + LANES
}

/// Copies the input rows that tile rows `ty0..ty0 + rows` read into `band` (zero outside the
/// image, padded coordinates), each row split into `M` `phases` of `width` (columns `M·t + p`) so
/// that column `j` of consecutive tiles is a contiguous run.
///
/// `band` is empty, or holds what this wrote for another channel of the same band of tile rows
/// (a scratch buffer of [`for_each_plane`] lives for one loop): the zeros of the padding are
/// the same for every channel, so they are written once, when the buffer is first sized.
#[inline(always)]
fn fill_band(band: &mut Vec<f32>, plane: &[f32], g: &Window, phases: &[Span], ty0: usize, rows: usize, width: usize) {
    let row_len = M * width;
    let len = (M * rows + 2) * row_len;
    if band.len() != len {
        band.clear();
        band.resize(len, 0.0);
    }
    let top = g.pad[0];
    for (r, dst) in band.chunks_exact_mut(row_len).enumerate() {
        let ih = M * ty0 + r;
        if ih >= top && ih - top < g.h {
            copy_phases(dst, &plane[(ih - top) * g.w..][..g.w], phases, width);
        }
    }
}

/// `V_ξ = Bᵀ · d · B` of every tile's T×T input `d`, written at `v[ξ·stride + t]`.
#[inline(always)]
fn transform_input(band: &[f32], width: usize, rows: usize, tiles_w: usize, v: &mut [f32], stride: usize) {
    for r in 0..rows {
        for t0 in (0..tiles_w).step_by(LANES) {
            // Bᵀ·d column by column, then (Bᵀ·d)·B row by row.
            let base = M * r * M * width + t0;
            // Written out: the closures of `array::map` / `array::from_fn` were not inlined
            // (natively, a call per column: 3–4 % of a NanoDet-g frame in `perf`).
            let cols = [
                input_column(band, base, width, 0),
                input_column(band, base, width, 1),
                input_column(band, base, width, 2),
                input_column(band, base, width, 3),
                input_column(band, base, width, 4),
                input_column(band, base, width, 5),
            ];
            let n = LANES.min(tiles_w - t0);
            for i in 0..T {
                let row = b_t([&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i], &cols[4][i], &cols[5][i]]);
                for (j, values) in row.iter().enumerate() {
                    let dst = &mut v[(i * T + j) * stride + r * tiles_w + t0..][..n];
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

/// `Bᵀ·d` for column `j` of the T×T inputs of `LANES` tiles: `d[i][j]` is row `i`, column
/// `M·tile + j` = phase `j % M` at `tile + j / M`, from `band[base..]`.
#[inline(always)]
fn input_column(band: &[f32], base: usize, width: usize, j: usize) -> [Lanes; T] {
    let at = |i: usize| lanes_at(band, base + i * M * width + (j % M) * width + j / M);
    b_t([at(0), at(1), at(2), at(3), at(4), at(5)])
}

/// `Y = Aᵀ · m · A + bias` (M×M outputs per tile) for one output channel, from `m[ξ·stride + t]`.
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
                output_column(m, stride, t, 4),
                output_column(m, stride, t, 5),
            ];
            let n = LANES.min(tiles_w - t0);
            for i in 0..M {
                let oh = M * (ty0 + r) + i;
                if oh >= g.oh {
                    continue;
                }
                let y = a_t([&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i], &cols[4][i], &cols[5][i]]);
                let out_row = &mut plane[oh * g.ow..][..g.ow];
                for l in 0..n {
                    for (j, values) in y.iter().enumerate() {
                        let ow = M * (t0 + l) + j;
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

/// `Aᵀ·m` for column `j` of the T×T products of `LANES` tiles from `t`: `m[ξ·stride + t]`.
#[inline(always)]
fn output_column(m: &[f32], stride: usize, t: usize, j: usize) -> [Lanes; M] {
    let at = |i: usize| lanes_at(m, (i * T + j) * stride + t);
    a_t([at(0), at(1), at(2), at(3), at(4), at(5)])
}
