//! # sightline
//!
//! Real-time image classification (EfficientNet-Lite0, ImageNet-1k) and object detection
//! (NanoDet-g-416, COCO-80) that run in the browser on WebGPU (burn-wgpu compiled to
//! WebAssembly) or on the CPU, and natively through the same code.
//!
//! Rust owns the maths: preprocessing (bilinear resize, crop, normalisation), the networks
//! (burn Modules), softmax, top-k, box decoding and non-maximum suppression live here once,
//! shared by the CLI, this library and the browser package.
//!
//! ```no_run
//! use sightline::{ClassifierOptions, Image, ImageClassifier, cpu_device};
//!
//! # fn main() -> Result<(), sightline::Error> {
//! let weights = std::fs::read("models/efficientnet-lite0.f16.safetensors").expect("weights");
//! let options = ClassifierOptions::default().with_max_results(3);
//! let classifier = ImageClassifier::from_bytes(&weights, &cpu_device(), options)?;
//! let pixels = vec![128u8; 64 * 48 * 4]; // RGBA, e.g. from a canvas
//! let result = classifier.classify(&Image::from_rgba(&pixels, 64, 48)?)?;
//! for class in &result.classes {
//!     println!("{:>6.2}%  {}", class.score * 100.0, class.label);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Layout
//! `model` (burn Modules, weight loading) ← `task` (pre/post-processing, labels, options) ←
//! the CLI (`src/bin`) and the wasm binding (`src/wasm`, browser only).

mod backend;
#[cfg(not(target_family = "wasm"))]
pub mod decode;
mod error;
mod image;
pub mod model;
pub mod postprocess;
pub mod preprocess;
mod task;

#[cfg(target_family = "wasm")]
mod wasm;

#[cfg(not(target_family = "wasm"))]
pub use backend::wgpu_device;
pub use backend::{BackendKind, cpu_device};
pub use error::{Error, ErrorKind, Result};
pub use image::{Image, MAX_PIXELS, MAX_SIDE, PixelFormat, check_size};
pub use model::{DEFAULT_PRECISION, Precision};
pub use task::{
    BoundingBox, Category, Classification, ClassifierOptions, ClassifierPatch, Detection, Detections, DetectorOptions,
    DetectorPatch, Explanation, Head, ImageClassifier, Labels, ObjectDetector, coco_index, coco_label, imagenet_label,
};
#[cfg(feature = "train")]
pub use task::{EpochReport, HeadTrainer, TrainOptions, TrainPatch, TrainReport, Training};
