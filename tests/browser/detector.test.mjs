// ObjectDetector in headless Chromium: real WebGPU (SwiftShader) and the CPU backend, checked
// against the reference detections with compare.py's --loose rule (the browser decodes the
// JPEGs with a different decoder than the reference).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { FIXTURES, ROOT, assertSameResults, launch, openHarness, startServer } from "./helpers.mjs";

/** WebGPU vs CPU score bound for the same detection (f32 both; GPU reorders sums, observed ≈1e-6). */
const SCORE_TOL = 1e-3;

let browser;
let server;
let base;
const out = mkdtempSync(join(tmpdir(), "sightline-det-"));

before(async () => {
  ({ server, url: base } = await startServer());
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
});

const harness = (options) => openHarness(browser, base, options);

/** Runs compare.py (the reference checker) on one result; returns its report. */
function compare(name, backend, detections) {
  const file = join(out, `${name}-${backend}.json`);
  const schema = detections.map((d) => ({ ...d.box, score: d.score, class: d.index, label: d.label }));
  writeFileSync(file, JSON.stringify({ detections: schema }));
  return execFileSync("python3", [join(ROOT, "tests/tools/compare.py"), file, join(ROOT, "tests/fixtures", name, "det.json"), "--loose"], {
    encoding: "utf8",
  });
}

test("fixtures match the reference detections on WebGPU and the CPU, in the worker and in the page, and all agree", { timeout: 900_000 }, async () => {
  const h = await harness();
  const results = await h.page.evaluate(async (fixtures) => {
    const { ObjectDetector } = window.sightline;
    const options = { scoreThreshold: 0.05, maxResults: 100 };
    const gpu = await ObjectDetector.create({ backend: "webgpu", ...options });
    const cpu = await ObjectDetector.create({ backend: "cpu", ...options });
    const page = await ObjectDetector.create({ backend: "cpu", worker: false, ...options });
    const images = {};
    for (const [name, file] of fixtures) {
      const img = await window.loadImage(`/tests/fixtures/images/${file}`);
      images[name] = { webgpu: await gpu.detect(img), cpu: await cpu.detect(img), page: await page.detect(img) };
    }
    await Promise.all([gpu.close(), cpu.close(), page.close()]);
    return { backends: [gpu.backend, cpu.backend, page.backend], images };
  }, FIXTURES);
  assert.deepEqual(results.backends, ["webgpu", "cpu", "cpu"]);
  for (const [name] of FIXTURES) {
    const { webgpu, cpu, page } = results.images[name];
    for (const [backend, r] of [["webgpu", webgpu], ["cpu", cpu]]) {
      assert.equal(r.backend, backend);
      const report = compare(name, backend, r.detections); // throws (exit 1) on FAIL
      console.log(`${backend} ${report.trim().split("\n")[0]} (${r.inferenceMs.toFixed(0)} ms)`);
    }
    // Same input, same network: worker and page agree exactly, WebGPU and CPU within the bound,
    // box by box as well as score by score.
    assertSameResults(page.detections, cpu.detections, 1e-6, `${name}: in-page vs worker`);
    const worst = assertSameResults(webgpu.detections, cpu.detections, SCORE_TOL, `${name}: WebGPU vs CPU`);
    const boxes = (r) => r.detections.map((d) => [d.index, d.box.x, d.box.y, d.box.width, d.box.height]);
    assert.deepEqual(boxes(page), boxes(cpu), `${name}: in-page vs worker boxes`);
    console.log(`${name}: max |Δscore| WebGPU vs CPU = ${worst.toExponential(2)}`);
  }
  h.assertClean();
  await h.close();
});

