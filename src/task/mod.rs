//! Tasks: a model plus its preprocessing, postprocessing, labels and runtime options. The result
//! types here are the one definition of each result; the wasm boundary serialises them as they
//! are (serde), and the CLI presents them in its documented schema (`json.rs`).

mod classify;
mod detect;
mod head;
#[cfg(not(target_family = "wasm"))]
mod json;
mod labels;
mod options;
mod readback;
#[cfg(not(target_family = "wasm"))]
mod train;

pub use classify::{Category, Classification, ClassifierOptions, Explanation, ImageClassifier};
pub use detect::{BoundingBox, Detection, Detections, DetectorOptions, ObjectDetector};
pub use head::Head;
pub use labels::{Labels, coco_index, coco_label, imagenet_label};
pub use options::{ClassifierPatch, DetectorPatch};
#[cfg(not(target_family = "wasm"))]
pub use train::{EpochReport, HeadTrainer, TrainOptions, TrainReport};
