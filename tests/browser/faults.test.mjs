// Issue 10: faults never hang an instance or lose it for good — a Rust panic (fault injection
// compiled in with the `test-hooks` feature), a lost WebGPU device, a call that never answers,
// cross-origin pixels, and bad input — and two instances on one device do not disturb each other.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launch, openHarness, startServer } from "./helpers.mjs";

let browser;
let server;
let base;
let other;

before(async () => {
  ({ server, url: base } = await startServer());
  // A second origin (another port) that sends no CORS headers.
  other = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
  other?.server.close();
});

const harness = (options) => openHarness(browser, base, options);

/** Drops the console errors a deliberate panic prints (its message is the point of the test). */
function dropPanicLogs(h) {
  h.problems.splice(0, h.problems.length, ...h.problems.filter((p) => !/sightline panicked|test panic|RuntimeError: unreachable|unreachable/.test(p)));
}

test("a panic in the worker rejects the call in flight at once; the instance and its neighbour recover", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier, ObjectDetector } = window.sightline;
    const img = await window.loadImage("/tests/fixtures/images/coffee.png");
    const c = await ImageClassifier.create({ backend: "cpu", maxResults: 2 });
    const d = await ObjectDetector.create({ backend: "cpu" });
    const out = {};
    // A panic inside the inference (after its readback), then one inside setOptions.
    for (const when of ["next", "now"]) {
      const t = performance.now();
      let error = null;
      try {
        await c.setOptions({ testPanic: when });
        await c.classify(img);
      } catch (e) {
        error = { name: e.name, message: e.message };
      }
      const ms = performance.now() - t;
      const again = await c.classify(img);
      const neighbour = await d.detect(img);
      out[when] = { error, ms, again: again.classes.map((x) => x.index), maxResults: again.classes.length, neighbour: neighbour.detections.length };
    }
    await c.close();
    await d.close();
    return out;
  });
  for (const when of ["next", "now"]) {
    const r = out[when];
    assert.equal(r.error?.name, "InferenceError", `${when}: ${JSON.stringify(r)}`);
    assert.match(r.error.message, /crashed.*restarts/s, when);
    assert.ok(r.ms < 10_000, `${when}: the failed call settled in ${r.ms} ms`);
    assert.equal(r.again[0], 967, `${when}: the instance works again`);
    assert.equal(r.maxResults, 2, `${when}: recreated with its latest options`);
    assert.ok(r.neighbour > 0, `${when}: the other instance in the worker works again`);
  }
  dropPanicLogs(h);
  h.assertClean();
  await h.close();
});

test("a panic in the page fails the instance with a named error instead of hanging; worker mode still works", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const img = await window.loadImage("/tests/fixtures/images/coffee.png");
    const c = await ImageClassifier.create({ backend: "cpu", worker: false });
    await c.setOptions({ testPanic: "next" });
    const first = await window.outcome(() => c.classify(img));
    let later = null;
    try {
      await c.classify(img);
    } catch (e) {
      later = { name: e.name, message: e.message };
    }
    await c.close(); // settles
    const fresh = await window.outcome(() => ImageClassifier.create({ backend: "cpu", worker: false }));
    const worker = await ImageClassifier.create({ backend: "cpu" });
    const works = (await worker.classify(img)).classes[0].index;
    await worker.close();
    return { first, later, fresh, works };
  });
  assert.equal(out.first, "InferenceError");
  assert.equal(out.later?.name, "InferenceError");
  assert.match(out.later.message, /worker mode/);
  assert.equal(out.fresh, "InferenceError");
  assert.equal(out.works, 967);
  dropPanicLogs(h);
  h.assertClean();
  await h.close();
});

test("the watchdog rejects a call that does not answer in time, and the instance still closes", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const img = await window.loadImage("/tests/fixtures/images/coffee.png");
    // A CPU frame takes tens of ms: a 1 ms watchdog cannot be met.
    const c = await ImageClassifier.create({ backend: "cpu", timeoutMs: 1 });
    let error = null;
    try {
      await c.classify(img);
    } catch (e) {
      error = { name: e.name, message: e.message };
    }
    await c.close();
    return { error };
  });
  assert.equal(out.error?.name, "InferenceError");
  assert.match(out.error.message, /did not answer run within 0 s/);
  h.assertClean();
  await h.close();
});

test("a lost WebGPU device: in the page its instances move to the CPU; in the worker they recreate on a new device", { timeout: 600_000 }, async () => {
  // Captures every GPUDevice the page creates, to destroy it from the test.
  const capture = () => {
    window.__devices = [];
    const original = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await original.apply(this, args);
      window.__devices.push(device);
      return device;
    };
  };
  const h = await harness({ initScript: capture });
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const img = await window.loadImage("/tests/fixtures/images/coffee.png");
    const out = {};
    // In the page: the device is the page's own.
    const c = await ImageClassifier.create({ backend: "webgpu", worker: false, maxResults: 1 });
    out.before = c.backend;
    window.__devices[0].destroy();
    await new Promise((r) => setTimeout(r, 200));
    const r = await c.classify(img);
    out.page = { backend: c.backend, result: r.classes[0].index, resultBackend: r.backend, reason: c.backendReason, fallback: c.fallbackReason };
    const auto = await ImageClassifier.create({ worker: false, backend: "auto" });
    out.newAuto = { backend: auto.backend, fallback: auto.fallbackReason };
    out.newWebgpu = await window.outcome(() => ImageClassifier.create({ worker: false, backend: "webgpu" }));
    await c.close();
    await auto.close();
    // In the worker: the device is destroyed from inside (test hook), the worker restarts.
    const w = await ImageClassifier.create({ backend: "webgpu", maxResults: 1 });
    await w.setOptions({ testLoseDevice: true });
    await new Promise((r) => setTimeout(r, 500));
    const again = await w.classify(img);
    out.worker = { backend: w.backend, result: again.classes[0].index, resultBackend: again.backend };
    const fresh = await ImageClassifier.create({ backend: "webgpu", maxResults: 1 });
    out.workerNew = (await fresh.classify(img)).classes[0].index;
    await w.close();
    await fresh.close();
    return out;
  });
  assert.equal(out.before, "webgpu");
  assert.deepEqual([out.page.backend, out.page.resultBackend, out.page.result], ["cpu", "cpu", 967]);
  assert.match(out.page.reason, /WebGPU device was lost/);
  assert.match(out.page.fallback, /WebGPU device was lost/);
  assert.equal(out.newAuto.backend, "cpu");
  assert.match(out.newAuto.fallback, /WebGPU device was lost/);
  assert.equal(out.newWebgpu, "BackendUnavailableError");
  assert.deepEqual(out.worker, { backend: "webgpu", result: 967, resultBackend: "webgpu" });
  assert.equal(out.workerNew, 967);
  // Destroying a device in use makes Chromium log the lost device; nothing else may be logged.
  h.problems.splice(0, h.problems.length, ...h.problems.filter((p) => !/[Dd]evice.*(lost|destroyed)|Destroyed|destroyed/.test(p)));
  h.assertClean();
  await h.close();
});

