//! NanoDet-g (RangiLyu/nanodet, legacy `nanodet-g.yml`): a CSP backbone, a PAN neck with
//! bilinear ×2 / ×½ resampling, and a GFL head sharing one conv tower for classes and boxes.
//! BatchNorm is already folded in the released weights (every conv has a bias); activations are
//! LeakyReLU(0.1); padding is symmetric.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::activation::Activation;
use super::layers::{
    ConvAct, ConvSpec, MaxPool, channel_range, forward_pass, head_cells, resize_bilinear, sigmoid, writes_in_place,
};
use super::weights::Weights;
use crate::error::Result;

/// LeakyReLU slope of every activated conv.
const LEAKY: Activation = Activation::LeakyRelu(0.1);

/// Architecture of a NanoDet-g network.
#[derive(Debug, Clone)]
pub struct NanoDetConfig {
    /// The model's name in weights files (`model` in their header).
    pub name: &'static str,
    /// Side of the square input the weights were trained at, in pixels.
    pub input: usize,
    /// Strides of the pyramid levels the head predicts on, in input pixels (finest first).
    pub strides: Vec<usize>,
    /// Stem output channels.
    pub stem: usize,
    /// CSP stages `(input channels, residual blocks, stride)`; each doubles its channels.
    pub stages: Vec<(usize, usize, usize)>,
    /// Channels of the PAN and the head.
    pub neck: usize,
    /// Number of classes (COCO: 80).
    pub classes: usize,
    /// Bins per box side minus one (GFL `reg_max`: 10 → 11 bins).
    pub reg_max: usize,
}

impl NanoDetConfig {
    /// NanoDet-g at 416×416, COCO-80 (3.79 M parameters, 2.09 G MACs).
    pub fn g_416() -> Self {
        Self {
            name: "nanodet-g-416",
            input: 416,
            strides: vec![8, 16, 32],
            stem: 32,
            stages: vec![(32, 1, 1), (64, 2, 2), (128, 2, 2), (256, 3, 2)],
            neck: 128,
            classes: 80,
            reg_max: 10,
        }
    }

    /// Channels of one head output: class scores then 4 sides × (reg_max + 1) bins.
    pub fn head_channels(&self) -> usize {
        self.classes + 4 * (self.reg_max + 1)
    }

    /// Cells per side of each pyramid level (`input / stride`), finest first.
    pub fn grids(&self) -> Vec<usize> {
        self.strides.iter().map(|s| self.input / s).collect()
    }

    /// Builds the network from `weights` (torch-style names, see `models/NOTICE.md`).
    pub fn load(&self, w: &Weights<'_>, device: &Device) -> Result<NanoDet> {
        let stem = ConvAct::load(w, "backbone.stages.0", ConvSpec::padded(3, self.stem, 3, 2, 1, LEAKY), device)?;
        // stages.1 is the 3×3/2 max-pool; the CSP stages are 2..=5.
        let stages = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, &(c, blocks, stride))| {
                CspBlock::load(w, &format!("backbone.stages.{}", i + 2), c, blocks, stride, device)
            })
            .collect::<Result<Vec<_>>>()?;
        // C3, C4, C5 are the outputs of the last three stages (2× their input channels).
        let lateral = self.stages[1..]
            .iter()
            .enumerate()
            .map(|(i, &(c, _, _))| {
                let spec = ConvSpec::padded(2 * c, self.neck, 1, 1, 0, Activation::Identity);
                ConvAct::load(w, &format!("fpn.lateral_convs.{i}"), spec, device)
            })
            .collect::<Result<Vec<_>>>()?;
        let head = (0..3)
            .map(|l| {
                let tower = ConvAct::load(
                    w,
                    &format!("head.cls_convs.{l}.0"),
                    ConvSpec::padded(self.neck, self.neck, 3, 1, 1, LEAKY),
                    device,
                )?;
                let out = ConvAct::load(
                    w,
                    &format!("head.gfl_cls.{l}"),
                    ConvSpec::padded(self.neck, self.head_channels(), 1, 1, 0, Activation::Identity),
                    device,
                )?;
                Ok(HeadLevel { tower, out })
            })
            .collect::<Result<Vec<_>>>()?;
        // stages.1: 3×3/2 max-pool with 1 pixel of padding.
        let pool = MaxPool::new(3, 2, 1);
        Ok(NanoDet { stem, pool, stages, lateral, head, classes: self.classes })
    }
}

/// `x → in_conv (c → c/2) → mid_conv (c/2 → c/2)`, output `cat[mid, in]` (c channels).
#[derive(Module, Debug)]
struct TinyResBlock {
    in_conv: ConvAct,
    mid_conv: ConvAct,
}

