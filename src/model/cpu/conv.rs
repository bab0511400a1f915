//! Dense convolutions as matrix products: 1×1 stride-1 convolutions multiply the input planes
//! directly, others go through im2col tiles of whole output rows. The output is written in NCHW.

use super::Activation;
use super::matmul::matmul_set;
use super::window::{Span, Window, for_each_plane, resize_scratch};

/// Output columns per matrix product: big enough to amortise packing the weights, small enough
/// that the im2col tile (`cin·k² × columns`) stays within a few MB.
const TILE_COLUMNS: usize = 2048;
pub(super) const TILE_FLOATS: usize = 1 << 20;

/// Dense convolution of one image as matrix products, `out = act(W · im2col(x) + bias)`: `x`
/// `[cin, h, w]`, `weight` `[cout, cin, k, k]` (already the `[cout, cin·k²]` matrix), `out`
/// `[cout, oh·ow]`, written directly in NCHW (every value, without reading one). A 1×1
/// convolution is one product over the input planes; others go tile by tile of whole output rows
/// through im2col. Bias and activation follow in one pass per output plane (in parallel natively).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_conv(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    cin: usize,
    cout: usize,
    window: &Window,
    act: Activation,
    out: &mut [f32],
) {
    let depth = cin * window.k * window.k;
    let columns = window.out_len();
    if window.is_pointwise() {
        matmul_set(cout, columns, depth, out, columns, weight, x, columns);
    } else {
        let tile_columns = TILE_COLUMNS.min(TILE_FLOATS / depth.max(1));
        let rows_per_tile = (tile_columns / window.ow).clamp(1, window.oh);
        let mut col = Vec::new();
        for oh0 in (0..window.oh).step_by(rows_per_tile) {
            let rows = rows_per_tile.min(window.oh - oh0);
            let (c0, n) = (oh0 * window.ow, rows * window.ow);
            im2col(x, cin, window, oh0, rows, &mut col);
            matmul_set(cout, n, depth, &mut out[c0..], columns, weight, &col, n);
        }
    }
    for_each_plane(
        &mut out[..cout * columns],
        columns,
        #[inline(always)]
        |co, plane, _| super::activate_biased(act, bias[co], plane),
    );
}

/// `col[(ci·k + kh)·k + kw][r·ow + ow'] = x[ci][ih][iw]` for output rows `oh0..oh0 + rows`,
/// zero where the window reaches into the padding.
/// Natively in parallel over input channels.
fn im2col(x: &[f32], cin: usize, g: &Window, oh0: usize, rows: usize, col: &mut Vec<f32>) {
    let n = rows * g.ow;
    let kk = g.k * g.k;
    // Every element is written below (zeros in the padding), so the buffer is only resized.
    resize_scratch(col, cin * kk * n);
    let [top, _, left, _] = g.pad;
    // Tap column `kw`'s view of an image row, the same for every row.
    let spans: Vec<Span> = (0..g.k).map(|kw| Span::new(left, kw, g.stride, g.w, g.ow)).collect();
    for_each_plane(
        col,
        kk * n,
        #[inline(always)]
        |ci, rows_of_ci, _| {
            let plane = &x[ci * g.h * g.w..][..g.h * g.w];
            for (tap, dst) in rows_of_ci.chunks_exact_mut(n).enumerate() {
                let (kh, kw) = (tap / g.k, tap % g.k);
                for (r, d) in dst.chunks_exact_mut(g.ow).enumerate() {
                    let ih = (oh0 + r) * g.stride + kh;
                    let src = (ih >= top && ih - top < g.h).then(|| &plane[(ih - top) * g.w..][..g.w]);
                    spans[kw].copy(d, src, 0.0);
                }
            }
        },
    );
}
