//! A square window (convolution or pooling) sliding over one plane: its geometry, and the
//! depthwise convolution and max pooling that run over a padded, stride-phased copy of each
//! plane, so that every inner loop reads a contiguous run of `LANES` values.

use burn::tensor::ops::ConvOptions;

use super::Activation;

/// Lanes computed together by the window kernels: two 128-bit vectors in wasm, one AVX vector natively.
pub(super) const LANES: usize = 8;

/// Geometry of a square window (convolution or pooling) sliding over one `h × w` plane.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window side.
    pub k: usize,
    /// Step between windows (both axes).
    pub stride: usize,
    /// Top, bottom, left, right.
    pub pad: [usize; 4],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Window {
    /// The geometry of `options` over input `[n, c, h, w]` and weight `[o, i, k, k]`, or `None`
    /// when the kernels here do not cover it (dilation, non-square kernels or strides, empty output).
    pub(super) fn for_conv(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Option<Self> {
        let (&[_, _, h, w], &[_, _, kh, kw]) = (x, weight) else { return None };
        let [(top, bottom), (left, right)] = options.padding;
        let stride = options.stride[0];
        if kh != kw || options.stride[1] != stride || stride == 0 || options.dilation != [1, 1] || kh == 0 {
            return None;
        }
        let (ph, pw) = (h + top + bottom, w + left + right);
        if ph < kh || pw < kw || h == 0 || w == 0 {
            return None;
        }
        let (oh, ow) = ((ph - kh) / stride + 1, (pw - kw) / stride + 1);
        Some(Self { h, w, k: kh, stride, pad: [top, bottom, left, right], oh, ow })
    }

    pub(super) fn in_len(&self) -> usize {
        self.h * self.w
    }

    pub(super) fn out_len(&self) -> usize {
        self.oh * self.ow
    }

    pub(super) fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == [0; 4]
    }

    /// Floats per column phase of one padded row: wide enough that every `LANES`-wide read of
    /// the last output chunk stays inside the row.
    fn phase_width(&self) -> usize {
        let padded = self.w + self.pad[2] + self.pad[3];
        padded.div_ceil(self.stride).max(self.ow + (self.k - 1) / self.stride) + LANES
    }

    /// Floats between the starts of consecutive output rows in the phased plane.
    fn row_stride(&self) -> usize {
        self.stride * self.stride * self.phase_width()
    }

    /// The largest chunk start [`chunks`](Self::chunks) passes to its kernel.
    #[cfg(not(target_family = "wasm"))]
    fn last_start(&self) -> usize {
        (self.oh - 1) * self.row_stride() + (self.ow.div_ceil(LANES) - 1) * LANES
    }

    /// Copies `plane` into `scratch`, padded with `fill` and with each padded row split into
    /// `stride` phases (phase `p` holds columns `p, p + stride, …`), so that every window tap of
    /// consecutive outputs reads a contiguous run: tap `kw` of output `ow` is column
    /// `ow·stride + kw`, i.e. entry `ow + kw / stride` of phase `kw % stride`.
    ///
    /// `scratch` is empty, or holds what this wrote for another plane of the same layer with the
    /// same `fill` (a scratch buffer of [`for_each_plane`] lives for one loop): the padding is the
    /// same for every plane, so it is written once, when the buffer is first sized, and each
    /// later plane only copies the image's values.
    #[inline(always)]
    fn fill_phases(&self, scratch: &mut Vec<f32>, plane: &[f32], phases: &[Span], fill: f32) {
        let row_len = self.stride * self.phase_width();
        let len = (self.h + self.pad[0] + self.pad[1]) * row_len;
        if scratch.len() != len {
            scratch.clear();
            scratch.resize(len, fill);
        }
        let rows = scratch[self.pad[0] * row_len..][..self.h * row_len].chunks_exact_mut(row_len);
        for (dst, src) in rows.zip(plane.chunks_exact(self.w)) {
            copy_phases(dst, src, phases, self.phase_width());
        }
    }

    /// The phases [`fill_phases`](Self::fill_phases) splits each padded row into.
    fn phases(&self) -> Vec<Span> {
        Span::phases(self.pad[2], self.stride, self.w, self.phase_width())
    }

    /// Offsets of the `k × k` taps from the start of an output row's first padded row.
    fn taps(&self) -> Vec<usize> {
        let (s, width) = (self.stride, self.phase_width());
        (0..self.k * self.k)
            .map(|t| {
                let (kh, kw) = (t / self.k, t % self.k);
                (kh * s + kw % s) * width + kw / s
            })
            .collect()
    }

    /// Depthwise convolution of one phased plane: `out = act(bias + Σ taps)`.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn conv_plane(&self, phased: &[f32], taps: &[usize], weights: &[f32], bias: f32, act: Activation, out: &mut [f32]) {
        let phased = Reach::new(self, phased, taps);
        self.chunks(
            out,
            #[inline(always)]
            |starts| {
                let mut accs = [[bias; LANES]; GROUP];
                for (&offset, &w) in taps.iter().zip(weights) {
                    for g in 0..GROUP {
                        // SAFETY: a chunk's start plus one of `taps` (what `Reach::new` checked).
                        mul_add(&mut accs[g], w, unsafe { phased.lanes(starts[g] + offset) });
                    }
                }
                for acc in &mut accs {
                    super::activate(act, acc);
                }
                accs
            },
        );
    }

    /// Max pooling of one phased plane (padded with -inf).
    #[inline(always)]
    #[allow(unsafe_code)]
    fn max_plane(&self, phased: &[f32], taps: &[usize], out: &mut [f32]) {
        let phased = Reach::new(self, phased, taps);
        self.chunks(
            out,
            #[inline(always)]
            |starts| {
                let mut accs = [[f32::NEG_INFINITY; LANES]; GROUP];
                for &offset in taps {
                    for g in 0..GROUP {
                        // SAFETY: a chunk's start plus one of `taps` (what `Reach::new` checked).
                        let (acc, src) = (&mut accs[g], unsafe { phased.lanes(starts[g] + offset) });
                        for l in 0..LANES {
                            acc[l] = if src[l] > acc[l] { src[l] } else { acc[l] };
                        }
                    }
                }
                accs
            },
        );
    }

    /// Runs `kernel(starts)` for the `LANES`-wide chunks of the output rows, `GROUP` chunks at a
    /// time (consecutive, across row ends: so that a plane of short rows has as many independent
    /// sums in flight as a wide one), and stores the valid part of the `GROUP` chunks it returns.
    /// `starts[g]` is chunk `g`'s offset in the phased plane (the last group repeats its final
    /// chunk where the plane has fewer left; the repeats are not stored). The chunks are returned
    /// by value, not written through a reference, so that they stay in registers (a reference
    /// must hold every partial sum before each bounds check that could panic).
    #[inline(always)]
    fn chunks(&self, out: &mut [f32], mut kernel: impl FnMut(&[usize; GROUP]) -> [[f32; LANES]; GROUP]) {
        let row_stride = self.row_stride();
        let per_row = self.ow.div_ceil(LANES);
        let total = self.oh * per_row;
        let (mut starts, mut dests) = ([0usize; GROUP], [0usize; GROUP]);
        // The next chunk: output row and chunk within it.
        let (mut oh, mut c) = (0, 0);
        for first in (0..total).step_by(GROUP) {
            let n = GROUP.min(total - first);
            for g in 0..GROUP {
                if g < n {
                    starts[g] = oh * row_stride + c * LANES;
                    dests[g] = oh * self.ow + c * LANES;
                    c += 1;
                    if c == per_row {
                        (oh, c) = (oh + 1, 0);
                    }
                } else {
                    (starts[g], dests[g]) = (starts[n - 1], dests[n - 1]);
                }
            }
            let accs = kernel(&starts);
            for g in 0..n {
                // A chunk that ends past its row writes into the next row's first chunk, which is
                // stored after it; only the plane's last chunk is cut short.
                match out.get_mut(dests[g]..dests[g] + LANES) {
                    Some(dst) => dst.copy_from_slice(&accs[g]),
                    None => {
                        let dst = &mut out[dests[g]..];
                        let len = dst.len();
                        dst.copy_from_slice(&accs[g][..len]);
                    }
                }
            }
        }
    }
}

