//! Tasks: a model plus its preprocessing, postprocessing, labels and runtime options. The result
//! types here are the one definition of each result; the wasm boundary serialises them as they
//! are (serde), and the CLI presents them in its documented schema (`json.rs`).

mod classify;
mod detect;
mod head;
mod input;
#[cfg(not(target_family = "wasm"))]
mod json;
mod labels;
mod options;
mod readback;
#[cfg(feature = "train")]
mod train;

pub use classify::{Category, Classification, ClassifierOptions, Explanation, ImageClassifier};
pub use detect::{BoundingBox, Detection, Detections, DetectorOptions, ObjectDetector};
pub use head::Head;
#[cfg(all(target_family = "wasm", feature = "train"))]
pub(crate) use head::feature_size;
pub use labels::{Labels, coco_index, coco_label, imagenet_label};
#[cfg(feature = "train")]
pub use options::TrainPatch;
pub use options::{ClassifierPatch, DetectorPatch};
#[cfg(feature = "train")]
pub use train::{EpochReport, HeadTrainer, TrainOptions, TrainReport, Training};
