// Type declarations for sightline's browser API.

/** The compute backend: `"auto"` picks the faster of WebGPU and the CPU for this device. */
export type Backend = "auto" | "webgpu" | "cpu";

/** Anything `classify` / `detect` accept. Raw pixels are RGBA, row-major, `width * height * 4` bytes. */
export type ImageSource =
  | HTMLImageElement
  | HTMLVideoElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | ImageBitmap
  | VideoFrame
  | ImageData
  | { data: Uint8Array | Uint8ClampedArray; width: number; height: number };

/** Where the weights come from: a URL, or the bytes of a `.safetensors` file. */
export type ModelSource = string | URL | ArrayBuffer | Uint8Array;

/** Options every task's `create()` takes. */
export interface CreateOptions {
  /** Default `"auto"`: WebGPU on a hardware GPU, the CPU where WebGPU is missing or software-only. */
  backend?: Backend;
  /**
   * Run the model in a module worker (default `true` where `Worker` exists), so inference never
   * blocks the page. `false` runs it in the page.
   */
  worker?: boolean;
  /** Default: the weights shipped in this package, in `precision`. */
  model?: ModelSource;
  /**
   * Which stored variant of the package's weights to load (the network computes in f32 either
   * way). Default `"f16"`, the smallest that agrees with f32 on every reference input; the package
   * ships that one (make the others with `scripts/fetch_weights.py` and pass them as `model`).
   * With your own `model`, the file's header must declare this variant.
   */
  precision?: "int8" | "f16" | "f32";
  /** Keep the wasm module and the package's weights in the Cache API for the next visit (default `true`). */
  cache?: boolean;
  /** Called as loading progresses: "wasm", "weights", "compile", then "warmup". */
  onProgress?: (event: LoadProgress) => void;
  /** Cancels loading: if it fires before `create()` settles, `create()` rejects with a `ModelLoadError` and frees what it had loaded. */
  signal?: AbortSignal;
  /**
   * The watchdog: an inference that has not answered after this many ms rejects with an
   * `InferenceError` (and in worker mode the worker restarts). Default 60000.
   */
  timeoutMs?: number;
  /**
   * Default: the runtime shipped in this package — its relaxed-SIMD build where the engine has
   * relaxed SIMD, the plain-SIMD build elsewhere. Bytes only with `worker: false` (e.g. Node.js).
   */
  wasm?: string | URL | ArrayBuffer | Uint8Array;
}

/** One step of `create()`, for a progress bar. */
export interface LoadProgress {
  stage: "wasm" | "weights" | "compile" | "warmup";
  /** Bytes so far for the downloads; 0 or 1 for "compile" and "warmup". */
  loaded: number;
  /** Bytes in all where known (0 when the server does not say); 1 for "compile" and "warmup". */
  total: number;
  /** Whether the bytes came from the Cache API (a later visit), not the network. */
  fromCache: boolean;
}

export interface ClassifierOptions {
  /** How many classes to return, best first (1–1000). Default 5. */
  maxResults?: number;
  /** @deprecated The former name of `maxResults`. */
  topK?: number;
  /** `"crop"` (default: shorter side to 256, centre 224×224) or `"stretch"` (whole image to 224×224). */
  resize?: "crop" | "stretch";
}

export interface ImageClassifierOptions extends CreateOptions, ClassifierOptions {
  /** A head file (`trainer.exportHead()` or `sightline train`) to classify into its classes instead of ImageNet's. */
  head?: ModelSource;
}

export interface Category {
  /** 0-based ImageNet-1k class index. */
  index: number;
  /** Readable class name. */
  label: string;
  /** Softmax probability, 0–1. */
  score: number;
}

export interface ClassificationResult {
  /** The best `maxResults` classes, best first. */
  classes: Category[];
  /** Wall time of this call (pixel read-out, inference and read-back), in milliseconds. */
  inferenceMs: number;
  /** The backend that ran it. */
  backend: "webgpu" | "cpu";
}

/** How long `create()` took, per step, in milliseconds. */
export interface LoadTimings {
  /** Fetching and compiling the wasm module (0 when another task already loaded it). */
  wasmMs: number;
  /** Checking WebGPU and initialising the device (once per wasm instance). */
  deviceMs: number;
  /** Fetching the weights. */
  weightsMs: number;
  /** Parsing the weights and building the network. */
  buildMs: number;
  /** The warm-up inference (compiles the GPU kernels). */
  warmUpMs: number;
  totalMs: number;
  /** Whether the weights came from the Cache API. */
  weightsFromCache: boolean;
}

