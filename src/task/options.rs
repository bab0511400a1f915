//! Options as the JavaScript API spells them: camelCase keys, every key optional, applied as a
//! partial update over the current options. Deserialised with serde from any format (a JS
//! object through serde-wasm-bindgen, JSON natively), so the parser is tested and fuzzed natively.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::classify::ClassifierOptions;
use super::detect::DetectorOptions;
use super::labels::Labels;
#[cfg(feature = "train")]
use super::train::TrainOptions;
use crate::error::{Error, Result};
use crate::preprocess::Resize;

/// A partial update of [`ClassifierOptions`]: `{ maxResults?, resize? }` (`topK` is the
/// deprecated name of `maxResults`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassifierPatch {
    max_results: Option<usize>,
    top_k: Option<usize>,
    resize: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// A partial update of [`DetectorOptions`]: `{ scoreThreshold?, iouThreshold?, maxResults?,
/// categoryAllowlist?, categoryDenylist? }` with categories by name (`null` clears the allowlist).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectorPatch {
    score_threshold: Option<f32>,
    iou_threshold: Option<f32>,
    max_results: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    category_allowlist: Option<Option<Vec<String>>>,
    category_denylist: Option<Vec<String>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[cfg(feature = "train")]
/// A partial [`TrainOptions`] from JS: `{ epochs?, learningRate?, batchSize?, weightDecay?, seed? }`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainPatch {
    epochs: Option<usize>,
    learning_rate: Option<f64>,
    batch_size: Option<usize>,
    weight_decay: Option<f32>,
    seed: Option<u64>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[cfg(feature = "train")]
impl TrainPatch {
    /// The option names this patch accepts.
    pub const KEYS: [&str; 5] = ["batchSize", "epochs", "learningRate", "seed", "weightDecay"];

    /// The default options with this patch applied, validated.
    pub fn apply(self) -> Result<TrainOptions> {
        no_unknown(&self.unknown, "training", &Self::KEYS)?;
        let d = TrainOptions::default();
        let options = TrainOptions {
            epochs: self.epochs.unwrap_or(d.epochs),
            learning_rate: self.learning_rate.unwrap_or(d.learning_rate),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            seed: self.seed.unwrap_or(d.seed),
        };
        options.validate()?;
        Ok(options)
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Rejects any key the patch does not know, naming it and the known ones.
fn no_unknown(unknown: &BTreeMap<String, IgnoredAny>, what: &str, known: &[&str]) -> Result<()> {
    match unknown.keys().next() {
        Some(key) => {
            Err(Error::invalid_options(format!("unknown {what} option {key:?} (expected one of {})", known.join(", "))))
        }
        None => Ok(()),
    }
}

impl ClassifierPatch {
    /// The option names this patch accepts.
    pub const KEYS: [&str; 3] = ["maxResults", "resize", "topK"];

    /// `base` with this patch applied, validated (on error nothing is returned).
    pub fn apply(self, base: &ClassifierOptions) -> Result<ClassifierOptions> {
        no_unknown(&self.unknown, "classifier", &Self::KEYS)?;
        let mut options = base.clone();
        match (self.max_results, self.top_k) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::invalid_options(format!(
                    "maxResults ({a}) and its deprecated name topK ({b}) disagree; pass maxResults only"
                )));
            }
            (Some(n), _) => options.max_results = n,
            (None, Some(n)) => {
                log::warn!("sightline: the classifier option topK is deprecated; use maxResults");
                options.max_results = n;
            }
            (None, None) => {}
        }
        if let Some(r) = self.resize {
            options.resize = match r.as_str() {
                "crop" => Resize::CenterCrop,
                "stretch" => Resize::Stretch,
                other => {
                    return Err(Error::invalid_options(format!(
                        "resize must be \"crop\" or \"stretch\", got {other:?}"
                    )));
                }
            };
        }
        options.validate()?;
        Ok(options)
    }
}

