//! CPU kernels for burn's `flex` backend, plugged in through a burn backend extension.
//!
//! burn's generic operators run a convolution, its bias and its activation as separate passes,
//! gather depthwise windows element by element, and re-lay out every dense convolution's input.
//! These kernels fuse bias and activation into the convolution, write NCHW directly, and keep
//! every inner loop contiguous so that it vectorises (wasm SIMD128; natively SSE, and AVX2 where the
//! CPU has it: the per-plane kernels are compiled twice and chosen at run time, `window::vectorized`):
//! - `window.rs`: the geometry of a sliding window over one plane, depthwise convolution and max
//!   pooling over a padded, stride-phased copy of each plane;
//! - `conv.rs`: dense convolutions as matrix products (1×1 directly, others through im2col);
//! - `winograd.rs`: 3×3 stride-1 convolutions by Winograd's F(4×4, 3×3);
//! - `matmul.rs` / `sgemm.rs`: the matrix product (the `gemm` crate natively, a register-blocked
//!   kernel in wasm);
//! - `resample.rs`: bilinear resampling with half-pixel centres (NanoDet-g's PAN);
//! - `head.rs`: a detection head's planes as rows of cells, scores through the sigmoid;
//! - `pool.rs`: natively, a forward pass moved onto rayon's pool once, so that the loops above
//!   start there.
//!
//! The kernels only run for tensors on the flex device; the layers in `layers.rs` choose between
//! them and burn's operators. Anything not covered here (other dtypes, dilation, grouped but not
//! depthwise convolutions) falls back to flex's own operators. Measured effects are in README.md
//! and DESIGN.md, not here.

use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, Scalar, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Shape, Tensor, TensorData};
use burn_flex::FlexTensor;
use std::sync::{Arc, OnceLock};

use super::activation::Activation;
pub(super) use pool::on_pool;
use window::Window;

