//! Custom classification heads: a linear layer over EfficientNet-Lite0's 1280 pooled features,
//! with its own class names — what `sightline train` and the browser trainer make, and what
//! `ImageClassifier::with_head` classifies with.
//!
//! A head file is safetensors: `weight` (f32 `[classes, 1280]`, PyTorch's `[out, in]` layout,
//! like the backbone's `_fc.weight`) and `bias` (f32 `[classes]`), with a header that says what it
//! is: `format` = `sightline-head`, `format_version` = `1`, `backbone` = `efficientnet-lite0`,
//! `features` = `1280` and `labels` = the class names as a JSON array.

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::labels::Labels;
use crate::error::{Error, Result};
use crate::model::EfficientNetLiteConfig;

/// The `format` entry of a head file's header.
const FORMAT: &str = "sightline-head";
/// The head format version this crate writes and reads.
const FORMAT_VERSION: &str = "1";

/// The backbone heads are trained on (its name in weights files).
pub fn backbone_name() -> &'static str {
    EfficientNetLiteConfig::lite0().name
}

/// The number of features a head takes (EfficientNet-Lite0's pooled features).
pub fn feature_size() -> usize {
    EfficientNetLiteConfig::lite0().head
}

/// A linear classifier over the backbone's pooled features, with its class names. Holds its
/// values on the host (to export them) and as a burn layer on one device. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Head {
    labels: Labels,
    /// `[classes, features]`, row-major.
    weight: Arc<[f32]>,
    bias: Arc<[f32]>,
    linear: Linear,
}

impl Head {
    /// A head from its values: `weight` `[classes, features]` row-major (PyTorch's layout) and
    /// `bias` `[classes]`, one class per label.
    pub fn new(labels: Labels, weight: Vec<f32>, bias: Vec<f32>, device: &Device) -> Result<Self> {
        let (classes, features) = (labels.len(), feature_size());
        if weight.len() != classes * features || bias.len() != classes {
            return Err(Error::model_load(format!(
                "a head for {classes} classes needs {} weights and {classes} biases, got {} and {}",
                classes * features,
                weight.len(),
                bias.len()
            )));
        }
        if let Some(i) = weight.iter().chain(&bias).position(|v| !v.is_finite()) {
            return Err(Error::model_load(format!("the head holds a non-finite value at element {i}")));
        }
        let linear = linear(&weight, &bias, classes, features, device);
        Ok(Self { labels, weight: weight.into(), bias: bias.into(), linear })
    }

    /// Reads a head file (see the module docs). Every problem is a `ModelLoad` error: not
    /// safetensors, another format or version, a head for another backbone or feature size,
    /// labels that are not a valid list, tensors of the wrong shape or type, extra tensors.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        let invalid = |e: &dyn std::fmt::Display| Error::model_load(format!("not a valid head file: {e}"));
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(&e))?;
        let header: HashMap<String, String> = metadata.metadata().clone().unwrap_or_default();
        let file = SafeTensors::deserialize(bytes).map_err(|e| invalid(&e))?;
        let entry = |key: &str| header.get(key).map(String::as_str);
        if entry("format") != Some(FORMAT) {
            return Err(Error::model_load(format!(
                "not a sightline head file (its header's format is {:?}, expected {FORMAT:?})",
                entry("format").unwrap_or("missing")
            )));
        }
        if entry("format_version") != Some(FORMAT_VERSION) {
            return Err(Error::model_load(format!(
                "the head uses format version {:?}; this version of sightline reads version {FORMAT_VERSION}",
                entry("format_version").unwrap_or("missing")
            )));
        }
        let backbone = backbone_name();
        if entry("backbone") != Some(backbone) {
            return Err(Error::model_load(format!(
                "the head was trained on {:?}, not {backbone}",
                entry("backbone").unwrap_or("an unnamed backbone")
            )));
        }
        let features = feature_size();
        if entry("features") != Some(features.to_string().as_str()) {
            return Err(Error::model_load(format!(
                "the head takes {} features; {backbone} gives {features}",
                entry("features").unwrap_or("an unstated number of")
            )));
        }
        let names: Vec<String> = serde_json::from_str(entry("labels").unwrap_or(""))
            .map_err(|e| Error::model_load(format!("the head's labels are not a JSON list of strings: {e}")))?;
        let labels =
            Labels::new(names).map_err(|e| Error::model_load(format!("the head's labels: {}", e.message())))?;
        let classes = labels.len();
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let view = file.tensor(name).map_err(|_| Error::model_load(format!("the head lacks tensor `{name}`")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape {
                return Err(Error::model_load(format!(
                    "the head's `{name}` is {:?} {:?}, expected F32 {shape:?}",
                    view.dtype(),
                    view.shape()
                )));
            }
            Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let weight = read("weight", &[classes, features])?;
        let bias = read("bias", &[classes])?;
        if file.len() != 2 {
            return Err(Error::model_load(format!(
                "the head holds {} tensors, expected `weight` and `bias`",
                file.len()
            )));
        }
        Self::new(labels, weight, bias, device)
    }

    /// The head as a head file (see the module docs).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes = |values: &[f32]| values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        let (weight, bias) = (bytes(&self.weight), bytes(&self.bias));
        let (classes, features) = (self.labels.len(), feature_size());
        let tensors = [("weight", view(&weight, vec![classes, features])?), ("bias", view(&bias, vec![classes])?)];
        let labels = serde_json::to_string(self.labels.names())
            .map_err(|e| Error::inference(format!("cannot write the head's labels: {e}")))?;
        let header: HashMap<String, String> = [
            ("format", FORMAT.to_owned()),
            ("format_version", FORMAT_VERSION.to_owned()),
            ("backbone", backbone_name().to_owned()),
            ("features", features.to_string()),
            ("labels", labels),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        safetensors::serialize(tensors, Some(header))
            .map_err(|e| Error::inference(format!("cannot write the head: {e}")))
    }

    /// The same head on another device.
    pub fn to_device(&self, device: &Device) -> Self {
        let linear = linear(&self.weight, &self.bias, self.labels.len(), feature_size(), device);
        Self { linear, ..self.clone() }
    }

    /// The class names.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The layer, on its device.
    pub fn linear(&self) -> &Linear {
        &self.linear
    }

    /// Logits for pooled features.
    ///
    /// # Shapes
    /// `[b, 1280]` → `[b, classes]`
    pub fn forward(&self, pooled: Tensor<2>) -> Tensor<2> {
        crate::model::linear(&self.linear, pooled)
    }
}

