//! Object detection with NanoDet-g-416 (COCO-80).

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use super::input::network_input;
use super::labels::Labels;
use super::readback;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::model::{NanoDet, NanoDetConfig, Precision, Weights};
use crate::postprocess::{Candidate, HeadLayout, Level, decode_level, keep_best, nms_per_class};
use crate::preprocess::{ChannelOrder, Input, Normalize, Resize, Transform, preprocess};

/// NanoDet's OpenCV-style preprocessing: BGR, `x = (v - mean) / std` (values from the training
/// config `nanodet-g.yml`).
const NORMALIZE: Normalize =
    Normalize { order: ChannelOrder::Bgr, mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395] };

/// The largest `max_results` accepted.
pub const MAX_RESULTS: usize = 1000;

/// Candidates kept per pyramid level before NMS, best first (NanoDet's `nms_pre`), so that a
/// threshold near 0 costs at most 3 × 1000 candidates instead of every (cell, class) pair.
const NMS_PRE: usize = 1000;

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
    /// Only these class indices, if set. `Some(vec![])` lets no class through; `None` (the
    /// default) applies no allowlist.
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

    /// Checks every option is in range, class indices against a model with `classes` classes.
    pub fn validate(&self, classes: usize) -> Result<()> {
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
        if !(1..=MAX_RESULTS).contains(&self.max_results) {
            return Err(Error::invalid_options(format!(
                "max_results must be between 1 and {MAX_RESULTS}, got {}",
                self.max_results
            )));
        }
        let lists = self.category_allowlist.iter().flatten().chain(&self.category_denylist);
        if let Some(bad) = lists.into_iter().find(|&&c| c >= classes) {
            return Err(Error::invalid_options(format!(
                "category index {bad} is out of range (0–{})",
                classes.saturating_sub(1)
            )));
        }
        Ok(())
    }

    fn keeps(&self, class: usize) -> bool {
        self.category_allowlist.as_ref().is_none_or(|a| a.contains(&class)) && !self.category_denylist.contains(&class)
    }
}

/// A box in source-image pixels, top-left origin (like `DOMRect`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// 0-based class index.
    pub index: usize,
    /// Class name.
    pub label: String,
    /// Confidence, 0–1.
    pub score: f32,
    /// Where it is, in source-image pixels.
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
}

/// The result of detecting objects in one image, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detections {
    /// At most `max_results` detections, by descending score.
    pub detections: Vec<Detection>,
}

/// How to read the packed head output, derived once from the configuration the model was
/// built from.
#[derive(Debug, Clone)]
struct Decoder {
    layout: HeadLayout,
    levels: Vec<Level>,
    /// Values per cell (`classes + 4 · bins`).
    width: usize,
    /// Cells over all levels.
    cells: usize,
}

impl Decoder {
    fn new(config: &NanoDetConfig) -> Self {
        let width = config.head_channels();
        let levels: Vec<Level> = config
            .strides
            .iter()
            .zip(config.grids())
            .map(|(&stride, grid)| Level { grid, stride: stride as f32 })
            .collect();
        Self {
            layout: HeadLayout { classes: config.classes, bins: config.reg_max + 1, input: config.input as f32 },
            cells: levels.iter().map(|l| l.grid * l.grid).sum(),
            levels,
            width,
        }
    }
}

/// A COCO-80 object detector (NanoDet-g-416) on one device. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct ObjectDetector {
    model: NanoDet,
    config: NanoDetConfig,
    precision: Precision,
    decoder: Decoder,
    labels: Labels,
    device: Device,
    options: DetectorOptions,
}

impl ObjectDetector {
    /// Loads the detector from safetensors `weights` onto `device`. The options are checked
    /// first, so a bad option costs no loading.
    pub fn from_bytes(weights: &[u8], device: &Device, options: DetectorOptions) -> Result<Self> {
        let labels = Labels::coco();
        options.validate(labels.len())?;
        let config = NanoDetConfig::g_416();
        let w = Weights::from_bytes(weights, config.name)?;
        let model = config.load(&w, device)?;
        let precision = w.precision();
        w.finish()?;
        let decoder = Decoder::new(&config);
        Ok(Self { model, config, precision, decoder, labels, device: device.clone(), options })
    }

