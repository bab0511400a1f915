//! Teaching the classifier new classes: a linear [`Head`] over EfficientNet-Lite0's pooled
//! features, trained on the CPU device with burn's autodiff and its Adam optimizer (softmax
//! cross-entropy, L2 weight decay, shuffled mini-batches). The trainer keeps embeddings, never
//! images. Deterministic: the layer starts at zero and the batches are shuffled by a seeded
//! generator, so a seed and the same examples give the same head.

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use super::head::{Head, feature_size};
use super::labels::{Labels, MAX_LABELS, check_name};
use crate::backend::cpu_device;
use crate::error::{Error, Result};

/// How a head is trained.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Passes over the examples (1–10,000; default 50).
    pub epochs: usize,
    /// Adam's step size (0 < lr ≤ 1; default 0.001).
    pub learning_rate: f64,
    /// Examples per step (1–4,096; default 16).
    pub batch_size: usize,
    /// L2 penalty added to the gradient (0–1; default 1e-4).
    pub weight_decay: f32,
    /// Seed of the batch shuffling (default 0).
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { epochs: 50, learning_rate: 1e-3, batch_size: 16, weight_decay: 1e-4, seed: 0 }
    }
}

impl TrainOptions {
    /// Checks every option is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::invalid_options(what));
        if !(1..=10_000).contains(&self.epochs) {
            return bad(format!("epochs must be between 1 and 10000, got {}", self.epochs));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(format!("learningRate must be above 0 and at most 1, got {}", self.learning_rate));
        }
        if !(1..=4096).contains(&self.batch_size) {
            return bad(format!("batchSize must be between 1 and 4096, got {}", self.batch_size));
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            return bad(format!("weightDecay must be between 0 and 1, got {}", self.weight_decay));
        }
        Ok(())
    }
}

/// One finished epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches.
    pub loss: f32,
    /// Share of the epoch's examples the head got right as it trained, 0–1.
    pub accuracy: f32,
}

/// The result of a training run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainReport {
    /// Mean loss per epoch.
    pub loss: Vec<f32>,
    /// Share of the training examples the final head classifies right, 0–1.
    pub train_accuracy: f32,
}

/// Labelled embeddings, and the training of a head on them.
#[derive(Debug, Clone, Default)]
pub struct HeadTrainer {
    /// Label names in the order first seen; `examples[i]` holds label `i`'s embeddings.
    labels: Vec<String>,
    examples: Vec<Vec<Vec<f32>>>,
}

impl HeadTrainer {
    /// An empty trainer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one embedding (1280 finite values) under `label` (1–100 characters; at most 1000
    /// labels). On error nothing changes.
    pub fn add_example(&mut self, label: &str, embedding: Vec<f32>) -> Result<()> {
        check_name(label).map_err(|e| Error::invalid_options(format!("a label {}", e.message())))?;
        if embedding.len() != feature_size() {
            return Err(Error::invalid_options(format!(
                "an embedding has {} values, got {}",
                feature_size(),
                embedding.len()
            )));
        }
        if embedding.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid_options("an embedding holds a non-finite value"));
        }
        match self.labels.iter().position(|l| l == label) {
            Some(i) => self.examples[i].push(embedding),
            None if self.labels.len() >= MAX_LABELS => {
                return Err(Error::invalid_options(format!("a head has at most {MAX_LABELS} labels")));
            }
            None => {
                self.labels.push(label.to_owned());
                self.examples.push(vec![embedding]);
            }
        }
        Ok(())
    }

    /// The labels, in the order first added.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// How many examples `label` has (0 for an unknown label).
    pub fn count(&self, label: &str) -> usize {
        self.labels.iter().position(|l| l == label).map_or(0, |i| self.examples[i].len())
    }

    /// Forgets `label` and its examples; whether it was there.
    pub fn remove_label(&mut self, label: &str) -> bool {
        let Some(i) = self.labels.iter().position(|l| l == label) else { return false };
        self.labels.remove(i);
        self.examples.remove(i);
        true
    }

    /// Trains a head on every example; `on_epoch` hears of each epoch as it ends. Needs at least
    /// two labels, each with an example (`InvalidOptions` otherwise).
    pub fn train(&self, options: &TrainOptions, mut on_epoch: impl FnMut(&EpochReport)) -> Result<(Head, TrainReport)> {
        let mut run = self.start(options)?;
        while let Some(epoch) = run.step()? {
            on_epoch(&epoch);
        }
        run.finish()
    }

    /// Starts training, one epoch per [`Training::step`] (so that a caller can report progress
    /// or let a page breathe between epochs). The examples are copied: the trainer may change
    /// meanwhile.
    pub fn start(&self, options: &TrainOptions) -> Result<Training> {
        options.validate()?;
        if self.labels.len() < 2 {
            return Err(Error::invalid_options(format!(
                "training needs at least two labels with examples, got {}",
                self.labels.len()
            )));
        }
        if let Some(i) = self.examples.iter().position(Vec::is_empty) {
            return Err(Error::invalid_options(format!("label {:?} has no examples", self.labels[i])));
        }
        let labels = Labels::new(self.labels.clone())?;
        let (features, classes) = (feature_size(), labels.len());
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (label, list) in self.examples.iter().enumerate() {
            for e in list {
                x.extend_from_slice(e);
                y.push(label as i64);
            }
        }
        let device = cpu_device().autodiff();
        let model = LinearConfig::new(features, classes).with_initializer(Initializer::Zeros).init(&device);
        let optimizer = AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(options.weight_decay))).init();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        Ok(Training {
            options: options.clone(),
            labels,
            order: (0..y.len()).collect(),
            x,
            y,
            device,
            model,
            optimizer,
            loss_fn,
            rng: SplitMix64(options.seed),
            loss: Vec::with_capacity(options.epochs),
        })
    }
}

