//! Tasks: a model plus its preprocessing, postprocessing, labels and runtime options.

mod classify;
mod labels;

pub use classify::{Category, Classification, ClassifierOptions, ImageClassifier};
pub use labels::imagenet_label;
