//! Image classification with EfficientNet-Lite0 (ImageNet-1k).

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use super::labels::Labels;
use super::readback;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::model::{EfficientNetLite, EfficientNetLiteConfig, Precision, Weights};
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

/// An ImageNet-1k classifier (EfficientNet-Lite0) on one device. Cloning is cheap: the weights
/// are shared, not copied.
#[derive(Debug, Clone)]
pub struct ImageClassifier {
    model: EfficientNetLite,
    config: EfficientNetLiteConfig,
    precision: Precision,
    labels: Labels,
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
        Ok(Self { model, config, precision, labels: Labels::imagenet(), device: device.clone(), options })
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
        let side = self.config.input;
        self.model.forward(Tensor::from_data(TensorData::new(data, [1, 3, side, side]), &self.device))
    }

    /// Classifies `image`, reading the result back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn classify(&self, image: &Image<'_>) -> Result<Classification> {
        self.postprocess(&readback::read(self.forward(self.preprocess(image).data), "logits")?)
    }

    /// Classifies `image` with one asynchronous readback (the only kind WebGPU allows).
    pub async fn classify_async(&self, image: &Image<'_>) -> Result<Classification> {
        self.postprocess(&readback::read_async(self.forward(self.preprocess(image).data), "logits").await?)
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
