//! A direct 2D convolution with its bias, activation and residual addition in one kernel.
//!
//! One invocation computes a register tile of 4 consecutive pixels of a row × 4 consecutive
//! output channels (fewer where the row or the group is narrower): each input value it reads
//! serves 4 channels and each weight 4 pixels. Consecutive invocations run along the output row,
//! so their input reads are near-consecutive addresses and their weight reads the same address.
//! Every input is read through its strides, so tensors in any layout (e.g. the channels-last
//! ones burn's own GPU operators return) need no copy first.

use burn::tensor::Shape;
use burn::tensor::ops::ConvOptions;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

use super::super::activation::Activation;

/// The convolution's geometry, as the kernel is told it.
#[derive(CubeLaunch, CubeType)]
struct ConvArgs {
    /// Invocations: one per tile of the result.
    count: usize,
    out_c: usize,
    out_h: usize,
    out_w: usize,
    /// Where result `(n, c, y, x)` goes in `output`: `offset + n·s0 + c·s1 + y·s2 + x·s3`.
    offset: usize,
    s0: usize,
    s1: usize,
    s2: usize,
    s3: usize,
    stride_y: usize,
    stride_x: usize,
    dilation_y: usize,
    dilation_x: usize,
    pad_top: usize,
    pad_left: usize,
    cin_per_group: usize,
    cout_per_group: usize,
    /// The leaky ReLU's slope (unused by the other activations).
    slope: f32,
    /// Output channels below this get a logistic sigmoid after the activation.
    sigmoid_channels: usize,
}

/// The activation, as a compile-time constant of the kernel.
const IDENTITY: u32 = 0;
const RELU6: u32 = 1;
const LEAKY_RELU: u32 = 2;

