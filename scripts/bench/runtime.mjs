#!/usr/bin/env node
// How sightline adapts to the page it lands on, in headless Chromium (issue 9's figures):
// time to the first result with defaults only ("auto"), main-thread long tasks during a CPU
// frame loop (worker vs in-page), and the worker hop's cost per frame (p50, same run).
//
//   node scripts/bench/runtime.mjs [--frames 100] [--hop-frames 30] [--before DIR] [--out FILE.json]
//
// --before DIR: a checkout of an earlier version with its pkg/ built; its library is measured
// in the same run for the first-result row (served under /before/).
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { arg } from "../lib/args.mjs";
import { ROOT, launch, openPage, startServer } from "../lib/pages.mjs";

const frames = Number(arg("--frames", 100));
const hopFrames = Number(arg("--hop-frames", 30));
const before = arg("--before", null);
const out = arg("--out", join(ROOT, "bench-results", "runtime.json"));

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const ms = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);

const { server, url } = await startServer(ROOT, { mounts: before ? { "/before/": before } : {} });
const browser = await launch();
const report = { date: new Date().toISOString(), machine: `${cpus().length}× ${cpus()[0]?.model}`, browser: browser.version() };

/** Runs `fn(options)` in a fresh page (and so a fresh browser context: cold caches) of `lib`. */
async function inPage(lib, fn, options) {
  const h = await openPage(browser, `${url}/scripts/bench/runtime.html?lib=${encodeURIComponent(lib)}`);
  try {
    await h.page.waitForFunction(() => window.benchReady === true, null, { timeout: 60_000 });
    return await h.page.evaluate(([f, o]) => window.bench[f](o), [fn, options]);
  } finally {
    await h.close();
  }
}

try {
  const libs = { after: "/www/lib/sightline.js", ...(before ? { before: "/before/www/lib/sightline.js" } : {}) };
  report.firstResult = [];
  for (const model of ["effnet", "nanodet"]) {
    for (const [which, lib] of Object.entries(libs)) {
      console.error(`runtime: first result, ${model}, ${which}…`);
      report.firstResult.push({ model, which, ...(await inPage(lib, "firstResult", { model })) });
    }
  }
  report.longTasks = [];
  report.hop = [];
  for (const model of ["effnet", "nanodet"]) {
    for (const worker of [true, false]) {
      console.error(`runtime: long tasks, ${model}, ${worker ? "worker" : "in-page"}, ${frames} frames…`);
      report.longTasks.push({ model, worker, ...(await inPage(libs.after, "longTasks", { model, frames, worker })) });
    }
    console.error(`runtime: worker hop, ${model}, ${hopFrames} frames each…`);
    const lat = await inPage(libs.after, "hop", { model, frames: hopFrames });
    report.hop.push({ model, workerP50: quantile(lat.worker, 0.5), pageP50: quantile(lat.page, 0.5), ...lat });
  }
} finally {
  await browser.close();
  server.close();
}

const lines = [`sightline runtime — ${report.date.slice(0, 16)} — ${report.machine} — ${report.browser}`, ""];
lines.push("| model | library | defaults: create() + first 640×480 result | backend | why |", "|---|---|---|---|---|");
for (const r of report.firstResult) lines.push(`| ${r.model} | ${r.which} | ${ms(r.ms)} | ${r.backend} | ${r.reason ?? ""} |`);
lines.push("", `| model | mode | long tasks during ${frames} CPU frames | longest | total | wall |`, "|---|---|---|---|---|---|");
for (const r of report.longTasks) {
  lines.push(`| ${r.model} | ${r.worker ? "worker" : "in-page"} | ${r.count} | ${ms(r.maxMs)} | ${ms(r.totalMs)} | ${ms(r.wallMs)} |`);
}
lines.push("", "| model | p50 per frame, worker | p50 per frame, in-page | hop cost |", "|---|---|---|---|");
for (const r of report.hop) lines.push(`| ${r.model} | ${ms(r.workerP50)} | ${ms(r.pageP50)} | ${ms(r.workerP50 - r.pageP50)} |`);
console.log(lines.join("\n"));
writeFileSync(out, JSON.stringify({ ...report, table: lines.join("\n") }, null, 1));
console.error(`runtime: wrote ${out}`);
