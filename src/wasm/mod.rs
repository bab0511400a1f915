//! The JavaScript boundary (browser only): classes, options ⇄ serde, errors → named JS errors.
//! No maths and no result shapes here: everything is delegated to `task`, whose result types are
//! serialised as they are.

use std::cell::RefCell;

use burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

use crate::backend::{BackendKind, cpu_device};
use crate::error::{Error, ErrorKind};
use crate::image::Image;
use crate::model::{DEFAULT_PRECISION, Precision};
use crate::task::{
    ClassifierOptions, ClassifierPatch, DetectorOptions, DetectorPatch, Head, ImageClassifier, Labels, ObjectDetector,
};
#[cfg(feature = "train")]
use crate::task::{HeadTrainer, TrainPatch, Training, feature_size};

thread_local! {
    /// The page's one WebGPU device (the runtime can be initialised only once per page).
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
    /// Told about a panic before the module traps (see `onPanic`).
    static PANIC_HANDLER: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        let js = js_sys::Error::new(e.message());
        js.set_name(e.kind().js_name());
        js.into()
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> JsValue {
    Error::new(kind, message).into()
}

/// Routes Rust panics and `log` records (wgpu/cubecl warnings, e.g. a shader that failed
/// validation) to the browser console, so failures are never silent, and tells the handler set
/// with `onPanic`.
#[wasm_bindgen(start)]
pub fn start() {
    run_static_constructors();
    std::panic::set_hook(Box::new(|info| {
        let message = format!("sightline panicked (a bug, please report): {info}");
        web_sys::console::error_1(&message.as_str().into());
        PANIC_HANDLER.with(|h| {
            if let Some(handler) = h.try_borrow().ok().as_ref().and_then(|h| h.as_ref()) {
                let _ = handler.call1(&JsValue::NULL, &message.into());
            }
        });
    }));
    let _ = console_log::init_with_level(log::Level::Warn);
}

/// Runs the module's static constructors (the `inventory` registrations of burn and CubeCL) once,
/// at instantiation. Without an explicit call, wasm-ld links the module "command style" and wraps
/// every export in a call to them, so they ran again on every call from JS (≈3 % of a CPU frame
/// in the profiler, and 235 wrapper functions). The crate's one `unsafe` call on wasm.
#[allow(unsafe_code)]
fn run_static_constructors() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the linker-generated constructor list, called once, first thing after
    // instantiation (wasm-bindgen runs the `start` function before any other export).
    unsafe { __wasm_call_ctors() }
}

/// Sets the function called with the message when Rust panics. A panic aborts: the module
/// traps right after, its state is lost, and every later call into it must be avoided.
#[wasm_bindgen(js_name = onPanic)]
pub fn on_panic(handler: js_sys::Function) {
    PANIC_HANDLER.with(|h| *h.borrow_mut() = Some(handler));
}

/// Initialises the page's WebGPU device (once; later calls return at once).
///
/// JS must check `navigator.gpu` and `requestAdapter()` first: wgpu traps instead of failing
/// cleanly when WebGPU is missing.
#[wasm_bindgen(js_name = initWebGpu)]
pub async fn init_webgpu() -> Result<(), JsValue> {
    if WEBGPU.with(|d| d.borrow().is_some()) {
        return Ok(());
    }
    let device = Device::wgpu_options()
        .graphics_api(burn::tensor::wgpu::WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| Error::backend_unavailable(format!("WebGPU device init failed: {e}")))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device));
    Ok(())
}

fn device(backend: &str) -> Result<(Device, BackendKind), JsValue> {
    match backend {
        "cpu" => Ok((cpu_device(), BackendKind::Cpu)),
        "webgpu" => WEBGPU
            .with(|d| d.borrow().clone())
            .map(|d| (d, BackendKind::Gpu))
            .ok_or_else(|| Error::backend_unavailable("WebGPU is not initialised (call initWebGpu first)").into()),
        other => Err(error(ErrorKind::InvalidOptions, format!("backend must be \"webgpu\" or \"cpu\", got {other:?}"))),
    }
}

