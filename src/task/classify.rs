//! Image classification with EfficientNet-Lite0 (ImageNet-1k).

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use super::detect::BoundingBox;
use super::head::Head;
use super::input::network_input;
use super::labels::Labels;
use super::readback;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::model::{EfficientNetLite, EfficientNetLiteConfig, Precision, Weights, global_average_pool, linear};
use crate::postprocess::{softmax, top_k};
use crate::preprocess::{ChannelOrder, Input, Normalize, Resize, preprocess};

/// EfficientNet-Lite's TF preprocessing: `x = (v - 127) / 128`, RGB (from the TF reference
/// implementation's `MEAN_RGB = 127`, `STDDEV_RGB = 128` for the Lite models).
const NORMALIZE: Normalize = Normalize { order: ChannelOrder::Rgb, mean: [127.0; 3], std: [128.0; 3] };

/// The largest `max_results` accepted (every ImageNet class).
pub const MAX_RESULTS: usize = 1000;

/// Runtime options of an [`ImageClassifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierOptions {
    /// How many classes to return, best first (1–1000; default 5). Fewer come back when the
    /// model has fewer classes.
    pub max_results: usize,
    /// How the image is fitted to the square input (default: centre crop, keeping the aspect ratio).
    pub resize: Resize,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self { max_results: 5, resize: Resize::CenterCrop }
    }
}

impl ClassifierOptions {
    /// Sets `max_results`.
    pub fn with_max_results(mut self, max_results: usize) -> Self {
        self.max_results = max_results;
        self
    }

    /// Sets `max_results` (its former name).
    #[deprecated(since = "0.1.0", note = "use `with_max_results`")]
    pub fn with_top_k(self, top_k: usize) -> Self {
        self.with_max_results(top_k)
    }

    /// Sets `resize`.
    pub fn with_resize(mut self, resize: Resize) -> Self {
        self.resize = resize;
        self
    }

    /// Checks every option is in range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_RESULTS).contains(&self.max_results) {
            return Err(Error::invalid_options(format!(
                "max_results must be between 1 and {MAX_RESULTS}, got {}",
                self.max_results
            )));
        }
        Ok(())
    }
}

/// One class of a [`Classification`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    /// 0-based class index.
    pub index: usize,
    /// Readable class name.
    pub label: String,
    /// Softmax probability, 0–1.
    pub score: f32,
}

/// The result of classifying one image: the best `max_results` classes, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// Classes sorted by descending score.
    pub classes: Vec<Category>,
}

/// Why the classifier decided: a class-activation map (Grad-CAM) of one class over the last
/// convolutional feature map, and the region of the source image that the map covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The class explained (0-based).
    pub index: usize,
    /// Its name.
    pub label: String,
    /// Its softmax probability, 0–1.
    pub score: f32,
    /// The region of the source image the grid covers, in source pixels (the centre crop for
    /// `Resize::CenterCrop`, the whole image for `Resize::Stretch`).
    #[serde(rename = "box")]
    pub region: BoundingBox,
    /// Grid rows (7 for a 224×224 input).
    pub rows: usize,
    /// Grid columns.
    pub cols: usize,
    /// `rows × cols` values in 0–1, row-major from the top left: the ReLU'd map divided by its
    /// maximum (all zeros when nothing speaks for the class).
    pub grid: Vec<f32>,
}

impl Explanation {
    /// The map's value at source pixel `(x, y)` (continuous coordinates: a pixel's centre is
    /// at +0.5), interpolated bilinearly between cell centres; `None` outside the region.
    pub fn sample(&self, x: f32, y: f32) -> Option<f32> {
        let r = &self.region;
        if self.grid.len() != self.rows * self.cols || self.grid.is_empty() || r.width <= 0.0 || r.height <= 0.0 {
            return None;
        }
        let (u, v) = ((x - r.x) / r.width, (y - r.y) / r.height);
        if !(0.0..=1.0).contains(&u) || !(0.0..=1.0).contains(&v) {
            return None;
        }
        let axis = |t: f32, n: usize| {
            let p = (t * n as f32 - 0.5).clamp(0.0, (n - 1) as f32);
            let i = (p.floor() as usize).min(n.saturating_sub(2));
            (i, (i + 1).min(n - 1), p - i as f32)
        };
        let (c0, c1, fx) = axis(u, self.cols);
        let (r0, r1, fy) = axis(v, self.rows);
        let at = |row: usize, col: usize| self.grid[row * self.cols + col];
        let top = at(r0, c0) * (1.0 - fx) + at(r0, c1) * fx;
        let bottom = at(r1, c0) * (1.0 - fx) + at(r1, c1) * fx;
        Some(top * (1.0 - fy) + bottom * fy)
    }
}

