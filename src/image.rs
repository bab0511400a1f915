//! A borrowed, validated view of 8-bit pixels.

use crate::error::{Error, Result};

/// The largest accepted width or height, in pixels (the largest 2D texture most GPUs take).
pub const MAX_SIDE: u32 = 16_384;
/// The largest accepted pixel count (64 Mpx, 256 MiB of RGBA).
pub const MAX_PIXELS: u64 = 1 << 26;

/// Checks an image size against the limits every entry point shares (the JS layer applies the
/// same ones before it allocates anything): both sides at least 1, at most [`MAX_SIDE`], and at
/// most [`MAX_PIXELS`] in all.
pub fn check_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::invalid_image(format!(
            "image is empty ({width}x{height}); both sides must be at least 1 pixel"
        )));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::invalid_image(format!(
            "image is {width}x{height}; the largest accepted is {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all"
        )));
    }
    Ok(())
}

/// How the bytes of an [`Image`] are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 4 bytes per pixel, R G B A (canvas `ImageData` order); alpha is ignored.
    Rgba8,
    /// 3 bytes per pixel, R G B.
    Rgb8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Rgba8 => 4,
            PixelFormat::Rgb8 => 3,
        }
    }
}

/// A borrowed image: row-major pixels, top-left origin, no padding between rows.
///
/// The constructors check that the buffer length is exactly `width * height * channels`, that
/// neither side is zero, and that the image is not larger than [`MAX_SIDE`] / [`MAX_PIXELS`].
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    format: PixelFormat,
}

impl<'a> Image<'a> {
    /// Wraps RGBA pixels (e.g. the `data` of a canvas `ImageData`).
    pub fn from_rgba(data: &'a [u8], width: u32, height: u32) -> Result<Self> {
        Self::new(data, width, height, PixelFormat::Rgba8)
    }

    /// Wraps RGB pixels.
    pub fn from_rgb(data: &'a [u8], width: u32, height: u32) -> Result<Self> {
        Self::new(data, width, height, PixelFormat::Rgb8)
    }

    /// Wraps pixels of the given format.
    pub fn new(data: &'a [u8], width: u32, height: u32, format: PixelFormat) -> Result<Self> {
        check_size(width, height)?;
        let expected = width as usize * height as usize * format.channels();
        if data.len() != expected {
            return Err(Error::invalid_image(format!(
                "pixel buffer has {} bytes, but a {width}x{height} {format:?} image needs {expected}",
                data.len()
            )));
        }
        Ok(Self { data, width, height, format })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel layout.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The raw bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn accepts_exact_length() {
        let px = vec![0u8; 2 * 3 * 4];
        let img = Image::from_rgba(&px, 2, 3).expect("valid");
        assert_eq!((img.width(), img.height()), (2, 3));
    }

    #[test]
    fn rejects_wrong_length_zero_size_and_huge() {
        let px = vec![0u8; 23];
        let e = Image::from_rgba(&px, 2, 3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidImage);
        assert!(e.message().contains("23 bytes"), "{e}");
        assert_eq!(Image::from_rgba(&[], 0, 0).unwrap_err().kind(), ErrorKind::InvalidImage);
        assert_eq!(Image::from_rgb(&[], 0, 5).unwrap_err().kind(), ErrorKind::InvalidImage);
        let e = Image::from_rgba(&[], MAX_SIDE + 1, 1).unwrap_err();
        assert!(e.message().contains("largest"), "{e}");
    }
}
