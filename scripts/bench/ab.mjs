#!/usr/bin/env node
// Same-run A/B of two builds of pkg/ (e.g. before and after a size change): one headless
// Chromium, one page per build (each on its own server, so nothing is shared), warm frames of one
// model on one backend, rounds alternated A, B, A, B… so both builds see the same machine noise.
// Prints ms/frame per round and the minimum of each build, and B/A of the minimums.
//
//   node scripts/bench/ab.mjs --a DIR --b DIR [--model effnet|nanodet] [--backend cpu|webgpu]
//        [--rounds 7] [--frames 10] [--out FILE.json]
import { writeFileSync } from "node:fs";
import { arg } from "../lib/args.mjs";
import { launch, openPage, startServer } from "../lib/pages.mjs";

const a = arg("--a", null);
const b = arg("--b", null);
if (!a || !b) {
  console.error("usage: ab.mjs --a PKG_DIR --b PKG_DIR [--model effnet|nanodet] [--backend cpu|webgpu] [--rounds N] [--frames N]");
  process.exit(2);
}
const model = arg("--model", "effnet");
const backend = arg("--backend", "cpu");
const rounds = Number(arg("--rounds", 7));
const frames = Number(arg("--frames", 10));
const out = arg("--out", null);

const servers = [];
const browser = await launch();
try {
  const pages = {};
  for (const [name, dir] of [["A", a], ["B", b]]) {
    const { server, url } = await startServer(undefined, { mounts: { "/pkg/": dir } });
    servers.push(server);
    const h = await openPage(browser, `${url}/scripts/bench/bench.html`);
    await h.page.waitForFunction(() => window.benchReady === true);
    const got = await h.page.evaluate((o) => window.bench.prepare(o), { model, backend });
    pages[name] = { h, backend: got, times: [] };
  }
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 ? ["B", "A"] : ["A", "B"]) {
      pages[name].times.push(await pages[name].h.page.evaluate((n) => window.profileRun(n), frames));
    }
  }
  const min = (xs) => Math.min(...xs);
  for (const name of ["A", "B"]) {
    const p = pages[name];
    console.log(`${name} (${p.backend}): ${p.times.map((t) => t.toFixed(1)).join(" ")} ms/frame; min ${min(p.times).toFixed(1)}`);
  }
  const ratio = min(pages.B.times) / min(pages.A.times);
  console.log(`${model} ${backend}: B/A of the minimums = ${ratio.toFixed(3)} (${rounds} rounds of ${frames} frames)`);
  if (out) {
    writeFileSync(out, `${JSON.stringify({ model, backend, rounds, frames, a, b, A: pages.A.times, B: pages.B.times, ratio }, null, 1)}\n`);
  }
  for (const p of Object.values(pages)) await p.h.close();
} finally {
  await browser.close();
  for (const s of servers) s.close();
}
