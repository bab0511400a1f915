// sightline: image classification and object detection in the browser, on WebGPU (burn-wgpu in
// WebAssembly) or the CPU, in a module worker by default. This file is the public API: it
// snapshots sources into frames, keeps one frame in flight per object, and hands calls to a host
// (`hosts.js`: the worker, or the page with `worker: false`). Resize, normalisation, the
// networks and all post-processing run in Rust.
import { ClosedError, InvalidOptionsError, abortedError, toSightlineError } from "./errors.js";
import { release, snapshot } from "./frames.js";
import { DEFAULT_TIMEOUT_MS, PageHost, WorkerHost, liveHosts } from "./hosts.js";
import { Watcher } from "./watch.js";

export {
  BackendUnavailableError,
  ClosedError,
  InferenceError,
  InvalidImageError,
  InvalidOptionsError,
  ModelLoadError,
  SightlineError,
} from "./errors.js";
export { MAX_PIXELS, MAX_SIDE } from "./frames.js";
export { classColor, drawDetections, drawHeatmap } from "./draw.js";

/**
 * Memory held by sightline's wasm instances (the worker's and/or the page's): `{ wasmBytes }`,
 * their linear memory as of the last reply (GPU buffers are not included). 0 before the first
 * `create()` and after the last `close()`. Useful to check for leaks.
 */
export function memoryUsage() {
  let wasmBytes = 0;
  for (const host of liveHosts) wasmBytes += host.wasmBytes;
  return { wasmBytes };
}

const isNode = () => typeof globalThis.process?.versions?.node === "string" && typeof globalThis.window === "undefined";

/** A URL option resolved against the page (the worker's own base URL would be wrong). */
function absolute(url) {
  if (typeof url !== "string" && !(url instanceof URL)) return url;
  try {
    return new URL(url, globalThis.location?.href).href;
  } catch {
    throw new InvalidOptionsError(`not a valid URL: ${JSON.stringify(String(url))}`);
  }
}

/**
 * Splits the options the page side handles (`worker`, `timeoutMs`, and the callbacks that cannot
 * cross to a worker) from those the engine handles, after checking them.
 */
function clientOptions(options) {
  if (options == null) options = {};
  if (typeof options !== "object" || Array.isArray(options)) throw new InvalidOptionsError("options must be an object");
  const { worker = typeof Worker !== "undefined", timeoutMs = DEFAULT_TIMEOUT_MS, ...rest } = options;
  if (typeof worker !== "boolean") throw new InvalidOptionsError(`worker must be true or false, got ${JSON.stringify(worker)}`);
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new InvalidOptionsError(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  }
  if (rest.onProgress !== undefined && typeof rest.onProgress !== "function") {
    throw new InvalidOptionsError("onProgress must be a function");
  }
  if (rest.signal !== undefined && !(typeof AbortSignal !== "undefined" && rest.signal instanceof AbortSignal)) {
    throw new InvalidOptionsError("signal must be an AbortSignal");
  }
  if (rest.signal?.aborted) throw abortedError(rest.signal);
  if (isNode() && (rest.wasm === undefined || typeof rest.model === "string" || rest.model instanceof URL)) {
    throw new InvalidOptionsError(
      "sightline runs in the browser; in Node.js pass { wasm, model } as bytes (e.g. fs.readFileSync of " +
        "pkg/sightline_bg.wasm and models/*.safetensors) and raw { data, width, height } pixels",
    );
  }
  if ("model" in rest) rest.model = absolute(rest.model);
  if ("head" in rest) rest.head = absolute(rest.head);
  if ("wasm" in rest) rest.wasm = absolute(rest.wasm);
  return { worker, timeoutMs, engineOptions: rest };
}

/** One task instance: its host, its handle there, and a queue that keeps one frame in flight. */
class Session {
  #host;
  #handle;
  #timeoutMs;
  #queue = Promise.resolve();
  #closing = null;
  #freed = false;
  #watchers = new Set();
  /** The task's facts as they were when it closed (the host forgets it then). */
  #final = null;

  /** The engine options it was created with (a derived classifier starts from them). */
  #options;

  constructor(host, handle, timeoutMs, what, options) {
    this.#host = host;
    this.#handle = handle;
    this.#timeoutMs = timeoutMs;
    this.what = what;
    this.#options = options;
  }

  /** What the host knows of the task: backend, reasons, precision, timings (after a restart, the new ones). */
  get info() {
    return this.#final ?? this.#host.info(this.#handle);
  }