/// A phased plane, checked once to hold every run of `LANES` values a window kernel reads (the
/// last chunk's, at its farthest tap), so that natively the reads themselves need no bounds
/// checks: per tap and chunk they were two compare-and-branch pairs around one multiply and one
/// add. In wasm the reads are checked each (see [`Reach::lanes`]).
struct Reach<'a>(&'a [f32]);

impl<'a> Reach<'a> {
    /// # Panics
    /// When `phased` is too short for `window`'s chunks and `taps`.
    #[inline(always)]
    fn new(window: &Window, phased: &'a [f32], taps: &[usize]) -> Self {
        #[cfg(not(target_family = "wasm"))]
        {
            let far = window.last_start() + taps.iter().copied().max().unwrap_or(0) + LANES;
            assert!(far <= phased.len(), "window kernel: {} phased values, {far} read", phased.len());
        }
        #[cfg(target_family = "wasm")]
        let _ = (window, taps);
        Self(phased)
    }

    /// The `LANES` values from `at`, as a slice (an array reference here left the release
    /// build's tap loop scalar: LLVM did not vectorise it, 1.7× slower).
    ///
    /// # Safety
    /// `at` is a chunk start of [`Window::chunks`] plus one of the taps given to [`Reach::new`].
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn lanes(&self, at: usize) -> &'a [f32] {
        debug_assert!(at + LANES <= self.0.len());
        // SAFETY: `at + LANES` is at most the `far` that `new` checked against the length.
        #[cfg(not(target_family = "wasm"))]
        let lanes = unsafe { self.0.get_unchecked(at..at + LANES) };
        // In wasm each read stays checked, as before `Reach`: with it the plain-SIMD build's
        // EfficientNet-Lite0 frame was 1.2× slower (the relaxed build's, explicit SIMD, the same).
        #[cfg(target_family = "wasm")]
        let lanes = &self.0[at..][..LANES];
        lanes
    }
}

