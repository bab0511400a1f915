#!/usr/bin/env node
// Where the time goes inside the browser: Chromium's sampling profiler (over the DevTools
// protocol) around warm frames of one model on one backend, self time summed per function.
// wasm functions keep their Rust names if pkg/ was built with `scripts/build.sh --keep-names`
// (a shipped build has no name section).
//
//   node scripts/bench/profile.mjs [--model effnet|nanodet] [--backend cpu|webgpu] [--frames N] [--top N]
//        [--pkg DIR]   (serve another build of pkg/, e.g. a copy of the previous one, for an A/B)
import { arg, flag } from "../lib/args.mjs";
import { launch, openPage, startServer } from "../lib/pages.mjs";

const model = arg("--model", "effnet");
const backend = arg("--backend", "cpu");
const frames = Number(arg("--frames", 20));
const top = Number(arg("--top", 30));

const pkg = arg("--pkg", null);
const { server, url } = await startServer(undefined, { mounts: pkg ? { "/pkg/": pkg } : {} });
const browser = await launch();
try {
  const h = await openPage(browser, `${url}/scripts/bench/bench.html`);
  await h.page.waitForFunction(() => window.benchReady === true);
  const got = await h.page.evaluate((o) => window.bench.prepare(o), { model, backend });
  const cdp = await h.page.context().newCDPSession(h.page);
  if (flag("--time-only")) {
    const times = [];
    for (let i = 0; i < 5; i++) times.push(await h.page.evaluate((n) => window.profileRun(n), Math.ceil(frames / 5)));
    console.log(`${model} on ${got}: ${times.map((t) => t.toFixed(1)).join(" ")} ms/frame (5 runs of ${Math.ceil(frames / 5)}), min ${Math.min(...times).toFixed(1)}`);
    process.exit(0);
  }
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
  await cdp.send("Profiler.start");
  const msPerFrame = await h.page.evaluate((n) => window.profileRun(n), frames);
  const { profile } = await cdp.send("Profiler.stop");

  // Self time per node = samples hitting it × the mean sampling interval.
  const hits = new Map();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const byName = new Map();
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? 0;
    if (!n) continue;
    const f = node.callFrame;
    const name = f.functionName || `(anonymous ${f.url.split("/").pop()}:${f.lineNumber})`;
    byName.set(name, (byName.get(name) ?? 0) + n);
  }
  const rows = [...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  console.log(`${model} on ${got}: ${frames} warm frames, ${msPerFrame.toFixed(1)} ms/frame, ${total} samples`);
  console.log("| self % | function |");
  console.log("|---:|---|");
  for (const [name, n] of rows) console.log(`| ${((100 * n) / total).toFixed(1)} | ${name.slice(0, 140)} |`);
  await h.close();
} finally {
  await browser.close();
  server.close();
}
