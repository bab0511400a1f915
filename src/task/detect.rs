//! Object detection with NanoDet-g-416 (COCO-80).

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::model::{NanoDet, NanoDetConfig, Weights};
use crate::postprocess::{Candidate, HeadLayout, Level, decode_level, nms_per_class};
use crate::preprocess::{ChannelOrder, Input, Normalize, Resize, preprocess};

use super::classify::read_f32;
use super::labels::{COCO_CLASSES, coco_label};

/// Input side of the detector, in pixels.
pub const INPUT_SIZE: usize = 416;

/// NanoDet's OpenCV-style preprocessing: BGR, `x = (v - mean) / std` (values from the training
/// config `nanodet-g.yml`).
const NORMALIZE: Normalize =
    Normalize { order: ChannelOrder::Bgr, mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395] };

/// Strides of the three pyramid levels.
const STRIDES: [usize; 3] = [8, 16, 32];

/// Runtime options of an [`ObjectDetector`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorOptions {
    /// Keep detections scoring above this (0–1). Default 0.35: on the reference images true
    /// objects mostly score 0.4–0.88 and false positives 0.30–0.36.
    pub score_threshold: f32,
    /// Drop a box whose IoU with a better box of the same class exceeds this (0–1). Default 0.6,
    /// NanoDet's own setting.
    pub iou_threshold: f32,
    /// At most this many detections, best first (1–1000; default 100, as NanoDet).
    pub max_results: usize,
    /// Only these class indices (0-based COCO), if set.
    pub category_allowlist: Option<Vec<usize>>,
    /// Never these class indices.
    pub category_denylist: Vec<usize>,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.35,
            iou_threshold: 0.6,
            max_results: 100,
            category_allowlist: None,
            category_denylist: Vec::new(),
        }
    }
}

impl DetectorOptions {
    /// Sets `score_threshold`.
    pub fn with_score_threshold(mut self, t: f32) -> Self {
        self.score_threshold = t;
        self
    }

    /// Sets `iou_threshold`.
    pub fn with_iou_threshold(mut self, t: f32) -> Self {
        self.iou_threshold = t;
        self
    }

    /// Sets `max_results`.
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = n;
        self
    }

    /// Checks every option is in range.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return Err(Error::invalid_options(format!(
                "score_threshold must be between 0 and 1, got {}",
                self.score_threshold
            )));
        }
        if !(0.0..=1.0).contains(&self.iou_threshold) {
            return Err(Error::invalid_options(format!(
                "iou_threshold must be between 0 and 1, got {}",
                self.iou_threshold
            )));
        }
        if !(1..=1000).contains(&self.max_results) {
            return Err(Error::invalid_options(format!(
                "max_results must be between 1 and 1000, got {}",
                self.max_results
            )));
        }
        let lists = self.category_allowlist.iter().flatten().chain(&self.category_denylist);
        if let Some(bad) = lists.into_iter().find(|&&c| c >= COCO_CLASSES) {
            return Err(Error::invalid_options(format!(
                "category index {bad} is out of range (0–{})",
                COCO_CLASSES - 1
            )));
        }
        Ok(())
    }

    fn keeps(&self, class: usize) -> bool {
        self.category_allowlist.as_ref().is_none_or(|a| a.contains(&class)) && !self.category_denylist.contains(&class)
    }
}

/// A box in source-image pixels, top-left origin (like `DOMRect`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Left edge, pixels.
    pub x: f32,
    /// Top edge, pixels.
    pub y: f32,
    /// Width, pixels.
    pub width: f32,
    /// Height, pixels.
    pub height: f32,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// 0-based COCO-80 class index.
    pub index: usize,
    /// Class name.
    pub label: &'static str,
    /// Confidence, 0–1.
    pub score: f32,
    /// Where it is, in source-image pixels.
    pub bbox: BoundingBox,
}

/// A COCO-80 object detector (NanoDet-g-416) on one device. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct ObjectDetector {
    model: NanoDet,
    device: Device,
    options: DetectorOptions,
}

impl ObjectDetector {
    /// Loads the detector from safetensors `weights` onto `device`.
    pub fn from_bytes(weights: &[u8], device: &Device, options: DetectorOptions) -> Result<Self> {
        options.validate()?;
        let w = Weights::from_bytes(weights)?;
        let model = NanoDetConfig::g_416().load(&w, device)?;
        w.finish()?;
        Ok(Self { model, device: device.clone(), options })
    }

    /// The current options.
    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    /// Replaces the options, after validating them (on error nothing changes).
    pub fn set_options(&mut self, options: DetectorOptions) -> Result<()> {
        options.validate()?;
        self.options = options;
        Ok(())
    }