/// Output chunks computed together by the window kernels (independent sums in flight).
const GROUP: usize = 4;

/// `acc[l] += w · src[l]` for every lane (`src` holds at least `LANES` values).
#[cfg(not(all(target_family = "wasm", target_feature = "relaxed-simd")))]
#[inline(always)]
fn mul_add(acc: &mut [f32; LANES], w: f32, src: &[f32]) {
    for l in 0..LANES {
        acc[l] += w * src[l];
    }
}

/// `acc[l] += w · src[l]` for every lane: the relaxed-SIMD build's, one fused multiply-add
/// (`f32x4.relaxed_madd`) per vector.
#[cfg(all(target_family = "wasm", target_feature = "relaxed-simd"))]
#[inline(always)]
fn mul_add(acc: &mut [f32; LANES], w: f32, src: &[f32]) {
    use core::arch::wasm32::{f32x4, f32x4_extract_lane, f32x4_relaxed_madd, f32x4_splat};
    let w = f32x4_splat(w);
    for (a, s) in acc.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let sum = f32x4_relaxed_madd(w, f32x4(s[0], s[1], s[2], s[3]), f32x4(a[0], a[1], a[2], a[3]));
        a.copy_from_slice(&[
            f32x4_extract_lane::<0>(sum),
            f32x4_extract_lane::<1>(sum),
            f32x4_extract_lane::<2>(sum),
            f32x4_extract_lane::<3>(sum),
        ]);
    }
}

/// The range `lo..hi` (within `0..limit`) of positions `j` whose input column
/// `j·stride + offset - pad` lies inside `0..size`.
#[inline(always)]
fn inside(pad: usize, offset: usize, stride: usize, size: usize, limit: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(offset).div_ceil(stride).min(limit);
    let hi = (size + pad).saturating_sub(offset).div_ceil(stride).min(limit).max(lo);
    (lo, hi)
}