impl TinyResBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if writes_in_place(&x.device()) {
            // Both convolutions write their half of the concatenation directly.
            let half = self.in_conv.out_channels();
            let [b, _, h, w] = self.in_conv.output_dims(x.dims());
            let out = Tensor::empty([b, 2 * half, h, w], &x.device());
            let x = self.in_conv.forward_into_and_new(x, out.clone(), channel_range(2 * half, h, w, half));
            return self.mid_conv.forward_into(x, out, channel_range(2 * half, h, w, 0), 0);
        }
        let x = self.in_conv.forward(x);
        let x1 = self.mid_conv.forward(x.clone());
        Tensor::cat(vec![x1, x], 1)
    }
}

/// CSP block: `in_conv` (stride s) → residual blocks → `res_out_conv`, output
/// `cat[res_out, in]` (2c channels).
#[derive(Module, Debug)]
struct CspBlock {
    in_conv: ConvAct,
    res_blocks: Vec<TinyResBlock>,
    res_out_conv: ConvAct,
}

impl CspBlock {
    fn load(w: &Weights<'_>, p: &str, c: usize, blocks: usize, stride: usize, device: &Device) -> Result<Self> {
        let in_conv = ConvAct::load(w, &format!("{p}.in_conv"), ConvSpec::padded(c, c, 3, stride, 1, LEAKY), device)?;
        let res_blocks = (0..blocks)
            .map(|b| {
                let q = format!("{p}.res_blocks.{b}");
                Ok(TinyResBlock {
                    in_conv: ConvAct::load(
                        w,
                        &format!("{q}.in_conv"),
                        ConvSpec::padded(c, c / 2, 3, 1, 1, LEAKY),
                        device,
                    )?,
                    mid_conv: ConvAct::load(
                        w,
                        &format!("{q}.mid_conv"),
                        ConvSpec::padded(c / 2, c / 2, 3, 1, 1, LEAKY),
                        device,
                    )?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let res_out_conv =
            ConvAct::load(w, &format!("{p}.res_out_conv"), ConvSpec::padded(c, c, 3, 1, 1, LEAKY), device)?;
        Ok(Self { in_conv, res_blocks, res_out_conv })
    }

    /// # Shapes
    /// `[b, c, h, w]` → `[b, 2c, h / stride, w / stride]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if writes_in_place(&x.device()) {
            let c = self.in_conv.out_channels();
            let [b, _, h, w] = self.in_conv.output_dims(x.dims());
            let out = Tensor::empty([b, 2 * c, h, w], &x.device());
            let x = self.in_conv.forward_into_and_new(x, out.clone(), channel_range(2 * c, h, w, c));
            let x1 = self.res_blocks.iter().fold(x, |y, block| block.forward(y));
            return self.res_out_conv.forward_into(x1, out, channel_range(2 * c, h, w, 0), 0);
        }
        let x = self.in_conv.forward(x);
        let x1 = self.res_blocks.iter().fold(x.clone(), |y, block| block.forward(y));
        Tensor::cat(vec![self.res_out_conv.forward(x1), x], 1)
    }
}

/// One level of the GFL head: a 3×3 conv tower, then a 1×1 conv to classes + box bins.
#[derive(Module, Debug)]
struct HeadLevel {
    tower: ConvAct,
    out: ConvAct,
}

/// The raw outputs of one pyramid level.
#[derive(Debug, Clone)]
pub struct LevelOutput {
    /// Class scores after sigmoid, `[1, h*w, classes]` (row-major cells).
    pub cls: Tensor<3>,
    /// Box-side distribution logits, `[1, h*w, 4 * (reg_max + 1)]` (left, top, right, bottom).
    pub reg: Tensor<3>,
}

/// The NanoDet-g detector.
#[derive(Module, Debug)]
pub struct NanoDet {
    stem: ConvAct,
    pool: MaxPool,
    stages: Vec<CspBlock>,
    lateral: Vec<ConvAct>,
    head: Vec<HeadLevel>,
    classes: usize,
}

/// Bilinear resampling with half-pixel centres, as in the PAN of the released model.
fn resize(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    resize_bilinear(x, size)
}

impl NanoDet {
    /// Backbone features C3, C4, C5 (strides 8, 16, 32).
    ///
    /// # Shapes
    /// `[1, 3, 416, 416]` → `[1, 128, 52, 52]`, `[1, 256, 26, 26]`, `[1, 512, 13, 13]`
    pub fn backbone(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let mut x = self.pool.forward(self.stem.forward(x));
        let mut outs = Vec::with_capacity(3);
        for (i, stage) in self.stages.iter().enumerate() {
            x = stage.forward(x);
            if i >= 1 {
                outs.push(x.clone());
            }
        }
        let [c3, c4, c5]: [Tensor<4>; 3] = outs.try_into().expect("NanoDet-g has three output stages");
        [c3, c4, c5]
    }

    /// PAN neck: 1×1 laterals, top-down bilinear ×2 sums, then bottom-up bilinear ×½ sums.
    ///
    /// # Shapes
    /// C3, C4, C5 → P3 `[1, 128, 52, 52]`, P4 `[1, 128, 26, 26]`, P5 `[1, 128, 13, 13]`
    pub fn neck(&self, [c3, c4, c5]: [Tensor<4>; 3]) -> [Tensor<4>; 3] {
        let size = |t: &Tensor<4>| {
            let [_, _, h, w] = t.dims();
            [h, w]
        };
        let l5 = self.lateral[2].forward(c5);
        // The lateral's output plus the coarser level resampled (one launch on the GPU).
        let up = |x: &Tensor<4>, coarse: &Tensor<4>, lateral: &ConvAct| {
            let [_, _, h, w] = lateral.output_dims(x.dims());
            lateral.forward_add(x.clone(), resize(coarse.clone(), [h, w]))
        };
        let l4 = up(&c4, &l5, &self.lateral[1]);
        let p3 = up(&c3, &l4, &self.lateral[0]);
        let p4 = l4.clone() + resize(p3.clone(), size(&l4));
        let p5 = l5.clone() + resize(p4.clone(), size(&l5));
        [p3, p4, p5]
    }

    /// The six raw outputs: per level (strides 8, 16, 32) class scores and box logits.
    ///
    /// # Shapes
    /// `[1, 3, 416, 416]` → per level `cls [1, G*G, 80]`, `reg [1, G*G, 44]` (G = 52, 26, 13)
    pub fn forward(&self, x: Tensor<4>) -> [LevelOutput; 3] {
        let device = x.device();
        forward_pass(&device, || {
            self.head_planes(x).map(|y| {
                let [b, c, h, w] = y.dims();
                // [b, c, h, w] → [b, h*w, c]
                let y = y.reshape([b, c, h * w]).swap_dims(1, 2);
                let cls = sigmoid(y.clone().narrow(2, 0, self.classes));
                let reg = y.narrow(2, self.classes, c - self.classes);
                LevelOutput { cls, reg }
            })
        })
    }

    /// The head's outputs per level as planes (scores not yet through the sigmoid).
    ///
    /// # Shapes
    /// `[b, 3, 416, 416]` → per level `[b, classes + 4 · bins, G, G]` (G = 52, 26, 13)
    fn head_planes(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let [p3, p4, p5] = self.neck(self.backbone(x));
        [(p3, 0), (p4, 1), (p5, 2)].map(|(feat, i)| self.head[i].out.forward(self.head[i].tower.forward(feat)))
    }

    /// All outputs in one tensor, so a frame needs a single readback: per cell (levels finest
    /// first, row-major) the class scores after sigmoid, then the box logits. On the GPU the
    /// head's last convolutions write (and activate) their cells in place.
    ///
    /// # Shapes
    /// `[b, 3, 416, 416]` → `[b, cells, classes + 4 · bins]` (`[b, 3549, 124]` for NanoDet-g-416)
    pub fn forward_packed(&self, x: Tensor<4>) -> Tensor<3> {
        if !writes_in_place(&x.device()) {
            let device = x.device();
            return forward_pass(&device, || head_cells(self.head_planes(x), self.classes));
        }
        let device = x.device();
        let towers: Vec<Tensor<4>> =
            self.neck(self.backbone(x)).into_iter().zip(&self.head).map(|(p, l)| l.tower.forward(p)).collect();
        let width = self.head[0].out.out_channels();
        let cells: usize = towers.iter().map(|t| t.dims()[2] * t.dims()[3]).sum();
        let batch = towers[0].dims()[0];
        let mut packed = Tensor::empty([batch, cells, width], &device);
        let mut first = 0;
        for (tower, level) in towers.into_iter().zip(&self.head) {
            let [_, _, h, w] = tower.dims();
            // Result (n, c, y, x) → packed[n, first + y·w + x, c].
            let place = (first * width, [cells * width, 1, w * width, width]);
            packed = level.out.forward_into(tower, packed, place, self.classes);
            first += h * w;
        }
        packed
    }
}
