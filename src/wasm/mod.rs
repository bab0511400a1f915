//! The JavaScript boundary (browser only): classes, options ⇄ serde, errors → named JS errors.
//! No maths here: everything is delegated to `task`.

use std::cell::RefCell;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::backend::{BackendKind, cpu_device};
use crate::error::{Error, ErrorKind};
use crate::image::Image;
use crate::preprocess::Resize;
use crate::task::{ClassifierOptions, DetectorOptions, ImageClassifier, ObjectDetector, coco_index};

thread_local! {
    /// The page's one WebGPU device (the runtime can be initialised only once per page).
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
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
/// validation) to the browser console, so failures are never silent.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("sightline panicked (a bug, please report): {info}").into());
    }));
    let _ = console_log::init_with_level(log::Level::Warn);
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

/// Rejects keys other than `allowed` (serde-wasm-bindgen reads structs field by field, so
/// `deny_unknown_fields` alone would let a typo such as `topk` pass silently).
fn parse_options<T: serde::de::DeserializeOwned + Default>(
    value: JsValue,
    allowed: &[&str],
    what: &str,
) -> Result<T, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    if !value.is_object() {
        return Err(error(ErrorKind::InvalidOptions, format!("{what} options must be an object")));
    }
    for key in js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            return Err(error(
                ErrorKind::InvalidOptions,
                format!("unknown {what} option {key:?} (expected one of {})", allowed.join(", ")),
            ));
        }
    }
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| error(ErrorKind::InvalidOptions, format!("invalid {what} options: {e}")))
}

/// Classifier options as JS passes them (camelCase, all optional).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsClassifierOptions {
    top_k: Option<usize>,
    resize: Option<String>,
}

impl JsClassifierOptions {
    fn apply(value: JsValue, base: ClassifierOptions) -> Result<ClassifierOptions, JsValue> {
        let js: JsClassifierOptions = parse_options(value, &["topK", "resize"], "classifier")?;
        let mut options = base;
        if let Some(k) = js.top_k {
            options.top_k = k;
        }
        if let Some(r) = js.resize {
            options.resize = match r.as_str() {
                "crop" => Resize::CenterCrop,
                "stretch" => Resize::Stretch,
                other => {
                    return Err(error(
                        ErrorKind::InvalidOptions,
                        format!("resize must be \"crop\" or \"stretch\", got {other:?}"),
                    ));
                }
            };
        }
        options.validate()?;
        Ok(options)
    }
}

#[derive(Serialize)]
struct JsCategory {
    index: usize,
    label: &'static str,
    score: f32,
}

#[derive(Serialize)]
struct JsClassification {
    classes: Vec<JsCategory>,
}

/// The wasm side of `ImageClassifier` (wrapped by `www/lib/sightline.js`).
#[wasm_bindgen]
pub struct Classifier {
    inner: RefCell<ImageClassifier>,
    backend: BackendKind,
}

#[wasm_bindgen]
impl Classifier {
    /// Loads the weights (safetensors bytes) onto `backend` (`"webgpu"` or `"cpu"`).
    pub async fn create(weights: Vec<u8>, backend: String, options: JsValue) -> Result<Classifier, JsValue> {
        let options = JsClassifierOptions::apply(options, ClassifierOptions::default())?;
        let (device, kind) = device(&backend)?;
        let inner = ImageClassifier::from_bytes(&weights, &device, options)?;
        Ok(Classifier { inner: RefCell::new(inner), backend: kind })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.name().to_owned()
    }

    /// Classifies RGBA pixels; resolves to `{ classes: [{ index, label, score }] }`.
    pub fn classify(&self, rgba: Vec<u8>, width: u32, height: u32) -> js_sys::Promise {
        let classifier = self.inner.borrow().clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let image = Image::from_rgba(&rgba, width, height)?;
            let result = classifier.classify_async(&image).await?;
            let js = JsClassification {
                classes: result
                    .classes
                    .into_iter()
                    .map(|c| JsCategory { index: c.index, label: c.label, score: c.score })
                    .collect(),
            };
            serde_wasm_bindgen::to_value(&js).map_err(|e| error(ErrorKind::Inference, e.to_string()))
        })
    }

    /// Updates some options (`{ topK?, resize? }`); on error nothing changes.
    #[wasm_bindgen(js_name = setOptions)]
    pub fn set_options(&self, options: JsValue) -> Result<(), JsValue> {
        let current = self.inner.borrow().options();
        let next = JsClassifierOptions::apply(options, current)?;
        self.inner.borrow_mut().set_options(next)?;
        Ok(())
    }
}

