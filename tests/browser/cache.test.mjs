// Issue 11: what crosses the network. The wasm module and the shipped weights are kept in the
// Cache API and verified by SHA-256 on every use (a later visit makes no request for them and
// works offline; a tampered entry is never run); create() reports its progress; `precision`
// chooses the weights variant, and the default variant agrees with f32 within the bounds the
// issue sets, on both backends.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { FIXTURES, launch, openHarness, startServer } from "./helpers.mjs";

let browser;
let server;
let base;
/** Every request path the server saw, in order. */
const seen = [];

before(async () => {
  ({ server, url: base } = await startServer());
  server.on("request", (req) => seen.push(new URL(req.url, base).pathname));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Requests for the package's large files (the wasm module and weights) since `from`. */
const largeFiles = (from) => seen.slice(from).filter((p) => /\.(wasm|safetensors)$/.test(p));

/** Classifies the coffee fixture in `page` with a fresh classifier; what create() reported. */
function classifyOnce(page, options = {}) {
  return page.evaluate(async (options) => {
    const { ImageClassifier } = window.sightline;
    const events = [];
    const c = await ImageClassifier.create({ backend: "cpu", ...options, onProgress: (e) => events.push(e) });
    const img = await window.loadImage("/tests/fixtures/images/coffee.png");
    const top = (await c.classify(img)).classes[0].index;
    const info = { top, precision: c.precision, fromCache: c.loadTimings.weightsFromCache, events };
    await c.close();
    return info;
  }, options);
}

test("a second visit takes the wasm module and weights from the Cache API: no request, and it works offline", { timeout: 300_000 }, async () => {
  const first = await openHarness(browser, base);
  const start = seen.length;
  const visit1 = await classifyOnce(first.page);
  assert.deepEqual(largeFiles(start).sort(), ["/models/efficientnet-lite0.f16.safetensors", "/pkg/sightline_relaxed_bg.wasm"]);
  assert.equal(visit1.fromCache, false);
  assert.equal(visit1.top, 967);
  await first.page.close();

  // A new page in the same browser profile (same origin storage), with the network cut for them.
  await first.context.route(/\.(wasm|safetensors)$/, (route) => route.abort("internetdisconnected"));
  const second = await first.context.newPage();
  await second.goto(`${base}/tests/browser/harness.html`);
  await second.waitForFunction(() => window.harnessReady === true);
  const before = seen.length;
  const visit2 = await classifyOnce(second);
  assert.deepEqual(largeFiles(before), [], "nothing large was requested");
  assert.equal(visit2.fromCache, true);
  assert.equal(visit2.top, 967);
  const weights = visit2.events.filter((e) => e.stage === "weights");
  assert.ok(weights.length > 0 && weights.every((e) => e.fromCache), JSON.stringify(weights));
  first.assertClean();
  await first.close();
});

test("a tampered cache entry is never run: it is fetched again, verified and replaced", { timeout: 300_000 }, async () => {
  const h = await openHarness(browser, base);
  await classifyOnce(h.page); // fills the cache
  const tampered = await h.page.evaluate(async () => {
    const cache = await caches.open("sightline");
    const keys = (await cache.keys()).filter((r) => r.url.includes("efficientnet-lite0.f16.safetensors"));
    const original = new Uint8Array(await (await cache.match(keys[0])).arrayBuffer());
    const bad = original.slice();
    bad[bad.length - 1] ^= 0xff; // one byte of the last tensor: still a well-formed file
    await cache.put(keys[0], new Response(bad));
    return { keys: keys.length, bytes: original.length };
  });
  assert.equal(tampered.keys, 1);
  const from = seen.length;
  const again = await classifyOnce(h.page);
  assert.deepEqual(largeFiles(from), ["/models/efficientnet-lite0.f16.safetensors"], "only the tampered file is fetched");
  assert.equal(again.fromCache, false);
  assert.equal(again.top, 967);
  const repaired = await h.page.evaluate(async () => {
    const cache = await caches.open("sightline");
    const key = (await cache.keys()).find((r) => r.url.includes("efficientnet-lite0.f16.safetensors"));
    return new Uint8Array(await (await cache.match(key)).arrayBuffer()).length;
  });
  assert.equal(repaired, tampered.bytes, "the entry holds the verified file again");
  // cache: false does not read the Cache API: both files come from the network again.
  const uncached = seen.length;
  const off = await classifyOnce(h.page, { cache: false });
  assert.equal(off.fromCache, false);
  assert.deepEqual(largeFiles(uncached).sort(), ["/models/efficientnet-lite0.f16.safetensors", "/pkg/sightline_relaxed_bg.wasm"]);
  h.assertClean();
  await h.close();
});

test("onProgress reports wasm, weights, compile and warmup in order, with bytes that only grow", { timeout: 300_000 }, async () => {
  const h = await openHarness(browser, base);
  const { events } = await classifyOnce(h.page, { cache: false });
  const stages = events.map((e) => e.stage).filter((s, i, all) => s !== all[i - 1]);
  assert.deepEqual(stages, ["wasm", "weights", "compile", "warmup"]);
  for (const stage of ["wasm", "weights"]) {
    const list = events.filter((e) => e.stage === stage);
    list.forEach((e, i) => {
      assert.ok(e.loaded >= (list[i - 1]?.loaded ?? 0) && e.loaded <= e.total, `${stage}: ${JSON.stringify(list)}`);
    });
    const last = list.at(-1);
    assert.ok(last.loaded > 0 && last.loaded === last.total, `${stage} ends complete: ${JSON.stringify(last)}`);
  }
  assert.deepEqual(events.at(-1), { stage: "warmup", loaded: 1, total: 1, fromCache: false });
  h.assertClean();
  await h.close();
});

test("precision: the default is f16; an unknown or unshipped variant is a named error; a file of another variant is refused", { timeout: 300_000 }, async () => {
  const h = await openHarness(browser, base);
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const names = {
      int4: await window.outcome(() => ImageClassifier.create({ backend: "cpu", precision: "int4" })),
      number: await window.outcome(() => ImageClassifier.create({ backend: "cpu", precision: 16 })),
      unshipped: await window.outcome(() => ImageClassifier.create({ backend: "cpu", precision: "f32" })),
      mismatch: await window.outcome(() =>
        ImageClassifier.create({ backend: "cpu", precision: "int8", model: "/models/efficientnet-lite0.f32.safetensors" }),
      ),
      cache: await window.outcome(() => ImageClassifier.create({ backend: "cpu", cache: "yes" })),
    };
    const c = await ImageClassifier.create({ backend: "cpu" });
    const f32 = await ImageClassifier.create({ backend: "cpu", precision: "f32", model: "/models/efficientnet-lite0.f32.safetensors" });
    const precisions = [c.precision, f32.precision];
    await c.close();
    await f32.close();
    return { names, precisions };
  });
  assert.deepEqual(out.names, {
    int4: "InvalidOptionsError",
    number: "InvalidOptionsError",
    unshipped: "InvalidOptionsError",
    mismatch: "ModelLoadError",
    cache: "InvalidOptionsError",
  });
  assert.deepEqual(out.precisions, ["f16", "f32"]);
  h.assertClean();
  await h.close();
});