/** What `watch()` reports with each result. */
export interface WatchInfo {
  /** When the frame was shown, in ms on the `performance.now()` clock. */
  frameTime: number;
  /** Wall time of this inference, in ms. */
  inferenceMs: number;
  /** Video frames skipped so far because the model was still busy with an earlier one. */
  droppedFrames: number;
  /** Results per second (smoothed). */
  fps: number;
}

export interface WatchOptions {
  /** At most this many inferences per second (default: as fast as the model and camera allow). */
  maxFps?: number;
  /** Called with an error instead of stopping (default: the watcher stops and warns). */
  onError?: (error: SightlineError) => void;
}

/** A running `watch()`. */
export interface Watcher {
  /** Stops it; a result in flight is discarded. Idempotent. */
  stop(): void;
  readonly stopped: boolean;
}

/** Memory held by sightline's wasm instances (GPU buffers not included). */
export declare function memoryUsage(): { wasmBytes: number };

declare abstract class VisionTask<Options, Result> {
  protected constructor();
  /** The backend that runs. */
  readonly backend: "webgpu" | "cpu";
  /** Why this backend runs, in words (e.g. "WebGPU adapter is a software rasteriser (…); the CPU path is faster"). */
  readonly backendReason: string;
  /** Why `"auto"` fell back to the CPU because WebGPU is unusable here, or `null`. */
  readonly fallbackReason: string | null;
  /** How the loaded weights are stored. */
  readonly precision: "int8" | "f16" | "f32";
  readonly loadTimings: LoadTimings;
  /** Changes runtime options; on error nothing changes. */
  setOptions(options: Options): Promise<void>;
  /** Runs on each new frame of `video` (the newest; one in flight) until stopped. */
  watch(video: HTMLVideoElement, onResult: (result: Result, info: WatchInfo) => void, options?: WatchOptions): Watcher;
  /** Frees the model after calls already made; later calls reject with `ClosedError`. */
  close(): Promise<void>;
}

export declare class ImageClassifier extends VisionTask<ClassifierOptions, ClassificationResult> {
  /** Loads the model and warms it up, so the first `classify` is not the slow one. */
  static create(options?: ImageClassifierOptions): Promise<ImageClassifier>;
  /** Classifies one image or video frame; its pixels are read when called. */
  classify(source: ImageSource): Promise<ClassificationResult>;
  /** The image's 1280 pooled features (before the classifier layer), same preprocessing as `classify`. */
  embed(source: ImageSource): Promise<Float32Array>;
  /** The Grad-CAM heat map of class `index` (default: the top class); draw it with `drawHeatmap`. */
  explain(source: ImageSource, options?: { index?: number }): Promise<Explanation>;
  /** A trainer for your own classes on this classifier's backbone. */
  createTrainer(): Promise<Trainer>;
}

/** Why the classifier decided (`classifier.explain()`). */
export interface Explanation {
  /** The class explained. */
  index: number;
  label: string;
  /** Its probability, 0–1. */
  score: number;
  /** The region of the source (its pixels) that the grid covers: the centre crop for `resize: "crop"`. */
  box: BoundingBox;
  rows: number;
  cols: number;
  /** `rows × cols` values in 0–1, row-major from the top left. */
  grid: Float32Array;
}

export interface EpochProgress {
  epoch: number;
  loss: number;
  accuracy: number;
}

export interface TrainOptions {
  /** Passes over the examples (default 50). */
  epochs?: number;
  /** Adam's learning rate (default 0.001). */
  learningRate?: number;
  /** Examples per step (default 16). */
  batchSize?: number;
  /** L2 penalty (default 1e-4). */
  weightDecay?: number;
  /** Seed of the batch shuffling (default 0): the same seed and examples give the same head. */
  seed?: number;
  onProgress?: (progress: EpochProgress) => void;
}

