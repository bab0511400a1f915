//! CPU kernels for burn's `flex` backend, plugged in through a burn backend extension.
//!
//! A profile of the CPU path (in Chromium, wasm SIMD128, one thread) showed that a third of an
//! EfficientNet-Lite0 frame went into two things burn's generic operators do one at a time: the
//! ReLU6 after every convolution (a separate, scalar `clamp` pass over the activations) and the
//! depthwise convolutions (a scalar gather for stride 2). NanoDet-g's 3×3 convolutions spent a
//! further 13 % re-laying out their input (NCHW → NHWC, im2col, then a scatter back). These
//! kernels fuse bias and activation into the convolution and keep every inner loop contiguous
//! so that it vectorises; 3×3 stride-1 convolutions use Winograd's F(2×2, 3×3) (`winograd.rs`).
//! The matrix products go through the `gemm` crate natively, as in flex, and through a smaller
//! register-blocked kernel in wasm (`sgemm.rs`).
//!
//! The kernels only run for tensors on the flex device; the WebGPU/wgpu path keeps burn's own
//! operators (see `layers.rs`). Anything these kernels do not cover (other dtypes, dilation,
//! grouped but not depthwise convolutions) falls back to flex.

use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, Scalar, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use burn_flex::FlexTensor;

use super::layers::Activation;

mod sgemm;
mod winograd;

/// Operations with a dedicated CPU kernel. Only the flex backend implements them.
#[backend_extension(Flex: cfg(all()))]
pub trait CpuKernels: Backend {
    /// `act(conv2d(x, weight) + bias)` in one pass over the output.
    fn conv2d_act(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// Max pooling with a square `kernel`, `stride` and symmetric `pad` (padding never wins).
    fn max_pool2d_square(x: FloatTensor<Self>, kernel: usize, stride: usize, pad: usize) -> FloatTensor<Self>;
}

impl CpuKernels for Flex {
    fn conv2d_act(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FlexTensor {
        let x = x.to_contiguous();
        let weight = weight.to_contiguous();
        let bias = bias.to_contiguous();
        let xs = x.layout().shape().to_vec();
        let ws = weight.layout().shape().to_vec();
        let window = Window::for_conv(&xs, &ws, &options);
        let slices = (x.as_slice::<f32>(), weight.as_slice::<f32>(), bias.as_slice::<f32>());
        if let (Some(window), (Some(xd), Some(wd), Some(bd))) = (window, slices) {
            let (batch, cin, cout) = (xs[0], xs[1], ws[0]);
            let depthwise = options.groups == cin && cout == cin && ws[1] == 1;
            if depthwise || options.groups == 1 {
                // Each path writes every output value; only the matrix-product path reads its
                // output first (it accumulates onto the bias), so only it starts from values.
                let per_image = cout * window.out_len();
                let mut out = Vec::with_capacity(batch * per_image);
                for xb in xd.chunks_exact(cin * window.in_len()) {
                    let start = out.len();
                    if depthwise {
                        out.resize(start + per_image, 0.0);
                        depthwise_conv(xb, wd, bd, &window, act, &mut out[start..]);
                    } else if winograd::applies(&window) {
                        out.resize(start + per_image, 0.0);
                        winograd::conv(xb, wd, bd, cin, cout, &window, act, &mut out[start..]);
                    } else {
                        for &b in &bd[..cout] {
                            out.resize(out.len() + window.out_len(), b);
                        }
                        gemm_conv(xb, wd, cin, cout, &window, act, &mut out[start..]);
                    }
                }
                return from_vec(out, vec![batch, cout, window.oh, window.ow]);
            }
        }
        // Not covered here: flex's own operators, one after the other.
        let y = Flex::conv2d(x, weight, Some(bias), options);
        match act {
            Activation::Identity => y,
            Activation::Relu6 => Flex::float_clamp(y, Scalar::from(0.0), Scalar::from(6.0)),
            Activation::LeakyRelu(slope) => Flex::leaky_relu(y, Scalar::from(slope)),
        }
    }

    fn max_pool2d_square(x: FlexTensor, kernel: usize, stride: usize, pad: usize) -> FlexTensor {
        let x = x.to_contiguous();
        let xs = x.layout().shape().to_vec();
        let options = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
        let window = Window::for_conv(&xs, &[xs[1], 1, kernel, kernel], &options);
        if let (Some(window), Some(xd)) = (window, x.as_slice::<f32>())
            && pad < kernel
        {
            let planes = xs[0] * xs[1];
            let mut out = vec![0.0f32; planes * window.out_len()];
            let taps = window.taps();
            for_each_plane(&mut out, window.out_len(), |c, plane_out, scratch| {
                let plane = &xd[c * window.in_len()..(c + 1) * window.in_len()];
                window.fill_phases(scratch, plane, f32::NEG_INFINITY);
                window.max_plane(scratch, &taps, plane_out);
            });
            return from_vec(out, vec![xs[0], xs[1], window.oh, window.ow]);
        }
        Flex::max_pool2d(x, [kernel; 2], [stride; 2], [pad; 2], [1, 1], false)
    }
}

/// Whether tensors on `device` can use these kernels (flex only).
pub(super) fn runs_on(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Flex(_))
}

/// `act(conv.forward(x))` in one fused kernel; `x` must be on the flex device.
pub(super) fn conv2d_act(conv: &Conv2d, x: Tensor<4>, act: Activation) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let options = ConvOptions::new_with_padding(conv.stride, padding_pairs(conv, h, w), conv.dilation, conv.groups);
    let weight = conv.weight.val();
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([weight.dims()[0]], &x.device()),
    };
    Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_act(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        options,
        act,
    ))
}

