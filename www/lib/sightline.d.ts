// Type declarations for sightline's browser API.

/** The compute backend: `"auto"` tries WebGPU and falls back to the CPU. */
export type Backend = "auto" | "webgpu" | "cpu";

/** Anything `classify` accepts. Raw pixels are RGBA, row-major, `width * height * 4` bytes. */
export type ImageSource =
  | HTMLImageElement
  | HTMLVideoElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | ImageBitmap
  | ImageData
  | { data: Uint8Array | Uint8ClampedArray; width: number; height: number };

/** Where the weights come from: a URL, or the bytes of a `.safetensors` file. */
export type ModelSource = string | URL | ArrayBuffer | Uint8Array;

export interface ImageClassifierOptions {
  /** Default `"auto"`. */
  backend?: Backend;
  /** How many classes to return, best first (1–1000). Default 5. */
  topK?: number;
  /** `"crop"` (default: shorter side to 256, centre 224×224) or `"stretch"` (whole image to 224×224). */
  resize?: "crop" | "stretch";
  /** Default: the EfficientNet-Lite0 weights shipped in this package. */
  model?: ModelSource;
  /** Default: the wasm module shipped in this package. */
  wasm?: string | URL;
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
  /** The `topK` classes, best first. */
  classes: Category[];
  /** Wall time of this call (pixel read-out, inference and read-back), in milliseconds. */
  inferenceMs: number;
  /** The backend that ran it. */
  backend: "webgpu" | "cpu";
}

/** How long `create()` took, per step, in milliseconds. */
export interface LoadTimings {
  /** Fetching and compiling the wasm module (0 when another model already loaded it). */
  wasmMs: number;
  /** Checking WebGPU and initialising the device (once per page). */
  deviceMs: number;
  /** Fetching the weights. */
  weightsMs: number;
  /** Parsing the weights and building the network. */
  buildMs: number;
  /** The warm-up inference (compiles the GPU kernels). */
  warmUpMs: number;
  totalMs: number;
}

/** Memory held by the wasm module's linear memory (GPU buffers not included). */
export declare function memoryUsage(): { wasmBytes: number };

export declare class ImageClassifier {
  private constructor();
  readonly loadTimings: LoadTimings;
  /** Loads the model and warms it up, so the first `classify` is not the slow one. */
  static create(options?: ImageClassifierOptions): Promise<ImageClassifier>;
  /** The backend that runs. */
  readonly backend: "webgpu" | "cpu";
  /** Why `"auto"` fell back to the CPU, or `null`. */
  readonly fallbackReason: string | null;
  classify(source: ImageSource): Promise<ClassificationResult>;
  /** Changes `topK` / `resize`; on error nothing changes. */
  setOptions(options: Pick<ImageClassifierOptions, "topK" | "resize">): Promise<void>;
  /** Frees the model; later calls reject with `ClosedError`. */
  close(): Promise<void>;
}

export interface ObjectDetectorOptions {
  /** Default `"auto"`. */
  backend?: Backend;
  /** Keep detections scoring above this, 0–1. Default 0.35. */
  scoreThreshold?: number;
  /** Per-class NMS: drop a box overlapping a better one of its class by more than this IoU. Default 0.6. */
  iouThreshold?: number;
  /** At most this many detections, best first (1–1000). Default 100. */
  maxResults?: number;
  /** Only these COCO class names (e.g. `["person", "dog"]`); `null` clears it. */
  categoryAllowlist?: string[] | null;
  /** Never these COCO class names. */
  categoryDenylist?: string[];
  /** Default: the NanoDet-g-416 weights shipped in this package. */
  model?: ModelSource;
  /** Default: the wasm module shipped in this package. */
  wasm?: string | URL;
}

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

export declare class ObjectDetector {
  private constructor();
  readonly loadTimings: LoadTimings;
  /** Loads the model and warms it up. */
  static create(options?: ObjectDetectorOptions): Promise<ObjectDetector>;
  readonly backend: "webgpu" | "cpu";
  readonly fallbackReason: string | null;
  detect(source: ImageSource): Promise<DetectionResult>;
  setOptions(
    options: Pick<ObjectDetectorOptions, "scoreThreshold" | "iouThreshold" | "maxResults" | "categoryAllowlist" | "categoryDenylist">,
  ): Promise<void>;
  close(): Promise<void>;
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

/** The colour `drawDetections` uses for a class. */
export declare function classColor(index: number): string;

/** The largest accepted image width or height. */
export declare const MAX_SIDE: number;

export declare class SightlineError extends Error {}
export declare class InvalidImageError extends SightlineError {}
export declare class InvalidOptionsError extends SightlineError {}
export declare class ModelLoadError extends SightlineError {}
export declare class BackendUnavailableError extends SightlineError {}
export declare class InferenceError extends SightlineError {}
export declare class ClosedError extends SightlineError {}