/** Teaches a classifier new classes from a few examples each (`classifier.createTrainer()`). */
export declare class Trainer {
  private constructor();
  /** The labels with examples, in the order first added. */
  readonly labels: string[];
  /** Adds `source` as an example of `label` (its embedding; 6 with `augment`); resolves to the label's count. */
  addExample(source: ImageSource, label: string, options?: { augment?: boolean }): Promise<number>;
  count(label: string): number;
  removeLabel(label: string): boolean;
  /** Trains a head on every example (at least two labels). */
  train(options?: TrainOptions): Promise<{ loss: number[]; trainAccuracy: number }>;
  /** A classifier over the trained labels, sharing the loaded backbone. */
  classifier(): Promise<ImageClassifier>;
  /** The trained head as a file for `ImageClassifier.create({ head })`. */
  exportHead(): Promise<Uint8Array>;
}

export interface DetectorOptions {
  /** Keep detections scoring above this, 0–1. Default 0.35. */
  scoreThreshold?: number;
  /** Per-class NMS: drop a box overlapping a better one of its class by more than this IoU. Default 0.6. */
  iouThreshold?: number;
  /** At most this many detections, best first (1–1000). Default 100. */
  maxResults?: number;
  /**
   * Only these COCO class names (e.g. `["person", "dog"]`). An empty list lets nothing through;
   * `null` (or leaving it out) applies no allowlist.
   */
  categoryAllowlist?: string[] | null;
  /** Never these COCO class names. */
  categoryDenylist?: string[];
}

export interface ObjectDetectorOptions extends CreateOptions, DetectorOptions {}

/** A box in source-image pixels, top-left origin (like `DOMRect`). */
export interface BoundingBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Detection {
  /** 0-based COCO-80 class index. */
  index: number;
  /** Class name, e.g. `"dog"`. */
  label: string;
  /** Confidence, 0–1. */
  score: number;
  box: BoundingBox;
}

export interface DetectionResult {
  /** Best first. */
  detections: Detection[];
  /** Wall time of this call, in milliseconds. */
  inferenceMs: number;
  backend: "webgpu" | "cpu";
}

export declare class ObjectDetector extends VisionTask<DetectorOptions, DetectionResult> {
  /** Loads the model and warms it up. */
  static create(options?: ObjectDetectorOptions): Promise<ObjectDetector>;
  /** Detects objects in one image or video frame; its pixels are read when called. */
  detect(source: ImageSource): Promise<DetectionResult>;
}

export interface DrawStyle {
  /** Default: scales with the canvas (2 px per 400 px of its shorter side). */
  lineWidth?: number;
  /** A CSS font; default scales with the canvas. */
  font?: string;
  /** Colour per class index; default `classColor`. */
  color?: (index: number) => string;
  /** Append the score to the label (default true). */
  showScore?: boolean;
  /** Size of the image the boxes refer to, when the canvas is not that size. */
  sourceWidth?: number;
  sourceHeight?: number;
}

/** Draws labelled boxes; colours are stable per class. */
export declare function drawDetections(
  ctx: CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D,
  detections: Detection[],
  style?: DrawStyle,
): void;

/** Draws an explanation's heat map over the image (smoothly upsampled, a perceptual colour map). */
export declare function drawHeatmap(
  ctx: CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D,
  explanation: Pick<Explanation, "rows" | "cols" | "grid" | "box">,
  options?: { alpha?: number; sourceWidth?: number; sourceHeight?: number },
): void;

/** The colour `drawDetections` uses for a class. */
export declare function classColor(index: number): string;

/** The largest accepted image width or height. */
export declare const MAX_SIDE: number;
/** The largest accepted image pixel count. */
export declare const MAX_PIXELS: number;

export declare class SightlineError extends Error {
  readonly name:
    | "SightlineError"
    | "InvalidImageError"
    | "InvalidOptionsError"
    | "ModelLoadError"
    | "BackendUnavailableError"
    | "InferenceError"
    | "ClosedError";
}
export declare class InvalidImageError extends SightlineError {
  readonly name: "InvalidImageError";
}
export declare class InvalidOptionsError extends SightlineError {
  readonly name: "InvalidOptionsError";
}
export declare class ModelLoadError extends SightlineError {
  readonly name: "ModelLoadError";
}
export declare class BackendUnavailableError extends SightlineError {
  readonly name: "BackendUnavailableError";
}
export declare class InferenceError extends SightlineError {
  readonly name: "InferenceError";
}
export declare class ClosedError extends SightlineError {
  readonly name: "ClosedError";
}
