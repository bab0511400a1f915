//! `sightline`: classify images from the command line, on the CPU or a wgpu GPU.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use sightline::preprocess::Resize;
use sightline::{BackendKind, ClassifierOptions, Image, ImageClassifier, cpu_device, wgpu_device};

/// Image classification with EfficientNet-Lite0, natively (same code as the browser package).
#[derive(Parser)]
#[command(name = "sightline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify an image (PNG or JPEG) into the 1000 ImageNet classes.
    Classify {
        /// How many classes to print, best first.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// Compute backend.
        #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
        backend: BackendArg,
        /// How the image is fitted to the 224×224 input.
        #[arg(long, value_enum, default_value_t = ResizeArg::Crop)]
        resize: ResizeArg,
        /// Print exactly one JSON object: {"top":[{"index","label","probability"}...]}.
        #[arg(long)]
        json: bool,
        /// Weights file (safetensors) [default: models/efficientnet-lite0.safetensors].
        #[arg(long)]
        weights: Option<PathBuf>,
        /// The image file.
        image: PathBuf,
    },
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

fn default_weights(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name)
}

fn decode(path: &Path) -> Result<(Vec<u8>, u32, u32)> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode {}", path.display()))?
        .into_rgb8();
    let (w, h) = img.dimensions();
    Ok((img.into_raw(), w, h))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Classify {
            top_k,
            backend,
            resize,
            json,
            weights,
            image,
        } => {
            let (device, kind) = match backend {
                BackendArg::Cpu => (cpu_device(), BackendKind::Cpu),
                BackendArg::Wgpu => (wgpu_device()?, BackendKind::Gpu),
            };
            let weights = weights.unwrap_or_else(|| default_weights("efficientnet-lite0.safetensors"));
            let bytes = std::fs::read(&weights).with_context(|| {
                format!(
                    "cannot read weights {} (run `python3 scripts/fetch_weights.py`)",
                    weights.display()
                )
            })?;
            let options = ClassifierOptions::default().with_top_k(top_k).with_resize(match resize {
                ResizeArg::Crop => Resize::CenterCrop,
                ResizeArg::Stretch => Resize::Stretch,
            });
            let classifier = ImageClassifier::from_bytes(&bytes, &device, options)
                .with_context(|| format!("cannot load {}", weights.display()))?;
            let (pixels, w, h) = decode(&image)?;
            let start = Instant::now();
            let result = classifier.classify(&Image::from_rgb(&pixels, w, h)?)?;
            let elapsed = start.elapsed();
            if json {
                let top = result
                    .classes
                    .iter()
                    .map(|c| JsonClass {
                        index: c.index,
                        label: c.label,
                        probability: c.score,
                    })
                    .collect();
                println!("{}", serde_json::to_string(&JsonClassification { top })?);
            } else {
                println!(
                    "{} ({w}x{h}) on {} in {:.1} ms (first run, includes warm-up):",
                    image.display(),
                    kind.name(),
                    elapsed.as_secs_f64() * 1e3
                );
                for c in &result.classes {
                    println!("  {:>6.2}%  {:>4}  {}", c.score * 100.0, c.index, c.label);
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightline: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

