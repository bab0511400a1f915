#!/usr/bin/env node
// The benchmark: sightline vs onnxruntime-web on the same networks, in headless Chromium.
//
//   node scripts/bench/bench.mjs --peer-onnx DIR [--frames N] [--webgpu-frames N]
//        [--memory-frames N] [--webgpu-memory-frames N] [--memory-backends cpu,webgpu]
//        [--models effnet,nanodet] [--backends webgpu,cpu] [--out FILE.json]
//
// DIR holds efficientnet_lite0_224_opset16.onnx and nanodet_g_416_coco_opset16.onnx (the same
// weights as ONNX). Prints tables and writes JSON (default bench-results/<date>.json).
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";
import { arg } from "../lib/args.mjs";
import { ROOT, launch, openPage, startServer } from "../lib/pages.mjs";

const peerDir = arg("--peer-onnx", null);
const frames = Number(arg("--frames", 20));
const memoryFrames = Number(arg("--memory-frames", 1000));
const webgpuFrames = Number(arg("--webgpu-frames", 10));
// Software WebGPU runs seconds per frame here; on a real GPU pass --webgpu-memory-frames 1000.
const webgpuMemoryFrames = Number(arg("--webgpu-memory-frames", 1000));
const models = arg("--models", "effnet,nanodet").split(",");
const backends = arg("--backends", "webgpu,cpu").split(",").filter(Boolean);
const memoryBackends = arg("--memory-backends", "cpu").split(",").filter(Boolean);
const out = arg("--out", join(ROOT, "bench-results", `${new Date().toISOString().slice(0, 10)}.json`));

const PEER = { effnet: "efficientnet_lite0_224_opset16.onnx", nanodet: "nanodet_g_416_coco_opset16.onnx" };
const IMAGE = { effnet: "dog.jpg", nanodet: "dog.jpg" };
const EP = { webgpu: "webgpu", cpu: "wasm" };