/// One row of a padded, strided view of image rows: entry `j` is column `j·stride + offset -
/// left` of the image row where that lies inside it, the padding value elsewhere. Which
/// entries those are is the same for every row of a plane, so it is worked out once (two
/// divisions) and not per row, where it was the hottest part of the padded copies.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    /// Entries `lo..hi` come from the image row...
    lo: usize,
    hi: usize,
    /// ...starting at its column `first`, every `stride`.
    first: usize,
    stride: usize,
    /// The view's width.
    len: usize,
}

impl Span {
    /// The view, `len` wide, of `src_len`-wide image rows.
    pub(super) fn new(left: usize, offset: usize, stride: usize, src_len: usize, len: usize) -> Self {
        let (lo, hi) = inside(left, offset, stride, src_len, len);
        let first = (lo * stride + offset).saturating_sub(left);
        Self { lo, hi, first, stride, len }
    }

    /// The `stride` phases of one padded row `width` wide each (phase `p` holds padded columns
    /// `p, p + stride, …`), of `src_len`-wide image rows padded by `left`.
    pub(super) fn phases(left: usize, stride: usize, src_len: usize, width: usize) -> Vec<Self> {
        (0..stride).map(|p| Self::new(left, p, stride, src_len, width)).collect()
    }

    /// Writes the view of `src` (`None`: a padding row) into `dst`, `fill` in the padding.
    ///
    /// # Panics
    /// When `dst` is not the view's width or `src` is shorter than the image rows.
    #[inline(always)]
    pub(super) fn copy(&self, dst: &mut [f32], src: Option<&[f32]>, fill: f32) {
        assert_eq!(dst.len(), self.len, "strided row: width");
        match src {
            Some(src) => {
                dst[..self.lo].fill(fill);
                dst[self.hi..].fill(fill);
                self.copy_inside(dst, src);
            }
            None => dst.fill(fill),
        }
    }

    /// Writes the entries of the view that come from `src` into `dst`, leaving the padding as it
    /// was.
    ///
    /// # Panics
    /// As [`copy`](Self::copy).
    #[inline(always)]
    fn copy_inside(&self, dst: &mut [f32], src: &[f32]) {
        let (lo, hi, stride) = (self.lo, self.hi, self.stride);
        let n = hi - lo;
        if n == 0 {
            return;
        }
        let (dst, src) = (&mut dst[lo..hi], &src[self.first..]);
        if stride == 1 {
            dst.copy_from_slice(&src[..n]);
            return;
        }
        // Whole strides first, then the last one. With the stride a constant the loop vectorises
        // (loads and shuffles); with a variable one it is a scalar copy per value, which was the
        // hottest loop of the native depthwise kernels' padded copies.
        let (body, last) = dst.split_at_mut(n - 1);
        match stride {
            2 => every_nth::<2>(body, src),
            4 => every_nth::<4>(body, src),
            _ => body.iter_mut().zip(src.chunks_exact(stride)).for_each(|(d, chunk)| *d = chunk[0]),
        }
        last[0] = src[(n - 1) * stride];
    }
}

/// Copies image row `src` into the phases (each `width` wide, see [`Span::phases`]) of one
/// padded row `dst`, leaving their padding as it was.
#[inline(always)]
pub(super) fn copy_phases(dst: &mut [f32], src: &[f32], phases: &[Span], width: usize) {
    for (p, span) in phases.iter().enumerate() {
        span.copy_inside(&mut dst[p * width..][..width], src);
    }
}

/// `dst[j] = src[j·S]` for every `j` of `dst` (`src` holds at least `dst.len()·S` values).
#[inline(always)]
fn every_nth<const S: usize>(dst: &mut [f32], src: &[f32]) {
    for (d, chunk) in dst.iter_mut().zip(src.chunks_exact(S)) {
        *d = chunk[0];
    }
}

