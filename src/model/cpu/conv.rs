//! Dense convolutions as matrix products: 1×1 stride-1 convolutions multiply the input planes
//! directly, others go through im2col tiles of whole output rows. The output is written in NCHW.

use super::Activation;
use super::matmul::matmul_set;
#[cfg(not(target_family = "wasm"))]
use super::matmul::product_into;
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
        #[cfg(not(target_family = "wasm"))]
        if let Some(tile) = pointwise_tile(columns, rayon::current_num_threads()) {
            return pointwise_tiled(x, weight, bias, cin, cout, columns, tile, act, out);
        }
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

/// A 1×1 stride-1 convolution of one image natively, `out = act(W · x + bias)` (`out` `[cout,
/// columns]`), in tiles of `tile` pixels (all channels): each tile one task of a parallel loop,
/// its product on one thread, then its bias and activation while the tile is still in cache.
/// One parallel loop per layer, where the product's own threads and a separate pass over the
/// output were two (each a fork and join of every thread, and the pass a trip through memory).
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn pointwise_tiled(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    cin: usize,
    cout: usize,
    columns: usize,
    tile: usize,
    act: Activation,
    out: &mut [f32],
) {
    use rayon::prelude::*;

    /// `out`'s start, for the tasks that each write their own tile of it.
    struct Tiles(*mut f32);
    // SAFETY: the tasks write disjoint tiles (see below); the pointer is only offset and passed on.
    unsafe impl Sync for Tiles {}
    impl Tiles {
        fn at(&self, offset: usize) -> *mut f32 {
            // SAFETY: callers pass offsets inside `out` (asserted below).
            unsafe { self.0.add(offset) }
        }
    }

    assert!(out.len() >= cout * columns, "pointwise: output too short");
    assert!(bias.len() >= cout, "pointwise: bias too short");
    assert!(tile > 0, "pointwise: empty tiles");
    let tiles = Tiles(out.as_mut_ptr());
    (0..columns.div_ceil(tile)).into_par_iter().for_each(|t| {
        let (c0, n) = (t * tile, tile.min(columns - t * tile));
        super::pool::in_task(|| {
            // SAFETY: the tiles partition `out`'s `cout × columns` values by column, so this
            // task alone touches columns `c0..c0 + n` of every row: the product writes them
            // (checking the inputs' extents), then each row's piece is borrowed once, after the
            // product has written all of it.
            unsafe { product_into(cout, n, cin, tiles.at(c0), columns, weight, &x[c0..], columns) };
            super::window::vectorized(
                #[inline(always)]
                || {
                    for (r, &b) in bias.iter().enumerate().take(cout) {
                        // SAFETY: this task's piece of row `r`, written by the product above.
                        let piece = unsafe { std::slice::from_raw_parts_mut(tiles.at(r * columns + c0), n) };
                        super::activate_biased(act, b, piece);
                    }
                },
            );
        });
    });
}

/// Pixels per tile of [`pointwise_tiled`], or `None` where it does not pay: one thread, or
/// fewer than 256 pixels per thread (NanoDet-g's 13×13 and EfficientNet-Lite0's 7×7 and 14×14
/// layers: splitting them by channel instead repacked the input for every block, 5 % of an
/// EfficientNet-Lite0 frame, so they stay one product on all threads). Otherwise as many
/// tiles as threads times up to four, in multiples of 16 pixels (one AVX-512 vector).
#[cfg(not(target_family = "wasm"))]
fn pointwise_tile(pixels: usize, threads: usize) -> Option<usize> {
    let per_thread = (pixels / 256 / threads.max(1)).min(4);
    if threads < 2 || per_thread == 0 {
        return None;
    }
    Some(pixels.div_ceil(per_thread * threads).next_multiple_of(16))
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

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::pointwise_tile;

    #[test]
    fn pointwise_tiles_split_large_layers_a_few_per_thread() {
        // (pixels, threads) → tiles
        for (pixels, threads, want) in [
            (112 * 112, 2, Some(8)),
            (56 * 56, 2, Some(8)),
            (28 * 28, 2, Some(2)),
            (26 * 26, 2, Some(2)),
            (52 * 52, 2, Some(8)),
            (14 * 14, 2, None),
            (7 * 7, 2, None),
            (112 * 112, 1, None),
            (1, 4, None),
        ] {
            let tiles = pointwise_tile(pixels, threads).map(|tile| pixels.div_ceil(tile));
            assert_eq!(tiles, want, "{pixels} pixels, {threads} threads");
        }
    }
}