test("a cross-origin image is an InvalidImageError naming CORS, and the next clean frame of the same size works", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async (otherOrigin) => {
    const { ImageClassifier } = window.sightline;
    const tainted = await window.loadImage(`${otherOrigin}/tests/fixtures/images/coffee.png`);
    const clean = await window.loadImage("/tests/fixtures/images/coffee.png");
    const out = {};
    for (const worker of [true, false]) {
      const c = await ImageClassifier.create({ backend: "cpu", worker, maxResults: 1 });
      let error = null;
      try {
        await c.classify(tainted);
      } catch (e) {
        error = { name: e.name, message: e.message };
      }
      out[worker ? "worker" : "page"] = { error, next: (await c.classify(clean)).classes[0].index };
      await c.close();
    }
    return out;
  }, other.url);
  for (const [mode, r] of Object.entries(out)) {
    assert.equal(r.error?.name, "InvalidImageError", mode);
    assert.match(r.error.message, /CORS/, mode);
    assert.equal(r.next, 967, `${mode}: the next clean frame of the same size works`);
  }
  h.assertClean();
  await h.close();
});

test("sizes and buffers are checked before anything is allocated; a detached buffer or a Float32Array is an InvalidImageError", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const c = await ImageClassifier.create({ backend: "cpu" });
    const detached = new Uint8Array(16);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const names = {
      wraps: await window.outcome(() => c.classify({ data: new Uint8Array(16), width: 2 ** 32 + 2, height: 2 })),
      fractional: await window.outcome(() => c.classify({ data: new Uint8Array(16), width: 2.5, height: 2 })),
      float32: await window.outcome(() => c.classify({ data: new Float32Array(16), width: 2, height: 2 })),
      detached: await window.outcome(() => c.classify({ data: detached, width: 2, height: 2 })),
      overPixels: await window.outcome(() => c.classify({ data: new Uint8Array(0), width: 16384, height: 16384 })),
      hugeCanvas: await window.outcome(() => c.classify(new OffscreenCanvas(16384, 16384))),
    };
    names.stillWorks = (await c.classify(await window.loadImage("/tests/fixtures/images/coffee.png"))).classes[0].index;
    await c.close();
    return names;
  });
  assert.deepEqual(out, {
    wraps: "InvalidImageError",
    fractional: "InvalidImageError",
    float32: "InvalidImageError",
    detached: "InvalidImageError",
    overPixels: "InvalidImageError",
    hugeCanvas: "InvalidImageError",
    stillWorks: 967,
  });
  h.assertClean();
  await h.close();
});

test("a classifier and a detector used at once on one WebGPU device give the same results as one after the other", { timeout: 600_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier, ObjectDetector } = window.sightline;
    const img = await window.loadImage("/tests/fixtures/images/dog.jpg");
    const c = await ImageClassifier.create({ backend: "webgpu" });
    const d = await ObjectDetector.create({ backend: "webgpu" });
    const sequential = [await c.classify(img), await d.detect(img)];
    const concurrent = await Promise.all([c.classify(img), d.detect(img), c.classify(img)]);
    await c.close();
    await d.close();
    const strip = (r) => r.classes ?? r.detections;
    return { sequential: sequential.map(strip), concurrent: concurrent.map(strip) };
  });
  assert.deepEqual(out.concurrent[0], out.sequential[0], "classes");
  assert.deepEqual(out.concurrent[2], out.sequential[0], "classes again");
  assert.deepEqual(out.concurrent[1], out.sequential[1], "detections");
  h.assertClean();
  await h.close();
});

test("scoreThreshold 0 with maxResults 1000 stays bounded (NanoDet's nms_pre) and returns at most 1000", { timeout: 300_000 }, async () => {
  const h = await harness();
  const out = await h.page.evaluate(async () => {
    const { ObjectDetector } = window.sightline;
    const d = await ObjectDetector.create({ backend: "cpu", scoreThreshold: 0, maxResults: 1000 });
    const r = await d.detect(await window.loadImage("/tests/fixtures/images/dog.jpg"));
    await d.close();
    return { count: r.detections.length, ms: r.inferenceMs };
  });
  console.log(`scoreThreshold 0: ${out.count} detections in ${out.ms.toFixed(0)} ms`);
  assert.ok(out.count > 0 && out.count <= 1000, `${out.count}`);
  h.assertClean();
  await h.close();
});
