// The engine: where the wasm module and the models live — inside the worker by default
// (`sightline.worker.js`), or in the page with `worker: false`. Everything except the hop between
// the page and the worker is here, so both modes run the same code. Glue only: resize,
// normalisation, the networks and all post-processing run in Rust.
import initWasm, {
  Classifier,
  Detector,
  checkPrecision,
  defaultPrecision,
  hasTestHooks,
  initWebGpu,
  onPanic,
} from "../../pkg/sightline.js";
// The trainer module's glue is imported statically (a dynamic import would make bundlers split the
// worker, which Vite 7 refuses by default); its wasm is fetched only on the first training.
import initTrainer, { HeadTraining, onPanic as onTrainerPanic } from "../../pkg/sightline_train.js";
import { FILES } from "../../pkg/integrity.js";
import {
  BackendUnavailableError,
  ClosedError,
  InferenceError,
  InvalidOptionsError,
  abortedError,
  ModelLoadError,
  toSightlineError,
} from "./errors.js";
import { abortWatch, download } from "./fetch.js";
import { corsError } from "./frames.js";

/**
 * The package's own runtime modules (weights ship with the package, never from a CDN): the same
 * crate built twice, with WebAssembly SIMD and with relaxed SIMD as well (fused multiply-add in
 * the CPU kernels). Both share the glue `pkg/sightline.js`; the relaxed one is loaded wherever the
 * engine validates relaxed SIMD (Chrome/Edge 114+), the other everywhere else.
 */
const RUNTIME = {
  simd: { url: new URL("../../pkg/sightline_bg.wasm", import.meta.url).href, file: "sightline_bg.wasm" },
  relaxed: {
    url: new URL("../../pkg/sightline_relaxed_bg.wasm", import.meta.url).href,
    file: "sightline_relaxed_bg.wasm",
  },
};

/**
 * A module of one function, `f32x4.relaxed_madd` of three zero vectors: it validates exactly where
 * the engine implements relaxed SIMD.
 */
const RELAXED_SIMD_PROBE = new Uint8Array([
  // "\0asm", version 1; type section: one type, () -> v128; function section: one function of it
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  // code section: one body of 59 bytes, no locals, three v128.const 0, f32x4.relaxed_madd (0xfd 0x105), end
  0x0a, 0x3d, 0x01, 0x3b, 0x00,
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array(16).fill(0)]),
  0xfd, 0x85, 0x02, 0x0b,
]);

/** Whether this engine implements relaxed SIMD (WebAssembly.validate of the probe above). */
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}
/**
 * The trainer module: the same crate built with burn's autodiff and optimizers, loaded only when a
 * page trains a head (the runtime every page loads stays without them).
 */
const TRAIN_WASM = new URL("../../pkg/sightline_train_bg.wasm", import.meta.url).href;

/**
 * What each task needs: its wasm class, the weights the package ships (by precision; each URL is
 * written out so that bundlers copy the file), method and warm-up input side.
 */
const TASKS = {
  classifier: {
    Wasm: Classifier,
    model: "efficientnet-lite0",
    shipped: { f16: new URL("../../models/efficientnet-lite0.f16.safetensors", import.meta.url).href },
    method: "classify",
    warmUpSide: 224,
  },
  detector: {
    Wasm: Detector,
    model: "nanodet-g-416",
    shipped: { f16: new URL("../../models/nanodet-g-416.f16.safetensors", import.meta.url).href },
    method: "detect",
    warmUpSide: 416,
  },
};

/** How long to wait for `navigator.gpu.requestAdapter()` before giving up (it can hang). */
const ADAPTER_TIMEOUT_MS = 10_000;

/** Adapters that rasterise in software: on them sightline's CPU path is faster (DESIGN.md). */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render|\bwarp\b/i;

/** Options the engine handles itself; every other key goes to (and is validated by) Rust. */
const LOADER_KEYS = ["backend", "model", "wasm", "precision", "cache", "head", "backbone"];

/** The largest head file accepted (1000 classes × 1280 f32 weights, plus labels): 6 MB. */
const MAX_HEAD_BYTES = 6 * 1024 * 1024;

/** Lets the event loop run (messages, rendering) between two training epochs. */
const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

/** `{ adapter, problem }`: the WebGPU adapter, or why there is none. Never throws. */
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

/**
 * Runs `init()` while recording the GPUDevice that wgpu requests from the browser, so that
 * sightline can watch `device.lost` (wgpu does not surface it).
 */
