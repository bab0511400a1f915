// Live video: runs a task on the newest frame of a video, never more than one frame in flight,
// paused while the page is hidden. The glue of `ImageClassifier.watch` / `ObjectDetector.watch`.
import { InvalidImageError, InvalidOptionsError } from "./errors.js";

const WATCH_KEYS = ["maxFps", "onError"];

/** Checks `watch()` options; returns `{ maxFps, onError }`. */
function watchOptions(options = {}) {
  if (options === null || typeof options !== "object") throw new InvalidOptionsError("watch options must be an object");
  const unknown = Object.keys(options).find((k) => !WATCH_KEYS.includes(k));
  if (unknown) throw new InvalidOptionsError(`unknown watch option "${unknown}" (expected one of ${WATCH_KEYS.join(", ")})`);
  const { maxFps = Infinity, onError = null } = options;
  if (typeof maxFps !== "number" || !(maxFps > 0)) {
    throw new InvalidOptionsError(`maxFps must be a positive number, got ${maxFps}`);
  }
  if (onError !== null && typeof onError !== "function") throw new InvalidOptionsError("onError must be a function");
  return { maxFps, onError };
}

/**
 * Runs `infer(video)` on each new frame of `video` and calls `onResult(result, info)`, where
 * `info` is `{ frameTime, inferenceMs, droppedFrames, fps }`. Create with `task.watch(...)`.
 */
export class Watcher {
  #infer;
  #video;
  #onResult;
  #onError;
  #minInterval;
  #onStop;
  #stopped = false;
  #busy = false;
  #pending = null;
  #lastStart = -Infinity;
  #lastVideoTime = -1;
  #dropped = 0;
  #fps = 0;
  #lastResultAt = 0;
  #visibility = () => this.#onVisibility();

  constructor(infer, video, onResult, options, onStop) {
    if (typeof onResult !== "function") throw new InvalidOptionsError("watch() needs a callback: watch(video, (result, info) => …)");
    const { maxFps, onError } = watchOptions(options);
    this.#infer = infer;
    this.#video = video;
    this.#onResult = onResult;
    this.#onError = onError;
    this.#minInterval = 1000 / maxFps;
    this.#onStop = onStop;
    globalThis.document?.addEventListener("visibilitychange", this.#visibility);
    this.#schedule();
  }

  /** Whether it has stopped (by `stop()`, or because its task was closed). */
  get stopped() {
    return this.#stopped;
  }

  /** Stops watching; a result still in flight is discarded. Idempotent. */
  stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancel();
    globalThis.document?.removeEventListener("visibilitychange", this.#visibility);
    this.#onStop(this);
  }

  #hidden() {
    return globalThis.document?.visibilityState === "hidden";
  }

  #onVisibility() {
    if (this.#hidden()) this.#cancel();
    else this.#schedule();
  }

  #schedule() {
    if (this.#stopped || this.#pending || this.#hidden()) return;
    const video = this.#video;
    if (typeof video.requestVideoFrameCallback === "function") {
      const handle = video.requestVideoFrameCallback((now) => this.#onFrame(now, true));
      this.#pending = () => video.cancelVideoFrameCallback(handle);
    } else {
      const handle = requestAnimationFrame((now) => this.#onFrame(now, false));
      this.#pending = () => cancelAnimationFrame(handle);
    }
  }

  #cancel() {
    this.#pending?.();
    this.#pending = null;
  }

  /** Called for each new video frame (or each animation frame where there is no rVFC). */
  #onFrame(now, isNewFrame) {
    this.#pending = null;
    if (this.#stopped) return;
    this.#schedule();
    // Without requestVideoFrameCallback, a frame is new when the video's time moved.
    const time = this.#video.currentTime;
    if (!isNewFrame && time === this.#lastVideoTime) return;
    this.#lastVideoTime = time;
    if (this.#busy) {
      this.#dropped += 1;
      return;
    }
    if (now - this.#lastStart < this.#minInterval) return;
    this.#lastStart = now;
    this.#run(now);
  }

  async #run(frameTime) {
    this.#busy = true;
    try {
      const result = await this.#infer(this.#video);
      if (this.#stopped) return;
      const at = performance.now();
      const rate = this.#lastResultAt ? 1000 / (at - this.#lastResultAt) : 0;
      this.#fps = this.#fps ? 0.8 * this.#fps + 0.2 * rate : rate;
      this.#lastResultAt = at;
      this.#onResult(result, { frameTime, inferenceMs: result.inferenceMs, droppedFrames: this.#dropped, fps: this.#fps });
    } catch (e) {
      // A video without a frame yet (still loading) is not an error worth reporting.
      if (this.#stopped || (e instanceof InvalidImageError && this.#video.readyState < 2)) return;
      if (this.#onError) this.#onError(e);
      else {
        console.warn(`sightline: watch() stopped: ${e.name}: ${e.message}`);
        this.stop();
      }
    } finally {
      this.#busy = false;
    }
  }
}
