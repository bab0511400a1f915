//! Image files (PNG, JPEG) → RGB pixels, natively (the browser decodes images itself). The size
//! limits are checked on the header before anything is allocated, so a small file that declares
//! a huge image (a decompression bomb) is refused at once.

use std::io::Cursor;

use image::{ImageReader, Limits};

use crate::error::{Error, Result};
use crate::image::{Image, MAX_PIXELS, MAX_SIDE, check_size};

/// A decoded image: 8-bit RGB, row-major, top-left origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedImage {
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl DecodedImage {
    /// A borrowed view for the tasks.
    pub fn view(&self) -> Image<'_> {
        // The size was checked on decode and the buffer is exactly `w * h * 3`.
        Image::from_rgb(&self.data, self.width, self.height).expect("a decoded image is a valid RGB image")
    }
}

/// Decodes a PNG or JPEG file's bytes to RGB (alpha is dropped). Fails with `InvalidImage` for an
/// unknown format, a corrupt or truncated file, or an image beyond the size limits.
pub fn decode_rgb(bytes: &[u8]) -> Result<DecodedImage> {
    decode_rgb_within(bytes, MAX_PIXELS)
}

/// [`decode_rgb`] with a lower pixel budget: an image whose header declares more than
/// `max_pixels` pixels (or beyond the usual limits) is refused with `InvalidImage` before
/// anything is decoded. For callers that know their images are small (and the fuzzer, which
/// would otherwise spend its time decoding 64-megapixel noise).
pub fn decode_rgb_within(bytes: &[u8], max_pixels: u64) -> Result<DecodedImage> {
    let max_pixels = max_pixels.min(MAX_PIXELS);
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::invalid_image(format!("cannot read the image: {e}")))
    };
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| Error::invalid_image(format!("not a readable PNG or JPEG image: {e}")))?;
    check_size(width, height)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Error::invalid_image(format!(
            "the image is {width}x{height} pixels, more than the {max_pixels} allowed here"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // The decoded buffer (up to 4 bytes a pixel) and one conversion to RGB.
    limits.max_alloc = Some(max_pixels * 8);
    let mut reader = reader()?;
    reader.limits(limits);
    let image = reader.decode().map_err(|e| Error::invalid_image(format!("cannot decode the image: {e}")))?;
    let rgb = image.into_rgb8();
    let (width, height) = rgb.dimensions();
    Ok(DecodedImage { data: rgb.into_raw(), width, height })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// The start of a PNG whose header declares `width`×`height` (a valid IHDR chunk, no pixels).
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        // A chunk: length, type, data, CRC-32 (IEEE) of type and data, which PNG decoders check.
        let chunk = |kind: &[u8], data: &[u8]| {
            let body = [kind, data].concat();
            let crc = !body.iter().fold(!0u32, |c, &b| {
                (0..8).fold(c ^ u32::from(b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 })
            });
            [&(data.len() as u32).to_be_bytes()[..], &body, &crc.to_be_bytes()].concat()
        };
        let ihdr = [&width.to_be_bytes()[..], &height.to_be_bytes(), &[8, 2, 0, 0, 0]].concat(); // 8-bit RGB
        [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &[]), &chunk(b"IEND", &[])].concat()
    }

    #[test]
    fn refuses_bombs_garbage_and_truncated_files() {
        for (width, height) in [(30_000, 30_000), (16_384, 16_384), (20_000, 1)] {
            let e = decode_rgb(&png_header(width, height)).unwrap_err();
            assert!(e.message().contains("the largest accepted"), "{width}x{height}: {e}");
        }
        for (bytes, what) in [
            (png_header(2, 2), "no pixel data"),
            (b"GIF89a\x01\x00\x01\x00".to_vec(), "unsupported"),
            (Vec::new(), "empty"),
            (b"not an image".to_vec(), "garbage"),
        ] {
            let e = decode_rgb(&bytes).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidImage, "{what}: {e}");
        }
    }

    #[test]
    fn a_lower_budget_refuses_from_the_header_and_still_decodes_what_fits() {
        let e = decode_rgb_within(&png_header(600, 600), 1 << 18).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidImage);
        assert!(e.message().contains("600x600"), "{e}");
        // A real 2×3 PNG, encoded here.
        let mut png = Vec::new();
        image::RgbImage::from_fn(2, 3, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let decoded = decode_rgb_within(&png, 6).unwrap();
        assert_eq!((decoded.width, decoded.height, decoded.data.len()), (2, 3, 18));
        assert_eq!(decode_rgb_within(&png, 5).unwrap_err().kind(), ErrorKind::InvalidImage);
    }
}