    /// The current options.
    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    /// Replaces the options, after validating them (on error nothing changes).
    pub fn set_options(&mut self, options: DetectorOptions) -> Result<()> {
        options.validate(self.labels.len())?;
        self.options = options;
        Ok(())
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network itself.
    pub fn model(&self) -> &NanoDet {
        &self.model
    }

    /// The class names, by index.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The precision the weights were stored in (the network computes in f32 either way).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The network input for `image`: the whole image stretched to the square input, BGR,
    /// normalised.
    pub fn preprocess(&self, image: &Image<'_>) -> Input {
        preprocess(image, self.config.input, Resize::Stretch, &NORMALIZE)
    }

    /// Runs the network on preprocessed data and packs all outputs into one tensor, so a frame
    /// needs a single readback.
    ///
    /// # Shapes
    /// `[1, 3, input, input]` flattened → `[1, cells, classes + 4 · bins]` (`[1, 3549, 124]`
    /// for NanoDet-g-416): per cell (levels finest first, row-major) class scores then box logits.
    pub fn forward(&self, data: Vec<f32>) -> Tensor<3> {
        let side = self.config.input;
        let x = Tensor::from_data(TensorData::new(data, [1, 3, side, side]), &self.device);
        self.model.forward_packed(x)
    }

    /// Detects objects, reading the result back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn detect(&self, image: &Image<'_>) -> Result<Detections> {
        // The whole frame in one forward pass (see `ImageClassifier::classify`).
        crate::model::forward_pass(&self.device, || {
            let (packed, transform) = self.frame_packed(image);
            self.postprocess(&readback::read(packed, "detections")?, &transform)
        })
    }

    /// Detects objects with one asynchronous readback (the only kind WebGPU allows).
    pub async fn detect_async(&self, image: &Image<'_>) -> Result<Detections> {
        let (packed, transform) = self.frame_packed(image);
        self.postprocess(&readback::read_async(packed, "detections").await?, &transform)
    }

    /// The packed output of `image` (lazily), its input prepared on the device where it can be.
    fn frame_packed(&self, image: &Image<'_>) -> (Tensor<3>, Transform) {
        let (x, transform) = network_input(image, self.config.input, Resize::Stretch, &NORMALIZE, &self.device);
        (self.model.forward_packed(x), transform)
    }

    /// Candidates in network-input pixels, after decode and NMS, from the packed output.
    pub fn decode(&self, packed: &[f32], score_threshold: f32) -> Result<Vec<Candidate>> {
        let Decoder { layout, levels, width, cells } = &self.decoder;
        if packed.len() != cells * width {
            return Err(Error::inference(format!(
                "network returned {} values, expected {}",
                packed.len(),
                cells * width
            )));
        }
        let mut candidates = Vec::new();
        let mut start = 0;
        for &level in levels {
            let (end, from) = (start + level.grid * level.grid * width, candidates.len());
            let keeps = |c| self.options.keeps(c);
            decode_level(&packed[start..end], level, *layout, score_threshold, keeps, &mut candidates);
            keep_best(&mut candidates, from, NMS_PRE);
            start = end;
        }
        Ok(nms_per_class(candidates, self.options.iou_threshold, self.options.max_results))
    }

    /// Decodes the packed output and maps boxes back to source pixels through `transform`
    /// (what preprocessing did to the image).
    pub fn postprocess(&self, packed: &[f32], transform: &Transform) -> Result<Detections> {
        let kept = self.decode(packed, self.options.score_threshold)?;
        let detections = kept
            .into_iter()
            .map(|c| {
                let (x, y) = (transform.source_x(c.bbox.x1), transform.source_y(c.bbox.y1));
                Detection {
                    index: c.class,
                    label: self.labels.name(c.class).to_owned(),
                    score: c.score,
                    bbox: BoundingBox {
                        x,
                        y,
                        width: transform.source_x(c.bbox.x2) - x,
                        height: transform.source_y(c.bbox.y2) - y,
                    },
                }
            })
            .collect();
        Ok(Detections { detections })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(DetectorOptions::default().validate(80).is_ok());
        for bad in [
            DetectorOptions::default().with_score_threshold(1.5),
            DetectorOptions::default().with_score_threshold(f32::NAN),
            DetectorOptions::default().with_iou_threshold(-0.1),
            DetectorOptions::default().with_max_results(0),
            DetectorOptions { category_denylist: vec![80], ..Default::default() },
        ] {
            assert!(bad.validate(80).is_err(), "{bad:?}");
        }
        let allow = DetectorOptions {
            category_allowlist: Some(vec![0, 16]),
            category_denylist: vec![16],
            ..Default::default()
        };
        assert!(allow.keeps(0) && !allow.keeps(16) && !allow.keeps(1));
        let empty = DetectorOptions { category_allowlist: Some(vec![]), ..Default::default() };
        assert!(!empty.keeps(0), "an empty allowlist lets nothing through");
    }

    #[test]
    fn the_decoder_follows_the_configuration() {
        let d = Decoder::new(&NanoDetConfig::g_416());
        assert_eq!((d.width, d.cells), (124, 52 * 52 + 26 * 26 + 13 * 13));
        assert_eq!(
            d.levels.iter().map(|l| (l.grid, l.stride)).collect::<Vec<_>>(),
            [(52, 8.0), (26, 16.0), (13, 32.0)]
        );
    }
}
