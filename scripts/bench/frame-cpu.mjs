#!/usr/bin/env node
// CPU time per warm frame (issue 14): what a frame costs the page's thread, apart from the GPU's
// own work. sightline runs in the page (worker: false), so every task of the frame — reading the
// source's pixels, crossing into wasm, preprocessing (on the CPU, or on the GPU on WebGPU since
// issue 14), recording and submitting the GPU work, the readback callback, decoding the result —
// lands on the main thread, whose busy time Chromium reports over the DevTools protocol
// (`Performance.getMetrics`: TaskDuration = all tasks, ScriptDuration = JS + wasm).
//
//   node scripts/bench/frame-cpu.mjs [--models effnet,nanodet] [--backend webgpu|cpu]
//        [--sizes 640x480,1280x720] [--sources canvas,pixels] [--frames N] [--out FILE.json]
//        [--pkg DIR]   (serve another build of pkg/, e.g. the previous commit's, for a before/after)
//
// Prints a table; with --out also writes JSON. On the software adapter (SwiftShader) the GPU
// work runs in Chromium's GPU process, not on the page's thread, so it is not counted here.
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { arg } from "../lib/args.mjs";
import { launch, openPage, startServer } from "../lib/pages.mjs";

const models = arg("--models", "effnet,nanodet").split(",");
const backend = arg("--backend", "webgpu");
const sizes = arg("--sizes", "640x480,1280x720").split(",").map((s) => s.split("x").map(Number));
const sources = arg("--sources", "canvas,pixels").split(",");
const frames = Number(arg("--frames", 5));
const out = arg("--out", null);
const pkg = arg("--pkg", null);

const { server, url } = await startServer(undefined, { mounts: pkg ? { "/pkg/": pkg } : {} });
const browser = await launch();
const rows = [];
try {
  const h = await openPage(browser, `${url}/scripts/bench/bench.html`);
  await h.page.waitForFunction(() => window.benchReady === true);
  const cdp = await h.page.context().newCDPSession(h.page);
  await cdp.send("Performance.enable", { timeDomain: "threadTicks" });
  const metrics = async () => {
    const { metrics: list } = await cdp.send("Performance.getMetrics");
    return Object.fromEntries(list.map((m) => [m.name, m.value]));
  };
  const adapter = await h.page.evaluate(() => window.bench.adapter());
  console.log(`WebGPU adapter: ${adapter ? `${adapter.vendor} / ${adapter.architecture} ${adapter.description ?? ""}` : "none"}`);
  console.log(`${cpus().length}× ${cpus()[0]?.model}, ${browser.version()}, ${frames} warm frames per row, sightline in the page`);
  console.log("| model | backend | frame | source | CPU ms/frame (all tasks) | of which JS + wasm | wall ms/frame |");
  console.log("|---|---|---|---|---:|---:|---:|");
  for (const model of models) {
    for (const [width, height] of sizes) {
      for (const source of sources) {
        const got = await h.page.evaluate((o) => window.bench.prepareFrames(o), { model, backend, width, height, source });
        const before = await metrics();
        const wallMs = await h.page.evaluate((n) => window.frameRun(n), frames);
        const after = await metrics();
        const per = (name) => (1000 * (after[name] - before[name])) / frames;
        const row = { model, backend: got, width, height, source, frames, cpuMs: per("TaskDuration"), scriptMs: per("ScriptDuration"), wallMs };
        rows.push(row);
        console.log(
          `| ${model} | ${got} | ${width}×${height} | ${source} | ${row.cpuMs.toFixed(2)} | ${row.scriptMs.toFixed(2)} | ${wallMs.toFixed(1)} |`,
        );
      }
    }
  }
  await h.page.evaluate(() => window.frameTask?.close());
  h.assertClean();
  await h.close();
  if (out) writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: `${cpus().length}× ${cpus()[0]?.model}`, browser: browser.version(), adapter, rows }, null, 2));
} finally {
  await browser.close();
  server.close();
}
