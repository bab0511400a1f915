#!/usr/bin/env node
// The soak (issue 10; a script, not a CI test): many frames from a moving source through one
// classifier in headless Chromium (worker mode, the default), then create()/close() cycles on each
// backend. Reports crashes (rejected calls), JS heap and wasm memory growth (after a forced GC),
// and p50/p99 latency of the first and last 1,000 frames. Writes bench-results/soak.json.
//
//   node scripts/bench/soak.mjs [--cpu-frames 10000] [--webgpu-frames 100] [--webgpu-minutes M]
//        [--cycles 50] [--cycle-backends cpu,webgpu] [--out FILE]
//
// The WebGPU phase ends after --webgpu-frames frames or --webgpu-minutes minutes, whichever comes
// first: "as many WebGPU frames as an hour allows" is --webgpu-frames 100000 --webgpu-minutes 60.
//
// The moving source: a canvas with coffee.png panned by one pixel a frame (so no two
// consecutive frames are the same pixels), passed to classify() as a webcam loop would.
// "WebGPU" on a machine without a GPU is Chromium's SwiftShader (≈3 s a frame).
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { arg } from "../lib/args.mjs";
import { ROOT, launch, openPage, startServer } from "../lib/pages.mjs";

const cpuFrames = Number(arg("--cpu-frames", 10_000));
const webgpuFrames = Number(arg("--webgpu-frames", 100));
const webgpuMinutes = Number(arg("--webgpu-minutes", Infinity));
const cycles = Number(arg("--cycles", 50));
const cycleBackends = arg("--cycle-backends", "cpu,webgpu").split(",").filter(Boolean);
const out = arg("--out", join(ROOT, "bench-results", "soak.json"));

const { server, url } = await startServer();
// --expose-gc: window.gc() so heap figures are after a collection, not before one.
const browser = await launch(["--js-flags=--expose-gc", "--enable-precise-memory-info"]);
const report = {
  date: new Date().toISOString(),
  machine: `${cpus().length}× ${cpus()[0]?.model}`,
  browser: browser.version(),
  source: "canvas with coffee.png panned one pixel a frame; classify() in worker mode",
};

/** In the page: memory after a forced GC (page JS heap; wasm memory of every sightline instance). */
const MEMORY = `async () => {
  for (let i = 0; i < 3; i++) { window.gc(); await new Promise((r) => setTimeout(r, 50)); }
  return { jsHeap: performance.memory.usedJSHeapSize, wasm: window.sightline.memoryUsage().wasmBytes };
}`;

async function frames(h, backend, count, minutes = Infinity) {
  return h.page.evaluate(
    async ({ backend, count, memory, budgetMs }) => {
      const measure = eval(memory);
      const { ImageClassifier } = window.sightline;
      const img = await window.loadImage("/tests/fixtures/images/coffee.png");
      const canvas = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
      const ctx = canvas.getContext("2d");
      const c = await ImageClassifier.create({ backend, maxResults: 1 });
      const latencies = [];
      const memorySeries = [];
      const tops = {};
      let crashes = 0;
      const errors = [];
      // With a time budget the frame count is unknown: memory every 10 frames (the summary keeps all).
      const step = Number.isFinite(budgetMs) ? 10 : Math.max(1, Math.floor(count / 10));
      const start = performance.now();
      let i = 0;
      for (; i < count && performance.now() - start < budgetMs; i++) {
        if (i % step === 0) memorySeries.push({ frame: i, ...(await measure()) });
        ctx.drawImage(img, (i % 64) - 32, 0);
        const t = performance.now();
        try {
          const r = await c.classify(canvas);
          tops[r.classes[0].label] = (tops[r.classes[0].label] ?? 0) + 1;
        } catch (e) {
          crashes += 1;
          if (errors.length < 5) errors.push(`${e.name}: ${e.message}`);
        }
        latencies.push(performance.now() - t);
      }
      memorySeries.push({ frame: i, ...(await measure()) });
      await c.close();
      return { backend: c.backend, latencies, memorySeries, tops, crashes, errors, seconds: (performance.now() - start) / 1000 };
    },
    { backend, count, memory: MEMORY, budgetMs: minutes * 60_000 },
  );
}