test("create({ signal }) aborted while loading rejects with a ModelLoadError, in the worker and in the page; the next create works", { timeout: 300_000 }, async () => {
  const h = await openHarness(browser, base);
  const out = await h.page.evaluate(async () => {
    const { ImageClassifier } = window.sightline;
    const out = {};
    // Aborted mid-download, and at the last progress event: there the worker's create has already
    // finished and its reply crosses the abort message — the page must still reject.
    const cases = [
      ["worker", true, (e) => e.stage === "weights"],
      ["page", false, (e) => e.stage === "weights"],
      ["worker, as it finished", true, (e) => e.stage === "warmup" && e.loaded === 1],
      ["page, as it finished", false, (e) => e.stage === "warmup" && e.loaded === 1],
    ];
    for (const [mode, worker, when] of cases) {
      const controller = new AbortController();
      const events = [];
      const loading = ImageClassifier.create({
        backend: "cpu",
        worker,
        cache: false,
        signal: controller.signal,
        onProgress: (e) => {
          events.push(e.stage);
          if (when(e)) controller.abort();
        },
      });
      let error = null;
      try {
        await loading;
      } catch (e) {
        error = { name: e.name, message: e.message };
      }
      const c = await ImageClassifier.create({ backend: "cpu", worker });
      const top = (await c.classify(await window.loadImage("/tests/fixtures/images/coffee.png"))).classes[0].index;
      await c.close();
      out[mode] = { error, top, aborted: events.includes("weights") };
    }
    return out;
  });
  for (const [mode, r] of Object.entries(out)) {
    assert.ok(r.aborted, `${mode}: the weights download had started`);
    assert.equal(r.error?.name, "ModelLoadError", `${mode}: ${JSON.stringify(r)}`);
    assert.match(r.error.message, /aborted/, mode);
    assert.equal(r.top, 967, `${mode}: the next create works`);
  }
  h.assertClean();
  await h.close();
});

