//! The activations that follow a convolution, as one value the layers and the CPU kernels share.

use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;

/// The activation after a convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// None (linear output).
    Identity,
    /// `min(max(x, 0), 6)` (EfficientNet-Lite).
    Relu6,
    /// `x` if positive, else `slope * x` (NanoDet uses slope 0.1).
    LeakyRelu(f64),
}

impl Activation {
    /// Applies the activation with burn's operators (any backend).
    pub fn apply(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Activation::Identity => x,
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu(slope) => leaky_relu(x, slope),
        }
    }
}
