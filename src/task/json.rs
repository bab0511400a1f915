//! The CLI's documented `--json` schema (also the reference checker `compare.py`'s), as a
//! presentation of the task results:
//! `{"top":[{"index","label","probability"}]}` and
//! `{"detections":[{"x","y","width","height","score","class","label"}]}` (source pixels).

use serde_json::{Value, json};

use super::classify::{Classification, Explanation};
use super::detect::Detections;

impl Classification {
    /// This result in the CLI's `--json` schema.
    pub fn to_json(&self) -> Value {
        let top: Vec<Value> = self
            .classes
            .iter()
            .map(|c| json!({ "index": c.index, "label": c.label, "probability": c.score }))
            .collect();
        json!({ "top": top })
    }
}

impl Detections {
    /// This result in the CLI's `--json` schema.
    pub fn to_json(&self) -> Value {
        let detections: Vec<Value> = self
            .detections
            .iter()
            .map(|d| {
                let b = &d.bbox;
                json!({
                    "x": b.x, "y": b.y, "width": b.width, "height": b.height,
                    "score": d.score, "class": d.index, "label": d.label,
                })
            })
            .collect();
        json!({ "detections": detections })
    }
}

impl Explanation {
    /// This explanation in the CLI's `--json` schema:
    /// `{"index","label","box":{"x","y","width","height"},"grid":[[row of floats in 0..1], …]}`,
    /// rows top to bottom.
    pub fn to_json(&self) -> Value {
        let r = &self.region;
        let grid: Vec<&[f32]> = self.grid.chunks(self.cols.max(1)).collect();
        json!({
            "index": self.index,
            "label": self.label,
            "box": { "x": r.x, "y": r.y, "width": r.width, "height": r.height },
            "grid": grid,
        })
    }
}