  /** Creates task `kind` ("classifier" or "detector") on the host `options` ask for. */
  static async open(kind, options) {
    const { worker, timeoutMs, engineOptions } = clientOptions(options);
    const host = worker ? WorkerHost.for(engineOptions.wasm) : PageHost.for(engineOptions.wasm);
    const handle = await host.create(kind, engineOptions);
    if (engineOptions.signal?.aborted) {
      // It fired as loading finished (in a worker, the abort message can cross the reply): the
      // caller asked to stop, so the task is freed and create() rejects.
      await host.close(handle);
      throw abortedError(engineOptions.signal);
    }
    return new Session(host, handle, timeoutMs, kind, engineOptions);
  }

  /** A classifier on the same host that shares this one's network, with `head` (a head file). */
  derive(head) {
    if (this.#closing) return Promise.reject(this.#closedError());
    return this.#enqueue(async () => {
      const { onProgress, signal, ...base } = this.#options;
      const options = { ...base, head };
      const handle = await this.#host.create("classifier", { ...options, share: this.#handle });
      return new Session(this.#host, handle, this.#timeoutMs, "classifier", options);
    });
  }

  /** Trains a head on the host (see `Engine.train`), in turn with this task's other calls. */
  train(payload, onProgress) {
    if (this.#closing) return Promise.reject(this.#closedError());
    return this.#enqueue(() => this.#host.train(this.#handle, payload, onProgress));
  }

  #closedError() {
    return new ClosedError(`the ${this.what} is closed`);
  }

