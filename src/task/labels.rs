//! Class names: the two built-in lists, and lists a caller brings (e.g. a custom head).

use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

/// The 1000 ImageNet-1k class names, one per line, in standard order (readable names only: the
/// WordNet ids are never used, and left out they save 4.4 KB brotli of the wasm module).
const IMAGENET: &str = include_str!("imagenet1k_labels.txt");

/// The 80 COCO class names, one per line, in the 0-based contiguous order detectors use.
const COCO: &str = include_str!("coco80_labels.txt");

/// The most classes a label list may hold.
pub const MAX_LABELS: usize = 1000;

/// The longest accepted class name, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// Checks one class name: 1 to 100 characters.
pub fn check_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_LABEL_CHARS {
        return Err(Error::invalid_options(format!("must be 1 to {MAX_LABEL_CHARS} characters, got {chars}")));
    }
    Ok(())
}

/// The class names of a model, by 0-based class index. Cloning is cheap (shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels(Arc<[String]>);

impl Labels {
    /// Checks and wraps `names`: 1–1000 non-empty, distinct names of at most 100 characters.
    pub fn new(names: Vec<String>) -> Result<Self> {
        if names.is_empty() || names.len() > MAX_LABELS {
            return Err(Error::invalid_options(format!(
                "a label list needs 1 to {MAX_LABELS} names, got {}",
                names.len()
            )));
        }
        for (i, name) in names.iter().enumerate() {
            check_name(name).map_err(|e| Error::invalid_options(format!("label {i} {}", e.message())))?;
            if names[..i].contains(name) {
                return Err(Error::invalid_options(format!("label {name:?} appears twice")));
            }
        }
        Ok(Self(names.into()))
    }

    /// The 1000 ImageNet-1k class names (readable names, standard order).
    pub fn imagenet() -> Self {
        static LABELS: OnceLock<Labels> = OnceLock::new();
        LABELS.get_or_init(|| Self(IMAGENET.lines().map(str::to_owned).collect())).clone()
    }

    /// The 80 COCO class names.
    pub fn coco() -> Self {
        static LABELS: OnceLock<Labels> = OnceLock::new();
        LABELS.get_or_init(|| Self(COCO.lines().map(str::to_owned).collect())).clone()
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no classes (never true for a list built by [`Labels::new`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name of class `index`, or `""` when out of range.
    pub fn name(&self, index: usize) -> &str {
        self.0.get(index).map_or("", String::as_str)
    }

    /// The index of the class called `name` (exact match), if any.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|n| n == name)
    }

    /// All names, by class index.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// The name of COCO-80 class `index` (0-based), or `""` when out of range.
pub fn coco_label(index: usize) -> String {
    Labels::coco().name(index).to_owned()
}

/// The index of the COCO-80 class called `name` (exact match), if any.
pub fn coco_index(name: &str) -> Option<usize> {
    Labels::coco().index_of(name)
}

/// The readable name of ImageNet-1k class `index` (0-based), or `""` when out of range.
pub fn imagenet_label(index: usize) -> String {
    Labels::imagenet().name(index).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn built_in_lists() {
        assert_eq!(Labels::imagenet().len(), 1000);
        assert_eq!(imagenet_label(0), "tench");
        assert_eq!(imagenet_label(249), "Alaskan Malamute");
        assert_eq!(imagenet_label(1000), "");
        assert_eq!(Labels::coco().len(), 80);
        assert_eq!(coco_label(16), "dog");
        assert_eq!(coco_label(80), "");
        assert_eq!(coco_index("bicycle"), Some(1));
        assert_eq!(coco_index("unicorn"), None);
    }

    #[test]
    fn custom_lists_are_checked() {
        let ok = Labels::new(vec!["mug".into(), "not mug".into()]).expect("valid");
        assert_eq!((ok.len(), ok.name(1), ok.index_of("mug")), (2, "not mug", Some(0)));
        for bad in
            [vec![], vec![String::new()], vec!["x".repeat(101)], vec!["a".into(), "a".into()], vec!["c".into(); 1001]]
        {
            assert_eq!(Labels::new(bad).unwrap_err().kind(), ErrorKind::InvalidOptions);
        }
        assert!(Labels::new(vec!["é".repeat(100)]).is_ok(), "the limit counts characters, not bytes");
    }
}
