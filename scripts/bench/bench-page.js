// In-page side of the benchmark: sightline and onnxruntime-web on the same network, same
// image, same browser, frames interleaved. Driven by scripts/bench/bench.mjs.
import { ImageClassifier, ObjectDetector, memoryUsage } from "/www/lib/sightline.js";
import { parseNpy } from "/scripts/lib/npy.mjs";
import { gpuCalls } from "/scripts/lib/gpu-calls.js";
import * as ort from "/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs";

ort.env.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
ort.env.wasm.numThreads = 1; // the page is not cross-origin isolated; sightline's CPU path is 1 thread too
ort.env.logLevel = "error";

const MODELS = {
  effnet: { Task: ImageClassifier, method: "classify", size: 224, input: "cls_crop224_input.npy", options: { maxResults: 5 } },
  nanodet: { Task: ObjectDetector, method: "detect", size: 416, input: "det_input.npy", options: {} },
};
// onnxruntime-web runs in this page, so sightline does too (worker: false): like for like. The
// worker's own cost is measured by scripts/bench/runtime.mjs.
const PLACE = {
  worker: new URLSearchParams(location.search).get("worker") === "1",
};

/** The WebGPU adapter this page gets (what the WebGPU figures were measured on), or null. */
async function adapter() {
  const a = await navigator.gpu?.requestAdapter();
  if (!a) return null;
  const { vendor, architecture, device, description } = a.info ?? {};
  return { vendor, architecture, device, description, isFallbackAdapter: a.isFallbackAdapter ?? a.info?.isFallbackAdapter };
}

async function fixturePixels(name) {
  const img = new Image();
  img.src = `/tests/fixtures/images/${name}`;
  await img.decode();
  const c = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return ctx.getImageData(0, 0, c.width, c.height);
}

async function npy(url) {
  return parseNpy(await (await fetch(url)).arrayBuffer());
}

const now = () => performance.now();
const gc = () => globalThis.gc?.();

/** JS heap after garbage collection has really settled (ArrayBuffer backing stores are freed lazily). */
async function heap() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return performance.memory?.usedJSHeapSize ?? NaN;
}

/** The WebGPU calls `frame()` makes (one warm frame; see scripts/lib/gpu-calls.js). */
async function counted(frame) {
  const before = gpuCalls.snapshot();
  await frame();
  return gpuCalls.since(before);
}

/**
 * Cold start + interleaved warm frames for sightline on `backend` and ORT on `ep`, then one more
 * warm frame of each with its WebGPU calls counted.
 */
async function compare({ model, backend, ep, frames, peer, image }) {
  const m = MODELS[model];
  const pixels = await fixturePixels(image);
  const out = { model, backend, ep, frames };

  let t = now();
  const task = await m.Task.create({ backend, ...PLACE, ...m.options });
  out.sightline = { createMs: now() - t, loadTimings: task.loadTimings, backend: task.backend };
  t = now();
  await task[m.method](pixels);
  out.sightline.firstResultMs = now() - t;

  if (peer) {
    const input = await npy(`/tests/fixtures/dog/${m.input}`);
    t = now();
    const session = await ort.InferenceSession.create(`/peer/${peer}`, { executionProviders: [ep], graphOptimizationLevel: "all" });
    const createMs = now() - t;
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input.data, input.shape) };
    const run = async () => {
      const res = await session.run(feeds);
      for (const name of session.outputNames) await res[name].getData();
    };
    t = now();
    await run();
    out.ort = { createMs, firstResultMs: now() - t };
    out.ort.latencies = [];
    out.sightline.latencies = [];
    for (let i = 0; i < frames; i++) {
      t = now();
      await task[m.method](pixels);
      out.sightline.latencies.push(now() - t);
      t = now();
      await run();
      out.ort.latencies.push(now() - t);
    }
    out.sightline.gpuCalls = await counted(() => task[m.method](pixels));
    out.ort.gpuCalls = await counted(run);
    await session.release();
  } else {
    out.sightline.latencies = [];
    for (let i = 0; i < frames; i++) {
      t = now();
      await task[m.method](pixels);
      out.sightline.latencies.push(now() - t);
    }
    out.sightline.gpuCalls = await counted(() => task[m.method](pixels));
  }
  await task.close();
  return out;
}

/**
 * Memory over a webcam-like loop: every frame is read from a canvas that is redrawn each time
 * (the same path as a <video>: drawImage + getImageData), one frame in flight.
 */
async function memory({ model, backend, frames, image }) {
  const m = MODELS[model];
  const pixels = await fixturePixels(image);
  const canvas = document.createElement("canvas");
  canvas.width = pixels.width;
  canvas.height = pixels.height;
  const ctx = canvas.getContext("2d");
  const task = await m.Task.create({ backend, ...PLACE, ...m.options });
  const samples = [];
  const sample = async (i) => samples.push({ frame: i, jsHeap: await heap(), wasm: memoryUsage().wasmBytes });
  // Ten frames first so lazily grown pools are in place, then measure.
  for (let i = 0; i < 10; i++) await task[m.method](pixels);
  await sample(0);
  const t = now();
  let busy = 0;
  for (let i = 1; i <= frames; i++) {
    ctx.putImageData(pixels, 0, 0);
    ctx.fillRect(i % pixels.width, 0, 1, 1); // a changing frame
    const f = now();
    await task[m.method](canvas);
    busy += now() - f;
    if (i % Math.max(1, Math.floor(frames / 10)) === 0) await sample(i);
  }
  await task.close();
  return { model, backend, frames, samples, msPerFrame: busy / frames, wallMs: now() - t };
}

/** A created, warmed-up task kept on the page so a profiler can watch `run(frames)` alone. */
async function prepare({ model, backend }) {
  const m = MODELS[model];
  const pixels = await fixturePixels(IMAGE_FOR_PROFILE);
  const task = await m.Task.create({ backend, ...PLACE, ...m.options });
  for (let i = 0; i < 3; i++) await task[m.method](pixels);
  window.profileRun = async (frames) => {
    const t = now();
    for (let i = 0; i < frames; i++) await task[m.method](pixels);
    return (now() - t) / frames;
  };
  return task.backend;
}
const IMAGE_FOR_PROFILE = "dog.jpg";

/**
 * A created, warmed-up task and a `width`×`height` frame (the fixture stretched onto it), as a
 * canvas (what a webcam loop passes) or as its RGBA pixels; `window.frameRun(frames)` then runs
 * warm frames one after the other and resolves the mean wall time per frame. The CPU time of
 * those frames is read by the driver (scripts/bench/frame-cpu.mjs) from the DevTools protocol.
 */
async function prepareFrames({ model, backend, width, height, source }) {
  const m = MODELS[model];
  const img = new Image();
  img.src = `/tests/fixtures/images/${IMAGE_FOR_PROFILE}`;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: source === "pixels" });
  ctx.drawImage(img, 0, 0, width, height);
  const frame = source === "pixels" ? ctx.getImageData(0, 0, width, height) : canvas;
  window.frameTask?.close();
  const task = await m.Task.create({ backend, ...PLACE, ...m.options });
  window.frameTask = task;
  for (let i = 0; i < 2; i++) await task[m.method](frame);
  window.frameRun = async (frames) => {
    const t = now();
    for (let i = 0; i < frames; i++) await task[m.method](frame);
    return (now() - t) / frames;
  };
  return task.backend;
}

window.bench = { adapter, compare, memory, prepare, prepareFrames };
window.benchReady = true;
