//! NanoDet's GFL box decoding and per-class non-maximum suppression, exactly as the reference
//! spec: all in plain Rust on read-back data (no synchronous GPU readback anywhere).

/// A box in pixels, corners `(x1, y1)` top-left and `(x2, y2)` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corners {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

impl Corners {
    /// Area (0 for an empty box).
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }
}

/// Intersection over union (area-based, no +1), 0 when the union is empty.
pub fn iou(a: &Corners, b: &Corners) -> f32 {
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = iw * ih;
    let union = a.area() + b.area() - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// One candidate or kept detection, in network-input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// 0-based class index.
    pub class: usize,
    /// Class score (sigmoid), 0–1.
    pub score: f32,
    /// The box.
    pub bbox: Corners,
}

/// Layout of one pyramid level's outputs.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Cells per side (`input / stride`).
    pub grid: usize,
    /// Stride in input pixels.
    pub stride: f32,
}

/// What the head outputs per cell: `classes` scores, then 4 sides × `bins` logits, for an input
/// of `input`×`input` pixels.
#[derive(Debug, Clone, Copy)]
pub struct HeadLayout {
    /// Number of classes.
    pub classes: usize,
    /// Bins per box side (GFL `reg_max + 1`).
    pub bins: usize,
    /// Input side in pixels (boxes are clamped to `[0, input]`).
    pub input: f32,
}

/// Decodes one level. `cells` holds, per cell (row-major), `classes` sigmoid scores followed by
/// 4 sides (left, top, right, bottom) × `bins` logits. Every (cell, class) with score >
/// `threshold` that `keep_class` accepts becomes a candidate whose box is clamped to `[0, input]`.
pub fn decode_level(
    cells: &[f32],
    level: Level,
    layout: HeadLayout,
    threshold: f32,
    keep_class: impl Fn(usize) -> bool,
    out: &mut Vec<Candidate>,
) {
    let HeadLayout { classes, bins, input } = layout;
    let width = classes + 4 * bins;
    debug_assert_eq!(cells.len(), level.grid * level.grid * width);
    for (k, cell) in cells.chunks_exact(width).enumerate() {
        let (scores, reg) = cell.split_at(classes);
        if !scores.iter().any(|&s| s > threshold) {
            continue;
        }
        let (row, col) = ((k / level.grid) as f32, (k % level.grid) as f32);
        let (cx, cy) = ((col + 0.5) * level.stride, (row + 0.5) * level.stride);
        let mut dist = [0.0f32; 4];
        for (d, logits) in dist.iter_mut().zip(reg.chunks_exact(bins)) {
            *d = distribution_mean(logits) * level.stride;
        }
        let bbox = Corners {
            x1: (cx - dist[0]).clamp(0.0, input),
            y1: (cy - dist[1]).clamp(0.0, input),
            x2: (cx + dist[2]).clamp(0.0, input),
            y2: (cy + dist[3]).clamp(0.0, input),
        };
        for (class, &score) in scores.iter().enumerate() {
            if score > threshold && keep_class(class) {
                out.push(Candidate { class, score, bbox });
            }
        }
    }
}

/// `Σ_j softmax(logits)_j · j`: the expected bin of a GFL side distribution.
fn distribution_mean(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    let mut weighted = 0.0f32;
    for (j, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * j as f32;
    }
    weighted / sum
}

/// Keeps only the `n` best-scoring candidates of `candidates[from..]` (NanoDet's `nms_pre`,
/// applied per pyramid level), in descending score order; ties keep their original order, so
/// the result is the same as without the cap whenever `n` or fewer were there.
pub fn keep_best(candidates: &mut Vec<Candidate>, from: usize, n: usize) {
    let tail = &mut candidates[from..];
    if tail.len() <= n {
        return;
    }
    if n == 0 {
        // Found by fuzzing (decode_nms): `n - 1` below would underflow.
        candidates.truncate(from);
        return;
    }
    // Rank by (score descending, original position): a total order, so the cut is deterministic.
    let mut ranked: Vec<(usize, Candidate)> = tail.iter().copied().enumerate().collect();
    let order = |a: &(usize, Candidate), b: &(usize, Candidate)| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0));
    ranked.select_nth_unstable_by(n - 1, order);
    ranked.truncate(n);
    ranked.sort_unstable_by(order);
    candidates.truncate(from);
    candidates.extend(ranked.into_iter().map(|(_, c)| c));
}

