//! Network output → results: pure functions over `&[f32]`, shared by every front end.

mod classify;
mod detect;

pub use classify::{softmax, top_k};
pub use detect::{Candidate, Corners, HeadLayout, Level, decode_level, iou, keep_best, nms_per_class};
