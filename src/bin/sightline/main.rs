//! `sightline`: classify images and detect objects from the command line, on the CPU or a wgpu
//! GPU — the same Rust code as the browser package.

mod batch;
mod draw;
mod train;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sightline::decode::DecodedImage;
use sightline::preprocess::Resize;
use sightline::{
    BackendKind, Classification, ClassifierOptions, DEFAULT_PRECISION, Detections, DetectorOptions, Explanation, Head,
    Image, ImageClassifier, ObjectDetector, Precision, TrainOptions, cpu_device, wgpu_device,
};

/// Exit statuses: 0 success (also when the reader of stdout closed it early, e.g. `| head`),
/// 1 a runtime failure (an unreadable image or weights file, an inference error), 2 a usage error
/// (an unknown flag or an option out of range).
const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// The most `--repeat` runs (a timing aid, not a batch mode).
const MAX_REPEAT: usize = 100_000;

/// Marks an error as the user's invocation being wrong (exit status 2).
#[derive(Debug)]
struct Usage(String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// An option error as a usage error.
pub(crate) fn usage(e: impl fmt::Display) -> anyhow::Error {
    Usage(format!("invalid options: {e}")).into()
}

/// Prints a line on stdout; a closed stdout surfaces as an `io::ErrorKind::BrokenPipe` error
/// (which `main` turns into a quiet exit) instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(io::stdout().lock(), $($arg)*).context("cannot write to stdout")?
    };
}