/// An image classifier on one device: EfficientNet-Lite0 with its ImageNet-1k layer, or with a
/// custom [`Head`] over the same backbone. Cloning is cheap: the weights are shared, not copied.
#[derive(Debug, Clone)]
pub struct ImageClassifier {
    model: EfficientNetLite,
    config: EfficientNetLiteConfig,
    precision: Precision,
    labels: Labels,
    /// A custom head in place of the ImageNet layer.
    head: Option<Head>,
    device: Device,
    options: ClassifierOptions,
}

impl ImageClassifier {
    /// Loads the classifier from safetensors `weights` onto `device`. The options are checked
    /// first, so a bad option costs no loading.
    pub fn from_bytes(weights: &[u8], device: &Device, options: ClassifierOptions) -> Result<Self> {
        options.validate()?;
        let config = EfficientNetLiteConfig::lite0();
        let w = Weights::from_bytes(weights, config.name)?;
        let model = config.load(&w, device)?;
        let precision = w.precision();
        w.finish()?;
        Ok(Self { model, config, precision, labels: Labels::imagenet(), head: None, device: device.clone(), options })
    }

    /// The same backbone (shared, not reloaded) with `head` in place of the classifier layer:
    /// results use the head's labels. `max_results` is kept, capped at the head's class count.
    pub fn with_head(&self, head: &Head) -> Self {
        let head = head.to_device(&self.device);
        let mut options = self.options.clone();
        options.max_results = options.max_results.min(head.labels().len());
        Self { labels: head.labels().clone(), head: Some(head), options, ..self.clone() }
    }

    /// The custom head, if one replaced the ImageNet layer.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// The current options.
    pub fn options(&self) -> &ClassifierOptions {
        &self.options
    }

