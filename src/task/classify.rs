//! Image classification with EfficientNet-Lite0 (ImageNet-1k).

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::image::Image;
use crate::model::{EfficientNetLite, EfficientNetLiteConfig, Weights};
use crate::postprocess::{softmax, top_k};
use crate::preprocess::{ChannelOrder, Input, Normalize, Resize, preprocess};

use super::labels::imagenet_label;

/// Input side of the classifier, in pixels.
pub const INPUT_SIZE: usize = 224;

/// EfficientNet-Lite's TF preprocessing: `x = (v - 127) / 128`, RGB.
const NORMALIZE: Normalize = Normalize { order: ChannelOrder::Rgb, mean: [127.0; 3], std: [128.0; 3] };

/// Number of classes of the default model.
const CLASSES: usize = 1000;

/// Runtime options of an [`ImageClassifier`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifierOptions {
    /// How many classes to return, best first (1–1000; default 5).
    pub top_k: usize,
    /// How the image is fitted to 224×224 (default: centre crop, keeping the aspect ratio).
    pub resize: Resize,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self { top_k: 5, resize: Resize::CenterCrop }
    }
}

impl ClassifierOptions {
    /// Sets `top_k`.
    pub fn with_top_k(mut self, top_k: usize) -> Self {
        self.top_k = top_k;
        self
    }

    /// Sets `resize`.
    pub fn with_resize(mut self, resize: Resize) -> Self {
        self.resize = resize;
        self
    }

    /// Checks every option is in range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=CLASSES).contains(&self.top_k) {
            return Err(Error::invalid_options(format!("top_k must be between 1 and {CLASSES}, got {}", self.top_k)));
        }
        Ok(())
    }
}

/// One class of a [`Classification`].
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// 0-based ImageNet-1k class index.
    pub index: usize,
    /// Readable class name.
    pub label: &'static str,
    /// Softmax probability, 0–1.
    pub score: f32,
}

/// The result of classifying one image: the `top_k` classes, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Classes sorted by descending score.
    pub classes: Vec<Category>,
}

/// An ImageNet-1k classifier (EfficientNet-Lite0) on one device. Cloning is cheap: the weights
/// are shared, not copied.
#[derive(Debug, Clone)]
pub struct ImageClassifier {
    model: EfficientNetLite,
    device: Device,
    options: ClassifierOptions,
}

impl ImageClassifier {
    /// Loads the classifier from safetensors `weights` onto `device`.
    pub fn from_bytes(weights: &[u8], device: &Device, options: ClassifierOptions) -> Result<Self> {
        options.validate()?;
        let w = Weights::from_bytes(weights)?;
        let model = EfficientNetLiteConfig::lite0().load(&w, device)?;
        w.finish()?;
        Ok(Self { model, device: device.clone(), options })
    }

    /// The current options.
    pub fn options(&self) -> ClassifierOptions {
        self.options
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

    /// The network input for `image` under the current options.
    pub fn preprocess(&self, image: &Image<'_>) -> Input {
        preprocess(image, INPUT_SIZE, self.options.resize, &NORMALIZE)
    }

    /// Runs the network on preprocessed NCHW data (lazily: nothing is read back).
    ///
    /// # Shapes
    /// `data`: `[1, 3, 224, 224]` flattened → `[1, 1000]` logits
    pub fn forward(&self, data: Vec<f32>) -> Tensor<2> {
        let x = Tensor::from_data(TensorData::new(data, [1, 3, INPUT_SIZE, INPUT_SIZE]), &self.device);
        self.model.forward(x)
    }

    /// Classifies `image`, reading the result back synchronously (native targets only).
    #[cfg(not(target_family = "wasm"))]
    pub fn classify(&self, image: &Image<'_>) -> Result<Classification> {
        let logits = self.forward(self.preprocess(image).data);
        let data =
            logits.try_into_data().map_err(|e| Error::inference(format!("reading the logits back failed: {e}")))?;
        self.postprocess(&read_f32(data)?)
    }

    /// Classifies `image` with one asynchronous readback (the only kind WebGPU allows).
    pub async fn classify_async(&self, image: &Image<'_>) -> Result<Classification> {
        let logits = self.forward(self.preprocess(image).data);
        let data = logits
            .into_data_async()
            .await
            .map_err(|e| Error::inference(format!("reading the logits back failed: {e}")))?;
        self.postprocess(&read_f32(data)?)
    }

    /// Turns logits into the `top_k` classes with softmax probabilities.
    pub fn postprocess(&self, logits: &[f32]) -> Result<Classification> {
        if logits.len() != CLASSES {
            return Err(Error::inference(format!("network returned {} logits, expected {CLASSES}", logits.len())));
        }
        let probabilities = softmax(logits);
        let classes = top_k(&probabilities, self.options.top_k)
            .into_iter()
            .map(|(index, score)| Category { index, label: imagenet_label(index), score })
            .collect();
        Ok(Classification { classes })
    }
}

/// The f32 values of read-back tensor data.
pub(crate) fn read_f32(data: TensorData) -> Result<Vec<f32>> {
    data.try_into_vec::<f32>().map_err(|e| Error::inference(format!("unexpected output data: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(ClassifierOptions::default().validate().is_ok());
        let e = ClassifierOptions::default().with_top_k(0).validate().unwrap_err();
        assert!(e.message().contains("got 0"), "{e}");
        assert!(ClassifierOptions::default().with_top_k(1001).validate().is_err());
    }
}
