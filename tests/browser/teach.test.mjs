// Teach and explain in headless Chromium: embeddings, a trainer in the worker and in the page,
// export → create({ head }) round trip, explanations on WebGPU and the CPU, drawHeatmap.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseNpy } from "../../scripts/lib/npy.mjs";
import { ROOT, launch, openHarness, referencePixels, startServer } from "./helpers.mjs";

/** Embeddings vs the independent reference (onnxruntime, tests/tools/pooled_reference.py). */
const EMBED_REL_TOL = 1e-4;
/** WebGPU vs CPU heat maps. */
const GRID_TOL = 1e-3;

let browser;
let server;
let base;

before(async () => {
  ({ server, url: base } = await startServer());
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
});

/**
 * In the page: helpers that crop fixture images into canvases, `(left, top, right, bottom)` as
 * fractions (the same windows as the native test).
 */
const PAGE_HELPERS = `
  window.crop = async (file, [l, t, r, b]) => {
    const img = await window.loadImage("/tests/fixtures/images/" + file);
    const [w, h] = [img.naturalWidth, img.naturalHeight];
    const [x0, y0, x1, y1] = [Math.floor(l * w), Math.floor(t * h), Math.floor(r * w), Math.floor(b * h)];
    const c = new OffscreenCanvas(x1 - x0, y1 - y0);
    c.getContext("2d").drawImage(img, x0, y0, x1 - x0, y1 - y0, 0, 0, x1 - x0, y1 - y0);
    return c;
  };
  window.TEACH = [["chelsea.png", "cat"], ["coffee.png", "coffee"], ["dog.jpg", "dog"]];
  window.TRAIN_CROPS = [[0, 0, 0.75, 0.75], [0.25, 0, 1, 0.75], [0, 0.25, 0.75, 1], [0.25, 0.25, 1, 1]];
  window.HELD_APART_CROPS = [[0.1, 0.1, 0.9, 0.9], [0, 0.2, 1, 0.8], [0.2, 0, 0.8, 1], [0.05, 0.3, 0.65, 0.9]];
`;

async function harness() {
  const h = await openHarness(browser, base);
  await h.page.evaluate(PAGE_HELPERS);
  return h;
}

test("embed() matches the independent pooled features", { timeout: 300_000 }, async () => {
  const h = await harness();
  // The reference's own decoded pixels (the browser may colour-manage a PNG it decodes itself).
  const { data: rgba, width, height } = referencePixels("chelsea");
  const embedding = await h.page.evaluate(async ({ rgba, width, height }) => {
    // The f32 weights, as the reference (the package's default f16 ones differ by ≈2e-3 here).
    const model = "/models/efficientnet-lite0.f32.safetensors";
    const c = await window.sightline.ImageClassifier.create({ backend: "cpu", model, precision: "f32" });
    const e = await c.embed({ data: Uint8Array.from(rgba), width, height });
    await c.close();
    return { type: e.constructor.name, values: [...e] };
  }, { rgba, width, height });
  assert.equal(embedding.type, "Float32Array");
  assert.equal(embedding.values.length, 1280);
  const { data: expected } = parseNpy(readFileSync(join(ROOT, "tests/fixtures/chelsea/cls_crop224_pooled.npy")));
  let diff = 0;
  let scale = 0;
  expected.forEach((v, i) => {
    diff = Math.max(diff, Math.abs(v - embedding.values[i]));
    scale = Math.max(scale, Math.abs(v));
  });
  console.log(`chelsea: embedding relative max |Δ| ${(diff / scale).toExponential(2)}`);
  assert.ok(diff / scale <= EMBED_REL_TOL, `relative difference ${diff / scale}`);
  h.assertClean();
  await h.close();
});