test("bad input and bad options reject with named errors, and the detector keeps working", { timeout: 600_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ObjectDetector } = window.sightline;
    const names = {};
    const name = async (key, f) => {
      names[key] = await window.outcome(f);
    };
    const results = {};
    for (const backend of ["webgpu", "cpu"]) {
      const d = await ObjectDetector.create({ backend });
      await name(`${backend}:wrongLength`, () => d.detect({ data: new Uint8Array(7), width: 2, height: 2 }));
      await name(`${backend}:zeroSize`, () => d.detect({ data: new Uint8Array(0), width: 0, height: 3 }));
      await name(`${backend}:scoreThreshold`, () => d.setOptions({ scoreThreshold: 2 }));
      await name(`${backend}:maxResults`, () => d.setOptions({ maxResults: 0 }));
      await name(`${backend}:category`, () => d.setOptions({ categoryAllowlist: ["unicorn"] }));
      await name(`${backend}:unknown`, () => d.setOptions({ threshold: 0.5 }));
      const img = await window.loadImage("/tests/fixtures/images/dog.jpg");
      results[backend] = (await d.detect(img)).detections.map((x) => x.label);
      await d.setOptions({ categoryAllowlist: ["dog"] });
      results[`${backend}:onlyDog`] = (await d.detect(img)).detections.map((x) => x.label);
      await d.setOptions({ categoryAllowlist: null, categoryDenylist: ["dog"], maxResults: 1 });
      results[`${backend}:noDog`] = (await d.detect(img)).detections.map((x) => x.label);
      await d.close();
    }
    await name("createBadOption", () => ObjectDetector.create({ backend: "cpu", iouThreshold: -1 }));
    return { names, results };
  });
  for (const backend of ["webgpu", "cpu"]) {
    assert.equal(out.names[`${backend}:wrongLength`], "InvalidImageError");
    assert.equal(out.names[`${backend}:zeroSize`], "InvalidImageError");
    assert.equal(out.names[`${backend}:scoreThreshold`], "InvalidOptionsError");
    assert.equal(out.names[`${backend}:maxResults`], "InvalidOptionsError");
    assert.equal(out.names[`${backend}:category`], "InvalidOptionsError");
    assert.equal(out.names[`${backend}:unknown`], "InvalidOptionsError");
    assert.ok(out.results[backend].includes("dog") && out.results[backend].includes("bicycle"), `${out.results[backend]}`);
    assert.deepEqual([...new Set(out.results[`${backend}:onlyDog`])], ["dog"]);
    assert.deepEqual(out.results[`${backend}:noDog`], ["bicycle"]);
  }
  assert.equal(out.names.createBadOption, "InvalidOptionsError");
  h.assertClean();
  await h.close();
});

test("drawDetections draws each box in its class colour, scaled to the canvas", { timeout: 120_000 }, async () => {
  const h = await harness();
  const px = await h.page.evaluate(() => {
    const { drawDetections, classColor } = window.sightline;
    const canvas = document.createElement("canvas");
    canvas.width = 800;
    canvas.height = 600;
    const ctx = canvas.getContext("2d");
    const at = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data);
    // The colour a class should get, as the canvas renders it.
    const swatch = (index) => {
      ctx.fillStyle = classColor(index);
      ctx.fillRect(0, 0, 1, 1);
      const rgba = at(0, 0);
      ctx.clearRect(0, 0, 1, 1);
      return rgba;
    };
    const expected = { 16: swatch(16), 1: swatch(1) };
    drawDetections(ctx, [
      { index: 16, label: "dog", score: 0.9, box: { x: 100, y: 100, width: 200, height: 150 } },
      { index: 1, label: "bicycle", score: 0.8, box: { x: 400, y: 300, width: 100, height: 100 } },
    ]);
    // Drawn at half size on a second canvas: boxes scale with sourceWidth/sourceHeight.
    const small = document.createElement("canvas").getContext("2d");
    small.canvas.width = 400;
    small.canvas.height = 300;
    drawDetections(small, [{ index: 16, label: "dog", score: 0.9, box: { x: 100, y: 100, width: 200, height: 150 } }], {
      sourceWidth: 800,
      sourceHeight: 600,
    });
    return {
      expected,
      dogBottomEdge: at(200, 250),
      bikeBottomEdge: at(450, 400),
      inside: at(200, 175),
      scaledEdge: Array.from(small.getImageData(100, 125, 1, 1).data),
    };
  });
  assert.notDeepEqual(px.expected[16], px.expected[1], "two classes get two colours");
  assert.deepEqual(px.dogBottomEdge, px.expected[16], "the dog box is in the dog colour");
  assert.deepEqual(px.bikeBottomEdge, px.expected[1], "the bicycle box is in the bicycle colour");
  assert.equal(px.inside[3], 0, "the box inside is left clear");
  assert.deepEqual(px.scaledEdge, px.expected[16], "the scaled box's bottom edge lands at half the source coordinates");
  h.assertClean();
  await h.close();
});