/// Greedy NMS within each class (a box is dropped when its IoU with a kept, higher-scored box of
/// the same class exceeds `iou_threshold`), then all classes merged by descending score and cut
/// to `max_results`. Ties keep the earlier candidate.
pub fn nms_per_class(mut candidates: Vec<Candidate>, iou_threshold: f32, max_results: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    // The kept boxes of each class, so that a candidate is compared with its own class only
    // (all classes in one list made a frame of many kept boxes cost O(candidates × kept)).
    let classes = candidates.iter().map(|c| c.class + 1).max().unwrap_or(0);
    let mut kept_boxes: Vec<Vec<Corners>> = vec![Vec::new(); classes];
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if kept.len() >= max_results {
            break;
        }
        let same_class = &mut kept_boxes[c.class];
        if !same_class.iter().any(|k| iou(k, &c.bbox) > iou_threshold) {
            same_class.push(c.bbox);
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> Corners {
        Corners { x1, y1, x2, y2 }
    }

    fn cand(class: usize, score: f32, bbox: Corners) -> Candidate {
        Candidate { class, score, bbox }
    }

    #[test]
    fn iou_table() {
        let a = b(0.0, 0.0, 10.0, 10.0);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &b(10.0, 0.0, 20.0, 10.0)), 0.0); // touching edges
        assert_eq!(iou(&a, &b(20.0, 20.0, 30.0, 30.0)), 0.0);
        assert!((iou(&a, &b(5.0, 0.0, 15.0, 10.0)) - 50.0 / 150.0).abs() < 1e-6);
        assert!((iou(&a, &b(0.0, 0.0, 5.0, 5.0)) - 0.25).abs() < 1e-6); // contained
        assert_eq!(iou(&b(1.0, 1.0, 1.0, 1.0), &b(1.0, 1.0, 1.0, 1.0)), 0.0); // empty union
    }

    #[test]
    fn nms_suppresses_within_a_class_only() {
        let a = b(0.0, 0.0, 10.0, 10.0);
        let a2 = b(1.0, 0.0, 11.0, 10.0); // IoU with a = 90/110 ≈ 0.82
        let far = b(50.0, 50.0, 60.0, 60.0);
        let kept =
            nms_per_class(vec![cand(0, 0.5, a2), cand(0, 0.9, a), cand(1, 0.8, a2), cand(0, 0.4, far)], 0.6, 100);
        assert_eq!(kept, vec![cand(0, 0.9, a), cand(1, 0.8, a2), cand(0, 0.4, far)]);
    }

    #[test]
    fn nms_threshold_is_strict_and_max_results_cuts() {
        let a = b(0.0, 0.0, 10.0, 10.0);
        let half = b(5.0, 0.0, 15.0, 10.0); // IoU = 1/3
        assert_eq!(nms_per_class(vec![cand(0, 0.9, a), cand(0, 0.8, half)], 1.0 / 3.0, 100).len(), 2);
        assert_eq!(nms_per_class(vec![cand(0, 0.9, a), cand(0, 0.8, half)], 0.3, 100).len(), 1);
        let many: Vec<_> = (0..10).map(|i| cand(i, 0.1 * i as f32, a)).collect();
        let kept = nms_per_class(many, 0.6, 3);
        assert_eq!(kept.iter().map(|c| c.class).collect::<Vec<_>>(), vec![9, 8, 7]);
    }

    #[test]
    fn keep_best_cuts_each_tail_to_the_best_and_keeps_tie_order() {
        let a = b(0.0, 0.0, 1.0, 1.0);
        let mut list = vec![cand(0, 0.99, a)];
        list.extend([0.1, 0.5, 0.3, 0.5, 0.9].into_iter().enumerate().map(|(i, s)| cand(i, s, a)));
        let untouched = list.clone();
        keep_best(&mut list, 1, 5);
        assert_eq!(list, untouched, "at or under the cap nothing changes");
        keep_best(&mut list, 1, 3);
        let kept: Vec<(usize, f32)> = list.iter().map(|c| (c.class, c.score)).collect();
        assert_eq!(kept, vec![(0, 0.99), (4, 0.9), (1, 0.5), (3, 0.5)], "the head stays; ties in their order");
        // A cap of 0 keeps none of the tail (it underflowed before; found by fuzzing).
        keep_best(&mut list, 1, 0);
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn decode_centres_distances_and_clamps() {
        // One 2×2 level, stride 8, 1 class, 2 bins: bin logits [0, 0] → mean 0.5 → 4 px.
        let level = Level { grid: 2, stride: 8.0 };
        let layout = HeadLayout { classes: 1, bins: 2, input: 16.0 };
        let width = 1 + 4 * 2;
        let mut cells = vec![0.0f32; 4 * width];
        for (k, score) in [0.9, 0.01, 0.01, 0.7].into_iter().enumerate() {
            cells[k * width] = score;
        }
        // Cell 3 (row 1, col 1, centre 12,12): right side bins [-100, 100] → bin 1 → 8 px.
        cells[3 * width + 1 + 2 * 2] = -100.0;
        cells[3 * width + 1 + 2 * 2 + 1] = 100.0;
        let mut out = Vec::new();
        decode_level(&cells, level, layout, 0.05, |_| true, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].bbox, b(0.0, 0.0, 8.0, 8.0));
        assert_eq!(out[1].bbox, b(8.0, 8.0, 16.0, 16.0)); // 12 + 8 = 20 clamped to 16
        let mut none = Vec::new();
        decode_level(&cells, level, layout, 0.05, |_| false, &mut none);
        assert!(none.is_empty());
    }
}
