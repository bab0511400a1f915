// sightline: in-browser image classification on WebGPU (burn-wgpu in WebAssembly) or the CPU.
// This file is glue only: it turns page sources into RGBA pixels, picks the backend and maps
// errors. Resize, normalisation, the network, softmax and top-k all run in Rust.

import initWasm, { Classifier, Detector, initWebGpu } from "../../pkg/sightline.js";

/** Where the package's own files live (weights ship with the package, never from a CDN). */
const DEFAULT_WASM = new URL("../../pkg/sightline_bg.wasm", import.meta.url);
const DEFAULT_CLASSIFIER = new URL("../../models/efficientnet-lite0.safetensors", import.meta.url);
const DEFAULT_DETECTOR = new URL("../../models/nanodet-g-416.safetensors", import.meta.url);

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
let wasmExports = null;
function loadWasm(wasmUrl) {
  wasmReady ??= initWasm({ module_or_path: wasmUrl ?? DEFAULT_WASM }).then((exports) => {
    wasmExports = exports;
    return exports;
  }, (e) => {
    wasmReady = null;
    throw new ModelLoadError(`could not load the sightline wasm module: ${e.message}`, { cause: e });
  });
  return wasmReady;
}

/**
 * Memory held by the sightline wasm module: `{ wasmBytes }` (its linear memory; GPU buffers are
 * not included). `wasmBytes` is 0 before the first `create()`. Useful to check for leaks.
 */
