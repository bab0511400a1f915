//! Image → network input: bilinear resize, crop, channel order and normalisation.
//!
//! The resize follows the reference spec exactly (half-pixel centres, no antialias, edge clamp,
//! f32 arithmetic in a fixed order; = PyTorch `interpolate(bilinear, align_corners=False)`); the
//! tests hold it to the reference input tensors within 1e-4.

use crate::image::Image;

/// How the whole image is mapped onto the network's square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resize {
    /// Resize so the shorter side is `crop * 256 / 224`, then take the centre `crop`×`crop`
    /// (the usual ImageNet evaluation transform; keeps the aspect ratio).
    #[default]
    CenterCrop,
    /// Resize the whole image to `size`×`size` (distorts the aspect ratio).
    Stretch,
}

/// Channel order of the network input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Channel 0 is red.
    Rgb,
    /// Channel 0 is blue (OpenCV-trained models such as NanoDet).
    Bgr,
}

/// Per-channel normalisation `x = (v - mean) / std`, in the network's channel order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    /// Channel order of the output (and of `mean` / `std`).
    pub order: ChannelOrder,
    /// Mean per output channel, in 0–255 pixel units.
    pub mean: [f32; 3],
    /// Standard deviation per output channel, in 0–255 pixel units.
    pub std: [f32; 3],
}

/// Where the network input came from in the source image, to map results back: input pixel
/// `(x, y)` is source pixel `((x + offset_x) · scale_x, (y + offset_y) · scale_y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// Source pixels per input pixel, horizontally.
    pub scale_x: f32,
    /// Source pixels per input pixel, vertically.
    pub scale_y: f32,
    /// Left edge of the input window, in resized pixels (non-zero only for a crop).
    pub offset_x: f32,
    /// Top edge of the input window, in resized pixels (non-zero only for a crop).
    pub offset_y: f32,
}

impl Transform {
    /// The source-image x coordinate of input x coordinate `x` (both in pixels).
    pub fn source_x(&self, x: f32) -> f32 {
        (x + self.offset_x) * self.scale_x
    }

    /// The source-image y coordinate of input y coordinate `y` (both in pixels).
    pub fn source_y(&self, y: f32) -> f32 {
        (y + self.offset_y) * self.scale_y
    }
}

/// A preprocessed input: NCHW f32 data of shape `[1, 3, size, size]`, and how it maps back to
/// the source image.
#[derive(Debug, Clone)]
pub struct Input {
    /// The planar values, channel-major.
    pub data: Vec<f32>,
    /// Mapping from input pixels back to source pixels.
    pub transform: Transform,
}

/// The size `(width, height)` after resizing the shorter side to `short`, the long side by
/// `(2 * long * short + s) / (2 * s)` in integers (round half up), as in the reference.
pub fn resize_shorter_side(width: u32, height: u32, short: u32) -> (u32, u32) {
    let (w, h, s) = (u64::from(width), u64::from(height), u64::from(short));
    let scaled = |long: u64, shorter: u64| ((2 * long * s + shorter) / (2 * shorter)) as u32;
    if width <= height { (short, scaled(h, w)) } else { (scaled(w, h), short) }
}

