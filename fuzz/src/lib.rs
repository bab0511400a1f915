//! The bodies of the fuzz targets, one function per target (`fuzz/fuzz_targets/<name>.rs` calls
//! the function of the same name). The same file is included by `tests/fuzz_corpus.rs`, which
//! replays the committed corpus (`fuzz/corpus/<name>/`) on stable, so keep it free of anything
//! but `sightline` and `serde_json`.
//!
//! Every body must return for any input: an `Err` is a correct answer, a panic is a bug. The
//! `assert!`s check what the API promises about its results.

use sightline::decode::decode_rgb_within;
use sightline::postprocess::{Candidate, HeadLayout, Level, decode_level, keep_best, nms_per_class};
use sightline::preprocess::{ChannelOrder, Normalize, Resize, preprocess};
use sightline::{
    ClassifierOptions, ClassifierPatch, DetectorOptions, DetectorPatch, ErrorKind, ImageClassifier, Labels,
    ObjectDetector, cpu_device,
};

/// A target's body: returns for any input, panics only on a bug.
pub type Body = fn(&[u8]);

/// Every target, by name, with its body.
pub const TARGETS: [(&str, Body); 5] = [
    ("weights_classifier", weights_classifier),
    ("weights_detector", weights_detector),
    ("decode_image", decode_image),
    ("options", options),
    ("decode_nms", decode_nms),
];

/// Bytes as an EfficientNet-Lite0 weights file: loads or fails with `ModelLoad`.
pub fn weights_classifier(data: &[u8]) {
    if let Err(e) = ImageClassifier::from_bytes(data, &cpu_device(), ClassifierOptions::default()) {
        assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    }
}

/// Bytes as a NanoDet-g-416 weights file: loads or fails with `ModelLoad`.
pub fn weights_detector(data: &[u8]) {
    if let Err(e) = ObjectDetector::from_bytes(data, &cpu_device(), DetectorOptions::default()) {
        assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    }
}

/// The classifier's normalisation (src/task/classify.rs).
const CLASSIFIER_NORM: Normalize = Normalize { order: ChannelOrder::Rgb, mean: [127.0; 3], std: [128.0; 3] };
/// The detector's normalisation (src/task/detect.rs).
const DETECTOR_NORM: Normalize =
    Normalize { order: ChannelOrder::Bgr, mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395] };

/// Bytes as an image file (the CLI's path): decoded to RGB or refused with `InvalidImage`; a
/// decoded image is preprocessed as the classifier (224, crop or stretch) or the detector
/// (416, stretch) does it, and every input value must be a pixel value (bilinear interpolation
/// never leaves the range of its samples), normalised.
pub fn decode_image(data: &[u8]) {
    // A quarter megapixel: the size checks are the same code at any budget, and a fuzzer that
    // decodes 64-megapixel noise runs 20 inputs a second instead of thousands.
    let image = match decode_rgb_within(data, 1 << 18) {
        Ok(image) => image,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidImage, "{e}");
            return;
        }
    };
    assert_eq!(image.data.len(), image.width as usize * image.height as usize * 3);
    let view = image.view();
    // One of the three per input (by its length): preprocessing costs the same for any image,
    // and all three at once made every execution three times as slow.
    let configurations = [
        (224, Resize::CenterCrop, &CLASSIFIER_NORM),
        (224, Resize::Stretch, &CLASSIFIER_NORM),
        (416, Resize::Stretch, &DETECTOR_NORM),
    ];
    let (size, resize, norm) = configurations[data.len() % configurations.len()];
    let input = preprocess(&view, size, resize, norm);
    assert_eq!(input.data.len(), 3 * size * size);
    for (c, plane) in input.data.chunks_exact(size * size).enumerate() {
        let (lo, hi) = ((-0.01 - norm.mean[c]) / norm.std[c], (255.01 - norm.mean[c]) / norm.std[c]);
        if let Some(v) = plane.iter().find(|v| !(lo..=hi).contains(*v)) {
            panic!("{}x{} {resize:?} {size}: channel {c} holds {v}, outside [{lo}, {hi}]", image.width, image.height);
        }
    }
}