/// A training run in progress (see [`HeadTrainer::start`]).
pub struct Training {
    options: TrainOptions,
    labels: Labels,
    /// `[examples, features]` row-major, and the label of each example.
    x: Vec<f32>,
    y: Vec<i64>,
    order: Vec<usize>,
    device: Device,
    model: Linear,
    optimizer: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    rng: SplitMix64,
    loss: Vec<f32>,
}

impl Training {
    /// Examples `ids` as a batch on the autodiff device.
    fn batch(&self, ids: &[usize]) -> (Tensor<2>, Tensor<1, Int>) {
        let features = feature_size();
        let x: Vec<f32> = ids.iter().flat_map(|&i| self.x[i * features..(i + 1) * features].iter().copied()).collect();
        let y: Vec<i64> = ids.iter().map(|&i| self.y[i]).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [ids.len(), features]), &self.device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [ids.len()]), &self.device);
        (x, y)
    }

    /// Runs the next epoch; `None` once every epoch has run.
    pub fn step(&mut self) -> Result<Option<EpochReport>> {
        let epoch = self.loss.len() + 1;
        if epoch > self.options.epochs {
            return Ok(None);
        }
        let mut order = std::mem::take(&mut self.order);
        self.rng.shuffle(&mut order);
        let (mut loss_sum, mut right) = (0.0f64, 0usize);
        for ids in order.chunks(self.options.batch_size) {
            let (x, y) = self.batch(ids);
            let logits = self.model.forward(x);
            let loss = self.loss_fn.forward(logits.clone(), y.clone());
            right += correct(logits, y)?;
            loss_sum += f64::from(scalar(loss.clone())?) * ids.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            let model = self.model.clone();
            self.model = self.optimizer.step(self.options.learning_rate, model, grads);
        }
        self.order = order;
        let n = self.y.len();
        let report = EpochReport { epoch, loss: (loss_sum / n as f64) as f32, accuracy: right as f32 / n as f32 };
        if !report.loss.is_finite() {
            return Err(Error::invalid_options(format!(
                "training diverged at epoch {epoch} (the loss is not finite): lower learningRate"
            )));
        }
        self.loss.push(report.loss);
        Ok(Some(report))
    }

    /// The trained head (on the CPU device) and the report; runs any epochs left first.
    pub fn finish(mut self) -> Result<(Head, TrainReport)> {
        while self.step()?.is_some() {}
        let (features, classes) = (feature_size(), self.labels.len());
        let model = self.model.valid();
        let all: Vec<usize> = (0..self.y.len()).collect();
        let (x, y) = self.batch(&all);
        let train_accuracy = correct(model.forward(x), y)? as f32 / self.y.len() as f32;
        // burn's [in, out] weight → the head's [out, in].
        let weight_in_out = values(model.weight.val().into_data())?;
        let weight = crate::model::transpose(&weight_in_out, features, classes);
        let bias = match &model.bias {
            Some(b) => values(b.val().into_data())?,
            None => vec![0.0; classes],
        };
        let head = Head::new(self.labels, weight, bias, &cpu_device())?;
        Ok((head, TrainReport { loss: self.loss, train_accuracy }))
    }
}