async function createCloseCycles(h, backend, count) {
  return h.page.evaluate(
    async ({ backend, count, memory }) => {
      const measure = eval(memory);
      const { ImageClassifier, ObjectDetector } = window.sightline;
      const img = await window.loadImage("/tests/fixtures/images/coffee.png");
      let crashes = 0;
      const errors = [];
      const series = [];
      for (let i = 0; i < count; i++) {
        try {
          const Task = i % 2 ? ObjectDetector : ImageClassifier;
          const t = await Task.create({ backend });
          await (i % 2 ? t.detect(img) : t.classify(img));
          await t.close();
        } catch (e) {
          crashes += 1;
          if (errors.length < 5) errors.push(`${e.name}: ${e.message}`);
        }
        // After close() the worker is gone: nothing of sightline's should be left.
        if (i === 0 || i === count - 1 || i % 10 === 9) series.push({ cycle: i + 1, ...(await measure()) });
      }
      return { crashes, errors, series };
    },
    { backend, count, memory: MEMORY },
  );
}

/** Writes what has been measured so far (a long run cut short keeps its finished phases). */
const save = () => writeFileSync(out, `${JSON.stringify(report, null, 1)}\n`);

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const window1000 = (xs) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), n: xs.length });

function summarise({ backend, latencies, memorySeries, tops, crashes, errors, seconds }) {
  const n = Math.min(1000, Math.floor(latencies.length / 2));
  const first = memorySeries[1] ?? memorySeries[0]; // after the first frames: the model is loaded
  const last = memorySeries.at(-1);
  return {
    backend,
    frames: latencies.length,
    seconds,
    crashes,
    errors,
    tops,
    firstFrames: window1000(latencies.slice(0, n)),
    lastFrames: window1000(latencies.slice(-n)),
    jsHeapGrowthBytes: last.jsHeap - first.jsHeap,
    wasmGrowthBytes: last.wasm - first.wasm,
    memorySeries,
  };
}

try {
  const h = await openPage(browser, `${url}/tests/browser/harness.html`);
  await h.page.waitForFunction(() => window.harnessReady === true);
  report.frames = [];
  for (const [backend, count] of [["cpu", cpuFrames], ["webgpu", webgpuFrames]]) {
    if (count <= 0) continue;
    console.error(`soak: ${count} frames on ${backend}…`);
    const s = summarise(await frames(h, backend, count, backend === "webgpu" ? webgpuMinutes : Infinity));
    report.frames.push(s);
    save();
    console.error(
      `  ${s.frames} frames, ${s.crashes} crashes; p50/p99 first ${s.firstFrames.p50.toFixed(1)}/${s.firstFrames.p99.toFixed(1)} ms, ` +
        `last ${s.lastFrames.p50.toFixed(1)}/${s.lastFrames.p99.toFixed(1)} ms; JS heap ${(s.jsHeapGrowthBytes / 1e6).toFixed(3)} MB, ` +
        `wasm ${(s.wasmGrowthBytes / 1e6).toFixed(3)} MB growth`,
    );
  }
  report.cycles = [];
  for (const backend of cycleBackends) {
    if (cycles <= 0) continue;
    console.error(`soak: ${cycles} create()/close() cycles on ${backend} (classifier and detector alternately)…`);
    const r = await createCloseCycles(h, backend, cycles);
    const first = r.series[0];
    const last = r.series.at(-1);
    const s = { backend, cycles, ...r, jsHeapGrowthBytes: last.jsHeap - first.jsHeap, wasmAfterLastClose: last.wasm };
    report.cycles.push(s);
    save();
    console.error(
      `  ${s.crashes} crashes; JS heap ${(s.jsHeapGrowthBytes / 1e6).toFixed(3)} MB growth from cycle 1 to ${cycles}; ` +
        `wasm memory after the last close ${s.wasmAfterLastClose} bytes`,
    );
  }
  h.assertClean();
  await h.close();
} finally {
  await browser.close();
  server.close();
}
save();
console.error(`soak: wrote ${out}`);
