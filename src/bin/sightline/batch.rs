//! Many images in one run: the inputs (files, and folders searched recursively) are listed, then
//! decoded on background threads while the model runs on the caller's thread, in input order,
//! with a bounded number of decoded images in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
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

/// The next input to decode; `None` once the batch is over (its sender dropped).
fn next_job(jobs: &Mutex<mpsc::Receiver<usize>>) -> Option<usize> {
    jobs.lock().ok()?.recv().ok()
}

/// How a batch went.
pub(crate) struct Summary {
    pub(crate) images: usize,
    pub(crate) failed: usize,
}

/// Calls `each` with every input in order and its decoded image (or why it could not be read),
/// while up to `decoders` threads decode the next ones. `each` returns whether the image failed
/// (it reports the failure itself); an `Err` from it stops the batch (e.g. stdout was closed).
/// A progress bar runs on stderr when stderr is a terminal; `each` gets it to print through.
pub(crate) fn run(
    inputs: &[Input],
    mut each: impl FnMut(&Path, Result<DecodedImage>, &ProgressBar) -> Result<bool>,
) -> Result<Summary> {
    let decoders = thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1);
    // Decoded images waiting for the model: enough to keep every decoder busy, few enough that
    // a folder of 24-megapixel photos does not fill the memory.
    let window = 2 * decoders;
    let bar = ProgressBar::new(inputs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, {eta} left")
            .map_err(|e| anyhow!("progress bar template: {e}"))?,
    );
    let start = Instant::now();
    let mut failed = 0;
    let (job_tx, job_rx) = mpsc::channel::<usize>();
    let job_rx = &Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<DecodedImage>)>();
    thread::scope(|scope| -> Result<()> {
        // Owned by this closure, so that leaving it (also early) ends the decoder threads.
        let (job_tx, done_tx) = (job_tx, done_tx);
        for _ in 0..decoders {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                // The lock is held only to take the next index (the guard dies in `next_job`).
                while let Some(i) = next_job(job_rx) {
                    let input = &inputs[i];
                    let decoded = match &input.listing_error {
                        Some(e) => Err(anyhow!("{}: {e}", input.path.display())),
                        None => decode_file(&input.path),
                    };
                    if done_tx.send((i, decoded)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut submitted = 0;
        let mut ready = BTreeMap::new();
        for next in 0..inputs.len() {
            while submitted < inputs.len() && submitted < next + window {
                job_tx.send(submitted).context("the decoder threads stopped")?;
                submitted += 1;
            }
            let decoded = loop {
                if let Some(decoded) = ready.remove(&next) {
                    break decoded;
                }
                let (i, decoded) = done_rx.recv().context("the decoder threads stopped")?;
                ready.insert(i, decoded);
            };
            failed += usize::from(each(&inputs[next].path, decoded, &bar)?);
            bar.inc(1);
        }
        // Dropping `job_tx` here (also on an early return) ends the decoder threads.
        Ok(())
    })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "{} images in {seconds:.1} s ({:.1} images/s), {failed} failed",
        inputs.len(),
        inputs.len() as f64 / seconds.max(1e-9)
    );
    Ok(Summary { images: inputs.len(), failed })
}
