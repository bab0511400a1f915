//! Building blocks shared by the networks: a convolution with its activation, loaded from
//! weights (with BatchNorm folded into the convolution at load time), and max pooling.
//!
//! Each block is the one place that chooses between the CPU kernels (`cpu`, flex device only)
//! and burn's operators (every other device), so the network files stay backend-neutral.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Tensor};

use super::activation::Activation;
use super::weights::{Weights, tensor};
use super::{cpu, gpu};
use crate::error::{Error, Result};

/// Shape of a convolution: channels, square kernel, stride, groups and padding.
#[derive(Debug, Clone)]
pub struct ConvSpec {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Groups (`cin` for a depthwise convolution).
    pub groups: usize,
    /// Padding: TF "SAME" (asymmetric) or explicit symmetric.
    pub padding: PaddingConfig2d,
    /// Activation after the convolution.
    pub act: Activation,
}

impl ConvSpec {
    /// A convolution with symmetric zero padding `pad`.
    pub fn padded(cin: usize, cout: usize, kernel: usize, stride: usize, pad: usize, act: Activation) -> Self {
        Self { cin, cout, kernel, stride, groups: 1, padding: PaddingConfig2d::Explicit(pad, pad, pad, pad), act }
    }

    /// A convolution with TensorFlow "SAME" padding (extra row/column at the bottom/right).
    pub fn same(cin: usize, cout: usize, kernel: usize, stride: usize, groups: usize, act: Activation) -> Self {
        Self { cin, cout, kernel, stride, groups, padding: PaddingConfig2d::Same, act }
    }

    fn weight_shape(&self) -> [usize; 4] {
        [self.cout, self.cin / self.groups, self.kernel, self.kernel]
    }
}

/// A 2D convolution (with bias) followed by an activation.
#[derive(Module, Debug)]
pub struct ConvAct {
    conv: Conv2d,
    #[module(skip)]
    act: Activation,
    /// What the CPU kernel derives from the weights once (see `cpu::Prepared`).
    #[module(skip)]
    prepared: cpu::Prepared,
}

impl ConvAct {
    /// Loads `{name}.weight` and `{name}.bias` (BatchNorm already folded, as in NanoDet's file).
    pub fn load(w: &Weights<'_>, name: &str, spec: ConvSpec, device: &Device) -> Result<Self> {
        let weight = w.values(&format!("{name}.weight"), &spec.weight_shape())?;
        let bias = w.values(&format!("{name}.bias"), &[spec.cout])?;
        Ok(Self::from_values(weight, bias, spec, device))
    }

    /// Loads a bias-free convolution `{conv}.weight` followed by BatchNorm `{bn}.*`, folding the
    /// BatchNorm (epsilon `eps`) into the convolution's weight and bias.
    pub fn load_with_bn(
        w: &Weights<'_>,
        conv: &str,
        bn: &str,
        eps: f64,
        spec: ConvSpec,
        device: &Device,
    ) -> Result<Self> {
        // Reduced-precision files carry the BatchNorm folded already (so that the folded weights
        // are what was quantized): then the convolution has a bias and no BatchNorm tensors.
        if w.batchnorm_folded() == Some(true) {
            return Self::load(w, conv, spec, device);
        }
        let mut weight = w.values(&format!("{conv}.weight"), &spec.weight_shape())?;
        let c = [spec.cout];
        let gamma = w.values(&format!("{bn}.weight"), &c)?;
        let beta = w.values(&format!("{bn}.bias"), &c)?;
        let mean = w.values(&format!("{bn}.running_mean"), &c)?;
        let var = w.values(&format!("{bn}.running_var"), &c)?;
        // A variance below zero cannot come from training and would make the folded weights NaN.
        // Zero is legitimate (a channel that was constant in training: 130 channels of the
        // released EfficientNet-Lite0 have it), and eps keeps it finite.
        if let Some(o) = var.iter().position(|&v| v < 0.0) {
            return Err(Error::model_load(format!(
                "tensor `{bn}.running_var` holds a negative variance ({}) at channel {o}",
                var[o]
            )));
        }
        let per_out = weight.len() / spec.cout;
        let mut bias = vec![0.0f32; spec.cout];
        for o in 0..spec.cout {
            let scale = f64::from(gamma[o]) / (f64::from(var[o]) + eps).sqrt();
            for v in &mut weight[o * per_out..(o + 1) * per_out] {
                *v = (f64::from(*v) * scale) as f32;
            }
            bias[o] = (f64::from(beta[o]) - f64::from(mean[o]) * scale) as f32;
        }
        Ok(Self::from_values(weight, bias, spec, device))
    }