for (const worker of [true, false]) {
  test(`a trainer ${worker ? "in the worker" : "in the page"}: train, classify held-apart crops, export and reload`, { timeout: 600_000 }, async () => {
    const h = await harness();
    const out = await h.page.evaluate(async (worker) => {
      const { ImageClassifier } = window.sightline;
      const base = await ImageClassifier.create({ backend: "cpu", worker });
      const trainer = await base.createTrainer();
      const errors = {};
      const name = async (key, f) => {
        try {
          await f();
          errors[key] = "no error";
        } catch (e) {
          errors[key] = e.name;
        }
      };
      await name("classifierBeforeTraining", () => trainer.classifier());
      await name("emptyLabel", () => trainer.addExample(window.crop("coffee.png", [0, 0, 1, 1]), ""));
      for (const [file, label] of window.TEACH) {
        for (const window_ of window.TRAIN_CROPS) await trainer.addExample(await window.crop(file, window_), label, { augment: true });
      }
      await trainer.addExample(await window.crop("person.jpg", [0, 0, 1, 1]), "person");
      const counts = trainer.labels.map((l) => [l, trainer.count(l)]);
      const removed = trainer.removeLabel("person");
      const labelsAfterRemove = trainer.labels;
      const epochs = [];
      const t0 = performance.now();
      const report = await trainer.train({ epochs: 40, onProgress: (e) => epochs.push(e) });
      const trainMs = performance.now() - t0;
      const custom = await trainer.classifier();
      const results = [];
      for (const [file, label] of window.TEACH) {
        for (const window_ of window.HELD_APART_CROPS) {
          const r = await custom.classify(await window.crop(file, window_));
          results.push({ label, got: r.classes[0].label, classes: r.classes });
        }
      }
      const head = await trainer.exportHead();
      const reloaded = await ImageClassifier.create({ backend: "cpu", worker, head });
      const again = [];
      for (const [file] of window.TEACH) again.push((await reloaded.classify(await window.crop(file, window.HELD_APART_CROPS[0]))).classes);
      // Bad heads and too few labels: named errors, and the objects keep working.
      await name("corruptHead", () => ImageClassifier.create({ backend: "cpu", worker, head: new Uint8Array([1, 2, 3, 4]) }));
      await name("detectorHead", () => window.sightline.ObjectDetector.create({ backend: "cpu", worker, head }));
      const lonely = await base.createTrainer();
      await lonely.addExample(await window.crop("dog.jpg", [0, 0, 1, 1]), "dog");
      await name("oneLabel", () => lonely.train());
      await name("badEpochs", () => trainer.train({ epochs: 0 }));
      const stillWorks = (await base.classify(await window.crop("coffee.png", [0, 0, 1, 1]))).classes[0].label;
      await Promise.all([base.close(), custom.close(), reloaded.close()]);
      return {
        counts, removed, labelsAfterRemove, epochs, report, trainMs, results, again, errors, stillWorks,
        headBytes: head.length, backend: custom.backend,
      };
    }, worker);
    console.log(
      `${worker ? "worker" : "page"}: trained ${out.counts.slice(0, 3).map(([l, n]) => `${l}×${n}`).join(", ")} ` +
        `for ${out.epochs.length} epochs in ${out.trainMs.toFixed(0)} ms, loss ${out.report.loss[0].toFixed(3)} → ` +
        `${out.report.loss.at(-1).toFixed(4)}, head file ${out.headBytes} bytes`,
    );
    assert.deepEqual(out.counts, [["cat", 24], ["coffee", 24], ["dog", 24], ["person", 1]]);
    assert.equal(out.removed, true);
    assert.deepEqual(out.labelsAfterRemove, ["cat", "coffee", "dog"]);
    assert.equal(out.epochs.length, 40);
    assert.deepEqual(out.epochs.map((e) => e.epoch), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.equal(out.report.loss.length, 40);
    assert.equal(out.report.trainAccuracy, 1);
    assert.ok(out.report.loss.at(-1) < out.report.loss[0] / 4);
    for (const r of out.results) {
      assert.equal(r.got, r.label, `held-apart crop of ${r.label} classified as ${r.got}`);
      assert.equal(r.classes.length, 3);
    }
    // The reloaded head gives the same probabilities.
    out.again.forEach((classes, i) => {
      const first = out.results[i * 4].classes;
      for (const c of classes) {
        const same = first.find((x) => x.index === c.index);
        assert.ok(Math.abs(same.score - c.score) <= 1e-6, `reloaded head: ${c.label} ${c.score} vs ${same.score}`);
      }
    });
    assert.deepEqual(out.errors, {
      classifierBeforeTraining: "InvalidOptionsError",
      emptyLabel: "InvalidOptionsError",
      corruptHead: "ModelLoadError",
      detectorHead: "InvalidOptionsError",
      oneLabel: "InvalidOptionsError",
      badEpochs: "InvalidOptionsError",
    });
    assert.equal(out.stillWorks, "espresso");
    assert.equal(out.backend, "cpu");
    h.assertClean();
    await h.close();
  });
}

test("5 classes × 20 examples train within the budget (figure printed)", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const c = await window.sightline.ImageClassifier.create({ backend: "cpu" });
    const trainer = await c.createTrainer();
    const files = ["chelsea.png", "coffee.png", "dog.jpg", "person.jpg"];
    const windows = [[0, 0, 0.8, 0.8], [0.2, 0, 1, 0.8], [0, 0.2, 0.8, 1]];
    for (let k = 0; k < 5; k++) {
      // Class 5: left halves of every image (a harder, mixed class).
      const sources = k < 4 ? windows.map((w) => [files[k], w]) : files.slice(0, 3).map((f) => [f, [0, 0, 0.5, 1]]);
      for (const [file, w] of sources) await trainer.addExample(await window.crop(file, w), `class ${k}`, { augment: true });
      await trainer.addExample(await window.crop(sources[0][0], [0.1, 0.1, 0.9, 0.9]), `class ${k}`);
      await trainer.addExample(await window.crop(sources[0][0], [0, 0, 1, 1]), `class ${k}`);
    }
    const counts = trainer.labels.map((l) => trainer.count(l));
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await trainer.train();
      times.push(performance.now() - t0);
    }
    await c.close();
    return { counts, times };
  });
  console.log(`5 classes × 20 examples, 50 epochs (default), worker: ${out.times.map((t) => `${t.toFixed(0)} ms`).join(", ")}`);
  assert.deepEqual(out.counts, [20, 20, 20, 20, 20]);
  h.assertClean();
  await h.close();
});