impl DetectorPatch {
    /// The option names this patch accepts.
    pub const KEYS: [&str; 5] =
        ["scoreThreshold", "iouThreshold", "maxResults", "categoryAllowlist", "categoryDenylist"];

    /// `base` with this patch applied, category names looked up in `labels`, validated.
    pub fn apply(self, base: &DetectorOptions, labels: &Labels) -> Result<DetectorOptions> {
        no_unknown(&self.unknown, "detector", &Self::KEYS)?;
        let indices = |names: &[String]| -> Result<Vec<usize>> {
            names
                .iter()
                .map(|n| {
                    labels
                        .index_of(n)
                        .ok_or_else(|| Error::invalid_options(format!("unknown category {n:?} (not a class name)")))
                })
                .collect()
        };
        let mut options = base.clone();
        if let Some(t) = self.score_threshold {
            options.score_threshold = t;
        }
        if let Some(t) = self.iou_threshold {
            options.iou_threshold = t;
        }
        if let Some(n) = self.max_results {
            options.max_results = n;
        }
        if let Some(allow) = self.category_allowlist {
            options.category_allowlist = allow.as_deref().map(indices).transpose()?;
        }
        if let Some(deny) = self.category_denylist {
            options.category_denylist = indices(&deny)?;
        }
        options.validate(labels.len())?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn classifier(json: &str) -> Result<ClassifierOptions> {
        let patch: ClassifierPatch = serde_json::from_str(json).map_err(|e| Error::invalid_options(e.to_string()))?;
        patch.apply(&ClassifierOptions::default())
    }

    fn detector(json: &str) -> Result<DetectorOptions> {
        let patch: DetectorPatch = serde_json::from_str(json).map_err(|e| Error::invalid_options(e.to_string()))?;
        patch.apply(&DetectorOptions::default(), &Labels::coco())
    }

    #[test]
    fn classifier_patches() {
        assert_eq!(classifier("{}").expect("empty"), ClassifierOptions::default());
        assert_eq!(classifier(r#"{"maxResults": 3}"#).expect("valid").max_results, 3);
        assert_eq!(classifier(r#"{"topK": 2}"#).expect("deprecated name still works").max_results, 2);
        assert_eq!(classifier(r#"{"topK": 2, "maxResults": 2}"#).expect("agreeing").max_results, 2);
        assert_eq!(classifier(r#"{"resize": "stretch"}"#).expect("valid").resize, Resize::Stretch);
        for bad in [r#"{"topk": 3}"#, r#"{"maxResults": 0}"#, r#"{"topK": 2, "maxResults": 3}"#, r#"{"resize": "fit"}"#]
        {
            let e = classifier(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidOptions, "{bad}");
        }
        assert!(classifier(r#"{"topk": 3}"#).unwrap_err().message().contains("\"topk\""));
    }

    #[test]
    fn detector_patches() {
        let o = detector(r#"{"scoreThreshold": 0.5, "categoryAllowlist": ["dog"], "categoryDenylist": ["cat"]}"#)
            .expect("valid");
        assert_eq!((o.score_threshold, o.category_allowlist, o.category_denylist), (0.5, Some(vec![16]), vec![15]));
        let base = DetectorOptions { category_allowlist: Some(vec![1]), ..Default::default() };
        let patch: DetectorPatch = serde_json::from_str(r#"{"categoryAllowlist": null}"#).expect("json");
        assert_eq!(patch.apply(&base, &Labels::coco()).expect("valid").category_allowlist, None, "null clears it");
        let patch: DetectorPatch = serde_json::from_str("{}").expect("json");
        assert_eq!(patch.apply(&base, &Labels::coco()).expect("valid").category_allowlist, Some(vec![1]));
        for bad in [
            r#"{"threshold": 0.5}"#,
            r#"{"scoreThreshold": 2}"#,
            r#"{"maxResults": 0}"#,
            r#"{"categoryAllowlist": ["unicorn"]}"#,
        ] {
            assert_eq!(detector(bad).unwrap_err().kind(), ErrorKind::InvalidOptions, "{bad}");
        }
    }
}