/// In-browser-grade vision models, natively: EfficientNet-Lite0 and NanoDet-g-416 in burn.
#[derive(Parser)]
#[command(name = "sightline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify images (PNG or JPEG) into the 1000 ImageNet classes (EfficientNet-Lite0).
    Classify {
        /// How many classes to print, best first (1–1000).
        #[arg(long, visible_alias = "max-results", default_value_t = ClassifierOptions::default().max_results)]
        top_k: usize,
        /// How the image is fitted to the 224×224 input.
        #[arg(long, value_enum, default_value_t = ResizeArg::Crop)]
        resize: ResizeArg,
        #[command(flatten)]
        explain: ExplainArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Train a classifier head on your own classes: DIR holds one folder of PNG/JPEG images per
    /// label (DIR/<label>/*.png|jpg). Writes a head file for `classify --head`.
    Train {
        /// Where to write the head (safetensors).
        #[arg(long, value_name = "HEAD")]
        out: PathBuf,
        /// Passes over the examples.
        #[arg(long, default_value_t = TrainOptions::default().epochs)]
        epochs: usize,
        /// Adam's learning rate.
        #[arg(long, default_value_t = TrainOptions::default().learning_rate)]
        learning_rate: f64,
        /// Examples per optimiser step.
        #[arg(long, default_value_t = TrainOptions::default().batch_size)]
        batch_size: usize,
        /// Seed of the batch shuffling (the same seed and images give the same head).
        #[arg(long, default_value_t = TrainOptions::default().seed)]
        seed: u64,
        /// Also learn from mirrored and shifted crops of each training image.
        #[arg(long)]
        augment: bool,
        /// Hold this share of each label's images apart (0 ≤ F < 1) and report the accuracy on them.
        #[arg(long, value_name = "F", default_value_t = 0.0)]
        val_split: f64,
        #[command(flatten)]
        model: Model,
        /// The folder of labelled images.
        dir: PathBuf,
    },
    /// Detect the 80 COCO object classes in images (NanoDet-g-416).
    Detect {
        /// Keep detections scoring above this (0–1).
        #[arg(long, default_value_t = DetectorOptions::default().score_threshold)]
        score_threshold: f32,
        /// Per-class NMS IoU threshold (0–1).
        #[arg(long, default_value_t = DetectorOptions::default().iou_threshold)]
        iou_threshold: f32,
        /// At most this many detections.
        #[arg(long, default_value_t = DetectorOptions::default().max_results)]
        max_results: usize,
        /// Write the image with labelled boxes to this PNG/JPEG file.
        #[arg(long, value_name = "OUT")]
        draw: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

/// Where the network runs and which weights it loads.
#[derive(Args)]
pub(crate) struct Model {
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    backend: BackendArg,
    /// Weights file (safetensors) [default: the model's file under models/ in --precision].
    #[arg(long, conflicts_with = "precision")]
    weights: Option<PathBuf>,
    /// Which stored variant of the weights to load (the network computes in f32 either way).
    #[arg(long, value_enum, default_value_t = PrecisionArg::from(DEFAULT_PRECISION))]
    precision: PrecisionArg,
}

#[derive(Args)]
struct Common {
    #[command(flatten)]
    model: Model,
    /// Print exactly one JSON object (the schema of the reference compare.py); one image only.
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
    /// Print one JSON object per image and line: the --json object plus "path", or {"path",
    /// "error"} for an image that could not be used (the run goes on, and exits 1 at the end).
    #[arg(long)]
    jsonl: bool,
    /// Run N more times after the first and print warm latency (median and 95th percentile);
    /// one image only.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=MAX_REPEAT as i64))]
    repeat: u32,
    /// Image files (PNG or JPEG) and folders, searched recursively for *.png, *.jpg and *.jpeg.
    /// Several images are read and run on all cores, a few at a time, and reported in the order given.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Args)]
struct ExplainArgs {
    /// Classify into the classes of this head (made by `sightline train`) instead of ImageNet's.
    #[arg(long, value_name = "HEAD")]
    head: Option<PathBuf>,
    /// Explain the top class: a class-activation map (Grad-CAM) over the image (with --json: an
    /// "explanation" object).
    #[arg(long)]
    explain: bool,
    /// Write the image with the top class's heat map over it to this PNG/JPEG file.
    #[arg(long, value_name = "OUT")]
    explain_png: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    /// 8-bit weights, a scale per output channel (smallest; see README "Precision").
    Int8,
    /// 16-bit float weights (agrees with f32 on every reference input).
    F16,
    /// 32-bit float weights, the source's values.
    F32,
}

impl PrecisionArg {
    fn precision(self) -> Precision {
        match self {
            PrecisionArg::Int8 => Precision::Int8,
            PrecisionArg::F16 => Precision::F16,
            PrecisionArg::F32 => Precision::F32,
        }
    }
}

impl From<Precision> for PrecisionArg {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Int8 => PrecisionArg::Int8,
            Precision::F16 => PrecisionArg::F16,
            Precision::F32 => PrecisionArg::F32,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// burn flex on the CPU.
    Cpu,
    /// burn-wgpu (Vulkan, Metal or DX12).
    Wgpu,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResizeArg {
    /// Shorter side to 256, centre 224×224 crop (keeps the aspect ratio).
    Crop,
    /// Whole image stretched to 224×224.
    Stretch,
}

impl Model {
    fn device(&self) -> Result<(burn::tensor::Device, BackendKind)> {
        Ok(match self.backend {
            BackendArg::Cpu => (cpu_device(), BackendKind::Cpu),
            BackendArg::Wgpu => (wgpu_device()?, BackendKind::Gpu),
        })
    }

    /// The weights file: `--weights`, or the model's file under the checkout's `models/`.
    fn weights_path(&self, model: &str) -> PathBuf {
        self.weights.clone().unwrap_or_else(|| {
            let file = format!("{model}.{}.safetensors", self.precision.precision().name());
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(file)
        })
    }

    /// Reads the weights of `model` and builds it with `load`, naming the file in any error.
    fn load<T>(&self, model: &str, load: impl FnOnce(&[u8]) -> sightline::Result<T>) -> Result<T> {
        let path = self.weights_path(model);
        let bytes = std::fs::read(&path).with_context(|| {
            format!("cannot read weights {} (run `python3 scripts/fetch_weights.py`)", path.display())
        })?;
        load(&bytes).with_context(|| format!("cannot load weights {}", path.display()))
    }

    /// The classifier (EfficientNet-Lite0) on the chosen device.
    fn classifier(&self, options: ClassifierOptions) -> Result<(ImageClassifier, BackendKind)> {
        let (device, kind) = self.device()?;
        Ok((self.load("efficientnet-lite0", |w| ImageClassifier::from_bytes(w, &device, options))?, kind))
    }
}

impl Common {
    /// Times `run` `self.repeat` more times; prints median and p95 to stderr.
    fn time_repeats<T>(&self, mut run: impl FnMut() -> Result<T>) -> Result<()> {
        if self.repeat == 0 {
            return Ok(());
        }
        let mut ms = Vec::with_capacity(self.repeat as usize);
        for _ in 0..self.repeat {
            let start = Instant::now();
            run()?;
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((q * ms.len() as f64) as usize).min(ms.len() - 1)];
        eprintln!("warm latency over {} runs: p50 {:.1} ms, p95 {:.1} ms", ms.len(), at(0.5), at(0.95));
        Ok(())
    }

    /// The one image of a single-image run.
    fn image(&self) -> &Path {
        &self.images[0]
    }

    /// Whether this is a batch: several inputs, a folder, or --jsonl. A single image keeps the
    /// single-image behaviour (an error stops the run; --json, --repeat and the PNG outputs).
    fn is_batch(&self) -> bool {
        self.jsonl || self.images.len() > 1 || self.images[0].is_dir()
    }

    /// Refuses the options that make sense for one image only (`outputs`: the set file flags).
    fn check_batch(&self, outputs: &[(&str, bool)]) -> Result<()> {
        let one_only = [("--json (use --jsonl)", self.json), ("--repeat", self.repeat > 0)];
        if let Some((flag, _)) = one_only.iter().chain(outputs).find(|(_, set)| *set) {
            return Err(Usage(format!("{flag} takes a single image, not a batch")).into());
        }
        Ok(())
    }

    /// Reads and decodes the image, refusing what is over the size limits before decoding it.
    fn decode(&self) -> Result<DecodedImage> {
        batch::decode_file(self.image())
    }
}

/// One line of --jsonl: `"path"` first, then the result's own fields.
fn jsonl_line(path: &Path, result: serde_json::Value) -> serde_json::Value {
    let mut line = serde_json::Map::new();
    line.insert("path".into(), path.display().to_string().into());
    if let serde_json::Value::Object(fields) = result {
        line.extend(fields);
    }
    serde_json::Value::Object(line)
}

/// Reports an image of a batch that could not be used (a --jsonl line or a message on stderr).
fn report_failure(common: &Common, path: &Path, e: &anyhow::Error) -> Result<bool> {
    if common.jsonl {
        out!("{}", serde_json::json!({ "path": path.display().to_string(), "error": format!("{e:#}") }));
    } else {
        eprintln!("sightline: {e:#}");
    }
    Ok(true)
}

/// Ends a batch: an error (exit status 1) when an image could not be used.
fn batch_outcome(summary: batch::Summary) -> Result<()> {
    match summary.failed {
        0 => Ok(()),
        n => Err(anyhow!("{n} of {} images could not be used", summary.images)),
    }
}

/// Runs `task` on `image` once, then `--repeat` more times for the timing. Returns the first
/// result and how long it took.
fn run_task<T>(
    common: &Common,
    image: &DecodedImage,
    task: impl Fn(&Image<'_>) -> sightline::Result<T>,
) -> Result<(T, Duration)> {
    let view = image.view();
    let start = Instant::now();
    let result = task(&view)?;
    let elapsed = start.elapsed();
    common.time_repeats(|| Ok(task(&view)?))?;
    Ok((result, elapsed))
}

/// The first line of the human-readable output about one image.
fn header(path: &Path, (width, height): (u32, u32), kind: BackendKind, elapsed: Duration, first: bool) -> String {
    format!(
        "{} ({width}x{height}), {} in {:.0} ms{}",
        path.display(),
        kind.name(),
        elapsed.as_secs_f64() * 1e3,
        if first { " (first run, includes warm-up)" } else { "" }
    )
}

/// Times one call.
fn timed<T>(run: impl FnOnce() -> sightline::Result<T>) -> sightline::Result<(T, Duration)> {
    let start = Instant::now();
    let result = run()?;
    Ok((result, start.elapsed()))
}

/// One image's classification as the output format asks.
struct Classified<'a> {
    path: &'a Path,
    /// The image's width and height.
    size: (u32, u32),
    kind: BackendKind,
    elapsed: Duration,
    first: bool,
    result: &'a Classification,
    /// The explanation, when --explain asked for it.
    explanation: Option<&'a Explanation>,
}

impl Classified<'_> {
    fn print(&self, common: &Common) -> Result<()> {
        let json = || {
            let mut json = self.result.to_json();
            if let Some(e) = self.explanation {
                json["explanation"] = e.to_json();
            }
            json
        };
        if common.json {
            out!("{}", json());
        } else if common.jsonl {
            out!("{}", jsonl_line(self.path, json()));
        } else {
            out!("{}:", header(self.path, self.size, self.kind, self.elapsed, self.first));
            for c in &self.result.classes {
                out!("  {:>6.2}%  {:>4}  {}", c.score * 100.0, c.index, c.label);
            }
            if let Some(e) = self.explanation {
                out!("explanation of {:?} (where the map is ≥ 0.5, over {}x{} cells):", e.label, e.cols, e.rows);
                for row in e.grid.chunks(e.cols) {
                    let cells: String = row
                        .iter()
                        .map(|&v| {
                            if v >= 0.5 {
                                '#'
                            } else if v >= 0.25 {
                                '+'
                            } else {
                                '.'
                            }
                        })
                        .collect();
                    out!("  {cells}");
                }
            }
        }
        Ok(())
    }
}

fn classify(options: ClassifierOptions, explain: &ExplainArgs, common: &Common) -> Result<()> {
    options.validate().map_err(usage)?;
    if common.is_batch() {
        common.check_batch(&[("--explain-png", explain.explain_png.is_some())])?;
        let (classifier, kind) = classifier_with_head(options, explain, common)?;
        let inputs = batch::list(&common.images);
        let summary = batch::run(
            &inputs,
            |path, image| {
                let view = image.view();
                let ((result, explanation), elapsed) = timed(|| {
                    let result = classifier.classify(&view)?;
                    let explanation = if explain.explain { Some(classifier.explain(&view, None)?) } else { None };
                    Ok((result, explanation))
                })
                .with_context(|| format!("cannot classify {}", path.display()))?;
                Ok(((image.width, image.height), result, explanation, elapsed))
            },
            |path, outcome, bar| match outcome {
                Ok((size, result, explanation, elapsed)) => {
                    let explanation = explanation.as_ref();
                    let classified =
                        Classified { path, size, kind, elapsed, first: false, result: &result, explanation };
                    bar.suspend(|| classified.print(common))?;
                    Ok(false)
                }
                Err(e) => bar.suspend(|| report_failure(common, path, &e)),
            },
        )?;
        return batch_outcome(summary);
    }
    // The image first: a bad or oversized file costs no model load.
    let image = common.decode()?;
    let (classifier, kind) = classifier_with_head(options, explain, common)?;
    let (result, elapsed) = run_task(common, &image, |view| classifier.classify(view))?;
    let explanation = if explain.explain || explain.explain_png.is_some() {
        Some(classifier.explain(&image.view(), None)?)
    } else {
        None
    };
    Classified {
        path: common.image(),
        size: (image.width, image.height),
        kind,
        elapsed,
        first: true,
        result: &result,
        explanation: explanation.as_ref().filter(|_| explain.explain),
    }
    .print(common)?;
    if let (Some(path), Some(e)) = (&explain.explain_png, &explanation) {
        let mut img = image::RgbImage::from_raw(image.width, image.height, image.data)
            .context("the decoded image has an inconsistent size")?;
        draw::draw_heatmap(&mut img, e, 0.5);
        img.save(path).with_context(|| format!("cannot write {}", path.display()))?;
        if !common.json {
            out!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The classifier, with the --head file's classes when one is given.
fn classifier_with_head(
    options: ClassifierOptions,
    explain: &ExplainArgs,
    common: &Common,
) -> Result<(ImageClassifier, BackendKind)> {
    let head = match &explain.head {
        Some(path) => Some(read_head(path)?),
        None => None,
    };
    let (mut classifier, kind) = common.model.classifier(options)?;
    if let Some(head) = &head {
        classifier = classifier.with_head(head);
    }
    Ok((classifier, kind))
}

/// Reads a head file made by `sightline train` (on the CPU; `with_head` moves it).
fn read_head(path: &Path) -> Result<Head> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read head {}", path.display()))?;
    Head::from_bytes(&bytes, &cpu_device()).with_context(|| format!("cannot load head {}", path.display()))
}

/// One image's detections as the output format asks.
fn print_detections(
    common: &Common,
    path: &Path,
    size: (u32, u32),
    (kind, elapsed, first): (BackendKind, Duration, bool),
    result: &Detections,
) -> Result<()> {
    if common.json {
        out!("{}", result.to_json());
    } else if common.jsonl {
        out!("{}", jsonl_line(path, result.to_json()));
    } else {
        out!("{}: {} objects", header(path, size, kind, elapsed, first), result.detections.len());
        for d in &result.detections {
            let b = &d.bbox;
            out!(
                "  {:>5.1}%  {:<14} x {:>6.1}  y {:>6.1}  w {:>6.1}  h {:>6.1}",
                d.score * 100.0,
                d.label,
                b.x,
                b.y,
                b.width,
                b.height
            );
        }
    }
    Ok(())
}

fn detect(options: DetectorOptions, draw_to: Option<&Path>, common: &Common) -> Result<()> {
    options.validate(sightline::Labels::coco().len()).map_err(usage)?;
    if common.is_batch() {
        common.check_batch(&[("--draw", draw_to.is_some())])?;
        let (device, kind) = common.model.device()?;
        let detector = common.model.load("nanodet-g-416", |w| ObjectDetector::from_bytes(w, &device, options))?;
        let inputs = batch::list(&common.images);
        let summary = batch::run(
            &inputs,
            |path, image| {
                let (result, elapsed) = timed(|| detector.detect(&image.view()))
                    .with_context(|| format!("cannot detect in {}", path.display()))?;
                Ok(((image.width, image.height), result, elapsed))
            },
            |path, outcome, bar| match outcome {
                Ok((size, result, elapsed)) => {
                    bar.suspend(|| print_detections(common, path, size, (kind, elapsed, false), &result))?;
                    Ok(false)
                }
                Err(e) => bar.suspend(|| report_failure(common, path, &e)),
            },
        )?;
        return batch_outcome(summary);
    }
    let image = common.decode()?;
    let (device, kind) = common.model.device()?;
    let detector = common.model.load("nanodet-g-416", |w| ObjectDetector::from_bytes(w, &device, options))?;
    let (result, elapsed) = run_task(common, &image, |view| detector.detect(view))?;
    print_detections(common, common.image(), (image.width, image.height), (kind, elapsed, true), &result)?;
    if let Some(path) = draw_to {
        let mut img = image::RgbImage::from_raw(image.width, image.height, image.data)
            .context("the decoded image has an inconsistent size")?;
        draw::draw(&mut img, &result.detections);
        img.save(path).with_context(|| format!("cannot write {}", path.display()))?;
        if !common.json {
            out!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Classify { top_k, resize, explain, common } => {
            let resize = match resize {
                ResizeArg::Crop => Resize::CenterCrop,
                ResizeArg::Stretch => Resize::Stretch,
            };
            classify(ClassifierOptions::default().with_max_results(top_k).with_resize(resize), &explain, &common)
        }
        Command::Train { out, epochs, learning_rate, batch_size, seed, augment, val_split, model, dir } => {
            let options = TrainOptions { epochs, learning_rate, batch_size, seed, ..TrainOptions::default() };
            train::train(&train::Plan { out, options, augment, val_split, model, dir })
        }
        Command::Detect { score_threshold, iou_threshold, max_results, draw, common } => {
            let options = DetectorOptions::default()
                .with_score_threshold(score_threshold)
                .with_iou_threshold(iou_threshold)
                .with_max_results(max_results);
            detect(options, draw.as_deref(), &common)
        }
    }
}

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with status 2.
    let Err(e) = run(Cli::parse()) else { return ExitCode::SUCCESS };
    if e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)) {
        return ExitCode::SUCCESS;
    }
    eprintln!("sightline: error: {e:#}");
    ExitCode::from(if e.downcast_ref::<Usage>().is_some() { EXIT_USAGE } else { EXIT_RUNTIME })
}
