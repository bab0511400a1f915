//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`: the seeds and what the fuzzer
//! found) through the fuzz targets' own bodies, on stable, so `cargo test` keeps every input
//! that ever crashed or reached new code passing. Fuzzing itself needs nightly: scripts/fuzz.sh.

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod bodies;

/// Runs every file of `fuzz/corpus/{target}` through the target's body, naming the files that panic.
fn replay(target: &str) {
    let (_, body) = bodies::TARGETS.into_iter().find(|(name, _)| *name == target).expect("a fuzz target");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{} holds {} inputs: the corpus is missing", dir.display(), files.len());
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            std::panic::catch_unwind(|| body(&data)).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} inputs panic: {failed:#?}", failed.len(), files.len());
}

#[test]
fn weights_classifier_corpus() {
    replay("weights_classifier");
}

#[test]
fn weights_detector_corpus() {
    replay("weights_detector");
}

#[test]
fn decode_image_corpus() {
    replay("decode_image");
}

#[test]
fn options_corpus() {
    replay("options");
}

#[test]
fn decode_nms_corpus() {
    replay("decode_nms");
}

#[test]
fn every_target_has_a_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut targets: Vec<&str> = bodies::TARGETS.iter().map(|(name, _)| *name).collect();
    targets.sort();
    assert_eq!(found, targets);
}