async function captureDevice(init) {
  const proto = globalThis.GPUAdapter?.prototype;
  if (!proto) return { result: await init(), device: null };
  const original = proto.requestDevice;
  let device = null;
  proto.requestDevice = async function (...args) {
    device = await original.apply(this, args);
    return device;
  };
  try {
    return { result: await init(), device };
  } finally {
    proto.requestDevice = original;
  }
}

function splitOptions(options) {
  if (options == null) return { rest: {} };
  if (typeof options !== "object" || Array.isArray(options)) throw new InvalidOptionsError("options must be an object");
  const loader = {};
  const rest = {};
  for (const [key, value] of Object.entries(options)) (LOADER_KEYS.includes(key) ? loader : rest)[key] = value;
  return { ...loader, rest };
}

/** Throws the `create()` abort error once `signal` has fired. */
function stopIfAborted(signal) {
  if (signal?.aborted) throw abortedError(signal);
}

/** The file name at the end of `url`, the key of FILES. */
const fileName = (url) => new URL(url).pathname.split("/").pop();

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
        throw corsError(e);
      }
      throw e;
    } finally {
      image.close();
    }
  }
}

/**
 * One wasm module instance and the tasks built on it. `onFault(kind, message)` hears of faults
 * that outlive a call: `"panic"` (the instance is dead: every later call into it is refused) and
 * `"device-lost"` (the WebGPU device is gone; the CPU still works).
 */
export class Engine {
  #wasm;
  #ready = null;
  #gpu = null;
  #device = null;
  #deviceLost = null;
  #tasks = new Map();
  /** What `create` answered, per task (a shared-backbone classifier reports its backbone's backend). */
  #info = new Map();
  #nextId = 1;
  #reader = new FrameReader();
  #exports = null;
  #panicked = null;
  /** The trainer module, once loaded (a promise; reset if loading fails), and its panic, if any. */
  #trainer = null;
  #trainerCrash = null;
  #onFault;

  /**
   * @param {string|Uint8Array|ArrayBuffer|undefined} wasm the wasm module: a URL or its bytes
   * @param {(kind: "panic"|"device-lost", message: string) => void} [onFault]
   */
  constructor(wasm = undefined, onFault = () => {}) {
    this.#wasm = typeof wasm === "string" || wasm instanceof URL ? String(wasm) : wasm;
    this.#onFault = onFault;
  }

  /** Bytes of the wasm module's linear memory (0 before it is loaded). */
  wasmBytes() {
    return this.#panicked ? 0 : (this.#exports?.memory?.buffer.byteLength ?? 0);
  }

