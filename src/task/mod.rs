//! Tasks: a model plus its preprocessing, postprocessing, labels and runtime options.

mod classify;
mod detect;
mod labels;

pub use classify::{Category, Classification, ClassifierOptions, ImageClassifier};
pub use detect::{BoundingBox, Detection, DetectorOptions, ObjectDetector};
pub use labels::{coco_index, coco_label, imagenet_label};
