//! GPU kernels for burn's cubecl backend (WebGPU in the browser, wgpu natively), plugged in
//! through a burn backend extension like the CPU kernels in `cpu/`.
//!
//! On a real GPU a small network's frame time is set by kernel launches, not arithmetic. burn's
//! operators run a convolution, its activation and a residual addition as three launches (and
//! copy weights whose layout does not suit its convolution); `conv2d_act` does all of it in one
//! launch that reads any input layout through its strides and writes a new NCHW tensor or, in
//! place, part of an existing one.
//!
//! The kernels only run for tensors on a cubecl device; `layers.rs` chooses between them, the
//! CPU kernels and burn's operators. They compute in f32 (other float tensors are cast first).

use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
use burn::nn::conv::Conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};
use burn_cubecl::{CubeBackend, tensor::CubeTensor};

use super::activation::Activation;
use super::cpu::conv_operands;
use crate::image::Image;
use crate::preprocess::{Normalize, Resize, Sampling, Transform, sampling};
use conv::Target;

mod conv;
mod resample;

/// Operations with a dedicated GPU kernel. Only the cubecl backend implements them.
#[backend_extension(Cube: cfg(all()))]
pub trait GpuKernels: Backend {
    /// `act(conv2d(x, weight) + bias)` in one launch.
    fn conv2d_act(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// `act(conv2d(x, weight) + bias) + residual` in one launch.
    fn conv2d_act_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        options: ConvOptions<2>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// `act(conv2d(x, weight) + bias)` written in place into `output`: result `(n, c, y, x)` at
    /// element `offset + n·strides[0] + c·strides[1] + y·strides[2] + x·strides[3]` (a channel
    /// range of a concatenation, a transposed slice of a packed output…), with a sigmoid on
    /// result channels below `sigmoid_channels`. Returns `output`.
    #[allow(clippy::too_many_arguments)]
    fn conv2d_act_into(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output: FloatTensor<Self>,
        offset: usize,
        strides: [usize; 4],
        options: ConvOptions<2>,
        act: Activation,
        sigmoid_channels: usize,
    ) -> FloatTensor<Self>;

    /// [`conv2d_act_into`](GpuKernels::conv2d_act_into) without sigmoid, also writing the result
    /// to a new contiguous tensor, which it returns (`output` is written in place).
    #[allow(clippy::too_many_arguments)]
    fn conv2d_act_into_and_new(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output: FloatTensor<Self>,
        offset: usize,
        strides: [usize; 4],
        options: ConvOptions<2>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// The `[1, 3, size, size]` network input sampled from an image's bytes (`pixels`: u32
    /// words, four bytes each) at `taps` (u32, see `preprocess::Sampling`): output channel `c`
    /// reads byte `channels[c]` of each pixel and is normalised `(v - mean[c]) / std[c]`.
    fn resample(
        pixels: IntTensor<Self>,
        taps: IntTensor<Self>,
        size: usize,
        channels: [u32; 3],
        mean: [f32; 3],
        std: [f32; 3],
    ) -> FloatTensor<Self>;
}

impl GpuKernels for CubeBackend {
    fn conv2d_act(
        x: CubeTensor,
        weight: CubeTensor,
        bias: CubeTensor,
        options: ConvOptions<2>,
        act: Activation,
    ) -> CubeTensor {
        let [x, weight, bias] = [x, weight, bias].map(f32_tensor);
        conv::conv2d_act(x, weight, bias, None, &options, act, Target::New).0
    }

    fn conv2d_act_add(
        x: CubeTensor,
        weight: CubeTensor,
        bias: CubeTensor,
        residual: CubeTensor,
        options: ConvOptions<2>,
        act: Activation,
    ) -> CubeTensor {
        let [x, weight, bias, residual] = [x, weight, bias, residual].map(f32_tensor);
        conv::conv2d_act(x, weight, bias, Some(residual), &options, act, Target::New).0
    }

    fn conv2d_act_into(
        x: CubeTensor,
        weight: CubeTensor,
        bias: CubeTensor,
        output: CubeTensor,
        offset: usize,
        strides: [usize; 4],
        options: ConvOptions<2>,
        act: Activation,
        sigmoid_channels: usize,
    ) -> CubeTensor {
        into(x, weight, bias, output, (offset, strides), options, act, sigmoid_channels, false).0
    }

    fn conv2d_act_into_and_new(
        x: CubeTensor,
        weight: CubeTensor,
        bias: CubeTensor,
        output: CubeTensor,
        offset: usize,
        strides: [usize; 4],
        options: ConvOptions<2>,
        act: Activation,
    ) -> CubeTensor {
        let (_, copy) = into(x, weight, bias, output, (offset, strides), options, act, 0, true);
        copy.expect("a copy was asked for")
    }

    fn resample(
        pixels: CubeTensor,
        taps: CubeTensor,
        size: usize,
        channels: [u32; 3],
        mean: [f32; 3],
        std: [f32; 3],
    ) -> CubeTensor {
        resample::resample(pixels, taps, size, channels, mean, std)
    }
}

#[allow(clippy::too_many_arguments)]
fn into(
    x: CubeTensor,
    weight: CubeTensor,
    bias: CubeTensor,
    output: CubeTensor,
    (offset, strides): (usize, [usize; 4]),
    options: ConvOptions<2>,
    act: Activation,
    sigmoid_channels: usize,
    copy: bool,
) -> (CubeTensor, Option<CubeTensor>) {
    let [x, weight, bias] = [x, weight, bias].map(f32_tensor);
    assert_eq!(output.dtype, DType::F32, "in-place convolution outputs are f32");
    // The kernel addresses the output's buffer directly: it must be one dense block.
    let output = burn_cubecl::kernel::into_contiguous(output);
    let target = Target::Into { output, offset, strides, sigmoid_channels, copy };
    conv::conv2d_act(x, weight, bias, None, &options, act, target)
}

/// `t` as f32 (the kernels compute in f32; the networks' tensors already are).
fn f32_tensor(t: CubeTensor) -> CubeTensor {
    if t.dtype == DType::F32 { t } else { CubeBackend::float_cast(t, FloatDType::F32) }
}

/// Whether tensors on `device` can use these kernels (cubecl devices: wgpu, WebGPU).
pub(super) fn runs_on(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Cube(_))
}

/// The network input of an image on a GPU device, prepared there: the bytes `sampling` reads
/// (RGBA or RGB, as they are) are uploaded and one kernel resamples and normalises them, so the
/// CPU does no per-pixel arithmetic. Equals [`preprocess`](crate::preprocess::preprocess) within
/// float rounding of the weighted sums.
///
/// `None` on a device without the kernels (the CPU), whose input
/// [`preprocess`](crate::preprocess::preprocess) prepares.
///
/// # Shapes
/// → `[1, 3, size, size]`, and how it maps back to the image
pub fn gpu_input(
    image: &Image<'_>,
    size: usize,
    resize: Resize,
    norm: &Normalize,
    device: &Device,
) -> Option<(Tensor<4>, Transform)> {
    if !runs_on(device) {
        return None;
    }
    let sampling = sampling(image, size, resize, norm.order);
    let (bytes, taps) = sampled_bytes(image.data(), &sampling);
    let words = bytes.len() / 4;
    let pixels =
        Tensor::<1, Int>::from_data(TensorData::from_bytes_vec(bytes, [words], DType::U32), (device, DType::U32));
    let taps = Tensor::<1, Int>::from_data(TensorData::new(taps, [6 * size]), (device, DType::U32));
    let input = Tensor::from_dispatch(<Dispatch as GpuKernels>::resample(
        pixels.into_dispatch(),
        taps.into_dispatch(),
        size,
        sampling.channels,
        norm.mean,
        norm.std,
    ));
    Some((input, sampling.transform))
}

/// The part of `pixels` (the image `sampling` was made for) that `sampling` reads — the rows it
/// samples (at most two per output row), each from its first to its last byte read — packed and
/// zero-padded to whole 4-byte words, with the taps rewritten to address it. A downscale uploads
/// a fraction of the frame (a 1280×720 frame for a 224 input: 448 of its 720 rows).
fn sampled_bytes(pixels: &[u8], sampling: &Sampling) -> (Vec<u8>, Vec<u32>) {
    let size = sampling.taps.len() / 6;
    let (cols, rows) = sampling.taps.split_at(3 * size);
    let first = cols.chunks_exact(3).map(|t| t[0]).min().unwrap_or(0) as usize;
    let end = cols.chunks_exact(3).map(|t| t[1]).max().unwrap_or(0) as usize + sampling.pixel_bytes as usize;
    let width = end - first;
    let mut starts: Vec<u32> = rows.chunks_exact(3).flat_map(|t| [t[0], t[1]]).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut bytes = Vec::with_capacity((starts.len() * width).next_multiple_of(4));
    for &start in &starts {
        bytes.extend_from_slice(&pixels[start as usize + first..start as usize + end]);
    }
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let row = |start: u32| (starts.binary_search(&start).unwrap_or(0) * width) as u32;
    let mut taps = Vec::with_capacity(6 * size);
    for t in cols.chunks_exact(3) {
        taps.extend([t[0] - first as u32, t[1] - first as u32, t[2]]);
    }
    for t in rows.chunks_exact(3) {
        taps.extend([row(t[0]), row(t[1]), t[2]]);
    }
    (bytes, taps)
}

/// A layer's convolution written in place into `output` (see [`GpuKernels::conv2d_act_into`]).
pub(super) fn conv2d_act_into<const D: usize>(
    conv: &Conv2d,
    x: Tensor<4>,
    act: Activation,
    output: Tensor<D>,
    (offset, strides): (usize, [usize; 4]),
    sigmoid_channels: usize,
) -> Tensor<D> {
    let (x, weight, bias, options) = conv_operands(conv, x);
    let output = output.into_dispatch();
    Tensor::from_dispatch(<Dispatch as GpuKernels>::conv2d_act_into(
        x,
        weight,
        bias,
        output,
        offset,
        strides,
        options,
        act,
        sigmoid_channels,
    ))
}

/// A layer's convolution written in place into `output` and to a new tensor, returned (see
/// [`GpuKernels::conv2d_act_into_and_new`]).
pub(super) fn conv2d_act_into_and_new(
    conv: &Conv2d,
    x: Tensor<4>,
    act: Activation,
    output: Tensor<4>,
    (offset, strides): (usize, [usize; 4]),
) -> Tensor<4> {
    let (x, weight, bias, options) = conv_operands(conv, x);
    let output = output.into_dispatch();
    Tensor::from_dispatch(<Dispatch as GpuKernels>::conv2d_act_into_and_new(
        x, weight, bias, output, offset, strides, options, act,
    ))
}

/// `act(conv(x) + bias) [+ residual]` for a layer's convolution, in one launch.
pub(super) fn conv2d_act(conv: &Conv2d, x: Tensor<4>, act: Activation, residual: Option<Tensor<4>>) -> Tensor<4> {
    let (x, weight, bias, options) = conv_operands(conv, x);
    Tensor::from_dispatch(match residual {
        None => <Dispatch as GpuKernels>::conv2d_act(x, weight, bias, options, act),
        Some(r) => <Dispatch as GpuKernels>::conv2d_act_add(x, weight, bias, r.into_dispatch(), options, act),
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::module::conv2d;

    use super::*;

    /// Runs on Mesa's lavapipe in CI (scripts/test.sh sets VK_ICD_FILENAMES).
    fn gpu() -> Device {
        crate::backend::wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)")
    }

    #[test]
    fn fused_convolutions_match_burn() {
        let (cpu, gpu) = (Device::flex(), gpu());
        // (cin, cout, groups, k, stride, h, w, padding)
        let cases = [
            (3, 8, 1, 3, 2, 17, 23, [(1, 1), (1, 1)]),
            (6, 5, 1, 1, 1, 9, 11, [(0, 0), (0, 0)]),
            (16, 7, 1, 3, 1, 5, 40, [(1, 1), (1, 1)]),
            (3, 5, 1, 3, 1, 6, 9, [(0, 2), (2, 0)]),
            (8, 8, 8, 3, 1, 14, 14, [(1, 1), (1, 1)]),
            (8, 8, 8, 5, 2, 15, 15, [(1, 2), (1, 2)]),
            (8, 8, 8, 3, 2, 16, 9, [(0, 1), (0, 1)]),
            (4, 6, 2, 3, 1, 8, 8, [(1, 1), (1, 1)]),
            (12, 12, 1, 1, 2, 7, 7, [(0, 0), (0, 0)]),
            (4, 8, 1, 3, 1, 5, 3, [(1, 1), (1, 1)]),
        ];
        for (i, (cin, cout, groups, k, stride, h, w, padding)) in cases.into_iter().enumerate() {
            // The input channels-last in memory (as burn's GPU convolutions leave it), seen as NCHW.
            let x = Tensor::<4>::random([2, h, w, cin], Distribution::Normal(0.0, 2.0), &cpu).permute([0, 3, 1, 2]);
            let wt = Tensor::<4>::random([cout, cin / groups, k, k], Distribution::Normal(0.0, 1.0), &cpu);
            let b = Tensor::<1>::random([cout], Distribution::Normal(0.0, 1.0), &cpu);
            let options = ConvOptions::new_with_padding([stride; 2], padding, [1, 1], groups);
            let linear = conv2d(x.clone(), wt.clone(), Some(b.clone()), options.clone());
            let residual = Tensor::<4>::random(linear.dims(), Distribution::Normal(0.0, 1.0), &cpu);
            let scale = linear.clone().abs().max().into_scalar::<f32>().max(1.0);
            for act in [Activation::Identity, Activation::Relu6, Activation::LeakyRelu(0.1)] {
                for add in [false, true] {
                    let mut want = act.apply(linear.clone());
                    let (x, wt, b) = (x.clone().to_device(&gpu), wt.clone().to_device(&gpu), b.clone().to_device(&gpu));
                    let got = Tensor::<4>::from_dispatch(if add {
                        want = want + residual.clone();
                        let r = residual.clone().to_device(&gpu).into_dispatch();
                        <Dispatch as GpuKernels>::conv2d_act_add(
                            x.into_dispatch(),
                            wt.into_dispatch(),
                            b.into_dispatch(),
                            r,
                            options.clone(),
                            act,
                        )
                    } else {
                        <Dispatch as GpuKernels>::conv2d_act(
                            x.into_dispatch(),
                            wt.into_dispatch(),
                            b.into_dispatch(),
                            options.clone(),
                            act,
                        )
                    });
                    assert_close(got, want, scale, &format!("case {i} {act:?} add {add}"));
                }
            }
        }
    }

    fn assert_close<const D: usize>(got: Tensor<D>, want: Tensor<D>, scale: f32, what: &str) {
        assert_eq!(got.dims(), want.dims(), "{what}: shapes");
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        let want = want.into_data().try_to_vec::<f32>().unwrap();
        let worst = got.iter().zip(&want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-5 * scale, "{what}: max |Δ| {worst} (scale {scale})");
    }

    #[test]
    fn a_downscale_uploads_only_the_rows_and_columns_it_samples() {
        use crate::preprocess::ChannelOrder;
        let px = vec![7u8; 1280 * 720 * 4];
        let image = Image::from_rgba(&px, 1280, 720).expect("valid");
        for resize in [Resize::Stretch, Resize::CenterCrop] {
            let s = sampling(&image, 224, resize, ChannelOrder::Rgb);
            let (bytes, taps) = sampled_bytes(&px, &s);
            // At most two rows per output row, and never more than the frame.
            assert!(bytes.len() <= 448 * 1280 * 4, "{resize:?}: {} bytes", bytes.len());
            assert_eq!(bytes.len() % 4, 0);
            // Every byte the kernel reads is inside the upload.
            let (cols, rows) = taps.split_at(3 * 224);
            let last = rows.chunks(3).map(|t| t[1]).max().unwrap() + cols.chunks(3).map(|t| t[1]).max().unwrap() + 3;
            assert!((last as usize) < bytes.len(), "{resize:?}: byte {last} of {}", bytes.len());
        }
    }

    #[test]
    fn in_place_convolutions_fill_their_part_and_leave_the_rest() {
        let (cpu, gpu) = (Device::flex(), gpu());
        let (cin, cout, h, w) = (5, 8, 7, 9);
        let x = Tensor::<4>::random([1, cin, h, w], Distribution::Normal(0.0, 2.0), &cpu);
        let wt = Tensor::<4>::random([cout, cin, 3, 3], Distribution::Normal(0.0, 1.0), &cpu);
        let b = Tensor::<1>::random([cout], Distribution::Normal(0.0, 1.0), &cpu);
        let options = ConvOptions::new_with_padding([1, 1], [(1, 1), (1, 1)], [1, 1], 1);
        let act = Activation::LeakyRelu(0.1);
        let y = act.apply(conv2d(x.clone(), wt.clone(), Some(b.clone()), options.clone()));
        let scale = y.clone().abs().max().into_scalar::<f32>().max(1.0);
        let run = |output: Tensor<4>, offset, strides, sigmoid_channels| {
            Tensor::<4>::from_dispatch(<Dispatch as GpuKernels>::conv2d_act_into(
                x.clone().to_device(&gpu).into_dispatch(),
                wt.clone().to_device(&gpu).into_dispatch(),
                b.clone().to_device(&gpu).into_dispatch(),
                output.into_dispatch(),
                offset,
                strides,
                options.clone(),
                act,
                sigmoid_channels,
            ))
        };

        // Channels 2..10 of a 12-channel concatenation; the others keep their values.
        let before = Tensor::<4>::random([1, 12, h, w], Distribution::Normal(0.0, 1.0), &cpu);
        let got = run(before.clone().to_device(&gpu), 2 * h * w, [12 * h * w, h * w, w, 1], 0);
        let want = Tensor::cat(vec![before.clone().narrow(1, 0, 2), y.clone(), before.narrow(1, 10, 2)], 1);
        assert_close(got, want, scale, "channel range");

        // The same, also returning the result as a tensor of its own; the caller's clone of the
        // output sees the write.
        let before = Tensor::<4>::random([1, 12, h, w], Distribution::Normal(0.0, 1.0), &cpu);
        let output = before.clone().to_device(&gpu);
        let copy = Tensor::<4>::from_dispatch(<Dispatch as GpuKernels>::conv2d_act_into_and_new(
            x.clone().to_device(&gpu).into_dispatch(),
            wt.clone().to_device(&gpu).into_dispatch(),
            b.clone().to_device(&gpu).into_dispatch(),
            output.clone().into_dispatch(),
            2 * h * w,
            [12 * h * w, h * w, w, 1],
            options.clone(),
            act,
        ));
        assert_close(copy, y.clone(), scale, "the returned copy");
        let want = Tensor::cat(vec![before.clone().narrow(1, 0, 2), y.clone(), before.narrow(1, 10, 2)], 1);
        assert_close(output, want, scale, "channel range, written through a clone");

        // Transposed into rows of a packed [cells, channels] output after 3 other cells, with a
        // sigmoid on the first 4 channels.
        let cells = 3 + h * w;
        let packed = Tensor::<4>::zeros([1, 1, cells, cout], &gpu);
        let got = run(packed, 3 * cout, [cells * cout, 1, w * cout, cout], 4);
        let rows = y.reshape([1, cout, h * w]).swap_dims(1, 2);
        let rows = Tensor::cat(
            vec![burn::tensor::activation::sigmoid(rows.clone().narrow(2, 0, 4)), rows.narrow(2, 4, cout - 4)],
            2,
        );
        let want = Tensor::cat(vec![Tensor::<3>::zeros([1, 3, cout], &cpu), rows], 1).reshape([1, 1, cells, cout]);
        assert_close(got, want, scale, "packed rows with sigmoid");
    }
}