mod conv;
mod head;
mod matmul;
mod pool;
mod resample;
// The wasm matrix product; natively it is compiled only for its unit test.
#[cfg(any(target_family = "wasm", test))]
mod sgemm;
mod window;
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

    /// The Winograd transform of a 3×3 filter bank (`weight` `[cout, cin, 3, 3]` → `[36, cout,
    /// cin]`), for [`conv2d_act_winograd`](CpuKernels::conv2d_act_winograd).
    fn winograd_weights(weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// [`conv2d_act`](CpuKernels::conv2d_act) of a 3×3 stride-1 convolution whose filters `weight`
    /// are transformed already (`u`, from `winograd_weights(weight)`); any other convolution (or
    /// a `u` of another shape) runs as `conv2d_act(x, weight, bias, options, act)`.
    fn conv2d_act_winograd(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        u: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// Max pooling with a square `kernel`, `stride` and symmetric `pad` (padding never wins).
    fn max_pool2d_square(x: FloatTensor<Self>, kernel: usize, stride: usize, pad: usize) -> FloatTensor<Self>;

    /// Bilinear resampling to `size` with half-pixel centres (`align_corners = false`).
    fn resize_bilinear(x: FloatTensor<Self>, size: [usize; 2]) -> FloatTensor<Self>;

    /// `x · weight + bias`: `x` `[b, in]`, `weight` `[in, out]` (burn's `Linear` layout), `bias`
    /// `[out]` → `[b, out]`.
    fn linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `1 / (1 + e^-x)` for every value (vectorised; flex's runs the scalar `expf` per value).
    fn sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// A detection head's three levels `[b, width, h, w]` (f32) as one `[b, cells, width]` tensor
    /// (per image the cells of `a`, then `b`, then `c`, each level's row-major), the first
    /// `classes` values of every cell through the sigmoid: one pass, in parallel over rows of
    /// cells, instead of a transpose, a sigmoid and two concatenations one after the other.
    fn head_cells(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        classes: usize,
    ) -> FloatTensor<Self>;
}

impl CpuKernels for Flex {
    fn conv2d_act(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FlexTensor {
        conv_kernel(x, weight, None, bias, options, act)
    }

    fn winograd_weights(weight: FlexTensor) -> FlexTensor {
        let weight = weight.to_contiguous();
        let ws = weight.layout().shape().to_vec();
        let values = weight.as_slice::<f32>().expect("winograd_weights: f32 weights");
        let &[cout, cin, 3, 3] = ws.as_slice() else { panic!("winograd_weights: {ws:?} is not a 3×3 filter bank") };
        from_vec(winograd::transform_weights(values, cin, cout), vec![winograd::XI, cout, cin])
    }

    fn conv2d_act_winograd(
        x: FlexTensor,
        weight: FlexTensor,
        u: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FlexTensor {
        conv_kernel(x, weight, Some(u.to_contiguous()), bias, options, act)
    }

    fn max_pool2d_square(x: FlexTensor, kernel: usize, stride: usize, pad: usize) -> FlexTensor {
        let x = x.to_contiguous();
        let xs = x.layout().shape().to_vec();
        let options = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
        let window = Window::for_conv(&xs, &[xs[1], 1, kernel, kernel], &options);
        if let (Some(window), Some(xd)) = (window, x.as_slice::<f32>())
            && pad < kernel
        {
            let out = window::max_pool(xd, xs[0] * xs[1], &window);
            return from_vec(out, vec![xs[0], xs[1], window.oh, window.ow]);
        }
        Flex::max_pool2d(x, [kernel; 2], [stride; 2], [pad; 2], [1, 1], false)
    }

    fn resize_bilinear(x: FlexTensor, size: [usize; 2]) -> FlexTensor {
        let x = x.to_contiguous();
        let xs = x.layout().shape().to_vec();
        if let (&[n, c, h, w], Some(xd)) = (xs.as_slice(), x.as_slice::<f32>()) {
            let out = resample::bilinear(xd, n * c, (h, w), (size[0], size[1]));
            return from_vec(out, vec![n, c, size[0], size[1]]);
        }
        let options = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
        Flex::interpolate(x, size, options)
    }

    fn linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let (x, weight, bias) = (x.to_contiguous(), weight.to_contiguous(), bias.to_contiguous());
        let (xs, ws) = (x.layout().shape().to_vec(), weight.layout().shape().to_vec());
        let slices = (x.as_slice::<f32>(), weight.as_slice::<f32>(), bias.as_slice::<f32>());
        if let (&[b, k], &[wk, n], (Some(xd), Some(wd), Some(bd))) = (xs.as_slice(), ws.as_slice(), slices)
            && wk == k
            && bd.len() == n
        {
            // Every row starts as the bias; the product is added onto it.
            let mut out = bd.repeat(b);
            matmul::matmul_acc(b, n, k, &mut out, n, xd, wd, n);
            return from_vec(out, vec![b, n]);
        }
        // Not covered here (another dtype, or shapes that do not fit): flex's own operators.
        let out = Flex::float_matmul(x, weight);
        let n = bias.layout().shape().iter().product::<usize>();
        Flex::float_add(out, Flex::float_reshape(bias, Shape::new([1, n])))
    }

    fn sigmoid(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let shape = x.layout().shape().to_vec();
        match x.as_slice::<f32>() {
            Some(values) => {
                let mut values = values.to_vec();
                sigmoid_in_place(&mut values);
                from_vec(values, shape)
            }
            None => <Flex as ActivationOps<Flex>>::sigmoid(x),
        }
    }

    fn head_cells(a: FlexTensor, b: FlexTensor, c: FlexTensor, classes: usize) -> FlexTensor {
        let levels = [a.to_contiguous(), b.to_contiguous(), c.to_contiguous()];
        let shapes = levels.each_ref().map(|l| l.layout().shape().to_vec());
        let [batch, width] = [shapes[0][0], shapes[0][1]];
        let fits = shapes.iter().all(|s| s.len() == 4 && s[0] == batch && s[1] == width);
        assert!(fits, "head_cells: levels {shapes:?} differ in batch or width");
        let values = levels.each_ref().map(|l| l.as_slice::<f32>().expect("head_cells: f32 levels"));
        let sides = shapes.map(|s| (s[2], s[3]));
        let out = head::cells(values, &sides, batch, width, classes);
        let cells = sides.iter().map(|(h, w)| h * w).sum();
        from_vec(out, vec![batch, cells, width])
    }
}

/// The fused convolution ([`CpuKernels::conv2d_act`]); a 3×3 stride-1 dense one uses `u`, its
/// filters' Winograd transform, when given (and of the right shape) instead of transforming them.
fn conv_kernel(
    x: FlexTensor,
    weight: FlexTensor,
    u: Option<FlexTensor>,
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
            // The Winograd filters, once for the whole batch: the caller's, or made here.
            let winograd = !depthwise && winograd::applies(&window);
            let given = u.as_ref().filter(|u| u.layout().shape().to_vec() == [winograd::XI, cout, cin]);
            let made;
            let u = match given.and_then(|u| u.as_slice::<f32>()) {
                Some(u) => u,
                None if winograd => {
                    made = winograd::transform_weights(wd, cin, cout);
                    &made[..]
                }
                None => &[],
            };
            // Each path writes every output value without reading it first.
            let per_image = cout * window.out_len();
            let mut out = window::zeros(batch * per_image);
            for (xb, ob) in xd.chunks_exact(cin * window.in_len()).zip(out.chunks_exact_mut(per_image)) {
                if depthwise {
                    window::depthwise_conv(xb, wd, bd, &window, act, ob);
                } else if winograd {
                    winograd::conv(xb, u, bd, cin, cout, &window, act, ob);
                } else {
                    conv::gemm_conv(xb, wd, bd, cin, cout, &window, act, ob);
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

/// Whether tensors on `device` can use these kernels (flex only).
pub(super) fn runs_on(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Flex(_))
}

/// The convolution options of a layer's `conv` on an `h`×`w` input, with its padding resolved to
/// (begin, end) pairs (TF "SAME" pads the extra row and column at the end).
pub(super) fn conv_options(conv: &Conv2d, h: usize, w: usize) -> ConvOptions<2> {
    ConvOptions::new_with_padding(conv.stride, padding_pairs(conv, h, w), conv.dilation, conv.groups)
}

/// A layer's convolution as the kernel extensions (CPU and GPU) take it, for input `x`: input,
/// weight, bias (zeros when the layer has none) and the options for `x`'s size.
pub(super) type ConvOperands = (FloatTensor<Dispatch>, FloatTensor<Dispatch>, FloatTensor<Dispatch>, ConvOptions<2>);

pub(super) fn conv_operands(conv: &Conv2d, x: Tensor<4>) -> ConvOperands {
    let [_, _, h, w] = x.dims();
    let options = conv_options(conv, h, w);
    let weight = conv.weight.val();
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([weight.dims()[0]], &x.device()),
    };
    (x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), options)
}

/// What a layer's CPU kernel derives from the layer's weights once and keeps: for a 3×3
/// stride-1 dense convolution, the Winograd transform of its filters (36/9 = 4× the
/// filters' size; for NanoDet-g 45.6 MB for its 11.4 MB of such filters), made at the layer's first
/// run on the CPU instead of at every frame. Empty for other layers, and on other devices.
/// The layers' weights do not change after load, so it never goes stale. Clones of a layer
/// share it: the wasm classes run each call on a clone of their task (so that no `RefCell`
/// borrow is held across an `await`), and a clone's own copy would be made again at every
/// frame and dropped after it.
#[derive(Debug, Clone, Default)]
pub(super) struct Prepared(Arc<OnceLock<Tensor<3>>>);

/// `act(conv.forward(x))` in one fused kernel; `x` must be on the flex device. `prepared` is the
/// layer's own (see [`Prepared`]).
pub(super) fn conv2d_act(conv: &Conv2d, x: Tensor<4>, act: Activation, prepared: &Prepared) -> Tensor<4> {
    let winograd = conv.kernel_size == [3, 3] && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    let (x, weight, bias, options) = conv_operands(conv, x);
    if winograd {
        let u = prepared
            .0
            .get_or_init(|| Tensor::from_dispatch(<Dispatch as CpuKernels>::winograd_weights(weight.clone())));
        return Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_act_winograd(
            x,
            weight,
            u.clone().into_dispatch(),
            bias,
            options,
            act,
        ));
    }
    Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_act(x, weight, bias, options, act))
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

/// Bilinear resampling to `size`, half-pixel centres; `x` must be on the flex device.
pub(super) fn resize_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::resize_bilinear(x.into_dispatch(), size))
}

