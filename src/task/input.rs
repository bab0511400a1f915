//! A frame's network input on the task's device: prepared on the GPU where the device has the
//! kernels for it (WebGPU, wgpu: the frame's bytes are uploaded and resampled there), on the CPU
//! otherwise. Both follow `crate::preprocess` (the GPU kernel takes its sampling from there).

use burn::tensor::{Device, Tensor, TensorData};

use crate::image::Image;
use crate::model::gpu_input;
use crate::preprocess::{Input, Normalize, Resize, Transform, preprocess};

/// The `[1, 3, size, size]` input of `image` on `device`, and how it maps back to the image.
pub(super) fn network_input(
    image: &Image<'_>,
    size: usize,
    resize: Resize,
    norm: &Normalize,
    device: &Device,
) -> (Tensor<4>, Transform) {
    gpu_input(image, size, resize, norm, device).unwrap_or_else(|| {
        let Input { data, transform } = preprocess(image, size, resize, norm);
        (Tensor::from_data(TensorData::new(data, [1, 3, size, size]), device), transform)
    })
}
