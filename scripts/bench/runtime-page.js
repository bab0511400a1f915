// In-page side of scripts/bench/runtime.mjs: how sightline behaves on the page it lands on —
// time to the first result with default options, main-thread long tasks during a frame loop,
// and the cost of the worker hop. `?lib=URL` picks the build of the library under test (e.g. an
// older one, for a before/after in the same run).
const lib = new URLSearchParams(location.search).get("lib") ?? "/www/lib/sightline.js";
const sightline = await import(lib);

const TASKS = { effnet: ["ImageClassifier", "classify"], nanodet: ["ObjectDetector", "detect"] };

/** A 640×480 canvas showing dog.jpg: what a webcam frame looks like to the library. */
async function frame640() {
  const img = new Image();
  img.src = "/tests/fixtures/images/dog.jpg";
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  canvas.height = 480;
  canvas.getContext("2d").drawImage(img, 0, 0, 640, 480);
  return canvas;
}

const now = () => performance.now();

/** `create()` with defaults only, then one inference on a 640×480 frame: ms to the first result. */
async function firstResult({ model }) {
  const [Task, method] = TASKS[model];
  const canvas = await frame640();
  const t = now();
  const task = await sightline[Task].create();
  const result = await task[method](canvas);
  const ms = now() - t;
  const out = { ms, backend: task.backend, reason: task.backendReason ?? task.fallbackReason, resultMs: result.inferenceMs };
  await task.close();
  return out;
}

/** Main-thread long tasks (> 50 ms) while `frames` frames run on the CPU backend. */
async function longTasks({ model, frames, worker }) {
  const [Task, method] = TASKS[model];
  const canvas = await frame640();
  const task = await sightline[Task].create({ backend: "cpu", worker });
  await task[method](canvas);
  const entries = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries().map((e) => e.duration)));
  observer.observe({ type: "longtask" });
  const t = now();
  for (let i = 0; i < frames; i++) await task[method](canvas);
  const wall = now() - t;
  await new Promise((r) => setTimeout(r, 100));
  observer.disconnect();
  await task.close();
  return { frames, wallMs: wall, count: entries.length, maxMs: Math.max(0, ...entries), totalMs: entries.reduce((a, b) => a + b, 0) };
}

/** Per-frame latency in the worker and in the page, frames interleaved: the hop's cost. */
async function hop({ model, frames }) {
  const [Task, method] = TASKS[model];
  const canvas = await frame640();
  const inWorker = await sightline[Task].create({ backend: "cpu" });
  const inPage = await sightline[Task].create({ backend: "cpu", worker: false });
  const lat = { worker: [], page: [] };
  for (let i = 0; i < 3; i++) {
    await inWorker[method](canvas);
    await inPage[method](canvas);
  }
  for (let i = 0; i < frames; i++) {
    let t = now();
    await inWorker[method](canvas);
    lat.worker.push(now() - t);
    t = now();
    await inPage[method](canvas);
    lat.page.push(now() - t);
  }
  await Promise.all([inWorker.close(), inPage.close()]);
  return lat;
}

window.bench = { firstResult, longTasks, hop };
window.benchReady = true;