/// A JS options object (or `undefined`/`null` for none) as a patch.
fn patch<T: DeserializeOwned + Default>(value: JsValue, what: &str) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    if !value.is_object() || js_sys::Array::is_array(&value) {
        return Err(error(ErrorKind::InvalidOptions, format!("{what} options must be an object")));
    }
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| error(ErrorKind::InvalidOptions, format!("invalid {what} options: {e}")))
}

/// A task result as one JSON string, which `engine.js` parses: one crossing of the boundary
/// however many results there are (building the JS object field by field through
/// serde-wasm-bindgen took seconds for a thousand detections).
fn to_json(result: &impl Serialize) -> Result<JsValue, JsValue> {
    serde_json::to_string(result)
        .map(|json| JsValue::from_str(&json))
        .map_err(|e| error(ErrorKind::Inference, e.to_string()))
}

fn classifier_options(value: JsValue, base: &ClassifierOptions) -> Result<ClassifierOptions, JsValue> {
    Ok(patch::<ClassifierPatch>(value, "classifier")?.apply(base)?)
}

fn detector_options(value: JsValue, base: &DetectorOptions) -> Result<DetectorOptions, JsValue> {
    Ok(patch::<DetectorPatch>(value, "detector")?.apply(base, &Labels::coco())?)
}

/// Fails unless the loaded file is the variant the caller asked for (if they asked).
fn check_precision(loaded: Precision, asked: Option<&str>) -> Result<(), JsValue> {
    let Some(asked) = asked else { return Ok(()) };
    let asked = Precision::from_name(asked)?;
    if asked != loaded {
        return Err(error(
            ErrorKind::ModelLoad,
            format!("the weights are {}, but precision \"{}\" was asked for", loaded.name(), asked.name()),
        ));
    }
    Ok(())
}

/// The weights variant users get unless they ask for another (`"f16"`, `"int8"` or `"f32"`).
#[wasm_bindgen(js_name = defaultPrecision)]
pub fn default_precision() -> String {
    DEFAULT_PRECISION.name().to_owned()
}

/// Checks a `precision` option.
#[wasm_bindgen(js_name = checkPrecision)]
pub fn check_precision_name(precision: &str) -> Result<(), JsValue> {
    Precision::from_name(precision).map(drop).map_err(Into::into)
}

/// Whether this build has the test-only fault-injection hooks (the `test-hooks` feature).
#[wasm_bindgen(js_name = hasTestHooks)]
pub fn has_test_hooks() -> bool {
    cfg!(feature = "test-hooks")
}

