//! EfficientNet-Lite (Tan & Le 2019, "Lite" variant for mobile accelerators): no squeeze-excite,
//! ReLU6 everywhere, fixed 32-channel stem and 1280-channel head, TensorFlow "SAME" padding.
//! Weights: the PyTorch port of Google's TF checkpoints (keys `_conv_stem`, `_blocks.N.*`, ...).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::activation::Activation;
use super::layers::{ConvAct, ConvSpec, forward_pass};
use super::weights::{Weights, tensor, transpose};
use crate::error::Result;

/// BatchNorm epsilon of the TF checkpoints (PyTorch's default would be 1e-5).
const BN_EPS: f64 = 1e-3;

/// One stage of MBConv blocks: `(repeats, kernel, first stride, expand ratio, output channels)`.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    /// Number of blocks in the stage.
    pub repeats: usize,
    /// Depthwise kernel side.
    pub kernel: usize,
    /// Stride of the first block (the others use 1).
    pub stride: usize,
    /// Channel expansion ratio of the inverted bottleneck.
    pub expand: usize,
    /// Output channels.
    pub channels: usize,
}

/// Architecture of an EfficientNet-Lite network.
#[derive(Debug, Clone)]
pub struct EfficientNetLiteConfig {
    /// The model's name in weights files (`model` in their header).
    pub name: &'static str,
    /// Side of the square input the weights were trained at, in pixels.
    pub input: usize,
    /// Stem output channels.
    pub stem: usize,
    /// The MBConv stages, in order.
    pub stages: Vec<StageSpec>,
    /// Channels of the final 1×1 convolution.
    pub head: usize,
    /// Number of classes.
    pub classes: usize,
}

impl EfficientNetLiteConfig {
    /// EfficientNet-Lite0, ImageNet-1k (4.69 M parameters, 0.385 G MACs at 224×224).
    pub fn lite0() -> Self {
        let s = |repeats, kernel, stride, expand, channels| StageSpec { repeats, kernel, stride, expand, channels };
        Self {
            name: "efficientnet-lite0",
            input: 224,
            stem: 32,
            stages: vec![
                s(1, 3, 1, 1, 16),
                s(2, 3, 2, 6, 24),
                s(2, 5, 2, 6, 40),
                s(3, 3, 2, 6, 80),
                s(3, 5, 1, 6, 112),
                s(4, 5, 2, 6, 192),
                s(1, 3, 1, 6, 320),
            ],
            head: 1280,
            classes: 1000,
        }
    }

    /// Builds the network from `weights` (PyTorch names), folding every BatchNorm.
    pub fn load(&self, weights: &Weights<'_>, device: &Device) -> Result<EfficientNetLite> {
        let relu6 = Activation::Relu6;
        let stem = ConvAct::load_with_bn(
            weights,
            "_conv_stem",
            "_bn0",
            BN_EPS,
            ConvSpec::same(3, self.stem, 3, 2, 1, relu6),
            device,
        )?;
        let mut blocks = Vec::new();
        let mut cin = self.stem;
        for stage in &self.stages {
            for r in 0..stage.repeats {
                let stride = if r == 0 { stage.stride } else { 1 };
                let p = format!("_blocks.{}", blocks.len());
                blocks.push(MbConv::load(weights, &p, cin, *stage, stride, device)?);
                cin = stage.channels;
            }
        }
        let head = ConvAct::load_with_bn(
            weights,
            "_conv_head",
            "_bn1",
            BN_EPS,
            ConvSpec::same(cin, self.head, 1, 1, 1, relu6),
            device,
        )?;
        // PyTorch stores Linear weights as [out, in]; burn as [in, out].
        let fc = weights.values("_fc.weight", &[self.classes, self.head])?;
        let fc_t = transpose(&fc, self.classes, self.head);
        let bias = weights.values("_fc.bias", &[self.classes])?;
        let fc = Linear {
            weight: Param::from_tensor(tensor(fc_t, [self.head, self.classes], device)),
            bias: Some(Param::from_tensor(tensor(bias, [self.classes], device))),
        };
        Ok(EfficientNetLite { stem, blocks, head, fc })
    }
}