// A compile-time `if` cannot merge with the run-time one inside it.
#[allow(clippy::collapsible_if)]
#[cube(launch_unchecked)]
fn conv2d_act_kernel(
    input: &Tensor<f32>,
    weight: &Tensor<f32>,
    bias: &Tensor<f32>,
    residual: ComptimeOption<&Tensor<f32>>,
    output: &mut Tensor<f32>,
    copy: ComptimeOption<&mut Tensor<f32>>,
    args: ConvArgs,
    #[comptime] kernel_h: usize,
    #[comptime] kernel_w: usize,
    #[comptime] block: usize,
    #[comptime] block_x: usize,
    #[comptime] act: u32,
    #[comptime] sigmoid: bool,
) {
    if ABSOLUTE_POS >= args.count {
        terminate!();
    }
    // One invocation per `block_x` consecutive pixels of a row and `block` consecutive output
    // channels of one group (a register tile: each input value read serves `block` channels,
    // each weight `block_x` pixels), pixel blocks fastest.
    let x_blocks = args.out_w.div_ceil(block_x);
    let ox0 = (ABSOLUTE_POS % x_blocks) * block_x;
    let rest = ABSOLUTE_POS / x_blocks;
    let oy = rest % args.out_h;
    let rest = rest / args.out_h;
    let blocks = args.out_c / block;
    let oc0 = (rest % blocks) * block;
    let n = rest / blocks;

    let in_h = input.shape(2);
    let in_w = input.shape(3);
    let first_ic = (oc0 / args.cout_per_group) * args.cin_per_group;
    // Window origin in padded coordinates: input row `iy - pad_top` for `iy = y0 + ky`.
    let y0 = oy * args.stride_y;
    let w_oc = weight.stride(0);
    let in_x = input.stride(3);

    let mut acc = Array::<f32>::new(block * block_x);
    #[unroll]
    for j in 0..block {
        let b = bias[(oc0 + j) * bias.stride(0)];
        #[unroll]
        for p in 0..block_x {
            acc[j * block_x + p] = b;
        }
    }
    let mut v = Array::<f32>::new(block_x);
    for ic in 0..args.cin_per_group {
        let in_c = n * input.stride(0) + (first_ic + ic) * input.stride(1);
        let w_c = oc0 * w_oc + ic * weight.stride(1);
        #[unroll]
        for ky in 0..kernel_h {
            let iy = y0 + ky * args.dilation_y;
            if iy >= args.pad_top && iy - args.pad_top < in_h {
                let in_row = in_c + (iy - args.pad_top) * input.stride(2);
                let w_row = w_c + ky * weight.stride(2);
                #[unroll]
                for kx in 0..kernel_w {
                    #[unroll]
                    for p in 0..block_x {
                        // Columns in the padding read the row's first value and count as 0.
                        let ix = (ox0 + p) * args.stride_x + kx * args.dilation_x;
                        let inside = ix >= args.pad_left && ix < args.pad_left + in_w;
                        let at = select(inside, in_row + (ix - args.pad_left) * in_x, in_row);
                        v[p] = select(inside, input[at], f32::new(0.0));
                    }
                    let w_at = w_row + kx * weight.stride(3);
                    #[unroll]
                    for j in 0..block {
                        let wv = weight[w_at + j * w_oc];
                        #[unroll]
                        for p in 0..block_x {
                            acc[j * block_x + p] += v[p] * wv;
                        }
                    }
                }
            }
        }
    }

    #[unroll]
    for j in 0..block {
        let oc = oc0 + j;
        #[unroll]
        for p in 0..block_x {
            let ox = ox0 + p;
            if ox < args.out_w {
                let mut value = acc[j * block_x + p];
                if comptime![act == RELU6] {
                    value = select(value < 0.0, 0.0, value);
                    value = select(value > 6.0, 6.0, value);
                } else if comptime![act == LEAKY_RELU] {
                    value = select(value >= 0.0, value, value * args.slope);
                }
                if comptime![sigmoid] {
                    if oc < args.sigmoid_channels {
                        value = f32::new(1.0) / (f32::new(1.0) + f32::exp(-value));
                    }
                }
                let shortcut: ComptimeOption<f32> =
                    residual.map(|r| r[n * r.stride(0) + oc * r.stride(1) + oy * r.stride(2) + ox * r.stride(3)]);
                value += shortcut.unwrap_or(f32::new(0.0));
                output[args.offset + n * args.s0 + oc * args.s1 + oy * args.s2 + ox * args.s3] = value;
                acc[j * block_x + p] = value;
            }
        }
    }
    // The same results again, contiguous NCHW, in a tensor of their own.
    #[comptime]
    if let ComptimeOption::Some(copy) = copy {
        #[unroll]
        for j in 0..block {
            #[unroll]
            for p in 0..block_x {
                let ox = ox0 + p;
                if ox < args.out_w {
                    copy[((n * args.out_c + oc0 + j) * args.out_h + oy) * args.out_w + ox] = acc[j * block_x + p];
                }
            }
        }
    }
}

/// Where a convolution writes.
// Built once per launch and consumed at once: boxing the tensor would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Target {
    /// A new contiguous NCHW tensor.
    New,
    /// In place into `output`: result `(n, c, y, x)` at element
    /// `offset + n·strides[0] + c·strides[1] + y·strides[2] + x·strides[3]` (a channel range of a
    /// concatenation, a transposed slice of a packed output…), with a sigmoid on result channels
    /// below `sigmoid_channels`; with `copy`, also into a new contiguous tensor (WebGPU cannot
    /// read a buffer in the dispatch that writes it, so a result that is both part of a
    /// concatenation and the next convolution's input needs its own copy).
    Into { output: CubeTensor, offset: usize, strides: [usize; 4], sigmoid_channels: usize, copy: bool },
}

