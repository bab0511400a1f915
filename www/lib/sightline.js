// sightline: in-browser image classification on WebGPU (burn-wgpu in WebAssembly) or the CPU.
// This file is glue only: it turns page sources into RGBA pixels, picks the backend and maps
// errors. Resize, normalisation, the network, softmax and top-k all run in Rust.

import initWasm, { Classifier, initWebGpu } from "../../pkg/sightline.js";

/** Where the package's own files live (weights ship with the package, never from a CDN). */
const DEFAULT_WASM = new URL("../../pkg/sightline_bg.wasm", import.meta.url);
const DEFAULT_CLASSIFIER = new URL("../../models/efficientnet-lite0.safetensors", import.meta.url);

/** The largest accepted width or height (same limit as the Rust side). */
export const MAX_SIDE = 16384;

/** How long to wait for `navigator.gpu.requestAdapter()` before giving up (it can hang). */
const ADAPTER_TIMEOUT_MS = 10000;

/** Base class of every error sightline throws; `name` tells which one. */
export class SightlineError extends Error {}
/** The pixel source is empty, not loaded yet, the wrong size, or too large. */
export class InvalidImageError extends SightlineError {
  name = "InvalidImageError";
}
/** An option is unknown or out of range. */
export class InvalidOptionsError extends SightlineError {
  name = "InvalidOptionsError";
}
/** The weights could not be fetched, or are corrupt or for another model. */
export class ModelLoadError extends SightlineError {
  name = "ModelLoadError";
}
/** The requested backend (WebGPU) is not available in this browser. */
export class BackendUnavailableError extends SightlineError {
  name = "BackendUnavailableError";
}
/** The backend failed while running the network. */
export class InferenceError extends SightlineError {
  name = "InferenceError";
}
/** The object was closed. */
export class ClosedError extends SightlineError {
  name = "ClosedError";
}

const ERRORS = {
  InvalidImageError,
  InvalidOptionsError,
  ModelLoadError,
  BackendUnavailableError,
  InferenceError,
};

/** Turns an error from the wasm module (a JS Error with a stable `name`) into our classes. */
function wrapError(e) {
  if (e instanceof SightlineError) return e;
  const Kind = ERRORS[e?.name] ?? InferenceError;
  return new Kind(String(e?.message ?? e), { cause: e });
}

let wasmReady = null;
function loadWasm(wasmUrl) {
  wasmReady ??= initWasm({ module_or_path: wasmUrl ?? DEFAULT_WASM }).catch((e) => {
    wasmReady = null;
    throw new ModelLoadError(`could not load the sightline wasm module: ${e.message}`, { cause: e });
  });
  return wasmReady;
}

/** Why WebGPU cannot be used here, or `null` when it can. Never throws. */
async function webGpuProblem() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return "WebGPU is not available in this browser (navigator.gpu is missing)";
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ADAPTER_TIMEOUT_MS);
  });
  try {
    const adapter = await Promise.race([gpu.requestAdapter(), timeout]);
    if (adapter === "timeout") return "WebGPU did not answer: requestAdapter() timed out";
    if (!adapter) return "WebGPU found no suitable GPU adapter (requestAdapter() returned null)";
  } catch (e) {
    return `WebGPU requestAdapter() failed: ${e.message}`;
  } finally {
    clearTimeout(timer);
  }
  return null;
}

let webGpuReady = null;
/** Resolves to `null` once the page's WebGPU device is ready, or to the reason it is not. */
function ensureWebGpu() {
  webGpuReady ??= (async () => {
    const problem = await webGpuProblem();
    if (problem) return problem;
    try {
      await initWebGpu();
      return null;
    } catch (e) {
      return `WebGPU device initialisation failed: ${e.message}`;
    }
  })();
  return webGpuReady;
}

/** Picks the backend: `{ backend: "webgpu" | "cpu", fallbackReason: string | null }`. */
async function resolveBackend(requested) {
  if (requested === "cpu") return { backend: "cpu", fallbackReason: null };
  if (requested !== "webgpu" && requested !== "auto") {
    throw new InvalidOptionsError(`backend must be "auto", "webgpu" or "cpu", got ${JSON.stringify(requested)}`);
  }
  const problem = await ensureWebGpu();
  if (!problem) return { backend: "webgpu", fallbackReason: null };
  if (requested === "webgpu") throw new BackendUnavailableError(problem);
  return { backend: "cpu", fallbackReason: problem };
}

