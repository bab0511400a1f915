// ImageClassifier in headless Chromium: real WebGPU (SwiftShader) and the CPU backend.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launch, openHarness, referenceTop, startServer } from "./helpers.mjs";

/** WebGPU vs CPU probability bound. Both are f32; the GPU reorders sums (observed ≈1e-6). */
const PROB_TOL = 1e-3;
const FIXTURES = [
  ["chelsea", "chelsea.png"],
  ["coffee", "coffee.png"],
  ["dog", "dog.jpg"],
  ["person", "person.jpg"],
];

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

const harness = (options) => openHarness(browser, base, options);

test("fixtures give the reference top-1 on WebGPU and on the CPU, and the backends agree", { timeout: 600_000 }, async () => {
  const h = await harness();
  const results = await h.page.evaluate(async (fixtures) => {
    const { ImageClassifier } = window.sightline;
    const gpu = await ImageClassifier.create({ backend: "webgpu", topK: 5 });
    const cpu = await ImageClassifier.create({ backend: "cpu", topK: 5 });
    const adapter = await navigator.gpu.requestAdapter();
    const out = { adapter: adapter.info?.architecture ?? "", backends: [gpu.backend, cpu.backend], images: {} };
    for (const [name, file] of fixtures) {
      const img = await window.loadImage(`/tests/fixtures/images/${file}`);
      out.images[name] = { webgpu: await gpu.classify(img), cpu: await cpu.classify(img) };
    }
    await gpu.close();
    await cpu.close();
    return out;
  }, FIXTURES);
  assert.deepEqual(results.backends, ["webgpu", "cpu"]);
  console.log(`WebGPU adapter: ${results.adapter}`);
  for (const [name, file] of FIXTURES) {
    const ref = referenceTop(name);
    const { webgpu, cpu } = results.images[name];
    for (const r of [webgpu, cpu]) {
      assert.equal(r.classes.length, 5);
      assert.equal(typeof r.inferenceMs, "number");
      // PNGs decode exactly; JPEG decoders differ by ±1 level, so those use compare.py's loose rule.
      const top1 = r.classes[0].index;
      const ok = top1 === ref[0].index || (file.endsWith(".jpg") && ref[0].probability < 0.5 && ref.some((c) => c.index === top1));
      assert.ok(ok, `${name} on ${r.backend}: top-1 ${top1} ${r.classes[0].label}, reference ${ref[0].index} ${ref[0].label}`);
    }
    const cpuScores = new Map(cpu.classes.map((c) => [c.index, c.score]));
    for (const c of webgpu.classes) {
      if (cpuScores.has(c.index)) {
        const d = Math.abs(c.score - cpuScores.get(c.index));
        assert.ok(d <= PROB_TOL, `${name}: WebGPU vs CPU probability of ${c.label} differs by ${d}`);
      }
    }
    console.log(
      `${name}: ${webgpu.classes[0].label} webgpu ${webgpu.classes[0].score.toFixed(4)} (${webgpu.inferenceMs.toFixed(0)} ms)` +
        ` cpu ${cpu.classes[0].score.toFixed(4)} (${cpu.inferenceMs.toFixed(0)} ms)`,
    );
  }
  h.assertClean();
  await h.close();
});

test("every source type is accepted: img, canvas, ImageBitmap, ImageData, raw RGBA, video", { timeout: 300_000 }, async () => {
  const h = await harness();
  const labels = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const c = await ImageClassifier.create({ backend: "cpu", topK: 1 });
    const img = await window.loadImage("/tests/fixtures/images/coffee.png");
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    canvas.getContext("2d").drawImage(img, 0, 0);
    const imageData = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    const bitmap = await createImageBitmap(img);
    const raw = { data: new Uint8Array(imageData.data.buffer), width: imageData.width, height: imageData.height };
    const out = [];
    for (const source of [img, canvas, bitmap, imageData, raw]) out.push((await c.classify(source)).classes[0].index);
    // A video element with a frame: the fake camera.
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = stream;
    await video.play();
    while (video.readyState < 2) await new Promise((r) => setTimeout(r, 50));
    const fromVideo = await c.classify(video);
    stream.getTracks().forEach((t) => t.stop());
    out.push(fromVideo.classes.length);
    // create() reports its steps, and the wasm memory is visible for leak checks.
    const t = c.loadTimings;
    out.push(["wasmMs", "deviceMs", "weightsMs", "buildMs", "warmUpMs", "totalMs"].every((k) => t[k] >= 0) && t.totalMs > 0);
    out.push(window.sightline.memoryUsage().wasmBytes > 0);
    return out;
  });
  assert.deepEqual(labels, [967, 967, 967, 967, 967, 1, true, true]);
  h.assertClean();
  await h.close();
});

