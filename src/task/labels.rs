//! Class names of the default models.

use std::sync::OnceLock;

/// `index<TAB>wnid<TAB>name`, the 1000 ImageNet-1k classes in standard order.
const IMAGENET: &str = include_str!("imagenet1k_labels.txt");

/// The 80 COCO class names, one per line, in the 0-based contiguous order detectors use.
const COCO: &str = include_str!("coco80_labels.txt");

/// Number of COCO classes.
pub const COCO_CLASSES: usize = 80;

fn coco() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| COCO.lines().collect())
}

/// The name of COCO-80 class `index` (0-based), or `""` when out of range.
pub fn coco_label(index: usize) -> &'static str {
    coco().get(index).copied().unwrap_or("")
}

/// The index of the COCO-80 class called `name` (exact match), if any.
pub fn coco_index(name: &str) -> Option<usize> {
    coco().iter().position(|&n| n == name)
}

fn imagenet() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| IMAGENET.lines().map(|line| line.rsplit('\t').next().unwrap_or(line)).collect())
}

/// The readable name of ImageNet-1k class `index` (0-based), or `""` when out of range.
pub fn imagenet_label(index: usize) -> &'static str {
    imagenet().get(index).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_has_1000_names() {
        assert_eq!(imagenet().len(), 1000);
        assert_eq!(imagenet_label(0), "tench");
        assert_eq!(imagenet_label(249), "Alaskan Malamute");
        assert_eq!(imagenet_label(1000), "");
        assert_eq!(coco().len(), COCO_CLASSES);
        assert_eq!(coco_label(16), "dog");
        assert_eq!(coco_label(80), "");
        assert_eq!(coco_index("bicycle"), Some(1));
        assert_eq!(coco_index("unicorn"), None);
    }
}
