//! Bilinear resampling with half-pixel centres (PyTorch `align_corners=False`), plane by plane:
//! the source columns and weights are computed once per call, each output row blends two input
//! rows. burn's generic operator computed both per output value in a closure per element (3.7 %
//! of a native NanoDet-g frame in `perf`).

use super::window::for_each_plane;

/// Where output position `i` of `out_len` samples an axis of `in_len` values: the two source
/// indices and the weight of the second.
fn taps(out_len: usize, in_len: usize) -> Vec<(usize, usize, f32)> {
    let scale = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|i| {
            // Half-pixel centres, clamped at the start as PyTorch does (not at the end: past the
            // last source value both indices are the last one).
            let src = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(in_len - 1);
            let i1 = (i0 + 1).min(in_len - 1);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// Resamples `planes` consecutive `h × w` planes of `x` to `oh × ow`.
pub(super) fn bilinear(x: &[f32], planes: usize, (h, w): (usize, usize), (oh, ow): (usize, usize)) -> Vec<f32> {
    let mut out = super::window::zeros(planes * oh * ow);
    if h == 0 || w == 0 || oh == 0 || ow == 0 {
        return out;
    }
    let (rows, cols) = (taps(oh, h), taps(ow, w));
    for_each_plane(
        &mut out,
        oh * ow,
        #[inline(always)]
        |c, plane_out, _| {
            let plane = &x[c * h * w..][..h * w];
            for (out_row, &(y0, y1, ly)) in plane_out.chunks_exact_mut(ow).zip(&rows) {
                let (r0, r1) = (&plane[y0 * w..][..w], &plane[y1 * w..][..w]);
                for (o, &(x0, x1, lx)) in out_row.iter_mut().zip(&cols) {
                    let top = r0[x0] + (r0[x1] - r0[x0]) * lx;
                    let bottom = r1[x0] + (r1[x1] - r1[x0]) * lx;
                    *o = top + (bottom - top) * ly;
                }
            }
        },
    );
    out
}