  /**
   * Loads and compiles the wasm module once, for every task; reports progress as stage "wasm" to
   * the task that started it. Not cancelled by a task's signal (another task may be waiting).
   */
  #load({ cache, progress }) {
    this.#ready ??= (async () => {
      // No module given: the package's own, with relaxed SIMD where the engine has it.
      let source = this.#wasm === undefined ? RUNTIME[hasRelaxedSimd() ? "relaxed" : "simd"].url : this.#wasm;
      if (typeof source === "string") {
        const shipped = Object.values(RUNTIME).find((m) => m.url === source);
        const { bytes } = await download(source, {
          what: "the sightline wasm module",
          sha256: shipped ? FILES[shipped.file]?.sha256 : null,
          cache,
          onBytes: (loaded, total, fromCache) => progress("wasm", loaded, total, fromCache),
        });
        source = bytes;
      }
      try {
        this.#exports = await initWasm({ module_or_path: source });
      } catch (e) {
        throw new ModelLoadError(`could not compile the sightline wasm module: ${e.message}`, { cause: e });
      }
      onPanic((message) => {
        this.#panicked = message;
        this.#onFault("panic", message);
      });
    })().catch((e) => {
      this.#ready = null;
      throw toSightlineError(e);
    });
    return this.#ready;
  }

  /**
   * Loads the trainer module once (integrity-checked like the runtime). A panic in it loses only
   * training (the glue cannot instantiate a module twice): the runtime and its tasks carry on.
   */
  #loadTrainer() {
    if (this.#trainerCrash) {
      return Promise.reject(
        new InferenceError(`sightline's trainer module crashed (${this.#trainerCrash}); reload the page to train again`),
      );
    }
    this.#trainer ??= (async () => {
      const { bytes } = await download(TRAIN_WASM, {
        what: "the sightline trainer module",
        sha256: FILES["sightline_train_bg.wasm"]?.sha256,
        cache: true,
      });
      try {
        await initTrainer({ module_or_path: bytes });
      } catch (e) {
        throw new ModelLoadError(`could not compile the sightline trainer module: ${e.message}`, { cause: e });
      }
      onTrainerPanic((message) => {
        this.#trainerCrash = message;
      });
      return { HeadTraining };
    })().catch((e) => {
      this.#trainer = null;
      throw toSightlineError(e);
    });
    return this.#trainer;
  }

  /** `{ adapter, problem }`, asked once per engine. */
  #webGpu() {
    this.#gpu ??= findAdapter();
    return this.#gpu;
  }

  /** `{ backend, backendReason, fallbackReason }` for the requested backend. */
  async #chooseBackend(requested) {
    if (requested === "cpu") return { backend: "cpu", backendReason: 'backend "cpu" was requested', fallbackReason: null };
    const { adapter, problem } = this.#deviceLost
      ? { problem: `the WebGPU device was lost (${this.#deviceLost})` }
      : await this.#webGpu();
    if (problem) {
      if (requested === "webgpu") throw new BackendUnavailableError(problem);
      return { backend: "cpu", backendReason: problem, fallbackReason: problem };
    }
    const software = softwareAdapter(adapter);
    if (requested === "auto" && software) {
      return { backend: "cpu", backendReason: `WebGPU adapter is ${software}; the CPU path is faster`, fallbackReason: null };
    }
    try {
      const { device } = await captureDevice(() => initWebGpu());
      if (device && !this.#device) this.#watch(device);
    } catch (e) {
      const reason = `WebGPU device initialisation failed: ${e.message}`;
      if (requested === "webgpu") throw new BackendUnavailableError(reason, { cause: e });
      return { backend: "cpu", backendReason: reason, fallbackReason: reason };
    }
    const why = requested === "webgpu" ? 'backend "webgpu" was requested' : "WebGPU adapter is a hardware GPU";
    return { backend: "webgpu", backendReason: `${why} (${describeAdapter(adapter)})`, fallbackReason: null };
  }

  /** Watches the WebGPU device: once lost, it is never used again by this engine. */
  #watch(device) {
    this.#device = device;
    device.lost.then((info) => {
      this.#deviceLost = info.message || info.reason || "no reason given";
      this.#onFault("device-lost", this.#deviceLost);
    });
  }

  /** Fails at once when the wasm instance has panicked (calling into it again would be unsafe). */
  #alive() {
    if (this.#panicked) {
      throw new InferenceError(
        `sightline's wasm instance crashed (${this.#panicked}); create a new instance (worker mode recovers by itself)`,
      );
    }
  }

  /**
   * Loads a task and warms it up. Options are checked before anything large is fetched.
   * `onProgress({ stage, loaded, total, fromCache })` hears of "wasm", "weights", "compile" and
   * "warmup", in that order; `signal` cancels the downloads.
   * @returns {{ id: number, backend: string, backendReason: string, fallbackReason: string|null,
   *   precision: string, timings: object }}
   */
  async create(kind, options, { onProgress = () => {}, signal } = {}) {
    this.#alive();
    const task = TASKS[kind];
    const { backend = "auto", model, precision, cache = true, head, backbone, rest } = splitOptions(options);
    if (head !== undefined && kind !== "classifier") throw new InvalidOptionsError("only a classifier takes a head");
    const isHeadUrl = typeof head === "string" || head instanceof URL;
    if (head !== undefined && !isHeadUrl && !(head instanceof Uint8Array) && !(head instanceof ArrayBuffer)) {
      throw new InvalidOptionsError("head must be a URL, a string URL, an ArrayBuffer or a Uint8Array");
    }
    if (backbone !== undefined) return this.#withHead(backbone, head, rest);
    if (!["auto", "webgpu", "cpu"].includes(backend)) {
      throw new InvalidOptionsError(`backend must be "auto", "webgpu" or "cpu", got ${JSON.stringify(backend)}`);
    }
    const isUrl = typeof model === "string" || model instanceof URL;
    if (model !== undefined && !isUrl && !(model instanceof Uint8Array) && !(model instanceof ArrayBuffer)) {
      throw new InvalidOptionsError("model must be a URL, a string URL, an ArrayBuffer or a Uint8Array");
    }
    if (typeof cache !== "boolean") throw new InvalidOptionsError(`cache must be true or false, got ${JSON.stringify(cache)}`);
    const seen = new Set();
    const progress = (stage, loaded, total, fromCache = false) => {
      seen.add(stage);
      onProgress({ stage, loaded, total, fromCache });
    };
    const marks = [performance.now()];
    const abort = abortWatch(signal);
    try {
      await Promise.race([this.#load({ cache, progress }), abort.promise]);
    } finally {
      abort.dispose();
    }
    this.#alive();
    if (!seen.has("wasm")) progress("wasm", 1, 1, true); // loaded earlier, for another task
    marks.push(performance.now());
    wrap(() => task.Wasm.checkOptions(rest));
    if (precision !== undefined) {
      if (typeof precision !== "string") throw new InvalidOptionsError("precision must be \"int8\", \"f16\" or \"f32\"");
      wrap(() => checkPrecision(precision));
    }
    const variant = precision ?? defaultPrecision();
    const url = model === undefined ? task.shipped[variant] : isUrl ? new URL(String(model)).href : null;
    if (model === undefined && !url) {
      throw new InvalidOptionsError(
        `this package ships the ${Object.keys(task.shipped).join(", ")} weights of ${task.model}, not ${variant}: ` +
          `make them with \`python3 scripts/fetch_weights.py\` and pass { model: url }`,
      );
    }
    const choice = await this.#chooseBackend(backend);
    this.#alive();
    marks.push(performance.now());
    let weights;
    let weightsCached = false;
    if (url) {
      const shipped = model === undefined;
      ({ bytes: weights, fromCache: weightsCached } = await download(url, {
        what: "the weights",
        sha256: shipped ? FILES[fileName(url)]?.sha256 : null,
        cache: cache && shipped,
        signal,
        onBytes: (loaded, total, fromCache) => progress("weights", loaded, total, fromCache),
      }));
      this.#alive(); // a panic elsewhere while this downloaded
    } else {
      weights = model instanceof Uint8Array ? model : new Uint8Array(model);
      progress("weights", weights.byteLength, weights.byteLength, false);
    }
    marks.push(performance.now());
    let headBytes = null;
    if (head !== undefined) {
      headBytes = isHeadUrl
        ? (await download(new URL(String(head)).href, { what: "the head", maxBytes: MAX_HEAD_BYTES, signal })).bytes
        : head instanceof Uint8Array
          ? head
          : new Uint8Array(head);
    }
    progress("compile", 0, 1);
    let inner = await wrapAsync(() => task.Wasm.create(weights, choice.backend, rest, precision));
    if (headBytes) {
      try {
        const custom = wrap(() => inner.withHead(headBytes));
        inner.free();
        inner = custom;
      } catch (e) {
        inner.free();
        throw e;
      }
    }
    progress("compile", 1, 1);
    marks.push(performance.now());
    const id = this.#nextId++;
    this.#tasks.set(id, { inner, kind });
    progress("warmup", 0, 1);
    try {
      stopIfAborted(signal); // it may have fired after the downloads, while building
      const side = task.warmUpSide;
      // On the CPU two frames: the first makes the layers' caches (the Winograd filters) and sets
      // the engine optimising the kernels it ran, the second runs that code, so the caller's first
      // frame is a warm one (NanoDet-g's first result after create() measured 1.39× a warm frame
      // after one, 1.06× after two: scripts/bench/first.mjs). On WebGPU one: it compiles the
      // kernels, and another frame would cost seconds on a software adapter.
      const grey = { data: new Uint8Array(side * side * 4).fill(128), width: side, height: side };
      const frames = choice.backend === "cpu" ? 2 : 1;
      for (let i = 0; i < frames; i++) {
        await this.run(id, grey);
        stopIfAborted(signal);
      }
    } catch (e) {
      this.close(id);
      throw e;
    }
    progress("warmup", 1, 1);
    marks.push(performance.now());
    const step = (i) => marks[i + 1] - marks[i];
    const timings = {
      wasmMs: step(0),
      deviceMs: step(1),
      weightsMs: step(2),
      buildMs: step(3),
      warmUpMs: step(4),
      totalMs: marks[5] - marks[0],
      weightsFromCache: weightsCached,
    };
    const created = { id, ...choice, precision: inner.precision, timings };
    this.#info.set(id, created);
    return created;
  }

  /**
   * A classifier that shares task `backbone`'s loaded network, with `head` (a head file's bytes)
   * in place of its classifier layer: nothing is downloaded or rebuilt.
   */
  async #withHead(backbone, head, rest) {
    const base = this.#task(backbone);
    if (base.kind !== "classifier") throw new InvalidOptionsError("only a classifier shares its backbone");
    if (!(head instanceof Uint8Array)) throw new InvalidOptionsError("a shared-backbone classifier needs the head's bytes");
    const start = performance.now();
    const inner = wrap(() => base.inner.withHead(head));
    try {
      wrap(() => inner.setOptions(rest));
    } catch (e) {
      inner.free();
      throw e;
    }
    const id = this.#nextId++;
    this.#tasks.set(id, { inner, kind: "classifier" });
    const info = this.#info.get(backbone) ?? {};
    const ms = performance.now() - start;
    const timings = { wasmMs: 0, deviceMs: 0, weightsMs: 0, buildMs: ms, warmUpMs: 0, totalMs: ms, weightsFromCache: true };
    const created = { ...info, id, precision: inner.precision, timings };
    this.#info.set(id, created);
    return created;
  }

  #task(id) {
    this.#alive();
    const task = this.#tasks.get(id);
    if (!task) throw new ClosedError("this sightline object is closed");
    return task;
  }

  /**
   * Runs task `id` on `frame` (see `frames.js`); resolves to its result. `call` picks what to run
   * (default: the task's own method): `{ op: "embed", augment }` resolves to a Float32Array of
   * 1280 values per embedding, `{ op: "explain", index }` to an explanation (classifier only).
   */
  async run(id, frame, call = null) {
    try {
      const { inner, kind } = this.#task(id);
      const op = call?.op ?? TASKS[kind].method;
      if (op !== TASKS[kind].method && kind !== "classifier") throw new InvalidOptionsError(`a ${kind} cannot ${op}`);
      const { data, width, height } = this.#reader.read(frame);
      if (op === "embed") return await wrapAsync(() => inner.embed(data, width, height, call.augment === true));
      if (op === "explain") {
        const explanation = JSON.parse(await wrapAsync(() => inner.explain(data, width, height, call.index ?? undefined)));
        return { ...explanation, grid: Float32Array.from(explanation.grid) };
      }
      if (op !== TASKS[kind].method) throw new InvalidOptionsError(`unknown call ${JSON.stringify(op)}`);
      // Rust hands results over as one JSON string (one crossing, whatever their number).
      return JSON.parse(await wrapAsync(() => inner[op](data, width, height)));
    } finally {
      frame.image?.close();
    }
  }

  /**
   * Trains a head on labelled embeddings (`counts[i]` embeddings of `labels[i]`, packed in
   * `embeddings`), one epoch at a time, letting the event loop run between epochs;
   * `onProgress({ epoch, loss, accuracy })` hears of each. Resolves to
   * `{ loss, trainAccuracy, head }` (`head`: the head file's bytes).
   */
  async train({ labels, counts, embeddings, options }, onProgress = () => {}) {
    this.#alive();
    const { HeadTraining } = await this.#loadTrainer();
    const training = wrap(() => new HeadTraining(labels, Uint32Array.from(counts), embeddings, options));
    try {
      for (;;) {
        const epoch = wrap(() => training.step());
        if (epoch === undefined) break;
        onProgress(JSON.parse(epoch));
        await breathe();
        this.#alive();
      }
      const report = JSON.parse(wrap(() => training.finish()));
      return { ...report, head: wrap(() => training.headBytes()) };
    } finally {
      try {
        training.free();
      } catch {
        // The trainer module trapped (a panic): the instance is gone, and the next training loads a new one.
      }
    }
  }

  /**
   * Changes some runtime options of task `id`; on error nothing changes. With the test hooks
   * compiled in, `testLoseDevice: true` destroys the WebGPU device (to test device loss).
   */
  setOptions(id, options) {
    const { inner } = this.#task(id);
    const { rest, ...loader } = splitOptions(options);
    const fixed = Object.keys(loader);
    if (fixed.length) throw new InvalidOptionsError(`${fixed.join(", ")} can only be set in create()`);
    if ("testLoseDevice" in rest && hasTestHooks()) {
      delete rest.testLoseDevice;
      this.#device?.destroy();
    }
    wrap(() => inner.setOptions(rest));
  }

  /** Frees task `id` (idempotent; after a crash there is nothing left to free). */
  close(id) {
    const task = this.#tasks.get(id);
    this.#tasks.delete(id);
    this.#info.delete(id);
    if (task && !this.#panicked) task.inner.free();
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
