//! `--draw`: labelled boxes on an RGB image, with a built-in 5×7 bitmap font (no font files).

use image::{Rgb, RgbImage};
use sightline::{Detection, Explanation};

/// 5×7 glyphs, one string of 7 rows per character ('#' = ink).
const GLYPHS: &[(char, [&str; 7])] = &[
    ('a', ["     ", "     ", " ### ", "    #", " ####", "#   #", " ####"]),
    ('b', ["#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### "]),
    ('c', ["     ", "     ", " ### ", "#    ", "#    ", "#   #", " ### "]),
    ('d', ["    #", "    #", " ## #", "#  ##", "#   #", "#   #", " ####"]),
    ('e', ["     ", "     ", " ### ", "#   #", "#####", "#    ", " ### "]),
    ('f', ["  ## ", " #  #", " #   ", "###  ", " #   ", " #   ", " #   "]),
    ('g', ["     ", " ####", "#   #", "#   #", " ####", "    #", " ### "]),
    ('h', ["#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#   #"]),
    ('i', ["  #  ", "     ", " ##  ", "  #  ", "  #  ", "  #  ", " ### "]),
    ('j', ["   # ", "     ", "  ## ", "   # ", "   # ", "#  # ", " ##  "]),
    ('k', ["#    ", "#    ", "#  # ", "# #  ", "##   ", "# #  ", "#  # "]),
    ('l', [" ##  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "]),
    ('m', ["     ", "     ", "## # ", "# # #", "# # #", "#   #", "#   #"]),
    ('n', ["     ", "     ", "# ## ", "##  #", "#   #", "#   #", "#   #"]),
    ('o', ["     ", "     ", " ### ", "#   #", "#   #", "#   #", " ### "]),
    ('p', ["     ", "     ", "#### ", "#   #", "#### ", "#    ", "#    "]),
    ('q', ["     ", "     ", " ## #", "#  ##", " ####", "    #", "    #"]),
    ('r', ["     ", "     ", "# ## ", "##  #", "#    ", "#    ", "#    "]),
    ('s', ["     ", "     ", " ### ", "#    ", " ### ", "    #", "#### "]),
    ('t', [" #   ", " #   ", "###  ", " #   ", " #   ", " #  #", "  ## "]),
    ('u', ["     ", "     ", "#   #", "#   #", "#   #", "#  ##", " ## #"]),
    ('v', ["     ", "     ", "#   #", "#   #", "#   #", " # # ", "  #  "]),
    ('w', ["     ", "     ", "#   #", "#   #", "# # #", "# # #", " # # "]),
    ('x', ["     ", "     ", "#   #", " # # ", "  #  ", " # # ", "#   #"]),
    ('y', ["     ", "     ", "#   #", "#   #", " ####", "    #", " ### "]),
    ('z', ["     ", "     ", "#####", "   # ", "  #  ", " #   ", "#####"]),
    ('0', [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "]),
    ('1', ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "]),
    ('2', [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"]),
    ('3', ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "]),
    ('4', ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "]),
    ('5', ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "]),
    ('6', ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "]),
    ('7', ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "]),
    ('8', [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "]),
    ('9', [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "]),
    ('%', ["##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"]),
    ('.', ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "]),
    ('-', ["     ", "     ", "     ", "#####", "     ", "     ", "     "]),
];

fn glyph(c: char) -> Option<&'static [&'static str; 7]> {
    let c = c.to_ascii_lowercase();
    GLYPHS.iter().find(|(g, _)| *g == c).map(|(_, rows)| rows)
}

/// The same hue sequence as the browser's `classColor` (golden angle), as RGB.
pub fn class_color(index: usize) -> Rgb<u8> {
    let h = (index as f32 * 137.508) % 360.0;
    let (s, l) = (0.85f32, 0.5f32);
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let to = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb([to(r), to(g), to(b)])
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: i64, color: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let gx = x + i as i64 * 6 * scale;
        for (r, row) in rows.iter().enumerate() {
            for (col, ch) in row.chars().enumerate() {
                if ch == '#' {
                    let (px, py) = (gx + col as i64 * scale, y + r as i64 * scale);
                    fill(img, px, py, px + scale, py + scale, color);
                }
            }
        }
    }
}

/// Draws every detection as a class-coloured box with a `label NN%` tag; line width and text
/// scale grow with the image.
pub fn draw(img: &mut RgbImage, detections: &[Detection]) {
    // One text pixel per 250 image pixels of the shorter side: 2 for a 576-pixel photo.
    let unit = (img.width().min(img.height()) as f32 / 250.0).round().max(1.0) as i64;
    let line = unit.max(2);
    let scale = unit;
    for d in detections {
        let color = class_color(d.index);
        let (x0, y0) = (d.bbox.x.round() as i64, d.bbox.y.round() as i64);
        let (x1, y1) = ((d.bbox.x + d.bbox.width).round() as i64, (d.bbox.y + d.bbox.height).round() as i64);
        fill(img, x0, y0, x1, y0 + line, color);
        fill(img, x0, y1 - line, x1, y1, color);
        fill(img, x0, y0, x0 + line, y1, color);
        fill(img, x1 - line, y0, x1, y1, color);
        let tag = format!("{} {:.0}%", d.label, d.score * 100.0);
        let (tw, th) = (tag.chars().count() as i64 * 6 * scale + 2 * line, 7 * scale + 2 * line);
        let ty = if y0 - th >= 0 { y0 - th } else { y0 };
        fill(img, x0, ty, x0 + tw, ty + th, color);
        text(img, x0 + line, ty + line, &tag, scale, Rgb([255, 255, 255]));
    }
}

/// Viridis (matplotlib's perceptually uniform colour map), sampled at nine even stops.
const VIRIDIS: [[f32; 3]; 9] = [
    [68.0, 1.0, 84.0],
    [71.0, 45.0, 123.0],
    [59.0, 82.0, 139.0],
    [44.0, 114.0, 142.0],
    [33.0, 145.0, 140.0],
    [40.0, 174.0, 128.0],
    [94.0, 201.0, 98.0],
    [173.0, 220.0, 48.0],
    [253.0, 231.0, 37.0],
];

/// The colour of `v` (0–1) on the colour map.
fn heat_color(v: f32) -> [f32; 3] {
    let t = v.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f32;
    std::array::from_fn(|c| VIRIDIS[i][c] * (1.0 - f) + VIRIDIS[i + 1][c] * f)
}

/// `--explain-png`: the explanation's heat map over the region it covers, smoothly upsampled
/// (bilinear, by the library) and blended at `alpha`.
pub fn draw_heatmap(img: &mut RgbImage, explanation: &Explanation, alpha: f32) {
    let (width, height) = img.dimensions();
    for y in 0..height {
        for x in 0..width {
            let Some(v) = explanation.sample(x as f32 + 0.5, y as f32 + 0.5) else { continue };
            let color = heat_color(v);
            let Rgb(px) = img.get_pixel_mut(x, y);
            for c in 0..3 {
                px[c] = (f32::from(px[c]) * (1.0 - alpha) + color[c] * alpha).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}