    fn from_values(weight: Vec<f32>, bias: Vec<f32>, spec: ConvSpec, device: &Device) -> Self {
        let shape = spec.weight_shape();
        Self {
            conv: Conv2d {
                weight: Param::from_tensor(tensor(weight, shape, device)),
                bias: Some(Param::from_tensor(tensor(bias, [spec.cout], device))),
                stride: [spec.stride; 2],
                kernel_size: [spec.kernel; 2],
                dilation: [1, 1],
                groups: spec.groups,
                padding: spec.padding,
            },
            act: spec.act,
            prepared: cpu::Prepared::default(),
        }
    }

    /// # Shapes
    /// `[b, cin, h, w]` → `[b, cout, h', w']`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        if cpu::runs_on(&device) {
            return cpu::conv2d_act(&self.conv, x, self.act, &self.prepared);
        }
        if gpu::runs_on(&device) {
            return gpu::conv2d_act(&self.conv, x, self.act, None);
        }
        self.act.apply(self.conv.forward(x))
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.dims()[0]
    }

    /// The output's shape for an input of shape `input`.
    pub fn output_dims(&self, [b, _, h, w]: [usize; 4]) -> [usize; 4] {
        let options = cpu::conv_options(&self.conv, h, w);
        let [kh, kw] = self.conv.kernel_size;
        let side = |size: usize, (begin, end): (usize, usize), k: usize, s: usize, d: usize| {
            (size + begin + end - d * (k - 1) - 1) / s + 1
        };
        let [sy, sx] = options.stride;
        let [dy, dx] = options.dilation;
        [b, self.out_channels(), side(h, options.padding[0], kh, sy, dy), side(w, options.padding[1], kw, sx, dx)]
    }

    /// `forward(x)` written in place into `output`, on GPU devices only ([`writes_in_place`]):
    /// result `(n, c, y, x)` goes to element `place.0 + n·place.1[0] + c·place.1[1] + y·place.1[2]
    /// + x·place.1[3]` of `output`, with a sigmoid after the activation on result channels below
    /// `sigmoid_channels`. Returns `output`, which now holds the result; use the returned tensor.
    pub fn forward_into<const D: usize>(
        &self,
        x: Tensor<4>,
        output: Tensor<D>,
        place: (usize, [usize; 4]),
        sigmoid_channels: usize,
    ) -> Tensor<D> {
        debug_assert!(writes_in_place(&x.device()));
        gpu::conv2d_act_into(&self.conv, x, self.act, output, place, sigmoid_channels)
    }

    /// [`forward_into`](Self::forward_into) (no sigmoid) that also returns the result as a
    /// tensor of its own: `output` — a clone of a tensor the caller keeps — is written in place.
    /// For a result that is both part of a concatenation and the next layer's input (WebGPU
    /// cannot read a buffer in the dispatch that writes it).
    pub fn forward_into_and_new(&self, x: Tensor<4>, output: Tensor<4>, place: (usize, [usize; 4])) -> Tensor<4> {
        debug_assert!(writes_in_place(&x.device()));
        gpu::conv2d_act_into_and_new(&self.conv, x, self.act, output, place)
    }

    /// `forward(x) + residual`; on the GPU in the same kernel launch.
    ///
    /// # Shapes
    /// `[b, cin, h, w]`, residual `[b, cout, h', w']` → `[b, cout, h', w']`
    pub fn forward_add(&self, x: Tensor<4>, residual: Tensor<4>) -> Tensor<4> {
        if gpu::runs_on(&x.device()) {
            return gpu::conv2d_act(&self.conv, x, self.act, Some(residual));
        }
        self.forward(x) + residual
    }
}