    /// Replaces the options, after validating them (on error nothing changes).
    pub fn set_options(&mut self, options: ClassifierOptions) -> Result<()> {
        options.validate()?;
        self.options = options;
        Ok(())
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network itself.
    pub fn model(&self) -> &EfficientNetLite {
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

    /// The network input for `image` under the current options.
    pub fn preprocess(&self, image: &Image<'_>) -> Input {
        preprocess(image, self.config.input, self.options.resize, &NORMALIZE)
    }

    /// Runs the network on preprocessed NCHW data (lazily: nothing is read back).
    ///
    /// # Shapes
    /// `data`: `[1, 3, input, input]` flattened → `[1, classes]` logits
    pub fn forward(&self, data: Vec<f32>) -> Tensor<2> {
        self.logits(self.model.pooled(self.input_tensor(data)))
    }

    fn input_tensor(&self, data: Vec<f32>) -> Tensor<4> {
        let side = self.config.input;
        let batch = data.len() / (3 * side * side);
        Tensor::from_data(TensorData::new(data, [batch, 3, side, side]), &self.device)
    }

    /// The classifier layer in use (the custom head's, or the ImageNet one).
    fn classifier_layer(&self) -> &burn::nn::Linear {
        self.head.as_ref().map_or(self.model.classifier(), Head::linear)
    }

    fn logits(&self, pooled: Tensor<2>) -> Tensor<2> {
        linear(self.classifier_layer(), pooled)
    }

    /// The pooled features of one or more preprocessed inputs (lazily: nothing is read back).
    ///
    /// # Shapes
    /// `data`: `[b, 3, input, input]` flattened → `[b, 1280]`
    pub fn embed_tensor(&self, data: Vec<f32>) -> Tensor<2> {
        self.model.pooled(self.input_tensor(data))
    }

    /// The 1280 pooled features of `image` (before the classifier layer; same preprocessing as
    /// `classify`), read back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn embed(&self, image: &Image<'_>) -> Result<Vec<f32>> {
        readback::read(self.embed_tensor(self.preprocess(image).data), "features")
    }

    /// The 1280 pooled features of `image`, with one asynchronous readback.
    pub async fn embed_async(&self, image: &Image<'_>) -> Result<Vec<f32>> {
        readback::read_async(self.embed_tensor(self.preprocess(image).data), "features").await
    }

    /// Embeddings of `image` for training: the plain one, then (with `augment`) its mirror image
    /// and two shifted crops, mirrored too — 6 in all.
    #[cfg(not(target_family = "wasm"))]
    pub fn embed_examples(&self, image: &Image<'_>, augment: bool) -> Result<Vec<Vec<f32>>> {
        let (data, count) = self.example_inputs(image, augment);
        let features = readback::read(self.embed_tensor(data), "features")?;
        Ok(features.chunks_exact(features.len() / count).map(<[f32]>::to_vec).collect())
    }

    /// [`Self::embed_examples`] with one asynchronous readback.
    pub async fn embed_examples_async(&self, image: &Image<'_>, augment: bool) -> Result<Vec<Vec<f32>>> {
        let (data, count) = self.example_inputs(image, augment);
        let features = readback::read_async(self.embed_tensor(data), "features").await?;
        Ok(features.chunks_exact(features.len() / count).map(<[f32]>::to_vec).collect())
    }

    /// The batch of inputs behind `embed_examples`, and its size.
    fn example_inputs(&self, image: &Image<'_>, augment: bool) -> (Vec<f32>, usize) {
        let side = self.config.input;
        let plain = self.preprocess(image).data;
        if !augment {
            return (plain, 1);
        }
        // Crops 1/14 of the side (16 px at 224) up-left and down-right of the centre crop.
        let shift = (side / 14) as i32;
        let mut batch = Vec::with_capacity(6 * plain.len());
        for input in [plain, shifted_crop(image, side, -shift), shifted_crop(image, side, shift)] {
            let mirrored = mirror(&input, side);
            batch.extend_from_slice(&input);
            batch.extend_from_slice(&mirrored);
        }
        (batch, 6)
    }

    /// Explains the decision for class `index` (default: the top class) with a class-activation
    /// map, reading back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn explain(&self, image: &Image<'_>, index: Option<usize>) -> Result<Explanation> {
        let (input, tensor) = self.explain_tensor(image, index)?;
        self.explanation(&input, &readback::read(tensor, "activation maps")?, index)
    }

    /// [`Self::explain`] with one asynchronous readback.
    pub async fn explain_async(&self, image: &Image<'_>, index: Option<usize>) -> Result<Explanation> {
        let (input, tensor) = self.explain_tensor(image, index)?;
        self.explanation(&input, &readback::read_async(tensor, "activation maps").await?, index)
    }

    /// The logits and every class's activation map, packed for one readback:
    /// `[classes + classes · rows · cols]`.
    ///
    /// For this network (conv head → global average pool → linear), Grad-CAM's channel weights
    /// `mean_ij ∂y_c/∂A_k(i,j)` are the class's linear weights `w_kc / (rows · cols)`, so the
    /// Grad-CAM map is `ReLU(Σ_k w_kc A_k)` up to a positive factor that the normalisation
    /// removes: the class-activation map (CAM). tests/native.rs checks this against Grad-CAM
    /// computed with burn's autodiff.
    fn explain_tensor(&self, image: &Image<'_>, index: Option<usize>) -> Result<(Input, Tensor<1>)> {
        if let Some(index) = index
            && index >= self.labels.len()
        {
            return Err(Error::invalid_options(format!(
                "index must be a class index below {}, got {index}",
                self.labels.len()
            )));
        }
        let input = self.preprocess(image);
        let map = self.model.feature_map(self.input_tensor(input.data.clone()));
        let [_, channels, rows, cols] = map.dims();
        let logits = self.logits(global_average_pool(map.clone()));
        let classes = self.labels.len();
        // [classes, channels] × [channels, rows · cols]
        let weights = self.classifier_layer().weight.val().transpose();
        let maps = weights.matmul(map.reshape([channels, rows * cols]));
        Ok((input, Tensor::cat(vec![logits.reshape([classes]), maps.reshape([classes * rows * cols])], 0)))
    }

