// What a warm frame asks of WebGPU (issue 14): no buffer created and one readback per frame, so
// a webcam loop allocates nothing and stalls on the GPU once; and no more kernel launches than
// today (the counts are the launch-count proxy for real GPUs, README "Performance").
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launch, openHarness, startServer } from "./helpers.mjs";

// Dispatches per warm frame as of this commit (bench.mjs prints them). A change that launches
// more kernels fails here; one that launches fewer should lower these bounds.
const MAX_DISPATCHES = { ImageClassifier: 53, ObjectDetector: 45 };

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

for (const [Task, method] of [
  ["ImageClassifier", "classify"],
  ["ObjectDetector", "detect"],
]) {
  test(`${Task}: a warm WebGPU frame creates no buffer and reads back once`, { timeout: 600_000 }, async () => {
    const h = await openHarness(browser, base);
    const frames = await h.page.evaluate(
      async ({ Task, method }) => {
        const { gpuCalls } = await import("/scripts/lib/gpu-calls.js");
        // In the page (not the worker), where the counters are.
        const task = await window.sightline[Task].create({ backend: "webgpu", worker: false });
        const img = await window.loadImage("/tests/fixtures/images/dog.jpg");
        await task[method](img);
        const counts = [];
        for (let i = 0; i < 2; i++) {
          const before = gpuCalls.snapshot();
          const result = await task[method](img);
          counts.push({ ...gpuCalls.since(before), found: (result.classes ?? result.detections).length });
        }
        await task.close();
        return counts;
      },
      { Task, method },
    );
    for (const c of frames) {
      console.log(`${Task}: ${JSON.stringify(c)}`);
      assert.ok(c.found > 0, "the frame found nothing: not a real inference");
      assert.ok(c.dispatches > 0 && c.submits > 0, "no GPU work counted: the counters are not attached");
      assert.equal(c.buffersCreated, 0, "a warm frame created GPU buffers");
      assert.equal(c.readbacks, 1, "a warm frame read back more than once (or never)");
      assert.ok(c.dispatches <= MAX_DISPATCHES[Task], `${c.dispatches} dispatches, at most ${MAX_DISPATCHES[Task]} expected`);
    }
    assert.deepEqual(frames[0], frames[1], "two warm frames of the same image made different calls");
    h.assertClean();
    await h.close();
  });
}
