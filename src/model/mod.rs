//! The networks, as burn Modules, and their weight loading. No I/O, no labels, no wasm here.

mod activation;
mod cpu;
mod efficientnet_lite;
mod gpu;
mod layers;
mod nanodet;
mod weights;

pub use efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig, global_average_pool};
pub use gpu::gpu_input;
#[cfg(not(target_family = "wasm"))]
pub(crate) use layers::forward_pass;
pub use layers::linear;
pub use nanodet::{LevelOutput, NanoDet, NanoDetConfig};
pub use weights::{DEFAULT_PRECISION, Precision, Weights};
pub(crate) use weights::{tensor, transpose};
