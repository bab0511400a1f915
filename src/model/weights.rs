//! Reads named tensors from safetensors bytes as f32, whatever their stored precision (f32,
//! f16, or int8 with a per-output-channel scale), with errors that name the tensor.
//!
//! A file says what it is in its header (`__metadata__`): `format` (`sightline-weights`),
//! `format_version` (`1`), `model`, `variant` (`f32`, `f16` or `int8`) and `batchnorm`
//! (`folded` or `separate`). Files written before the header existed are read as f32 files.
//! Dequantisation is plain Rust at load time (`q · scale` per output channel): the networks
//! compute in f32, so burn's quantized tensor types, which keep values quantized on the
//! device, would only add a conversion step.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// The precision a weights file stores its convolution and linear weights in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats: the source's values.
    F32,
    /// 16-bit floats (BatchNorm folded first).
    F16,
    /// 8-bit integers with a float scale per output channel (BatchNorm folded first).
    Int8,
}

impl Precision {
    /// Every precision, smallest file first.
    pub const ALL: [Precision; 3] = [Precision::Int8, Precision::F16, Precision::F32];

    /// `"f32"`, `"f16"` or `"int8"`: the name in file headers, file names and options.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }

    /// The precision called `name`.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            Error::invalid_options(format!("precision must be \"int8\", \"f16\" or \"f32\", got {name:?}"))
        })
    }
}

/// The variant a user gets unless they ask for another: the smallest whose measured agreement
/// with f32 meets every bound (top-1 and top-5 identical, every detection recovered; see
/// `reduced_precision_variants_agree_with_f32` in tests/native.rs and README "Precision").
pub const DEFAULT_PRECISION: Precision = Precision::F16;

/// The weights format version this crate reads.
const FORMAT_VERSION: &str = "1";

/// A parsed safetensors file. Every tensor must be used exactly once by the model that loads
/// it: [`Weights::finish`] reports tensors left over, so a file for another model is caught.
pub struct Weights<'a> {
    file: SafeTensors<'a>,
    used: RefCell<BTreeSet<String>>,
    precision: Precision,
    folded: Option<bool>,
}

impl<'a> Weights<'a> {
    /// Parses the safetensors header of a file for `model`. Fails with `ModelLoad` on truncated
    /// or corrupt bytes, a header for another model, or an unknown variant or format version.
    pub fn from_bytes(bytes: &'a [u8], model: &str) -> Result<Self> {
        let invalid =
            |e: &dyn std::fmt::Display| Error::model_load(format!("weights are not a valid safetensors file: {e}"));
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(&e))?;
        let header: HashMap<String, String> = metadata.metadata().clone().unwrap_or_default();
        let file = SafeTensors::deserialize(bytes).map_err(|e| invalid(&e))?;
        if let Some(version) = header.get("format_version")
            && version != FORMAT_VERSION
        {
            return Err(Error::model_load(format!(
                "weights use format version {version}; this version of sightline reads version {FORMAT_VERSION}"
            )));
        }
        if let Some(other) = header.get("model")
            && other != model
        {
            return Err(Error::model_load(format!("the weights are for {other}, not {model}")));
        }
        let precision = match header.get("variant") {
            None => Precision::F32,
            Some(name) => Precision::from_name(name).map_err(|_| {
                Error::model_load(format!("the weights' variant {name:?} is unknown (expected int8, f16 or f32)"))
            })?,
        };
        let folded = match header.get("batchnorm").map(String::as_str) {
            None => None,
            Some("folded") => Some(true),
            Some("separate") => Some(false),
            Some(other) => {
                return Err(Error::model_load(format!("the weights' batchnorm entry {other:?} is unknown")));
            }
        };
        Ok(Self { file, used: RefCell::new(BTreeSet::new()), precision, folded })
    }

    /// The precision the header declares (f32 for files without one).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether BatchNorm is folded into the convolutions, if the header says.
    pub fn batchnorm_folded(&self) -> Option<bool> {
        self.folded
    }

    /// The values of tensor `name` as f32, checked to have `shape` and to be finite. Int8 tensors
    /// are dequantised with `{name}_scale` (one finite, non-zero f32 per output channel).
    pub fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.tensor(name)?;
        if view.shape() != shape {
            return Err(Error::model_load(format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape())));
        }
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::I8 => self.dequantize(name, shape, data)?,
            other => return Err(Error::model_load(format!("tensor `{name}` is {other:?}, expected F32, F16 or I8"))),
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::model_load(format!("tensor `{name}` holds a non-finite value at element {i}")));
        }
        self.used.borrow_mut().insert(name.to_owned());
        Ok(values)
    }

    fn tensor(&self, name: &str) -> Result<safetensors::tensor::TensorView<'_>> {
        self.file.tensor(name).map_err(|_| Error::model_load(format!("weights lack tensor `{name}`")))
    }

    /// `q · scale[channel]` for int8 values `data` of a tensor whose first dimension is the output channel.
    fn dequantize(&self, name: &str, shape: &[usize], data: &[u8]) -> Result<Vec<f32>> {
        let scale_name = format!("{name}_scale");
        let channels = shape.first().copied().unwrap_or(0);
        let view = self.tensor(&scale_name)?;
        if view.dtype() != Dtype::F32 || view.shape() != [channels] {
            return Err(Error::model_load(format!(
                "tensor `{scale_name}` is {:?} {:?}, expected F32 [{channels}]",
                view.dtype(),
                view.shape()
            )));
        }
        let scales: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some((i, s)) = scales.iter().enumerate().find(|(_, s)| !s.is_finite() || **s == 0.0) {
            return Err(Error::model_load(format!("tensor `{scale_name}` holds an invalid scale {s} at channel {i}")));
        }
        self.used.borrow_mut().insert(scale_name);
        let per_channel = data.len() / channels.max(1);
        Ok(data
            .chunks(per_channel.max(1))
            .zip(&scales)
            .flat_map(|(row, &s)| row.iter().map(move |&q| f32::from(q as i8) * s))
            .collect())
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

/// The transpose of a row-major `rows × cols` matrix (e.g. PyTorch's `[out, in]` linear weight
/// into burn's `[in, out]`, and back).
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Makes a tensor of shape `shape` on `device` from row-major values.
pub(crate) fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