/// Source sample positions for one axis: `(i0, i1, f)` per output index.
fn axis_taps(in_size: u32, out_size: u32, start: u32, count: usize) -> Vec<(usize, usize, f32)> {
    let scale = in_size as f32 / out_size as f32;
    let last = in_size as usize - 1;
    (0..count)
        .map(|k| {
            let o = (start as usize + k) as f32;
            let src = ((o + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(last);
            let i1 = (i0 + 1).min(last);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// Resizes `image` to `resized_w`×`resized_h` (bilinear, half-pixel) and returns the
/// `size`×`size` window whose top-left corner is `(left, top)`, normalised, as NCHW.
fn resize_window(
    image: &Image<'_>,
    (resized_w, resized_h): (u32, u32),
    (left, top): (u32, u32),
    size: usize,
    norm: &Normalize,
) -> Vec<f32> {
    let xs = axis_taps(image.width(), resized_w, left, size);
    let ys = axis_taps(image.height(), resized_h, top, size);
    let ch = image.format().channels();
    let row = image.width() as usize * ch;
    let px = image.data();
    let src_channel = source_channels(norm.order);
    let mut out = vec![0.0f32; 3 * size * size];
    // Output row `oy` of channel `c` (row `i` of the three planes, `c = i / size`).
    let fill_row = |i: usize, dst: &mut [f32]| {
        let (c, (y0, y1, fy)) = (i / size, ys[i % size]);
        let (r0, r1, sc) = (y0 * row, y1 * row, src_channel[c]);
        for (d, &(x0, x1, fx)) in dst.iter_mut().zip(&xs) {
            let (c0, c1) = (x0 * ch, x1 * ch);
            let p = |r: usize, col: usize| f32::from(px[r + col + sc]);
            let top = (1.0 - fx) * p(r0, c0) + fx * p(r0, c1);
            let bot = (1.0 - fx) * p(r1, c0) + fx * p(r1, c1);
            let v = (1.0 - fy) * top + fy * bot;
            *d = (v - norm.mean[c]) / norm.std[c];
        }
    };
    // Natively the rows are shared among the cores (one thread, the frame's only serial pass
    // before the network, was ≈ 2 % of a frame's samples); the browser has one thread.
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(size).enumerate().for_each(|(i, dst)| fill_row(i, dst));
    }
    #[cfg(target_family = "wasm")]
    out.chunks_mut(size).enumerate().for_each(|(i, dst)| fill_row(i, dst));
    out
}

/// Which source channel (0–2) each output channel reads.
fn source_channels(order: ChannelOrder) -> [usize; 3] {
    match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    }
}

/// The resized size and the top-left corner of the `size`×`size` window taken from it.
fn window(width: u32, height: u32, size: usize, resize: Resize) -> ((u32, u32), (u32, u32)) {
    let side = size as u32;
    match resize {
        Resize::Stretch => ((side, side), (0, 0)),
        Resize::CenterCrop => {
            let short = (side * 256).div_ceil(224);
            let (rw, rh) = resize_shorter_side(width, height, short);
            ((rw, rh), ((rw - side) / 2, (rh - side) / 2))
        }
    }
}

/// How input pixels map back to a `width`×`height` source resized to `resized`, window at `corner`.
fn transform(width: u32, height: u32, resized: (u32, u32), (left, top): (u32, u32)) -> Transform {
    Transform {
        scale_x: width as f32 / resized.0 as f32,
        scale_y: height as f32 / resized.1 as f32,
        offset_x: left as f32,
        offset_y: top as f32,
    }
}

/// Preprocesses `image` into a `size`×`size` network input.
///
/// `CenterCrop` resizes the shorter side to `size * 256 / 224` (256 for a 224 input) and takes
/// the centre; `Stretch` resizes the whole image to `size`×`size`.
pub fn preprocess(image: &Image<'_>, size: usize, resize: Resize, norm: &Normalize) -> Input {
    let (w, h) = (image.width(), image.height());
    let (resized, corner) = window(w, h, size, resize);
    Input { data: resize_window(image, resized, corner, size, norm), transform: transform(w, h, resized, corner) }
}

/// [`preprocess`]'s sampling, for a kernel that does the weighted sums elsewhere (the GPU kernel
/// in `model`, on the image's bytes as they are): where each input pixel reads the source, in
/// bytes, and with which weights. Computing the positions once on the host keeps them
/// bit-identical to the CPU path's.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Per input column `[byte of x0 in a row, byte of x1, fx as f32 bits]`, then per input row
    /// `[byte where row y0 starts, byte where row y1 starts, fy as f32 bits]`: the value at
    /// `(x, y)` is `(1 - fy)·((1 - fx)·p(y0, x0) + fx·p(y0, x1)) + fy·(…row y1…)`.
    pub taps: Vec<u32>,
    /// The byte offset within a pixel of each input channel's source channel.
    pub channels: [u32; 3],
    /// Bytes per source pixel (3 for RGB, 4 for RGBA).
    pub pixel_bytes: u32,
    /// Mapping from input pixels back to source pixels.
    pub transform: Transform,
}

/// The sampling of `preprocess(image, size, resize, norm)` (see [`Sampling`]).
pub fn sampling(image: &Image<'_>, size: usize, resize: Resize, order: ChannelOrder) -> Sampling {
    let (w, h) = (image.width(), image.height());
    let ((rw, rh), (left, top)) = window(w, h, size, resize);
    let ch = image.format().channels();
    let row = w as usize * ch;
    let mut taps = Vec::with_capacity(6 * size);
    let mut push = |axis: Vec<(usize, usize, f32)>, step: usize| {
        for (i0, i1, f) in axis {
            // Byte offsets fit in u32: an image holds at most 2^26 pixels of at most 4 bytes.
            taps.extend([(i0 * step) as u32, (i1 * step) as u32, f.to_bits()]);
        }
    };
    push(axis_taps(w, rw, left, size), ch);
    push(axis_taps(h, rh, top, size), row);
    Sampling {
        taps,
        channels: source_channels(order).map(|c| c as u32),
        pixel_bytes: ch as u32,
        transform: transform(w, h, (rw, rh), (left, top)),
    }
}

/// The `CenterCrop` input of `image` with its window moved by `shift` pixels right and down
/// (left and up when negative), clamped to the resized image: a shifted crop, for training.
pub fn preprocess_shifted(image: &Image<'_>, size: usize, norm: &Normalize, shift: i32) -> Vec<f32> {
    let ((rw, rh), (left, top)) = window(image.width(), image.height(), size, Resize::CenterCrop);
    let side = size as u32;
    let at =
        |corner: u32, resized: u32| (i64::from(corner) + i64::from(shift)).clamp(0, i64::from(resized - side)) as u32;
    resize_window(image, (rw, rh), (at(left, rw), at(top, rh)), size, norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: Normalize = Normalize { order: ChannelOrder::Rgb, mean: [0.0; 3], std: [1.0; 3] };

    #[test]
    fn shorter_side_rounds_half_up() {
        // 451x300 (chelsea): long = (2*451*256 + 300) / 600 = 385 (384.85 rounds to 385).
        assert_eq!(resize_shorter_side(451, 300, 256), (385, 256));
        assert_eq!(resize_shorter_side(300, 451, 256), (256, 385));
        assert_eq!(resize_shorter_side(256, 256, 256), (256, 256));
    }

    #[test]
    fn identity_resize_is_exact() {
        let px: Vec<u8> = (0..4 * 4 * 3).map(|v| v as u8).collect();
        let img = Image::from_rgb(&px, 4, 4).expect("valid");
        let input = preprocess(&img, 4, Resize::Stretch, &IDENTITY);
        for y in 0..4 {
            for x in 0..4 {
                for c in 0..3 {
                    assert_eq!(input.data[c * 16 + y * 4 + x], px[(y * 4 + x) * 3 + c] as f32);
                }
            }
        }
    }

    #[test]
    fn downscale_by_two_averages_pairs() {
        // Half-pixel centres: output 0 samples at 0.5 between source pixels 0 and 1.
        let px = [0u8, 0, 0, 100, 100, 100, 200, 200, 200, 250, 250, 250];
        let img = Image::from_rgb(&px, 4, 1).expect("valid");
        let input = preprocess(&img, 2, Resize::Stretch, &IDENTITY);
        assert_eq!(&input.data[0..2], &[50.0, 225.0]);
        assert_eq!(axis_taps(4, 2, 0, 2), vec![(0, 1, 0.5), (2, 3, 0.5)]);
    }

    #[test]
    fn transform_maps_input_pixels_back_to_the_source() {
        let px = vec![0u8; 600 * 400 * 3];
        let img = Image::from_rgb(&px, 600, 400).expect("valid");
        // Crop: 600×400 → 384×256 (shorter side 256), centre 224 starts at (80, 16).
        let t = preprocess(&img, 224, Resize::CenterCrop, &IDENTITY).transform;
        assert_eq!((t.offset_x, t.offset_y), (80.0, 16.0));
        assert!((t.source_x(0.0) - 125.0).abs() < 1e-4 && (t.source_y(224.0) - 375.0).abs() < 1e-4);
        let t = preprocess(&img, 224, Resize::Stretch, &IDENTITY).transform;
        assert!((t.source_x(224.0) - 600.0).abs() < 1e-4 && (t.source_y(112.0) - 200.0).abs() < 1e-4);
    }

    #[test]
    fn bgr_and_normalisation() {
        let px = [10u8, 20, 30];
        let img = Image::from_rgb(&px, 1, 1).expect("valid");
        let norm = Normalize { order: ChannelOrder::Bgr, mean: [1.0, 2.0, 3.0], std: [2.0, 2.0, 3.0] };
        let input = preprocess(&img, 1, Resize::Stretch, &norm);
        assert_eq!(input.data, vec![(30.0 - 1.0) / 2.0, (20.0 - 2.0) / 2.0, (10.0 - 3.0) / 3.0]);
    }
}
