// The engine: where the wasm module and the models live — inside the worker by default
// (`sightline.worker.js`), or in the page with `worker: false`. Everything except the hop between
// the page and the worker is here, so both modes run the same code. Glue only: resize,
// normalisation, the networks and all post-processing run in Rust.
import initWasm, { Classifier, Detector, initWebGpu } from "../../pkg/sightline.js";
import {
  BackendUnavailableError,
  ClosedError,
  InvalidImageError,
  InvalidOptionsError,
  ModelLoadError,
  toSightlineError,
} from "./errors.js";

/** The package's own files (weights ship with the package, never from a CDN). */
export const DEFAULT_WASM = new URL("../../pkg/sightline_bg.wasm", import.meta.url).href;

/** What each task needs: its wasm class, default weights, method and warm-up input side. */
const TASKS = {
  classifier: {
    Wasm: Classifier,
    model: new URL("../../models/efficientnet-lite0.safetensors", import.meta.url).href,
    method: "classify",
    warmUpSide: 224,
  },
  detector: {
    Wasm: Detector,
    model: new URL("../../models/nanodet-g-416.safetensors", import.meta.url).href,
    method: "detect",
    warmUpSide: 416,
  },
};

/** How long to wait for `navigator.gpu.requestAdapter()` before giving up (it can hang). */
const ADAPTER_TIMEOUT_MS = 10_000;

/** Adapters that rasterise in software: on them sightline's CPU path is faster (DESIGN.md). */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render|\bwarp\b/i;

/** Options the engine handles itself; every other key goes to (and is validated by) Rust. */
const LOADER_KEYS = ["backend", "model", "wasm"];

/** `{ adapter, problem }`: the page's WebGPU adapter, or why there is none. Never throws. */
async function findAdapter() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return { problem: "WebGPU is not available here (navigator.gpu is missing)" };
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ADAPTER_TIMEOUT_MS);
  });
  try {
    const adapter = await Promise.race([gpu.requestAdapter(), timeout]);
    if (adapter === "timeout") return { problem: "WebGPU did not answer: requestAdapter() timed out" };
    if (!adapter) return { problem: "WebGPU found no suitable GPU adapter (requestAdapter() returned null)" };
    return { adapter };
  } catch (e) {
    return { problem: `WebGPU requestAdapter() failed: ${e.message}` };
  } finally {
    clearTimeout(timer);
  }
}

/** A short description of an adapter, e.g. "google swiftshader". */
function describeAdapter(adapter) {
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ") || "unknown";
}

/** Why `adapter` is a software or fallback adapter, or `null` for a hardware GPU. */
function softwareAdapter(adapter) {
  const name = describeAdapter(adapter);
  if (SOFTWARE_ADAPTER.test(name)) return `a software rasteriser (${name})`;
  if (adapter.info?.isFallbackAdapter || adapter.isFallbackAdapter) return `a fallback adapter (${name})`;
  return null;
}

function splitOptions(options) {
  if (options == null) return { rest: {} };
  if (typeof options !== "object" || Array.isArray(options)) throw new InvalidOptionsError("options must be an object");
  const loader = {};
  const rest = {};
  for (const [key, value] of Object.entries(options)) (LOADER_KEYS.includes(key) ? loader : rest)[key] = value;
  return { ...loader, rest };
}

async function fetchModel(model) {
  if (model instanceof Uint8Array) return model;
  if (model instanceof ArrayBuffer) return new Uint8Array(model);
  let response;
  try {
    response = await fetch(model);
  } catch (e) {
    throw new ModelLoadError(`could not fetch the weights from ${model}: ${e.message}`, { cause: e });
  }
  if (!response.ok) throw new ModelLoadError(`could not fetch the weights from ${model}: HTTP ${response.status}`);
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw new ModelLoadError(`could not read the weights from ${model}: ${e.message}`, { cause: e });
  }
}

/** Reads frames into RGBA pixels, reusing one canvas (cleared before every frame). */
class FrameReader {
  #canvas = null;
  #ctx = null;

  /** `{ data, width, height }` of `frame`; closes the frame's image. */
  read(frame) {
    if (!frame.image) return frame;
    const { image, width, height } = frame;
    try {
      if (!this.#canvas) {
        this.#canvas =
          typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height) : document.createElement("canvas");
        this.#ctx = this.#canvas.getContext("2d", { willReadFrequently: true });
      }
      if (this.#canvas.width !== width || this.#canvas.height !== height) {
        this.#canvas.width = width;
        this.#canvas.height = height;
      }
      // Cleared every time: a transparent source must not show the previous frame through.
      this.#ctx.clearRect(0, 0, width, height);
      this.#ctx.drawImage(image, 0, 0, width, height);
      return { data: this.#ctx.getImageData(0, 0, width, height).data, width, height };
    } catch (e) {
      if (e?.name === "SecurityError") {
        // The canvas is tainted for good: drop it so that the next (clean) frame gets a new one.
        this.#canvas = null;
        this.#ctx = null;
        throw new InvalidImageError(
          "the image is cross-origin and its server does not allow reading its pixels (CORS): serve it with " +
            "Access-Control-Allow-Origin and load it with crossOrigin = \"anonymous\"",
          { cause: e },
        );
      }
      throw e;
    } finally {
      image.close();
    }
  }
}

/** One wasm module instance and the tasks built on it. */
export class Engine {
  #wasmUrl;
  #ready = null;
  #gpu = null;
  #tasks = new Map();
  #nextId = 1;
  #reader = new FrameReader();
  #exports = null;

