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
use crate::task::{ClassifierOptions, ImageClassifier};

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
        .map_err(|e| error(ErrorKind::BackendUnavailable, format!("WebGPU device init failed: {e}")))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device));
    Ok(())
}

fn device(backend: &str) -> Result<(Device, BackendKind), JsValue> {
    match backend {
        "cpu" => Ok((cpu_device(), BackendKind::Cpu)),
        "webgpu" => WEBGPU
            .with(|d| d.borrow().clone())
            .map(|d| (d, BackendKind::Gpu))
            .ok_or_else(|| error(ErrorKind::BackendUnavailable, "WebGPU is not initialised (call initWebGpu first)")),
        other => Err(error(
            ErrorKind::InvalidOptions,
            format!("backend must be \"webgpu\" or \"cpu\", got {other:?}"),
        )),
    }
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
        let js: JsClassifierOptions = if value.is_undefined() || value.is_null() {
            JsClassifierOptions::default()
        } else {
            serde_wasm_bindgen::from_value(value)
                .map_err(|e| error(ErrorKind::InvalidOptions, format!("invalid classifier options: {e}")))?
        };
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
        Ok(Classifier {
            inner: RefCell::new(inner),
            backend: kind,
        })
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
                    .map(|c| JsCategory {
                        index: c.index,
                        label: c.label,
                        score: c.score,
                    })
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