/// `act(conv2d(x, weight) + bias) [+ residual]` into `target`; returns the tensor written and the
/// copy, if asked for. All tensors are f32 (the caller casts).
pub(super) fn conv2d_act(
    x: CubeTensor,
    weight: CubeTensor,
    bias: CubeTensor,
    residual: Option<CubeTensor>,
    options: &ConvOptions<2>,
    act: Activation,
    target: Target,
) -> (CubeTensor, Option<CubeTensor>) {
    let [batch, cin, h, w]: [usize; 4] = x.meta.shape().dims();
    let [cout, cin_per_group, kh, kw]: [usize; 4] = weight.meta.shape().dims();
    let groups = options.groups;
    assert!(
        groups > 0 && cin == cin_per_group * groups && cout % groups == 0,
        "convolution weight {:?} does not fit {cin} input channels in {groups} groups",
        weight.meta.shape()
    );
    assert_eq!(bias.meta.num_elements(), cout, "one bias per output channel");
    assert!(kh > 0 && kw > 0 && options.stride.iter().all(|&s| s > 0), "empty kernel or zero stride");
    let [(top, bottom), (left, right)] = options.padding;
    let [sy, sx] = options.stride;
    let [dy, dx] = options.dilation;
    let out_h = (h + top + bottom - dy * (kh - 1) - 1) / sy + 1;
    let out_w = (w + left + right - dx * (kw - 1) - 1) / sx + 1;
    let shape = [batch, cout, out_h, out_w];
    if let Some(r) = &residual {
        assert_eq!(r.meta.shape().dims::<4>(), shape, "the residual has another shape than the result");
    }
    let new = || empty_device_dtype(x.client.clone(), x.device.clone(), Shape::new(shape), x.dtype);
    let (output, offset, strides, sigmoid_channels, copy) = match target {
        Target::New => (new(), 0, [cout * out_h * out_w, out_h * out_w, out_w, 1], 0, None),
        Target::Into { output, offset, strides, sigmoid_channels, copy } => {
            // The last value written must lie inside the output.
            let last = offset + (0..4).map(|d| (shape[d] - 1) * strides[d]).sum::<usize>();
            assert!(last < output.meta.num_elements(), "the convolution's output range exceeds its tensor");
            (output, offset, strides, sigmoid_channels, copy.then(new))
        }
    };
    let (code, slope) = match act {
        Activation::Identity => (IDENTITY, 0.0),
        Activation::Relu6 => (RELU6, 0.0),
        Activation::LeakyRelu(slope) => (LEAKY_RELU, slope as f32),
    };
    // Blocks of 4 output channels share each input read (dense convolutions); a depthwise
    // convolution's channels each read their own input channel, so they gain nothing from it.
    let block = if cin / groups > 1 && (cout / groups) % 4 == 0 { 4 } else { 1 };
    // Rows are cut into blocks of 4 pixels (the last one partly outside the result).
    let block_x = if out_w >= 4 { 4 } else { 1 };
    let count = batch * (cout / block) * out_h * out_w.div_ceil(block_x);
    let args = ConvArgsLaunch::new(
        count,
        cout,
        out_h,
        out_w,
        offset,
        strides[0],
        strides[1],
        strides[2],
        strides[3],
        sy,
        sx,
        dy,
        dx,
        top,
        left,
        cin / groups,
        cout / groups,
        slope,
        sigmoid_channels,
    );
    let cube_dim = CubeDim::new(&x.client, count);
    let cube_count = calculate_cube_count_elemwise(&x.client, count, cube_dim);
    // SAFETY: every index the kernel forms lies inside its tensor, given the shapes checked
    // above: invocations past `count` stop first; the output channel `oc < cout` and its group's
    // input channels `first_ic + ic < cin` (groups divide both); input rows and columns are
    // tested against the input's size; kernel taps range over the weight's own shape; the
    // residual has the result's shape; the in-place range was checked to fit its tensor and the
    // copy is a new tensor of the result's shape.
    #[allow(unsafe_code)]
    unsafe {
        conv2d_act_kernel::launch_unchecked(
            &output.client,
            cube_count,
            cube_dim,
            x.into_tensor_arg(),
            weight.into_tensor_arg(),
            bias.into_tensor_arg(),
            residual.map(|r| r.into_tensor_arg()).into(),
            output.clone().into_tensor_arg(),
            copy.clone().map(|c| c.into_tensor_arg()).into(),
            args,
            kh,
            kw,
            block,
            block_x,
            code,
            sigmoid_channels > 0,
        );
    }
    (output, copy)
}
