//! `sightline train`: a head for your own classes from a folder of labelled images
//! (`DIR/<label>/*.png|jpg`, the ImageFolder convention of torchvision and Keras).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::batch::decode_file;
use anyhow::{Context, Result, bail};
use sightline::{ClassifierOptions, HeadTrainer, ImageClassifier, TrainOptions};

use super::{Model, usage};

/// What to train, from the command line.
pub struct Plan {
    pub out: PathBuf,
    pub options: TrainOptions,
    pub augment: bool,
    pub val_split: f64,
    pub model: Model,
    pub dir: PathBuf,
}

/// One label's images, split into training and held-apart files.
struct Folder {
    label: String,
    train: Vec<PathBuf>,
    held_apart: Vec<PathBuf>,
}

fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// The labelled folders of `dir`, sorted by name, each with its image files sorted. With a
/// validation share `f`, `floor(n · f)` files of each label, spread evenly over the sorted list,
/// are held apart.
fn folders(dir: &Path, f: f64) -> Result<Vec<Folder>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))?;
    let mut folders = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read the folder {}", dir.display()))?.path();
        if !path.is_dir() {
            continue;
        }
        let label = path.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        let Some(label) = label else { bail!("{} is not a UTF-8 folder name", path.display()) };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .with_context(|| format!("cannot read the folder {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        files.sort();
        let (mut train, mut held_apart) = (Vec::new(), Vec::new());
        for (i, file) in files.into_iter().enumerate() {
            // Bresenham: file i is held apart when floor((i + 1) f) steps past floor(i f).
            let step = ((i + 1) as f64 * f).floor() > (i as f64 * f).floor();
            if step { held_apart.push(file) } else { train.push(file) }
        }
        folders.push(Folder { label, train, held_apart });
    }
    folders.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(folders)
}

macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(io::stdout().lock(), $($arg)*).context("cannot write to stdout")?
    };
}

pub fn train(plan: &Plan) -> Result<()> {
    plan.options.validate().map_err(usage)?;
    if !(0.0..1.0).contains(&plan.val_split) {
        return Err(usage(format!("--val-split must be at least 0 and below 1, got {}", plan.val_split)));
    }
    let folders = folders(&plan.dir, plan.val_split)?;
    let labelled: Vec<&Folder> = folders.iter().filter(|f| !f.train.is_empty()).collect();
    if labelled.len() < 2 {
        return Err(usage(format!(
            "{} needs at least two label folders with training images (DIR/<label>/*.png|jpg), found {}",
            plan.dir.display(),
            labelled.len()
        )));
    }
    let (classifier, _) = plan.model.classifier(ClassifierOptions::default())?;
    let mut trainer = HeadTrainer::new();
    let mut examples = 0;
    for folder in &labelled {
        for file in &folder.train {
            let image = decode_file(file)?;
            for embedding in classifier.embed_examples(&image.view(), plan.augment)? {
                trainer.add_example(&folder.label, embedding).map_err(usage)?;
                examples += 1;
            }
        }
    }
    say!(
        "{} labels, {} training images ({examples} examples{}), {} held apart",
        labelled.len(),
        labelled.iter().map(|f| f.train.len()).sum::<usize>(),
        if plan.augment { " with mirrored and shifted crops" } else { "" },
        labelled.iter().map(|f| f.held_apart.len()).sum::<usize>()
    );
    let mut printing = Ok(());
    let (head, report) = trainer.train(&plan.options, |e| {
        if printing.is_ok() {
            printing =
                writeln!(io::stdout().lock(), "epoch {:>4}  loss {:.4}  accuracy {:.3}", e.epoch, e.loss, e.accuracy);
        }
    })?;
    printing.context("cannot write to stdout")?;
    say!("training accuracy {:.3}", report.train_accuracy);
    let held_apart: Vec<(&str, &PathBuf)> =
        labelled.iter().flat_map(|f| f.held_apart.iter().map(move |p| (f.label.as_str(), p))).collect();
    if !held_apart.is_empty() {
        let custom = classifier.with_head(&head);
        let mut right = 0;
        for (label, file) in &held_apart {
            if predicted(&custom, file)? == *label {
                right += 1;
            }
        }
        say!("held-apart accuracy {:.3} ({right} of {})", right as f64 / held_apart.len() as f64, held_apart.len());
    }
    let bytes = head.to_bytes()?;
    std::fs::write(&plan.out, bytes).with_context(|| format!("cannot write {}", plan.out.display()))?;
    say!("wrote {}", plan.out.display());
    Ok(())
}

/// The top label `classifier` gives the image at `path`.
fn predicted(classifier: &ImageClassifier, path: &Path) -> Result<String> {
    let result = classifier.classify(&decode_file(path)?.view())?;
    Ok(result.classes.first().map(|c| c.label.clone()).unwrap_or_default())
}