/// One exported class per task: a task of type `$task` behind a JS class `$class` whose
/// inference method `$js` (`classify`/`detect`) runs `$run` with one asynchronous readback. The
/// two classes share everything else, so they are written once.
macro_rules! task_class {
    ($(#[$doc:meta])* $class:ident, $task:ty, $js:ident, $run:ident, $options:path, $defaults:expr) => {
        $(#[$doc])*
        #[wasm_bindgen]
        pub struct $class {
            inner: RefCell<$task>,
            backend: BackendKind,
            hooks: TestHooks,
        }

        #[wasm_bindgen]
        impl $class {
            /// Checks options without loading anything (so a typo costs no download).
            #[wasm_bindgen(js_name = checkOptions)]
            pub fn check_options(options: JsValue) -> Result<(), JsValue> {
                $options(options, &$defaults).map(drop)
            }

            /// Loads the weights (safetensors bytes) onto `backend` (`"webgpu"` or `"cpu"`); when
            /// `precision` is given, the file's header must declare that variant.
            pub async fn create(
                weights: Vec<u8>,
                backend: String,
                options: JsValue,
                precision: Option<String>,
            ) -> Result<$class, JsValue> {
                let options = $options(options, &$defaults)?;
                let (device, kind) = device(&backend)?;
                let inner = <$task>::from_bytes(&weights, &device, options)?;
                check_precision(inner.precision(), precision.as_deref())?;
                Ok($class { inner: RefCell::new(inner), backend: kind, hooks: TestHooks::default() })
            }

            /// `"int8"`, `"f16"` or `"f32"`: how the loaded weights were stored.
            #[wasm_bindgen(getter)]
            pub fn precision(&self) -> String {
                self.inner.borrow().precision().name().to_owned()
            }

            /// `"webgpu"` or `"cpu"`.
            #[wasm_bindgen(getter)]
            pub fn backend(&self) -> String {
                self.backend.name().to_owned()
            }

            /// Runs the task on RGBA pixels; resolves to the task's result as a JSON string.
            pub fn $js(&self, rgba: Vec<u8>, width: u32, height: u32) -> js_sys::Promise {
                let task = self.inner.borrow().clone();
                let panic = self.hooks.take();
                wasm_bindgen_futures::future_to_promise(async move {
                    let image = Image::from_rgba(&rgba, width, height)?;
                    let result = task.$run(&image).await?;
                    TestHooks::fire(panic);
                    to_json(&result)
                })
            }

            /// Updates some options; on error nothing changes.
            #[wasm_bindgen(js_name = setOptions)]
            pub fn set_options(&self, options: JsValue) -> Result<(), JsValue> {
                let options = self.hooks.strip(options)?;
                let next = $options(options, self.inner.borrow().options())?;
                self.inner.borrow_mut().set_options(next)?;
                Ok(())
            }
        }
    };
}

task_class!(
    /// The wasm side of `ImageClassifier` (wrapped by `www/lib/engine.js`).
    Classifier, ImageClassifier, classify, classify_async, classifier_options, ClassifierOptions::default()
);

task_class!(
    /// The wasm side of `ObjectDetector` (wrapped by `www/lib/engine.js`).
    Detector, ObjectDetector, detect, detect_async, detector_options, DetectorOptions::default()
);

/// The classifier's own calls: embeddings, explanations, custom heads.
#[wasm_bindgen]
impl Classifier {
    /// The pooled features of RGBA pixels: 1280 values, or with `augment` 6 × 1280 (the image,
    /// its mirror image, two shifted crops and their mirrors). Resolves to a `Float32Array`.
    pub fn embed(&self, rgba: Vec<u8>, width: u32, height: u32, augment: bool) -> js_sys::Promise {
        let task = self.inner.borrow().clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let image = Image::from_rgba(&rgba, width, height)?;
            let features = task.embed_examples_async(&image, augment).await?.concat();
            Ok(js_sys::Float32Array::from(features.as_slice()).into())
        })
    }

    /// Explains the decision for class `index` (default: the top class); resolves to the
    /// explanation as a JSON string.
    pub fn explain(&self, rgba: Vec<u8>, width: u32, height: u32, index: Option<u32>) -> js_sys::Promise {
        let task = self.inner.borrow().clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let image = Image::from_rgba(&rgba, width, height)?;
            to_json(&task.explain_async(&image, index.map(|i| i as usize)).await?)
        })
    }

    /// A classifier with the same backbone (shared, not reloaded) and the head in `head` (a head
    /// file) in place of the ImageNet layer. This classifier is unchanged.
    #[wasm_bindgen(js_name = withHead)]
    pub fn with_head(&self, head: Vec<u8>) -> Result<Classifier, JsValue> {
        let head = Head::from_bytes(&head, &cpu_device())?;
        let inner = self.inner.borrow().with_head(&head);
        Ok(Classifier { inner: RefCell::new(inner), backend: self.backend, hooks: TestHooks::default() })
    }
}

/// A head being trained on labelled embeddings, one epoch per `step()` (so that JS can report
/// progress and yield between epochs). Only in the trainer module (the `train` feature).
#[cfg(feature = "train")]
#[wasm_bindgen]
pub struct HeadTraining {
    run: Option<Training>,
    head: Option<Head>,
}

