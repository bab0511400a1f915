#!/usr/bin/env node
// The first result after create() vs warm frames, many times over: each round opens a fresh page
// (a fresh wasm instance), creates the task in the page on the CPU, times the first call on a
// 768×576 frame (dog.jpg's pixels), then `--warm` more, and prints first / median(warm) per round
// and the median of those ratios. A single first frame is one sample; this gives a distribution.
//
//   node scripts/bench/first.mjs [--model effnet|nanodet] [--rounds 8] [--warm 5] [--pkg DIR]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { arg } from "../lib/args.mjs";
import { parseNpy } from "../lib/npy.mjs";
import { ROOT, launch, openPage, startServer } from "../lib/pages.mjs";

const model = arg("--model", "effnet");
const rounds = Number(arg("--rounds", 8));
const warm = Number(arg("--warm", 5));
const pkg = arg("--pkg", null);

const { shape, data: rgb } = parseNpy(readFileSync(join(ROOT, "tests/fixtures/dog/image_rgb_u8.npy")));
const [height, width] = shape;
const rgba = new Array(width * height * 4).fill(255);
for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) rgba[4 * i + c] = rgb[3 * i + c];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const { server, url } = await startServer(undefined, pkg ? { mounts: { "/pkg/": pkg } } : undefined);
const browser = await launch();
const ratios = [];
try {
  for (let r = 0; r < rounds; r++) {
    const h = await openPage(browser, `${url}/tests/browser/harness.html`);
    await h.page.waitForFunction(() => window.harnessReady === true);
    const t = await h.page.evaluate(
      async ({ model, warm, rgba, width, height }) => {
        const { ImageClassifier, ObjectDetector } = window.sightline;
        const [Task, method] = model === "effnet" ? [ImageClassifier, "classify"] : [ObjectDetector, "detect"];
        const task = await Task.create({ backend: "cpu", worker: false });
        const pixels = { data: Uint8Array.from(rgba), width, height };
        const times = [];
        for (let i = 0; i <= warm; i++) {
          const t0 = performance.now();
          await task[method](pixels);
          times.push(performance.now() - t0);
        }
        await task.close();
        return times;
      },
      { model, warm, rgba, width, height },
    );
    const ratio = t[0] / median(t.slice(1));
    ratios.push(ratio);
    console.log(`round ${r + 1}: first ${t[0].toFixed(1)} ms, warm median ${median(t.slice(1)).toFixed(1)} ms, ratio ${ratio.toFixed(2)}`);
    await h.close();
  }
  console.log(`${model}: first / warm median over ${rounds} rounds = ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)})`);
} finally {
  await browser.close();
  server.close();
}