/// `[(top, bottom), (left, right)]` as burn's `Conv2d::forward` computes it (its helper is
/// crate-private): TF/ONNX "SAME" puts the odd pixel at the bottom/right.
fn padding_pairs(conv: &Conv2d, h: usize, w: usize) -> [(usize, usize); 2] {
    let same = |size: usize, k: usize, s: usize| {
        let total = ((size.div_ceil(s).max(1) - 1) * s + k).saturating_sub(size);
        (total / 2, total - total / 2)
    };
    match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => {
            [same(h, conv.kernel_size[0], conv.stride[0]), same(w, conv.kernel_size[1], conv.stride[1])]
        }
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    }
}

/// Max pooling (square window, symmetric padding); `x` must be on the flex device.
pub(super) fn max_pool2d(x: Tensor<4>, kernel: usize, stride: usize, pad: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::max_pool2d_square(x.into_dispatch(), kernel, stride, pad))
}

fn from_vec(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl Activation {
    /// Applies the activation to every value in place (one tight loop per kind, so it vectorises).
    pub(super) fn apply_slice(self, values: &mut [f32]) {
        match self {
            Activation::Identity => {}
            // Comparisons rather than `f32::clamp`/`max`: they map to SIMD selects (flex's
            // `clamp` did not vectorise in wasm and took a fifth of an EfficientNet frame).
            #[allow(clippy::manual_clamp)]
            Activation::Relu6 => values.iter_mut().for_each(|v| {
                *v = if *v < 0.0 {
                    0.0
                } else if *v > 6.0 {
                    6.0
                } else {
                    *v
                }
            }),
            Activation::LeakyRelu(slope) => {
                let slope = slope as f32;
                values.iter_mut().for_each(|v| *v = if *v >= 0.0 { *v } else { slope * *v });
            }
        }
    }
}

/// Lanes computed together by the window kernels: two 128-bit vectors in wasm, one AVX vector natively.
const LANES: usize = 8;

/// Geometry of a square window (convolution or pooling) sliding over one `h × w` plane.
#[derive(Debug, Clone, Copy)]
struct Window {
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    /// Top, bottom, left, right.
    pad: [usize; 4],
    oh: usize,
    ow: usize,
}

impl Window {
    /// The geometry of `options` over input `[n, c, h, w]` and weight `[o, i, k, k]`, or `None`
    /// when the kernels here do not cover it (dilation, non-square kernels or strides, empty output).
    fn for_conv(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Option<Self> {
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

    fn in_len(&self) -> usize {
        self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.oh * self.ow
    }

    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == [0; 4]
    }

    /// Floats per column phase of one padded row: wide enough that every `LANES`-wide read of
    /// the last output chunk stays inside the row.
    fn phase_width(&self) -> usize {
        let padded = self.w + self.pad[2] + self.pad[3];
        padded.div_ceil(self.stride).max(self.ow + (self.k - 1) / self.stride) + LANES
    }

    /// Copies `plane` into `scratch`, padded with `fill` and with each padded row split into
    /// `stride` phases (phase `p` holds columns `p, p + stride, …`), so that every window tap of
    /// consecutive outputs reads a contiguous run: tap `kw` of output `ow` is column
    /// `ow·stride + kw`, i.e. entry `ow + kw / stride` of phase `kw % stride`.
    fn fill_phases(&self, scratch: &mut Vec<f32>, plane: &[f32], fill: f32) {
        let (s, width) = (self.stride, self.phase_width());
        let [top, _, left, _] = self.pad;
        let rows = self.h + self.pad[0] + self.pad[1];
        if scratch.len() < rows * s * width {
            scratch.resize(rows * s * width, fill);
        }
        for (r, row) in scratch[..rows * s * width].chunks_exact_mut(s * width).enumerate() {
            let src = (r >= top && r - top < self.h).then(|| &plane[(r - top) * self.w..][..self.w]);
            phased_row(row, src, left, s, width, fill);
        }
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
    fn conv_plane(&self, phased: &[f32], taps: &[usize], weights: &[f32], bias: f32, act: Activation, out: &mut [f32]) {
        self.rows(out, |row_base, ow0, acc: &mut [f32; LANES]| {
            *acc = [bias; LANES];
            for (&offset, &w) in taps.iter().zip(weights) {
                let src = &phased[row_base + offset + ow0..][..LANES];
                for l in 0..LANES {
                    acc[l] += w * src[l];
                }
            }
        });
        act.apply_slice(out);
    }

    /// Max pooling of one phased plane (padded with -inf).
    fn max_plane(&self, phased: &[f32], taps: &[usize], out: &mut [f32]) {
        self.rows(out, |row_base, ow0, acc: &mut [f32; LANES]| {
            *acc = [f32::NEG_INFINITY; LANES];
            for &offset in taps {
                let src = &phased[row_base + offset + ow0..][..LANES];
                for l in 0..LANES {
                    acc[l] = if src[l] > acc[l] { src[l] } else { acc[l] };
                }
            }
        });
    }

    /// Runs `chunk(row_base, ow0, acc)` for every `LANES`-wide chunk of every output row and
    /// stores the valid part of `acc`.
    fn rows(&self, out: &mut [f32], mut chunk: impl FnMut(usize, usize, &mut [f32; LANES])) {
        let row_stride = self.stride * self.stride * self.phase_width();
        let mut acc = [0.0f32; LANES];
        for (oh, out_row) in out.chunks_exact_mut(self.ow).enumerate() {
            for (c, dst) in out_row.chunks_mut(LANES).enumerate() {
                chunk(oh * row_stride, c * LANES, &mut acc);
                match <&mut [f32; LANES]>::try_from(&mut *dst) {
                    Ok(full) => *full = acc,
                    Err(_) => dst.copy_from_slice(&acc[..dst.len()]),
                }
            }
        }
    }
}

/// The range `lo..hi` (within `0..limit`) of positions `j` whose input column
/// `j·stride + offset - pad` lies inside `0..size`.
fn inside(pad: usize, offset: usize, stride: usize, size: usize, limit: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(offset).div_ceil(stride).min(limit);
    let hi = (size + pad).saturating_sub(offset).div_ceil(stride).min(limit).max(lo);
    (lo, hi)
}

/// One padded row split into `stride` phases of `width` values: entry `j` of phase `p` is padded
/// column `j·stride + p`. `src` is the image row (`None` for a padding row).
fn phased_row(dst: &mut [f32], src: Option<&[f32]>, left: usize, stride: usize, width: usize, fill: f32) {
    for (p, phase) in dst.chunks_exact_mut(width).enumerate() {
        strided_row(phase, src, left, p, stride, fill);
    }
}

/// `dst[j] = src[j·stride + offset - left]` where that lies inside `src`, `fill` elsewhere (and
/// everywhere when `src` is `None`): one row of a padded, strided view of an image row.
fn strided_row(dst: &mut [f32], src: Option<&[f32]>, left: usize, offset: usize, stride: usize, fill: f32) {
    let Some(src) = src else {
        dst.fill(fill);
        return;
    };
    let (lo, hi) = inside(left, offset, stride, src.len(), dst.len());
    dst[..lo].fill(fill);
    dst[hi..].fill(fill);
    let (dst, src) = (&mut dst[lo..hi], &src[lo * stride + offset - left..]);
    let n = dst.len();
    if n == 0 {
        return;
    }
    if stride == 1 {
        dst.copy_from_slice(&src[..n]);
        return;
    }
    // Whole strides first (a plain loop over fixed-size chunks vectorises), then the last one.
    let (body, last) = dst.split_at_mut(n - 1);
    for (d, chunk) in body.iter_mut().zip(src.chunks_exact(stride)) {
        *d = chunk[0];
    }
    last[0] = src[(n - 1) * stride];
}

/// Runs `f(plane index, output plane, scratch)` for every output plane: in parallel natively,
/// in order in wasm (one thread). Each worker keeps its own scratch buffer.
fn for_each_plane(out: &mut [f32], plane_len: usize, f: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Send + Sync) {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(plane_len).enumerate().for_each_init(Vec::new, |scratch, (c, plane)| f(c, plane, scratch));
    }
    #[cfg(target_family = "wasm")]
    {
        let mut scratch = Vec::new();
        for (c, plane) in out.chunks_mut(plane_len).enumerate() {
            f(c, plane, &mut scratch);
        }
    }
}

/// Depthwise convolution of one image: `x` `[c, h, w]`, `weight` `[c, 1, k, k]`, `out` `[c, oh, ow]`.
fn depthwise_conv(x: &[f32], weight: &[f32], bias: &[f32], window: &Window, act: Activation, out: &mut [f32]) {
    let kk = window.k * window.k;
    let taps = window.taps();
    for_each_plane(out, window.out_len(), |c, plane_out, scratch| {
        window.fill_phases(scratch, &x[c * window.in_len()..(c + 1) * window.in_len()], 0.0);
        window.conv_plane(scratch, &taps, &weight[c * kk..(c + 1) * kk], bias[c], act, plane_out);
    });
}

/// Output columns per matrix product: big enough to amortise packing the weights, small enough
/// that the im2col tile (`cin·k² × columns`) stays within a few MB.
const TILE_COLUMNS: usize = 2048;
const TILE_FLOATS: usize = 1 << 20;

/// Dense convolution of one image as matrix products, `out = act(W · im2col(x) + out)` where
/// `out` arrives holding the bias: `x` `[cin, h, w]`, `weight` `[cout, cin, k, k]` (already the
/// `[cout, cin·k²]` matrix), `out` `[cout, oh·ow]`, written directly in NCHW, tile by tile of
/// whole output rows.
fn gemm_conv(x: &[f32], weight: &[f32], cin: usize, cout: usize, window: &Window, act: Activation, out: &mut [f32]) {
    let depth = cin * window.k * window.k;
    let columns = window.out_len();
    let tile_columns = TILE_COLUMNS.min(TILE_FLOATS / depth.max(1));
    let rows_per_tile = (tile_columns / window.ow).clamp(1, window.oh);
    let mut col = Vec::new();
    for oh0 in (0..window.oh).step_by(rows_per_tile) {
        let rows = rows_per_tile.min(window.oh - oh0);
        let (c0, n) = (oh0 * window.ow, rows * window.ow);
        if window.is_pointwise() {
            matmul_acc(cout, n, depth, &mut out[c0..], columns, weight, &x[c0..], columns);
        } else {
            im2col(x, cin, window, oh0, rows, &mut col);
            matmul_acc(cout, n, depth, &mut out[c0..], columns, weight, &col, n);
        }
        for row in out.chunks_exact_mut(columns) {
            act.apply_slice(&mut row[c0..c0 + n]);
        }
    }
}

/// `col[(ci·k + kh)·k + kw][r·ow + ow'] = x[ci][ih][iw]` for output rows `oh0..oh0 + rows`,
/// zero where the window reaches into the padding.
fn im2col(x: &[f32], cin: usize, g: &Window, oh0: usize, rows: usize, col: &mut Vec<f32>) {
    let n = rows * g.ow;
    // Every element is written below (zeros in the padding), so the buffer is only resized.
    col.resize(cin * g.k * g.k * n, 0.0);
    let [top, _, left, _] = g.pad;
    for (row, dst) in col.chunks_exact_mut(n).enumerate() {
        let (ci, kh, kw) = (row / (g.k * g.k), row / g.k % g.k, row % g.k);
        for (r, d) in dst.chunks_exact_mut(g.ow).enumerate() {
            let ih = (oh0 + r) * g.stride + kh;
            let src = (ih >= top && ih - top < g.h).then(|| &x[(ci * g.h + ih - top) * g.w..][..g.w]);
            strided_row(d, src, left, kw, g.stride, 0.0);
        }
    }
}

/// `dst[i·dst_rs + j] += Σ_p lhs[i·k + p] · rhs[p·rhs_rs + j]` for `i < m`, `j < n`: the `gemm`
/// crate natively (the kernels flex uses, multithreaded), `sgemm` in wasm.
#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn matmul_acc(m: usize, n: usize, k: usize, dst: &mut [f32], dst_rs: usize, lhs: &[f32], rhs: &[f32], rhs_rs: usize) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(n <= dst_rs && n <= rhs_rs, "matmul_acc: row strides shorter than a row");
    assert!(lhs.len() >= m * k, "matmul_acc: lhs too short");
    assert!(rhs.len() >= (k - 1) * rhs_rs + n, "matmul_acc: rhs too short");
    assert!(dst.len() >= (m - 1) * dst_rs + n, "matmul_acc: dst too short");
    if cfg!(target_family = "wasm") {
        return sgemm::sgemm_acc(m, n, k, lhs, rhs, rhs_rs, dst, dst_rs);
    }
    #[cfg(not(target_family = "wasm"))]
    let parallelism = gemm::Parallelism::Rayon(0);
    #[cfg(target_family = "wasm")]
    let parallelism = gemm::Parallelism::None;
    // SAFETY: the asserts above keep every element the call reads (lhs: m×k with row stride k,
    // rhs: k×n with row stride rhs_rs, column stride 1) and writes (dst: m×n with row stride
    // dst_rs) inside the three slices; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::module::{conv2d, max_pool2d};
    use burn::tensor::ops::MaxPoolOptions;

    use super::*;

    /// burn's own operators on flex: the reference the kernels must match.
    fn reference(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, options: ConvOptions<2>, act: Activation) -> Tensor<4> {
        act.apply(conv2d(x, w, Some(b), options))
    }

    fn kernel(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, options: ConvOptions<2>, act: Activation) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_act(
            x.into_dispatch(),
            w.into_dispatch(),
            b.into_dispatch(),
            options,
            act,
        ))
    }

    /// `|a - b| ≤ 1e-5 · scale`, where `scale` is the largest magnitude in `b` or in `before`
    /// (the values before a clamping activation, whose rounding errors survive it).
    fn assert_close_to(a: Tensor<4>, b: Tensor<4>, before: Option<&Tensor<4>>, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        let largest = |t: &Tensor<4>| t.clone().abs().max().into_scalar::<f32>();
        let scale = largest(&b).max(before.map_or(1.0, largest)).max(1.0);
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        let worst = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= 1e-5 * scale, "{what}: max |Δ| {worst} (scale {scale})");
    }

    fn assert_close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        assert_close_to(a, b, None, what);
    }

    #[test]
    fn convolutions_match_burn() {
        let device = Device::flex();
        // (cin, cout, groups, k, stride, h, w, padding)
        let cases = [
            (3, 8, 1, 3, 2, 17, 23, [(1, 1), (1, 1)]),
            (6, 5, 1, 1, 1, 9, 11, [(0, 0), (0, 0)]),
            (4, 7, 1, 3, 1, 5, 40, [(1, 1), (1, 1)]),
            // Winograd over several bands of tiles, odd output sizes, asymmetric padding.
            (128, 8, 1, 3, 1, 101, 37, [(1, 1), (1, 1)]),
            (3, 5, 1, 3, 1, 6, 9, [(0, 2), (2, 0)]),
            (8, 8, 8, 3, 1, 14, 14, [(1, 1), (1, 1)]),
            (8, 8, 8, 5, 2, 15, 15, [(1, 2), (1, 2)]),
            (8, 8, 8, 3, 2, 16, 9, [(0, 1), (0, 1)]),
            (5, 5, 5, 5, 1, 7, 7, [(2, 2), (2, 2)]),
            (4, 4, 4, 3, 1, 30, 70, [(1, 1), (1, 1)]),
            // Not covered by the kernels (grouped, not depthwise): falls back to flex.
            (4, 6, 2, 3, 1, 8, 8, [(1, 1), (1, 1)]),
        ];
        for (i, (cin, cout, groups, k, stride, h, w, padding)) in cases.into_iter().enumerate() {
            let x = Tensor::<4>::random([2, cin, h, w], Distribution::Normal(0.0, 2.0), &device);
            let wt = Tensor::<4>::random([cout, cin / groups, k, k], Distribution::Normal(0.0, 1.0), &device);
            let b = Tensor::<1>::random([cout], Distribution::Normal(0.0, 1.0), &device);
            let options = ConvOptions::new_with_padding([stride; 2], padding, [1, 1], groups);
            let linear = reference(x.clone(), wt.clone(), b.clone(), options.clone(), Activation::Identity);
            for act in [Activation::Identity, Activation::Relu6, Activation::LeakyRelu(0.1)] {
                let want = reference(x.clone(), wt.clone(), b.clone(), options.clone(), act);
                let got = kernel(x.clone(), wt.clone(), b.clone(), options.clone(), act);
                assert_close_to(got, want, Some(&linear), &format!("case {i} {act:?}"));
            }
        }
    }

    #[test]
    fn module_padding_is_reproduced() {
        // TF "SAME" with stride 2 pads asymmetrically; the wrapper must agree with Conv2d::forward.
        let device = Device::flex();
        for (padding, k, s, groups, size) in [
            (PaddingConfig2d::Same, 5, 2, 6, 14),
            (PaddingConfig2d::Same, 3, 2, 6, 15),
            (PaddingConfig2d::Same, 3, 1, 1, 9),
            (PaddingConfig2d::Explicit(1, 0, 2, 1), 3, 1, 6, 10),
            (PaddingConfig2d::Valid, 3, 2, 1, 11),
        ] {
            let conv = burn::nn::conv::Conv2dConfig::new([6, 6], [k, k])
                .with_stride([s, s])
                .with_groups(groups)
                .with_padding(padding.clone())
                .init(&device);
            let x = Tensor::<4>::random([1, 6, size, size + 3], Distribution::Normal(0.0, 1.0), &device);
            let want = Activation::Relu6.apply(conv.forward(x.clone()));
            assert_close(conv2d_act(&conv, x, Activation::Relu6), want, &format!("{padding:?} k{k} s{s}"));
        }
    }

    #[test]
    fn max_pool_matches_burn() {
        let device = Device::flex();
        for (h, w, k, s, p) in [(19, 23, 3, 2, 1), (8, 8, 2, 2, 0), (13, 9, 3, 1, 1)] {
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
            let want = max_pool2d(x.clone(), MaxPoolOptions::new([k, k]).with_stride([s, s]).with_padding([p, p]));
            let got = super::max_pool2d(x, k, s, p);
            assert_close(got, want, &format!("max pool {h}×{w} k{k} s{s} p{p}"));
        }
    }
}
