//! Many images in one run: the inputs (files, and folders searched recursively) are listed, then
//! read, decoded and run through the model on all cores, and reported in input order, with a
//! bounded number of images in memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sightline::decode::{DecodedImage, decode_rgb};

/// One input: a path, or a folder that could not be listed (reported like an unreadable file).
pub(crate) struct Input {
    pub(crate) path: PathBuf,
    listing_error: Option<String>,
}

/// Whether a file found in a folder is one to use (by its extension; files named on the
/// command line are used whatever their name).
fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The images named by `args`: files as given, folders searched recursively for PNG and JPEG
/// files in name order. Symbolic links to folders are not followed (no cycles).
pub(crate) fn list(args: &[PathBuf]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for arg in args {
        if arg.is_dir() {
            walk(arg, &mut inputs);
        } else {
            inputs.push(Input { path: arg.clone(), listing_error: None });
        }
    }
    inputs
}

fn walk(dir: &Path, inputs: &mut Vec<Input>) {
    let entries = match std::fs::read_dir(dir).and_then(|d| d.collect::<std::io::Result<Vec<_>>>()) {
        Ok(entries) => entries,
        Err(e) => {
            inputs.push(Input { path: dir.to_path_buf(), listing_error: Some(format!("cannot list the folder: {e}")) });
            return;
        }
    };
    let mut entries: Vec<_> = entries.into_iter().map(|e| (e.path(), e.file_type())).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        match kind {
            Ok(kind) if kind.is_dir() => walk(&path, inputs),
            Ok(_) | Err(_) if is_image_name(&path) => inputs.push(Input { path, listing_error: None }),
            _ => {}
        }
    }
}

/// Reads and decodes one image file, naming it in any error.
pub(crate) fn decode_file(path: &Path) -> Result<DecodedImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_rgb(&bytes).with_context(|| format!("cannot use {}", path.display()))
}

/// How a batch went.
pub(crate) struct Summary {
    pub(crate) images: usize,
    pub(crate) failed: usize,
}

/// Runs `work` on every input's decoded image and calls `emit` with the outcomes in input order
/// on the caller's thread. Inputs go in chunks of 8 per thread of rayon's pool, each image read,
/// decoded and run through the model by one task; the kernels' own parallel loops nest in the
/// same pool, so the cores stay busy without any thread blocking. Memory holds one chunk's
/// outcomes and the images being worked on. `emit` returns whether the image failed (it reports
/// the failure itself); an `Err` from it stops the batch (e.g. stdout was closed). A progress
/// bar runs on stderr when stderr is a terminal; `emit` prints through it.
pub(crate) fn run<T: Send>(
    inputs: &[Input],
    work: impl Fn(&Path, DecodedImage) -> Result<T> + Sync,
    mut emit: impl FnMut(&Path, Result<T>, &ProgressBar) -> Result<bool>,
) -> Result<Summary> {
    if inputs.is_empty() {
        bail!("no images: the folders hold no *.png, *.jpg or *.jpeg files");
    }
    let window = 8 * rayon::current_num_threads();
    let bar = ProgressBar::new(inputs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, {eta} left")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let start = Instant::now();
    let mut failed = 0;
    // In chunks, each spread over rayon's pool (whose threads also run the kernels' own parallel
    // loops, so nothing blocks), then reported in order.
    for chunk in inputs.chunks(window) {
        let outcomes: Vec<Result<T>> = chunk
            .par_iter()
            .map(|input| match &input.listing_error {
                Some(e) => Err(anyhow!("{}: {e}", input.path.display())),
                None => decode_file(&input.path).and_then(|image| work(&input.path, image)),
            })
            .collect();
        for (input, outcome) in chunk.iter().zip(outcomes) {
            failed += usize::from(emit(&input.path, outcome, &bar)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "{} images in {seconds:.1} s ({:.1} images/s), {failed} failed",
        inputs.len(),
        inputs.len() as f64 / seconds.max(1e-9)
    );
    Ok(Summary { images: inputs.len(), failed })
}
