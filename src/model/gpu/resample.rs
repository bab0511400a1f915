//! Frames prepared on the GPU: the bilinear resize/crop, channel order and normalisation of
//! `crate::preprocess` as one kernel over the frame's bytes, as uploaded (RGBA or RGB, four bytes
//! per `u32` word), writing the network's NCHW input. The host computes the sampling positions
//! and weights (`preprocess::sampling`, the same values the CPU path uses), so the kernel only
//! forms the weighted sums, in the CPU path's order.

use burn::tensor::{DType, Shape};
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

/// What the kernel is told besides its tensors.
#[derive(CubeLaunch, CubeType)]
struct ResampleArgs {
    /// Output pixels (one invocation each).
    count: usize,
    /// The output's side.
    size: usize,
    /// The byte within a source pixel that each output channel reads.
    c0: usize,
    c1: usize,
    c2: usize,
    mean0: f32,
    mean1: f32,
    mean2: f32,
    std0: f32,
    std1: f32,
    std2: f32,
}

/// Byte `at` of the packed bytes, as a value 0–255.
#[cube]
fn byte(pixels: &Tensor<u32>, at: usize) -> f32 {
    let word = pixels[at / 4];
    f32::cast_from((word >> (u32::cast_from(at % 4) * 8)) & 255)
}

/// The bilinear sample of one channel, in the CPU path's order of operations.
#[cube]
fn bilinear(pixels: &Tensor<u32>, rows: (usize, usize), cols: (usize, usize), fx: f32, fy: f32) -> f32 {
    let (r0, r1) = rows;
    let (c0, c1) = cols;
    let top = (1.0 - fx) * byte(pixels, r0 + c0) + fx * byte(pixels, r0 + c1);
    let bottom = (1.0 - fx) * byte(pixels, r1 + c0) + fx * byte(pixels, r1 + c1);
    (1.0 - fy) * top + fy * bottom
}

#[cube(launch)]
fn resample_kernel(pixels: &Tensor<u32>, taps: &Tensor<u32>, output: &mut Tensor<f32>, args: ResampleArgs) {
    if ABSOLUTE_POS >= args.count {
        terminate!();
    }
    let ox = ABSOLUTE_POS % args.size;
    let oy = ABSOLUTE_POS / args.size;
    let tx = ox * 3;
    let ty = (args.size + oy) * 3;
    let cols = (usize::cast_from(taps[tx]), usize::cast_from(taps[tx + 1]));
    let rows = (usize::cast_from(taps[ty]), usize::cast_from(taps[ty + 1]));
    let fx = f32::reinterpret(taps[tx + 2]);
    let fy = f32::reinterpret(taps[ty + 2]);
    let plane = args.size * args.size;
    let at = oy * args.size + ox;
    let v0 = bilinear(pixels, (rows.0 + args.c0, rows.1 + args.c0), cols, fx, fy);
    let v1 = bilinear(pixels, (rows.0 + args.c1, rows.1 + args.c1), cols, fx, fy);
    let v2 = bilinear(pixels, (rows.0 + args.c2, rows.1 + args.c2), cols, fx, fy);
    output[at] = (v0 - args.mean0) / args.std0;
    output[plane + at] = (v1 - args.mean1) / args.std1;
    output[2 * plane + at] = (v2 - args.mean2) / args.std2;
}

/// The `[1, 3, size, size]` input sampled from `pixels` (u32 words of packed bytes) at `taps`
/// (see `preprocess::Sampling`), output channel `c` reading byte `channels[c]` of each pixel,
/// normalised `(v - mean[c]) / std[c]`.
pub(super) fn resample(
    pixels: CubeTensor,
    taps: CubeTensor,
    size: usize,
    channels: [u32; 3],
    mean: [f32; 3],
    std: [f32; 3],
) -> CubeTensor {
    assert!(pixels.dtype == DType::U32 && taps.dtype == DType::U32, "pixels and taps are u32 words");
    assert!(size > 0 && taps.meta.num_elements() == 6 * size, "three taps per output column and row");
    assert!(channels.iter().all(|&c| c < 4), "a pixel has at most 4 bytes");
    let pixels = burn_cubecl::kernel::into_contiguous(pixels);
    let taps = burn_cubecl::kernel::into_contiguous(taps);
    let output =
        empty_device_dtype(pixels.client.clone(), pixels.device.clone(), Shape::new([1, 3, size, size]), DType::F32);
    let count = size * size;
    let [c0, c1, c2] = channels.map(|c| c as usize);
    let args = ResampleArgsLaunch::new(count, size, c0, c1, c2, mean[0], mean[1], mean[2], std[0], std[1], std[2]);
    let cube_dim = CubeDim::new(&pixels.client, count);
    let cube_count = calculate_cube_count_elemwise(&pixels.client, count, cube_dim);
    // A checked launch: the byte offsets come from the caller's taps, so every read is
    // bounds-checked (a few comparisons per pixel; the reads dominate).
    resample_kernel::launch(
        &output.client,
        cube_count,
        cube_dim,
        pixels.into_tensor_arg(),
        taps.into_tensor_arg(),
        output.clone().into_tensor_arg(),
        args,
    );
    output
}