function sizes(path) {
  const raw = readFileSync(path);
  return {
    raw: raw.length,
    gzip: gzipSync(raw, { level: 9 }).length,
    brotli: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const ms = (x) => (x === undefined || Number.isNaN(x) ? "–" : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
const mb = (x) => `${(x / 1e6).toFixed(2)} MB`;

const report = {
  date: new Date().toISOString(),
  machine: `${cpus().length}× ${cpus()[0]?.model ?? "cpu"}`,
  sizes: {
    sightline: sizes(join(ROOT, "pkg/sightline_bg.wasm")),
    // The build Chromium loads (it has relaxed SIMD; README "Performance").
    sightlineRelaxed: sizes(join(ROOT, "pkg/sightline_relaxed_bg.wasm")),
  },
  runs: [],
  memory: [],
};
const ortWasm = join(ROOT, "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.wasm");
if (existsSync(ortWasm)) report.sizes.ortWeb = sizes(ortWasm);

const { server, url } = await startServer(ROOT, { mounts: peerDir ? { "/peer/": peerDir } : {} });
const browser = await launch(["--enable-precise-memory-info", "--js-flags=--expose-gc"]);
report.browser = browser.version();
try {
  {
    const h = await openPage(browser, `${url}/scripts/bench/bench.html`);
    await h.page.waitForFunction(() => window.benchReady === true);
    report.adapter = await h.page.evaluate(() => window.bench.adapter());
    await h.close();
  }
  for (const model of models) {
    for (const backend of backends) {
      const h = await openPage(browser, `${url}/scripts/bench/bench.html`);
      await h.page.waitForFunction(() => window.benchReady === true);
      const n = backend === "webgpu" ? Math.min(frames, webgpuFrames) : frames;
      console.error(`bench: ${model} on ${backend}, ${n} frames${peerDir ? " interleaved with onnxruntime-web" : ""}…`);
      const r = await h.page.evaluate((o) => window.bench.compare(o), {
        model,
        backend,
        ep: EP[backend],
        frames: n,
        peer: peerDir ? PEER[model] : null,
        image: IMAGE[model],
      });
      for (const who of ["sightline", "ort"]) {
        if (r[who]) Object.assign(r[who], { p50: quantile(r[who].latencies, 0.5), p95: quantile(r[who].latencies, 0.95) });
      }
      report.runs.push(r);
      await h.close();
    }
    for (const backend of memoryBackends) {
      const h = await openPage(browser, `${url}/scripts/bench/bench.html`);
      await h.page.waitForFunction(() => window.benchReady === true);
      const n = backend === "webgpu" ? Math.min(memoryFrames, webgpuMemoryFrames) : memoryFrames;
      console.error(`bench: memory, ${model} on ${backend}, ${n} frames…`);
      const r = await h.page.evaluate((o) => window.bench.memory(o), { model, backend, frames: n, image: IMAGE[model] });
      const [first, last] = [r.samples[0], r.samples.at(-1)];
      r.jsHeapGrowth = last.jsHeap - first.jsHeap;
      r.wasmGrowth = last.wasm - first.wasm;
      report.memory.push(r);
      await h.close();
    }
  }
} finally {
  await browser.close();
  server.close();
}

const lines = [];
lines.push(`sightline benchmark — ${report.date.slice(0, 16)} — ${report.machine} — ${report.browser}`);
const a = report.adapter;
lines.push(
  a
    ? `WebGPU adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(" / ")}${a.isFallbackAdapter ? " (software fallback adapter)" : ""}`
    : "WebGPU adapter: none",
);
lines.push("");
lines.push("| wasm | raw | gzip | brotli |");
lines.push("|---|---|---|---|");
for (const [who, s] of Object.entries(report.sizes)) lines.push(`| ${who} | ${mb(s.raw)} | ${mb(s.gzip)} | ${mb(s.brotli)} |`);
lines.push("");
lines.push("| model | backend | create (wasm / device / weights / build / warm-up) | first result | warm p50 | warm p95 | ort-web create | ort first | ort p50 | ort p95 | p50 ratio sightline/ort |");
lines.push("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of report.runs) {
  const s = r.sightline;
  const t = s.loadTimings;
  const o = r.ort ?? {};
  const ratio = o.p50 ? (s.p50 / o.p50).toFixed(2) : "–";
  lines.push(
    `| ${r.model} | ${s.backend} | ${ms(s.createMs)} (${ms(t.wasmMs)} / ${ms(t.deviceMs)} / ${ms(t.weightsMs)} / ${ms(t.buildMs)} / ${ms(t.warmUpMs)}) | ${ms(s.firstResultMs)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(o.createMs)} | ${ms(o.firstResultMs)} | ${ms(o.p50)} | ${ms(o.p95)} | ${ratio} |`,
  );
}
const calls = report.runs.filter((r) => r.backend === "webgpu" && r.sightline.gpuCalls);
if (calls.length) {
  // The launch-count proxy for real GPUs (issue 14): what one warm frame asks of WebGPU.
  const cell = (c) =>
    c
      ? `${c.dispatches} / ${c.computePasses} / ${c.bindGroups} / ${c.submits} / ${c.buffersCreated} / ${c.bufferWrites} (${c.bytesWritten} B) / ${c.readbacks}`
      : "–";
  lines.push("");
  lines.push("| WebGPU calls per warm frame: dispatches / compute passes / bind groups / submits / buffers created / buffer writes (bytes) / readbacks | sightline | onnxruntime-web |");
  lines.push("|---|---|---|");
  for (const r of calls) lines.push(`| ${r.model} | ${cell(r.sightline.gpuCalls)} | ${cell(r.ort?.gpuCalls)} |`);
}
if (report.memory.length) {
  lines.push("");
  lines.push("| memory loop | backend | frames | ms/frame | JS heap growth | wasm memory growth | wasm memory |");
  lines.push("|---|---|---|---|---|---|---|");
  for (const r of report.memory) {
    lines.push(
      `| ${r.model} | ${r.backend} | ${r.frames} | ${ms(r.msPerFrame)} | ${mb(r.jsHeapGrowth)} | ${mb(r.wasmGrowth)} | ${mb(r.samples.at(-1).wasm)} |`,
    );
  }
}
console.log(lines.join("\n"));
mkdirSync(join(out, ".."), { recursive: true });
writeFileSync(out, JSON.stringify({ ...report, table: lines.join("\n") }, null, 1));
console.error(`bench: wrote ${out}`);