    fn explanation(&self, input: &Input, packed: &[f32], index: Option<usize>) -> Result<Explanation> {
        let classes = self.labels.len();
        let cells = packed.len().saturating_sub(classes) / classes.max(1);
        let side = self.config.input;
        let rows = side.div_ceil(32);
        if packed.len() != classes * (1 + rows * rows) || cells != rows * rows {
            return Err(Error::inference(format!("the activation maps have {} values, unexpected", packed.len())));
        }
        let (logits, maps) = packed.split_at(classes);
        let probabilities = softmax(logits);
        let index = index.unwrap_or_else(|| top_k(&probabilities, 1).first().map_or(0, |&(i, _)| i));
        let raw = &maps[index * cells..(index + 1) * cells];
        let peak = raw.iter().fold(0.0f32, |m, &v| m.max(v));
        let grid = raw.iter().map(|&v| if peak > 0.0 { v.max(0.0) / peak } else { 0.0 }).collect();
        let t = &input.transform;
        let (x, y) = (t.source_x(0.0), t.source_y(0.0));
        let region = BoundingBox { x, y, width: t.source_x(side as f32) - x, height: t.source_y(side as f32) - y };
        Ok(Explanation {
            index,
            label: self.labels.name(index).to_owned(),
            score: probabilities[index],
            region,
            rows,
            cols: rows,
            grid,
        })
    }

    /// Classifies `image`, reading the result back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn classify(&self, image: &Image<'_>) -> Result<Classification> {
        // The whole frame in one forward pass: on the CPU natively, the resize's parallel loop
        // runs on the pool with the network's, in one hand-over.
        crate::model::forward_pass(&self.device, || {
            self.postprocess(&readback::read(self.frame_logits(image), "logits")?)
        })
    }

    /// Classifies `image` with one asynchronous readback (the only kind WebGPU allows).
    pub async fn classify_async(&self, image: &Image<'_>) -> Result<Classification> {
        self.postprocess(&readback::read_async(self.frame_logits(image), "logits").await?)
    }

    /// The logits of `image` (lazily), its input prepared on the device where it can be.
    fn frame_logits(&self, image: &Image<'_>) -> Tensor<2> {
        let (x, _) = network_input(image, self.config.input, self.options.resize, &NORMALIZE, &self.device);
        self.logits(self.model.pooled(x))
    }

    /// Turns logits into the best `max_results` classes with softmax probabilities.
    pub fn postprocess(&self, logits: &[f32]) -> Result<Classification> {
        if logits.len() != self.labels.len() {
            return Err(Error::inference(format!(
                "network returned {} logits, expected {}",
                logits.len(),
                self.labels.len()
            )));
        }
        let probabilities = softmax(logits);
        let classes = top_k(&probabilities, self.options.max_results)
            .into_iter()
            .map(|(index, score)| Category { index, label: self.labels.name(index).to_owned(), score })
            .collect();
        Ok(Classification { classes })
    }
}

/// `input` (NCHW, one image) mirrored left to right.
fn mirror(input: &[f32], side: usize) -> Vec<f32> {
    input.chunks_exact(side).flat_map(|row| row.iter().rev().copied()).collect()
}

/// The centre-crop input of `image` with its window moved by `shift` pixels on both axes
/// (clamped to the resized image).
fn shifted_crop(image: &Image<'_>, side: usize, shift: i32) -> Vec<f32> {
    crate::preprocess::preprocess_shifted(image, side, &NORMALIZE, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(ClassifierOptions::default().validate().is_ok());
        let e = ClassifierOptions::default().with_max_results(0).validate().unwrap_err();
        assert!(e.message().contains("got 0"), "{e}");
        assert!(ClassifierOptions::default().with_max_results(1001).validate().is_err());
        #[allow(deprecated)]
        let old = ClassifierOptions::default().with_top_k(3);
        assert_eq!(old.max_results, 3);
    }
}