fn values(data: TensorData) -> Result<Vec<f32>> {
    data.try_into_vec::<f32>().map_err(|e| Error::inference(format!("the head's values are not f32: {e:?}")))
}

fn scalar(t: Tensor<1>) -> Result<f32> {
    Ok(values(t.into_data())?.first().copied().unwrap_or(f32::NAN))
}

/// How many rows of `logits` have their largest value at the target class.
fn correct(logits: Tensor<2>, targets: Tensor<1, Int>) -> Result<usize> {
    let [rows, _] = logits.dims();
    let predicted = logits.inner().argmax(1).reshape([rows]);
    let same = predicted.equal(targets.inner()).int().sum();
    let data = same.into_data();
    data.iter::<i64>().next().map(|n| n as usize).ok_or_else(|| Error::inference("empty accuracy count"))
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, well-mixed seeded generator for shuffling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well-separated clusters per label in the 1280-dimensional feature space.
    fn trainer(labels: usize, per_label: usize) -> HeadTrainer {
        let mut t = HeadTrainer::new();
        let mut rng = SplitMix64(7);
        for l in 0..labels {
            for _ in 0..per_label {
                let e = (0..feature_size())
                    .map(|i| {
                        let noise = (rng.next() % 1000) as f32 / 1000.0;
                        if i % labels == l { 2.0 + noise } else { noise }
                    })
                    .collect();
                t.add_example(&format!("label {l}"), e).expect("valid");
            }
        }
        t
    }

    #[test]
    fn trains_to_full_accuracy_deterministically() {
        let t = trainer(3, 8);
        let options = TrainOptions { epochs: 20, ..TrainOptions::default() };
        let mut epochs = 0;
        let (head, report) = t.train(&options, |_| epochs += 1).expect("train");
        assert_eq!(epochs, 20);
        assert_eq!(report.train_accuracy, 1.0);
        assert!(report.loss[19] < report.loss[0] / 4.0, "{:?}", report.loss);
        let (again, report2) = t.train(&options, |_| {}).expect("train");
        assert_eq!(report.loss, report2.loss, "same seed, same losses");
        let bytes = |h: &Head| {
            let again = Head::from_bytes(&h.to_bytes().expect("bytes"), &cpu_device()).expect("read");
            (again.labels().names().to_vec(), again.linear().weight.val().into_data().try_to_vec::<f32>().expect("f32"))
        };
        assert!(bytes(&head) == bytes(&again), "same seed, same head");
        assert_eq!(head.labels().names(), ["label 0", "label 1", "label 2"]);
    }

    #[test]
    fn bad_examples_and_options_are_named_errors_that_change_nothing() {
        let mut t = trainer(1, 2);
        let kind = |r: Result<()>| r.expect_err("must fail").kind();
        let invalid = crate::ErrorKind::InvalidOptions;
        assert_eq!(kind(t.add_example("", vec![0.0; 1280])), invalid);
        assert_eq!(kind(t.add_example(&"x".repeat(101), vec![0.0; 1280])), invalid);
        assert_eq!(kind(t.add_example("a", vec![0.0; 12])), invalid);
        assert_eq!(kind(t.add_example("a", vec![f32::NAN; 1280])), invalid);
        assert_eq!(t.labels(), ["label 0"]);
        assert_eq!(t.count("label 0"), 2);
        let e = t.train(&TrainOptions::default(), |_| {}).expect_err("one label");
        assert!(e.message().contains("at least two labels"), "{e}");
        t.add_example("other", vec![1.0; 1280]).expect("valid");
        let bad = TrainOptions { epochs: 0, ..TrainOptions::default() };
        assert_eq!(t.train(&bad, |_| {}).expect_err("epochs").kind(), invalid);
        let bad = TrainOptions { learning_rate: f64::NAN, ..TrainOptions::default() };
        assert_eq!(t.train(&bad, |_| {}).expect_err("lr").kind(), invalid);
        assert!(t.remove_label("other"));
        assert!(!t.remove_label("other"));
        assert_eq!(t.count("other"), 0);
    }
}
