// Issue 13: the package ships the runtime twice — with relaxed SIMD (fused multiply-add in the CPU
// kernels) and with plain SIMD — and loads the first where the engine validates it. Chromium
// does, so every other browser test runs the relaxed module; these run the fallback as well,
// against the independent reference tensors, and check the choice itself.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseNpy } from "../../scripts/lib/npy.mjs";
import { FIXTURES, ROOT, assertSameResults, launch, openHarness, referencePixels, startServer } from "./helpers.mjs";

/** Embeddings vs the reference (onnxruntime), relative to the largest value (observed ≤ 1.4e-6). */
const EMBED_REL_TOL = 1e-5;
/** Probabilities vs softmax of the reference logits (observed ≤ 1e-6 on both modules). */
const PROB_TOL = 1e-5;
/** Relaxed vs plain SIMD: the same network, products rounded once instead of twice. */
const MODULES_TOL = 1e-5;
/** The PNG fixtures: the reference's decoded pixels are passed as raw RGBA (no browser decoding). */
const PNGS = FIXTURES.filter(([, file]) => file.endsWith(".png")).map(([name]) => name);
const MODULES = { relaxed: "/pkg/sightline_relaxed_bg.wasm", simd: "/pkg/sightline_bg.wasm" };

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

function softmax(logits) {
  const max = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

test("Chromium loads the relaxed-SIMD module by default; an explicit module URL is honoured", { timeout: 300_000 }, async () => {
  const h = await openHarness(browser, base);
  const checks = await h.page.evaluate(async (modules) => {
    const { hasRelaxedSimd } = await import("/www/lib/engine.js");
    const validates = {};
    for (const [name, url] of Object.entries(modules)) {
      validates[name] = WebAssembly.validate(new Uint8Array(await (await fetch(url)).arrayBuffer()));
    }
    return { probe: hasRelaxedSimd(), validates };
  }, MODULES);
  assert.equal(checks.probe, true, "Chromium implements relaxed SIMD");
  assert.deepEqual(checks.validates, { relaxed: true, simd: true });
  // From here on, the wasm files each create() fetches (in its worker, which the recording sees).
  let wasm = [];
  h.context.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path.endsWith(".wasm")) wasm.push(path);
  });
  const top = (options) =>
    h.page.evaluate(async (options) => {
      const c = await window.sightline.ImageClassifier.create({ backend: "cpu", ...options });
      const index = (await c.classify(await window.loadImage("/tests/fixtures/images/coffee.png"))).classes[0].index;
      await c.close();
      return index;
    }, options);
  assert.equal(await top({}), 967);
  assert.deepEqual(wasm, [MODULES.relaxed], "by default: the relaxed module, and only it");
  wasm = [];
  assert.equal(await top({ wasm: MODULES.simd }), 967);
  assert.deepEqual(wasm, [MODULES.simd], "an explicit module: that one, and only it");
  h.assertClean();
  await h.close();
});

test("both modules match the reference tensors on the CPU: embeddings, all 1000 probabilities, detections", { timeout: 900_000 }, async () => {
  const h = await openHarness(browser, base);
  const images = Object.fromEntries(PNGS.map((name) => [name, referencePixels(name)]));
  const det = Object.fromEntries(FIXTURES);
  const out = await h.page.evaluate(
    async ({ modules, images, det }) => {
      const { ImageClassifier, ObjectDetector } = window.sightline;
      const results = {};
      for (const [module, wasm] of Object.entries(modules)) {
        // The f32 weights, as the reference (the default f16 ones differ by ≈2e-3).
        const c = await ImageClassifier.create({
          backend: "cpu",
          wasm,
          model: "/models/efficientnet-lite0.f32.safetensors",
          precision: "f32",
          maxResults: 1000,
        });
        const d = await ObjectDetector.create({ backend: "cpu", wasm, scoreThreshold: 0.05, maxResults: 100 });
        results[module] = { embeddings: {}, classes: {}, detections: {} };
        for (const [name, { data, width, height }] of Object.entries(images)) {
          const pixels = { data: Uint8Array.from(data), width, height };
          results[module].embeddings[name] = [...(await c.embed(pixels))];
          results[module].classes[name] = (await c.classify(pixels)).classes;
        }
        for (const [name, file] of Object.entries(det)) {
          results[module].detections[name] = (await d.detect(await window.loadImage(`/tests/fixtures/images/${file}`))).detections;
        }
        await Promise.all([c.close(), d.close()]);
      }
      return results;
    },
    { modules: MODULES, images, det },
  );
  for (const name of PNGS) {
    const pooled = parseNpy(readFileSync(join(ROOT, "tests/fixtures", name, "cls_crop224_pooled.npy"))).data;
    const probs = softmax(parseNpy(readFileSync(join(ROOT, "tests/fixtures", name, "cls_crop224_logits.npy"))).data);
    const scale = Math.max(...Array.from(pooled, Math.abs));
    for (const module of Object.keys(MODULES)) {
      const e = out[module].embeddings[name];
      assert.equal(e.length, 1280);
      const embed = Math.max(...e.map((v, i) => Math.abs(v - pooled[i]))) / scale;
      const classes = out[module].classes[name];
      assert.equal(classes.length, 1000);
      const prob = Math.max(...classes.map((c) => Math.abs(c.score - probs[c.index])));
      console.log(`${name} ${module}: embedding relative max |Δ| ${embed.toExponential(2)}, probabilities max |Δ| ${prob.toExponential(2)}`);
      assert.ok(embed <= EMBED_REL_TOL, `${name} ${module}: embedding relative difference ${embed}`);
      assert.ok(prob <= PROB_TOL, `${name} ${module}: probability difference ${prob}`);
    }
    const between = assertSameResults(out.relaxed.classes[name], out.simd.classes[name], MODULES_TOL, `${name}: relaxed vs simd`);
    console.log(`${name}: relaxed vs simd probabilities max |Δ| ${between.toExponential(2)}`);
  }
  for (const [name] of FIXTURES) {
    const worst = assertSameResults(out.relaxed.detections[name], out.simd.detections[name], MODULES_TOL, `${name}: relaxed vs simd detections`);
    // Boxes: the same classes in the same order, corners within a thousandth of a pixel.
    const boxes = (list) => list.map((d) => [d.index, d.box.x, d.box.y, d.box.width, d.box.height]);
    const [a, b] = [boxes(out.relaxed.detections[name]), boxes(out.simd.detections[name])];
    assert.deepEqual(a.map((x) => x[0]), b.map((x) => x[0]), `${name}: relaxed vs simd classes`);
    const px = Math.max(...a.flatMap((x, i) => x.slice(1).map((v, j) => Math.abs(v - b[i][j + 1]))));
    assert.ok(px <= 1e-3, `${name}: relaxed vs simd boxes differ by ${px} px`);
    console.log(`${name}: ${out.simd.detections[name].length} detections, relaxed vs simd max |Δscore| ${worst.toExponential(2)}`);
  }
  h.assertClean();
  await h.close();
});