/** Intersection over union of two `{ x, y, width, height }` boxes. */
function iou(a, b) {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  const inter = Math.max(0, w) * Math.max(0, h);
  return inter / (a.width * a.height + b.width * b.height - inter);
}

for (const backend of ["cpu", "webgpu"]) {
  test(`the default weights agree with f32 within the issue's bounds on every fixture (${backend})`, { timeout: 900_000 }, async () => {
    const h = await openHarness(browser, base);
    const out = await h.page.evaluate(
      async ({ backend, files }) => {
        const { ImageClassifier, ObjectDetector } = window.sightline;
        const f32 = (name) => ({ precision: "f32", model: `/models/${name}.f32.safetensors` });
        const tasks = {
          classifier: [
            await ImageClassifier.create({ backend, maxResults: 5 }),
            await ImageClassifier.create({ backend, maxResults: 5, ...f32("efficientnet-lite0") }),
          ],
          detector: [
            await ObjectDetector.create({ backend, scoreThreshold: 0.3 }),
            await ObjectDetector.create({ backend, scoreThreshold: 0.3, ...f32("nanodet-g-416") }),
          ],
        };
        const out = { precision: tasks.classifier[0].precision, backends: [], fixtures: {} };
        for (const file of files) {
          const img = await window.loadImage(`/tests/fixtures/images/${file}`);
          const [c16, c32] = [await tasks.classifier[0].classify(img), await tasks.classifier[1].classify(img)];
          const [d16, d32] = [await tasks.detector[0].detect(img), await tasks.detector[1].detect(img)];
          out.backends.push(c16.backend, c32.backend, d16.backend, d32.backend);
          out.fixtures[file] = { c16: c16.classes, c32: c32.classes, d16: d16.detections, d32: d32.detections };
        }
        for (const list of Object.values(tasks)) for (const t of list) await t.close();
        return out;
      },
      { backend, files: FIXTURES.map(([, file]) => file) },
    );
    assert.equal(out.precision, "f16");
    assert.ok(out.backends.every((b) => b === backend), out.backends.join());
    let recovered = 0;
    for (const [file, r] of Object.entries(out.fixtures)) {
      assert.equal(r.c16[0].index, r.c32[0].index, `${file}: top-1`);
      assert.deepEqual(r.c16.map((c) => c.index).sort(), r.c32.map((c) => c.index).sort(), `${file}: top-5 set`);
      const strong = (list) => list.filter((d) => d.score >= 0.35);
      for (const want of strong(r.d32)) {
        const match = r.d16.find(
          (d) => d.index === want.index && iou(d.box, want.box) >= 0.9 && Math.abs(d.score - want.score) <= 0.03,
        );
        assert.ok(match, `${file}: f32 detection ${JSON.stringify(want)} not found in ${JSON.stringify(r.d16)}`);
        recovered += 1;
      }
    }
    assert.ok(recovered >= 4, `only ${recovered} f32 detections ≥ 0.35 to compare`);
    console.log(`${backend}: ${recovered} f32 detections ≥ 0.35 recovered by f16 on ${FIXTURES.length} fixtures`);
    h.assertClean();
    await h.close();
  });
}