  /** @param {string|Uint8Array|ArrayBuffer} wasm the wasm module this engine runs: a URL or its bytes */
  constructor(wasm = DEFAULT_WASM) {
    this.#wasmUrl = typeof wasm === "string" || wasm instanceof URL ? String(wasm) : wasm;
  }

  /** The wasm module's URL, or its bytes. */
  get wasmSource() {
    return this.#wasmUrl;
  }

  /** Bytes of the wasm module's linear memory (0 before it is loaded). */
  wasmBytes() {
    return this.#exports?.memory?.buffer.byteLength ?? 0;
  }

  #load() {
    this.#ready ??= initWasm({ module_or_path: this.#wasmUrl }).then(
      (exports) => {
        this.#exports = exports;
      },
      (e) => {
        this.#ready = null;
        const from = typeof this.#wasmUrl === "string" ? ` from ${this.#wasmUrl}` : "";
        throw new ModelLoadError(`could not load the sightline wasm module${from}: ${e.message}`, {
          cause: e,
        });
      },
    );
    return this.#ready;
  }

  /** `{ adapter, problem }`, asked once per engine; the device is created on first use. */
  #webGpu() {
    this.#gpu ??= findAdapter();
    return this.#gpu;
  }

  /** `{ backend, backendReason, fallbackReason }` for the requested backend. */
  async #chooseBackend(requested) {
    if (requested === "cpu") return { backend: "cpu", backendReason: 'backend "cpu" was requested', fallbackReason: null };
    const { adapter, problem } = await this.#webGpu();
    if (problem) {
      if (requested === "webgpu") throw new BackendUnavailableError(problem);
      return { backend: "cpu", backendReason: problem, fallbackReason: problem };
    }
    const software = softwareAdapter(adapter);
    if (requested === "auto" && software) {
      return { backend: "cpu", backendReason: `WebGPU adapter is ${software}; the CPU path is faster`, fallbackReason: null };
    }
    try {
      await initWebGpu();
    } catch (e) {
      const reason = `WebGPU device initialisation failed: ${e.message}`;
      if (requested === "webgpu") throw new BackendUnavailableError(reason, { cause: e });
      return { backend: "cpu", backendReason: reason, fallbackReason: reason };
    }
    const why = requested === "webgpu" ? 'backend "webgpu" was requested' : "WebGPU adapter is a hardware GPU";
    return { backend: "webgpu", backendReason: `${why} (${describeAdapter(adapter)})`, fallbackReason: null };
  }

  /**
   * Loads a task and warms it up. Options are checked before anything large is fetched.
   * @returns {{ id: number, backend: string, backendReason: string, fallbackReason: string|null, timings: object }}
   */
  async create(kind, options) {
    const task = TASKS[kind];
    const { backend = "auto", model = task.model, rest } = splitOptions(options);
    if (!["auto", "webgpu", "cpu"].includes(backend)) {
      throw new InvalidOptionsError(`backend must be "auto", "webgpu" or "cpu", got ${JSON.stringify(backend)}`);
    }
    const isUrl = typeof model === "string" || model instanceof URL;
    if (!isUrl && !(model instanceof Uint8Array) && !(model instanceof ArrayBuffer)) {
      throw new InvalidOptionsError("model must be a URL, a string URL, an ArrayBuffer or a Uint8Array");
    }
    const marks = [performance.now()];
    await this.#load();
    marks.push(performance.now());
    wrap(() => task.Wasm.checkOptions(rest));
    const choice = await this.#chooseBackend(backend);
    marks.push(performance.now());
    const weights = await fetchModel(isUrl ? String(model) : model);
    marks.push(performance.now());
    const inner = await wrapAsync(() => task.Wasm.create(weights, choice.backend, rest));
    marks.push(performance.now());
    const id = this.#nextId++;
    this.#tasks.set(id, { inner, kind });
    try {
      const side = task.warmUpSide;
      await this.run(id, { data: new Uint8Array(side * side * 4).fill(128), width: side, height: side });
    } catch (e) {
      this.close(id);
      throw e;
    }
    marks.push(performance.now());
    const step = (i) => marks[i + 1] - marks[i];
    const timings = {
      wasmMs: step(0),
      deviceMs: step(1),
      weightsMs: step(2),
      buildMs: step(3),
      warmUpMs: step(4),
      totalMs: marks[5] - marks[0],
    };
    return { id, ...choice, timings };
  }

  #task(id) {
    const task = this.#tasks.get(id);
    if (!task) throw new ClosedError("this sightline object is closed");
    return task;
  }

  /** Runs task `id` on `frame` (see `frames.js`); resolves to its result. */
  async run(id, frame) {
    try {
      const { inner, kind } = this.#task(id);
      const { data, width, height } = this.#reader.read(frame);
      return await wrapAsync(() => inner[TASKS[kind].method](data, width, height));
    } finally {
      frame.image?.close();
    }
  }

  /** Changes some runtime options of task `id`; on error nothing changes. */
  setOptions(id, options) {
    const { inner } = this.#task(id);
    const { rest, ...loader } = splitOptions(options);
    const fixed = Object.keys(loader);
    if (fixed.length) throw new InvalidOptionsError(`${fixed.join(", ")} can only be set in create()`);
    wrap(() => inner.setOptions(rest));
  }

  /** Frees task `id` (idempotent). */
  close(id) {
    this.#tasks.get(id)?.inner.free();
    this.#tasks.delete(id);
  }

  /** How many tasks are open. */
  get size() {
    return this.#tasks.size;
  }
}

function wrap(f) {
  try {
    return f();
  } catch (e) {
    throw toSightlineError(e);
  }
}

async function wrapAsync(f) {
  try {
    return await f();
  } catch (e) {
    throw toSightlineError(e);
  }
}
