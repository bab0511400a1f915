// Page sources → frames: a snapshot of the pixels taken when `classify`/`detect` is called (so a
// caller may reuse its buffer or canvas at once), in a form that crosses to the worker as a
// transferable object — an ImageBitmap, a VideoFrame or a fresh pixel buffer — never as a
// structured clone of pixels. The engine (`engine.js`) turns a frame into RGBA pixels.
import { InvalidImageError } from "./errors.js";

/** The largest accepted width or height (the same limit as the Rust side). */
export const MAX_SIDE = 16384;
/** The largest accepted pixel count, 64 Mpx (the same limit as the Rust side). */
export const MAX_PIXELS = 2 ** 26;

const has = (name) => typeof globalThis[name] !== "undefined";
const is = (value, name) => has(name) && value instanceof globalThis[name];

/** Checks a size before anything is allocated for it. */
export function checkSize(width, height) {
  const valid = (v) => Number.isSafeInteger(v) && v >= 0;
  if (!valid(width) || !valid(height)) {
    throw new InvalidImageError(`image width and height must be non-negative integers, got ${width}x${height}`);
  }
  if (width === 0 || height === 0) {
    throw new InvalidImageError(`image source has no pixels (${width}x${height}); is it loaded?`);
  }
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    throw new InvalidImageError(
      `image is ${width}x${height}; the largest accepted is ${MAX_SIDE} pixels a side and ${MAX_PIXELS} pixels in all`,
    );
  }
}

/** The error for pixels the page may not read (a cross-origin source without CORS). */
export function corsError(cause) {
  return new InvalidImageError(
    "the image is cross-origin and its server does not allow reading its pixels (CORS): serve it with " +
      "Access-Control-Allow-Origin and load it with crossOrigin = \"anonymous\"",
    { cause },
  );
}

/** Width and height of a drawable source (0x0 while an image or video is not ready). */
function drawableSize(source) {
  if (is(source, "HTMLVideoElement")) return source.readyState < 2 ? [0, 0] : [source.videoWidth, source.videoHeight];
  if (is(source, "HTMLImageElement")) return source.complete ? [source.naturalWidth, source.naturalHeight] : [0, 0];
  if (is(source, "SVGImageElement")) return [source.width.baseVal.value, source.height.baseVal.value];
  if (is(source, "HTMLCanvasElement") || is(source, "OffscreenCanvas") || is(source, "ImageBitmap")) {
    return [source.width, source.height];
  }
  return null;
}

/** A copy of raw RGBA `data` after checking its type, size and length. */
function pixelFrame(data, width, height) {
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    const kind = data?.constructor?.name ?? typeof data;
    throw new InvalidImageError(`pixel data must be a Uint8Array or Uint8ClampedArray of RGBA bytes, got ${kind}`);
  }
  checkSize(width, height);
  if (data.buffer.detached) throw new InvalidImageError("pixel data is a detached (transferred) buffer");
  const expected = width * height * 4;
  if (data.length !== expected) {
    throw new InvalidImageError(`pixel buffer has ${data.length} bytes, but a ${width}x${height} RGBA image needs ${expected}`);
  }
  const copy = new Uint8Array(expected);
  copy.set(data);
  return { data: copy, width, height };
}

/**
 * A snapshot of `source`, taken now. Resolves to a frame: `{ data, width, height }` (RGBA) or
 * `{ image, width, height }` (an ImageBitmap or VideoFrame that sightline created and will close).
 * Throws `InvalidImageError` synchronously for a source it cannot take.
 */
export function snapshot(source) {
  if (source == null) throw new InvalidImageError("no image source given");
  if (is(source, "VideoFrame")) {
    checkSize(source.displayWidth, source.displayHeight);
    // A clone shares the caller's frame (no copy); sightline closes only its clone.
    return Promise.resolve({ image: source.clone(), width: source.displayWidth, height: source.displayHeight });
  }
  if (is(source, "ImageData")) return Promise.resolve(pixelFrame(source.data, source.width, source.height));
  const size = drawableSize(source);
  if (size) {
    const [width, height] = size;
    checkSize(width, height);
    // createImageBitmap copies the source's current pixels before it returns (HTML spec), so a
    // canvas redrawn right after the call does not change this frame.
    return createImageBitmap(source).then(
      (image) => ({ image, width, height }),
      (e) => {
        throw new InvalidImageError(`could not read the image source: ${e.message}`, { cause: e });
      },
    );
  }
  if (typeof source === "object" && "data" in source && "width" in source && "height" in source) {
    return Promise.resolve(pixelFrame(source.data, source.width, source.height));
  }
  throw new InvalidImageError(
    "unsupported image source: pass an HTMLImageElement, HTMLVideoElement, HTMLCanvasElement, OffscreenCanvas, " +
      "ImageBitmap, VideoFrame, ImageData or { data, width, height }",
  );
}

/** What to transfer to a worker with `frame`. */
export function transferables(frame) {
  return frame.image ? [frame.image] : [frame.data.buffer];
}

/** Frees what sightline created for `frame` (never the caller's own source). */
export function release(frame) {
  frame?.image?.close();
}