export function memoryUsage() {
  return { wasmBytes: wasmExports?.memory?.buffer.byteLength ?? 0 };
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
 * What every task shares: the wasm object, a pixel reader, and a queue that keeps one frame in
 * flight at a time.
 */
class Session {
  inner;
  reader = new PixelReader();
  queue = Promise.resolve();

  constructor(inner, { backend, fallbackReason }, what) {
    this.inner = inner;
    this.backend = backend;
    this.fallbackReason = fallbackReason;
    this.what = what;
  }

  /**
   * Loads the wasm module, picks the backend, fetches the weights, builds `Wasm` and runs one
   * warm-up inference on `warmUp`; records how long each step took in `timings` (ms).
   */
  static async open(Wasm, options, defaultModel, what, [method, warmUp]) {
    const { backend = "auto", model, wasm, rest } = splitOptions(options, what);
    const marks = [performance.now()];
    await loadWasm(wasm);
    marks.push(performance.now());
    const choice = await resolveBackend(backend);
    marks.push(performance.now());
    const weights = await loadModelBytes(model ?? defaultModel);
    marks.push(performance.now());
    let session;
    try {
      session = new Session(await Wasm.create(weights, choice.backend, rest), choice, what);
    } catch (e) {
      throw wrapError(e);
    }
    marks.push(performance.now());
    try {
      await session.infer(warmUp, method);
    } catch (e) {
      await session.close();
      throw e;
    }
    marks.push(performance.now());
    const step = (i) => marks[i + 1] - marks[i];
    session.timings = {
      wasmMs: step(0),
      deviceMs: step(1),
      weightsMs: step(2),
      buildMs: step(3),
      warmUpMs: step(4),
      totalMs: marks[5] - marks[0],
    };
    return session;
  }

  /** Runs `work(inner)` after everything queued before it. */
  run(work) {
    const result = this.queue.then(async () => {
      if (!this.inner) throw new ClosedError(`the ${this.what} is closed`);
      try {
        return await work(this.inner);
      } catch (e) {
        throw wrapError(e);
      }
    });
    this.queue = result.catch(() => {});
    return result;
  }

  /** Reads `source` and runs `method` on its pixels; adds timing and backend. */
  infer(source, method) {
    return this.run(async (inner) => {
      const start = performance.now();
      const { data, width, height } = this.reader.read(source);
      const result = await inner[method](asBytes(data), width, height);
      return { ...result, inferenceMs: performance.now() - start, backend: this.backend };
    });
  }

  setOptions(partial) {
    return this.run(async (inner) => {
      const { backend, model, wasm, rest } = splitOptions(partial, this.what);
      if (backend !== undefined || model !== undefined || wasm !== undefined) {
        throw new InvalidOptionsError("backend, model and wasm can only be set in create()");
      }
      inner.setOptions(rest);
    });
  }

  async close() {
    await this.queue;
    this.inner?.free();
    this.inner = null;
  }
}

/** A grey frame used to compile every kernel in `create()`. */
function warmUpFrame(size) {
  return { data: new Uint8Array(size * size * 4).fill(128), width: size, height: size };
}

/** Each task object's Session, kept out of reach of callers. */
const sessions = new WeakMap();

/** What the classifier and the detector share: backend facts, options, closing. */
class VisionTask {
  constructor(session) {
    sessions.set(this, session);
  }

  /** `"webgpu"` or `"cpu"`: the backend that runs. */
  get backend() {
    return sessions.get(this).backend;
  }

  /** Why `"auto"` fell back to the CPU, or `null`. */
  get fallbackReason() {
    return sessions.get(this).fallbackReason;
  }

  /**
   * How long `create()` took, in ms: `{ wasmMs, deviceMs, weightsMs, buildMs, warmUpMs, totalMs }`
   * (wasm fetch + compile, backend/device init, weights fetch, model build, warm-up inference).
   */
  get loadTimings() {
    return sessions.get(this).timings;
  }

  /** Changes runtime options for the next calls; on error nothing changes. */
  setOptions(partial) {
    return sessions.get(this).setOptions(partial);
  }

  /** Frees the model. Later calls reject with `ClosedError`. */
  close() {
    return sessions.get(this).close();
  }
}

/**
 * ImageNet-1k classification with EfficientNet-Lite0.
 *
 *     const classifier = await ImageClassifier.create({ backend: "auto", topK: 5 });
 *     const { classes, inferenceMs, backend } = await classifier.classify(video);
 */
export class ImageClassifier extends VisionTask {
  /**
   * Loads the model and warms it up (so the first `classify` is not the slow one).
   * @param {{backend?: "auto"|"webgpu"|"cpu", topK?: number, resize?: "crop"|"stretch",
   *          model?: string|URL|ArrayBuffer|Uint8Array, wasm?: string|URL}} [options]
   */
  static async create(options = {}) {
    return new ImageClassifier(
      await Session.open(Classifier, options, DEFAULT_CLASSIFIER, "classifier", ["classify", warmUpFrame(224)]),
    );
  }

  /**
   * Classifies one image or video frame.
   * @returns {Promise<{classes: {index: number, label: string, score: number}[], inferenceMs: number, backend: string}>}
   */
  classify(source) {
    return sessions.get(this).infer(source, "classify");
  }
}

/**
 * COCO-80 object detection with NanoDet-g-416. Boxes are in source-image pixels, top-left origin.
 *
 *     const detector = await ObjectDetector.create({ scoreThreshold: 0.4 });
 *     const { detections } = await detector.detect(video);
 *     drawDetections(ctx, detections);
 */
export class ObjectDetector extends VisionTask {
  /**
   * Loads the model and warms it up.
   * @param {{backend?: "auto"|"webgpu"|"cpu", scoreThreshold?: number, iouThreshold?: number,
   *          maxResults?: number, categoryAllowlist?: string[]|null, categoryDenylist?: string[],
   *          model?: string|URL|ArrayBuffer|Uint8Array, wasm?: string|URL}} [options]
   */
  static async create(options = {}) {
    return new ObjectDetector(
      await Session.open(Detector, options, DEFAULT_DETECTOR, "detector", ["detect", warmUpFrame(416)]),
    );
  }

  /**
   * Detects objects in one image or video frame.
   * @returns {Promise<{detections: {index: number, label: string, score: number,
   *   box: {x: number, y: number, width: number, height: number}}[], inferenceMs: number, backend: string}>}
   */
  detect(source) {
    return sessions.get(this).infer(source, "detect");
  }
}

/** A colour per class that stays the same from frame to frame (golden-angle hues). */
export function classColor(index) {
  return `hsl(${(index * 137.508) % 360} 85% 50%)`;
}

/**
 * Draws labelled boxes on a 2D canvas context. Line width and font scale with the canvas.
 * Boxes are in source pixels; pass `style.sourceWidth` / `style.sourceHeight` when the canvas
 * is not the source's size.
 * @param {CanvasRenderingContext2D|OffscreenCanvasRenderingContext2D} ctx
 * @param {{index: number, label: string, score: number, box: {x: number, y: number, width: number, height: number}}[]} detections
 * @param {{lineWidth?: number, font?: string, color?: (index: number) => string, showScore?: boolean,
 *          sourceWidth?: number, sourceHeight?: number}} [style]
 */
export function drawDetections(ctx, detections, style = {}) {
  const { width, height } = ctx.canvas;
  const sx = style.sourceWidth ? width / style.sourceWidth : 1;
  const sy = style.sourceHeight ? height / style.sourceHeight : 1;
  const unit = Math.max(1, Math.min(width, height) / 400);
  const lineWidth = style.lineWidth ?? Math.max(2, Math.round(2 * unit));
  const fontPx = Math.max(11, Math.round(12 * unit));
  const color = style.color ?? classColor;
  ctx.save();
  ctx.lineWidth = lineWidth;
  ctx.font = style.font ?? `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const d of detections) {
    const x = d.box.x * sx;
    const y = d.box.y * sy;
    const c = color(d.index);
    ctx.strokeStyle = c;
    ctx.strokeRect(x, y, d.box.width * sx, d.box.height * sy);
    const text = style.showScore === false ? d.label : `${d.label} ${(d.score * 100).toFixed(0)}%`;
    const tw = ctx.measureText(text).width + 2 * lineWidth;
    const th = fontPx + 2 * lineWidth;
    const ty = y - th >= 0 ? y - th : y;
    ctx.fillStyle = c;
    ctx.fillRect(x - lineWidth / 2, ty, tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x + lineWidth / 2, ty + lineWidth);
  }
  ctx.restore();
}
