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
        return pointwise(x, weight, bias, cin, cout, columns, act, out);
        #[cfg(target_family = "wasm")]
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
/// columns]`), in blocks of output channels × pixels: each block one task of a parallel loop,
/// its product on one thread, then its bias and activation while the block is still in cache.
/// One parallel loop per layer, where the product's own threads and a separate pass over the
/// output were two (each a fork and join of every thread, and the pass a trip through memory).
#[cfg(not(target_family = "wasm"))]
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn pointwise(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    cin: usize,
    cout: usize,
    columns: usize,
    act: Activation,
    out: &mut [f32],
) {
    use rayon::prelude::*;

    /// `out`'s start, for the tasks that each write their own block of it.
    struct Blocks(*mut f32);
    // SAFETY: the tasks write disjoint blocks (see below); the pointer is only offset and passed on.
    unsafe impl Sync for Blocks {}
    impl Blocks {
        fn at(&self, offset: usize) -> *mut f32 {
            // SAFETY: callers pass offsets inside `out` (asserted below).
            unsafe { self.0.add(offset) }
        }
    }

    assert!(out.len() >= cout * columns, "pointwise: output too short");
    assert!(bias.len() >= cout, "pointwise: bias too short");
    let (rows_per_block, tile) = pointwise_blocks(cout, columns, rayon::current_num_threads());
    let tiles = columns.div_ceil(tile);
    let blocks = Blocks(out.as_mut_ptr());
    (0..cout.div_ceil(rows_per_block) * tiles).into_par_iter().for_each(|b| {
        let (r0, c0) = (b / tiles * rows_per_block, b % tiles * tile);
        let (rows, n) = (rows_per_block.min(cout - r0), tile.min(columns - c0));
        super::pool::in_task(|| {
            // SAFETY: the blocks partition `out`'s `cout × columns` values (row blocks ×
            // column tiles), so this task alone touches rows `r0..r0 + rows`, columns
            // `c0..c0 + n`: the product writes them (checking the inputs' extents), then each row
            // piece is borrowed once, after the product has written all of it.
            unsafe { product_into(rows, n, cin, blocks.at(r0 * columns + c0), columns, &weight[r0 * cin..], &x[c0..], columns) };
            for r in r0..r0 + rows {
                let piece = unsafe { std::slice::from_raw_parts_mut(blocks.at(r * columns + c0), n) };
                super::window::vectorized(
                    #[inline(always)]
                    || super::activate_biased(act, bias[r], piece),
                );
            }
        });
    });
}

/// Output channels and pixels per block of [`pointwise`]: about four blocks per thread (so
/// that a thread held up by another process holds back a small part of the layer), pixel
/// tiles of at least 256 in multiples of 64, and at least 16 channels per block. One block on
/// one thread.
#[cfg(not(target_family = "wasm"))]
fn pointwise_blocks(channels: usize, pixels: usize, threads: usize) -> (usize, usize) {
    let target = if threads > 1 { 4 * threads } else { 1 };
    let tiles = (pixels / 256).clamp(1, target);
    let row_blocks = target.div_ceil(tiles).min(channels.div_ceil(16)).max(1);
    let tile = pixels.div_ceil(tiles).next_multiple_of(64).min(pixels);
    (channels.div_ceil(row_blocks), tile)
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
    use super::pointwise_blocks;

    #[test]
    fn pointwise_blocks_cover_the_output_in_a_few_tasks_per_thread() {
        // (channels, pixels, threads) → blocks
        for (channels, pixels, threads, want) in [
            (96, 112 * 112, 2, 8),
            (1152, 49, 2, 8),
            (16, 49, 2, 1),
            (40, 1050, 2, 8),
            (96, 112 * 112, 1, 1),
            (1, 1, 4, 1),
        ] {
            let (rows, tile) = pointwise_blocks(channels, pixels, threads);
            assert!(rows >= 1 && tile >= 1 && rows <= channels && tile <= pixels);
            let blocks = channels.div_ceil(rows) * pixels.div_ceil(tile);
            assert_eq!(blocks, want, "{channels} channels × {pixels} pixels, {threads} threads: {rows} × {tile}");
        }
    }
}
