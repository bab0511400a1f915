// What a warm frame asks of WebGPU (issue 14): no buffer created and one readback per frame, so
// a webcam loop allocates nothing and stalls on the GPU once; the frame goes up as its bytes
// (two writes: the sampled pixels and the sampling taps; the resize runs on the GPU); and no more
// kernel launches than today (the counts are the launch-count proxy for real GPUs, README
// "Performance").
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launch, openHarness, startServer } from "./helpers.mjs";

// Dispatches per warm frame as of this commit (bench.mjs prints them). A change that launches
// more kernels fails here; one that launches fewer should lower these bounds. (The networks take
// 53 and 45; one more resamples the frame.)
const MAX_DISPATCHES = { ImageClassifier: 54, ObjectDetector: 46 };

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
      assert.equal(c.bufferWrites, 2, "a warm frame should write the frame's bytes and its taps, nothing else");
      // dog.jpg is 768×576 RGBA: at most 2 rows per input row are uploaded (all 576 for the
      // detector's 416), plus 6 taps per input side.
      const side = Task === "ImageClassifier" ? 224 : 416;
      const most = Math.min(2 * side, 576) * 768 * 4 + 6 * side * 4;
      assert.ok(c.bytesWritten <= most, `${c.bytesWritten} bytes written, more than the ${most} the sampled rows take`);
      assert.ok(c.dispatches <= MAX_DISPATCHES[Task], `${c.dispatches} dispatches, at most ${MAX_DISPATCHES[Task]} expected`);
    }
    assert.deepEqual(frames[0], frames[1], "two warm frames of the same image made different calls");
    h.assertClean();
    await h.close();
  });
}

// The largest frame accepted (64 Mpx: 256 MB of RGBA) is prepared on the GPU too, and the result
// equals the CPU backend's. Only the rows the resize samples are uploaded (448 of 8192 here): the
// whole frame would exceed WebGPU's default storage-binding limit (128 MiB).
test("the largest accepted frame classifies on WebGPU as on the CPU", { timeout: 600_000 }, async () => {
  const h = await openHarness(browser, base);
  const out = await h.page.evaluate(async () => {
    const side = 8192;
    const data = new Uint8Array(side * side * 4);
    // Smooth diagonal bands, so that the resize's weights matter.
    for (let y = 0; y < side; y++) {
      const row = y * side * 4;
      for (let x = 0; x < side; x++) {
        const i = row + x * 4;
        data[i] = (x + y) >> 6;
        data[i + 1] = (x >> 5) & 255;
        data[i + 2] = (y >> 5) & 255;
        data[i + 3] = 255;
      }
    }
    const frame = { data, width: side, height: side };
    const results = {};
    for (const backend of ["webgpu", "cpu"]) {
      const c = await window.sightline.ImageClassifier.create({ backend, worker: false });
      results[backend] = await c.classify(frame);
      await c.close();
    }
    return results;
  });
  const [gpu, cpu] = [out.webgpu.classes, out.cpu.classes];
  assert.equal(gpu[0].index, cpu[0].index, "top-1 differs between WebGPU and the CPU");
  const cpuScore = new Map(cpu.map((c) => [c.index, c.score]));
  for (const { index, score } of gpu.filter((c) => cpuScore.has(c.index))) {
    assert.ok(Math.abs(score - cpuScore.get(index)) <= 1e-3, `class ${index}: ${score} on WebGPU, ${cpuScore.get(index)} on the CPU`);
  }
  h.assertClean();
  await h.close();
});
