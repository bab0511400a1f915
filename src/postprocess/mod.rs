//! Network output → results: pure functions over `&[f32]`, shared by every front end.

mod classify;

pub use classify::{softmax, top_k};