/// `x · weight + bias` (a `Linear` layer's forward); `x` must be on the flex device.
pub(super) fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// `1 / (1 + e^-x)` for every value; `x` must be on the flex device.
pub(super) fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::sigmoid(x.into_dispatch()))
}

/// [`CpuKernels::head_cells`]; the levels must be f32 tensors on the flex device.
pub(super) fn head_cells(levels: [Tensor<4>; 3], classes: usize) -> Tensor<3> {
    let [a, b, c] = levels.map(Tensor::into_dispatch);
    Tensor::from_dispatch(<Dispatch as CpuKernels>::head_cells(a, b, c, classes))
}

/// Max pooling (square window, symmetric padding); `x` must be on the flex device.
pub(super) fn max_pool2d(x: Tensor<4>, kernel: usize, stride: usize, pad: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::max_pool2d_square(x.into_dispatch(), kernel, stride, pad))
}

fn from_vec(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Applies `act` to every value in place (one tight loop per kind, so it vectorises).
#[inline(always)]
fn activate(act: Activation, values: &mut [f32]) {
    match act {
        Activation::Identity => {}
        Activation::Relu6 => values.iter_mut().for_each(|v| *v = relu6(*v)),
        Activation::LeakyRelu(slope) => {
            let slope = slope as f32;
            values.iter_mut().for_each(|v| *v = leaky(*v, slope));
        }
    }
}

/// `v = act(v + bias)` for every value, in one pass (one tight loop per kind).
#[inline(always)]
fn activate_biased(act: Activation, bias: f32, values: &mut [f32]) {
    match act {
        Activation::Identity => values.iter_mut().for_each(|v| *v += bias),
        Activation::Relu6 => values.iter_mut().for_each(|v| *v = relu6(*v + bias)),
        Activation::LeakyRelu(slope) => {
            let slope = slope as f32;
            values.iter_mut().for_each(|v| *v = leaky(*v + bias, slope));
        }
    }
}

/// `min(max(v, 0), 6)` as two selects in a row rather than `f32::clamp`/`max` (flex's `clamp`
/// did not vectorise in wasm) or one `if`/`else if` chain (which the depthwise kernel's
/// fixed-size accumulators did not vectorise natively: a branch per lane, spilled to the stack).
/// Each select is one SIMD max/min; NaN stays NaN.
#[allow(clippy::manual_clamp)]
#[inline(always)]
fn relu6(v: f32) -> f32 {
    let v = if v < 0.0 { 0.0 } else { v };
    if v > 6.0 { 6.0 } else { v }
}

#[inline(always)]
fn leaky(v: f32, slope: f32) -> f32 {
    if v >= 0.0 { v } else { slope * v }
}

/// `1 / (1 + e^-x)` in place, `LANES` values at a time (so that it vectorises).
fn sigmoid_in_place(values: &mut [f32]) {
    let mut chunks = values.chunks_exact_mut(window::LANES);
    for chunk in &mut chunks {
        for v in chunk.iter_mut() {
            *v = 1.0 / (1.0 + exp(-*v));
        }
    }
    for v in chunks.into_remainder() {
        *v = 1.0 / (1.0 + exp(-*v));
    }
}

/// `e^x` without branches or calls, so that a loop over it vectorises (libm's `expf` is a call
/// per value): Cody–Waite range reduction `x = n·ln 2 + r`, |r| ≤ ½ ln 2, Cephes' degree-7
/// polynomial for `e^r` (relative error ≈ 1e-7), then `2^n` built in the exponent bits. Below
/// −87.3 the result is ≈ 1.2e-38 instead of smaller (or 0), above 88 it is e^88 instead of larger
/// (or ∞); NaN stays NaN.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Comparisons rather than `clamp`: they map to SIMD selects.
    #[allow(clippy::manual_clamp)]
    let x = if x < -87.3 {
        -87.3
    } else if x > 88.0 {
        88.0
    } else {
        x
    };
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    // ln 2 in two parts, the first exact in few bits, so that `n·LN2_HI` has no rounding error.
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let poly = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes' 5.0000001201e-1, which is 0.5 in f32
    let e_r = poly * r * r + r + 1.0;
    // n ∈ [−126, 127] after the clamp: a normal power of two.
    e_r * f32::from_bits(((n as i32 + 127) as u32) << 23)
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
            // 1×1 over several blocks of channels × pixels (natively one task each), ragged ends.
            (40, 50, 1, 1, 1, 30, 35, [(0, 0), (0, 0)]),
            (24, 70, 1, 1, 1, 7, 7, [(0, 0), (0, 0)]),
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
            // Twice: the second run uses what the first prepared (3×3 stride 1: the Winograd
            // filters). Each run on a clone, as the wasm classes run each call on a clone of
            // their task: what a clone prepares is the original's too.
            let prepared = Prepared::default();
            for run in 0..2 {
                let got = conv2d_act(&conv, x.clone(), Activation::Relu6, &prepared.clone());
                assert_close(got, want.clone(), &format!("{padding:?} k{k} s{s}, run {run}"));
            }
            let winograd = k == 3 && s == 1 && groups == 1;
            assert_eq!(prepared.0.get().is_some(), winograd, "{padding:?} k{k} s{s}: prepared");
        }
    }

    #[test]
    fn bilinear_resampling_matches_burn() {
        use burn::tensor::module::interpolate;
        let device = Device::flex();
        // Up ×2 (NanoDet's PAN), down ×½, odd ratios both ways, one-pixel planes.
        for (h, w, oh, ow) in
            [(13, 13, 26, 26), (26, 26, 13, 13), (7, 5, 11, 3), (5, 9, 5, 9), (1, 1, 3, 2), (4, 6, 1, 1)]
        {
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
            let options = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
            let want = interpolate(x.clone(), options.with_output_size([oh, ow]));
            assert_close(super::resize_bilinear(x, [oh, ow]), want, &format!("{h}×{w} → {oh}×{ow}"));
        }
    }

    #[test]
    fn vectorised_exp_and_sigmoid_match_f64() {
        // Every 1/64 across the whole range and past both ends, plus special values.
        let mut worst_exp = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 64.0;
            let (got, want) = (f64::from(exp(x)), f64::from(x.clamp(-87.3, 88.0)).exp());
            worst_exp = worst_exp.max((got - want).abs() / want);
            let mut s = [x];
            sigmoid_in_place(&mut s);
            let want = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!((f64::from(s[0]) - want).abs() <= 1e-7, "sigmoid({x}) = {} vs {want}", s[0]);
        }
        assert!(worst_exp <= 3e-7, "exp: relative error {worst_exp}");
        assert!(exp(f32::NAN).is_nan());
        let mut special = [f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
        sigmoid_in_place(&mut special);
        // −∞ → 1 / (1 + e^88): 6e-39 instead of 0 (see `exp`).
        assert_eq!([special[0], special[2], special[3]], [1.0, 0.5, 0.5]);
        assert!((0.0..1e-38).contains(&special[1]), "sigmoid(−∞) = {}", special[1]);
    }

    #[test]
    fn sigmoid_matches_burn() {
        use burn::tensor::activation::sigmoid;
        let device = Device::flex();
        // A transposed view (as NanoDet-g's head output), and a length that fills no chunk.
        let x = Tensor::<3>::random([1, 80, 677], Distribution::Normal(0.0, 4.0), &device).swap_dims(1, 2);
        let (want, got) = (sigmoid(x.clone()), super::sigmoid(x));
        assert_eq!(got.dims(), [1, 677, 80]);
        let diff = (got - want).abs().max().into_scalar::<f32>();
        assert!(diff <= 1e-6, "max |Δ| {diff}");
    }

    #[test]
    fn head_cells_match_burn() {
        use burn::tensor::activation::sigmoid;
        let device = Device::flex();
        // NanoDet-g-416's head (batch 1 and 2), odd sizes, and a level with no cells.
        for (batch, width, classes, sides) in [
            (1, 124, 80, [(52, 52), (26, 26), (13, 13)]),
            (2, 124, 80, [(52, 52), (26, 26), (13, 13)]),
            (1, 7, 3, [(5, 3), (0, 4), (1, 1)]),
            (2, 9, 8, [(3, 2), (2, 1), (1, 3)]),
        ] {
            let levels =
                sides.map(|(h, w)| Tensor::<4>::random([batch, width, h, w], Distribution::Normal(0.0, 4.0), &device));
            let want = Tensor::cat(
                levels
                    .clone()
                    .map(|y| {
                        let [b, c, h, w] = y.dims();
                        let y = y.reshape([b, c, h * w]).swap_dims(1, 2);
                        Tensor::cat(
                            vec![sigmoid(y.clone().narrow(2, 0, classes)), y.narrow(2, classes, c - classes)],
                            2,
                        )
                    })
                    .into(),
                1,
            );
            let got = super::head_cells(levels, classes);
            let cells = sides.iter().map(|(h, w)| h * w).sum::<usize>();
            assert_eq!(got.dims(), [batch, cells, width]);
            let diff = (got - want).abs().max().into_scalar::<f32>();
            assert!(diff <= 1e-6, "{sides:?}: max |Δ| {diff}");
        }
    }

    #[test]
    fn linear_matches_burn() {
        let device = Device::flex();
        // EfficientNet-Lite0's classifier at batch 1 and 3, and shapes that fill no block exactly.
        for (b, k, n) in [(1, 1280, 1000), (3, 1280, 1000), (5, 37, 11), (1, 1, 1)] {
            let x = Tensor::<2>::random([b, k], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 0.05), &device);
            let bias = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
            let want = x.clone().matmul(w.clone()) + bias.clone().unsqueeze::<2>();
            let got = super::linear(x, w, bias);
            let as_4d = |t: Tensor<2>| t.unsqueeze::<4>();
            assert_close(as_4d(got), as_4d(want), &format!("linear {b}×{k} · {k}×{n}"));
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
