//! Reading a network's output back to the CPU: synchronously (native only) or asynchronously
//! (the only kind WebGPU allows). One packed tensor per frame, so one readback.

use std::fmt::Display;

use burn::tensor::{Tensor, TensorData};

use crate::error::{Error, Result};

/// The f32 values of `data`, or an `Inference` error naming `what` was read.
fn values(data: Result<TensorData, impl Display>, what: &str) -> Result<Vec<f32>> {
    data.map_err(|e| Error::inference(format!("reading the {what} back failed: {e}")))?
        .try_into_vec::<f32>()
        .map_err(|e| Error::inference(format!("the {what} are not f32: {e:?}")))
}

/// Reads `tensor` back synchronously (native targets: WebGPU cannot).
#[cfg(not(target_family = "wasm"))]
pub(crate) fn read<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    values(tensor.try_into_data(), what)
}

/// Reads `tensor` back asynchronously.
pub(crate) async fn read_async<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    values(tensor.into_data_async().await, what)
}