fn view(data: &[u8], shape: Vec<usize>) -> Result<TensorView<'_>> {
    TensorView::new(Dtype::F32, shape, data).map_err(|e| Error::inference(format!("cannot write the head: {e}")))
}

/// A burn `Linear` (`[in, out]` weight) from `[out, in]` row-major values.
fn linear(weight: &[f32], bias: &[f32], classes: usize, features: usize, device: &Device) -> Linear {
    let transposed = crate::model::transpose(weight, classes, features);
    Linear {
        weight: Param::from_tensor(crate::model::tensor(transposed, [features, classes], device)),
        bias: Some(Param::from_tensor(crate::model::tensor(bias.to_vec(), [classes], device))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu_device;

    fn head(classes: usize) -> Head {
        let labels = Labels::new((0..classes).map(|i| format!("class {i}")).collect()).expect("labels");
        let weight = (0..classes * feature_size()).map(|i| (i % 97) as f32 * 0.01 - 0.3).collect();
        let bias = (0..classes).map(|i| i as f32 * 0.5).collect();
        Head::new(labels, weight, bias, &cpu_device()).expect("head")
    }

    #[test]
    fn a_head_file_round_trips() {
        let h = head(3);
        let again = Head::from_bytes(&h.to_bytes().expect("bytes"), &cpu_device()).expect("read back");
        assert_eq!(again.labels, h.labels);
        assert_eq!(again.weight, h.weight);
        assert_eq!(again.bias, h.bias);
    }

    #[test]
    fn bad_head_files_are_model_load_errors() {
        let device = cpu_device();
        let good = head(2).to_bytes().expect("bytes");
        let error = |bytes: &[u8]| Head::from_bytes(bytes, &device).expect_err("must fail");
        for bytes in [&good[..good.len() - 7], &good[..3], b"not a head at all".as_slice(), &[]] {
            assert_eq!(error(bytes).kind(), crate::ErrorKind::ModelLoad);
        }
        // Another backbone, another feature size, another format: named in the message.
        // Same-length edits of the JSON header (its length prefix stays right).
        let edit = |from: &str, to: &str| {
            let header_len = u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;
            let old = String::from_utf8_lossy(&good[8..8 + header_len]).to_string();
            assert!(old.contains(from), "{from} not in the header");
            let header = old.replacen(from, to, 1);
            assert_eq!(header.len(), header_len);
            let mut bytes = good.clone();
            bytes[8..8 + header_len].copy_from_slice(header.as_bytes());
            bytes
        };
        let e = error(&edit("efficientnet-lite0", "efficientnet-lite4"));
        assert!(e.message().contains("efficientnet-lite4"), "{e}");
        let e = error(&edit("\"1280\"", "\"1536\""));
        assert!(e.message().contains("1536"), "{e}");
        let e = error(&edit("sightline-head", "sightline-xxxx"));
        assert!(e.message().contains("not a sightline head"), "{e}");
    }
}