/// Inverted-residual block: 1×1 expand → k×k depthwise → 1×1 project (+ skip when shapes match).
#[derive(Module, Debug)]
pub struct MbConv {
    expand: Option<ConvAct>,
    depthwise: ConvAct,
    project: ConvAct,
    residual: bool,
}

impl MbConv {
    fn load(w: &Weights<'_>, p: &str, cin: usize, stage: StageSpec, stride: usize, device: &Device) -> Result<Self> {
        let mid = cin * stage.expand;
        let relu6 = Activation::Relu6;
        // Block 0 of each network has expand ratio 1 and therefore no expand conv; its depthwise
        // BN is `_bn1` either way.
        let expand = if stage.expand != 1 {
            let spec = ConvSpec::same(cin, mid, 1, 1, 1, relu6);
            Some(ConvAct::load_with_bn(w, &format!("{p}._expand_conv"), &format!("{p}._bn0"), BN_EPS, spec, device)?)
        } else {
            None
        };
        let spec = ConvSpec::same(mid, mid, stage.kernel, stride, mid, relu6);
        let depthwise =
            ConvAct::load_with_bn(w, &format!("{p}._depthwise_conv"), &format!("{p}._bn1"), BN_EPS, spec, device)?;
        let spec = ConvSpec::same(mid, stage.channels, 1, 1, 1, Activation::Identity);
        let project =
            ConvAct::load_with_bn(w, &format!("{p}._project_conv"), &format!("{p}._bn2"), BN_EPS, spec, device)?;
        Ok(Self { expand, depthwise, project, residual: stride == 1 && cin == stage.channels })
    }

    /// # Shapes
    /// `[b, cin, h, w]` → `[b, cout, h / stride, w / stride]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = match &self.expand {
            Some(expand) => expand.forward(x.clone()),
            None => x.clone(),
        };
        y = self.depthwise.forward(y);
        if self.residual { self.project.forward_add(y, x) } else { self.project.forward(y) }
    }
}

/// EfficientNet-Lite classifier.
#[derive(Module, Debug)]
pub struct EfficientNetLite {
    stem: ConvAct,
    blocks: Vec<MbConv>,
    head: ConvAct,
    fc: Linear,
}

impl EfficientNetLite {
    /// Logits for a batch of normalised images.
    ///
    /// # Shapes
    /// `[b, 3, h, w]` (224×224 for the released weights) → `[b, classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        super::layers::linear(&self.fc, self.pooled(x))
    }

    /// Globally average-pooled features, before the classifier.
    ///
    /// # Shapes
    /// `[b, 3, h, w]` → `[b, head]`
    pub fn pooled(&self, x: Tensor<4>) -> Tensor<2> {
        global_average_pool(self.feature_map(x))
    }

    /// The last convolutional feature map: the 1×1 head convolution (with its ReLU6) over the
    /// last MBConv block, before pooling. Class-activation maps are drawn on it.
    ///
    /// # Shapes
    /// `[b, 3, h, w]` → `[b, head, h / 32, w / 32]` (`[b, 1280, 7, 7]` at 224×224)
    pub fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        forward_pass(&device, || self.head.forward(self.features(x)))
    }

    /// The ImageNet classifier layer (`[head, classes]` weight, burn's `[in, out]` layout).
    pub fn classifier(&self) -> &Linear {
        &self.fc
    }

    /// Output of the last MBConv block.
    ///
    /// # Shapes
    /// `[b, 3, h, w]` → `[b, 320, h / 32, w / 32]`
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.blocks.iter().fold(self.stem.forward(x), |x, block| block.forward(x))
    }
}

/// The mean over each channel's spatial plane.
///
/// # Shapes
/// `[b, c, h, w]` → `[b, c]`
pub fn global_average_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([b, c])
}