  /** Runs `job()` after everything queued before it. */
  #enqueue(job) {
    const result = this.#queue.then(() => {
      if (this.#freed) throw this.#closedError();
      return job();
    });
    this.#queue = result.catch(() => {});
    return result.catch((e) => {
      throw toSightlineError(e);
    });
  }

  /**
   * Snapshots `source` now, then runs the task on it in turn; adds timing and backend. With
   * `call` (see `Engine.run`), resolves to that call's own result instead.
   */
  infer(source, call = null) {
    if (this.#closing) return Promise.reject(this.#closedError());
    let frame;
    try {
      frame = snapshot(source);
    } catch (e) {
      return Promise.reject(toSightlineError(e));
    }
    frame.catch(() => {}); // awaited in turn below
    return this.#enqueue(async () => {
      const start = performance.now();
      const ready = await frame;
      if (this.#freed) {
        release(ready);
        throw this.#closedError();
      }
      const result = await this.#host.run(this.#handle, ready, this.#timeoutMs, call);
      if (call) return result;
      return { ...result, inferenceMs: performance.now() - start, backend: this.info.backend };
    }).finally(() => frame.then(release, () => {}));
  }

  setOptions(partial) {
    if (this.#closing) return Promise.reject(this.#closedError());
    const fixed = ["worker", "timeoutMs", "onProgress", "signal"].filter((k) => partial && typeof partial === "object" && k in partial);
    if (fixed.length) return Promise.reject(new InvalidOptionsError(`${fixed.join(", ")} can only be set in create()`));
    return this.#enqueue(() => this.#host.setOptions(this.#handle, partial));
  }

  watch(video, onResult, options) {
    if (this.#closing) throw this.#closedError();
    const watcher = new Watcher((source) => this.infer(source), video, onResult, options, (w) => this.#watchers.delete(w));
    this.#watchers.add(watcher);
    return watcher;
  }

  close() {
    this.#closing ??= (async () => {
      for (const w of [...this.#watchers]) w.stop();
      await this.#queue;
      this.#freed = true;
      this.#final = this.info;
      await this.#host.close(this.#handle);
    })();
    return this.#closing;
  }
}

/** Each task object's Session, kept out of reach of callers. */
const sessions = new WeakMap();
const token = Symbol("sightline");

/** What the classifier and the detector share: backend facts, options, live video, closing. */
class VisionTask {
  constructor(key, session) {
    if (key !== token) throw new TypeError("use ImageClassifier.create() / ObjectDetector.create()");
    sessions.set(this, session);
    // Methods work when detached from the object (e.g. passed as a callback).
    for (const proto of [VisionTask.prototype, Object.getPrototypeOf(this)]) {
      for (const name of Object.getOwnPropertyNames(proto)) {
        const { value } = Object.getOwnPropertyDescriptor(proto, name);
        if (name !== "constructor" && typeof value === "function") this[name] = value.bind(this);
      }
    }
  }

  /** Creates a `Task` instance on a new session (the body of each task's `create()`). */
  static async open(Task, kind, options) {
    return new Task(token, await Session.open(kind, options));
  }

  /** `"webgpu"` or `"cpu"`: the backend that runs. */
  get backend() {
    return sessions.get(this).info.backend;
  }

  /** Why this backend runs, in words (e.g. why "auto" chose the CPU). */
  get backendReason() {
    return sessions.get(this).info.backendReason;
  }

  /** Why `"auto"` fell back to the CPU because WebGPU is unusable here, or `null`. */
  get fallbackReason() {
    return sessions.get(this).info.fallbackReason;
  }

  /** `"f16"`, `"int8"` or `"f32"`: how the loaded weights are stored (the network computes in f32). */
  get precision() {
    return sessions.get(this).info.precision;
  }

  /**
   * How long `create()` took, in ms: `{ wasmMs, deviceMs, weightsMs, buildMs, warmUpMs, totalMs }`
   * (wasm fetch + compile, backend/device init, weights fetch, model build, warm-up inference),
   * and `weightsFromCache` (whether the weights came from the Cache API).
   */
  get loadTimings() {
    return sessions.get(this).info.timings;
  }

  /** Changes runtime options for the next calls; on error nothing changes. */
  setOptions(partial) {
    return sessions.get(this).setOptions(partial);
  }

  /**
   * Runs the task on each new frame of `video` — always the newest, one in flight — and calls
   * `onResult(result, { frameTime, inferenceMs, droppedFrames, fps })`. Pauses while the page is
   * hidden. Returns a watcher; `watcher.stop()` stops it, and so does `close()`.
   * @param {HTMLVideoElement} video
   * @param {(result: object, info: object) => void} onResult
   * @param {{ maxFps?: number, onError?: (error: Error) => void }} [options]
   */
  watch(video, onResult, options) {
    return sessions.get(this).watch(video, onResult, options);
  }

  /** Frees the model (after calls already made finish). Later calls reject with `ClosedError`. */
  close() {
    return sessions.get(this).close();
  }
}

/**
 * ImageNet-1k classification with EfficientNet-Lite0.
 *
 *     const classifier = await ImageClassifier.create({ maxResults: 5 });
 *     const { classes, inferenceMs, backend } = await classifier.classify(video);
 */
export class ImageClassifier extends VisionTask {
  /**
   * Loads the model and warms it up (so the first `classify` is not the slow one).
   * @param {{backend?: "auto"|"webgpu"|"cpu", maxResults?: number, resize?: "crop"|"stretch", worker?: boolean,
   *          model?: string|URL|ArrayBuffer|Uint8Array, wasm?: string|URL|ArrayBuffer|Uint8Array}} [options]
   */
  static create(options = {}) {
    return VisionTask.open(ImageClassifier, "classifier", options);
  }

  /**
   * Classifies one image or video frame (its pixels are read when called).
   * @returns {Promise<{classes: {index: number, label: string, score: number}[], inferenceMs: number, backend: string}>}
   */
  classify(source) {
    return sessions.get(this).infer(source);
  }

  /**
   * The image's 1280 pooled features (EfficientNet-Lite0, before the classifier layer; the same
   * preprocessing as `classify`), e.g. for similarity search or your own classifier.
   * @returns {Promise<Float32Array>}
   */
  embed(source) {
    return sessions.get(this).infer(source, { op: "embed", augment: false });
  }

  /**
   * Why the classifier decided: the Grad-CAM heat map of class `index` (default: the top class)
   * on the last 7×7 feature map, ReLU'd and normalised to 0–1, and `box`, the region of the source
   * (in its pixels) that the grid covers (the centre crop with `resize: "crop"`). Draw it with
   * `drawHeatmap`.
   * @param {{ index?: number }} [options]
   * @returns {Promise<{index: number, label: string, score: number, box: {x: number, y: number, width: number,
   *   height: number}, rows: number, cols: number, grid: Float32Array}>}
   */
  explain(source, options = {}) {
    try {
      const { index, ...unknown } = options ?? {};
      const extra = Object.keys(unknown);
      if (extra.length) throw new InvalidOptionsError(`unknown explain option ${JSON.stringify(extra[0])} (expected index)`);
      if (index != null && !(Number.isInteger(index) && index >= 0 && index < 2 ** 32)) {
        throw new InvalidOptionsError(`index must be a class index (an integer ≥ 0), got ${index}`);
      }
      return sessions.get(this).infer(source, { op: "explain", index: index ?? null });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A trainer for your own classes on this classifier's backbone: add examples, train a head,
   * then classify with it (`trainer.classifier()`) or save it (`trainer.exportHead()`) and load
   * it later with `ImageClassifier.create({ head })`.
   * @returns {Promise<Trainer>}
   */
  async createTrainer() {
    return new Trainer(token, this);
  }
}

/** The longest class name, and the most classes a head may have (the same limits as Rust's). */
const MAX_LABEL_CHARS = 100;
const MAX_LABELS = 1000;
/** Values per embedding. */
const FEATURES = 1280;

/**
 * Teaches a classifier new classes from a few examples each: it keeps the examples' embeddings
 * (never the images), trains a linear head on them on the CPU (burn autodiff + Adam, seeded),
 * and makes classifiers that share the loaded backbone. Create it with
 * `classifier.createTrainer()`.
 */
export class Trainer {
  #base;
  /** label → Float32Array embeddings, in the order labels were first added. */
  #examples = new Map();
  #head = null;

  constructor(key, classifier) {
    if (key !== token) throw new TypeError("use classifier.createTrainer()");
    this.#base = classifier;
    for (const name of Object.getOwnPropertyNames(Trainer.prototype)) {
      const { value } = Object.getOwnPropertyDescriptor(Trainer.prototype, name);
      if (name !== "constructor" && typeof value === "function") this[name] = value.bind(this);
    }
  }

  /** The labels with examples, in the order first added. */
  get labels() {
    return [...this.#examples.keys()];
  }

  /** How many examples `label` has (augmented ones included). */
  count(label) {
    return this.#examples.get(label)?.length ?? 0;
  }

  /** Forgets `label` and its examples; whether it had any. */
  removeLabel(label) {
    return this.#examples.delete(label);
  }

  /**
   * Adds `source` as an example of `label`: its embedding, and with `augment: true` those of its
   * mirror image and of shifted crops (6 in all). Resolves to the label's example count.
   * @param {{ augment?: boolean }} [options]
   */
  async addExample(source, label, options = {}) {
    const { augment = false } = options ?? {};
    if (typeof augment !== "boolean") throw new InvalidOptionsError(`augment must be true or false, got ${JSON.stringify(augment)}`);
    const chars = typeof label === "string" ? [...label].length : -1;
    if (chars < 1 || chars > MAX_LABEL_CHARS) {
      throw new InvalidOptionsError(`a label must be a string of 1 to ${MAX_LABEL_CHARS} characters, got ${JSON.stringify(label)}`);
    }
    if (!this.#examples.has(label) && this.#examples.size >= MAX_LABELS) {
      throw new InvalidOptionsError(`a head has at most ${MAX_LABELS} labels`);
    }
    const flat = await sessions.get(this.#base).infer(source, { op: "embed", augment });
    const list = this.#examples.get(label) ?? [];
    for (let i = 0; i < flat.length; i += FEATURES) list.push(flat.slice(i, i + FEATURES));
    this.#examples.set(label, list);
    return list.length;
  }

  /**
   * Trains a head on every example (at least two labels). `onProgress({ epoch, loss, accuracy })`
   * hears of each epoch. Resolves to `{ loss: number[] (per epoch), trainAccuracy }`.
   * @param {{ epochs?: number, learningRate?: number, batchSize?: number, weightDecay?: number, seed?: number,
   *   onProgress?: (epoch: {epoch: number, loss: number, accuracy: number}) => void }} [options]
   */
  async train(options = {}) {
    if (options == null || typeof options !== "object" || Array.isArray(options)) {
      throw new InvalidOptionsError("options must be an object");
    }
    const { onProgress = () => {}, ...rest } = options;
    if (typeof onProgress !== "function") throw new InvalidOptionsError("onProgress must be a function");
    const labels = this.labels;
    const counts = labels.map((l) => this.count(l));
    const embeddings = new Float32Array(FEATURES * counts.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const label of labels) {
      for (const e of this.#examples.get(label)) {
        embeddings.set(e, at);
        at += FEATURES;
      }
    }
    const { head, ...report } = await sessions.get(this.#base).train({ labels, counts, embeddings, options: rest }, onProgress);
    this.#head = head;
    return report;
  }

  /**
   * A classifier over the trained labels that shares the loaded backbone (nothing is reloaded).
   * @returns {Promise<ImageClassifier>}
   */
  async classifier() {
    if (!this.#head) throw new InvalidOptionsError("train() first: there is no head yet");
    return new ImageClassifier(token, await sessions.get(this.#base).derive(this.#head.slice()));
  }

  /**
   * The trained head as a file (safetensors: weights, labels and backbone in its header), for
   * `ImageClassifier.create({ head })`.
   * @returns {Promise<Uint8Array>}
   */
  async exportHead() {
    if (!this.#head) throw new InvalidOptionsError("train() first: there is no head yet");
    return this.#head.slice();
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
   *          maxResults?: number, categoryAllowlist?: string[]|null, categoryDenylist?: string[], worker?: boolean,
   *          model?: string|URL|ArrayBuffer|Uint8Array, wasm?: string|URL|ArrayBuffer|Uint8Array}} [options]
   */
  static create(options = {}) {
    return VisionTask.open(ObjectDetector, "detector", options);
  }

  /**
   * Detects objects in one image or video frame (its pixels are read when called).
   * @returns {Promise<{detections: {index: number, label: string, score: number,
   *   box: {x: number, y: number, width: number, height: number}}[], inferenceMs: number, backend: string}>}
   */
  detect(source) {
    return sessions.get(this).infer(source);
  }
}