    /// The network input for `image`: the whole image stretched to 416×416, BGR, normalised.
    pub fn preprocess(&self, image: &Image<'_>) -> Input {
        preprocess(image, INPUT_SIZE, Resize::Stretch, &NORMALIZE)
    }

    /// The network itself.
    pub fn model(&self) -> &NanoDet {
        &self.model
    }

    /// Runs the network on preprocessed data and packs all outputs into one tensor, so a frame
    /// needs a single readback.
    ///
    /// # Shapes
    /// `[1, 3, 416, 416]` flattened → `[1, 3549, 124]`: per cell (levels in stride order,
    /// row-major) 80 class scores then 44 box logits.
    pub fn forward(&self, data: Vec<f32>) -> Tensor<3> {
        let x = Tensor::from_data(TensorData::new(data, [1, 3, INPUT_SIZE, INPUT_SIZE]), &self.device);
        let levels = self.model.forward(x);
        let per_level = levels.into_iter().map(|l| Tensor::cat(vec![l.cls, l.reg], 2)).collect();
        Tensor::cat(per_level, 1)
    }

    /// Detects objects, reading the result back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn detect(&self, image: &Image<'_>) -> Result<Vec<Detection>> {
        let input = self.preprocess(image);
        let data = self
            .forward(input.data)
            .try_into_data()
            .map_err(|e| Error::inference(format!("reading the detections back failed: {e}")))?;
        self.postprocess(&read_f32(data)?, image.width(), image.height())
    }

    /// Detects objects with one asynchronous readback (the only kind WebGPU allows).
    pub async fn detect_async(&self, image: &Image<'_>) -> Result<Vec<Detection>> {
        let input = self.preprocess(image);
        let data = self
            .forward(input.data)
            .into_data_async()
            .await
            .map_err(|e| Error::inference(format!("reading the detections back failed: {e}")))?;
        self.postprocess(&read_f32(data)?, image.width(), image.height())
    }

    /// Candidates in 416×416 input pixels, after decode and NMS, from the packed output.
    pub fn decode(&self, packed: &[f32], score_threshold: f32) -> Result<Vec<Candidate>> {
        let classes = COCO_CLASSES;
        let width = NanoDetConfig::g_416().head_channels();
        let bins = (width - classes) / 4;
        let cells: usize = STRIDES.iter().map(|s| (INPUT_SIZE / s).pow(2)).sum();
        if packed.len() != cells * width {
            return Err(Error::inference(format!(
                "network returned {} values, expected {}",
                packed.len(),
                cells * width
            )));
        }
        let layout = HeadLayout { classes, bins, input: INPUT_SIZE as f32 };
        let mut candidates = Vec::new();
        let mut start = 0;
        for stride in STRIDES {
            let grid = INPUT_SIZE / stride;
            let level = Level { grid, stride: stride as f32 };
            let cells = &packed[start * width..(start + grid * grid) * width];
            decode_level(cells, level, layout, score_threshold, |c| self.options.keeps(c), &mut candidates);
            start += grid * grid;
        }
        Ok(nms_per_class(candidates, self.options.iou_threshold, self.options.max_results))
    }

    /// Decodes the packed output and maps boxes to `width`×`height` source pixels.
    pub fn postprocess(&self, packed: &[f32], width: u32, height: u32) -> Result<Vec<Detection>> {
        let kept = self.decode(packed, self.options.score_threshold)?;
        let (sx, sy) = (width as f32 / INPUT_SIZE as f32, height as f32 / INPUT_SIZE as f32);
        Ok(kept
            .into_iter()
            .map(|c| Detection {
                index: c.class,
                label: coco_label(c.class),
                score: c.score,
                bbox: BoundingBox {
                    x: c.bbox.x1 * sx,
                    y: c.bbox.y1 * sy,
                    width: (c.bbox.x2 - c.bbox.x1) * sx,
                    height: (c.bbox.y2 - c.bbox.y1) * sy,
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(DetectorOptions::default().validate().is_ok());
        for bad in [
            DetectorOptions::default().with_score_threshold(1.5),
            DetectorOptions::default().with_score_threshold(f32::NAN),
            DetectorOptions::default().with_iou_threshold(-0.1),
            DetectorOptions::default().with_max_results(0),
            DetectorOptions { category_denylist: vec![80], ..Default::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let allow = DetectorOptions {
            category_allowlist: Some(vec![0, 16]),
            category_denylist: vec![16],
            ..Default::default()
        };
        assert!(allow.keeps(0) && !allow.keeps(16) && !allow.keeps(1));
    }
}
