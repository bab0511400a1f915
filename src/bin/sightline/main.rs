//! `sightline`: classify images and detect objects from the command line, on the CPU or a wgpu
//! GPU — the same Rust code as the browser package.

mod draw;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use sightline::preprocess::Resize;
use sightline::{
    BackendKind, ClassifierOptions, DetectorOptions, Image, ImageClassifier, ObjectDetector, cpu_device, wgpu_device,
};

/// In-browser-grade vision models, natively: EfficientNet-Lite0 and NanoDet-g-416 in burn.
#[derive(Parser)]
#[command(name = "sightline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify an image (PNG or JPEG) into the 1000 ImageNet classes (EfficientNet-Lite0).
    Classify {
        /// How many classes to print, best first.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// How the image is fitted to the 224×224 input.
        #[arg(long, value_enum, default_value_t = ResizeArg::Crop)]
        resize: ResizeArg,
        #[command(flatten)]
        common: Common,
    },
    /// Detect the 80 COCO object classes in an image (NanoDet-g-416).
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

#[derive(Args)]
struct Common {
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    backend: BackendArg,
    /// Print exactly one JSON object (the schema of the reference compare.py).
    #[arg(long)]
    json: bool,
    /// Weights file (safetensors) [default: the model's file under models/].
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Run N more times after the first and print warm latency (median and 95th percentile).
    #[arg(long, value_name = "N", default_value_t = 0)]
    repeat: usize,
    /// The image file.
    image: PathBuf,
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

#[derive(Serialize)]
struct JsonClass {
    index: usize,
    label: &'static str,
    probability: f32,
}

#[derive(Serialize)]
struct JsonClassification {
    top: Vec<JsonClass>,
}

#[derive(Serialize)]
struct JsonDetection {
    x: f32,
    y: f32,
    width: f32,
    height: f32,
    score: f32,
    class: usize,
    label: &'static str,
}

#[derive(Serialize)]
struct JsonDetections {
    detections: Vec<JsonDetection>,
}

impl Common {
    fn device(&self) -> Result<(burn::tensor::Device, BackendKind)> {
        Ok(match self.backend {
            BackendArg::Cpu => (cpu_device(), BackendKind::Cpu),
            BackendArg::Wgpu => (wgpu_device()?, BackendKind::Gpu),
        })
    }

    fn weights(&self, default: &str) -> Result<(Vec<u8>, PathBuf)> {
        let path =
            self.weights.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(default));
        let bytes = std::fs::read(&path).with_context(|| {
            format!("cannot read weights {} (run `python3 scripts/fetch_weights.py`)", path.display())
        })?;
        Ok((bytes, path))
    }

    /// Times `run` `self.repeat` more times; prints median and p95 to stderr.
    fn time_repeats<T>(&self, mut run: impl FnMut() -> Result<T>) -> Result<()> {
        if self.repeat == 0 {
            return Ok(());
        }
        let mut ms = Vec::with_capacity(self.repeat);
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

    fn decode(&self) -> Result<image::RgbImage> {
        let path = &self.image;
        Ok(image::ImageReader::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .with_guessed_format()
            .with_context(|| format!("cannot read {}", path.display()))?
            .decode()
            .with_context(|| format!("cannot decode {}", path.display()))?
            .into_rgb8())
    }
}

fn classify(top_k: usize, resize: ResizeArg, common: &Common) -> Result<()> {
    let (device, kind) = common.device()?;
    let (bytes, path) = common.weights("efficientnet-lite0.safetensors")?;
    let options = ClassifierOptions::default().with_top_k(top_k).with_resize(match resize {
        ResizeArg::Crop => Resize::CenterCrop,
        ResizeArg::Stretch => Resize::Stretch,
    });
    let classifier = ImageClassifier::from_bytes(&bytes, &device, options)
        .with_context(|| format!("cannot load {}", path.display()))?;
    let img = common.decode()?;
    let (w, h) = img.dimensions();
    let start = Instant::now();
    let image = Image::from_rgb(img.as_raw(), w, h)?;
    let result = classifier.classify(&image)?;
    let elapsed = start.elapsed();
    if common.json {
        let top =
            result.classes.iter().map(|c| JsonClass { index: c.index, label: c.label, probability: c.score }).collect();
        println!("{}", serde_json::to_string(&JsonClassification { top })?);
    } else {
        println!(
            "{} ({w}x{h}), {} in {:.0} ms (first run, includes warm-up):",
            common.image.display(),
            kind.name(),
            elapsed.as_secs_f64() * 1e3
        );
        for c in &result.classes {
            println!("  {:>6.2}%  {:>4}  {}", c.score * 100.0, c.index, c.label);
        }
    }
    common.time_repeats(|| Ok(classifier.classify(&image)?))
}

fn detect(options: DetectorOptions, draw_to: Option<&Path>, common: &Common) -> Result<()> {
    let (device, kind) = common.device()?;
    let (bytes, path) = common.weights("nanodet-g-416.safetensors")?;
    let detector = ObjectDetector::from_bytes(&bytes, &device, options)
        .with_context(|| format!("cannot load {}", path.display()))?;
    let mut img = common.decode()?;
    let (w, h) = img.dimensions();
    let start = Instant::now();
    let image = Image::from_rgb(img.as_raw(), w, h)?;
    let detections = detector.detect(&image)?;
    let elapsed = start.elapsed();
    if common.json {
        let detections = detections
            .iter()
            .map(|d| JsonDetection {
                x: d.bbox.x,
                y: d.bbox.y,
                width: d.bbox.width,
                height: d.bbox.height,
                score: d.score,
                class: d.index,
                label: d.label,
            })
            .collect();
        println!("{}", serde_json::to_string(&JsonDetections { detections })?);
    } else {
        println!(
            "{} ({w}x{h}), {} in {:.0} ms (first run, includes warm-up): {} objects",
            common.image.display(),
            kind.name(),
            elapsed.as_secs_f64() * 1e3,
            detections.len()
        );
        for d in &detections {
            println!(
                "  {:>5.1}%  {:<14} x {:>6.1}  y {:>6.1}  w {:>6.1}  h {:>6.1}",
                d.score * 100.0,
                d.label,
                d.bbox.x,
                d.bbox.y,
                d.bbox.width,
                d.bbox.height
            );
        }
    }
    common.time_repeats(|| Ok(detector.detect(&image)?))?;
    if let Some(out) = draw_to {
        draw::draw(&mut img, &detections);
        img.save(out).with_context(|| format!("cannot write {}", out.display()))?;
        if !common.json {
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Classify { top_k, resize, common } => classify(top_k, resize, &common),
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
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightline: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