test("explain() on WebGPU and the CPU: the same heat map, peaking on the dog; drawHeatmap draws it", { timeout: 600_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier, drawHeatmap } = window.sightline;
    const img = await window.loadImage("/tests/fixtures/images/dog.jpg");
    const gpu = await ImageClassifier.create({ backend: "webgpu" });
    const cpu = await ImageClassifier.create({ backend: "cpu", worker: false });
    const g = await gpu.explain(img);
    const c = await cpu.explain(img);
    const second = await cpu.explain(img, { index: 235 });
    const errors = [];
    for (const options of [{ index: -1 }, { index: 1.5 }, { index: 1000 }, { other: 1 }]) {
      try {
        await cpu.explain(img, options);
        errors.push("no error");
      } catch (e) {
        errors.push(e.name);
      }
    }
    const canvas = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
    const ctx = canvas.getContext("2d");
    drawHeatmap(ctx, c, { alpha: 0.6 });
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) painted += pixels[i] > 0 ? 1 : 0;
    const [bx, by] = [Math.round(c.box.x - 5), Math.round(c.box.y + c.box.height / 2)];
    const outside = ctx.getImageData(Math.max(0, bx), by, 1, 1).data[3];
    await Promise.all([gpu.close(), cpu.close()]);
    const plain = (e) => ({ ...e, grid: [...e.grid], gridType: e.grid.constructor.name });
    return { g: plain(g), c: plain(c), second: plain(second), errors, painted, total: pixels.length / 4, outside };
  });
  const { g, c } = out;
  assert.equal(c.gridType, "Float32Array");
  assert.deepEqual([c.index, c.label, c.rows, c.cols, c.grid.length], [249, "Alaskan Malamute", 7, 7, 49]);
  assert.equal(g.index, c.index);
  const diff = Math.max(...c.grid.map((v, i) => Math.abs(v - g.grid[i])));
  console.log(`dog: WebGPU vs CPU heat map max |Δ| ${diff.toExponential(2)}; box ${JSON.stringify(c.box)}`);
  assert.ok(diff <= GRID_TOL, `WebGPU and CPU grids differ by ${diff}`);
  assert.equal(out.second.index, 235);
  assert.ok(Math.max(...c.grid) === 1 && Math.min(...c.grid) >= 0);
  // The peak lies inside the reference dog box (tests/fixtures/dog/det.json).
  const dog = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/dog/det.json"), "utf8")).detections.find((d) => d.label === "dog");
  const peak = c.grid.indexOf(1);
  const x = c.box.x + ((peak % c.cols) + 0.5) * (c.box.width / c.cols);
  const y = c.box.y + (Math.floor(peak / c.cols) + 0.5) * (c.box.height / c.rows);
  assert.ok(x >= dog.x && x <= dog.x + dog.width && y >= dog.y && y <= dog.y + dog.height, `peak at ${x}, ${y}`);
  assert.deepEqual(out.errors, ["InvalidOptionsError", "InvalidOptionsError", "InvalidOptionsError", "InvalidOptionsError"]);
  // Drawn over the crop region (504×504 of 768×576), nothing outside it.
  const share = out.painted / out.total;
  assert.ok(share > 0.5 && share < 0.65, `painted share ${share}`);
  assert.equal(out.outside, 0);
  h.assertClean();
  await h.close();
});