test("without WebGPU, auto falls back to the CPU and says why; webgpu rejects", { timeout: 300_000 }, async () => {
  const h = await harness({
    initScript: () => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }),
  });
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier, BackendUnavailableError } = window.sightline;
    const auto = await ImageClassifier.create({ backend: "auto" });
    const result = await auto.classify(await window.loadImage("/tests/fixtures/images/coffee.png"));
    let rejected = null;
    try {
      await ImageClassifier.create({ backend: "webgpu" });
    } catch (e) {
      rejected = { name: e.name, message: e.message, isClass: e instanceof BackendUnavailableError };
    }
    return { backend: auto.backend, reason: auto.fallbackReason, resultBackend: result.backend, top1: result.classes[0].index, rejected };
  });
  assert.equal(out.backend, "cpu");
  assert.equal(out.resultBackend, "cpu");
  assert.match(out.reason, /WebGPU/);
  assert.equal(out.top1, 967);
  assert.equal(out.rejected?.name, "BackendUnavailableError");
  assert.ok(out.rejected.isClass);
  h.assertClean();
  await h.close();
});

test("bad pixels and bad options reject with named errors, and the next call still works", { timeout: 600_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const names = {};
    const name = async (key, f) => {
      names[key] = await window.outcome(f);
    };
    const results = {};
    for (const backend of ["webgpu", "cpu"]) {
      const c = await ImageClassifier.create({ backend });
      await name(`${backend}:wrongLength`, () => c.classify({ data: new Uint8Array(10), width: 4, height: 4 }));
      await name(`${backend}:zeroSize`, () => c.classify({ data: new Uint8Array(0), width: 0, height: 0 }));
      await name(`${backend}:notLoaded`, () => c.classify(new Image()));
      await name(`${backend}:huge`, () => c.classify({ data: new Uint8Array(4), width: 20000, height: 1 }));
      await name(`${backend}:badTopK`, () => c.setOptions({ topK: 0 }));
      await name(`${backend}:unknownOption`, () => c.setOptions({ topk: 3 }));
      const img = await window.loadImage("/tests/fixtures/images/coffee.png");
      results[backend] = (await c.classify(img)).classes.map((x) => x.index);
      await c.setOptions({ topK: 2 });
      results[`${backend}:top2`] = (await c.classify(img)).classes.length;
      await c.close();
      await name(`${backend}:afterClose`, () => c.classify(img));
    }
    await name("badBackend", () => ImageClassifier.create({ backend: "tpu" }));
    await name("badModel", () => ImageClassifier.create({ backend: "cpu", model: new Uint8Array([1, 2, 3]) }));
    await name("missingModel", () => ImageClassifier.create({ backend: "cpu", model: "/nonexistent.safetensors" }));
    return { names, results };
  });
  for (const backend of ["webgpu", "cpu"]) {
    assert.equal(out.names[`${backend}:wrongLength`], "InvalidImageError");
    assert.equal(out.names[`${backend}:zeroSize`], "InvalidImageError");
    assert.equal(out.names[`${backend}:notLoaded`], "InvalidImageError");
    assert.equal(out.names[`${backend}:huge`], "InvalidImageError");
    assert.equal(out.names[`${backend}:badTopK`], "InvalidOptionsError");
    assert.equal(out.names[`${backend}:unknownOption`], "InvalidOptionsError");
    assert.equal(out.names[`${backend}:afterClose`], "ClosedError");
    assert.equal(out.results[backend][0], 967, `${backend} still works after bad input`);
    assert.equal(out.results[`${backend}:top2`], 2);
  }
  assert.equal(out.names.badBackend, "InvalidOptionsError");
  assert.equal(out.names.badModel, "ModelLoadError");
  assert.equal(out.names.missingModel, "ModelLoadError");
  // The 404 of the missing model is a network console error by design; drop exactly that one.
  h.problems.splice(0, h.problems.length, ...h.problems.filter((p) => !/404/.test(p)));
  h.assertClean();
  await h.close();
});
