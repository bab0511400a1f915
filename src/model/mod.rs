//! The networks, as burn Modules, and their weight loading. No I/O, no labels, no wasm here.

mod efficientnet_lite;
mod layers;
mod weights;

pub use efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig};
pub use weights::Weights;