async function loadModelBytes(model) {
  if (model instanceof Uint8Array) return model;
  if (model instanceof ArrayBuffer) return new Uint8Array(model);
  if (typeof model !== "string" && !(model instanceof URL)) {
    throw new InvalidOptionsError("model must be a URL, a string URL, an ArrayBuffer or a Uint8Array");
  }
  let response;
  try {
    response = await fetch(model);
  } catch (e) {
    throw new ModelLoadError(`could not fetch the weights from ${model}: ${e.message}`, { cause: e });
  }
  if (!response.ok) {
    throw new ModelLoadError(`could not fetch the weights from ${model}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Reads RGBA pixels out of any supported source, reusing one canvas. */
class PixelReader {
  #canvas = null;
  #ctx = null;

  read(source) {
    if (source == null) throw new InvalidImageError("no image source given");
    if (typeof ImageData !== "undefined" && source instanceof ImageData) {
      return { data: source.data, width: source.width, height: source.height };
    }
    const [width, height] = sourceSize(source);
    if (isRawPixels(source)) {
      return { data: source.data, width, height };
    }
    if (width === 0 || height === 0) {
      throw new InvalidImageError(`image source has no pixels yet (${width}x${height}); is it loaded?`);
    }
    if (width > MAX_SIDE || height > MAX_SIDE) {
      throw new InvalidImageError(`image is ${width}x${height}; the largest accepted side is ${MAX_SIDE}`);
    }
    if (!this.#canvas) {
      this.#canvas =
        typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height) : document.createElement("canvas");
      this.#ctx = this.#canvas.getContext("2d", { willReadFrequently: true });
    }
    if (this.#canvas.width !== width || this.#canvas.height !== height) {
      this.#canvas.width = width;
      this.#canvas.height = height;
    }
    this.#ctx.drawImage(source, 0, 0);
    return { data: this.#ctx.getImageData(0, 0, width, height).data, width, height };
  }
}

function isRawPixels(source) {
  return ArrayBuffer.isView(source.data) && Number.isInteger(source.width) && Number.isInteger(source.height);
}

function sourceSize(source) {
  if (typeof HTMLVideoElement !== "undefined" && source instanceof HTMLVideoElement) {
    if (source.readyState < 2) return [0, 0];
    return [source.videoWidth, source.videoHeight];
  }
  if (typeof HTMLImageElement !== "undefined" && source instanceof HTMLImageElement) {
    if (!source.complete) return [0, 0];
    return [source.naturalWidth, source.naturalHeight];
  }
  if (
    (typeof HTMLCanvasElement !== "undefined" && source instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== "undefined" && source instanceof OffscreenCanvas) ||
    (typeof ImageBitmap !== "undefined" && source instanceof ImageBitmap)
  ) {
    return [source.width, source.height];
  }
  if (typeof source === "object" && "data" in source && "width" in source && "height" in source) {
    if (!ArrayBuffer.isView(source.data)) throw new InvalidImageError("pixels.data must be a Uint8Array or Uint8ClampedArray");
    if (!Number.isInteger(source.width) || !Number.isInteger(source.height) || source.width < 0 || source.height < 0) {
      throw new InvalidImageError(`pixels.width and pixels.height must be non-negative integers`);
    }
    return [source.width, source.height];
  }
  throw new InvalidImageError(
    "unsupported image source: pass an HTMLImageElement, HTMLVideoElement, HTMLCanvasElement, ImageBitmap, ImageData or { data, width, height }",
  );
}

function asBytes(data) {
  return data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Options handled in JS; everything else is passed to (and validated by) Rust. */
function splitOptions(options, what) {
  if (options == null) return { backend: undefined, model: undefined, wasm: undefined, rest: {} };
  if (typeof options !== "object") throw new InvalidOptionsError(`${what} options must be an object`);
  const { backend, model, wasm, ...rest } = options;
  return { backend, model, wasm, rest };
}

/**
 * ImageNet-1k classification with EfficientNet-Lite0.
 *
 *     const classifier = await ImageClassifier.create({ backend: "auto", topK: 5 });
 *     const { classes, inferenceMs, backend } = await classifier.classify(video);
 */
export class ImageClassifier {
  #inner;
  #reader = new PixelReader();
  #queue = Promise.resolve();
  /** `"webgpu"` or `"cpu"`: the backend that runs. */
  backend;
  /** Why `"auto"` fell back to the CPU, or `null`. */
  fallbackReason;

  constructor(inner, { backend, fallbackReason }) {
    this.#inner = inner;
    this.backend = backend;
    this.fallbackReason = fallbackReason;
  }

  /**
   * Loads the model and warms it up (so the first `classify` is not the slow one).
   * @param {{backend?: "auto"|"webgpu"|"cpu", topK?: number, resize?: "crop"|"stretch",
   *          model?: string|URL|ArrayBuffer|Uint8Array, wasm?: string|URL}} [options]
   */
  static async create(options = {}) {
    const { backend = "auto", model, wasm, rest } = splitOptions(options, "classifier");
    await loadWasm(wasm);
    const choice = await resolveBackend(backend);
    const weights = await loadModelBytes(model ?? DEFAULT_CLASSIFIER);
    let inner;
    try {
      inner = await Classifier.create(weights, choice.backend, rest);
    } catch (e) {
      throw wrapError(e);
    }
    const classifier = new ImageClassifier(inner, choice);
    await classifier.#run(() => inner.classify(new Uint8Array(224 * 224 * 4).fill(128), 224, 224));
    return classifier;
  }

  /** Serialises work: one frame in flight at a time. */
  #run(work) {
    const result = this.#queue.then(async () => {
      if (!this.#inner) throw new ClosedError("the classifier is closed");
      try {
        return await work();
      } catch (e) {
        throw wrapError(e);
      }
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  /**
   * Classifies one image or video frame.
   * @returns {Promise<{classes: {index: number, label: string, score: number}[], inferenceMs: number, backend: string}>}
   */
  async classify(source) {
    return this.#run(async () => {
      const start = performance.now();
      const { data, width, height } = this.#reader.read(source);
      const { classes } = await this.#inner.classify(asBytes(data), width, height);
      return { classes, inferenceMs: performance.now() - start, backend: this.backend };
    });
  }

  /** Changes options (`topK`, `resize`) for the next calls; on error nothing changes. */
  async setOptions(partial) {
    return this.#run(async () => {
      const { backend, model, wasm, rest } = splitOptions(partial, "classifier");
      if (backend !== undefined || model !== undefined || wasm !== undefined) {
        throw new InvalidOptionsError("backend, model and wasm can only be set in create()");
      }
      this.#inner.setOptions(rest);
    });
  }

  /** Frees the model. Later calls reject with `ClosedError`. */
  async close() {
    await this.#queue;
    this.#inner?.free();
    this.#inner = null;
  }
}