/// Detector options as JS passes them (camelCase, all optional; categories by name).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsDetectorOptions {
    score_threshold: Option<f32>,
    iou_threshold: Option<f32>,
    max_results: Option<usize>,
    /// `null` clears the allowlist.
    #[serde(default, deserialize_with = "present")]
    category_allowlist: Option<Option<Vec<String>>>,
    category_denylist: Option<Vec<String>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn category_indices(names: &[String]) -> Result<Vec<usize>, JsValue> {
    names
        .iter()
        .map(|n| {
            coco_index(n).ok_or_else(|| {
                error(ErrorKind::InvalidOptions, format!("unknown category {n:?} (not a COCO-80 class name)"))
            })
        })
        .collect()
}

impl JsDetectorOptions {
    fn apply(value: JsValue, base: &DetectorOptions) -> Result<DetectorOptions, JsValue> {
        let js: JsDetectorOptions = parse_options(
            value,
            &["scoreThreshold", "iouThreshold", "maxResults", "categoryAllowlist", "categoryDenylist"],
            "detector",
        )?;
        let mut options = base.clone();
        if let Some(t) = js.score_threshold {
            options.score_threshold = t;
        }
        if let Some(t) = js.iou_threshold {
            options.iou_threshold = t;
        }
        if let Some(n) = js.max_results {
            options.max_results = n;
        }
        if let Some(allow) = js.category_allowlist {
            options.category_allowlist = allow.as_deref().map(category_indices).transpose()?;
        }
        if let Some(deny) = js.category_denylist {
            options.category_denylist = category_indices(&deny)?;
        }
        options.validate()?;
        Ok(options)
    }
}

#[derive(Serialize)]
struct JsBox {
    x: f32,
    y: f32,
    width: f32,
    height: f32,
}

#[derive(Serialize)]
struct JsDetection {
    index: usize,
    label: &'static str,
    score: f32,
    #[serde(rename = "box")]
    bbox: JsBox,
}

#[derive(Serialize)]
struct JsDetections {
    detections: Vec<JsDetection>,
}

/// The wasm side of `ObjectDetector` (wrapped by `www/lib/sightline.js`).
#[wasm_bindgen]
pub struct Detector {
    inner: RefCell<ObjectDetector>,
    backend: BackendKind,
}

#[wasm_bindgen]
impl Detector {
    /// Loads the weights (safetensors bytes) onto `backend` (`"webgpu"` or `"cpu"`).
    pub async fn create(weights: Vec<u8>, backend: String, options: JsValue) -> Result<Detector, JsValue> {
        let options = JsDetectorOptions::apply(options, &DetectorOptions::default())?;
        let (device, kind) = device(&backend)?;
        let inner = ObjectDetector::from_bytes(&weights, &device, options)?;
        Ok(Detector { inner: RefCell::new(inner), backend: kind })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.name().to_owned()
    }

    /// Detects objects in RGBA pixels; resolves to `{ detections: [{ index, label, score, box }] }`
    /// with boxes in source pixels.
    pub fn detect(&self, rgba: Vec<u8>, width: u32, height: u32) -> js_sys::Promise {
        let detector = self.inner.borrow().clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let image = Image::from_rgba(&rgba, width, height)?;
            let detections = detector.detect_async(&image).await?;
            let js = JsDetections {
                detections: detections
                    .into_iter()
                    .map(|d| JsDetection {
                        index: d.index,
                        label: d.label,
                        score: d.score,
                        bbox: JsBox { x: d.bbox.x, y: d.bbox.y, width: d.bbox.width, height: d.bbox.height },
                    })
                    .collect(),
            };
            serde_wasm_bindgen::to_value(&js).map_err(|e| error(ErrorKind::Inference, e.to_string()))
        })
    }

    /// Updates some options; on error nothing changes.
    #[wasm_bindgen(js_name = setOptions)]
    pub fn set_options(&self, options: JsValue) -> Result<(), JsValue> {
        let next = JsDetectorOptions::apply(options, self.inner.borrow().options())?;
        self.inner.borrow_mut().set_options(next)?;
        Ok(())
    }
}