/// Whether convolutions on `device` can write into part of an existing tensor
/// ([`ConvAct::forward_into`]): GPU devices, where it saves a concatenation's copy kernels.
pub fn writes_in_place(device: &Device) -> bool {
    gpu::runs_on(device)
}

/// Where result `(n, c, y, x)` of a convolution goes in a contiguous `[b, channels, h, w]`
/// concatenation when its channels start at `first`: `(offset, strides)` for
/// [`ConvAct::forward_into`].
pub fn channel_range(channels: usize, h: usize, w: usize, first: usize) -> (usize, [usize; 4]) {
    (first * h * w, [channels * h * w, h * w, w, 1])
}

/// Max pooling with a square window, equal strides and symmetric padding that never wins (the
/// padding acts as -inf).
#[derive(Module, Debug)]
pub struct MaxPool {
    kernel: usize,
    stride: usize,
    pad: usize,
}

impl MaxPool {
    /// A `kernel`×`kernel` window moved by `stride`, with `pad` pixels of padding on every side.
    pub fn new(kernel: usize, stride: usize, pad: usize) -> Self {
        Self { kernel, stride, pad }
    }

    /// # Shapes
    /// `[b, c, h, w]` → `[b, c, (h + 2·pad - kernel) / stride + 1, (w + 2·pad - kernel) / stride + 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if cpu::runs_on(&x.device()) {
            return cpu::max_pool2d(x, self.kernel, self.stride, self.pad);
        }
        let options = MaxPoolOptions::new([self.kernel; 2]).with_stride([self.stride; 2]).with_padding([self.pad; 2]);
        max_pool2d(x, options)
    }
}

/// `layer.forward(x)`: on the CPU through the matrix product the convolutions use (flex's own
/// product is a scalar loop in wasm).
///
/// # Shapes
/// `[b, in]` → `[b, out]`
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    match &layer.bias {
        Some(bias) if cpu::runs_on(&x.device()) => cpu::linear(x, layer.weight.val(), bias.val()),
        _ => layer.forward(x),
    }
}

/// Runs `f`, a forward pass over an input on `device`. On the CPU natively it runs on a thread of
/// rayon's pool, so that the kernels' parallel loops start there (one hand-over per frame instead
/// of one per loop; see `cpu/pool.rs`).
pub fn forward_pass<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    if cpu::runs_on(device) { cpu::on_pool(f) } else { f() }
}

/// `1 / (1 + e^-x)`: on the CPU vectorised (flex's calls `expf` per value, ≈5 % of a
/// NanoDet-g frame in wasm).
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if cpu::runs_on(&x.device()) {
        return cpu::sigmoid(x);
    }
    burn::tensor::activation::sigmoid(x)
}

/// A detection head's levels `[b, width, h, w]` as one `[b, cells, width]` tensor: per image the
/// cells of each level in turn (row-major), the first `classes` values of each cell through the
/// sigmoid. On the CPU one parallel pass; elsewhere a transpose, sigmoid and concatenation.
pub fn head_cells(levels: [Tensor<4>; 3], classes: usize) -> Tensor<3> {
    if cpu::runs_on(&levels[0].device()) && levels.iter().all(|l| l.dtype() == DType::F32) {
        return cpu::head_cells(levels, classes);
    }
    let cells = levels.map(|y| {
        let [b, c, h, w] = y.dims();
        let y = y.reshape([b, c, h * w]).swap_dims(1, 2);
        Tensor::cat(vec![sigmoid(y.clone().narrow(2, 0, classes)), y.narrow(2, classes, c - classes)], 2)
    });
    Tensor::cat(cells.into(), 1)
}

/// Bilinear resampling to `size` with half-pixel centres (PyTorch `align_corners=False`, TF
/// `half_pixel_centers=True`).
///
/// # Shapes
/// `[b, c, h, w]` → `[b, c, size[0], size[1]]`
pub fn resize_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    if cpu::runs_on(&x.device()) {
        return cpu::resize_bilinear(x, size);
    }
    interpolate(x, InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false).with_output_size(size))
}