/// Bytes as JSON option patches for both tasks: applied to the defaults, a patch gives valid
/// options or fails with `InvalidOptions`.
pub fn options(data: &[u8]) {
    if let Ok(patch) = serde_json::from_slice::<ClassifierPatch>(data) {
        match patch.apply(&ClassifierOptions::default()) {
            Ok(options) => assert!(options.validate().is_ok(), "{options:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidOptions, "{e}"),
        }
    }
    if let Ok(patch) = serde_json::from_slice::<DetectorPatch>(data) {
        let labels = Labels::coco();
        match patch.apply(&DetectorOptions::default(), &labels) {
            Ok(options) => assert!(options.validate(labels.len()).is_ok(), "{options:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidOptions, "{e}"),
        }
    }
}

/// NanoDet-g-416's head: 80 classes, 11 bins a side, a 416-pixel input.
const LAYOUT: HeadLayout = HeadLayout { classes: 80, bins: 11, input: 416.0 };

/// Bytes before the head values in a `decode_nms` input.
const NMS_HEADER: usize = 16;

/// Bytes as one pyramid level of NanoDet's packed head output through decode, the per-level cap
/// and NMS. Layout: byte 0 the grid (1–8 cells a side) and stride (8, 16, 32 or the input over the grid), bytes 1–4 the
/// score threshold and 5–8 the IoU threshold (f32, any bits), 9–10 the cap (`keep_best`'s `n`),
/// 11–12 `max_results` (u16), 13 where the capped tail starts, 14 a class to drop, 15 unused;
/// then f32 values (any bits) repeated to fill the level.
pub fn decode_nms(data: &[u8]) {
    let Some((header, body)) = data.split_first_chunk::<NMS_HEADER>() else { return };
    let f32_at = |i: usize| f32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let grid = 1 + usize::from(header[0] & 7);
    let stride = [8.0, 16.0, 32.0, LAYOUT.input / grid as f32][usize::from((header[0] >> 3) & 3)];
    let (score_threshold, iou_threshold) = (f32_at(1), f32_at(5));
    let cap = usize::from(u16::from_le_bytes([header[9], header[10]]));
    let max_results = usize::from(u16::from_le_bytes([header[11], header[12]]));
    let dropped = usize::from(header[14]);

    let width = LAYOUT.classes + 4 * LAYOUT.bins;
    let values: Vec<f32> = body.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let cells: Vec<f32> = if values.is_empty() {
        vec![0.0; grid * grid * width]
    } else {
        values.iter().copied().cycle().take(grid * grid * width).collect()
    };

    let mut candidates = Vec::new();
    decode_level(&cells, Level { grid, stride }, LAYOUT, score_threshold, |c| c != dropped, &mut candidates);
    for c in &candidates {
        assert!(c.class < LAYOUT.classes && c.class != dropped && c.score > score_threshold, "{c:?}");
        let corners = [c.bbox.x1, c.bbox.y1, c.bbox.x2, c.bbox.y2];
        // NaN logits make NaN boxes; every number must lie on the input.
        assert!(corners.iter().all(|v| !(*v < 0.0 || *v > LAYOUT.input)), "{c:?}");
    }

    // The cap applies to the candidates after `from` (the current level in the detector).
    let from = usize::from(header[13]) % (candidates.len() + 1);
    let before: Vec<_> = candidates.iter().map(bits).collect();
    keep_best(&mut candidates, from, cap);
    let after: Vec<_> = candidates.iter().map(bits).collect();
    let tail = before.len() - from;
    assert_eq!(after.len(), from + tail.min(cap));
    assert_eq!(after[..from], before[..from], "the head is untouched");
    if tail > cap {
        assert!(is_best_first(&candidates[from..]));
        assert!(is_part_of(&after[from..], &before[from..]));
    } else {
        assert_eq!(after, before, "at or under the cap nothing changes");
    }

    let kept = nms_per_class(candidates, iou_threshold, max_results);
    assert!(kept.len() <= max_results.min(after.len()));
    assert!(is_best_first(&kept));
    let kept: Vec<_> = kept.iter().map(bits).collect();
    assert!(is_part_of(&kept, &after));
}

/// A candidate as comparable bits (its box may hold NaN).
fn bits(c: &Candidate) -> (usize, u32, [u32; 4]) {
    let b = c.bbox;
    (c.class, c.score.to_bits(), [b.x1.to_bits(), b.y1.to_bits(), b.x2.to_bits(), b.y2.to_bits()])
}

/// Whether `part` is a sub-multiset of `whole`: both sorted, then one pass (thousands of
/// candidates per input made a quadratic `contains` the fuzzer's bottleneck).
fn is_part_of<T: Ord + Copy>(part: &[T], whole: &[T]) -> bool {
    let (mut part, mut whole) = (part.to_vec(), whole.to_vec());
    part.sort_unstable();
    whole.sort_unstable();
    let mut rest = whole.iter();
    part.iter().all(|p| rest.any(|w| w == p))
}

/// Whether `candidates` are in descending score order (in `f32::total_cmp`'s order).
fn is_best_first(candidates: &[Candidate]) -> bool {
    candidates.windows(2).all(|w| w[0].score.total_cmp(&w[1].score).is_ge())
}