/// Runs `f(plane index, output plane, scratch)` for every output plane: in parallel natively
/// (each call a task: the products it makes do not fork, see `pool.rs`), in order in wasm (one
/// thread). Each worker keeps its own scratch buffer. Natively each call
/// runs through [`vectorized`]: when `f` is an `#[inline(always)]` closure, it and the kernels
/// it calls are compiled for AVX2 as well (the matrix products' closure is not: `gemm` chooses
/// its own kernels).
pub(super) fn for_each_plane(
    out: &mut [f32],
    plane_len: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Send + Sync,
) {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(plane_len).enumerate().for_each_init(Vec::new, |scratch, (c, plane)| {
            super::pool::in_task(
                #[inline(always)]
                || {
                    vectorized(
                        #[inline(always)]
                        || f(c, plane, scratch),
                    )
                },
            )
        });
    }
    #[cfg(target_family = "wasm")]
    {
        let mut scratch = Vec::new();
        for (c, plane) in out.chunks_mut(plane_len).enumerate() {
            f(c, plane, &mut scratch);
        }
    }
}

/// `len` zeros. Natively a large buffer is written by all of rayon's threads (a serial fill of a
/// layer's output left the other cores idle for ≈ a fifth of a frame, with the passes below).
pub(super) fn zeros(len: usize) -> Vec<f32> {
    #[cfg(not(target_family = "wasm"))]
    if len >= 1 << 16 {
        use rayon::prelude::*;
        let mut v = Vec::with_capacity(len);
        v.par_extend(rayon::iter::repeat_n(0.0f32, len));
        return v;
    }
    vec![0.0; len]
}

/// Makes `buffer` `len` long for a kernel that writes every element before reading it: its
/// contents are not kept (when it grows it is replaced by [`zeros`]).
pub(super) fn resize_scratch(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        *buffer = zeros(len);
    } else {
        buffer.truncate(len);
    }
}

/// Runs `f` (natively), on x86-64 compiled for AVX2 where the CPU has it (detected once; then a
/// cached flag per call). The kernels' `LANES` are one AVX register instead of two SSE ones; the
/// arithmetic is the same (no fused multiply-add), so results are identical either way. Only
/// code inlined into `f` is compiled for AVX2: the kernels below are `#[inline(always)]`, and so
/// are the closures passed here.
#[cfg(not(target_family = "wasm"))]
#[inline(always)]
pub(super) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX2 (checked just above), the only requirement of `avx2`.
        #[allow(unsafe_code)]
        return unsafe { avx2(f) };
    }
    f()
}

/// Depthwise convolution of one image: `x` `[c, h, w]`, `weight` `[c, 1, k, k]`, `out` `[c, oh, ow]`.
pub(super) fn depthwise_conv(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    window: &Window,
    act: Activation,
    out: &mut [f32],
) {
    let kk = window.k * window.k;
    let (taps, phases) = (window.taps(), window.phases());
    for_each_plane(
        out,
        window.out_len(),
        #[inline(always)]
        |c, plane_out, scratch| {
            window.fill_phases(scratch, &x[c * window.in_len()..(c + 1) * window.in_len()], &phases, 0.0);
            window.conv_plane(scratch, &taps, &weight[c * kk..(c + 1) * kk], bias[c], act, plane_out);
        },
    );
}

/// Max pooling of `planes` consecutive `h × w` planes of `x`.
pub(super) fn max_pool(x: &[f32], planes: usize, window: &Window) -> Vec<f32> {
    let mut out = zeros(planes * window.out_len());
    let (taps, phases) = (window.taps(), window.phases());
    for_each_plane(
        &mut out,
        window.out_len(),
        #[inline(always)]
        |c, plane_out, scratch| {
            let plane = &x[c * window.in_len()..(c + 1) * window.in_len()];
            window.fill_phases(scratch, plane, &phases, f32::NEG_INFINITY);
            window.max_plane(scratch, &taps, plane_out);
        },
    );
    out
}
