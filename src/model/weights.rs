//! Reads named f32 tensors from safetensors bytes, with errors that name the tensor.

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A parsed safetensors file. Every tensor must be used exactly once by the model that loads
/// it: [`Weights::finish`] reports tensors left over, so a file for another model is caught.
pub struct Weights<'a> {
    file: SafeTensors<'a>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Weights<'a> {
    /// Parses the safetensors header. Fails with `ModelLoad` on truncated or corrupt bytes.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::model_load(format!("weights are not a valid safetensors file: {e}")))?;
        Ok(Self { file, used: RefCell::new(BTreeSet::new()) })
    }

    /// The values of tensor `name`, checked to have `shape` and to be finite f32.
    pub fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.file.tensor(name).map_err(|_| Error::model_load(format!("weights lack tensor `{name}`")))?;
        if view.dtype() != Dtype::F32 {
            return Err(Error::model_load(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
        }
        if view.shape() != shape {
            return Err(Error::model_load(format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape())));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::model_load(format!("tensor `{name}` holds a non-finite value at element {i}")));
        }
        self.used.borrow_mut().insert(name.to_owned());
        Ok(values)
    }

    /// Checks that every tensor of the file was used.
    pub fn finish(self) -> Result<()> {
        let used = self.used.into_inner();
        let unused: Vec<String> =
            self.file.names().into_iter().filter(|n| !used.contains(*n)).map(|n| n.to_owned()).collect();
        if unused.is_empty() {
            Ok(())
        } else {
            Err(Error::model_load(format!(
                "weights hold {} tensors the model does not use, e.g. `{}`: wrong model file?",
                unused.len(),
                unused[0]
            )))
        }
    }
}

/// Makes a tensor of shape `shape` on `device` from row-major values.
pub(crate) fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