#[cfg(feature = "train")]
#[wasm_bindgen]
impl HeadTraining {
    /// Starts training on `counts[i]` embeddings of label `labels[i]`, in that order, packed in
    /// `embeddings` (1280 values each); `options` is `{ epochs?, learningRate?, batchSize?,
    /// weightDecay?, seed? }`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        labels: Vec<String>,
        counts: Vec<u32>,
        embeddings: Vec<f32>,
        options: JsValue,
    ) -> Result<HeadTraining, JsValue> {
        let options = patch::<TrainPatch>(options, "training")?.apply()?;
        let size = feature_size();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if labels.len() != counts.len() || total * size != embeddings.len() {
            return Err(error(
                ErrorKind::InvalidOptions,
                format!(
                    "{} labels, {} counts and {} values do not match",
                    labels.len(),
                    counts.len(),
                    embeddings.len()
                ),
            ));
        }
        let mut trainer = HeadTrainer::new();
        let mut chunks = embeddings.chunks_exact(size);
        for (label, &count) in labels.iter().zip(&counts) {
            if count == 0 {
                return Err(error(ErrorKind::InvalidOptions, format!("label {label:?} has no examples")));
            }
            for chunk in chunks.by_ref().take(count as usize) {
                trainer.add_example(label, chunk.to_vec())?;
            }
        }
        Ok(HeadTraining { run: Some(trainer.start(&options)?), head: None })
    }

    /// Runs the next epoch; resolves its report (`{ epoch, loss, accuracy }`) as JSON, or
    /// `undefined` once every epoch has run.
    pub fn step(&mut self) -> Result<Option<String>, JsValue> {
        let Some(run) = self.run.as_mut() else { return Ok(None) };
        match run.step()? {
            Some(epoch) => Ok(to_json(&epoch)?.as_string()),
            None => Ok(None),
        }
    }

    /// Ends training; the report (`{ loss, trainAccuracy }`) as JSON.
    pub fn finish(&mut self) -> Result<String, JsValue> {
        let run = self.run.take().ok_or_else(|| error(ErrorKind::InvalidOptions, "this training has finished"))?;
        let (head, report) = run.finish()?;
        self.head = Some(head);
        Ok(to_json(&report)?.as_string().unwrap_or_default())
    }

    /// The trained head as a head file (after `finish()`).
    #[wasm_bindgen(js_name = headBytes)]
    pub fn head_bytes(&self) -> Result<Vec<u8>, JsValue> {
        let head = self.head.as_ref().ok_or_else(|| error(ErrorKind::InvalidOptions, "train first"))?;
        Ok(head.to_bytes()?)
    }
}

/// Fault injection for the browser tests, compiled only with the `test-hooks` feature: the
/// option `testPanic: "now"` panics inside `setOptions`, `testPanic: "next"` inside the next
/// inference (after its readback, as a GPU fault would). Without the feature `testPanic` is an
/// unknown option like any other.
#[derive(Default)]
struct TestHooks {
    #[cfg(feature = "test-hooks")]
    panic_next: std::cell::Cell<bool>,
}

#[cfg(feature = "test-hooks")]
impl TestHooks {
    /// `options` without `testPanic`, after acting on it.
    fn strip(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let key = JsValue::from_str("testPanic");
        if !options.is_object() || !js_sys::Reflect::has(&options, &key)? {
            return Ok(options);
        }
        let hook = js_sys::Reflect::get(&options, &key)?.as_string();
        let rest = js_sys::Object::assign(&js_sys::Object::new(), options.unchecked_ref());
        js_sys::Reflect::delete_property(&rest, &key)?;
        match hook.as_deref() {
            Some("now") => panic!("test panic (testPanic: \"now\")"),
            Some("next") => self.panic_next.set(true),
            _ => return Err(error(ErrorKind::InvalidOptions, "testPanic must be \"now\" or \"next\"")),
        }
        Ok(rest.into())
    }

    /// Whether the next inference must panic (and clears it).
    fn take(&self) -> bool {
        self.panic_next.replace(false)
    }
}

#[cfg(not(feature = "test-hooks"))]
impl TestHooks {
    fn strip(&self, options: JsValue) -> Result<JsValue, JsValue> {
        Ok(options)
    }

    fn take(&self) -> bool {
        false
    }
}

impl TestHooks {
    fn fire(panic: bool) {
        if panic {
            panic!("test panic (testPanic: \"next\")");
        }
    }
}
